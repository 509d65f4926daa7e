//! FLV audio and video tag bodies (as RTMP carries them) to packager tracks and frames.
//!
//! A sans-IO demuxer: the RTMP session hands it each audio and video message body with the
//! message's timestamp and arrival instant; it returns [`FlvOutput`]s (a track when a
//! sequence header configures or reconfigures one, a frame per coded access unit).
//!
//! Accepted: H.264 as legacy FLV (CodecID 7) or Enhanced RTMP (`avc1`), and AAC as legacy
//! FLV (SoundFormat 10) or Enhanced RTMP audio (`mp4a`). Every other codec is refused with a
//! fatal [`FlvError`] naming it, whose [`FlvError::status_description`] is meant for the
//! publisher's `onStatus`.
//!
//! Timing:
//! - RTMP timestamps are 32-bit milliseconds that wrap after ~49.7 days. One unwrapper,
//!   shared by both tracks so they stay on one timeline, reads each timestamp as a signed
//!   step of less than 2^31 ms from the previous tag's: a drop of more than 2^31 is a wrap.
//! - Video: `dts = ms × 90`, `pts = dts + composition time offset × 90` (timescale 90 kHz).
//! - AAC: FLV's whole milliseconds jitter by ±1 ms around the true frame spacing, so the
//!   timestamps are not converted one by one. A sample counter anchors at the first frame
//!   (`round(ms × rate / 1000)`) and advances by exactly one frame length (1024, or 960 when
//!   the AudioSpecificConfig's `frameLengthFlag` says so) per frame; only when the
//!   millisecond clock disagrees with the counter by more than [`AAC_REANCHOR_FRAMES`]
//!   frames (a real gap, a jump, a reset) does it re-anchor at the millisecond timestamp.
//!
//! Keyframes: a video frame is a sync sample exactly when it contains an IDR slice (NAL
//! type 5). FLV's FrameType flag is only advisory: a "key" frame without an IDR (an
//! open-GOP I frame or intra refresh) is not a place a decoder can start, and an IDR
//! flagged "inter" is one.

use bytes::Bytes;
use popcast_packager::codec::{
    AudioSpecificConfig, AvcDecoderConfig, CodecError, NalUnitType, avcc_nal_units,
};
use popcast_packager::media::{CodecConfig, Frame, TrackId, TrackInfo};
use std::fmt;
use std::time::SystemTime;

/// The video track of a publisher's stream.
pub const VIDEO: TrackId = TrackId(1);
/// The audio track of a publisher's stream.
pub const AUDIO: TrackId = TrackId(2);
/// Ticks per second of the video track's timestamps.
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// An AAC frame whose millisecond timestamp is more than this many frame durations away
/// from the sample counter re-anchors the counter there (see the module docs).
pub const AAC_REANCHOR_FRAMES: i64 = 2;

/// Limits of the demuxer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlvConfig {
    /// Largest frame payload (after the FLV tag header) accepted.
    pub max_frame_bytes: u32,
}

impl Default for FlvConfig {
    fn default() -> Self {
        Self::from(&popcast_config::PackagerConfig::default())
    }
}

impl From<&popcast_config::PackagerConfig> for FlvConfig {
    fn from(c: &popcast_config::PackagerConfig) -> Self {
        Self {
            max_frame_bytes: c.max_frame_bytes,
        }
    }
}

/// What one tag produced.
#[derive(Debug, Clone, PartialEq)]
pub enum FlvOutput {
    /// A track's first configuration, or a changed one (a sequence header with different
    /// bytes; a repeat of the same bytes yields nothing). Frames that follow use it. A
    /// change mid-stream is the caller's to handle: the packager's `Segmenter` refuses a
    /// second `add_track` for the same id, so it needs a new segmenter (a discontinuity)
    /// or the session ends. An AAC change also re-anchors the audio sample counter.
    Track(TrackInfo),
    Frame(Frame),
}

/// Why a tag was refused. Non-fatal errors drop only that tag; see [`FlvError::is_fatal`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    /// A video codec other than H.264. Fatal.
    #[error("video codec {codec} is not supported; publish H.264")]
    UnsupportedVideoCodec { codec: String },
    /// An audio codec other than AAC. Fatal.
    #[error("audio codec {codec} is not supported; publish AAC")]
    UnsupportedAudioCodec { codec: String },
    /// The sequence header's record could not be used. Fatal when the record is valid but
    /// unsupported or over a limit (the stream can never be packaged); otherwise the tag is
    /// dropped and the previous configuration, if any, stays.
    #[error("{media} sequence header: {source}")]
    SequenceHeader { media: &'static str, source: CodecError },
    /// The tag body ends inside its header.
    #[error("{media} tag: {field} at byte {offset}: needs {needed} bytes, {available} left")]
    Truncated {
        media: &'static str,
        field: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    /// A header field holds a reserved or unknown value.
    #[error("{media} tag: {field} {value} is reserved or unknown")]
    UnknownValue {
        media: &'static str,
        field: &'static str,
        value: u8,
    },
    /// A coded frame arrived before any sequence header configured its track.
    #[error("{media} frame before the first sequence header")]
    NoSequenceHeader { media: &'static str },
    /// A video frame whose NAL unit framing does not match the record's length size.
    #[error("video frame is not valid AVCC: {0}")]
    BadNalUnits(CodecError),
    #[error("{media} frame of {size} bytes is over the {max}-byte limit")]
    FrameTooLarge {
        media: &'static str,
        size: usize,
        max: u32,
    },
}

impl FlvError {
    /// Whether the session must end (an unsupported codec or feature) rather than drop this
    /// one tag.
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::UnsupportedVideoCodec { .. } | Self::UnsupportedAudioCodec { .. } => true,
            Self::SequenceHeader { source, .. } => {
                matches!(source, CodecError::Unsupported { .. } | CodecError::Limit { .. })
            }
            Self::Truncated { .. }
            | Self::UnknownValue { .. }
            | Self::NoSequenceHeader { .. }
            | Self::BadNalUnits(_)
            | Self::FrameTooLarge { .. } => false,
        }
    }

    /// For fatal errors, the text for the RTMP `onStatus` description sent to the publisher
    /// before the session ends, e.g. "video codec hvc1 (Enhanced RTMP) is not supported;
    /// publish H.264". `None` for errors that only drop the tag.
    pub fn status_description(&self) -> Option<String> {
        self.is_fatal().then(|| self.to_string())
    }
}

/// Demuxes one publisher's FLV tag bodies. See the module docs.
#[derive(Debug)]
pub struct FlvDemuxer {
    config: FlvConfig,
    clock: Clock,
    video: Option<VideoTrack>,
    audio: Option<AudioTrack>,
}

#[derive(Debug)]
struct VideoTrack {
    /// The sequence header's record as received, to tell a repeat from a change.
    record: Bytes,
    info: TrackInfo,
    nal_length_size: u8,
    /// The frame grid, when the SPS declares a frame rate.
    grid: Option<FrameGrid>,
}

