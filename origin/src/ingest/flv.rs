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
    /// bytes). Frames that follow use it.
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
    /// A stream feature we do not handle (Enhanced RTMP multitrack). Fatal.
    #[error("{what} is not supported")]
    UnsupportedFeature { what: &'static str },
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
            Self::UnsupportedVideoCodec { .. }
            | Self::UnsupportedAudioCodec { .. }
            | Self::UnsupportedFeature { .. } => true,
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
}

#[derive(Debug)]
struct AudioTrack {
    record: Bytes,
    info: TrackInfo,
    /// Samples per AAC frame (1024, or 960).
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
        return Err(FlvError::UnsupportedFeature {
            what: "Enhanced RTMP multitrack video",
        });
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
                return Err(FlvError::UnsupportedFeature {
                    what: "Enhanced RTMP multitrack audio",
                });
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
                self.video = Some(VideoTrack {
                    record,
                    info: info.clone(),
                    nal_length_size,
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
                    .as_ref()
                    .ok_or(FlvError::NoSequenceHeader { media: "video" })?;
                if data.is_empty() {
                    return Ok(Vec::new());
                }
                self.check_size("video", &data)?;
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
                let dts = ms.saturating_mul(90);
                Ok(vec![FlvOutput::Frame(Frame {
                    track: VIDEO,
                    pts: dts.saturating_add(i64::from(cto_ms) * 90),
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
                if self.audio.is_none() {
                    return Err(FlvError::NoSequenceHeader { media: "audio" });
                }
                if data.is_empty() {
                    return Ok(Vec::new());
                }
                self.check_size("audio", &data)?;
                let track = self
                    .audio
                    .as_mut()
                    .ok_or(FlvError::NoSequenceHeader { media: "audio" })?;
                let from_ms = ms_to_ticks(ms, track.info.timescale);
                let dts = match track.next_dts {
                    Some(next) if (from_ms - next).abs() <= AAC_REANCHOR_FRAMES * track.frame_len => next,
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

    fn check_size(&self, media: &'static str, data: &Bytes) -> Result<(), FlvError> {
        if data.len() > self.config.max_frame_bytes as usize {
            return Err(FlvError::FrameTooLarge {
                media,
                size: data.len(),
                max: self.config.max_frame_bytes,
            });
        }
        Ok(())
    }
}

/// `round(ms × rate / 1000)`, saturating.
pub(crate) fn ms_to_ticks(ms: i64, rate: u32) -> i64 {
    let t = (i128::from(ms) * i128::from(rate) + 500).div_euclid(1000);
    t.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}
