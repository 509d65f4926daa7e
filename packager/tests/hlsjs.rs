//! hls.js in headless Chromium (the real browser harness, tests/browser/play.mjs) plays a
//! live LL-HLS event straight from the store, served by the minimal test server in
//! `support::http` (the origin's real server arrives with issue #4).

use popcast_packager::segmenter::SegmenterConfig;
use popcast_packager::store::StoreConfig;

mod support;
use support::{http, live, play_in_browser};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hlsjs_plays_the_live_store_in_low_latency_mode() {
    let (store, feeder) = live::start(StoreConfig::default(), SegmenterConfig::default(), 16.0, true);
    let port = http::serve(store.clone(), "demo").await;
    let url = format!("http://127.0.0.1:{port}/live/demo/master.m3u8");
    // Let the first segment complete so the multivariant playlist has a measured bandwidth.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (json, ok) = tokio::task::spawn_blocking(move || play_in_browser(&url, 8))
        .await
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json:?}"));
    assert!(ok, "harness failed: {report}");
    assert_eq!(
        report["fatalErrors"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
    assert!(report["framesDecoded"].as_u64().unwrap_or(0) > 100, "{report}");
    assert!(report["playedSeconds"].as_f64().unwrap_or(0.0) > 5.0, "{report}");
    assert_eq!(
        (report["videoWidth"].as_u64(), report["videoHeight"].as_u64()),
        (Some(320), Some(180))
    );
    assert!(report["live"].as_bool().unwrap_or(false), "{report}");
    // hls.js in low-latency mode loads parts, not whole segments.
    assert!(report["requests"]["part"].as_u64().unwrap_or(0) > 10, "{report}");
    eprintln!("hls.js report: {report}");
    tokio::task::spawn_blocking(move || feeder.join().unwrap())
        .await
        .unwrap();
}