/// Largest distance between a millisecond timestamp and a frame-grid instant for the two to
/// be taken as the same: FLV rounds to whole milliseconds, so honest jitter is under 1 ms.
pub(crate) const GRID_TOLERANCE_TICKS: i64 = 135;

/// Snaps a constant-frame-rate source's millisecond timestamps back onto its frame grid.
///
/// FLV carries whole milliseconds, so 30 fps arrives as 33, 34, 33 ms steps (2970 and 3060
/// ticks at 90 kHz). Taken as they are, durations jitter, a part of six frames is 199 to
/// 201 ms, and parts stop being a whole number of equal frames. The same source on its
/// grid has exact 3000-tick frames. A timestamp off the grid by more than the tolerance (a
/// variable-rate source, a jump) re-anchors the grid there; dropped frames keep the grid.
#[derive(Debug, Clone)]
struct FrameGrid {
    /// Frames per second as `num / den`.
    num: i64,
    den: i64,
    /// Decode time of frame 0 of the grid, in ticks, and the index of the last frame given.
    anchor: Option<(i64, i64)>,
}

impl FrameGrid {
    fn new((num, den): (u32, u32)) -> Option<Self> {
        // Sane rates only (1..=300 fps); anything else is left as the timestamps say.
        let (num, den) = (i64::from(num), i64::from(den));
        (den > 0 && num > 0 && num <= 300 * den && num >= den).then_some(Self {
            num,
            den,
            anchor: None,
        })
    }

    /// Ticks from frame 0 to frame `k`.
    fn at(&self, k: i64) -> i64 {
        let t = i128::from(k) * i128::from(VIDEO_TIMESCALE) * i128::from(self.den);
        let n = i128::from(self.num);
        i64::try_from((t + n / 2).div_euclid(n)).unwrap_or(i64::MAX)
    }

    /// One frame's duration in ticks (rounded).
    fn frame(&self) -> i64 {
        self.at(1)
    }

    /// The decode time for a frame stamped `raw` ticks.
    fn snap(&mut self, raw: i64) -> i64 {
        if let Some((anchor, last)) = self.anchor {
            // The nearest frame index, exactly (a rounded frame length drifts: 1501.5
            // ticks at 59.94 fps would be off by a frame within a minute).
            let since = i128::from(raw) - i128::from(anchor);
            let per = i128::from(VIDEO_TIMESCALE) * i128::from(self.den);
            let num = i128::from(self.num);
            let k = (2 * since * num + per).div_euclid(2 * per);
            if let Ok(k) = i64::try_from(k) {
                let on_grid = anchor.saturating_add(self.at(k));
                if k > last && (raw - on_grid).abs() <= GRID_TOLERANCE_TICKS {
                    self.anchor = Some((anchor, k));
                    return on_grid;
                }
            }
            // Off the grid: re-anchor here. A raw timestamp that is later than the last raw
            // one but, within the snap tolerance, not later than the last frame given would
            // come out as a step back: it goes one tick after that frame instead. Real steps
            // back pass through for the segmenter to judge.
            let last_out = anchor.saturating_add(self.at(last));
            if raw > anchor && raw <= last_out && last_out - raw < GRID_TOLERANCE_TICKS {
                let out = last_out + 1;
                self.anchor = Some((out, 0));
                return out;
            }
        }
        self.anchor = Some((raw, 0));
        raw
    }

    /// A composition offset of whole frames, snapped likewise.
    fn snap_offset(&self, cto: i64) -> i64 {
        let frame = self.frame().max(1);
        let m = (cto + frame / 2).div_euclid(frame);
        let on_grid = if m >= 0 { self.at(m) } else { -self.at(-m) };
        if (cto - on_grid).abs() <= GRID_TOLERANCE_TICKS {
            on_grid
        } else {
            cto
        }
    }
}

#[derive(Debug)]
struct AudioTrack {
    record: Bytes,
    info: TrackInfo,
    /// Samples per AAC frame (1024, or 960). The packager's segmenter gives every AAC
    /// sample 1024 ticks, so 960-sample AAC (rare outside broadcast) is spaced right here
    /// but not yet muxed right there.
    frame_len: i64,
    /// Decode time the next frame gets if its timestamp agrees.
    next_dts: Option<i64>,
}

/// Unwraps 32-bit millisecond timestamps into one 64-bit timeline.
#[derive(Debug, Default)]
struct Clock {
    last: Option<(u32, i64)>,
}

impl Clock {
    fn unwrap(&mut self, raw: u32) -> i64 {
        let ms = match self.last {
            None => i64::from(raw),
            // The step as a signed 32-bit value: a forward step across the wrap is small
            // and positive, a small step back (interleaving jitter) is negative.
            Some((last_raw, last)) => last.saturating_add(i64::from(raw.wrapping_sub(last_raw) as i32)),
        };
        self.last = Some((raw, ms));
        ms
    }
}

/// A cursor over a tag body whose errors name the field and offset.
struct Cursor<'a> {
    media: &'static str,
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(media: &'static str, data: &'a [u8]) -> Self {
        Self { media, data, pos: 0 }
    }

    fn bytes(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], FlvError> {
        let available = self.data.len() - self.pos;
        if available < n {
            return Err(FlvError::Truncated {
                media: self.media,
                field,
                offset: self.pos,
                needed: n,
                available,
            });
        }
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, FlvError> {
        Ok(self.bytes(field, 1)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, FlvError> {
        let b = self.bytes(field, 2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A signed 24-bit big-endian integer (SI24).
    fn i24(&mut self, field: &'static str) -> Result<i32, FlvError> {
        let b = self.bytes(field, 3)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], 0]) >> 8)
    }

    fn fourcc(&mut self, field: &'static str) -> Result<[u8; 4], FlvError> {
        let b = self.bytes(field, 4)?;
        Ok([b[0], b[1], b[2], b[3]])
    }

    /// Skips Enhanced RTMP `ModEx` prefixes (packet type 7): each carries modifier data we do
    /// not use (such as a nanosecond timestamp offset) and the real packet type.
    fn skip_mod_ex(&mut self, mut packet_type: u8) -> Result<u8, FlvError> {
        while packet_type == PACKET_TYPE_MOD_EX {
            let mut size = usize::from(self.u8("modExDataSize")?) + 1;
            if size == 256 {
                size = usize::from(self.u16("modExDataSize")?) + 1;
            }
            self.bytes("modExData", size)?;
            packet_type = self.u8("modExType/PacketType")? & 0x0f;
        }
        Ok(packet_type)
    }
}

/// Enhanced RTMP packet types shared by audio and video.
const PACKET_TYPE_MOD_EX: u8 = 7;
const VIDEO_PACKET_TYPE_MULTITRACK: u8 = 6;
const AUDIO_PACKET_TYPE_MULTITRACK: u8 = 5;

/// A FourCC as text when it is printable ASCII, else as hex.
struct FourCc([u8; 4]);

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            f.write_str(&String::from_utf8_lossy(&self.0))
        } else {
            write!(
                f,
                "0x{}",
                self.0.iter().map(|b| format!("{b:02x}")).collect::<String>()
            )
        }
    }
}

