//! The Popcast origin: where creators' streams arrive and where every event is run.
//!
//! Owns: `ingest` (RTMP today, WHIP later: sans-IO protocol sessions wrapped by tokio
//! tasks), and, as their issues land, `events` (the event records, scheduler and control
//! API), `relay` (the QUIC link that pushes media objects to edges) and `http` (playback,
//! API, player pages, /metrics, /healthz).
//!
//! Must not: encode or mux media itself (that is `popcast-packager`'s job), reach into an
//! edge's internals, or read configuration anywhere but from the structs it is handed.

pub mod ingest;

/// Entry points for the fuzz targets in `fuzz/`, also run over the seed corpus by the tests.
/// Each asserts an invariant, not just "no panic".
#[doc(hidden)]
pub mod fuzzing {
    use crate::ingest::rtmp::{RtmpError, Session, SessionConfig, SessionEvent, amf0};

    /// FLV tag bodies through one [`FlvDemuxer`](crate::ingest::flv::FlvDemuxer). The input
    /// is a sequence of records: kind (`u8`, even = video, odd = audio), body length (`u16`
    /// BE), RTMP timestamp (`u32` BE), body (a short last body is taken as it is).
    ///
    /// Invariants: every frame belongs to a track announced before it and still configured,
    /// is non-empty, fits `max_frame_bytes` and carries the arrival instant it was given;
    /// `tracks()` is the latest announcement of each track; a video frame's dts is its
    /// unwrapped millisecond timestamp × 90 (so it never decreases while timestamps step
    /// forward), its pts differs by whole milliseconds, and a keyframe holds an IDR; an AAC
    /// frame either follows the previous one by exactly one frame length or sits at its
    /// millisecond timestamp, and never strays more than the re-anchor threshold from it;
    /// exactly the fatal errors have `onStatus` text.
    pub fn flv(data: &[u8]) {
        use crate::ingest::flv::{
            AAC_REANCHOR_FRAMES, AUDIO, FlvConfig, FlvDemuxer, FlvOutput, VIDEO, ms_to_ticks,
        };
        use bytes::Bytes;
        use popcast_packager::codec::{NalUnitType, avcc_nal_units};
        use popcast_packager::media::{CodecConfig, TrackInfo};
        use std::time::{Duration, UNIX_EPOCH};

        const MAX_FRAME_BYTES: u32 = 4096;
        let mut demuxer = FlvDemuxer::new(FlvConfig {
            max_frame_bytes: MAX_FRAME_BYTES,
        });
        let mut announced: Vec<TrackInfo> = Vec::new();
        // The model of the timestamp unwrapper: each step is a signed 32-bit delta.
        let mut clock: Option<(u32, i64)> = None;
        let mut last_audio_dts: Option<i64> = None;
        let mut rest = data;
        let mut index = 0u64;
        while let [kind, l0, l1, t0, t1, t2, t3, tail @ ..] = rest {
            let len = usize::from(u16::from_be_bytes([*l0, *l1])).min(tail.len());
            let (body, next) = tail.split_at(len);
            rest = next;
            let ts = u32::from_be_bytes([*t0, *t1, *t2, *t3]);
            let ms = clock.map_or(i64::from(ts), |(raw, ms)| {
                ms + i64::from(ts.wrapping_sub(raw) as i32)
            });
            clock = Some((ts, ms));
            index += 1;
            let arrived = UNIX_EPOCH + Duration::from_millis(index);
            let body = Bytes::copy_from_slice(body);
            let result = if kind % 2 == 0 {
                demuxer.video(ts, body, arrived)
            } else {
                demuxer.audio(ts, body, arrived)
            };
            let outputs = match result {
                Ok(outputs) => outputs,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    assert_eq!(e.is_fatal(), e.status_description().is_some(), "{e}");
                    continue;
                }
            };
            for output in outputs {
                match output {
                    FlvOutput::Track(info) => {
                        assert!(info.id == VIDEO || info.id == AUDIO);
                        assert!(info.timescale > 0);
                        if info.id == AUDIO {
                            last_audio_dts = None;
                        }
                        announced.retain(|t| t.id != info.id);
                        announced.push(info);
                    }
                    FlvOutput::Frame(frame) => {
                        let track = announced
                            .iter()
                            .find(|t| t.id == frame.track)
                            .expect("a frame's track was announced first");
                        assert!(!frame.payload.is_empty());
                        assert!(frame.payload.len() <= MAX_FRAME_BYTES as usize);
                        assert_eq!(frame.arrived, arrived);
                        match &track.codec {
                            CodecConfig::H264(avc) => {
                                assert_eq!(frame.track, VIDEO);
                                assert_eq!(frame.dts, ms * 90);
                                assert_eq!((frame.pts - frame.dts) % 90, 0);
                                let idr = avcc_nal_units(&frame.payload, avc.nal_length_size())
                                    .map(|nal| nal.expect("a frame's NAL framing was checked"))
                                    .any(|nal| NalUnitType::of(nal) == Some(NalUnitType::IDR_SLICE));
                                assert_eq!(frame.keyframe, idr);
                            }
                            CodecConfig::Aac(_) => {
                                assert_eq!(frame.track, AUDIO);
                                assert!(frame.keyframe && frame.pts == frame.dts);
                                let at_ms = ms_to_ticks(ms, track.timescale);
                                let step = last_audio_dts.and_then(|last| frame.dts.checked_sub(last));
                                assert!(
                                    frame.dts == at_ms || matches!(step, Some(960 | 1024)),
                                    "AAC dts {} after {last_audio_dts:?}, {at_ms} by the clock",
                                    frame.dts
                                );
                                assert!(frame.dts.abs_diff(at_ms) <= (AAC_REANCHOR_FRAMES * 1024) as u64);
                                last_audio_dts = Some(frame.dts);
                            }
                        }
                    }
                }
            }
            let mut tracks = demuxer.tracks();
            tracks.sort_by_key(|t| t.id);
            announced.sort_by_key(|t| t.id);
            assert_eq!(tracks, announced);
        }
    }

    /// Feeds `data` (client→server bytes) to a session that accepts every publish: whole,
    /// in ragged pieces and (when short) byte by byte. Asserts that it never panics, that a
    /// failed session stays failed, that what it writes is bounded by what it read, that
    /// delivered media is non-empty and within `max_message_bytes`, and that the events and
    /// the outcome do not depend on how the bytes were split.
    pub fn rtmp_session(data: &[u8]) {
        let config = SessionConfig::default();
        let whole = run_session(&config, data, &[data.len().max(1)]);
        let ragged = run_session(
            &config,
            data,
            &[1, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377],
        );
        assert_same_run(&whole, &ragged);
        if data.len() <= 4096 {
            let bytewise = run_session(&config, data, &[1]);
            assert_same_run(&whole, &bytewise);
        }
    }

    struct Run {
        events: Vec<SessionEvent>,
        outcome: Result<(), RtmpError>,
    }

    fn run_session(config: &SessionConfig, data: &[u8], pieces: &[usize]) -> Run {
        let mut session = Session::new(config.clone());
        let mut events = Vec::new();
        let mut written = 0usize;
        let mut rest = data;
        let mut failed = None;
        for &size in pieces.iter().cycle() {
            let (piece, tail) = rest.split_at(size.min(rest.len()));
            rest = tail;
            let r = session.receive(piece);
            drain(&mut session, config, &mut events, &mut written);
            if let Err(e) = r {
                failed = Some(e);
                break;
            }
            if rest.is_empty() {
                break;
            }
        }
        // The final word, including errors found in input held while a publish was pending.
        let outcome = session.receive(&[]);
        drain(&mut session, config, &mut events, &mut written);
        if let Some(e) = failed {
            assert_eq!(
                outcome.as_ref().err(),
                Some(&e),
                "a failed session must stay failed"
            );
        }
        if let Err(e) = &outcome {
            assert_eq!(
                session.receive(b"more").as_ref().err(),
                Some(e),
                "a failed session must stay failed"
            );
            assert!(!e.to_string().is_empty());
        }
        // S0/S1/S2, the connect reply, then at most a few bytes out per byte in.
        let bound = 3073 + 1024 + 8 * data.len();
        assert!(written <= bound, "wrote {written} bytes for {} read", data.len());
        Run { events, outcome }
    }

    fn drain(
        session: &mut Session,
        config: &SessionConfig,
        events: &mut Vec<SessionEvent>,
        written: &mut usize,
    ) {
        loop {
            while let Some(ev) = session.poll_event() {
                match &ev {
                    SessionEvent::PublishRequested { .. } => session.accept_publish(),
                    SessionEvent::Video { data, .. } | SessionEvent::Audio { data, .. } => {
                        assert!(!data.is_empty(), "empty media delivered");
                        assert!(
                            data.len() <= config.max_message_bytes as usize,
                            "media over max_message_bytes"
                        );
                    }
                    _ => {}
                }
                events.push(ev);
            }
            match session.take_output() {
                Some(out) => *written += out.len(),
                None => break,
            }
        }
    }

    fn assert_same_run(a: &Run, b: &Run) {
        assert_eq!(a.outcome, b.outcome, "outcome depends on how the input was split");
        assert_eq!(
            a.events.len(),
            b.events.len(),
            "events depend on how the input was split"
        );
        for (x, y) in a.events.iter().zip(&b.events) {
            // Debug, not ==: metadata may hold NaN.
            match (x, y) {
                (SessionEvent::Metadata(_), SessionEvent::Metadata(_)) => {
                    assert_eq!(format!("{x:?}"), format!("{y:?}"))
                }
                _ => assert_eq!(x, y, "events depend on how the input was split"),
            }
        }
    }

    /// Decodes AMF0 values one after another; each one decoded must re-encode to bytes that
    /// decode to the same value and re-encode identically.
    pub fn amf0(data: &[u8]) {
        let mut decoder = amf0::Decoder::new(data, 16);
        while !decoder.is_empty() {
            let before = decoder.position();
            let Ok(value) = decoder.decode() else { break };
            assert!(decoder.position() > before && decoder.position() <= data.len());
            let mut encoded = Vec::new();
            amf0::encode(&value, &mut encoded);
            let again = amf0::decode_all(&encoded, 16).expect("our own encoding decodes");
            assert_eq!(again.len(), 1, "one value encodes as one value");
            // Debug, not ==: NaN.
            assert_eq!(
                format!("{:?}", again[0]),
                format!("{value:?}"),
                "value changed in a round trip"
            );
            let mut re_encoded = Vec::new();
            amf0::encode(&again[0], &mut re_encoded);
            assert_eq!(re_encoded, encoded, "encoding is not stable");
        }
    }
}
