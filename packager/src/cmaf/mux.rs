//! Writes CMAF init segments (`ftyp` + `moov`) and chunks (`prft` + `moof` + `mdat`).

use super::{NON_SYNC_SAMPLE_FLAGS, SYNC_SAMPLE_FLAGS, ntp_timestamp};
use crate::codec::{AudioSpecificConfig, AvcDecoderConfig};
use crate::media::{CodecConfig, TrackInfo};
use bytes::Bytes;
use std::time::SystemTime;

/// Why a track or chunk cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    #[error("track {track}: {what}")]
    Track { track: u32, what: String },
    #[error("chunk has no samples")]
    Empty,
    #[error("{field} is {value}, more than the format's limit of {max}")]
    TooLarge {
        field: &'static str,
        value: u64,
        max: u64,
    },
}

/// A box being written: remembers where its size field is.
struct Open(usize);

/// Big-endian box writer.
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }

    fn open(&mut self, kind: &[u8; 4]) -> Open {
        let at = self.buf.len();
        self.u32(0);
        self.buf.extend_from_slice(kind);
        Open(at)
    }

    fn open_full(&mut self, kind: &[u8; 4], version: u8, flags: u32) -> Open {
        let b = self.open(kind);
        self.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        b
    }

    /// Patches the size of a box opened with [`Writer::open`]. Our boxes stay far below
    /// 4 GiB: chunk sizes are checked before writing.
    fn close(&mut self, b: Open) {
        let size = (self.buf.len() - b.0) as u32;
        self.buf[b.0..b.0 + 4].copy_from_slice(&size.to_be_bytes());
    }

    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }
    /// The unity transformation matrix of `mvhd` and `tkhd`.
    fn matrix(&mut self) {
        for v in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
            self.u32(v);
        }
    }
}

/// Writes the init segment of one track: `ftyp` and a `moov` with one `trak` and `mvex`.
pub fn init_segment(track: &TrackInfo) -> Result<Bytes, MuxError> {
    let id = track.id.0;
    let bad = |what: &str| MuxError::Track {
        track: id,
        what: what.to_string(),
    };
    if id == 0 {
        return Err(bad("track_ID 0 is reserved"));
    }
    if track.timescale == 0 {
        return Err(bad("timescale 0"));
    }
    let (handler, name): (&[u8; 4], &[u8]) = match track.codec {
        CodecConfig::H264(_) => (b"vide", b"Popcast video\0"),
        CodecConfig::Aac(_) => (b"soun", b"Popcast audio\0"),
    };
    let (width, height) = match (&track.codec, track.video) {
        (CodecConfig::H264(_), Some(v)) => (v.width, v.height),
        (CodecConfig::H264(_), None) => return Err(bad("video track without a picture size")),
        _ => (0, 0),
    };
    if width > 0xffff || height > 0xffff {
        return Err(bad(&format!("picture size {width}x{height} exceeds 65535")));
    }

    let mut w = Writer::with_capacity(1024);
    let ftyp = w.open(b"ftyp");
    w.bytes(b"iso6");
    w.u32(0);
    for brand in [b"iso6", b"cmfc", b"mp41"] {
        w.bytes(brand);
    }
    w.close(ftyp);

    let moov = w.open(b"moov");
    let mvhd = w.open_full(b"mvhd", 0, 0);
    w.u32(0); // creation_time
    w.u32(0); // modification_time
    w.u32(1000); // timescale
    w.u32(0); // duration: unknown (live)
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.zeros(10);
    w.matrix();
    w.zeros(24); // pre_defined
    w.u32(id.saturating_add(1)); // next_track_ID
    w.close(mvhd);

    let trak = w.open(b"trak");
    let tkhd = w.open_full(b"tkhd", 0, 0x3); // enabled, in movie
    w.u32(0);
    w.u32(0);
    w.u32(id);
    w.u32(0); // reserved
    w.u32(0); // duration
    w.zeros(8);
    w.u16(0); // layer
    w.u16(0); // alternate_group
    w.u16(if handler == b"soun" { 0x0100 } else { 0 });
    w.u16(0);
    w.matrix();
    w.u32(width << 16);
    w.u32(height << 16);
    w.close(tkhd);

    let mdia = w.open(b"mdia");
    let mdhd = w.open_full(b"mdhd", 0, 0);
    w.u32(0);
    w.u32(0);
    w.u32(track.timescale);
    w.u32(0);
    w.u16(0x55c4); // language "und", ISO-639-2/T packed
    w.u16(0);
    w.close(mdhd);
    let hdlr = w.open_full(b"hdlr", 0, 0);
    w.u32(0);
    w.bytes(handler);
    w.zeros(12);
    w.bytes(name);
    w.close(hdlr);

    let minf = w.open(b"minf");
    if handler == b"vide" {
        let vmhd = w.open_full(b"vmhd", 0, 1);
        w.zeros(8);
        w.close(vmhd);
    } else {
        let smhd = w.open_full(b"smhd", 0, 0);
        w.zeros(4);
        w.close(smhd);
    }
    let dinf = w.open(b"dinf");
    let dref = w.open_full(b"dref", 0, 0);
    w.u32(1);
    let url = w.open_full(b"url ", 0, 1); // media is in this file
    w.close(url);
    w.close(dref);
    w.close(dinf);

    let stbl = w.open(b"stbl");
    let stsd = w.open_full(b"stsd", 0, 0);
    w.u32(1);
    match &track.codec {
        CodecConfig::H264(avc) => avc1_entry(&mut w, avc, width as u16, height as u16),
        CodecConfig::Aac(asc) => mp4a_entry(&mut w, asc)?,
    }
    w.close(stsd);
    for empty in [b"stts", b"stsc", b"stco"] {
        let b = w.open_full(empty, 0, 0);
        w.u32(0);
        w.close(b);
    }
    let stsz = w.open_full(b"stsz", 0, 0);
    w.u32(0);
    w.u32(0);
    w.close(stsz);
    w.close(stbl);
    w.close(minf);
    w.close(mdia);
    w.close(trak);

    let mvex = w.open(b"mvex");
    let trex = w.open_full(b"trex", 0, 0);
    w.u32(id);
    w.u32(1); // default_sample_description_index
    w.u32(0);
    w.u32(0);
    w.u32(0);
    w.close(trex);
    w.close(mvex);
    w.close(moov);
    Ok(Bytes::from(w.buf))
}

