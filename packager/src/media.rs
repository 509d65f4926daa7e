//! The media model every stage shares: tracks and their frames (access units).

use crate::codec::{AudioSpecificConfig, AvcDecoderConfig};
use bytes::Bytes;
use std::time::SystemTime;

/// A track's number within one source (a publisher connection, the test source, a rendition).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub u32);

/// What a track carries and how to decode it.
#[derive(Debug, Clone, PartialEq)]
pub enum CodecConfig {
    /// H.264; frames are AVCC (length-prefixed NAL units, `nal_length_size` from the record).
    H264(AvcDecoderConfig),
    /// AAC; frames are raw AAC access units (no ADTS header).
    Aac(AudioSpecificConfig),
}

/// A track of a source: codec, timescale and what is known of its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackInfo {
    pub id: TrackId,
    /// Ticks per second of this track's pts/dts (90 000 for video, the sample rate for audio).
    pub timescale: u32,
    pub codec: CodecConfig,
    pub video: Option<VideoShape>,
}

/// Picture size and, when the source declares one, its frame rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoShape {
    pub width: u32,
    pub height: u32,
    /// Frames per second as `(num, den)`.
    pub frame_rate: Option<(u32, u32)>,
}

/// One access unit of one track.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub track: TrackId,
    /// Presentation time in the track's timescale.
    pub pts: i64,
    /// Decode time in the track's timescale (equal to `pts` without B-frames).
    pub dts: i64,
    /// A sync sample: decoding can start here.
    pub keyframe: bool,
    /// AVCC for H.264, raw AAC for AAC. Shared, never copied per viewer.
    pub payload: Bytes,
    /// Wall-clock instant the frame reached the origin; it travels to the viewer (prft,
    /// EXT-X-PROGRAM-DATE-TIME) so latency is measured, not guessed.
    pub arrived: SystemTime,
}
