//! Test fixtures shared by the crate's unit tests: real codec records and tracks.

use crate::codec::{AudioSpecificConfig, AvcDecoderConfig};
use crate::media::{CodecConfig, TrackId, TrackInfo, VideoShape};

/// x264's SPS and PPS for 320x240 High@1.3 (from `ffmpeg -c:v libx264 -f h264`).
pub(crate) const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x0d, 0xac, 0xb2, 0x02, 0x83, 0xf6, 0x02, 0x20, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00,
    0x00, 0x07, 0x91, 0xe2, 0x85, 0x49,
];
pub(crate) const PPS: &[u8] = &[0x68, 0xeb, 0xc3, 0xcb, 0x22, 0xc0];

pub fn video_track() -> TrackInfo {
    TrackInfo {
        id: TrackId(1),
        timescale: 90_000,
        codec: CodecConfig::H264(AvcDecoderConfig::from_parameter_sets(&[SPS], &[PPS]).unwrap()),
        video: Some(VideoShape {
            width: 320,
            height: 240,
            frame_rate: Some((30, 1)),
        }),
    }
}

pub fn audio_track() -> TrackInfo {
    TrackInfo {
        id: TrackId(2),
        timescale: 48_000,
        codec: CodecConfig::Aac(AudioSpecificConfig::new(2, 48_000, 2).unwrap()),
        video: None,
    }
}

/// Video frame `i` of a 30 fps track (90 kHz) with a keyframe every `gop` frames; its
/// payload is a one-NAL AVCC access unit.
pub fn video_frame(i: i64, gop: i64) -> crate::media::Frame {
    let dts = i * 3000;
    let key = i % gop == 0;
    crate::media::Frame {
        track: TrackId(1),
        pts: dts,
        dts,
        keyframe: key,
        payload: bytes::Bytes::from(vec![0, 0, 0, 2, if key { 0x65 } else { 0x41 }, i as u8]),
        arrived: std::time::UNIX_EPOCH
            + std::time::Duration::from_micros(1_790_000_000_000_000 + (dts as u64) * 100 / 9),
    }
}

/// AAC frame `i` of a 48 kHz track; frame 0 is the encoder's priming frame at -1024.
pub fn audio_frame(i: i64) -> crate::media::Frame {
    let dts = i * 1024 - 1024;
    crate::media::Frame {
        track: TrackId(2),
        pts: dts,
        dts,
        keyframe: true,
        payload: bytes::Bytes::from(vec![0x21, i as u8]),
        arrived: std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_790_000_000_000_000),
    }
}