/// `avc1` visual sample entry with its `avcC`.
fn avc1_entry(w: &mut Writer, avc: &AvcDecoderConfig, width: u16, height: u16) {
    let entry = w.open(b"avc1");
    w.zeros(6);
    w.u16(1); // data_reference_index
    w.zeros(16); // pre_defined, reserved
    w.u16(width);
    w.u16(height);
    w.u32(0x0048_0000); // 72 dpi
    w.u32(0x0048_0000);
    w.u32(0);
    w.u16(1); // frame_count
    let mut compressor = [0u8; 32];
    let name = b"Popcast H.264";
    compressor[0] = name.len() as u8;
    compressor[1..=name.len()].copy_from_slice(name);
    w.bytes(&compressor);
    w.u16(0x0018); // depth
    w.u16(0xffff); // pre_defined = -1
    let avcc = w.open(b"avcC");
    w.bytes(&avc.to_bytes());
    w.close(avcc);
    w.close(entry);
}

/// `mp4a` audio sample entry with its `esds` (MPEG-4 ES descriptor carrying the ASC).
fn mp4a_entry(w: &mut Writer, asc: &AudioSpecificConfig) -> Result<(), MuxError> {
    // The sample entry's 16.16 rate field holds rates up to 65535 Hz; higher rates are
    // written as 0 there and are still correct in the ASC and the media timescale.
    let rate = if asc.sample_rate <= 0xffff {
        asc.sample_rate << 16
    } else {
        0
    };
    let entry = w.open(b"mp4a");
    w.zeros(6);
    w.u16(1);
    w.zeros(8);
    w.u16(u16::from(asc.channel_config.max(1)).min(8));
    w.u16(16); // samplesize
    w.u32(0);
    w.u32(rate);
    let esds = w.open_full(b"esds", 0, 0);
    // DecoderSpecificInfo (tag 5) = the ASC; DecoderConfigDescriptor (tag 4) holds it, and
    // the ES_Descriptor (tag 3) holds that plus an SLConfigDescriptor (tag 6).
    let dsi_len = asc.raw.len();
    let dcd_len = 13 + descriptor_len(dsi_len)?;
    let es_len = 3 + descriptor_len(dcd_len)? + descriptor_len(1)?;
    descriptor_header(w, 3, es_len)?;
    w.u16(0); // ES_ID
    w.u8(0); // no stream dependence, URL or OCR stream
    descriptor_header(w, 4, dcd_len)?;
    w.u8(0x40); // objectTypeIndication: Audio ISO/IEC 14496-3
    w.u8((0x05 << 2) | 1); // streamType audio, upStream 0, reserved 1
    w.bytes(&[0, 0, 0]); // bufferSizeDB
    w.u32(0); // maxBitrate (unknown)
    w.u32(0); // avgBitrate (variable)
    descriptor_header(w, 5, dsi_len)?;
    w.bytes(&asc.raw);
    descriptor_header(w, 6, 1)?;
    w.u8(2); // predefined: MP4
    w.close(esds);
    w.close(entry);
    Ok(())
}

