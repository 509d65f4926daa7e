//! Popcast's packager: turns a live source's frames into what viewers fetch.
//!
//! Owns: the media model ([`media::Frame`], [`media::TrackInfo`]), codec configuration
//! records ([`codec`]), the HLS playlist checker tests hold our playlists to ([`hls::check`]),
//! and, behind the one FFmpeg boundary ([`ffmpeg`]), the built-in test source. The CMAF muxer,
//! segmenter, LL-HLS/LL-DASH manifests, live store (issue #3) and the ABR ladder (issue #5)
//! will live here too.
//!
//! Must not: open sockets or know about RTMP, WHIP, HTTP or the relay (those live in origin
//! and edge-node); read clocks inside protocol cores (time is passed in). FFmpeg is used only
//! inside the `ffmpeg` module.

pub mod codec;
#[cfg(feature = "ffmpeg")]
pub mod ffmpeg;
pub mod hls;
pub mod media;

/// Entry points for the fuzz targets in `fuzz/`, also run over the seed corpus by the tests.
/// Each asserts an invariant, not just "no panic".
#[doc(hidden)]
pub mod fuzzing {
    use crate::codec::{
        AudioSpecificConfig, AvcDecoderConfig, annexb_nal_units, annexb_to_avcc, avcc_nal_units,
    };

    /// `avcC` records: whatever parses writes back to bytes that parse to the same record.
    pub fn avc_config(data: &[u8]) {
        if let Ok(record) = AvcDecoderConfig::parse(data) {
            let again = AvcDecoderConfig::parse(&record.to_bytes()).expect("our own output parses");
            assert_eq!(again, record);
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

    /// HLS playlists, read both as a Media and as a Multivariant Playlist: the checker never
    /// panics, gives the same answer twice, points every violation at a line that exists with
    /// a known rule id, and a Media Playlist it accepts is accepted again and is a valid reload
    /// of itself.
    pub fn hls_check(data: &[u8]) {
        use crate::hls::check::{self, Violation};

        let text = String::from_utf8_lossy(data);
        let lines = text.split('\n').count();
        let well_placed = |violations: &[Violation]| {
            for v in violations {
                assert!(v.line >= 1 && v.line <= lines, "{v} is outside lines 1..={lines}");
                assert!(check::rules::ALL.contains(&v.rule), "{v} has an unknown rule id");
            }
        };
        let media = check::inspect_media(&text);
        well_placed(&media.1);
        assert_eq!(format!("{:?}", check::inspect_media(&text)), format!("{media:?}"));
        if media.1.is_empty() {
            let playlist = check::check_media(&text).expect("inspect_media found nothing to report");
            assert_eq!(format!("{playlist:?}"), format!("{:?}", media.0));
            let reload = check::check_reload(&playlist, &playlist);
            assert!(
                reload.is_empty(),
                "a playlist must be a valid reload of itself:\n{}",
                check::report(&reload)
            );
        }
        let multivariant = check::inspect_multivariant(&text);
        well_placed(&multivariant.1);
        assert_eq!(
            format!("{:?}", check::inspect_multivariant(&text)),
            format!("{multivariant:?}")
        );
        assert_eq!(
            multivariant.1.is_empty(),
            check::check_multivariant(&text).is_ok()
        );
        for line in text.lines() {
            if let Some((_, value)) = line.split_once(':') {
                let _ = check::attributes(value);
            }
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
}
