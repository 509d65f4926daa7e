//! A small ISO-BMFF box reader: enough to check CMAF init segments and chunks field by field.
//!
//! Every function reads untrusted bytes: sizes are checked against what is there, nesting
//! depth and counts are bounded, and failures name the box and offset.

use super::from_ntp_timestamp;
use std::time::SystemTime;

/// Why bytes are not the boxes we expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("box {kind} at byte {offset}: {reason}")]
    Malformed {
        kind: String,
        offset: usize,
        reason: String,
    },
    #[error("missing box {0}")]
    Missing(&'static str),
}

fn malformed(kind: &[u8; 4], offset: usize, reason: impl Into<String>) -> ReadError {
    ReadError::Malformed {
        kind: String::from_utf8_lossy(kind).into_owned(),
        offset,
        reason: reason.into(),
    }
}

/// One box: its four-character type, where it starts, and its body (after the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxRef<'a> {
    pub kind: [u8; 4],
    /// Offset of the box's first byte within the buffer given to [`boxes`].
    pub offset: usize,
    pub body: &'a [u8],
    /// Offset of `body` within the buffer given to [`boxes`].
    pub body_offset: usize,
}

/// The boxes of `data` in order, each checked to fit; stops at the first bad one.
pub fn boxes(data: &[u8]) -> impl Iterator<Item = Result<BoxRef<'_>, ReadError>> {
    boxes_at(data, 0)
}

fn boxes_at(data: &[u8], base: usize) -> impl Iterator<Item = Result<BoxRef<'_>, ReadError>> {
    let mut pos = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || pos >= data.len() {
            return None;
        }
        let item = (|| {
            let rest = &data[pos..];
            if rest.len() < 8 {
                return Err(malformed(
                    b"????",
                    base + pos,
                    format!("{} bytes left, a header needs 8", rest.len()),
                ));
            }
            let kind: [u8; 4] = [rest[4], rest[5], rest[6], rest[7]];
            let size32 = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let (size, header) = match size32 {
                0 => (rest.len(), 8),
                1 => {
                    let large = rest
                        .get(8..16)
                        .ok_or_else(|| malformed(&kind, base + pos, "largesize truncated"))?;
                    let large = u64::from_be_bytes(large.try_into().unwrap_or_default());
                    (usize::try_from(large).unwrap_or(usize::MAX), 16)
                }
                n => (n as usize, 8),
            };
            if size < header || size > rest.len() {
                return Err(malformed(
                    &kind,
                    base + pos,
                    format!(
                        "size {size} does not fit (header {header}, {} bytes left)",
                        rest.len()
                    ),
                ));
            }
            let b = BoxRef {
                kind,
                offset: base + pos,
                body: &rest[header..size],
                body_offset: base + pos + header,
            };
            pos += size;
            Ok(b)
        })();
        failed = item.is_err();
        Some(item)
    })
}

impl<'a> BoxRef<'a> {
    /// The child boxes of a container box (after `skip` bytes of its own fields).
    pub fn children(&self, skip: usize) -> impl Iterator<Item = Result<BoxRef<'a>, ReadError>> + use<'a> {
        let body = self.body.get(skip..).unwrap_or_default();
        boxes_at(body, self.body_offset + skip)
    }

    /// The first child of type `kind`.
    pub fn child(&self, kind: &'static [u8; 4]) -> Result<BoxRef<'a>, ReadError> {
        find(self.children(0), kind)
    }

    fn cursor(&self) -> Cursor<'a> {
        Cursor {
            kind: self.kind,
            data: self.body,
            base: self.body_offset,
            pos: 0,
        }
    }
}

/// The first box of type `kind` among `items`.
pub fn find<'a>(
    items: impl Iterator<Item = Result<BoxRef<'a>, ReadError>>,
    kind: &'static [u8; 4],
) -> Result<BoxRef<'a>, ReadError> {
    for b in items {
        let b = b?;
        if &b.kind == kind {
            return Ok(b);
        }
    }
    Err(ReadError::Missing(std::str::from_utf8(kind).unwrap_or("????")))
}

