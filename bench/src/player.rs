//! `popcast bench player`: `<popcast-player>` in headless Chromium against plain hls.js with its defaults, on the same stream: startup, live latency p50/p95, stalls, and the gap when the serving edge is killed.

use crate::report::Report;
use crate::rig::{BenchError, EVENT, Rig};
use crate::scenarios::Options;
use popcast_config::TestSourceConfig;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// The browser harness (`tests/browser`, set up by `make deps-browser`).
fn harness() -> Result<PathBuf, BenchError> {
    let dir = std::env::current_dir()
        .map_err(|e| BenchError::Setup(e.to_string()))?
        .join("tests/browser");
    if !dir.join("node_modules/playwright-core").exists() {
        return Err(BenchError::Setup(
            "the browser harness is not installed: run `make deps-browser` from the repository root".into(),
        ));
    }
    Ok(dir)
}

/// Runs `player.mjs` with `args`; each `MARK` line's node (`plain_on` for plain hls.js,
/// which names none) is killed at once. Returns the harness's report (also when it judged
/// the run a failure: the figures are what count).
async fn run(rig: &mut Rig, args: &[String], plain_on: Option<&str>) -> Result<Value, BenchError> {
    let dir = harness()?;
    let mut child = std::process::Command::new("node")
        .arg(dir.join("player.mjs"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| BenchError::Setup(format!("node: {e}")))?;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut last = String::new();
    loop {
        match rx.try_recv() {
            Ok(line) => {
                if let Some(mark) = line.strip_prefix("MARK ") {
                    let named = serde_json::from_str::<Value>(mark).unwrap_or_default()["node"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let node = plain_on.map_or(named, str::to_string);
                    if !rig.kill_edge(&node) {
                        return Err(BenchError::Run(format!(
                            "the player named no edge process to kill: {node:?}"
                        )));
                    }
                } else if !line.trim().is_empty() {
                    last = line;
                }
            }
            Err(mpsc::TryRecvError::Empty) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(mpsc::TryRecvError::Disconnected) => break,
        }
    }
    let _ = reader.join();
    let _ = child.wait();
    serde_json::from_str(&last)
        .map_err(|_| BenchError::Run(format!("player.mjs printed no report: {last:?}")))
}

fn figure(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(*k)).and_then(Value::as_f64)
}

fn secs(v: Option<f64>) -> String {
    v.map_or("—".into(), |s| format!("{s:.2} s"))
}

pub async fn player(opts: Options) -> Result<Report, BenchError> {
    let watch = if opts.short { 40 } else { 90 };
    let source = TestSourceConfig {
        width: 640,
        height: 360,
        video_kbps: 800,
        ..TestSourceConfig::default()
    };
    let mut rig = Rig::start("player", Some(source), true).await?;
    let second = rig.add_edge("bench-edge-2").await?;
    let third = rig.add_edge("bench-edge-3").await?;
    rig.ready(3, Duration::from_secs(30)).await?;
    let origin = rig.origin_url("");
    let mark = (watch / 2).to_string();
    let seconds = watch.to_string();
    // Ours first, from the origin's /play; whichever edge serves it is killed halfway.
    let ours = run(
        &mut rig,
        &[
            "--origin".into(),
            origin,
            "--event".into(),
            EVENT.into(),
            "--seconds".into(),
            seconds.clone(),
            "--mark-after".into(),
            mark.clone(),
        ],
        None,
    )
    .await?;
    // Then plain hls.js on an edge still alive, which is killed halfway too.
    let killed = ours["failover"]["from"].as_str().unwrap_or_default().to_string();
    let survivor = if killed == "bench-edge-3" { second } else { third };
    let plain_node = if killed == "bench-edge-3" {
        "bench-edge-2"
    } else {
        "bench-edge-3"
    };
    let plain = run(
        &mut rig,
        &[
            "--plain-url".into(),
            format!("http://{survivor}/live/{EVENT}/master.m3u8"),
            "--seconds".into(),
            seconds,
            "--mark-after".into(),
            mark,
        ],
        Some(plain_node),
    )
    .await?;
    let row = |who: &str, r: &Value| {
        let f = &r["failover"];
        let after = |k: &str| f[k].as_f64().unwrap_or(0.0);
        let kept_on =
            r["fatal"].is_null() && after("advancedAfterMark") + 3.0 >= after("markedSecondsBeforeEnd");
        let gap = if kept_on {
            format!("{} ms", f["frozenMs"])
        } else if let Some(fatal) = r["fatal"].as_str() {
            format!(
                "stopped: fatal {fatal} {:.1} s after the kill",
                after("markedSecondsBeforeEnd")
            )
        } else {
            format!("did not recover ({:.1} s frozen)", after("frozenMs") / 1000.0)
        };
        vec![
            who.to_string(),
            figure(r, &["startupMs"]).map_or("—".into(), |v| format!("{v:.0} ms")),
            secs(figure(r, &["latency", "p50"])),
            secs(figure(r, &["latency", "p95"])),
            format!("{} ({} ms)", r["waiting"], r["stallMs"]),
            gap,
        ]
    };
    Ok(Report {
        name: "player".into(),
        title: "Web player: `<popcast-player>` against plain hls.js".into(),
        setup: format!(
            "One origin with the built-in 640x360 test source and three `popcast edge` processes on loopback. Headless Chromium (tests/browser/player.mjs) watches {watch} s: first `<popcast-player>` embedded in a page on another origin (edges from /play, its catch-up and failover), then plain hls.js {} with its default settings on one edge's playlist. Halfway through each run the edge serving it is killed (SIGKILL). Latency is measured the same way for both: now minus EXT-X-PROGRAM-DATE-TIME at the playhead, 4 times a second.",
            "(the harness's npm copy)"
        ),
        columns: vec![
            "player".into(),
            "startup".into(),
            "latency p50".into(),
            "latency p95".into(),
            "stalls (time)".into(),
            "after its edge is killed: longest freeze".into(),
        ],
        rows: vec![
            row("`<popcast-player>`", &ours),
            row("plain hls.js, defaults", &plain),
        ],
        notes: vec![
            format!(
                "`<popcast-player>` was served by {killed} and moved to {} ({} ms after the kill it switched; why: {}).",
                ours["failover"]["to"].as_str().unwrap_or("nowhere"),
                ours["failover"]["detectedMs"],
                ours["failover"]["why"].as_str().unwrap_or("-")
            ),
            format!(
                "plain hls.js played from {plain_node}; it has one URL, so it has nowhere to go when that edge dies."
            ),
            "Stalls include the ones the kill caused; latency percentiles include the catch-up after it."
                .into(),
        ],
        data: json!({ "watch_s": watch, "ours": ours, "plain": plain }),
    })
}