fn legacy_video_codec(id: u8) -> String {
    let name = match id {
        1 => "JPEG",
        2 => "Sorenson H.263",
        3 => "Screen Video",
        4 => "On2 VP6",
        5 => "On2 VP6 with alpha",
        6 => "Screen Video 2",
        12 => "HEVC",
        13 => "AV1",
        _ => "unknown",
    };
    format!("{name} (FLV CodecID {id})")
}

fn legacy_audio_codec(format: u8) -> String {
    let name = match format {
        0 => "linear PCM (platform endian)",
        1 => "ADPCM",
        2 => "MP3",
        3 => "linear PCM",
        4..=6 => "Nellymoser",
        7 => "G.711 A-law",
        8 => "G.711 mu-law",
        11 => "Speex",
        14 => "MP3 8 kHz",
        15 => "device-specific sound",
        _ => "reserved",
    };
    format!("{name} (FLV SoundFormat {format})")
}

/// What a video tag carries, once its header is read.
enum VideoPacket {
    SequenceHeader(Bytes),
    Frame {
        cto_ms: i32,
        flagged_key: bool,
        data: Bytes,
    },
    Ignore,
}

/// What an audio tag carries, once its header is read.
enum AudioPacket {
    SequenceHeader(Bytes),
    Frame(Bytes),
    Ignore,
}

/// FrameType 5: video info or a command frame, no picture.
const FRAME_TYPE_COMMAND: u8 = 5;

fn parse_video(data: &Bytes) -> Result<VideoPacket, FlvError> {
    let mut r = Cursor::new("video", data);
    let first = r.u8("VideoTagHeader")?;
    if first & 0x80 != 0 {
        return parse_ex_video(first, r, data);
    }
    let frame_type = first >> 4;
    let codec = first & 0x0f;
    if frame_type == FRAME_TYPE_COMMAND {
        return Ok(VideoPacket::Ignore);
    }
    if codec != 7 {
        return Err(FlvError::UnsupportedVideoCodec {
            codec: legacy_video_codec(codec),
        });
    }
    if !(1..=4).contains(&frame_type) {
        return Err(FlvError::UnknownValue {
            media: "video",
            field: "FrameType",
            value: frame_type,
        });
    }
    let packet_type = r.u8("AVCPacketType")?;
    let cto_ms = r.i24("CompositionTime")?;
    let body = data.slice(r.pos..);
    match packet_type {
        0 => Ok(VideoPacket::SequenceHeader(body)),
        // 4 is a keyframe a server generated for seeking; an IDR check decides anyway.
        1 => Ok(VideoPacket::Frame {
            cto_ms,
            flagged_key: matches!(frame_type, 1 | 4),
            data: body,
        }),
        2 => Ok(VideoPacket::Ignore),
        value => Err(FlvError::UnknownValue {
            media: "video",
            field: "AVCPacketType",
            value,
        }),
    }
}

/// An Enhanced RTMP video tag (`IsExHeader` set): 3-bit FrameType, 4-bit PacketType, FourCC.
fn parse_ex_video(first: u8, mut r: Cursor<'_>, data: &Bytes) -> Result<VideoPacket, FlvError> {
    let frame_type = (first >> 4) & 0x07;
    let packet_type = r.skip_mod_ex(first & 0x0f)?;
    if packet_type == VIDEO_PACKET_TYPE_MULTITRACK {
        // OBS's multitrack output sends track 0 as ordinary tags and only the extra tracks
        // (other qualities for a server-side ladder) in multitrack packets: play track 0.
        tracing::trace!("Enhanced RTMP multitrack video packet ignored (extra tracks are not used)");
        return Ok(VideoPacket::Ignore);
    }
    let fourcc = r.fourcc("VideoFourCc")?;
    match &fourcc {
        b"avc1" => {}
        b"hvc1" | b"av01" | b"vp09" => {
            return Err(FlvError::UnsupportedVideoCodec {
                codec: format!("{} (Enhanced RTMP)", FourCc(fourcc)),
            });
        }
        _ => {
            return Err(FlvError::UnsupportedVideoCodec {
                codec: format!("{} (an unknown Enhanced RTMP FourCC)", FourCc(fourcc)),
            });
        }
    }
    // Command frames (other than metadata) carry a command byte, no picture.
    if frame_type == FRAME_TYPE_COMMAND {
        return Ok(VideoPacket::Ignore);
    }
    let flagged_key = matches!(frame_type, 1 | 4);
    match packet_type {
        0 => Ok(VideoPacket::SequenceHeader(data.slice(r.pos..))),
        1 => {
            let cto_ms = r.i24("CompositionTime")?;
            Ok(VideoPacket::Frame {
                cto_ms,
                flagged_key,
                data: data.slice(r.pos..),
            })
        }
        3 => Ok(VideoPacket::Frame {
            cto_ms: 0,
            flagged_key,
            data: data.slice(r.pos..),
        }),
        // SequenceEnd, Metadata (AMF colour/HDR information).
        2 | 4 => Ok(VideoPacket::Ignore),
        value => Err(FlvError::UnknownValue {
            media: "video",
            field: "VideoPacketType",
            value,
        }),
    }
}

fn parse_audio(data: &Bytes) -> Result<AudioPacket, FlvError> {
    let mut r = Cursor::new("audio", data);
    let first = r.u8("AudioTagHeader")?;
    let format = first >> 4;
    match format {
        10 => {
            let packet_type = r.u8("AACPacketType")?;
            let body = data.slice(r.pos..);
            match packet_type {
                0 => Ok(AudioPacket::SequenceHeader(body)),
                1 => Ok(AudioPacket::Frame(body)),
                value => Err(FlvError::UnknownValue {
                    media: "audio",
                    field: "AACPacketType",
                    value,
                }),
            }
        }
        // SoundFormat 9: Enhanced RTMP audio (ExAudioTagHeader), codec named by FourCC.
        9 => {
            let packet_type = r.skip_mod_ex(first & 0x0f)?;
            if packet_type == AUDIO_PACKET_TYPE_MULTITRACK {
                tracing::trace!("Enhanced RTMP multitrack audio packet ignored (extra tracks are not used)");
                return Ok(AudioPacket::Ignore);
            }
            let fourcc = r.fourcc("AudioFourCc")?;
            if &fourcc != b"mp4a" {
                return Err(FlvError::UnsupportedAudioCodec {
                    codec: format!("{} (Enhanced RTMP)", FourCc(fourcc)),
                });
            }
            match packet_type {
                0 => Ok(AudioPacket::SequenceHeader(data.slice(r.pos..))),
                1 => Ok(AudioPacket::Frame(data.slice(r.pos..))),
                // SequenceEnd, MultichannelConfig (AAC's channel layout is in its config).
                2 | 4 => Ok(AudioPacket::Ignore),
                value => Err(FlvError::UnknownValue {
                    media: "audio",
                    field: "AudioPacketType",
                    value,
                }),
            }
        }
        other => Err(FlvError::UnsupportedAudioCodec {
            codec: legacy_audio_codec(other),
        }),
    }
}