/// Reads a box body field by field.
struct Cursor<'a> {
    kind: [u8; 4],
    data: &'a [u8],
    base: usize,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        let out = self
            .data
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or_else(|| malformed(&self.kind, self.base + self.pos, format!("needs {n} more bytes")))?;
        self.pos += n;
        Ok(out)
    }
    fn u32(&mut self) -> Result<u32, ReadError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, ReadError> {
        Ok((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }
    /// Version and flags of a full box.
    fn full(&mut self) -> Result<(u8, u32), ReadError> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }
}

/// What a CMAF init segment says about its one track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitInfo {
    pub major_brand: [u8; 4],
    pub track_id: u32,
    pub timescale: u32,
    pub handler: [u8; 4],
    /// Sample entry type (`avc1`, `mp4a`, ...).
    pub sample_entry: [u8; 4],
    /// Width and height from `tkhd` (integer part).
    pub width: u32,
    pub height: u32,
    /// The codec configuration box body (`avcC`, or the ASC inside `esds`).
    pub codec_config: Vec<u8>,
    /// `trex` is present for this track (the file is fragmented).
    pub has_trex: bool,
}

/// Reads an init segment: `ftyp` then `moov` with exactly one track.
pub fn init_info(data: &[u8]) -> Result<InitInfo, ReadError> {
    let ftyp = find(boxes(data), b"ftyp")?;
    let mut c = ftyp.cursor();
    let major_brand: [u8; 4] = c.take(4)?.try_into().unwrap_or_default();
    let moov = find(boxes(data), b"moov")?;
    let traks = moov
        .children(0)
        .filter(|b| b.as_ref().map_or(true, |b| &b.kind == b"trak"))
        .collect::<Result<Vec<_>, _>>()?;
    let [trak] = traks.as_slice() else {
        return Err(malformed(
            b"moov",
            moov.offset,
            format!("{} tracks, CMAF has one", traks.len()),
        ));
    };
    let tkhd = trak.child(b"tkhd")?;
    let mut c = tkhd.cursor();
    let (version, _) = c.full()?;
    c.take(if version == 1 { 16 } else { 8 })?;
    let track_id = c.u32()?;
    c.take(4)?;
    c.take(if version == 1 { 8 } else { 4 })?;
    c.take(8 + 2 + 2 + 2 + 2 + 36)?;
    let width = c.u32()? >> 16;
    let height = c.u32()? >> 16;

    let mdia = trak.child(b"mdia")?;
    let mdhd = mdia.child(b"mdhd")?;
    let mut c = mdhd.cursor();
    let (version, _) = c.full()?;
    c.take(if version == 1 { 16 } else { 8 })?;
    let timescale = c.u32()?;
    if timescale == 0 {
        return Err(malformed(b"mdhd", mdhd.offset, "timescale 0"));
    }
    let hdlr = mdia.child(b"hdlr")?;
    let mut c = hdlr.cursor();
    c.full()?;
    c.u32()?;
    let handler: [u8; 4] = c.take(4)?.try_into().unwrap_or_default();
    let stsd = mdia.child(b"minf")?.child(b"stbl")?.child(b"stsd")?;
    let entry = stsd
        .children(8)
        .next()
        .ok_or(ReadError::Missing("sample entry"))??;
    // Visual sample entries have 78 bytes of fields before their boxes, audio ones 28.
    let codec_config = match &entry.kind {
        b"avc1" | b"avc3" => entry_child(&entry, 78, b"avcC")?.body.to_vec(),
        b"mp4a" => esds_asc(entry_child(&entry, 28, b"esds")?)?,
        b"Opus" => entry_child(&entry, 28, b"dOps")?.body.to_vec(),
        _ => Vec::new(),
    };
    let has_trex = moov
        .child(b"mvex")
        .and_then(|mvex| {
            mvex.children(0)
                .filter_map(Result::ok)
                .filter(|b| &b.kind == b"trex")
                .any(|b| b.body.get(4..8) == Some(&track_id.to_be_bytes()[..]))
                .then_some(())
                .ok_or(ReadError::Missing("trex"))
        })
        .is_ok();
    Ok(InitInfo {
        major_brand,
        track_id,
        timescale,
        handler,
        sample_entry: entry.kind,
        width,
        height,
        codec_config,
        has_trex,
    })
}

