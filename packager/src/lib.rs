//! Popcast's packager: turns a live source's frames into what viewers fetch, and holds what
//! origin and edge share about serving it.
//!
//! Owns: the media model ([`media::Frame`], [`media::TrackInfo`]), codec configuration
//! records ([`codec`]), the CMAF muxer and reader ([`cmaf`]), the segmenter, LL-HLS
//! playlists and the checker tests hold them to ([`hls`]), the live store ([`store`]), the
//! relay's wire format ([`relay`]: sans-IO frames, with a stream reader for any byte stream),
//! viewers' QoE (CMCD, beacons, per-event reports that merge across edges: [`qoe`]),
//! LL-HLS over HTTP from a store ([`http`], feature `http`: the one implementation origin
//! and edge serve with), and, behind the one FFmpeg boundary ([`ffmpeg`]), the built-in test
//! source and later the ABR ladder.
//!
//! Must not: know about RTMP or WHIP, open QUIC connections or decide who may watch (origin
//! and edge-node do); read clocks inside protocol cores (time is passed in). FFmpeg is used
//! only inside the `ffmpeg` module.

pub mod cmaf;
pub mod codec;
#[cfg(feature = "ffmpeg")]
pub mod ffmpeg;
#[doc(hidden)]
pub mod fixtures;
pub mod hls;
#[cfg(feature = "http")]
pub mod http;
pub mod ladder;
pub mod media;
pub mod naming;
pub mod qoe;
pub mod relay;
pub mod segmenter;
pub mod store;
pub mod token;

