//! Replays the committed fuzz seed corpora (fuzz/corpus/) through the same functions the
//! fuzz targets call, so every target's invariant is checked on every `make test`.

use popcast_packager::fuzzing::replay;
use std::path::Path;

#[test]
fn rtmp_session_corpus() {
    replay("rtmp_session", popcast_origin::fuzzing::rtmp_session);
}

#[test]
fn flv_corpus() {
    replay("flv", popcast_origin::fuzzing::flv);
}

#[test]
fn http_request_corpus() {
    replay("http_request", popcast_origin::fuzzing::http_request);
}

#[test]
fn webhook_url_corpus() {
    replay("webhook_url", popcast_origin::fuzzing::webhook_url);
}

#[test]
fn whip_offer_corpus() {
    replay("whip_offer", popcast_origin::fuzzing::whip_offer);
}

#[test]
fn whip_depack_corpus() {
    replay("whip_depack", popcast_origin::fuzzing::whip_depack);
}

#[test]
fn amf0_corpus() {
    replay("amf0", popcast_origin::fuzzing::amf0);
}

/// The RTMP seed is a real ffmpeg publish (see `capture_fuzz_seed` in rtmp_ffmpeg.rs);
/// replayed offline it must still be the whole conversation, so the fuzzer starts deep.
#[test]
fn rtmp_seed_is_a_whole_publish() {
    use popcast_origin::ingest::rtmp::{Session, SessionConfig, SessionEvent};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/rtmp_session/ffmpeg_publish");
    let data = std::fs::read(path).unwrap();
    let mut session = Session::new(SessionConfig::default());
    session.receive(&data).unwrap();
    let mut events = Vec::new();
    while let Some(ev) = session.poll_event() {
        if matches!(ev, SessionEvent::PublishRequested { .. }) {
            session.accept_publish();
        }
        events.push(ev);
    }
    session.receive(&[]).unwrap();
    assert!(matches!(&events[0], SessionEvent::Connected { app, .. } if app == "live"));
    assert!(matches!(&events[1], SessionEvent::PublishRequested { stream_key, .. } if stream_key == "key"));
    assert!(matches!(events[2], SessionEvent::Metadata(_)));
    let video = events
        .iter()
        .filter(|e| matches!(e, SessionEvent::Video { .. }))
        .count();
    assert!(video >= 10, "{video} video tags");
    assert!(matches!(events.last(), Some(SessionEvent::Unpublished)));
}