/// Samples per frame from an AudioSpecificConfig: 960 when the GASpecificConfig's
/// `frameLengthFlag` is set, else 1024 (also for object types without a GASpecificConfig,
/// and for records too short to say).
fn aac_frame_len(asc: &[u8]) -> i64 {
    struct Bits<'a>(&'a [u8], usize);
    impl Bits<'_> {
        fn read(&mut self, n: usize) -> Option<u32> {
            let mut v = 0u32;
            for _ in 0..n {
                let byte = *self.0.get(self.1 / 8)?;
                v = (v << 1) | u32::from((byte >> (7 - self.1 % 8)) & 1);
                self.1 += 1;
            }
            Some(v)
        }
        fn object_type(&mut self) -> Option<u32> {
            let t = self.read(5)?;
            if t == 31 {
                Some(32 + self.read(6)?)
            } else {
                Some(t)
            }
        }
        fn sampling_frequency(&mut self) -> Option<()> {
            if self.read(4)? == 15 {
                self.read(24)?;
            }
            Some(())
        }
    }
    let flag = (|| {
        let mut bits = Bits(asc, 0);
        let mut object_type = bits.object_type()?;
        bits.sampling_frequency()?;
        bits.read(4)?; // channelConfiguration
        if matches!(object_type, 5 | 29) {
            // Explicit SBR/PS signalling: the extension rate, then the core object type.
            bits.sampling_frequency()?;
            object_type = bits.object_type()?;
        }
        // Object types whose config is a GASpecificConfig (ISO/IEC 14496-3 §1.6.2.1).
        if !matches!(object_type, 1..=4 | 6 | 7 | 17 | 19..=23) {
            return None;
        }
        bits.read(1)
    })();
    if flag == Some(1) { 960 } else { 1024 }
}

impl FlvDemuxer {
    pub fn new(config: FlvConfig) -> Self {
        Self {
            config,
            clock: Clock::default(),
            video: None,
            audio: None,
        }
    }

    /// One video tag body. `Ok` may hold nothing (end of sequence, a command frame, a
    /// repeated identical sequence header, an empty tag).
    pub fn video(
        &mut self,
        timestamp: u32,
        data: Bytes,
        arrived: SystemTime,
    ) -> Result<Vec<FlvOutput>, FlvError> {
        let ms = self.clock.unwrap(timestamp);
        if data.is_empty() {
            return Ok(Vec::new());
        }
        match parse_video(&data)? {
            VideoPacket::Ignore => Ok(Vec::new()),
            VideoPacket::SequenceHeader(record) => {
                if self.video.as_ref().is_some_and(|v| v.record == record) {
                    return Ok(Vec::new());
                }
                let avc = AvcDecoderConfig::parse(&record).map_err(|source| FlvError::SequenceHeader {
                    media: "video",
                    source,
                })?;
                // Frames keep the record's NAL length size: the packager reads it from the
                // record (segmenter validation, `avcC` in the init segment).
                let nal_length_size = avc.nal_length_size();
                let info = TrackInfo {
                    id: VIDEO,
                    timescale: VIDEO_TIMESCALE,
                    video: Some(avc.sps_info().video_shape()),
                    codec: CodecConfig::H264(avc),
                };
                let grid = info.video.and_then(|v| v.frame_rate).and_then(FrameGrid::new);
                self.video = Some(VideoTrack {
                    record,
                    info: info.clone(),
                    nal_length_size,
                    grid,
                });
                Ok(vec![FlvOutput::Track(info)])
            }
            VideoPacket::Frame {
                cto_ms,
                flagged_key,
                data,
            } => {
                let track = self
                    .video
                    .as_mut()
                    .ok_or(FlvError::NoSequenceHeader { media: "video" })?;
                if data.is_empty() {
                    return Ok(Vec::new());
                }
                check_size(self.config, "video", &data)?;
                let mut idr = false;
                for nal in avcc_nal_units(&data, track.nal_length_size) {
                    idr |=
                        NalUnitType::of(nal.map_err(FlvError::BadNalUnits)?) == Some(NalUnitType::IDR_SLICE);
                }
                if idr != flagged_key {
                    tracing::debug!(
                        timestamp,
                        flagged_key,
                        idr,
                        "FLV FrameType disagrees with the NAL units; the IDR decides"
                    );
                }
                let raw = ms.saturating_mul(90);
                let cto = i64::from(cto_ms) * 90;
                let (dts, cto) = match &mut track.grid {
                    Some(g) => (g.snap(raw), g.snap_offset(cto)),
                    None => (raw, cto),
                };
                Ok(vec![FlvOutput::Frame(Frame {
                    track: VIDEO,
                    pts: dts.saturating_add(cto),
                    dts,
                    keyframe: idr,
                    payload: data,
                    arrived,
                })])
            }
        }
    }

    /// One audio tag body. `Ok` may hold nothing (a repeated identical sequence header, an
    /// empty tag).
    pub fn audio(
        &mut self,
        timestamp: u32,
        data: Bytes,
        arrived: SystemTime,
    ) -> Result<Vec<FlvOutput>, FlvError> {
        let ms = self.clock.unwrap(timestamp);
        if data.is_empty() {
            return Ok(Vec::new());
        }
        match parse_audio(&data)? {
            AudioPacket::Ignore => Ok(Vec::new()),
            AudioPacket::SequenceHeader(record) => {
                if self.audio.as_ref().is_some_and(|a| a.record == record) {
                    return Ok(Vec::new());
                }
                let asc = AudioSpecificConfig::parse(&record).map_err(|source| FlvError::SequenceHeader {
                    media: "audio",
                    source,
                })?;
                let info = TrackInfo {
                    id: AUDIO,
                    timescale: asc.sample_rate,
                    codec: CodecConfig::Aac(asc),
                    video: None,
                };
                self.audio = Some(AudioTrack {
                    frame_len: aac_frame_len(&record),
                    record,
                    info: info.clone(),
                    next_dts: None,
                });
                Ok(vec![FlvOutput::Track(info)])
            }
            AudioPacket::Frame(data) => {
                let track = self
                    .audio
                    .as_mut()
                    .ok_or(FlvError::NoSequenceHeader { media: "audio" })?;
                if data.is_empty() {
                    return Ok(Vec::new());
                }
                check_size(self.config, "audio", &data)?;
                let from_ms = ms_to_ticks(ms, track.info.timescale);
                let dts = match track.next_dts {
                    Some(next)
                        if from_ms.abs_diff(next) <= (AAC_REANCHOR_FRAMES * track.frame_len) as u64 =>
                    {
                        next
                    }
                    _ => from_ms,
                };
                track.next_dts = Some(dts.saturating_add(track.frame_len));
                Ok(vec![FlvOutput::Frame(Frame {
                    track: AUDIO,
                    pts: dts,
                    dts,
                    keyframe: true,
                    payload: data,
                    arrived,
                })])
            }
        }
    }