/// Bytes a descriptor of `len` body bytes takes with its tag and size (1-byte size below
/// 128, else the 4-byte form every reader accepts).
fn descriptor_len(len: usize) -> Result<usize, MuxError> {
    if len >= 1 << 28 {
        return Err(MuxError::TooLarge {
            field: "descriptor size",
            value: len as u64,
            max: (1 << 28) - 1,
        });
    }
    Ok(len + if len < 128 { 2 } else { 5 })
}

fn descriptor_header(w: &mut Writer, tag: u8, len: usize) -> Result<(), MuxError> {
    descriptor_len(len)?;
    w.u8(tag);
    if len < 128 {
        w.u8(len as u8);
    } else {
        w.bytes(&[
            0x80 | ((len >> 21) & 0x7f) as u8,
            0x80 | ((len >> 14) & 0x7f) as u8,
            0x80 | ((len >> 7) & 0x7f) as u8,
            (len & 0x7f) as u8,
        ]);
    }
    Ok(())
}

/// One sample of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkSample {
    /// Duration in the track timescale.
    pub duration: u32,
    /// Presentation time minus decode time, in the track timescale (B-frames make it > 0).
    pub composition_offset: i32,
    pub sync: bool,
    pub data: Bytes,
}

/// Most bytes of media in one chunk; a chunk is one or a few frames.
pub const MAX_CHUNK_MEDIA_BYTES: usize = 64 << 20;

/// Writes one chunk: a `prft` tying `decode_time` to the wall-clock instant `arrived` when
/// given, then `moof` (mfhd, traf with tfhd/tfdt/trun) and `mdat` with the samples' bytes.
///
/// `sequence` is the fragment sequence number (`mfhd`), increasing by one per chunk.
pub fn chunk(
    track_id: u32,
    sequence: u32,
    decode_time: u64,
    samples: &[ChunkSample],
    arrived: Option<SystemTime>,
) -> Result<Bytes, MuxError> {
    if samples.is_empty() {
        return Err(MuxError::Empty);
    }
    let media: usize = samples.iter().map(|s| s.data.len()).sum();
    if media > MAX_CHUNK_MEDIA_BYTES {
        return Err(MuxError::TooLarge {
            field: "chunk media bytes",
            value: media as u64,
            max: MAX_CHUNK_MEDIA_BYTES as u64,
        });
    }
    let with_cto = samples.iter().any(|s| s.composition_offset != 0);
    // Version 1 allows negative offsets; ours are pts - dts, so only a broken source makes
    // one negative, and version 1 keeps that representable.
    let trun_version = u8::from(samples.iter().any(|s| s.composition_offset < 0));
    let per_sample = 12 + if with_cto { 4 } else { 0 };
    let mut w = Writer::with_capacity(128 + samples.len() * per_sample + media);

    if let Some(t) = arrived {
        let prft = w.open_full(b"prft", 1, 0);
        w.u32(track_id);
        w.u64(ntp_timestamp(t));
        w.u64(decode_time);
        w.close(prft);
    }

    let moof_start = w.buf.len();
    let moof = w.open(b"moof");
    let mfhd = w.open_full(b"mfhd", 0, 0);
    w.u32(sequence);
    w.close(mfhd);
    let traf = w.open(b"traf");
    let tfhd = w.open_full(b"tfhd", 0, 0x02_0000); // default-base-is-moof
    w.u32(track_id);
    w.close(tfhd);
    let tfdt = w.open_full(b"tfdt", 1, 0);
    w.u64(decode_time);
    w.close(tfdt);
    // data-offset, sample duration, size, flags (+ composition offsets when any).
    let flags = 0x000001 | 0x000100 | 0x000200 | 0x000400 | if with_cto { 0x000800 } else { 0 };
    let trun = w.open_full(b"trun", trun_version, flags);
    w.u32(samples.len() as u32);
    let data_offset_at = w.buf.len();
    w.u32(0);
    for s in samples {
        w.u32(s.duration);
        w.u32(s.data.len() as u32);
        w.u32(if s.sync {
            SYNC_SAMPLE_FLAGS
        } else {
            NON_SYNC_SAMPLE_FLAGS
        });
        if with_cto {
            w.u32(s.composition_offset as u32);
        }
    }
    w.close(trun);
    w.close(traf);
    w.close(moof);
    // Data offset counts from the moof's first byte to the first media byte.
    let data_offset = (w.buf.len() - moof_start + 8) as u32;
    w.buf[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());

    let mdat = w.open(b"mdat");
    for s in samples {
        w.bytes(&s.data);
    }
    w.close(mdat);
    Ok(Bytes::from(w.buf))
}