/// The track an init segment describes, in the media model's terms: what a relayed copy of
/// a rendition knows of its track is what its init segment says. H.264 and AAC only.
pub fn track_info(data: &[u8]) -> Result<crate::media::TrackInfo, ReadError> {
    use crate::codec::{AudioSpecificConfig, AvcDecoderConfig};
    use crate::media::{CodecConfig, TrackId, TrackInfo, VideoShape};
    let info = init_info(data)?;
    let bad = |kind: &[u8; 4], e: crate::codec::CodecError| malformed(kind, 0, e.to_string());
    let (codec, video) = match &info.sample_entry {
        b"avc1" | b"avc3" => {
            let avc = AvcDecoderConfig::parse(&info.codec_config).map_err(|e| bad(b"avcC", e))?;
            let sps = avc.sps_info();
            let shape = VideoShape {
                width: sps.width,
                height: sps.height,
                frame_rate: sps.frame_rate,
            };
            (CodecConfig::H264(avc), Some(shape))
        }
        b"mp4a" => (
            CodecConfig::Aac(AudioSpecificConfig::parse(&info.codec_config).map_err(|e| bad(b"esds", e))?),
            None,
        ),
        other => {
            return Err(malformed(
                b"stsd",
                0,
                format!(
                    "sample entry {:?} is not H.264 or AAC",
                    String::from_utf8_lossy(other)
                ),
            ));
        }
    };
    Ok(TrackInfo {
        id: TrackId(info.track_id),
        timescale: info.timescale,
        codec,
        video,
    })
}

fn entry_child<'a>(entry: &BoxRef<'a>, skip: usize, kind: &'static [u8; 4]) -> Result<BoxRef<'a>, ReadError> {
    find(entry.children(skip), kind)
}

/// The DecoderSpecificInfo (tag 5) inside an `esds` box.
fn esds_asc(esds: BoxRef<'_>) -> Result<Vec<u8>, ReadError> {
    let body = esds.body.get(4..).unwrap_or_default();
    let mut pos = 0;
    // Walk the descriptors depth-first: ES (3) → DecoderConfig (4) → DecoderSpecificInfo (5).
    for _ in 0..8 {
        let tag = *body.get(pos).ok_or(ReadError::Missing("DecoderSpecificInfo"))?;
        pos += 1;
        let mut len = 0usize;
        for _ in 0..4 {
            let b = *body
                .get(pos)
                .ok_or_else(|| malformed(b"esds", esds.offset, "descriptor size truncated"))?;
            pos += 1;
            len = (len << 7) | usize::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
        match tag {
            3 => pos += 3,  // ES_ID, flags (we write none of the optional fields)
            4 => pos += 13, // objectType, streamType, buffer size, bitrates
            5 => {
                return body
                    .get(pos..pos + len)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| malformed(b"esds", esds.offset, "DecoderSpecificInfo truncated"));
            }
            _ => pos += len,
        }
    }
    Err(ReadError::Missing("DecoderSpecificInfo"))
}

/// One sample as a chunk's `trun` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleInfo {
    pub decode_time: u64,
    pub duration: u32,
    pub size: u32,
    pub flags: u32,
    pub composition_offset: i32,
    /// The sample's bytes within the buffer given to [`fragments`].
    pub data_range: std::ops::Range<usize>,
}

impl SampleInfo {
    pub fn is_sync(&self) -> bool {
        self.flags & 0x0001_0000 == 0
    }
}

/// One `moof` + `mdat` pair (and the `prft` before it, if any).
#[derive(Debug, Clone, PartialEq)]
pub struct FragmentInfo {
    pub sequence: u32,
    pub track_id: u32,
    pub base_decode_time: u64,
    pub samples: Vec<SampleInfo>,
    /// `prft`: the wall-clock instant and the media time it belongs to.
    pub prft: Option<(SystemTime, u64)>,
}

/// Most samples one `trun` may declare before we refuse it (a chunk carries a few frames).
pub const MAX_TRUN_SAMPLES: u32 = 100_000;