    /// Tracks configured so far by a sequence header (video first), with their latest
    /// configuration.
    pub fn tracks(&self) -> Vec<TrackInfo> {
        let video = self.video.as_ref().map(|v| v.info.clone());
        let audio = self.audio.as_ref().map(|a| a.info.clone());
        video.into_iter().chain(audio).collect()
    }
}

/// The tags of an FLV *file* (header, then tags each followed by PreviousTagSize) as
/// `(TagType, timestamp, body)`: how tests feed ffmpeg's FLV output to the demuxer. A
/// truncated last tag ends the list; `None` when the data is not an FLV file.
#[doc(hidden)]
pub fn file_tags(file: &[u8]) -> Option<Vec<(u8, u32, Bytes)>> {
    if file.get(..3)? != b"FLV" {
        return None;
    }
    let header = u32::from_be_bytes(file.get(5..9)?.try_into().ok()?) as usize;
    let mut pos = header.checked_add(4)?; // PreviousTagSize0
    let mut out = Vec::new();
    while let Some(h) = file.get(pos..pos.saturating_add(11)) {
        let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let Some(body) = file.get(pos + 11..pos + 11 + size) else {
            break;
        };
        out.push((h[0] & 0x1f, ts, Bytes::copy_from_slice(body)));
        pos += 11 + size + 4;
    }
    Some(out)
}

fn check_size(config: FlvConfig, media: &'static str, data: &Bytes) -> Result<(), FlvError> {
    if data.len() > config.max_frame_bytes as usize {
        return Err(FlvError::FrameTooLarge {
            media,
            size: data.len(),
            max: config.max_frame_bytes,
        });
    }
    Ok(())
}

