//! Popcast's packager: turns a live source's frames into what viewers fetch.
//!
//! Owns: the media model ([`media::Frame`], [`media::TrackInfo`]), codec configuration
//! records ([`codec`]), and, behind the one FFmpeg boundary ([`ffmpeg`]), the built-in test
//! source. The CMAF muxer, segmenter, LL-HLS/LL-DASH manifests, live store (issue #3) and
//! the ABR ladder (issue #5) will live here too.
//!
//! Must not: open sockets or know about RTMP, WHIP, HTTP or the relay (those live in origin
//! and edge-node); read clocks inside protocol cores (time is passed in). FFmpeg is used only
//! inside the `ffmpeg` module.

pub mod codec;
#[cfg(feature = "ffmpeg")]
pub mod ffmpeg;
pub mod media;

/// Entry points for the fuzz targets in `fuzz/`, also run over the seed corpus by the tests.
/// Each asserts an invariant, not just "no panic".
#[doc(hidden)]
pub mod fuzzing {
    use crate::codec::{
        AudioSpecificConfig, AvcDecoderConfig, MAX_PICTURE_SIDE, NalUnitType, OpusConfig, Sps,
        annexb_nal_units, annexb_to_avcc, avcc_nal_units,
    };

    /// A PPS to pair with fuzzed SPSs (x264's, for 4:2:0 High).
    const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

    /// `avcC` records: whatever parses writes back to bytes that parse to the same record,
    /// and carries its first SPS parsed.
    pub fn avc_config(data: &[u8]) {
        if let Ok(record) = AvcDecoderConfig::parse(data) {
            let again = AvcDecoderConfig::parse(&record.to_bytes()).expect("our own output parses");
            assert_eq!(again, record);
            let first = record.sps().first().expect("a record has an SPS");
            assert_eq!(Sps::parse(first).as_ref(), Ok(record.sps_info()));
        }
        // The same bytes as an AVCC access unit with each legal length size.
        for size in [1, 2, 4] {
            for nal in avcc_nal_units(data, size) {
                if nal.is_err() {
                    break;
                }
            }
        }
    }

    /// Annex B: conversion to AVCC keeps exactly the NAL units the splitter finds.
    pub fn annexb(data: &[u8]) {
        if let Ok(avcc) = annexb_to_avcc(data) {
            let from_avcc: Vec<&[u8]> = avcc_nal_units(&avcc, 4)
                .collect::<Result<_, _>>()
                .expect("our own AVCC parses");
            let from_annexb: Vec<&[u8]> = annexb_nal_units(data).collect();
            assert_eq!(from_avcc, from_annexb);
        }
    }

    /// AudioSpecificConfig: the common (two-byte) form rebuilds to the same fields.
    pub fn aac_config(data: &[u8]) {
        if let Ok(asc) = AudioSpecificConfig::parse(data) {
            assert!(asc.sample_rate > 0);
            if let Ok(rebuilt) =
                AudioSpecificConfig::new(asc.object_type, asc.sample_rate, asc.channel_config)
            {
                let reparsed = AudioSpecificConfig::parse(&rebuilt.raw).expect("our own record parses");
                assert_eq!(
                    (
                        reparsed.object_type,
                        reparsed.sample_rate,
                        reparsed.channel_config
                    ),
                    (asc.object_type, asc.sample_rate, asc.channel_config)
                );
            }
        }
    }

    /// SPS NAL units: what parses is within our limits and the spec's ranges, its display
    /// size fits in its coded size, and as the first SPS of an `avcC` it round-trips.
    pub fn sps(data: &[u8]) {
        if let Ok(sps) = Sps::parse(data) {
            assert!((1..=MAX_PICTURE_SIDE).contains(&sps.width), "{sps:?}");
            assert!((1..=MAX_PICTURE_SIDE).contains(&sps.height), "{sps:?}");
            assert!(sps.width <= sps.coded_width() && sps.height <= sps.coded_height());
            assert!(sps.coded_width() <= MAX_PICTURE_SIDE && sps.coded_height() <= MAX_PICTURE_SIDE);
            assert!(sps.seq_parameter_set_id <= 31 && sps.chroma_format_idc <= 3);
            assert!((8..=14).contains(&sps.bit_depth_luma) && (8..=14).contains(&sps.bit_depth_chroma));
            assert!(sps.max_num_ref_frames <= 16 && sps.max_num_reorder_frames() <= 16);
            if let Some((num, den)) = sps.frame_rate {
                assert!(num > 0 && den > 0);
            }
            assert_eq!(sps.video_shape().width, sps.width);
            if data.len() <= usize::from(u16::MAX) {
                let record = AvcDecoderConfig::from_parameter_sets(&[data], &[PPS])
                    .expect("an SPS that parses makes a record");
                assert_eq!(record.sps_info(), &sps);
                let again = AvcDecoderConfig::parse(&record.to_bytes()).expect("our own record parses");
                assert_eq!(again, record);
            }
        }
        // The same bytes as an Annex B stream: every SPS in it is read without panicking.
        for nal in annexb_nal_units(data) {
            if NalUnitType::of(nal) == Some(NalUnitType::SPS) {
                let _ = Sps::parse(nal);
            }
        }
    }

    /// OpusHead packets and `dOps` payloads: an OpusHead that parses survives the trip
    /// through `dOps` and back to OpusHead; a `dOps` that parses is written back byte for
    /// byte.
    pub fn opus_head(data: &[u8]) {
        if let Ok(config) = OpusConfig::parse_opus_head(data) {
            let dops = config.to_dops_bytes();
            assert_eq!(OpusConfig::parse_dops(&dops).as_ref(), Ok(&config));
            let head = config.to_opus_head_bytes();
            assert_eq!(OpusConfig::parse_opus_head(&head).as_ref(), Ok(&config));
            assert_eq!(
                config.channel_mapping.is_none(),
                config.channel_mapping_family == 0
            );
        }
        if let Ok(config) = OpusConfig::parse_dops(data) {
            assert_eq!(&config.to_dops_bytes()[..], data);
        }
    }
}