/// Reads every fragment of a chunk, part or segment. Each `moof` must be followed by the
/// `mdat` its samples point into.
pub fn fragments(data: &[u8]) -> Result<Vec<FragmentInfo>, ReadError> {
    let mut out = Vec::new();
    let mut prft = None;
    let mut pending: Option<FragmentInfo> = None;
    for b in boxes(data) {
        let b = b?;
        match &b.kind {
            b"styp" | b"sidx" | b"emsg" | b"free" => {}
            b"prft" => {
                let mut c = b.cursor();
                let (version, _) = c.full()?;
                c.u32()?;
                let ntp = c.u64()?;
                let media_time = if version == 1 {
                    c.u64()?
                } else {
                    u64::from(c.u32()?)
                };
                prft = Some((from_ntp_timestamp(ntp), media_time));
            }
            b"moof" => {
                if pending.is_some() {
                    return Err(malformed(b"moof", b.offset, "follows a moof without its mdat"));
                }
                let mut f = moof(&b)?;
                f.prft = prft.take();
                pending = Some(f);
            }
            b"mdat" => {
                let mut f = pending
                    .take()
                    .ok_or_else(|| malformed(b"mdat", b.offset, "no moof before it"))?;
                let body = b.body_offset..b.body_offset + b.body.len();
                for s in &f.samples {
                    if s.data_range.start < body.start || s.data_range.end > body.end {
                        return Err(malformed(
                            b"trun",
                            b.offset,
                            format!("sample bytes {:?} fall outside the mdat {body:?}", s.data_range),
                        ));
                    }
                }
                f.samples.shrink_to_fit();
                out.push(f);
            }
            _ => {}
        }
    }
    if pending.is_some() {
        return Err(ReadError::Missing("mdat"));
    }
    if prft.is_some() {
        return Err(ReadError::Missing("moof after prft"));
    }
    Ok(out)
}

fn moof(moof: &BoxRef<'_>) -> Result<FragmentInfo, ReadError> {
    let mut c = moof.child(b"mfhd")?.cursor();
    c.full()?;
    let sequence = c.u32()?;
    let traf = moof.child(b"traf")?;
    let tfhd = traf.child(b"tfhd")?;
    let mut c = tfhd.cursor();
    let (_, tf_flags) = c.full()?;
    let track_id = c.u32()?;
    if tf_flags & 0x1 != 0 {
        return Err(malformed(b"tfhd", tfhd.offset, "base-data-offset is not CMAF"));
    }
    let mut c = traf.child(b"tfdt")?.cursor();
    let (version, _) = c.full()?;
    let base_decode_time = if version == 1 {
        c.u64()?
    } else {
        u64::from(c.u32()?)
    };
    let trun = traf.child(b"trun")?;
    let mut c = trun.cursor();
    let (version, flags) = c.full()?;
    let count = c.u32()?;
    if count > MAX_TRUN_SAMPLES {
        return Err(malformed(
            b"trun",
            trun.offset,
            format!("{count} samples (limit {MAX_TRUN_SAMPLES})"),
        ));
    }
    let data_offset = if flags & 0x1 != 0 { c.u32()? as i32 } else { 0 };
    let first_flags = if flags & 0x4 != 0 { Some(c.u32()?) } else { None };
    let mut pos = moof
        .offset
        .checked_add_signed(data_offset as isize)
        .ok_or_else(|| malformed(b"trun", trun.offset, "data_offset points before the buffer"))?;
    let mut t = base_decode_time;
    let mut samples = Vec::with_capacity(count.min(1024) as usize);
    for i in 0..count {
        let duration = if flags & 0x100 != 0 { c.u32()? } else { 0 };
        let size = if flags & 0x200 != 0 { c.u32()? } else { 0 };
        let mut sflags = if flags & 0x400 != 0 { c.u32()? } else { 0 };
        if i == 0 {
            if let Some(f) = first_flags {
                sflags = f;
            }
        }
        let cto = if flags & 0x800 != 0 {
            let v = c.u32()?;
            if version == 0 {
                v.min(i32::MAX as u32) as i32
            } else {
                v as i32
            }
        } else {
            0
        };
        let end = pos.saturating_add(size as usize);
        samples.push(SampleInfo {
            decode_time: t,
            duration,
            size,
            flags: sflags,
            composition_offset: cto,
            data_range: pos..end,
        });
        pos = end;
        t = t.saturating_add(u64::from(duration));
    }
    Ok(FragmentInfo {
        sequence,
        track_id,
        base_decode_time,
        samples,
        prft: None,
    })
}