/// `round(ms × rate / 1000)`, saturating.
pub(crate) fn ms_to_ticks(ms: i64, rate: u32) -> i64 {
    let t = (i128::from(ms) * i128::from(rate) + 500).div_euclid(1000);
    t.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// ffmpeg's FLV of `testsrc=size=160x90:rate=15` (libx264, `-g 15 -bf 2`) and a 44.1 kHz
    /// mono sine (aac), one second.
    const FIXTURE: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/testsrc-160x90-bf2-aac44k.flv"
    ));
    const TAG_AUDIO: u8 = 8;
    const TAG_VIDEO: u8 = 9;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms)
    }

    fn fixture_tags(kind: u8) -> Vec<(u32, Bytes)> {
        file_tags(FIXTURE)
            .expect("an FLV file")
            .into_iter()
            .filter(|t| t.0 == kind)
            .map(|(_, ts, body)| (ts, body))
            .collect()
    }

    fn demuxer() -> FlvDemuxer {
        FlvDemuxer::new(FlvConfig {
            max_frame_bytes: 1 << 20,
        })
    }

    /// Every tag of the fixture through one demuxer, shifted by `offset` ms (wrapping).
    fn demux_fixture(d: &mut FlvDemuxer, offset: u32) -> Vec<FlvOutput> {
        let mut out = Vec::new();
        for (kind, ts, body) in file_tags(FIXTURE).expect("an FLV file") {
            let ts = ts.wrapping_add(offset);
            let arrived = at(u64::from(ts));
            let r = match kind {
                TAG_VIDEO => d.video(ts, body, arrived),
                TAG_AUDIO => d.audio(ts, body, arrived),
                _ => continue,
            };
            out.extend(r.unwrap_or_else(|e| panic!("tag at {ts} ms: {e}")));
        }
        out
    }

    fn frames(out: &[FlvOutput], track: TrackId) -> Vec<&Frame> {
        out.iter()
            .filter_map(|o| match o {
                FlvOutput::Frame(f) if f.track == track => Some(f),
                _ => None,
            })
            .collect()
    }

    fn tracks_of(out: &[FlvOutput]) -> Vec<&TrackInfo> {
        out.iter()
            .filter_map(|o| match o {
                FlvOutput::Track(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    fn video_tag(first: u8, packet_type: u8, cto: i32, body: &[u8]) -> Bytes {
        let c = cto.to_be_bytes();
        let mut v = vec![first, packet_type, c[1], c[2], c[3]];
        v.extend_from_slice(body);
        Bytes::from(v)
    }

    /// The fixture's AVC sequence header record and its first (IDR) frame's AVCC payload.
    fn avc_record_and_idr() -> (Bytes, Bytes) {
        let tags = fixture_tags(TAG_VIDEO);
        (tags[0].1.slice(5..), tags[1].1.slice(5..))
    }

    fn aac_header(asc: &[u8]) -> Bytes {
        let mut v = vec![0xaf, 0];
        v.extend_from_slice(asc);
        Bytes::from(v)
    }

    fn aac_frame(payload: &[u8]) -> Bytes {
        let mut v = vec![0xaf, 1];
        v.extend_from_slice(payload);
        Bytes::from(v)
    }

    fn one_frame(out: Vec<FlvOutput>) -> Frame {
        match <[FlvOutput; 1]>::try_from(out) {
            Ok([FlvOutput::Frame(f)]) => f,
            other => panic!("expected one frame, got {other:?}"),
        }
    }

    #[test]
    fn real_sequence_headers_configure_both_tracks() {
        let mut d = demuxer();
        assert!(d.tracks().is_empty());
        let out = demux_fixture(&mut d, 0);
        let tracks = tracks_of(&out);
        assert_eq!(tracks.len(), 2, "one Track per sequence header: {tracks:?}");
        let video = tracks[0];
        assert_eq!((video.id, video.timescale), (VIDEO, 90_000));
        let shape = video.video.expect("video shape");
        assert_eq!((shape.width, shape.height), (160, 90));
        let CodecConfig::H264(avc) = &video.codec else {
            panic!("not H.264: {video:?}")
        };
        assert!(
            avc.codec_string().starts_with("avc1.64"),
            "{}",
            avc.codec_string()
        );
        let audio = tracks[1];
        assert_eq!((audio.id, audio.timescale, audio.video), (AUDIO, 44_100, None));
        let CodecConfig::Aac(asc) = &audio.codec else {
            panic!("not AAC: {audio:?}")
        };
        assert_eq!(
            (asc.codec_string().as_str(), asc.channel_config),
            ("mp4a.40.2", 1)
        );
        assert_eq!(d.tracks(), vec![video.clone(), audio.clone()]);
        assert_eq!(frames(&out, VIDEO).len(), 15);
    }

    #[test]
    fn arrival_time_is_passed_through() {
        let mut d = demuxer();
        let (record, idr) = avc_record_and_idr();
        d.video(0, video_tag(0x17, 0, 0, &record), at(0)).unwrap();
        let f = one_frame(d.video(40, video_tag(0x17, 1, 0, &idr), at(12_345)).unwrap());
        assert_eq!(f.arrived, at(12_345));
    }

    #[test]
    fn b_frames_get_pts_from_the_composition_time_offset() {
        let mut d = demuxer();
        let out = demux_fixture(&mut d, 0);
        let tags = fixture_tags(TAG_VIDEO);
        let video = frames(&out, VIDEO);
        // Tags after the sequence header map one to one onto frames.
        for (f, (ts, body)) in video.iter().zip(&tags[1..]) {
            let cto = i32::from_be_bytes([body[2], body[3], body[4], 0]) >> 8;
            // On the 15 fps grid (6000 ticks a frame), within a millisecond of the tag.
            assert!((f.dts - i64::from(*ts) * 90).abs() <= GRID_TOLERANCE_TICKS);
            assert_eq!((f.dts - video[0].dts) % 6000, 0, "dts {} is off the grid", f.dts);
            assert!((f.pts - f.dts - i64::from(cto) * 90).abs() <= GRID_TOLERANCE_TICKS);
            assert_eq!((f.pts - f.dts) % 6000, 0);
            // The payload is the tag's bytes after the 5-byte header, not a copy.
            assert_eq!(f.payload, body.slice(5..));
        }
        assert!(
            video.iter().any(|f| f.pts != f.dts),
            "-bf 2 gives reordered frames"
        );
        assert!(video.iter().all(|f| f.pts >= f.dts));
        assert!(video[0].keyframe);
        assert_eq!(
            video.iter().filter(|f| f.keyframe).count(),
            1,
            "-g 15 over one second"
        );
        assert!(video.windows(2).all(|w| w[0].dts < w[1].dts));
    }

    #[test]
    fn aac_sample_counter_gives_exact_durations_despite_millisecond_jitter() {
        let mut d = demuxer();
        let out = demux_fixture(&mut d, 0);
        let audio = frames(&out, AUDIO);
        assert!(audio.len() > 30);
        let tags = fixture_tags(TAG_AUDIO);
        let ms: Vec<u32> = tags[1..].iter().map(|t| t.0).collect();
        let steps: std::collections::BTreeSet<u32> = ms.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(steps.len() > 1, "the fixture's timestamps jitter: {steps:?}");
        assert_eq!(audio[0].dts, ms_to_ticks(i64::from(ms[0]), 44_100));
        for w in audio.windows(2) {
            assert_eq!(w[1].dts - w[0].dts, 1024);
        }
        assert!(audio.iter().all(|f| f.keyframe && f.pts == f.dts));
    }

    #[test]
    fn aac_counter_reanchors_on_a_gap_and_a_jump_back() {
        let mut d = demuxer();
        d.audio(0, aac_header(&[0x12, 0x08]), at(0)).unwrap(); // LC, 44.1 kHz, mono
        let dts =
            |d: &mut FlvDemuxer, ms: u32| one_frame(d.audio(ms, aac_frame(&[1, 2, 3]), at(0)).unwrap()).dts;
        assert_eq!(dts(&mut d, 1000), 44_100);
        // Jitter within two frames keeps the counter.
        assert_eq!(dts(&mut d, 1024), 44_100 + 1024);
        assert_eq!(dts(&mut d, 1070), 44_100 + 2048);
        // 100 ms of silence: re-anchor at the timestamp.
        assert_eq!(dts(&mut d, 1200), 52_920);
        assert_eq!(dts(&mut d, 1223), 52_920 + 1024);
        // A timestamp reset back to 0.
        assert_eq!(dts(&mut d, 0), 0);
        assert_eq!(dts(&mut d, 23), 1024);
    }

    #[test]
    fn aac_frame_length_follows_frame_length_flag() {
        assert_eq!(aac_frame_len(&[0x12, 0x08]), 1024);
        assert_eq!(aac_frame_len(&[0x12, 0x0c]), 960); // frameLengthFlag after 4-bit channels
        assert_eq!(aac_frame_len(&[0x12]), 1024);
        // HE-AAC (explicit SBR, type 5) over an LC core with the flag set.
        // 00101 0110 0010 0011 00010 1 -> type 5, 24 kHz, stereo, ext 48 kHz, core LC, 960.
        assert_eq!(aac_frame_len(&[0x2b, 0x11, 0x8a, 0x00]), 960);
        let mut d = demuxer();
        d.audio(0, aac_header(&[0x12, 0x0c]), at(0)).unwrap();
        let a = one_frame(d.audio(0, aac_frame(&[1]), at(0)).unwrap());
        let b = one_frame(d.audio(22, aac_frame(&[1]), at(0)).unwrap());
        assert_eq!(b.dts - a.dts, 960);
    }

    #[test]
    fn millisecond_jitter_is_snapped_to_the_frame_grid_and_gaps_reanchor() {
        let mut g = FrameGrid::new((30, 1)).unwrap();
        // 30 fps as FLV rounds it: 0, 33, 67, 100, 133, 167, 200 ms.
        let got: Vec<i64> = [0, 33, 67, 100, 133, 167, 200]
            .iter()
            .map(|ms| g.snap(ms * 90))
            .collect();
        assert_eq!(got, [0, 3000, 6000, 9000, 12000, 15000, 18000]);
        // A dropped frame keeps the grid; a jump of 50 ms (off the grid) re-anchors.
        assert_eq!(g.snap(267 * 90), 24000);
        assert_eq!(g.snap(317 * 90), 317 * 90);
        assert_eq!(g.snap(350 * 90), 317 * 90 + 3000);
        // A step back re-anchors too (the segmenter judges it).
        assert_eq!(g.snap(100 * 90), 9000);
        // 29.97 fps: 3003 ticks a frame; B-frame offsets of whole frames.
        let mut g = FrameGrid::new((30000, 1001)).unwrap();
        let got: Vec<i64> = [0, 33, 67, 100].iter().map(|ms| g.snap(ms * 90)).collect();
        assert_eq!(got, [0, 3003, 6006, 9009]);
        assert_eq!(g.snap_offset(67 * 90), 6006);
        assert_eq!(g.snap_offset(-33 * 90), -3003);
        assert_eq!(g.snap_offset(10 * 90), 900, "not whole frames: kept");
        // 59.94 and 23.976 fps stay on the grid for an hour of millisecond timestamps.
        for (num, den) in [(60000i64, 1001i64), (24000, 1001), (30000, 1001)] {
            let mut g = FrameGrid::new((num as u32, den as u32)).unwrap();
            for k in 0..3600 * num / den {
                let ms = (k * 1000 * den + num / 2) / num;
                assert_eq!(g.snap(ms * 90), g.at(k), "{num}/{den} frame {k}");
            }
        }
        // Increasing input never comes out decreasing.
        let mut g = FrameGrid::new((30, 1)).unwrap();
        let outs: Vec<i64> = [0, 2880, 2940, 3100].iter().map(|&r| g.snap(r)).collect();
        assert!(outs.windows(2).all(|w| w[0] < w[1]), "{outs:?}");
        assert!(
            FrameGrid::new((0, 1)).is_none()
                && FrameGrid::new((1, 0)).is_none()
                && FrameGrid::new((1000, 1)).is_none()
        );
    }

    #[test]
    fn timestamps_unwrap_past_u32_max() {
        let mut d = demuxer();
        // The fixture starting 500 ms before the 32-bit millisecond clock wraps.
        let offset = u32::MAX - 499;
        let out = demux_fixture(&mut d, offset);
        let video = frames(&out, VIDEO);
        let audio = frames(&out, AUDIO);
        assert!(video.windows(2).all(|w| w[0].dts < w[1].dts));
        assert!(audio.windows(2).all(|w| w[1].dts - w[0].dts == 1024));
        let last = video.last().unwrap();
        let tags = fixture_tags(TAG_VIDEO);
        let last_ms = i64::from(offset) + i64::from(tags.last().unwrap().0);
        assert!(last_ms > i64::from(u32::MAX));
        assert!((last.dts - last_ms * 90).abs() <= GRID_TOLERANCE_TICKS);
        // A small step back across the wrap stays a step back.
        let mut c = Clock::default();
        assert_eq!(c.unwrap(5), 5);
        assert_eq!(c.unwrap(u32::MAX - 4), -5);
        assert_eq!(c.unwrap(10), 10);
    }

    fn assert_fatal(err: FlvError, text: &str) {
        assert!(err.is_fatal(), "{err} should end the session");
        assert_eq!(err.status_description().as_deref(), Some(text));
        assert_eq!(err.to_string(), text);
    }

    #[test]
    fn other_video_codecs_are_refused_by_name() {
        let mut d = demuxer();
        let hevc = d.video(0, video_tag(0x1c, 0, 0, &[1, 2, 3]), at(0)).unwrap_err();
        assert_fatal(
            hevc,
            "video codec HEVC (FLV CodecID 12) is not supported; publish H.264",
        );
        let vp6 = d.video(0, Bytes::from_static(&[0x14, 0, 0]), at(0)).unwrap_err();
        assert_fatal(
            vp6,
            "video codec On2 VP6 (FLV CodecID 4) is not supported; publish H.264",
        );
        for fourcc in ["hvc1", "av01", "vp09"] {
            // IsExHeader | FrameType 1 | PacketType 0 (SequenceStart), then the FourCC.
            let mut tag = vec![0x90];
            tag.extend_from_slice(fourcc.as_bytes());
            tag.extend_from_slice(&[1, 2, 3]);
            let err = d.video(0, Bytes::from(tag), at(0)).unwrap_err();
            assert_fatal(
                err,
                &format!("video codec {fourcc} (Enhanced RTMP) is not supported; publish H.264"),
            );
        }
        // Behind a ModEx prefix (2 bytes of modifier data, then PacketType 1).
        let tag = Bytes::from_static(&[0x97, 1, 0xaa, 0xbb, 0x01, b'h', b'v', b'c', b'1', 0, 0, 0]);
        assert!(matches!(
            d.video(0, tag, at(0)),
            Err(FlvError::UnsupportedVideoCodec { codec }) if codec == "hvc1 (Enhanced RTMP)"
        ));
        // Multitrack packets (OBS's extra tracks) are ignored: track 0 comes as ordinary tags.
        let tag = Bytes::from_static(&[0x96, 0x00, b'a', b'v', b'c', b'1']);
        assert_eq!(d.video(0, tag, at(0)).unwrap(), Vec::new());
        assert!(d.tracks().is_empty());
    }

    #[test]
    fn other_audio_codecs_are_refused_by_name() {
        let mut d = demuxer();
        let mp3 = d
            .audio(0, Bytes::from_static(&[0x2f, 0xff, 0xfb]), at(0))
            .unwrap_err();
        assert_fatal(
            mp3,
            "audio codec MP3 (FLV SoundFormat 2) is not supported; publish AAC",
        );
        let speex = d.audio(0, Bytes::from_static(&[0xb6, 0]), at(0)).unwrap_err();
        assert_fatal(
            speex,
            "audio codec Speex (FLV SoundFormat 11) is not supported; publish AAC",
        );
        let alaw = d.audio(0, Bytes::from_static(&[0x72, 0]), at(0)).unwrap_err();
        assert_fatal(
            alaw,
            "audio codec G.711 A-law (FLV SoundFormat 7) is not supported; publish AAC",
        );
        let opus = d
            .audio(0, Bytes::from_static(b"\x90Opus\x01\x02"), at(0))
            .unwrap_err();
        assert_fatal(
            opus,
            "audio codec Opus (Enhanced RTMP) is not supported; publish AAC",
        );
    }

    #[test]
    fn enhanced_rtmp_avc1_matches_legacy_avc() {
        let tags = fixture_tags(TAG_VIDEO);
        let mut legacy = demuxer();
        let mut enhanced = demuxer();
        for (ts, body) in &tags {
            let want = legacy.video(*ts, body.clone(), at(0)).unwrap();
            let frame_type = body[0] >> 4;
            let packet = body[1];
            let cto = &body[2..5];
            let mut ex = vec![0x80 | (frame_type << 4)];
            if packet == 1 && cto == [0, 0, 0] {
                ex[0] |= 3; // CodedFramesX: no composition time offset
                ex.extend_from_slice(b"avc1");
            } else {
                ex[0] |= packet;
                ex.extend_from_slice(b"avc1");
                if packet == 1 {
                    ex.extend_from_slice(cto);
                }
            }
            ex.extend_from_slice(&body[5..]);
            assert_eq!(enhanced.video(*ts, Bytes::from(ex), at(0)).unwrap(), want);
        }
        assert_eq!(enhanced.tracks(), legacy.tracks());
        // Metadata and SequenceEnd produce nothing.
        assert!(
            enhanced
                .video(9, Bytes::from_static(b"\x94avc1\x02\x00"), at(0))
                .unwrap()
                .is_empty()
        );
        assert!(
            enhanced
                .video(9, Bytes::from_static(b"\x92avc1"), at(0))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn enhanced_rtmp_mp4a_is_aac() {
        let mut d = demuxer();
        let out = d
            .audio(0, Bytes::from_static(b"\x90mp4a\x12\x08"), at(0))
            .unwrap();
        assert!(matches!(&out[..], [FlvOutput::Track(t)] if t.timescale == 44_100));
        let f = one_frame(
            d.audio(10, Bytes::from_static(b"\x91mp4a\x21\x00"), at(0))
                .unwrap(),
        );
        assert_eq!((f.dts, &f.payload[..]), (441, &[0x21, 0][..]));
    }

    #[test]
    fn idr_decides_keyframes_not_the_frame_type_flag() {
        let mut d = demuxer();
        let tags = fixture_tags(TAG_VIDEO);
        d.video(0, tags[0].1.clone(), at(0)).unwrap();
        // The IDR flagged as an inter frame is a keyframe.
        let mut idr = tags[1].1.to_vec();
        idr[0] = 0x27;
        assert!(one_frame(d.video(0, Bytes::from(idr), at(0)).unwrap()).keyframe);
        // A P frame flagged as a keyframe is not.
        let mut p = tags[2].1.to_vec();
        assert_eq!(p[0], 0x27);
        p[0] = 0x17;
        assert!(!one_frame(d.video(66, Bytes::from(p), at(0)).unwrap()).keyframe);
    }

    #[test]
    fn garbage_nal_framing_drops_the_tag_only() {
        let mut d = demuxer();
        let (record, idr) = avc_record_and_idr();
        d.video(0, video_tag(0x17, 0, 0, &record), at(0)).unwrap();
        // A length prefix running past the end, and a zero-length NAL unit.
        for bad in [&[0, 0, 1, 0, 0x65, 1][..], &[0, 0, 0, 0, 0, 0, 0, 1, 0x65]] {
            let err = d.video(0, video_tag(0x17, 1, 0, bad), at(0)).unwrap_err();
            assert!(matches!(err, FlvError::BadNalUnits(_)), "{err}");
            assert!(!err.is_fatal() && err.status_description().is_none());
        }
        assert!(one_frame(d.video(33, video_tag(0x17, 1, 0, &idr), at(0)).unwrap()).keyframe);
    }

    #[test]
    fn frames_before_a_sequence_header_are_dropped() {
        let mut d = demuxer();
        let (_, idr) = avc_record_and_idr();
        let err = d.video(0, video_tag(0x17, 1, 0, &idr), at(0)).unwrap_err();
        assert_eq!(err, FlvError::NoSequenceHeader { media: "video" });
        assert!(!err.is_fatal());
        let err = d.audio(0, aac_frame(&[1, 2]), at(0)).unwrap_err();
        assert_eq!(err, FlvError::NoSequenceHeader { media: "audio" });
        assert!(!err.is_fatal());
    }

    #[test]
    fn oversize_frames_are_dropped() {
        let (record, idr) = avc_record_and_idr();
        let mut d = FlvDemuxer::new(FlvConfig {
            max_frame_bytes: idr.len() as u32 - 1,
        });
        d.video(0, video_tag(0x17, 0, 0, &record), at(0)).unwrap();
        let err = d.video(0, video_tag(0x17, 1, 0, &idr), at(0)).unwrap_err();
        assert!(
            matches!(err, FlvError::FrameTooLarge { media: "video", .. }),
            "{err}"
        );
        assert!(!err.is_fatal());
        d.audio(0, aac_header(&[0x12, 0x08]), at(0)).unwrap();
        let big = vec![0; idr.len()];
        assert!(matches!(
            d.audio(0, aac_frame(&big), at(0)),
            Err(FlvError::FrameTooLarge { media: "audio", .. })
        ));
    }

    #[test]
    fn a_changed_sequence_header_is_a_new_track_a_repeated_one_is_nothing() {
        let mut d = demuxer();
        let (record, idr) = avc_record_and_idr();
        let first = d.video(0, video_tag(0x17, 0, 0, &record), at(0)).unwrap();
        assert_eq!(tracks_of(&first).len(), 1);
        assert!(
            d.video(40, video_tag(0x17, 0, 0, &record), at(0))
                .unwrap()
                .is_empty()
        );
        // The same parameter sets with 2-byte NAL lengths: a new configuration, and frames
        // are read with it.
        let mut two = record.to_vec();
        two[4] = 0xfd;
        let out = d.video(80, video_tag(0x17, 0, 0, &two), at(0)).unwrap();
        let [FlvOutput::Track(t)] = &out[..] else {
            panic!("{out:?}")
        };
        let CodecConfig::H264(avc) = &t.codec else {
            panic!()
        };
        assert_eq!(avc.nal_length_size(), 2);
        assert_eq!(d.tracks()[0], *t);
        let nal = &idr[4..];
        let mut short = (nal.len() as u16).to_be_bytes().to_vec();
        short.extend_from_slice(nal);
        let f = one_frame(d.video(120, video_tag(0x17, 1, 0, &short), at(0)).unwrap());
        assert_eq!(&f.payload[..], &short[..], "kept with the record's length size");
        assert!(d.video(120, video_tag(0x17, 1, 0, &idr), at(0)).is_err());

        assert_eq!(
            tracks_of(&d.audio(0, aac_header(&[0x12, 0x08]), at(0)).unwrap()).len(),
            1
        );
        assert!(d.audio(0, aac_header(&[0x12, 0x08]), at(0)).unwrap().is_empty());
        let out = d.audio(0, aac_header(&[0x11, 0x90]), at(0)).unwrap();
        assert!(matches!(&out[..], [FlvOutput::Track(t)] if t.timescale == 48_000));
        assert_eq!(d.tracks().len(), 2);
    }

    #[test]
    fn a_bad_sequence_header_keeps_the_previous_configuration() {
        let mut d = demuxer();
        let (record, idr) = avc_record_and_idr();
        d.video(0, video_tag(0x17, 0, 0, &record), at(0)).unwrap();
        let err = d
            .video(40, video_tag(0x17, 0, 0, &record[..10]), at(0))
            .unwrap_err();
        assert!(
            matches!(err, FlvError::SequenceHeader { media: "video", .. }),
            "{err}"
        );
        assert!(!err.is_fatal());
        assert!(one_frame(d.video(80, video_tag(0x17, 1, 0, &idr), at(0)).unwrap()).keyframe);
        // configurationVersion 2: valid framing, unsupported, so the stream cannot work.
        let mut v2 = record.to_vec();
        v2[0] = 2;
        assert!(
            d.video(90, video_tag(0x17, 0, 0, &v2), at(0))
                .unwrap_err()
                .is_fatal()
        );
    }

    #[test]
    fn tags_without_media_produce_nothing() {
        let mut d = demuxer();
        let (record, _) = avc_record_and_idr();
        assert!(d.video(0, Bytes::new(), at(0)).unwrap().is_empty());
        assert!(d.audio(0, Bytes::new(), at(0)).unwrap().is_empty());
        // Video info/command frame, even of a codec we refuse.
        assert!(
            d.video(0, Bytes::from_static(&[0x52, 0]), at(0))
                .unwrap()
                .is_empty()
        );
        d.video(0, video_tag(0x17, 0, 0, &record), at(0)).unwrap();
        // End of sequence; a NALU packet with no NAL units.
        assert!(d.video(0, video_tag(0x17, 2, 0, &[]), at(0)).unwrap().is_empty());
        assert!(d.video(0, video_tag(0x27, 1, 0, &[]), at(0)).unwrap().is_empty());
    }

    #[test]
    fn truncated_and_unknown_headers_are_named() {
        let mut d = demuxer();
        let err = d.video(0, Bytes::from_static(&[0x17, 1, 0]), at(0)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "video tag: CompositionTime at byte 2: needs 3 bytes, 1 left"
        );
        assert!(!err.is_fatal());
        let err = d
            .video(0, Bytes::from_static(&[0x17, 9, 0, 0, 0]), at(0))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "video tag: AVCPacketType 9 is reserved or unknown"
        );
        assert!(
            !d.audio(0, Bytes::from_static(&[0xaf]), at(0))
                .unwrap_err()
                .is_fatal()
        );
        assert!(
            !d.video(0, Bytes::from_static(b"\x90av"), at(0))
                .unwrap_err()
                .is_fatal()
        );
    }
}