/// Entry points for the fuzz targets in `fuzz/`, also run over the seed corpus by the tests.
/// Each asserts an invariant, not just "no panic".
#[doc(hidden)]
pub mod fuzzing {
    /// Replays the committed seed corpus of fuzz target `target` (`fuzz/corpus/{target}`)
    /// through `run`, each seed whole and at every truncation (short reads are the commonest
    /// garbage). The tests of every crate with fuzz targets call it, so each target's
    /// invariant is checked on every `make test`. Panics when the corpus is missing or empty.
    pub fn replay(target: &str, run: fn(&[u8])) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path();
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            run(&data);
            for cut in 0..data.len() {
                run(&data[..cut]);
            }
            n += 1;
        }
        assert!(n > 0, "no seeds in {}", dir.display());
    }

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

    /// CMAF reader: arbitrary bytes never panic, and every sample it reports lies inside
    /// the input.
    pub fn cmaf_read(data: &[u8]) {
        if let Ok(frags) = crate::cmaf::read::fragments(data) {
            for f in frags {
                for s in f.samples {
                    assert!(s.data_range.end <= data.len() && s.data_range.start <= s.data_range.end);
                }
            }
        }
        let _ = crate::cmaf::read::init_info(data);
    }

    /// Segmenter driven by arbitrary frames: each 6-byte record is one frame (track,
    /// keyframe, dts step, composition offset, payload size) followed by its payload. The
    /// segmenter may refuse frames but never panics, and what it emits keeps the event
    /// grammar, parses as CMAF, and has strictly increasing decode times per track.
    pub fn segmenter(data: &[u8]) {
        use crate::media::Frame;
        use crate::segmenter::{Event, Segmenter, SegmenterConfig};
        use std::collections::BTreeMap;
        use std::time::{Duration, UNIX_EPOCH};

        let mut seg = Segmenter::new(SegmenterConfig {
            max_frame_bytes: 64,
            ..SegmenterConfig::default()
        });
        seg.add_track(crate::fixtures::video_track())
            .expect("video track");
        seg.add_track(crate::fixtures::audio_track())
            .expect("audio track");
        let mut dts = [0i64; 2];
        let mut rest = data;
        let mut wall = UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let mut check = Grammar::default();
        while let [flags, step_hi, step_lo, cto, size, seed, tail @ ..] = rest {
            let track = usize::from(flags & 1);
            // Steps are mostly forward (a frame or so), sometimes backwards or far ahead.
            let step =
                i64::from(i16::from_be_bytes([*step_hi, *step_lo])) * if flags & 4 != 0 { 97 } else { 1 };
            dts[track] += step;
            let len = usize::from(*size % 72);
            let payload: Vec<u8> = if track == 0 && flags & 8 == 0 {
                // Mostly well-formed AVCC: one NAL of `len` bytes, made up (not read).
                rest = tail;
                let mut p = (len as u32 + 1).to_be_bytes().to_vec();
                p.push(if flags & 2 != 0 { 0x65 } else { 0x41 });
                p.extend((0..len).map(|i| seed.wrapping_add(i as u8)));
                p
            } else {
                // Raw payload bytes from the input (garbage AVCC, audio).
                rest = tail.get(len.min(tail.len())..).unwrap_or_default();
                tail.iter().take(len).copied().collect()
            };
            wall += Duration::from_millis(10);
            let frame = Frame {
                track: crate::media::TrackId(track as u32 + 1),
                pts: dts[track] + i64::from(*cto) * 100,
                dts: dts[track],
                keyframe: flags & 2 != 0,
                payload: bytes::Bytes::from(payload),
                arrived: wall,
            };
            let _ = seg.push(frame);
            for e in seg.drain() {
                check.event(&e);
            }
            if flags & 0x80 != 0 && flags & 0x40 != 0 {
                seg.discontinuity();
            }
        }
        seg.flush();
        for e in seg.drain() {
            check.event(&e);
        }

        /// Per track: the open segment and part, and the last decode time.
        #[derive(Default)]
        struct Open {
            segment: Option<u64>,
            part: Option<(u64, u32)>,
            dts: Option<u64>,
        }
        #[derive(Default)]
        struct Grammar {
            tracks: BTreeMap<crate::media::TrackId, Open>,
        }
        impl Grammar {
            fn event(&mut self, e: &Event) {
                match e {
                    Event::Init { track, data, .. } => {
                        assert!(crate::cmaf::read::init_info(data).is_ok());
                        assert!(self.tracks.insert(*track, Open::default()).is_none());
                    }
                    Event::SegmentStart { track, msn, .. } => {
                        let t = self.tracks.get_mut(track).expect("init before segments");
                        assert!(
                            t.segment.is_none() && t.part.is_none(),
                            "segment inside a segment"
                        );
                        t.segment = Some(*msn);
                    }
                    Event::PartStart { track, msn, part, .. } => {
                        let t = self.tracks.get_mut(track).expect("init");
                        assert_eq!(t.segment, Some(*msn));
                        assert!(t.part.is_none());
                        t.part = Some((*msn, *part));
                    }
                    Event::Chunk { track, data } => {
                        let t = self.tracks.get_mut(track).expect("init");
                        assert!(t.part.is_some(), "chunk outside a part");
                        let frags = crate::cmaf::read::fragments(data).expect("our chunk parses");
                        let dts = frags[0].base_decode_time;
                        assert!(t.dts.is_none_or(|last| dts > last), "decode time went back");
                        t.dts = Some(dts);
                    }
                    Event::PartEnd { track, msn, part, .. } => {
                        let t = self.tracks.get_mut(track).expect("init");
                        assert_eq!(t.part, Some((*msn, *part)));
                        t.part = None;
                    }
                    Event::SegmentEnd { track, msn, .. } => {
                        let t = self.tracks.get_mut(track).expect("init");
                        assert_eq!((t.segment, t.part), (Some(*msn), None));
                        t.segment = None;
                    }
                }
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

    /// Playback paths and playlist queries (what a viewer sends): a path that parses
    /// formats back to exactly the same string, and queries never panic.
    pub fn playback_path(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let (path, query) = text.split_once('?').unwrap_or((text, ""));
        if let Ok(parsed) = crate::naming::PlaybackPath::parse(path) {
            assert_eq!(parsed.to_string(), path);
        }
        if let Ok(req) = crate::store::PlaylistRequest::parse_query(query) {
            assert!(req.part.is_none() || req.msn.is_some());
        }
    }

    /// Viewer tokens (what a viewer sends in `?token=` or a bearer header): parsing and
    /// verifying never panic; a token that parses re-mints, with the key it names, to a
    /// token with the same claims; a verified token is never expired or for another event.
    pub fn token(data: &[u8]) {
        use crate::token::{EventKey, parse, verify};
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let key = EventKey::new("k1", b"fuzzing key, thirty-two bytes long").expect("valid key");
        if let Ok(p) = parse(text) {
            let again = EventKey::new(&p.claims.kid, b"fuzzing key, thirty-two bytes long")
                .expect("a parsed kid is a valid kid")
                .mint(&p.claims.event, p.claims.expires, p.claims.session.as_deref())
                .expect("parsed claims mint");
            assert_eq!(parse(&again).expect("a minted token parses").claims, p.claims);
        }
        if let Ok(c) = verify(text, std::slice::from_ref(&key), "ev", 1_000) {
            assert!(c.event == "ev" && c.expires > 1_000);
        }
    }

    /// CMCD as an edge receives it: the input up to its first NUL is the query string, the
    /// rest one `CMCD-Request` header value. Never a panic (nor an error: CMCD never fails a
    /// request); kept strings fit the limit; `pr` is finite and in range; nothing is set when
    /// no CMCD was sent; and a tracker fed the request counts it once and at most one session.
    pub fn qoe_cmcd(data: &[u8]) {
        use crate::qoe::{Cmcd, CmcdLimits, Tracker, TrackerConfig};
        let (query, header) = match data.iter().position(|b| *b == 0) {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (data, &[][..]),
        };
        let Ok(query) = std::str::from_utf8(query) else {
            return;
        };
        let limits = CmcdLimits {
            max_bytes: 512,
            max_pairs: 16,
            max_string: 16,
        };
        let headers: Vec<(&str, &[u8])> = if header.is_empty() {
            Vec::new()
        } else {
            vec![("cmcd-request", header)]
        };
        let c = Cmcd::parse(query, headers, &limits);
        for s in [&c.sid, &c.cid].into_iter().flatten() {
            assert!(s.chars().count() <= limits.max_string);
        }
        if let Some(pr) = c.pr {
            assert!(pr.is_finite() && (0.0..=100.0).contains(&pr));
        }
        if !c.present {
            assert_eq!(c, Cmcd::default());
        }
        let mut t = Tracker::new(TrackerConfig::default());
        t.request(5, &c, 200);
        let r = t.report(10, 0);
        assert_eq!(r.requests, 1);
        assert!(r.sessions_started <= 1 && r.sessions_started == u64::from(c.sid.is_some()));
        assert_eq!(r.cmcd_malformed, u64::from(c.malformed));
    }

    /// QoE beacons: parsing never panics; a parsed beacon keeps its lists and values within
    /// the limits; applied to a tracker it is taken whole or refused whole, the same beacon
    /// again changes nothing but the beacon count, and the report stays consistent (clean ≤
    /// qualified ≤ playing ≤ started, stalled time ≤ watch time).
    pub fn qoe_beacon(data: &[u8]) {
        use crate::qoe::{Beacon, BeaconLimits, Tracker, TrackerConfig};
        let limits = BeaconLimits {
            max_bytes: 4096,
            max_list: 8,
            max_ms: 600_000,
        };
        let Ok(b) = Beacon::parse(data, &limits) else {
            return;
        };
        assert!(b.latency_ms.len() <= 8 && b.stall_events.len() <= 8 && b.errors.len() <= 8);
        assert!(b.startup_ms.is_none_or(|s| s <= limits.max_ms));
        assert!(!b.sid.is_empty() && b.sid.len() <= 64 && !b.event.is_empty());
        let mut t = Tracker::new(TrackerConfig::default());
        let before = t.report(60_000, 0);
        let applied = t.beacon(60_000, &b).is_ok();
        let once = t.report(60_000, 0);
        if !applied {
            let mut same = once.clone();
            same.beacons_refused = before.beacons_refused;
            assert_eq!(same, before, "a refused beacon changed the numbers");
            return;
        }
        if b.seq.is_some() {
            let _ = t.beacon(60_000, &b);
            let mut twice = t.report(60_000, 0);
            twice.beacons = once.beacons;
            twice.beacons_refused = once.beacons_refused;
            assert_eq!(twice, once, "a repeated beacon counted twice");
        }
        let r = &once;
        assert!(r.clean <= r.qualified && r.qualified <= r.sessions_playing);
        assert!(r.sessions_playing <= r.sessions_started && r.sessions_started == 1);
        assert!(r.stall_ms <= r.watch_ms);
    }

    /// Relay frames (`relay::FrameDecoder`, under small limits so fuzzed inputs reach
    /// them): the same frames and the same error whether the bytes arrive whole, split at
    /// an offset the input picks, or (under 512 bytes) byte by byte; an error names the
    /// offset the decoder stopped at and comes back on every later call; each frame starts
    /// with its own type byte, re-encodes to at most the bytes it was read from (ours are
    /// minimal varints) and decodes from those to itself; and the default, larger limits
    /// accept at least the same frames.
    pub fn relay_frame(data: &[u8]) {
        use crate::relay::{Frame, FrameDecoder, Limits, RelayError, chunk_header};

        /// Feeds `pieces` in order, taking frames after each, until an error. Returns each
        /// frame with its stream offset, the error, and the decoder.
        fn run<'a>(
            limits: &Limits,
            pieces: impl IntoIterator<Item = &'a [u8]>,
        ) -> (Vec<(u64, Frame)>, Option<RelayError>, FrameDecoder) {
            let mut dec = FrameDecoder::new(limits.clone());
            let mut frames = Vec::new();
            for piece in pieces {
                dec.push(piece);
                loop {
                    let at = dec.offset();
                    match dec.next_frame() {
                        Ok(Some(frame)) => frames.push((at, frame)),
                        Ok(None) => break,
                        Err(e) => return (frames, Some(e), dec),
                    }
                }
            }
            (frames, None, dec)
        }

        let small = Limits {
            max_control_frame: 256,
            max_catalog_frame: 1024,
            max_chunk: 2048,
            max_string: 32,
            max_list: 4,
        };
        let (frames, error, mut dec) = run(&small, [data]);
        match &error {
            Some(e) => {
                let offset = match e {
                    RelayError::UnknownFrameType { offset, .. }
                    | RelayError::FrameTooLarge { offset, .. }
                    | RelayError::Malformed { offset, .. }
                    | RelayError::TrailingBytes { offset, .. } => *offset,
                };
                assert_eq!(offset, dec.offset(), "{e}");
                assert!(offset < data.len() as u64);
                assert_eq!(dec.buffered(), 0);
                dec.push(data);
                assert_eq!(dec.next_frame().as_ref(), Err(e), "a failed decoder stays failed");
            }
            None => assert_eq!(dec.offset() + dec.buffered() as u64, data.len() as u64),
        }

        if let Some(&first) = data.first() {
            let (a, b) = data.split_at(usize::from(first) % data.len());
            let (split, split_error, _) = run(&small, [a, b]);
            assert_eq!((&split, &split_error), (&frames, &error), "split at {}", a.len());
        }
        if data.len() < 512 {
            let (bytes, bytes_error, _) = run(&small, data.chunks(1));
            assert_eq!((&bytes, &bytes_error), (&frames, &error), "byte by byte");
        }

        let ends = frames.iter().skip(1).map(|(at, _)| *at).chain([dec.offset()]);
        for ((at, frame), end) in frames.iter().zip(ends) {
            assert_eq!(data[*at as usize], frame.frame_type(), "{frame:?}");
            let mut out = bytes::BytesMut::new();
            frame.encode(&mut out);
            assert!(out.len() as u64 <= end - at, "{frame:?} grew when re-encoded");
            if let Frame::Chunk { data } = frame {
                assert_eq!(out[..], [&chunk_header(data.len())[..], &data[..]].concat()[..]);
            }
            let (again, again_error, again_dec) = run(&small, [&out[..]]);
            assert_eq!(again_error, None, "{frame:?}");
            assert_eq!(again, [(0, frame.clone())]);
            assert_eq!(again_dec.buffered(), 0);
        }

        let (roomy, roomy_error, _) = run(&Limits::default(), [data]);
        assert!(roomy.starts_with(&frames), "larger limits refused a frame");
        if error.is_none() {
            assert_eq!((roomy, roomy_error), (frames, None));
        }
    }
}
