//! hls.js in headless Chromium (the real browser harness, tests/browser/play.mjs) plays a
//! live LL-HLS event straight from the store, served by the minimal test server in
//! `support::http` (the origin's real server arrives with issue #4).

use popcast_packager::segmenter::SegmenterConfig;
use popcast_packager::store::StoreConfig;

mod support;
use support::{http, live, play_in_browser};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hlsjs_plays_the_live_store_in_low_latency_mode() {
    let (store, feeder) = live::start(StoreConfig::default(), SegmenterConfig::default(), 18.0, true);
    let port = http::serve(store.clone(), "demo").await;
    let url = format!("http://127.0.0.1:{port}/live/demo/master.m3u8");
    // Let the first segment complete so the multivariant playlist has a measured bandwidth.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (json, ok) = tokio::task::spawn_blocking(move || play_in_browser(&url, 10))
        .await
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json:?}"));
    eprintln!("hls.js report: {report}");
    assert!(ok, "harness failed: {report}");
    assert_eq!(
        report["fatalErrors"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
    // Generous bounds: a cold Chromium can take seconds to start on a loaded 2-core machine.
    assert!(report["framesDecoded"].as_u64().unwrap_or(0) > 90, "{report}");
    assert!(report["playedSeconds"].as_f64().unwrap_or(0.0) > 3.0, "{report}");
    assert_eq!(
        (report["videoWidth"].as_u64(), report["videoHeight"].as_u64()),
        (Some(320), Some(180))
    );
    assert!(report["live"].as_bool().unwrap_or(false), "{report}");
    // hls.js in low-latency mode loads parts, not whole segments.
    assert!(report["requests"]["part"].as_u64().unwrap_or(0) > 10, "{report}");
    tokio::task::spawn_blocking(move || feeder.join().unwrap())
        .await
        .unwrap();
}

/// Measurement, not a check (run by `make bench`): hls.js's live latency, stalls and
/// request rate for each part target, to choose the default. Writes
/// `bench/results/part-target.json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for make bench (about a minute)"]
async fn part_target_sweep() {
    use std::time::Duration;
    let mut rows = Vec::new();
    println!(
        "{:>8} {:>10} {:>8} {:>12} {:>12} {:>10}",
        "part ms", "latency s", "stalls", "first ms", "req/s", "parts"
    );
    let only: Option<u64> = std::env::var("POPCAST_PART_MS").ok().and_then(|v| v.parse().ok());
    for ms in [100u64, 200, 334, 500]
        .into_iter()
        .filter(|ms| only.is_none_or(|o| o == *ms))
    {
        let seg = SegmenterConfig {
            part_target: Duration::from_millis(ms),
            ..SegmenterConfig::default()
        };
        let (store, feeder) = live::start(StoreConfig::default(), seg, 18.0, true);
        let port = http::serve(store.clone(), "demo").await;
        let url = format!("http://127.0.0.1:{port}/live/demo/master.m3u8");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let seconds = 12;
        let (json, _) = tokio::task::spawn_blocking(move || play_in_browser(&url, seconds))
            .await
            .unwrap();
        let r: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        let requests: u64 = r["requests"]
            .as_object()
            .map_or(0, |o| o.values().filter_map(|v| v.as_u64()).sum());
        let row = serde_json::json!({
            "part_target_ms": ms,
            "live_latency_s": r["liveLatency"],
            "stalls": r["stalls"],
            "first_playing_ms": r["firstPlayingMs"],
            "requests_per_s": requests as f64 / f64::from(seconds),
            "parts": r["requests"]["part"],
            "frames_decoded": r["framesDecoded"],
            "ok": r["ok"],
        });
        println!(
            "{:>8} {:>10} {:>8} {:>12} {:>12.1} {:>10}",
            ms,
            row["live_latency_s"],
            row["stalls"],
            row["first_playing_ms"],
            row["requests_per_s"].as_f64().unwrap_or(0.0),
            row["parts"]
        );
        rows.push(row);
        tokio::task::spawn_blocking(move || feeder.join().unwrap())
            .await
            .unwrap();
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results/part-target.json");
    std::fs::write(path, serde_json::to_string_pretty(&rows).unwrap()).unwrap();
}
