//! CMAF (ISO/IEC 23000-19) tracks: init segments and chunks written by [`mux`], and a small
//! box reader ([`read`]) that checks what we write and what an edge or test receives.
//!
//! One track per file, CMAF style: video and audio are separate renditions with their own
//! init segment. A chunk is `prft` + `moof` + `mdat`; a part or segment is chunks in a row.

pub mod mux;
pub mod read;

pub use mux::{ChunkSample, MuxError, chunk, init_segment};

/// `sample_flags` of a sync sample: depends on no other sample.
pub const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// `sample_flags` of a non-sync sample: depends on others, `sample_is_non_sync_sample` set.
pub const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// A wall-clock instant as a 64-bit NTP timestamp (32.32 fixed point), as `prft` carries it.
/// Instants before 1970 map to the Unix epoch.
pub fn ntp_timestamp(t: std::time::SystemTime) -> u64 {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs().wrapping_add(NTP_UNIX_OFFSET_SECS);
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The wall-clock instant of a 64-bit NTP timestamp (inverse of [`ntp_timestamp`] to within
/// a nanosecond).
pub fn from_ntp_timestamp(ntp: u64) -> std::time::SystemTime {
    let secs = (ntp >> 32).saturating_sub(NTP_UNIX_OFFSET_SECS);
    let nanos = ((ntp & 0xffff_ffff) * 1_000_000_000).div_ceil(1 << 32);
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs) + std::time::Duration::from_nanos(nanos)
}

#[cfg(test)]
mod tests {
    use super::read::{fragments, init_info};
    use super::*;
    use crate::fixtures::{audio_track, video_track};
    use crate::media::CodecConfig;
    use bytes::Bytes;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    #[test]
    fn ntp_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_790_000_000, 123_456_789);
        let back = from_ntp_timestamp(ntp_timestamp(t));
        let diff = back.duration_since(t).unwrap_or_else(|e| e.duration());
        assert!(diff <= Duration::from_nanos(1), "{diff:?}");
        assert_eq!(ntp_timestamp(UNIX_EPOCH) >> 32, NTP_UNIX_OFFSET_SECS);
    }

    #[test]
    fn video_init_reads_back() {
        let track = video_track();
        let init = init_segment(&track).unwrap();
        let info = init_info(&init).unwrap();
        let CodecConfig::H264(avc) = &track.codec else {
            unreachable!()
        };
        assert_eq!(&info.major_brand, b"iso6");
        assert_eq!((info.track_id, info.timescale), (1, 90_000));
        assert_eq!((&info.handler, &info.sample_entry), (b"vide", b"avc1"));
        assert_eq!((info.width, info.height), (320, 240));
        assert_eq!(info.codec_config, avc.to_bytes().to_vec());
        assert!(info.has_trex);
    }

    #[test]
    fn audio_init_reads_back() {
        let track = audio_track();
        let init = init_segment(&track).unwrap();
        let info = init_info(&init).unwrap();
        assert_eq!((&info.handler, &info.sample_entry), (b"soun", b"mp4a"));
        assert_eq!((info.track_id, info.timescale), (2, 48_000));
        let CodecConfig::Aac(asc) = &track.codec else {
            unreachable!()
        };
        assert_eq!(info.codec_config, asc.raw.to_vec());
    }

    #[test]
    fn chunk_reads_back_byte_exact() {
        let samples = vec![
            ChunkSample {
                duration: 3000,
                composition_offset: 6000,
                sync: true,
                data: Bytes::from_static(&[0, 0, 0, 2, 0x65, 1]),
            },
            ChunkSample {
                duration: 3003,
                composition_offset: 0,
                sync: false,
                data: Bytes::from_static(&[0, 0, 0, 3, 0x41, 2, 3]),
            },
        ];
        let arrived = UNIX_EPOCH + Duration::from_millis(1_790_000_000_250);
        let bytes = chunk(1, 7, 900_000, &samples, Some(arrived)).unwrap();
        let frags = fragments(&bytes).unwrap();
        assert_eq!(frags.len(), 1);
        let f = &frags[0];
        assert_eq!((f.sequence, f.track_id, f.base_decode_time), (7, 1, 900_000));
        let (when, media_time) = f.prft.unwrap();
        assert_eq!(media_time, 900_000);
        assert!(when.duration_since(arrived).unwrap_or_else(|e| e.duration()) < Duration::from_micros(1));
        for (got, want) in f.samples.iter().zip(&samples) {
            assert_eq!(got.duration, want.duration);
            assert_eq!(got.composition_offset, want.composition_offset);
            assert_eq!(got.is_sync(), want.sync);
            assert_eq!(&bytes[got.data_range.clone()], &want.data[..]);
        }
        assert_eq!(f.samples[1].decode_time, 903_000);
        // No prft without an instant; two chunks in a row read as two fragments.
        let mut two = chunk(1, 8, 906_003, &samples[1..], None).unwrap().to_vec();
        two.extend_from_slice(&chunk(1, 9, 909_006, &samples[..1], None).unwrap());
        let frags = fragments(&two).unwrap();
        assert_eq!(frags.iter().map(|f| f.sequence).collect::<Vec<_>>(), [8, 9]);
        assert!(frags[0].prft.is_none());
        assert_eq!(chunk(1, 1, 0, &[], None), Err(MuxError::Empty));
    }

    #[test]
    fn reader_refuses_every_truncation_without_panicking() {
        let samples = [ChunkSample {
            duration: 1024,
            composition_offset: 0,
            sync: true,
            data: Bytes::from_static(&[1, 2, 3, 4]),
        }];
        let bytes = chunk(2, 1, 0, &samples, Some(SystemTime::now())).unwrap();
        for cut in 1..bytes.len() {
            assert!(fragments(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let init = init_segment(&video_track()).unwrap();
        for cut in 0..init.len() {
            assert!(init_info(&init[..cut]).is_err(), "cut at {cut}");
        }
    }
}
