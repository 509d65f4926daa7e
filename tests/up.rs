//! `popcast up` as a user runs it: the labelled URLs, the demo event playing in hls.js through
//! the embed page, and a creator taking over from the test source with the ffmpeg CLI.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// A running `popcast up` on loopback with ephemeral ports; killed on drop.
struct Up {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    _dir: Scratch,
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Up {
    fn start(test: &str, extra: &[&str], config: &str) -> Self {
        let mut args = vec![
            "up",
            "--rtmp-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--edge-listen",
            "127.0.0.1:0",
            "--relay-listen",
            "127.0.0.1:0",
            "--whip-listen",
            "127.0.0.1:0",
            "--status-every",
            "2",
        ];
        args.extend_from_slice(extra);
        Self::run(test, &args, config)
    }

    /// `popcast --log-format json {args[0]} --config {scratch config} {args[1..]}`.
    fn run(test: &str, args: &[&str], config: &str) -> Self {
        Self::run_env(test, args, config, &[])
    }

    /// The same with extra environment variables.
    fn run_env(test: &str, args: &[&str], config: &str, env: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("popcast-up-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("up.toml");
        std::fs::write(
            &cfg,
            format!("[node]\ndata_dir = \"{}\"\n{config}", dir.join("data").display()),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_popcast"))
            .args(["--log-format", "json", args[0], "--config"])
            .arg(&cfg)
            .args(&args[1..])
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run popcast up");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(format!("stderr: {l}"));
            }
        });
        Self {
            child,
            lines: rx,
            seen: Vec::new(),
            _dir: Scratch(dir),
        }
    }

    /// Waits for a line satisfying `want`; panics with everything seen after `secs`.
    fn wait_line(&mut self, secs: u64, want: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + Duration::from_secs(secs);
        if let Some(l) = self.seen.iter().find(|l| want(l)) {
            return l.clone();
        }
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if want(&l) {
                        return l;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no such line within {secs} s; output so far:\n{}",
            self.seen.join("\n")
        );
    }

