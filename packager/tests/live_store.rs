//! The live store under a real-time source: blocking playlist reloads, parts streamed while
//! they are produced, the spec's 400/503 answers, and memory bounded by the window.

use popcast_packager::cmaf::read::fragments;
use popcast_packager::segmenter::SegmenterConfig;
use popcast_packager::store::{PlaylistRequest, StoreConfig, StoreError};
use std::time::{Duration, Instant};

mod support;
use support::live;

/// `(msn, part)` of the playlist's EXT-X-PRELOAD-HINT.
fn hint(playlist: &str) -> (u64, u32) {
    let line = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))
        .unwrap_or_else(|| panic!("no preload hint in\n{playlist}"));
    let uri = line.split("URI=\"").nth(1).unwrap().trim_end_matches('"');
    let mut it = uri.trim_end_matches(".m4s").split('.');
    (
        it.next().unwrap().parse().unwrap(),
        it.next().unwrap().parse().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_reload_streamed_parts_and_spec_errors() {
    let store_config = StoreConfig {
        window_segments: 2,
        hold_limit: Duration::from_millis(1500),
        ..StoreConfig::default()
    };
    let (store, feeder) = live::start(store_config, SegmenterConfig::default(), 9.0, false);

    // A client that arrives first blocks until the first part exists.
    let first = store
        .media_playlist(
            "video",
            PlaylistRequest {
                msn: Some(0),
                part: Some(0),
                skip: false,
            },
        )
        .await
        .unwrap();
    assert!(first.contains("#EXT-X-PART:"), "{first}");

    // The hinted part is streamed: its first chunk arrives long before it completes.
    let (msn, part) = hint(&first);
    let started = Instant::now();
    let mut stream = store.part("video", msn, part).unwrap();
    let mut chunks = Vec::new();
    let mut first_chunk_after = None;
    while let Some(c) = stream.next_chunk().await.unwrap() {
        first_chunk_after.get_or_insert(started.elapsed());
        chunks.push(c);
    }
    let whole = started.elapsed();
    assert!(chunks.len() >= 2, "{} chunks", chunks.len());
    assert!(
        first_chunk_after.unwrap() + Duration::from_millis(60) < whole,
        "first chunk at {first_chunk_after:?}, part complete at {whole:?}"
    );
    // Each chunk is a CMAF fragment; streamed bytes equal the complete part's bytes.
    for c in &chunks {
        assert_eq!(fragments(c).unwrap().len(), 1);
    }
    let again = store.part("video", msn, part).unwrap().read_all().await.unwrap();
    assert_eq!(again, chunks);

    // Blocking reload for the next part returns once the playlist lists it.
    let next = if part + 1 < 10 {
        (msn, part + 1)
    } else {
        (msn + 1, 0)
    };
    let t = Instant::now();
    let p = store
        .media_playlist(
            "video",
            PlaylistRequest {
                msn: Some(next.0),
                part: Some(next.1),
                skip: false,
            },
        )
        .await
        .unwrap();
    assert!(t.elapsed() < Duration::from_millis(1500));
    assert!(p.contains(&format!("URI=\"{}.{}.m4s\"", next.0, next.1)), "{p}");

    // The spec's errors: too far ahead is 400 at once; a wait past the hold limit is 503.
    let (last_msn, _) = store.rendition("video").unwrap().last_part().unwrap();
    let far = store
        .media_playlist(
            "video",
            PlaylistRequest {
                msn: Some(last_msn + 3),
                part: None,
                skip: false,
            },
        )
        .await;
    assert!(matches!(far, Err(StoreError::BadRequest(_))), "{far:?}");
    let t = Instant::now();
    let late = store
        .media_playlist(
            "video",
            PlaylistRequest {
                msn: Some(last_msn + 2),
                part: None,
                skip: false,
            },
        )
        .await;
    assert!(matches!(late, Err(StoreError::Unavailable(_))), "{late:?}");
    assert!(t.elapsed() >= Duration::from_millis(1400));
    assert!(matches!(
        PlaylistRequest::parse_query("_HLS_part=1"),
        Err(StoreError::BadRequest(_))
    ));
    assert!(matches!(
        store.part("video", last_msn + 5, 0),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.media_playlist("nope", PlaylistRequest::default()).await,
        Err(StoreError::NotFound(_))
    ));

    tokio::task::spawn_blocking(move || feeder.join().unwrap())
        .await
        .unwrap();
    // Memory is bounded by the window: 2 complete segments (+ the one in progress).
    let video = store.rendition("video").unwrap();
    let playlist = store
        .media_playlist("video", PlaylistRequest::default())
        .await
        .unwrap();
    assert!(playlist.matches("#EXTINF:").count() <= 2, "{playlist}");
    let held = video.bytes_held();
    assert!(held > 0 && held < 3 * 2 * 300_000 / 8 * 2, "{held} bytes held");
    // Segment 0 slid out of the window.
    assert!(matches!(store.segment("video", 0), Err(StoreError::NotFound(_))));
}

#[test]
fn query_parsing_names_the_problem() {
    let ok =
        PlaylistRequest::parse_query("_HLS_msn=12&_HLS_part=3&_HLS_skip=YES&CMCD=bl%3D200&token=x").unwrap();
    assert_eq!(
        ok,
        PlaylistRequest {
            msn: Some(12),
            part: Some(3),
            skip: true
        }
    );
    for (q, why) in [
        ("_HLS_msn=-1", "_HLS_msn"),
        ("_HLS_msn=1e3", "_HLS_msn"),
        ("_HLS_msn=99999999999999999999999", "_HLS_msn"),
        ("_HLS_msn=1&_HLS_part=4294967296", "_HLS_part"),
        ("_HLS_skip=NO", "_HLS_skip"),
        ("_HLS_part=2", "without _HLS_msn"),
    ] {
        let e = PlaylistRequest::parse_query(q).unwrap_err().to_string();
        assert!(e.contains(why), "{q}: {e}");
    }
}
