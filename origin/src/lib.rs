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