    /// The URL on the line labelled `label`.
    fn url(&mut self, label: &str) -> String {
        let prefix = format!("{label}: ");
        let l = self.wait_line(30, |l| l.starts_with(&prefix));
        l[prefix.len()..].to_string()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SMALL: &str = "[test_source]\nwidth = 320\nheight = 180\nframe_rate = 25\nvideo_kbps = 300\n";

/// GETs `url` with curl; (status, body).
fn get(url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-w", "\n%{http_code}", url])
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// GETs until 200 (the first segment takes a moment), for at most `secs`.
fn get_ok(url: &str, secs: u64, want: impl Fn(&str) -> bool) -> String {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let (code, body) = get(url);
        if code == 200 && want(&body) {
            return body;
        }
        assert!(Instant::now() < until, "{url}: last answer {code}: {body}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn up_prints_its_urls_in_order_and_serves_the_demo_event() {
    let mut up = Up::start("urls", &[], SMALL);
    let labels = [
        "origin playback",
        "edge playback",
        "RTMP publish",
        "WHIP publish",
        "embed page",
        "dashboard",
    ];
    let mut at = Vec::new();
    for label in labels {
        up.url(label);
        at.push(
            up.seen
                .iter()
                .position(|l| l.starts_with(&format!("{label}: ")))
                .unwrap(),
        );
    }
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "labels out of order: {:?}",
        up.seen
    );
    let master = up.url("origin playback");
    assert!(
        master.starts_with("http://127.0.0.1:") && master.ends_with("/live/demo/master.m3u8"),
        "{master}"
    );
    let rtmp = up.url("RTMP publish");
    assert!(
        rtmp.starts_with("rtmp://127.0.0.1:") && rtmp.contains("/live/"),
        "{rtmp}"
    );
    let whip = up.url("WHIP publish");
    assert!(
        whip.starts_with("http://127.0.0.1:")
            && whip.contains("/whip/demo (bearer token: the stream key above)"),
        "{whip}"
    );
    up.wait_line(30, |l| {
        l.contains("test source video: avc1.") && l.contains("320x180 @ 25 fps")
    });
    let log = up.wait_line(30, |l| l.contains("test source running"));
    assert!(
        log.starts_with("stderr: {") && log.contains("\"level\":\"INFO\""),
        "{log}"
    );

    let body = get_ok(&master, 30, |b| b.contains("#EXT-X-STREAM-INF"));
    assert!(
        body.contains("RESOLUTION=320x180") && body.contains("mp4a.40.2"),
        "{body}"
    );
    let base = master.trim_end_matches("master.m3u8");
    let media = get_ok(&format!("{base}source/index.m3u8"), 30, |b| {
        b.contains("#EXT-X-PART:")
    });
    assert!(media.contains("#EXT-X-PROGRAM-DATE-TIME:"), "{media}");
    // The in-process edge serves the same event, relayed over QUIC.
    let edge = up.url("edge playback");
    assert!(
        edge.starts_with("http://127.0.0.1:") && edge.ends_with("/live/demo/master.m3u8") && edge != master,
        "{edge}"
    );
    let body = get_ok(&edge, 30, |b| b.contains("#EXT-X-STREAM-INF"));
    assert!(body.contains("RESOLUTION=320x180"), "{body}");
    let edge_media = get_ok(&edge.replace("master.m3u8", "source/index.m3u8"), 30, |b| {
        b.contains("#EXT-X-PART:")
    });
    assert!(edge_media.contains("#EXT-X-PRELOAD-HINT:"), "{edge_media}");
    assert!(
        up.wait_line(30, |l| l
            .starts_with("demo: source test source, live edge source="))
            .contains("sessions 1")
    );
    // The demo key stays the same across runs (it lives in the data directory).
    let key = rtmp.rsplit('/').next().unwrap().to_string();
    assert!(key.len() >= 32, "{key}");
    let saved = std::fs::read_to_string(up._dir.0.join("data/demo.stream-key")).unwrap();
    assert_eq!(saved.trim(), key);
    // The dashboard line names the file holding a per-data-directory operator token (never
    // the token itself); the page is served and the token opens the demo's stats.
    let dashboard = up.url("dashboard");
    let page = dashboard.split(' ').next().unwrap();
    assert!(
        page.starts_with("http://127.0.0.1:") && page.ends_with("/dashboard"),
        "{dashboard}"
    );
    let token_file = up._dir.0.join("data/operator.token");
    assert!(
        dashboard.contains(&token_file.display().to_string()),
        "{dashboard}"
    );
    let (code, html) = get(page);
    assert!(
        code == 200 && html.contains("data-testid=\"chart-viewers\""),
        "{code}"
    );
    let token = std::fs::read_to_string(&token_file).unwrap();
    let token = token.trim();
    assert!(!dashboard.contains(token), "the token is not printed");
    let stats = page.replace("/dashboard", "/api/v1/events/demo/stats");
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(&stats)
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(body.contains("\"event\":\"demo\""), "{body}");
}

#[test]
fn demo_key_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("popcast-up-key-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = format!("[node]\ndata_dir = \"{}\"\n", dir.display());
    let cfg_path = std::env::temp_dir().join(format!("popcast-up-key-{}.toml", std::process::id()));
    std::fs::write(&cfg_path, config).unwrap();
    let mut keys = Vec::new();
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_popcast"))
            .args(["up", "--source", "none", "--duration", "1", "--config"])
            .arg(&cfg_path)
            .args([
                "--rtmp-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
                "--whip-listen",
                "127.0.0.1:0",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find(|l| l.starts_with("RTMP publish: "))
            .unwrap()
            .to_string();
        keys.push(line.rsplit('/').next().unwrap().to_string());
    }
    assert_eq!(keys[0], keys[1]);
    let on_disk = std::fs::read_to_string(dir.join("demo.stream-key")).unwrap();
    assert_eq!(on_disk.trim(), keys[0]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("demo.stream-key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the key file is readable by others: {mode:o}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&cfg_path);
}

#[test]
fn a_creator_publishing_takes_over_from_the_test_source() {
    let mut up = Up::start("takeover", &[], SMALL);
    let master = up.url("origin playback");
    let rtmp = up.url("RTMP publish");
    get_ok(&master, 30, |b| b.contains("RESOLUTION=320x180"));
    let mut ff = common::ffmpeg_publish(&rtmp, 6, "256x144");
    up.wait_line(20, |l| {
        l.starts_with("test source: stopped (a creator is publishing)")
    });
    up.wait_line(20, |l| l.starts_with("demo: now fed by publisher 127.0.0.1:"));
    // The creator's picture replaces the test pattern.
    get_ok(&master, 20, |b| b.contains("RESOLUTION=256x144"));
    let status = ff.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(ff.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "ffmpeg: {err}");
    up.wait_line(20, |l| l.contains("no source (waiting for a creator to publish)"));
}

#[test]
fn embed_page_plays_the_demo_event_in_hlsjs() {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        harness.join("node_modules/playwright-core").exists(),
        "the browser harness is not installed: run `make deps-test deps-browser` (make test does)"
    );
    // The small test source: a 720p real-time encode in a debug build next to Chromium's
    // start-up falls behind real time on a 2-core machine, and its late frames stall any
    // player (seen once in five local runs: 2 `waiting` events in the first 5 s).
    let mut up = Up::start("embed", &[], SMALL);
    let embed = up.url("embed page");
    let master = up.url("origin playback");
    get_ok(&master, 30, |b| b.contains("#EXT-X-STREAM-INF"));
    // The viewer arrives at a stream in its stride: three whole segments made, so that the
    // test source's and the server's start-up work is behind them (a viewer joining in the
    // first second on this 2-core machine, beside Chromium starting, saw stalls in CI).
    let media = master.replace("master.m3u8", "source/index.m3u8");
    get_ok(&media, 30, |b| b.matches("#EXTINF:").count() >= 3);
    let out = Command::new("node")
        .arg(harness.join("player.mjs"))
        .args(["--url", &embed, "--seconds", "20"])
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = stdout.lines().last().unwrap_or("");
    // The figures the issue asks for, in the test output.
    println!("embed page in hls.js: {report}");
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("\"waiting\":0") && report.contains("\"ok\":true"),
        "{report}"
    );
}

#[test]
fn popcast_origin_serves_the_configured_events() {
    let key = "clinic-key-0123456789abcdef";
    let config = format!(
        "[origin]\nrtmp_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\nwhip = {{ udp_listen = \"127.0.0.1:0\" }}\n\n[[origin.events]]\nname = \"clinic\"\nstream_key = \"{key}\"\n"
    );
    let mut origin = Up::run("origin", &["origin"], &config);
    let http = origin.url("HTTP");
    let rtmp = origin.url("RTMP ingest");
    let health = get_ok(&format!("http://{http}/healthz"), 10, |b| b.contains("clinic"));
    assert!(!health.contains(key), "{health}");
    let mut ff = common::ffmpeg_publish(&format!("rtmp://{rtmp}/live/{key}"), 3, "160x90");
    get_ok(&format!("http://{http}/live/clinic/master.m3u8"), 20, |b| {
        b.contains("RESOLUTION=160x90")
    });
    assert!(ff.wait().unwrap().success());
    // The key never reaches the logs.
    assert!(origin.seen.iter().all(|l| !l.contains(key)), "{:?}", origin.seen);
}

#[test]
fn embed_page_opened_before_go_live_plays_when_the_creator_publishes() {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        harness.join("node_modules/playwright-core").exists(),
        "run `make deps-test deps-browser`"
    );
    let mut up = Up::start("early", &["--source", "none"], "");
    let embed = up.url("embed page");
    let rtmp = up.url("RTMP publish");
    // The viewer is there first: the page waits while the event has no stream (503).
    let viewer = Command::new("node")
        .arg(harness.join("player.mjs"))
        .args(["--url", &embed, "--seconds", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run node");
    std::thread::sleep(Duration::from_secs(4));
    let mut ff = common::ffmpeg_publish(&rtmp, 25, "320x180");
    let out = viewer.wait_with_output().unwrap();
    let _ = ff.kill();
    let _ = ff.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = stdout.lines().last().unwrap_or("");
    println!("embed page opened before go-live: {report}");
    assert!(out.status.success(), "{report}");
    assert!(report.contains("\"waiting\":0"), "{report}");
}

/// The ingest analyzer on a real publisher: ffmpeg sends 25 fps with a 4 s keyframe interval
/// and B-frames; within 10 s of publishing, `GET /api/v1/events/{id}/ingest` reports what
/// ffmpeg was told and warns about the keyframe interval and the B-frames, naming the fix.
#[test]
fn the_ingest_report_shows_what_the_publisher_sends_and_what_to_fix() {
    let key = "ingest-key-0123456789abcdef";
    let token = "ingest-operator-token-0123456789";
    let config = format!(
        "[origin]\nrtmp_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\nwhip = {{ udp_listen = \"127.0.0.1:0\" }}\noperator_token = \"{token}\"\n\n[[origin.events]]\nname = \"clinic\"\nstream_key = \"{key}\"\n"
    );
    let mut origin = Up::run("ingest", &["origin"], &config);
    let http = origin.url("HTTP");
    let rtmp = origin.url("RTMP ingest");
    let api = format!("http://{http}/api/v1/events/clinic/ingest");
    let (code, body) = common::get_with_token(&api, token);
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("\"report\":null"),
        "nobody has published yet: {body}"
    );
    let mut ff = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", "14", "-c:v", "libx264", "-preset", "ultrafast"])
        .args(["-profile:v", "main", "-g", "100", "-bf", "2"])
        .args(["-c:a", "aac", "-b:a", "64k"])
        .args(["-f", "flv", &format!("rtmp://{rtmp}/live/{key}")])
        .stdin(Stdio::null())
        .spawn()
        .expect("run ffmpeg");
    let started = Instant::now();
    let report = loop {
        let (code, body) = common::get_with_token(&api, token);
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        // Warned (from the open GOP already), and the interval measured (second keyframe).
        let warned = v["report"]["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w["code"] == "keyframe_interval"));
        if warned && v["report"]["video"]["keyframe_interval_s"]["max"].is_number() {
            break v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no keyframe warning within 15 s of publishing (the issue asks 10; the time taken is printed): {body}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    println!("ingest report after {:?}: {report}", started.elapsed());
    assert_eq!(report["publisher_connected"], true);
    let v = &report["report"]["video"];
    assert_eq!(v["keyframe_interval_s"]["max"], 4.0, "{report}");
    assert_eq!(v["b_frames"], true, "{report}");
    assert_eq!(v["fps_measured"], 25.0, "{report}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(320), Some(180))
    );
    assert_eq!(v["profile"], "Main", "{report}");
    assert_eq!(report["report"]["audio"]["sample_rate"], 48000);
    let warnings = report["report"]["warnings"].to_string();
    assert!(
        warnings.contains("keyframe interval is 4.0 s") && warnings.contains("b_frames"),
        "{warnings}"
    );
    // And as metrics.
    let (code, metrics) = common::get_with_token(&format!("http://{http}/metrics"), token);
    assert_eq!(code, 200);
    assert!(
        metrics.contains("popcast_ingest_keyframe_interval_seconds{event=\"clinic\",stat=\"max\"} 4")
            && metrics.contains("popcast_ingest_b_frames{event=\"clinic\"} 1"),
        "{metrics}"
    );
    let _ = ff.kill();
    let _ = ff.wait();
    // Without a token: refused.
    let (code, _) = common::get_with_token(&api, "wrong-token-0123456789012345");
    assert_eq!(code, 401);
}

/// The issue's analyzer matrix: keyframe intervals of 1, 4 and 10 s, with and without
/// B-frames, at 25 and 30 fps, published at once to one origin. Each report must say what
/// ffmpeg was told, the warnings must appear within 10 s of publishing, and no segment may
/// exceed the playlist's target duration whatever the GOP.
#[test]
fn the_ingest_report_matches_what_each_encoder_was_told_across_the_matrix() {
    let token = "matrix-operator-token-0123456789";
    let mut cases = Vec::new();
    for gop in [1u32, 4, 10] {
        for bf in [false, true] {
            for fps in [25u32, 30] {
                cases.push((
                    gop,
                    bf,
                    fps,
                    format!("m{gop}-{}-{fps}", if bf { "b" } else { "nob" }),
                ));
            }
        }
    }
    let mut config = format!(
        "[origin]\nrtmp_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\nwhip = {{ udp_listen = \"127.0.0.1:0\" }}\noperator_token = \"{token}\"\n"
    );
    for (_, _, _, name) in &cases {
        config += &format!(
            "\n[[origin.events]]\nname = \"{name}\"\nstream_key = \"key-{name}-0123456789abcdef\"\n"
        );
    }
    let mut origin = Up::run("matrix", &["origin"], &config);
    let http = origin.url("HTTP");
    let rtmp = origin.url("RTMP ingest");
    let mut publishers: Vec<Child> = cases
        .iter()
        .map(|(gop, bf, fps, name)| {
            Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-re"])
                .args(["-f", "lavfi", "-i", &format!("testsrc2=size=256x144:rate={fps}")])
                .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
                .args([
                    "-t",
                    "16",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-profile:v",
                    "main",
                ])
                .args([
                    "-g",
                    &(gop * fps).to_string(),
                    "-keyint_min",
                    &(gop * fps).to_string(),
                ])
                .args(["-sc_threshold", "0", "-bf", if *bf { "2" } else { "0" }])
                .args(["-c:a", "aac", "-b:a", "48k"])
                .args([
                    "-f",
                    "flv",
                    &format!("rtmp://{rtmp}/live/key-{name}-0123456789abcdef"),
                ])
                .stdin(Stdio::null())
                .spawn()
                .expect("run ffmpeg")
        })
        .collect();
    let started = Instant::now();
    let report = |name: &str| {
        let (code, body) =
            common::get_with_token(&format!("http://{http}/api/v1/events/{name}/ingest"), token);
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON")
    };
    // When each warning first appeared, per case.
    let mut seen: Vec<[Option<Duration>; 2]> = vec![[None, None]; cases.len()];
    while started.elapsed() < Duration::from_secs(13) {
        for (i, (_, _, _, name)) in cases.iter().enumerate() {
            let r = report(name);
            for (j, code) in ["keyframe_interval", "b_frames"].into_iter().enumerate() {
                let on = r["report"]["warnings"]
                    .as_array()
                    .is_some_and(|w| w.iter().any(|w| w["code"] == code));
                if on && seen[i][j].is_none() {
                    seen[i][j] = Some(started.elapsed());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let mut failures = Vec::new();
    for (i, (gop, bf, fps, name)) in cases.iter().enumerate() {
        let r = report(name);
        let v = &r["report"]["video"];
        let kf_max = v["keyframe_interval_s"]["max"].as_f64();
        let row = format!(
            "{name}: keyframe max {kf_max:?} since {:?}, b_frames {}, fps {} | warnings at {:?}",
            v["since_keyframe_s"], v["b_frames"], v["fps_measured"], seen[i]
        );
        println!("{row}");
        let long_gop = *gop > 1;
        let ok = kf_max == Some(f64::from(*gop))
            && v["b_frames"] == *bf
            && v["fps_measured"].as_f64() == Some(f64::from(*fps))
            && seen[i][0].is_some() == long_gop
            && seen[i][1].is_some() == *bf
            && seen[i].iter().flatten().all(|t| *t <= Duration::from_secs(10));
        if !ok {
            failures.push(row);
        }
        // Whatever the source's GOP, no segment is longer than the target duration.
        let (code, pl) =
            common::get_with_token(&format!("http://{http}/live/{name}/source/index.m3u8"), token);
        assert_eq!(code, 200, "{name}: {pl}");
        let target: f64 = pl
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
            .and_then(|t| t.parse().ok())
            .expect("TARGETDURATION");
        for d in pl.lines().filter_map(|l| l.strip_prefix("#EXTINF:")) {
            let d: f64 = d.trim_end_matches(',').parse().expect("EXTINF");
            assert!(
                d.round() <= target,
                "{name}: a {d} s segment over the {target} s target\n{pl}"
            );
        }
    }
    for p in &mut publishers {
        let _ = p.kill();
        let _ = p.wait();
    }
    assert!(
        failures.is_empty(),
        "cases that did not match:\n{}",
        failures.join("\n")
    );
}

/// Event continuity in the browser (the issue's first "Done means"): hls.js joins a
/// provisioned event 20 s before its start and plays the slate; the creator publishes with
/// the ffmpeg CLI and the same player moves into the live stream; the creator's ffmpeg is
/// killed and restarted 10 s later; the player plays throughout with no fatal error. Every
/// playlist fetched meanwhile is validator-clean, its media sequence never goes back and each
/// segment keeps its discontinuity number; after the end the playlists carry EXT-X-ENDLIST.
#[test]
fn hlsjs_plays_the_slate_then_the_creator_through_a_reconnect_without_a_reload() {
    let token = "slate-operator-token-0123456789";
    let (origin, http, rtmp) = operator_origin(
        "slate",
        token,
        "\n[events]\npublisher_inactivity_ms = 2000\n\n[slate]\nwidth = 640\nheight = 360\nended_card_secs = 2\n",
    );
    let out = event_cli(
        &http,
        token,
        &[
            "create",
            "--id",
            "pop",
            "--title",
            "Pop-up clinic",
            "--start",
            "+20s",
            "--duration",
            "5",
        ],
    );
    let key = stream_key(&out);
    let publish = format!("rtmp://{rtmp}/live/{key}");
    let master = format!("{http}/live/pop/master.m3u8");
    // Provisioned at once (the start is within the lead time): the slate plays, 200 not 404.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = common::get_with_token(&master, token);
        if code == 200 {
            assert!(body.contains("RESOLUTION=640x360"), "{body}");
            break;
        }
        assert!(Instant::now() < until, "no slate within 20 s: {code} {body}");
        std::thread::sleep(Duration::from_millis(250));
    }
    // The slate's cost: the origin's CPU time over 5 s with this one event on its slate and
    // no viewer (printed for the issue's note; /proc/PID/stat utime + stime, in ticks of 10 ms).
    let cpu = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
        // After the name: state, ppid, …; utime and stime are stat's 14th and 15th fields.
        let f: Vec<&str> = after.split_whitespace().collect();
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        n(11) + n(12)
    };
    let pid = origin.child.id();
    let (c0, w0) = (cpu(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(5));
    let used_ms = (cpu(pid) - c0) * 10;
    println!(
        "slate CPU: the origin used {used_ms} ms of CPU in {:?} with one event on its slate (640x360, 30 fps) and no viewer",
        w0.elapsed()
    );
    // Every playlist fetched meanwhile, checked.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let stop = stop.clone();
        let url = format!("{http}/live/pop/source/index.m3u8");
        let token = token.to_string();
        std::thread::spawn(move || {
            let mut problems = Vec::new();
            let mut last_msn = 0u64;
            let mut first_msn = None;
            let mut disc_of: std::collections::BTreeMap<u64, u64> = Default::default();
            let mut maps = std::collections::BTreeSet::new();
            let mut fetched = 0;
            let mut ended = false;
            let mut stopped: Option<Instant> = None;
            // Until told to stop and the playlists have ended (at most 15 s more).
            while stopped.is_none_or(|t| t.elapsed() < Duration::from_secs(15)) {
                if stopped.is_none() && stop.load(std::sync::atomic::Ordering::Relaxed) {
                    stopped = Some(Instant::now());
                }
                let (code, pl) = common::get_with_token(&url, &token);
                if code != 200 {
                    problems.push(format!("{code}: {pl}"));
                    break;
                }
                fetched += 1;
                if let Err(v) = popcast_packager::hls::check::check_media(&pl) {
                    problems.push(format!("{}\n{pl}", popcast_packager::hls::check::report(&v)));
                }
                let num = |tag: &str| {
                    pl.lines()
                        .find_map(|l| l.strip_prefix(tag))
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                let (msn0, mut disc) = (
                    num("#EXT-X-MEDIA-SEQUENCE:"),
                    num("#EXT-X-DISCONTINUITY-SEQUENCE:"),
                );
                first_msn.get_or_insert(msn0);
                if msn0 < last_msn {
                    problems.push(format!("media sequence went back: {last_msn} → {msn0}"));
                }
                last_msn = msn0;
                let mut msn = msn0;
                for l in pl.lines() {
                    if l == "#EXT-X-DISCONTINUITY" {
                        disc += 1;
                    } else if let Some(m) = l.strip_prefix("#EXT-X-MAP:URI=") {
                        maps.insert(m.to_string());
                    } else if l.starts_with("#EXTINF:") {
                        if let Some(&d) = disc_of.get(&msn) {
                            if d != disc {
                                problems.push(format!("segment {msn} was in discontinuity {d}, now {disc}"));
                            }
                        }
                        disc_of.insert(msn, disc);
                        msn += 1;
                    }
                }
                ended = pl.contains("#EXT-X-ENDLIST");
                if ended {
                    break;
                }
                std::thread::sleep(Duration::from_millis(400));
            }
            (problems, fetched, disc_of, maps, ended, first_msn)
        })
    };
    let harness = common::browser_harness();
    let player = Command::new("node")
        .arg(harness.join("play.mjs"))
        .args(["--url", &master, "--seconds", "48", "--low-latency"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let t0 = Instant::now();
    let at = |secs: u64| std::thread::sleep(Duration::from_secs(secs).saturating_sub(t0.elapsed()));
    at(10);
    let mut ff = common::ffmpeg_publish(&publish, 60, "320x180");
    at(22);
    let _ = ff.kill();
    let _ = ff.wait();
    at(32);
    // Back with another size: the same session carries on with new headers.
    let mut ff = common::ffmpeg_publish(&publish, 60, "480x270");
    at(44);
    event_cli(&http, token, &["end", "pop"]);
    let out = player.wait_with_output().expect("player");
    let _ = ff.kill();
    let _ = ff.wait();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (problems, fetched, disc_of, maps, ended, first_msn) = poller.join().expect("poller");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("player: {stdout}");
    println!("playlists fetched: {fetched}; discontinuities by segment: {disc_of:?}; maps: {maps:?}");
    let r: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(problems.is_empty(), "playlist problems:\n{}", problems.join("\n"));
    assert!(ended, "the playlists did not end");
    // Numbered from the clock (Unix seconds with a 2 s target), never from 0, so that an
    // origin restart cannot reuse a number.
    let first_msn = first_msn.expect("a playlist");
    assert!(first_msn > 1_700_000_000, "the session started at {first_msn}");
    assert!(r["fatalErrors"].as_array().is_some_and(|a| a.is_empty()), "{r}");
    // The slate at its configured 640x360, then the creator's 320x180 (a gap's slate is
    // drawn at the rendition's live size), then the creator back at 480x270.
    let widths: Vec<u64> = r["progress"]
        .as_array()
        .expect("progress")
        .iter()
        .map(|s| s[2].as_u64().unwrap_or(0))
        .collect();
    let mut runs: Vec<u64> = widths.clone();
    runs.dedup();
    assert!(runs.starts_with(&[640, 320]), "slate → live not seen: {widths:?}");
    assert!(
        runs.ends_with(&[480]),
        "the creator's new size not played: {widths:?}"
    );
    // currentTime kept advancing: no freeze at a switch long enough to matter.
    let freeze = r["longestFreezeMs"].as_u64().expect("longestFreezeMs");
    println!(
        "freezes [at ms, ms]: {}; creator published at 10 s (320x180), killed at 22 s, back at 32 s (480x270), end at 44 s",
        r["freezes"]
    );
    assert!(freeze < 5_000, "the player stood still for {freeze} ms: {r}");
    // The player followed every switch: slate, live, slate, live, ended card (and audio's).
    assert!(r["requests"]["init"].as_u64() >= Some(5), "{r}");
    // A header per switch (slate, live, slate, live, ended card) and a discontinuity at each.
    assert!(maps.len() >= 5, "{maps:?}");
    let discs: std::collections::BTreeSet<u64> = disc_of.values().copied().collect();
    assert!(
        discs.len() >= 5,
        "expected a discontinuity at each switch: {disc_of:?}"
    );
}

/// The issue's publisher drop matrix: gaps of 3 s, 15 s and 45 s (the last across the
/// scheduled end) resume the same session, with the slate in between; a gap beyond the
/// reconnect grace window after the scheduled end ends the event and its playlists.
#[test]
fn creator_gaps_within_the_grace_window_resume_the_session_and_a_longer_one_ends_it() {
    let token = "drops-operator-token-0123456789";
    let grace = 50;
    let (_origin, http, rtmp) = operator_origin(
        "drops",
        token,
        &format!(
            "\n[events]\npublisher_inactivity_ms = 2000\nreconnect_grace_secs = {grace}\n\n[slate]\nwidth = 320\nheight = 180\nended_card_secs = 1\n"
        ),
    );
    let t0 = Instant::now();
    let out = event_cli(
        &http,
        token,
        &["create", "--id", "drops", "--title", "Drops", "--duration", "1"],
    );
    let key = stream_key(&out);
    let publish = format!("rtmp://{rtmp}/live/{key}");
    let playlist = format!("{http}/live/drops/source/index.m3u8");
    let state = || {
        let (code, body) = common::get_with_token(&format!("{http}/api/v1/events/drops"), token);
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON")["state"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    // Polls the playlist until `secs` from the start: 200 throughout, the media sequence
    // never going back, no end. Returns the last media sequence number.
    let mut last_msn = 0u64;
    let watch_until = |secs: u64, last_msn: &mut u64| {
        while t0.elapsed() < Duration::from_secs(secs) {
            let (code, pl) = common::get_with_token(&playlist, token);
            if code == 200 {
                let msn: u64 = pl
                    .lines()
                    .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
                    .and_then(|v| v.parse().ok())
                    .expect("media sequence");
                assert!(msn >= *last_msn, "media sequence went back: {last_msn} → {msn}");
                assert!(
                    !pl.contains("#EXT-X-ENDLIST"),
                    "ended at {:?}:\n{pl}",
                    t0.elapsed()
                );
                *last_msn = msn;
            } else {
                assert!(
                    t0.elapsed() < Duration::from_secs(15),
                    "{code} at {:?}: {pl}",
                    t0.elapsed()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    // The slate is on before the creator comes.
    while common::get_with_token(&playlist, token).0 != 200 {
        assert!(t0.elapsed() < Duration::from_secs(15), "no slate within 15 s");
        std::thread::sleep(Duration::from_millis(250));
    }
    // Publish 6 s, then gaps of 3, 15 and 45 s, each followed by 6 s of publishing.
    let mut at = t0.elapsed().as_secs() + 1;
    for gap in [None, Some(3), Some(15), Some(45)] {
        if let Some(g) = gap {
            at += g;
            watch_until(at, &mut last_msn);
        }
        let mut ff = common::ffmpeg_publish(&publish, 60, "160x90");
        at += 6;
        watch_until(at, &mut last_msn);
        let _ = ff.kill();
        let _ = ff.wait();
        println!(
            "published until {:?}: state {}, media sequence {last_msn}",
            t0.elapsed(),
            state()
        );
    }
    assert_eq!(
        state(),
        "ending",
        "past the scheduled end, within the grace window"
    );
    let (_, tl) = common::get_with_token(&format!("{http}/api/v1/events/drops/timeline"), token);
    let tl: serde_json::Value = serde_json::from_str(&tl).expect("JSON");
    let resumed = tl["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|m| m["type"] == "publisher.resumed")
        .count();
    assert_eq!(resumed, 3, "{tl}");
    // Gone beyond the grace window: the event ends and so do its playlists.
    let deadline = Instant::now() + Duration::from_secs(grace + 20);
    loop {
        let (code, pl) = common::get_with_token(&playlist, token);
        if pl.contains("#EXT-X-ENDLIST") {
            println!(
                "ended {:?} after the last publish",
                t0.elapsed() - Duration::from_secs(at)
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ended {grace} s after the creator left: {code} {pl}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(state(), "ended");
    assert!(
        t0.elapsed() >= Duration::from_secs(at + grace - 2),
        "ended before the grace window: {:?}",
        t0.elapsed()
    );
}

/// An origin with the operator API on (`token`), its other settings from `extra` (TOML
/// after the `[origin]` table's listen addresses and token): it, its HTTP base URL and its
/// RTMP address.
fn operator_origin(test: &str, token: &str, extra: &str) -> (Up, String, String) {
    operator_origin_env(test, token, extra, &[])
}

/// The same with extra environment variables for the origin process.
fn operator_origin_env(test: &str, token: &str, extra: &str, env: &[(&str, &str)]) -> (Up, String, String) {
    let config = format!(
        "[origin]\nrtmp_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\nwhip = {{ udp_listen = \"127.0.0.1:0\" }}\noperator_token = \"{token}\"\n{extra}"
    );
    let mut origin = Up::run_env(test, &["origin"], &config, env);
    let http = format!("http://{}", origin.url("HTTP"));
    let rtmp = origin.url("RTMP ingest");
    (origin, http, rtmp)
}

/// Waits up to `secs` for `child` to exit, and asserts it failed; `what` names the wait.
fn fails_within(child: &mut Child, secs: u64, what: &str) {
    let until = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < until, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "{what}: {status}");
}

/// A playlist watcher's thread: the problems it saw, playlists fetched, last media sequence.
type Watch = std::thread::JoinHandle<(Vec<String>, usize, u64)>;

/// Polls a media playlist every 300 ms (at most 400 times) until `stop` is set: each must be
/// 200, not ended, its media sequence never going back (and, with `validate`, clean under
/// `hls::check`). The thread returns the problems, the number fetched and the last media
/// sequence number.
fn watch_playlist(url: String, token: &str, validate: bool) -> (Arc<AtomicBool>, Watch) {
    let (stop, watcher) = watch_tolerating(url, token, validate.then_some(&[]));
    (
        stop,
        std::thread::spawn(move || {
            let (problems, fetched, last, _) = watcher.join().unwrap();
            (problems, fetched, last)
        }),
    )
}

/// [`watch_playlist`], validating unless `validate` is `None`, with the rules it names
/// tolerated: what broke them is returned apart (as `rule: detail`, each once).
#[allow(clippy::type_complexity)]
fn watch_tolerating(
    url: String,
    token: &str,
    validate: Option<&'static [&'static str]>,
) -> (
    Arc<AtomicBool>,
    std::thread::JoinHandle<(Vec<String>, usize, u64, std::collections::BTreeSet<String>)>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, token) = (stop.clone(), token.to_string());
    let watcher = std::thread::spawn(move || {
        let mut tolerated = std::collections::BTreeSet::new();
        let (mut problems, mut last, mut fetched) = (Vec::new(), 0u64, 0);
        while !flag.load(Ordering::Relaxed) && fetched < 400 {
            let (code, pl) = common::get_with_token(&url, &token);
            fetched += 1;
            if code != 200 {
                problems.push(format!("{code}: {pl}"));
                break;
            }
            if let Some(ok) = validate
                && let Err(v) = popcast_packager::hls::check::check_media(&pl)
            {
                let (known, other): (Vec<_>, Vec<_>) = v.into_iter().partition(|v| ok.contains(&v.rule));
                tolerated.extend(known.iter().map(|v| format!("{}: {}", v.rule, v.detail)));
                if !other.is_empty() {
                    problems.push(popcast_packager::hls::check::report(&other));
                }
            }
            let msn: u64 = pl
                .lines()
                .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if msn < last {
                problems.push(format!("media sequence went back: {last} → {msn}"));
            }
            if pl.contains("#EXT-X-ENDLIST") {
                problems.push(format!("ended:\n{pl}"));
                break;
            }
            last = msn;
            std::thread::sleep(Duration::from_millis(300));
        }
        (problems, fetched, last, tolerated)
    });
    (stop, watcher)
}

/// The stream key `popcast event create` (or `stream-key`) printed.
fn stream_key(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("stream key: "))
        .expect("the stream key")
        .to_string()
}

/// `popcast event ARGS --origin HTTP` with the operator token; its stdout, after asserting success.
fn event_cli(http: &str, token: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_popcast"))
        .arg("event")
        .args(args)
        .args(["--origin", http])
        .env("POPCAST_OPERATOR_TOKEN", token)
        .output()
        .expect("run popcast event");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A webhook receiver: its port, a switch, and each request's `Popcast-Signature` and body.
/// While the switch is off it answers 503 (and keeps nothing); on, 200.
fn webhook_receiver() -> (
    u16,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    mpsc::Receiver<(String, String)>,
) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
    let port = listener.local_addr().unwrap().port();
    let up = std::sync::Arc::new(AtomicBool::new(false));
    let up2 = up.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(500) {
            let Ok(mut c) = conn else { continue };
            let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(i + 4);
                }
                match c.read(&mut chunk) {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let Some(head_end) = head_end else { continue };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .map(|v| v.trim().to_string())
            };
            let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            while buf.len() < head_end + len {
                match c.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let end = (head_end + len).min(buf.len());
            let body = String::from_utf8_lossy(&buf[head_end..end]).into_owned();
            if !up2.load(Ordering::SeqCst) {
                let _ = c.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                continue;
            }
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            if tx
                .send((header("popcast-signature").unwrap_or_default(), body))
                .is_err()
            {
                break;
            }
        }
    });
    (port, up, rx)
}

/// Lifecycle webhooks through a creator's reconnect and a 4 s freeze, with the receiver down
/// for the first 20 s: every moment arrives later, in order, once, signed; the timeline
/// lists them too.
#[test]
fn lifecycle_webhooks_arrive_in_order_and_signed_after_the_receiver_comes_back() {
    let token = "hooks-operator-token-0123456789";
    let secret = "hooks-signing-secret-0123456789";
    // The receiver answers 503 until it is switched on.
    let (port, receiver_up, received) = webhook_receiver();
    let (_origin, http, rtmp) = operator_origin(
        "hooks",
        token,
        &format!(
            "\n[origin.limits]\npublisher_idle_timeout_ms = 10000\n\n[events]\npublisher_inactivity_ms = 1000\n\n[webhooks]\nurl = \"http://127.0.0.1:{port}/hooks\"\nsecret = \"{secret}\"\ntimeout_ms = 2000\nmax_backoff_secs = 2\n"
        ),
    );
    let cli = |args: &[&str]| event_cli(&http, token, args);
    let created = Instant::now();
    let out = cli(&["create", "--id", "hooks", "--title", "Hooks", "--duration", "30"]);
    let key = stream_key(&out);
    let publish = format!("rtmp://{rtmp}/live/{key}");
    let timeline_url = format!("{http}/api/v1/events/hooks/timeline");
    let timeline = || {
        let (code, body) = common::get_with_token(&timeline_url, token);
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON")
    };
    let types = |v: &serde_json::Value| -> Vec<String> {
        v["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let wait_types = |n: usize, what: &str| {
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let v = timeline();
            if types(&v).len() >= n {
                return v;
            }
            assert!(Instant::now() < until, "waiting for {what}: {v}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let mut ff = common::ffmpeg_publish(&publish, 60, "160x90");
    let v = wait_types(3, "provisioned, connected, live");
    assert_eq!(
        types(&v),
        ["event.provisioned", "publisher.connected", "event.live"]
    );
    // The receiver is down: nothing delivered, attempts counted, the reason kept.
    std::thread::sleep(Duration::from_secs(3));
    let v = timeline();
    let first = &v["timeline"][0];
    assert!(
        first["delivered"].is_null() && first["attempts"].as_u64() >= Some(1),
        "{v}"
    );
    assert!(first["last_error"].as_str().unwrap_or("").contains("503"), "{v}");
    // Down for 20 s in all, then up.
    std::thread::sleep(Duration::from_secs(20).saturating_sub(created.elapsed()));
    receiver_up.store(true, std::sync::atomic::Ordering::SeqCst);
    // The creator's connection drops and comes back.
    let _ = ff.kill();
    let _ = ff.wait();
    wait_types(4, "publisher.lost");
    let mut ff = common::ffmpeg_publish(&publish, 60, "160x90");
    wait_types(5, "publisher.resumed");
    // The creator's machine freezes for 4 s (its connection stays open): lost for
    // inactivity, read from the media, then resumed when frames flow again.
    std::thread::sleep(Duration::from_secs(2));
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &ff.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill {sig}");
    };
    signal("-STOP");
    std::thread::sleep(Duration::from_secs(4));
    signal("-CONT");
    wait_types(7, "publisher.lost (inactivity) and publisher.resumed");
    cli(&["end", "hooks"]);
    let _ = ff.kill();
    let _ = ff.wait();
    let want = [
        "event.provisioned",
        "publisher.connected",
        "event.live",
        "publisher.lost",
        "publisher.resumed",
        "publisher.lost",
        "publisher.resumed",
        "publisher.lost",
        "event.ended",
        "slots.released",
    ];
    let mut got: Vec<serde_json::Value> = Vec::new();
    let until = Instant::now() + Duration::from_secs(20);
    while got.len() < want.len() {
        let left = until.saturating_duration_since(Instant::now());
        let Ok((signature, body)) = received.recv_timeout(left) else {
            panic!("received {} of {}: {got:?}", got.len(), want.len());
        };
        assert!(
            popcast_origin::events::webhooks::verify(secret.as_bytes(), body.as_bytes(), &signature),
            "a bad signature {signature:?} on {body}"
        );
        let b: serde_json::Value = serde_json::from_str(&body).expect("a JSON body");
        // At least once: a retry of a moment already seen is dropped by its id.
        if !got.iter().any(|g| g["id"] == b["id"]) {
            got.push(b);
        }
    }
    let kinds: Vec<&str> = got.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, want, "{got:?}");
    let seqs: Vec<u64> = got.iter().map(|b| b["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    let ids: std::collections::HashSet<&str> = got.iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 10, "unique idempotency ids");
    assert!(
        got.iter()
            .all(|b| b["event"] == "hooks" && b["at"].as_str().is_some())
    );
    assert_eq!(got[3]["data"]["reason"], "disconnect");
    assert_eq!(got[5]["data"]["reason"], "inactivity");
    assert_eq!(got[7]["data"]["reason"], "ended");
    let v = timeline();
    assert!(
        v["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| !e["delivered"].is_null()),
        "{v}"
    );
    println!(
        "webhooks: {kinds:?} after the receiver came back at {:?}",
        created.elapsed()
    );
}

/// Per-event receivers: an event created with its own https `webhook_url` has its moments
/// POSTed there (TLS checked against the configured CA, signed, in order); an event whose
/// receiver accepts connections and never answers holds up no other event; an event
/// without one uses the deployment's receiver.
#[test]
fn each_event_reaches_its_own_receiver_over_https_and_a_hanging_one_holds_up_no_other() {
    use std::io::{BufRead, BufReader};
    let token = "routes-operator-token-0123456789";
    let secret = "routes-signing-secret-0123456789";
    let dir = std::env::temp_dir().join(format!("popcast-hook-pki-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _scratch = Scratch(dir.clone());
    let (ca, leaf) = common::tls::test_pki(&dir);
    // The https receiver: Python's http.server behind its ssl module (OpenSSL), printing
    // its port, then one JSON line per request.
    let script = r#"
import http.server, json, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        print(json.dumps({"path": self.path, "sig": self.headers.get("popcast-signature", ""), "body": body.decode()}), flush=True)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.timeout = 1
for _ in range(120):
    srv.handle_request()
"#;
    let mut https = Service(
        Command::new("python3")
            .args(["-c", script])
            .arg(&leaf.cert_path)
            .arg(&leaf.key_path)
            .stdout(Stdio::piped())
            .spawn()
            .expect("run python3"),
    );
    let mut lines = BufReader::new(https.0.stdout.take().unwrap()).lines();
    let https_port: u16 = lines.next().unwrap().unwrap().trim().parse().expect("a port");
    let (tx, https_got) = mpsc::channel();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    // A receiver that accepts and never answers (connections held until the test ends).
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_port = hang.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<_> = hang.incoming().take(50).collect();
        drop(held);
    });
    let (port, deployment_up, deployment_got) = webhook_receiver();
    deployment_up.store(true, std::sync::atomic::Ordering::SeqCst);
    let (_origin, http, _) = operator_origin(
        "routes",
        token,
        &format!(
            "\n[webhooks]\nurl = \"http://127.0.0.1:{port}/hooks\"\nsecret = \"{secret}\"\ntimeout_ms = 8000\nmax_backoff_secs = 2\nca_file = \"{}\"\n",
            ca.display()
        ),
    );
    let cli = |args: &[&str]| event_cli(&http, token, args);
    let own = format!("https://127.0.0.1:{https_port}/popcast?event=tls");
    let out = cli(&[
        "create",
        "--id",
        "stuck",
        "--title",
        "Stuck",
        "--webhook-url",
        &format!("http://127.0.0.1:{hang_port}/never"),
    ]);
    assert!(out.contains("webhook url: http://127.0.0.1:"), "{out}");
    cli(&["create", "--id", "tls", "--title", "TLS", "--webhook-url", &own]);
    cli(&["create", "--id", "plain", "--title", "Plain"]);
    for id in ["stuck", "tls", "plain"] {
        // Provisioned at the lifecycle's next tick (the start is now), then ended.
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let (_, tl) = common::get_with_token(&format!("{http}/api/v1/events/{id}/timeline"), token);
            if tl.contains("event.provisioned") {
                break;
            }
            assert!(Instant::now() < until, "{id} not provisioned: {tl}");
            std::thread::sleep(Duration::from_millis(200));
        }
        cli(&["end", id]);
    }
    // Each event's three moments (provisioned, ended, slots released) reach its receiver
    // within 5 s, while the stuck one's first attempt waits out its 8 s timeout.
    let want = ["event.provisioned", "event.ended", "slots.released"];
    let ended_at = Instant::now();
    let collect = |what: &str, next: &dyn Fn(Duration) -> Option<(String, String)>| {
        let until = ended_at + Duration::from_secs(5);
        let mut got: Vec<serde_json::Value> = Vec::new();
        while got.len() < want.len() {
            let Some((sig, body)) = next(until.saturating_duration_since(Instant::now())) else {
                panic!("{what}: received {got:?}");
            };
            assert!(
                popcast_origin::events::webhooks::verify(secret.as_bytes(), body.as_bytes(), &sig),
                "{what}: a bad signature on {body}"
            );
            let b: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            if !got.iter().any(|g| g["id"] == b["id"]) {
                got.push(b);
            }
        }
        got
    };
    let over_https = collect("https receiver", &|left| {
        let l = https_got.recv_timeout(left).ok()?;
        let v: serde_json::Value = serde_json::from_str(&l).ok()?;
        assert_eq!(v["path"], "/popcast?event=tls");
        Some((v["sig"].as_str()?.to_string(), v["body"].as_str()?.to_string()))
    });
    let deployment = collect("deployment receiver", &|left| {
        deployment_got.recv_timeout(left).ok()
    });
    for (got, event) in [(&over_https, "tls"), (&deployment, "plain")] {
        let kinds: Vec<&str> = got.iter().map(|b| b["type"].as_str().unwrap_or("")).collect();
        assert_eq!(kinds, want, "{event}: {got:?}");
        assert!(got.iter().all(|b| b["event"] == event), "{got:?}");
        let seqs: Vec<u64> = got.iter().map(|b| b["seq"].as_u64().unwrap_or(0)).collect();
        assert_eq!(seqs, [1, 2, 3]);
    }
    // The stuck event: nothing delivered, its attempts timed out, the reason kept.
    let until = Instant::now() + Duration::from_secs(20);
    let tl = loop {
        let (_, tl) = common::get_with_token(&format!("{http}/api/v1/events/stuck/timeline"), token);
        let tl: serde_json::Value = serde_json::from_str(&tl).expect("JSON");
        if tl["timeline"][0]["attempts"].as_u64() >= Some(1) {
            break tl;
        }
        assert!(Instant::now() < until, "no attempt for the stuck event: {tl}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let first = &tl["timeline"][0];
    assert!(first["delivered"].is_null(), "{tl}");
    assert!(
        first["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("no answer within 8000 ms"),
        "{tl}"
    );
    // Nothing of the other events went to the deployment receiver (a retry of one of its
    // own moments may).
    for (_, body) in deployment_got.try_iter() {
        let b: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert!(deployment.iter().any(|g| g["id"] == b["id"]), "{b}");
    }
    // A receiver URL the API cannot use is named.
    let refused = Command::new(env!("CARGO_BIN_EXE_popcast"))
        .args([
            "event",
            "create",
            "--title",
            "Bad",
            "--webhook-url",
            "ftp://h/x",
            "--origin",
            &http,
        ])
        .env("POPCAST_OPERATOR_TOKEN", token)
        .output()
        .expect("run popcast event");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && err.contains("webhook_url"), "{err}");
}

/// `popcast event kick`: the publisher's connection ends, its key stops working until
/// `popcast event stream-key` makes a new one, and the timeline says it was a kick.
#[test]
fn an_operator_kick_ends_the_publish_and_revokes_the_key_until_a_new_one() {
    let token = "kick-operator-token-0123456789";
    let (_origin, http, rtmp) = operator_origin("kick", token, "");
    let cli = |args: &[&str]| event_cli(&http, token, args);
    let key = stream_key(&cli(&[
        "create",
        "--id",
        "kick",
        "--title",
        "Kick",
        "--duration",
        "30",
    ]));
    let timeline = || {
        let (code, body) = common::get_with_token(&format!("{http}/api/v1/events/kick/timeline"), token);
        assert_eq!(code, 200, "{body}");
        body
    };
    let wait_for = |what: &str| {
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let body = timeline();
            if body.contains(what) {
                return body;
            }
            assert!(Instant::now() < until, "no {what} in {body}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let mut ff = common::ffmpeg_publish(&format!("rtmp://{rtmp}/live/{key}"), 60, "160x90");
    wait_for("publisher.connected");
    let out = cli(&["kick", "kick"]);
    assert!(
        out.contains("publisher kicked") && out.contains("stream key revoked"),
        "{out}"
    );
    // ffmpeg's connection is closed: it exits with an error well before its 60 s.
    fails_within(&mut ff, 15, "ffmpeg still publishing after the kick");
    let body = wait_for("\"kicked\"");
    assert!(body.contains("publisher.lost"), "{body}");
    // The old key is refused.
    let mut again = common::ffmpeg_publish(&format!("rtmp://{rtmp}/live/{key}"), 60, "160x90");
    fails_within(&mut again, 15, "the revoked key still publishes");
    assert!(!timeline().contains("publisher.resumed"));
    // A new key works, and the session resumes.
    let fresh = stream_key(&cli(&["stream-key", "kick"]));
    assert_ne!(fresh, key);
    let mut ff = common::ffmpeg_publish(&format!("rtmp://{rtmp}/live/{fresh}"), 60, "160x90");
    wait_for("publisher.resumed");
    let _ = ff.kill();
    let _ = ff.wait();
}

/// The issue's faults on reconnect: a publisher with a wrong key is refused while the
/// session plays on (on the slate); two publishers racing to resume with the right key: one
/// resumes, the other is refused as busy, and the session is the same throughout (200,
/// validator-clean, the media sequence only increasing, no end).
#[test]
fn a_wrong_key_and_two_racing_resumes_leave_the_session_whole() {
    let token = "race-operator-token-0123456789";
    let (mut origin, http, rtmp) = operator_origin(
        "race",
        token,
        "\n[events]\npublisher_inactivity_ms = 2000\n\n[slate]\nwidth = 320\nheight = 180\n",
    );
    let key = stream_key(&event_cli(
        &http,
        token,
        &["create", "--id", "race", "--title", "Race", "--duration", "30"],
    ));
    let publish = |key: &str| common::ffmpeg_publish(&format!("rtmp://{rtmp}/live/{key}"), 60, "160x90");
    let timeline = || common::get_with_token(&format!("{http}/api/v1/events/race/timeline"), token).1;
    // Moments of one type (or with one `data.reason`) in a timeline.
    let count = |body: &str, what: &str| {
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        v["timeline"].as_array().map_or(0, |a| {
            a.iter()
                .filter(|m| m["type"] == what || m["body"]["data"]["reason"] == what)
                .count()
        })
    };
    let wait_for = |what: &str, n: usize| {
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let body = timeline();
            if count(&body, what) >= n {
                return body;
            }
            assert!(Instant::now() < until, "not {n} × {what} in {body}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let playlist = format!("{http}/live/race/source/index.m3u8");
    let until = Instant::now() + Duration::from_secs(15);
    while common::get_with_token(&playlist, token).0 != 200 {
        assert!(Instant::now() < until, "no slate within 15 s");
        std::thread::sleep(Duration::from_millis(250));
    }
    // Every playlist from here on: 200, clean, increasing, not ended.
    let (stop, watcher) = watch_playlist(playlist.clone(), token, true);
    let mut first = publish(&key);
    wait_for("publisher.connected", 1);
    std::thread::sleep(Duration::from_secs(4));
    let _ = first.kill();
    let _ = first.wait();
    // A wrong key of the right shape is refused; the event's publisher count is unchanged.
    let wrong: String = key.chars().map(|c| if c == 'a' { 'b' } else { 'a' }).collect();
    let mut intruder = publish(&wrong);
    fails_within(&mut intruder, 15, "a wrong key publishes");
    assert_eq!(count(&timeline(), "publisher.connected"), 1);
    // Two publishers with the right key at once: the first to claim resumes the session,
    // the other is refused as busy (publish takeover is off) and its connection closed.
    let mut racers = [publish(&key), publish(&key)];
    let until = Instant::now() + Duration::from_secs(15);
    let loser = loop {
        if let Some(i) = racers.iter_mut().position(|c| c.try_wait().unwrap().is_some()) {
            break i;
        }
        assert!(Instant::now() < until, "both racers still publishing");
        std::thread::sleep(Duration::from_millis(100));
    };
    let body = wait_for("publisher.resumed", 1);
    let busy = origin.wait_line(10, |l| l.contains("already fed by"));
    println!("the losing racer: {busy}");
    // The winner publishes on.
    std::thread::sleep(Duration::from_secs(4));
    let winner = &mut racers[1 - loser];
    assert!(winner.try_wait().unwrap().is_none(), "the winner stopped too");
    let _ = winner.kill();
    let _ = winner.wait();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (problems, fetched, last) = watcher.join().expect("watcher");
    println!("racing resumes: {fetched} playlists fetched, last media sequence {last}; timeline {body}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(fetched >= 20, "{fetched}");
    let (_, ev) = common::get_with_token(&format!("{http}/api/v1/events/race"), token);
    let ev: serde_json::Value = serde_json::from_str(&ev).expect("JSON");
    assert_eq!(ev["state"], "live", "{ev}");
}

/// The refuse keyframe policy: a 10 s GOP publish is ended once a keyframe is half a second
/// overdue past the 2 s target, with the analyzer's message (the fix in the creator's
/// words) in the log; a 1 s GOP publish on the same event is not.
#[test]
fn the_refuse_keyframe_policy_ends_a_long_gop_publish_with_the_fix() {
    let token = "gop-operator-token-0123456789";
    let (mut origin, http, rtmp) = operator_origin(
        "gop",
        token,
        "\n[events]\nkeyframe_policy = \"refuse\"\n\n[slate]\nenabled = false\n",
    );
    let key = stream_key(&event_cli(
        &http,
        token,
        &["create", "--id", "gop", "--title", "GOP", "--duration", "30"],
    ));
    let url = format!("rtmp://{rtmp}/live/{key}");
    let started = Instant::now();
    let mut long = common::ffmpeg_publish_gop(&url, 30, "160x90", 300);
    fails_within(&mut long, 20, "a 10 s GOP still publishing");
    let refused = started.elapsed();
    let line = origin.wait_line(10, |l| l.contains("no keyframe for"));
    assert!(line.contains("set the keyframe interval to 2 s in OBS"), "{line}");
    println!("refused after {refused:?}: {line}");
    let mut short = common::ffmpeg_publish_gop(&url, 30, "160x90", 30);
    std::thread::sleep(Duration::from_secs(5));
    assert!(short.try_wait().unwrap().is_none(), "a 1 s GOP was refused");
    let _ = short.kill();
    let _ = short.wait();
}

/// Debian's libfaketime, which `make deps-test` installs.
fn faketime_lib() -> String {
    let out = Command::new("dpkg").args(["-L", "libfaketime"]).output();
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| l.ends_with("/libfaketime.so.1"))
                .map(str::to_string)
        })
        .expect("libfaketime is not installed: run `make deps-test` (make test does)")
}

/// A step of the machine's clock under the origin (libfaketime steps its wall clock only;
/// the monotonic clock stays real, as with an NTP step): during a creator gap, 6 min
/// forward, past the 5 min event's scheduled end (the event is then `ending`, and a quiet
/// time read from the wall clock would exceed the 30 s reconnect grace and end it); the
/// creator resumes; then the clock steps back. The session plays on throughout (200,
/// increasing media sequence, no end), and webhook retries planned on the stepped clock
/// are not held up when it steps back.
#[test]
fn a_clock_step_loses_no_session_and_holds_up_no_webhook() {
    let lib = faketime_lib();
    let token = "clock-operator-token-0123456789";
    let secret = "clock-signing-secret-0123456789";
    let stamp = std::env::temp_dir().join(format!("popcast-clock-{}", std::process::id()));
    std::fs::write(&stamp, "+0\n").unwrap();
    let _scratch = Scratch(stamp.clone());
    let step = |spec: &str| {
        std::fs::write(&stamp, format!("{spec}\n")).unwrap();
        // libfaketime rereads the file every second.
        std::thread::sleep(Duration::from_secs(3));
    };
    let (port, receiver_up, received) = webhook_receiver();
    let stamp_path = stamp.display().to_string();
    let (_origin, http, rtmp) = operator_origin_env(
        "clock",
        token,
        &format!(
            "\n[events]\npublisher_inactivity_ms = 2000\nreconnect_grace_secs = 30\n\n[slate]\nwidth = 320\nheight = 180\n\n[webhooks]\nurl = \"http://127.0.0.1:{port}/hooks\"\nsecret = \"{secret}\"\ntimeout_ms = 1000\nmax_backoff_secs = 2\n"
        ),
        &[
            ("LD_PRELOAD", &lib),
            ("FAKETIME_TIMESTAMP_FILE", &stamp_path),
            ("FAKETIME_CACHE_DURATION", "1"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    let key = stream_key(&event_cli(
        &http,
        token,
        &["create", "--id", "clock", "--title", "Clock", "--duration", "5"],
    ));
    let publish = format!("rtmp://{rtmp}/live/{key}");
    let timeline = || common::get_with_token(&format!("{http}/api/v1/events/clock/timeline"), token).1;
    let wait_for = |what: &str| {
        let until = Instant::now() + Duration::from_secs(15);
        while !timeline().contains(what) {
            assert!(Instant::now() < until, "no {what}: {}", timeline());
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let mut ff = common::ffmpeg_publish(&publish, 90, "160x90");
    wait_for("event.live");
    // Every playlist from here on: 200, increasing, not ended.
    let (stop, watcher) = watch_playlist(format!("{http}/live/clock/source/index.m3u8"), token, false);
    // The creator drops; 6 min forward in the gap; the creator comes back.
    let _ = ff.kill();
    let _ = ff.wait();
    wait_for("publisher.lost");
    step("+360");
    let mut ff = common::ffmpeg_publish(&publish, 90, "160x90");
    wait_for("publisher.resumed");
    // Back 6 min; the receiver comes up.
    step("+0");
    receiver_up.store(true, std::sync::atomic::Ordering::SeqCst);
    let want = [
        "event.provisioned",
        "publisher.connected",
        "event.live",
        "publisher.lost",
        "publisher.resumed",
    ];
    let mut got: Vec<serde_json::Value> = Vec::new();
    let until = Instant::now() + Duration::from_secs(15);
    while got.len() < want.len() {
        let Ok((_, body)) = received.recv_timeout(until.saturating_duration_since(Instant::now())) else {
            panic!(
                "webhooks held up after the clock stepped back: {got:?}\n{}",
                timeline()
            );
        };
        let b: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        if !got.iter().any(|g| g["id"] == b["id"]) {
            got.push(b);
        }
    }
    let kinds: Vec<&str> = got.iter().map(|b| b["type"].as_str().unwrap_or("")).collect();
    assert_eq!(kinds, want);
    // The moments carry the clock they were made on: the resume 6 min after the loss.
    let at = |i: usize| {
        popcast_origin::events::api::parse_rfc3339(got[i]["at"].as_str().unwrap_or(""))
            .expect("an RFC 3339 time")
    };
    assert!(at(4) - at(3) >= 350, "the step is not in the moments: {got:?}");
    let (_, ev) = common::get_with_token(&format!("{http}/api/v1/events/clock"), token);
    let ev: serde_json::Value = serde_json::from_str(&ev).expect("JSON");
    // Past its scheduled end on the stepped clock (states never go back), not ended.
    assert_eq!(ev["state"], "ending", "{ev}");
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (problems, fetched, last) = watcher.join().expect("watcher");
    let _ = ff.kill();
    let _ = ff.wait();
    println!("clock steps: {fetched} playlists fetched, last media sequence {last}; moments {kinds:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Issue 5's rendition switch, by the viewer's own player: the all-in-one's test source at
/// 640x360 with a ladder of 270p and 180p (a quarter of the CPU of the default 720p source
/// with its 480p and 360p rungs, which with Chromium decoding 720p fills a 2-core machine);
/// the viewer picks the lowest, the highest and the lowest again from `<popcast-player>`'s
/// quality menu, 4 s apart. Each pick must land before the next and playback must never
/// stall (see .config/nextest.toml for the open problem this test has shown).
#[test]
fn the_web_player_switches_renditions_from_its_quality_menu_without_a_stall() {
    let harness = common::browser_harness();
    let mut up = Up::start(
        "switch",
        &[],
        "[test_source]\nwidth = 640\nheight = 360\nvideo_kbps = 800\n\n[ladder]\npassthrough = true\n\n[[ladder.renditions]]\nname = \"270p\"\nwidth = 480\nheight = 270\nvideo_kbps = 450\n\n[[ladder.renditions]]\nname = \"180p\"\nwidth = 320\nheight = 180\nvideo_kbps = 250\n",
    );
    let embed = up.url("embed page");
    let out = Command::new("node")
        .arg(harness.join("player.mjs"))
        .args(["--url", &embed, "--seconds", "18", "--switch-every", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = stdout.lines().last().unwrap_or("");
    println!("web player quality switches: {report}");
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.contains("trace "))
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let v: serde_json::Value = serde_json::from_str(report).expect("one JSON line");
    assert_eq!(v["levels"], 3, "{report}");
    assert_eq!(v["waiting"], 0, "{report}");
    let heights: Vec<u64> = v["switches"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["height"].as_u64())
        .collect();
    assert!(heights.windows(3).any(|w| w == [180, 360, 180]), "{heights:?}");
}

#[test]
fn operators_schedule_show_and_end_events_with_popcast_event() {
    let token = "cli-operator-token-0123456789";
    let config = format!(
        "[origin]\nrtmp_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\nwhip = {{ udp_listen = \"127.0.0.1:0\" }}\noperator_token = \"{token}\"\n"
    );
    let mut origin = Up::run("operator", &["origin"], &config);
    let http = format!("http://{}", origin.url("HTTP"));
    let event = |args: &[&str], with_token: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_popcast"));
        c.arg("event").args(args).args(["--origin", &http]);
        if with_token {
            c.env("POPCAST_OPERATOR_TOKEN", token);
        } else {
            c.env_remove("POPCAST_OPERATOR_TOKEN");
        }
        let out = c.output().expect("run popcast event");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = event(
        &[
            "create",
            "--id",
            "clinic",
            "--title",
            "Saturday clinic",
            "--duration",
            "30",
        ],
        true,
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("id: clinic") && out.contains("state: scheduled"),
        "{out}"
    );
    let key = stream_key(&out);
    assert_eq!(key.len(), 40, "{out}");
    let (code, out, _) = event(&["list"], true);
    assert!(
        code == Some(0) && out.contains("clinic") && out.contains("1 event(s)"),
        "{out}"
    );
    let (code, out, _) = event(&["show", "clinic"], true);
    assert!(code == Some(0) && out.contains("title: Saturday clinic"), "{out}");
    assert!(!out.contains(&key), "shown once: {out}");
    let (code, out, _) = event(&["token", "clinic", "--ttl", "60", "--session", "t-1"], true);
    assert!(code == Some(0) && out.contains("token: v1."), "{out}");
    // Refusals say why and exit 1.
    let (code, _, err) = event(&["list"], false);
    assert_eq!(code, Some(1));
    assert!(err.contains("needs a token"), "{err}");
    let (code, _, err) = event(&["create", "--title", "x", "--start", "tomorrow"], true);
    assert_eq!(code, Some(1));
    assert!(err.contains("422") && err.contains("`start`"), "{err}");
    let (code, out, err) = event(&["end", "clinic"], true);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("clinic: ended"), "{out}");
    // Keys and tokens stay out of the origin's log.
    assert!(
        origin
            .seen
            .iter()
            .all(|l| !l.contains(&key) && !l.contains(token)),
        "{:?}",
        origin.seen
    );
}

/// A `popcast` process started in `cwd`, killed when dropped.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_two_region_example_runs_and_both_edges_play_the_event() {
    // The example files as they are (fixed loopback ports, relative data directories),
    // started from a scratch directory.
    let dir = std::env::temp_dir().join(format!("popcast-two-regions-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _scratch = Scratch(dir.clone());
    let example = |f: &str| format!("{}/config/examples/two-regions/{f}", env!("CARGO_MANIFEST_DIR"));
    let start = |cmd: &str, file: &str| {
        Service(
            Command::new(env!("CARGO_BIN_EXE_popcast"))
                .args([cmd, "--config", &example(file)])
                .current_dir(&dir)
                .env_remove("RUST_LOG")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("popcast runs"),
        )
    };
    let _origin = start("origin", "origin.toml");
    // The origin writes its relay certificate on start; the edges trust that file.
    let cert = dir.join("data/origin/relay/cert.pem");
    let until = Instant::now() + Duration::from_secs(20);
    while !cert.exists() {
        assert!(Instant::now() < until, "no relay certificate");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _edges = [start("edge", "eu-west.toml"), start("edge", "us-east.toml")];
    let mut ff = common::ffmpeg_publish(
        "rtmp://127.0.0.1:1935/live/example-stream-key-change-me",
        12,
        "320x180",
    );
    for port in [8181, 8281] {
        let body = get_ok(
            &format!("http://127.0.0.1:{port}/live/clinic/master.m3u8"),
            30,
            |b| b.contains("#EXT-X-STREAM-INF"),
        );
        assert!(body.contains("RESOLUTION=320x180"), "{port}: {body}");
        get_ok(
            &format!("http://127.0.0.1:{port}/live/clinic/source/index.m3u8"),
            30,
            |b| b.contains("#EXT-X-PART:"),
        );
    }
    // /play sends each region's viewers to its edge, at the URL the example gives it.
    for (region, port) in [("eu-west", 8181), ("us-east", 8281)] {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-m",
                "10",
                "-w",
                "%{http_code} %{redirect_url}",
            ])
            .arg(format!("http://127.0.0.1:8080/play/clinic?region={region}"))
            .output()
            .expect("curl runs");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("302 http://127.0.0.1:{port}/live/clinic/master.m3u8")
        );
    }
    let _ = ff.kill();
    let _ = ff.wait();
}

// ---- WHIP (RFC 9725) ----

/// The WHIP endpoint and stream key `popcast up` printed.
fn whip_endpoint(up: &mut Up) -> (String, String) {
    let rtmp = up.url("RTMP publish");
    let key = rtmp.rsplit('/').next().unwrap().to_string();
    let whip = up.url("WHIP publish");
    (whip.split(' ').next().unwrap().to_string(), key)
}

/// The aiortc publisher (tests/whip/whip_publish.py): an independent WebRTC stack.
fn aiortc_publish(whip: &str, key: &str, secs: u32, extra: &[&str]) -> Child {
    Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/whip/whip_publish.py"))
        .args([whip, key, &secs.to_string()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (make deps-whip installs aiortc)")
}

/// A child's exit status and output, waiting at most `secs`.
fn finish(mut child: Child, secs: u64) -> (std::process::ExitStatus, String) {
    let until = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > until {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    (status, format!("{out}\n{err}"))
}

#[test]
fn an_aiortc_publisher_goes_live_over_whip_for_30_s_and_ffprobe_decodes_h264_and_aac() {
    let mut up = Up::start("whip-aiortc", &["--source", "none"], SMALL);
    let master = up.url("origin playback");
    let (whip, key) = whip_endpoint(&mut up);
    let publisher = aiortc_publish(&whip, &key, 32, &[]);
    // The publisher's 320x240 H.264 and its Opus, as AAC, make the ladder's top.
    get_ok(&master, 40, |b| {
        b.contains("RESOLUTION=320x240") && b.contains("avc1.") && b.contains("mp4a.40.2")
    });
    let media = master.replace("master.m3u8", "source/index.m3u8");
    let (msn, count) = media_sequence(&get_ok(&media, 5, |_| true));
    let first_newest = msn + count as u64;
    let (stop, watcher) = watch_playlist(media.clone(), "", true);
    let streams = probe_streams(&master, "codec_name,codec_type");
    assert!(streams.lines().any(|l| l == "h264|video"), "{streams}");
    assert!(streams.lines().any(|l| l == "aac|audio"), "{streams}");
    // A decode of real seconds of both, not only headers.
    let decode = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&master)
        .args(["-t", "4", "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        decode.status.success(),
        "ffmpeg decode: {}",
        String::from_utf8_lossy(&decode.stderr)
    );
    let (status, out) = finish(publisher, 60);
    stop.store(true, Ordering::Relaxed);
    let (problems, fetched, _) = watcher.join().unwrap();
    assert!(status.success(), "aiortc publisher: {out}");
    assert!(out.contains("deleted 200"), "{out}");
    // Audio and video on one timeline: aiortc captures both at once, and the origin lines
    // them up by the sender's reports, so their times at the same arrival agree.
    let report = out
        .lines()
        .find_map(|l| l.strip_prefix("report 200 "))
        .expect("a report");
    let report: serde_json::Value = serde_json::from_str(report).unwrap();
    assert_eq!(report["receiving"], true, "{report}");
    assert_eq!(report["report"]["video"]["width"], 320, "{report}");
    let av = report["report"]["av_offset_ms"].as_i64().expect("an A/V offset");
    eprintln!("A/V offset at the origin: {av} ms");
    assert!(av.abs() <= 150, "video and audio {av} ms apart: {report}");
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(fetched >= 60, "{fetched} playlists");
    // aiortc's encoder keeps a long GOP of its own: our keyframe requests (PLI) keep the
    // segments near their 2 s target.
    a_whip_publish_went_on(&mut up, &media, first_newest);
    // What an operator's Prometheus sees: one session started and none open, and the
    // keyframe requests that kept aiortc's segments near their target.
    let token = std::fs::read_to_string(up._dir.0.join("data/operator.token")).unwrap();
    let metrics_url = master.replace("/live/demo/master.m3u8", "/metrics");
    let (code, metrics) = common::get_with_token(&metrics_url, token.trim());
    assert_eq!(code, 200, "{metrics}");
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
    };
    assert_eq!(value("popcast_whip_sessions_started_total"), 1.0);
    assert_eq!(value("popcast_whip_sessions"), 0.0);
    assert!(value("popcast_whip_keyframe_requests_total") >= 5.0, "{metrics}");
}

/// After a WHIP publish of about 30 s that ended with DELETE: the media playlist moved on
/// by 10 or more segments from `first_newest` without a gap or a restart, every segment
/// near its 2 s target, and the origin logged the DELETE.
fn a_whip_publish_went_on(up: &mut Up, media: &str, first_newest: u64) {
    let pl = get_ok(media, 5, |_| true);
    let (msn, count) = media_sequence(&pl);
    let newest = msn + count as u64;
    assert!(newest >= first_newest + 10, "{first_newest} → {newest}:\n{pl}");
    assert!(
        !pl.contains("EXT-X-GAP") && !pl.contains("#EXT-X-DISCONTINUITY\n"),
        "{pl}"
    );
    for d in pl.lines().filter_map(|l| l.strip_prefix("#EXTINF:")) {
        let secs: f64 = d.trim_end_matches(',').parse().unwrap();
        assert!(secs <= 2.6, "a {secs} s segment:\n{pl}");
    }
    up.wait_line(10, |l| {
        l.contains("whip session ended") && l.contains("the publisher ended it (DELETE)")
    });
}

/// ffprobe's `stream=ENTRIES` of a playlist, one stream a line, fields split by `|`.
fn probe_streams(url: &str, entries: &str) -> String {
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", &format!("stream={entries}")])
        .args(["-of", "compact=p=0:nk=1", url])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&probe.stderr);
    assert!(probe.status.success(), "ffprobe: {stderr}");
    String::from_utf8_lossy(&probe.stdout).into_owned()
}

/// `#EXT-X-MEDIA-SEQUENCE` and the number of segments of a media playlist.
fn media_sequence(pl: &str) -> (u64, usize) {
    let msn = pl
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (msn, pl.lines().filter(|l| l.starts_with("#EXTINF")).count())
}

/// `curl -X METHOD` with headers and a body; (status, headers, body).
fn curl(method: &str, url: &str, headers: &[&str], body: Option<&[u8]>) -> (u16, String, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-i", "--max-time", "10", "-X", method, url]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    if body.is_some() {
        cmd.args(["--data-binary", "@-"]);
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        if let Some(b) = body {
            std::io::Write::write_all(&mut stdin, b).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_ascii_lowercase(), body.to_string())
}

/// An offer as a browser sends it (ICE, DTLS fingerprint, H.264 + Opus), for status tests.
const BROWSER_OFFER: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1\r\na=msid-semantic: WMS\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\n\
a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=ssrc:1001 cname:x\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\n\
a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n\
a=setup:actpass\r\na=mid:1\r\na=sendonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:102 H264/90000\r\n\
a=rtcp-fb:102 nack\r\na=rtcp-fb:102 nack pli\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\na=ssrc:1002 cname:x\r\n";

#[test]
fn whip_answers_every_error_with_its_status_and_reason() {
    let mut up = Up::start("whip-errors", &["--source", "none"], SMALL);
    let (whip, key) = whip_endpoint(&mut up);
    let sdp = "Content-Type: application/sdp";
    let auth = format!("Authorization: Bearer {key}");
    let offer = Some(BROWSER_OFFER.as_bytes());

    // Browsers ask first: CORS, and the methods each resource takes.
    let (code, head, _) = curl("OPTIONS", &whip, &["Origin: http://example.test"], None);
    assert_eq!(code, 204, "{head}");
    assert!(
        head.contains("access-control-allow-origin: *")
            && head.contains("access-control-allow-methods: post, options"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-headers: authorization, content-type"),
        "{head}"
    );

    // 415: not SDP.
    let (code, _, body) = curl("POST", &whip, &[&auth, "Content-Type: text/plain"], offer);
    assert_eq!(
        (code, body.trim()),
        (415, "a WHIP offer is sent with Content-Type: application/sdp")
    );
    // 401: no key, a wrong key; with the challenge.
    let (code, head, _) = curl("POST", &whip, &[sdp], offer);
    assert_eq!(code, 401);
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    let (code, _, body) = curl(
        "POST",
        &whip,
        &[sdp, "Authorization: Bearer not-the-key-0123456789"],
        offer,
    );
    assert_eq!((code, body.trim()), (401, "wrong stream key for this event"));
    // 404: no such event.
    let (code, _, _) = curl(
        "POST",
        &whip.replace("/whip/demo", "/whip/nope"),
        &[sdp, &auth],
        offer,
    );
    assert_eq!(code, 404);
    // 400 with the reason: no H.264, no Opus, garbage, too many candidates.
    let vp8 = BROWSER_OFFER.replace("H264/90000", "VP8/90000");
    let (code, _, body) = curl("POST", &whip, &[sdp, &auth], Some(vp8.as_bytes()));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("offers no H.264 (it offers VP8)"), "{body}");
    let pcmu = BROWSER_OFFER.replace("opus/48000/2", "PCMU/8000");
    let (code, _, body) = curl("POST", &whip, &[sdp, &auth], Some(pcmu.as_bytes()));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("offers no Opus (it offers PCMU)"), "{body}");
    let (code, _, body) = curl("POST", &whip, &[sdp, &auth], Some(b"\x00\x01garbage"));
    assert_eq!(
        (code, body.trim()),
        (400, "the offer is not SDP: it must start with v=0")
    );
    let many = format!(
        "{BROWSER_OFFER}{}",
        "a=candidate:1 1 udp 1 10.0.0.1 9 typ host\r\n".repeat(100)
    );
    let (code, _, body) = curl("POST", &whip, &[sdp, &auth], Some(many.as_bytes()));
    assert_eq!(
        (code, body.trim()),
        (400, "the offer has 100 ICE candidates; the limit is 64")
    );
    // 413: past the size limit (32 KiB).
    let huge = format!("{BROWSER_OFFER}{}", "a=x-padding\r\n".repeat(4000));
    let (code, _, _) = curl("POST", &whip, &[sdp, &auth], Some(huge.as_bytes()));
    assert_eq!(code, 413);

    // 201 for a usable offer, with the session's URL, an ETag and the SDP answer.
    let (code, head, answer) = curl("POST", &whip, &[sdp, &auth], offer);
    assert_eq!(code, 201, "{head}{answer}");
    assert!(head.contains("content-type: application/sdp"), "{head}");
    assert!(head.contains("etag: \""), "{head}");
    assert!(
        answer.starts_with("v=0") && answer.contains("a=ice-lite") && answer.contains("a=candidate:"),
        "{answer}"
    );
    assert!(
        answer.contains("H264/90000") && answer.contains("opus/48000"),
        "{answer}"
    );
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .expect("a Location header")
        .trim()
        .to_string();
    assert!(location.starts_with("/whip/demo/"), "{location}");
    let session = whip.replace("/whip/demo", &location);
    // 409: the event already has a publisher (this one never connects, but holds it).
    let (code, _, body) = curl("POST", &whip, &[sdp, &auth], offer);
    assert_eq!((code, body.trim()), (409, "this event already has a publisher"));
    // PATCH (trickle ICE, ICE restart): 405 with what the resource takes.
    let (code, head, _) = curl(
        "PATCH",
        &session,
        &[&auth, "Content-Type: application/trickle-ice-sdpfrag"],
        Some(b"a=end-of-candidates\r\n"),
    );
    assert_eq!(code, 405);
    assert!(head.contains("allow: get, delete, options"), "{head}");
    // GET: what the origin receives, for the publish page (with the key only).
    let (code, _, _) = curl("GET", &session, &[], None);
    assert_eq!(code, 401);
    let (code, head, body) = curl("GET", &session, &[&auth], None);
    assert_eq!(code, 200, "{head}{body}");
    assert!(
        body.contains("\"event\":\"demo\"") && body.contains("\"receiving\""),
        "{body}"
    );
    // DELETE: a wrong key is refused, the owner's ends it, a second finds nothing.
    let (code, _, _) = curl(
        "DELETE",
        &session,
        &["Authorization: Bearer not-the-key-0123456789"],
        None,
    );
    assert_eq!(code, 401);
    let (code, _, _) = curl("DELETE", &session, &[&auth], None);
    assert_eq!(code, 200);
    let (code, _, _) = curl("DELETE", &session, &[&auth], None);
    assert_eq!(code, 404);
    up.wait_line(10, |l| l.contains("whip session ended") && l.contains("DELETE"));
    // DELETE answers once the event is released: a publisher may go live again at once.
    let (code, head, _) = curl("POST", &whip, &[sdp, &auth], offer);
    assert_eq!(code, 201, "{head}");
}

#[test]
fn a_whip_session_that_never_connects_is_freed_and_the_event_taken_again_by_an_rsa_peer() {
    let mut up = Up::start(
        "whip-timeout",
        &["--source", "none"],
        &format!("{SMALL}[origin.whip]\nconnect_timeout_ms = 1500\nmax_sessions = 1\n"),
    );
    let (whip, key) = whip_endpoint(&mut up);
    let auth = format!("Authorization: Bearer {key}");
    let (code, _, _) = curl(
        "POST",
        &whip,
        &["Content-Type: application/sdp", &auth],
        Some(BROWSER_OFFER.as_bytes()),
    );
    assert_eq!(code, 201);
    // 503 past `max_sessions`, with when to come back.
    let (code, head, body) = curl(
        "POST",
        &whip,
        &["Content-Type: application/sdp", &auth],
        Some(BROWSER_OFFER.as_bytes()),
    );
    assert_eq!(
        (code, body.trim()),
        (
            503,
            "this origin takes no more WHIP sessions now; try again later"
        )
    );
    assert!(head.contains("retry-after: 5"), "{head}");
    up.wait_line(10, |l| {
        l.contains("whip session ended") && l.contains("ICE and DTLS did not complete in time")
    });
    // A real publisher then takes the event, with an RSA certificate (aiortc's own are
    // ECDSA; some WebRTC stacks have only RSA ones, and DTLS must take both).
    let (status, out) = finish(aiortc_publish(&whip, &key, 3, &["--rsa"]), 40);
    assert!(status.success(), "{out}");
    assert!(
        out.contains("certificate rsa") && out.contains("\nconnected\n"),
        "{out}"
    );
}

/// Moves this test's thread, and every process and thread it starts from now on, into a
/// network namespace of its own with loopback up and a veth pair (10.99.0.1 and .2):
/// Chromium gathers no ICE candidates on loopback (shared/TESTING-CLIENTS.md), and nothing
/// in the namespace reaches or is reached from outside it. The namespace goes away with
/// its last process. Needs root (or CAP_SYS_ADMIN), as `make test` runs in CI.
fn private_network() {
    unsafe extern "C" {
        fn unshare(flags: i32) -> i32;
    }
    const CLONE_NEWNET: i32 = 0x4000_0000;
    // SAFETY: unshare(2) with CLONE_NEWNET only moves the calling thread to a new namespace.
    let rc = unsafe { unshare(CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET): {} (this test needs root or CAP_SYS_ADMIN)",
        std::io::Error::last_os_error()
    );
    for args in [
        "link set lo up",
        "link add v0 type veth peer name v1",
        "addr add 10.99.0.1/24 dev v0",
        "addr add 10.99.0.2/24 dev v1",
        "link set v0 up",
        "link set v1 up",
    ] {
        let ok = Command::new("ip")
            .args(args.split(' '))
            .status()
            .expect("ip (iproute2) runs");
        assert!(ok.success(), "ip {args}");
    }
}

#[test]
fn chromium_goes_live_from_the_publish_page_for_30_s_and_ffprobe_decodes_h264_and_aac() {
    private_network();
    let mut up = Up::start("whip-browser", &["--source", "none"], SMALL);
    let master = up.url("origin playback");
    let (whip, key) = whip_endpoint(&mut up);
    let page = whip.replace("/whip/", "/publish/");
    assert_eq!(get(&page).0, 200);
    assert_eq!(get(&page.replace("/publish/demo", "/publish/nope")).0, 404);
    let harness = common::browser_harness();
    let browser = Command::new("node")
        .arg(harness.join("publish.mjs"))
        .args([
            "--url",
            &format!("{page}#key={key}"),
            "--seconds",
            "30",
            "--quality",
            "854x480",
        ])
        .current_dir(&harness)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    // Chromium's fake camera at the 480p the creator picked, with a beeping microphone.
    // (At 720p its software encoder falls to 7-10 fps on a busy 2-core machine.)
    get_ok(&master, 40, |b| {
        b.contains("RESOLUTION=854x480") && b.contains("avc1.") && b.contains("mp4a.40.2")
    });
    let media = master.replace("master.m3u8", "source/index.m3u8");
    let (msn, count) = media_sequence(&get_ok(&media, 5, |_| true));
    let first_newest = msn + count as u64;
    // A browser's frame rate wanders (its encoder adapts to the machine and the network):
    // a part shorter than 85 % of PART-TARGET, a SHOULD of the spec, is then unavoidable
    // now and then. Counted, not failed on; every other rule is held.
    let (stop, watcher) = watch_tolerating(media.clone(), "", Some(&["part-duration-min"]));
    let streams = probe_streams(&master, "codec_name,codec_type,width,height");
    assert!(
        streams.lines().any(|l| l.starts_with("h264|video|854|480")),
        "{streams}"
    );
    assert!(streams.lines().any(|l| l.starts_with("aac|audio")), "{streams}");
    let (status, out) = finish(browser, 120);
    stop.store(true, Ordering::Relaxed);
    let (problems, fetched, _, short_parts) = watcher.join().unwrap();
    eprintln!(
        "{} parts shorter than 85 % of PART-TARGET: {short_parts:#?}",
        short_parts.len()
    );
    // At most two in five parts (a 30 s publish has about 150): a bound against a broken
    // cutter, not a measure of the browser.
    assert!(
        short_parts.len() <= 60,
        "{} short parts in 30 s: {short_parts:#?}",
        short_parts.len()
    );
    assert!(status.success(), "publish page: {out}");
    assert!(
        out.contains("\"states\":[\"starting\",\"connecting\",\"connected\",\"stopped\"]"),
        "{out}"
    );
    // The page showed what the origin receives, from the session's report.
    assert!(
        out.contains("\"received\":{\"receiving\":true,\"size\":\"854x480\""),
        "{out}"
    );
    assert!(out.contains("\"shown\":\"854×480 H.264"), "{out}");
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(fetched >= 60, "{fetched} playlists");
    // Stop on the page DELETEs the session.
    a_whip_publish_went_on(&mut up, &media, first_newest);
    // A wrong key shows the creator why.
    let (status, out) = finish(
        Command::new("node")
            .arg(harness.join("publish.mjs"))
            .args([
                "--url",
                &format!("{page}#key=not-the-key-0123456789"),
                "--expect-error",
                "(401): wrong stream key",
            ])
            .current_dir(&harness)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        60,
    );
    assert!(status.success(), "{out}");
}

/// The WHIP UDP socket's address, from the origin's `whip listening` log line.
fn whip_udp(up: &mut Up) -> std::net::SocketAddr {
    let line = up.wait_line(30, |l| l.contains("whip listening"));
    let at = line.find("\"candidate\":\"").expect("a candidate field") + "\"candidate\":\"".len();
    line[at..].split('"').next().unwrap().parse().unwrap()
}

#[test]
fn garbage_datagrams_at_the_whip_port_leave_a_live_session_whole() {
    let mut up = Up::start("whip-garbage", &["--source", "none"], SMALL);
    let master = up.url("origin playback");
    let (whip, key) = whip_endpoint(&mut up);
    let udp = whip_udp(&mut up);
    let publisher = aiortc_publish(&whip, &key, 16, &[]);
    get_ok(&master, 40, |b| b.contains("avc1.") && b.contains("mp4a.40.2"));
    let media = master.replace("master.m3u8", "source/index.m3u8");
    let (msn, count) = media_sequence(&get_ok(&media, 5, |_| true));
    let before = msn + count as u64;
    let (stop, watcher) = watch_playlist(media.clone(), "", true);
    // 6 000 datagrams from three other sockets: random bytes, STUN with unknown users and
    // bad lengths, DTLS records of no session, RTP and RTCP with bad lengths, padding and
    // extension headers, empty and oversized ones.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let senders: Vec<std::net::UdpSocket> = (0..3)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for i in 0..6_000u32 {
        let len = (next() % 1_600) as usize;
        let mut d: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        match (i % 6, d.len()) {
            (_, 0) => {}
            // STUN binding request header with a length past the datagram.
            (0, n) if n >= 20 => {
                d[..4].copy_from_slice(&[0x00, 0x01, 0xff, 0xf0]);
                d[4..8].copy_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
            }
            // A DTLS handshake record of no session.
            (1, n) if n >= 13 => d[..3].copy_from_slice(&[22, 0xfe, 0xfd]),
            // RTP v2 with padding and an extension, any payload type.
            (2, _) => d[0] = 0b1011_0000,
            // RTCP sender report with a length past the datagram.
            (3, n) if n >= 4 => d[..4].copy_from_slice(&[0x80, 200, 0xff, 0xff]),
            (4, _) => d.truncate(1),
            _ => {}
        }
        let _ = senders[(i % 3) as usize].send_to(&d, udp);
        if i % 200 == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let (status, out) = finish(publisher, 60);
    stop.store(true, Ordering::Relaxed);
    let (problems, _, _) = watcher.join().unwrap();
    assert!(
        status.success() && out.contains("deleted 200"),
        "the publisher: {out}"
    );
    assert!(problems.is_empty(), "{problems:#?}");
    let (msn, count) = media_sequence(&get_ok(&media, 5, |_| true));
    assert!(
        msn + count as u64 >= before + 4,
        "{before} → {}",
        msn + count as u64
    );
    up.wait_line(10, |l| l.contains("the publisher ended it (DELETE)"));
    assert!(!up.seen.iter().any(|l| l.contains("panicked")), "{:#?}", up.seen);
}
