//! The edge, measured: one origin and one edge in this process on loopback, the ffmpeg CLI
//! publishing 1280x720 @ 30 fps over RTMP in real time. Three figures, written to
//! `bench/results/edge.json`:
//!
//! 1. **delay**: one preload-hint LL-HLS viewer on the origin and one on the edge; per part,
//!    its last frame's arrival at the origin (the chunk's `prft`) → the part's last byte at
//!    the viewer. The difference of the two is what the relay and the edge add.
//! 2. **fan-out**: viewers on the edge ramped in steps; a step is *held* when no request
//!    failed, the part delay's p99 stayed under 1 s and every viewer kept up (95 % of the
//!    parts made reached the viewers). The load clients run in this same
//!    process on the same 2 cores, so they take CPU from the edge: the figure is a floor.
//! 3. **throughput vs nginx**: once the event has ended, the edge's final window (playlist,
//!    parts, segments) is copied byte for byte into a directory nginx serves as static
//!    files; `wrk` (same script, same connections) requests the same paths from each.
//!
//! nginx and wrk come from Debian (`scripts/install-system-deps.sh bench`, which
//! `make bench` runs). Run with `make bench`.

use popcast_bench::peers::{KillOnDrop, static_files};
use popcast_bench::rig::{cpu_secs, rss_mib};
use popcast_bench::viewer::{Stats, percentile, viewer};
use popcast_config::{Config, Secret};
use popcast_edge::Edge;
use popcast_origin::Origin;
use popcast_origin::events::Events;
use popcast_origin::live::LiveEvent;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const KEY: &str = "bench-key-0123456789abcdef";
const SECRET: &str = "bench-node-secret-0123456789";
const EVENT: &str = "bench";
const DELAY_WARMUP_SECS: u64 = 5;
const DELAY_SECS: u64 = 30;
const STEPS: &[usize] = &[250, 500, 1000, 2000, 3000, 4000, 6000, 8000];
/// Per fan-out step: connections spread over this, then a settle, then the measured span.
const RAMP_SECS: u64 = 3;
const SETTLE_SECS: u64 = 3;
const STEP_SECS: u64 = 10;
/// A step is held when nothing failed, part delay p99 stays under this, and viewers got at
/// least `HELD_PART_SHARE` of the parts made (a viewer that cannot keep up skips to the live
/// edge: a player would stall).
const HELD_P99_MS: f64 = 1000.0;
const HELD_PART_SHARE: f64 = 0.95;
const WRK_SECS: u64 = 10;
const WRK_CONNECTIONS: u32 = 200;

fn publish(url: &str, secs: u64) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &secs.to_string()])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"])
        .args([
            "-g", "60", "-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "2500k",
        ])
        .args(["-c:a", "aac", "-b:a", "128k", "-f", "flv", url])
        .stdout(Stdio::null())
        .spawn()
        .expect("run ffmpeg")
}

/// A blocking GET over HTTP/1.1 with curl: status and body.
fn curl(url: &str) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "-m", "10", "-w", "%{http_code}", "-o", "-", url])
        .output()
        .expect("curl runs");
    let mut body = out.stdout;
    let code = body.split_off(body.len().saturating_sub(3));
    (String::from_utf8_lossy(&code).parse().unwrap_or(0), body)
}

fn wait_until(secs: u64, what: &str, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn summary(s: &Stats) -> serde_json::Value {
    let (parts, chunks) = s.sorted_delays();
    serde_json::json!({
        "parts": parts.len(),
        "part_p50_ms": percentile(&parts, 0.5),
        "part_p90_ms": percentile(&parts, 0.9),
        "part_p99_ms": percentile(&parts, 0.99),
        "part_max_ms": parts.last().copied().unwrap_or(f64::NAN),
        "chunks": chunks.len(),
        "chunk_p50_ms": percentile(&chunks, 0.5),
        "chunk_p99_ms": percentile(&chunks, 0.99),
        "errors": s.errors.load(Ordering::Relaxed),
        "failures": serde_json::to_value(s.why.lock().unwrap().clone()).unwrap(),
    })
}

/// Runs `n` viewers of the edge: spread over `RAMP_SECS`, recorded for `STEP_SECS` after
/// `SETTLE_SECS`. Returns the step's figures.
fn fan_out_step(
    load: &tokio::runtime::Runtime,
    edge: SocketAddr,
    n: usize,
) -> (Arc<Stats>, serde_json::Value) {
    let stats = Arc::new(Stats::default());
    let start = Instant::now();
    let record_from = start + Duration::from_secs(RAMP_SECS + SETTLE_SECS);
    let until = record_from + Duration::from_secs(STEP_SECS);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let stats = stats.clone();
            let at = start + Duration::from_secs(RAMP_SECS).mul_f64(i as f64 / n as f64);
            load.spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                viewer(edge, EVENT, "source", until, &stats).await;
            })
        })
        .collect();
    std::thread::sleep(record_from.saturating_duration_since(Instant::now()));
    let (cpu0, parts0, bytes0) = (
        cpu_secs(),
        stats.parts.load(Ordering::Relaxed),
        stats.part_bytes.load(Ordering::Relaxed),
    );
    stats.recording.store(true, Ordering::Relaxed);
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    stats.recording.store(false, Ordering::Relaxed);
    let cpu = cpu_secs() - cpu0;
    let rss = rss_mib();
    let parts = stats.parts.load(Ordering::Relaxed) - parts0;
    let bytes = stats.part_bytes.load(Ordering::Relaxed) - bytes0;
    load.block_on(async {
        for h in handles {
            let _ = h.await;
        }
    });
    let mut v = summary(&stats);
    let o = v.as_object_mut().expect("object");
    o.insert("viewers".into(), n.into());
    o.insert(
        "parts_per_viewer_per_s".into(),
        (parts as f64 / n as f64 / STEP_SECS as f64).into(),
    );
    o.insert(
        "delivered_mbit_per_s".into(),
        (bytes as f64 * 8.0 / 1e6 / STEP_SECS as f64).into(),
    );
    o.insert("process_cpu_cores".into(), (cpu / STEP_SECS as f64).into());
    o.insert("process_rss_mib".into(), rss.into());
    (stats, v)
}

/// `wrk`'s figures for `paths` (requested round robin) at `port`.
fn wrk(port: u16, script: &Path) -> serde_json::Value {
    let out = Command::new("wrk")
        .args(["-t", "2", "-c", &WRK_CONNECTIONS.to_string()])
        .args(["-d", &format!("{WRK_SECS}s"), "--latency", "-s"])
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .expect("run wrk (scripts/install-system-deps.sh bench installs it)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "wrk: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .map(|v| v.trim().to_string())
    };
    let rate = field("Requests/sec:")
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    let transfer = field("Transfer/sec:").unwrap_or_default();
    let mbyte = match transfer.split_at(transfer.len().saturating_sub(2)) {
        (n, "GB") => n.parse::<f64>().map(|v| v * 1024.0),
        (n, "MB") => n.parse::<f64>(),
        (n, "KB") => n.parse::<f64>().map(|v| v / 1024.0),
        _ => Ok(f64::NAN),
    }
    .unwrap_or(f64::NAN);
    let latency = |q: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(q) && l.ends_with("s"))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(|v| v.to_string())
    };
    let non_2xx = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let socket_errors = field("Socket errors:").unwrap_or_else(|| "none".into());
    serde_json::json!({
        "requests_per_s": rate,
        "mib_per_s": mbyte,
        "latency_p50": latency("50%"),
        "latency_p99": latency("99%"),
        "non_2xx": non_2xx,
        "socket_errors": socket_errors,
    })
}

/// The edge's final window of the ended event, copied under `root` (the same relative
/// paths), and the list of those paths.
fn copy_window(edge: SocketAddr, root: &Path) -> Vec<String> {
    let base = format!("/live/{EVENT}/source");
    let (code, pl) = curl(&format!("http://{edge}{base}/index.m3u8"));
    assert_eq!(code, 200);
    let pl = String::from_utf8_lossy(&pl).to_string();
    let mut names: Vec<String> = vec!["index.m3u8".into(), "init.mp4".into()];
    for l in pl.lines() {
        if let Some(uri) = l.split("URI=\"").nth(1).and_then(|u| u.split('"').next()) {
            if l.starts_with("#EXT-X-PART:") {
                names.push(uri.to_string());
            }
        } else if !l.starts_with('#') && !l.trim().is_empty() {
            names.push(l.trim().to_string());
        }
    }
    names.dedup();
    let dir = root.join(format!("live/{EVENT}/source"));
    std::fs::create_dir_all(&dir).unwrap();
    names
        .into_iter()
        .map(|name| {
            let path = format!("{base}/{name}");
            let (code, body) = curl(&format!("http://{edge}{path}"));
            assert_eq!(code, 200, "{path}");
            std::fs::write(dir.join(&name), body).unwrap();
            path
        })
        .collect()
}

fn main() {
    let dir = std::env::temp_dir().join(format!("popcast-bench-edge-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The servers on one runtime, the load clients on another (both 2 workers: the machine's
    // cores).
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let mut config = Config::default();
    config.node.data_dir = dir.join("origin");
    config.origin.rtmp_listen = "127.0.0.1:0".parse().unwrap();
    config.origin.whip.udp_listen = "127.0.0.1:0".parse().unwrap();
    config.origin.http_listen = "127.0.0.1:0".parse().unwrap();
    config.origin.relay_listen = "127.0.0.1:0".parse().unwrap();
    config.origin.node_secret = Some(Secret::new(SECRET));
    // The viewer cap the origin provisions the edge's slot with: above the largest step.
    config.events.viewer_cap = 20_000;
    let events = Arc::new(Events::new());
    events
        .add(LiveEvent::new(EVENT, KEY.as_bytes(), &config.packager))
        .unwrap();
    let origin = servers.block_on(Origin::start(&config, events)).unwrap();
    let relay = origin.relay.as_ref().expect("relay on").addr;

    let mut ec = Config::default();
    ec.node.data_dir = dir.join("edge");
    ec.edge.origin_relay = relay.to_string();
    ec.edge.origin_ca_path = Some(dir.join("origin/relay/cert.pem"));
    ec.edge.node_secret = Some(Secret::new(SECRET));
    ec.edge.http_listen = "127.0.0.1:0".parse().unwrap();
    ec.edge.capacity_viewers = 20_000;
    ec.edge.slot_viewer_cap = 20_000;
    ec.edge.slot_release_grace_secs = 3_600;
    let edge = servers.block_on(Edge::start(&ec)).unwrap();
    let edge_addr = edge.http_addr;

    let publish_secs =
        DELAY_WARMUP_SECS + DELAY_SECS + STEPS.len() as u64 * (RAMP_SECS + SETTLE_SECS + STEP_SECS + 2) + 20;
    let url = format!("rtmp://127.0.0.1:{}/live/{KEY}", origin.rtmp_addr.port());
    let ff = KillOnDrop(publish(&url, publish_secs));
    // Both multivariant playlists: each is listed once every rendition has a whole segment.
    wait_until(30, "the multivariant playlists", || {
        curl(&format!("http://{}/live/{EVENT}/master.m3u8", origin.http_addr)).0 == 200
            && curl(&format!("http://{edge_addr}/live/{EVENT}/master.m3u8")).0 == 200
    });

    // 1. Delay: one viewer on the origin, one on the edge, side by side.
    println!("== delay: frame arrival at the origin -> part received by a preload-hint LL-HLS viewer (ms)");
    let at_origin = Arc::new(Stats::default());
    let at_edge = Arc::new(Stats::default());
    let until = Instant::now() + Duration::from_secs(DELAY_WARMUP_SECS + DELAY_SECS);
    let h = [
        (origin.http_addr, at_origin.clone()),
        (edge_addr, at_edge.clone()),
    ]
    .map(|(addr, stats)| load.spawn(async move { viewer(addr, EVENT, "source", until, &stats).await }));
    std::thread::sleep(Duration::from_secs(DELAY_WARMUP_SECS));
    at_origin.recording.store(true, Ordering::Relaxed);
    at_edge.recording.store(true, Ordering::Relaxed);
    load.block_on(async {
        for h in h {
            let _ = h.await;
        }
    });
    let (delay_origin, delay_edge) = (summary(&at_origin), summary(&at_edge));
    println!(
        "{:<8} {:>6} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10} {:>6}",
        "via", "parts", "p50", "p90", "p99", "max", "chunk p50", "chunk p99", "errors"
    );
    // (failures, when any, follow the errors column)
    for (name, v) in [("origin", &delay_origin), ("edge", &delay_edge)] {
        println!(
            "{name:<8} {:>6} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>10.1} {:>10.1} {:>6} {}",
            v["parts"],
            v["part_p50_ms"].as_f64().unwrap_or(f64::NAN),
            v["part_p90_ms"].as_f64().unwrap_or(f64::NAN),
            v["part_p99_ms"].as_f64().unwrap_or(f64::NAN),
            v["part_max_ms"].as_f64().unwrap_or(f64::NAN),
            v["chunk_p50_ms"].as_f64().unwrap_or(f64::NAN),
            v["chunk_p99_ms"].as_f64().unwrap_or(f64::NAN),
            v["errors"],
            v["failures"],
        );
    }

    // 2. Fan-out: ramp viewers on the edge until a step is not held.
    let parts_made_per_s = 1000.0 / f64::from(config.packager.part_target_ms);
    println!(
        "\n== fan-out: viewers on one edge (held: 0 errors, part delay p99 < {HELD_P99_MS} ms, >= {:.0} % of the {parts_made_per_s} parts/s made received)",
        HELD_PART_SHARE * 100.0
    );
    println!(
        "{:>7} {:>7} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8}  failures",
        "viewers", "errors", "p50 ms", "p99 ms", "parts/v/s", "Mbit/s", "cpu", "RSS MiB"
    );
    let sent_before = origin.relay.as_ref().unwrap().ledger().objects();
    let mut steps = Vec::new();
    let mut held = 0;
    for &n in STEPS {
        let (stats, v) = fan_out_step(&load, edge_addr, n);
        let errors = stats.errors.load(Ordering::Relaxed);
        let p99 = v["part_p99_ms"].as_f64().unwrap_or(f64::NAN);
        println!(
            "{n:>7} {errors:>7} {:>8.1} {p99:>8.1} {:>9.2} {:>9.1} {:>8.2} {:>8.0}  {}",
            v["part_p50_ms"].as_f64().unwrap_or(f64::NAN),
            v["parts_per_viewer_per_s"].as_f64().unwrap_or(f64::NAN),
            v["delivered_mbit_per_s"].as_f64().unwrap_or(f64::NAN),
            v["process_cpu_cores"].as_f64().unwrap_or(f64::NAN),
            v["process_rss_mib"].as_f64().unwrap_or(f64::NAN),
            v["failures"],
        );
        let kept_up =
            v["parts_per_viewer_per_s"].as_f64().unwrap_or(0.0) >= HELD_PART_SHARE * parts_made_per_s;
        steps.push(v);
        if errors == 0 && p99 < HELD_P99_MS && kept_up {
            held = n;
        } else {
            break;
        }
    }
    let ledger = origin.relay.as_ref().unwrap().ledger();
    let (sent, repeats) = (ledger.objects() - sent_before, ledger.repeats());
    println!(
        "held: {held} viewers; the origin sent {sent} part objects to the edge meanwhile, {repeats} of them again"
    );

    // 3. Throughput against nginx, on the ended event's final window.
    drop(ff);
    // A creator going away does not end an event; the operator does.
    origin.events.get(EVENT).expect("the event").end();
    wait_until(30, "the event's end at the edge", || {
        let (_, pl) = curl(&format!("http://{edge_addr}/live/{EVENT}/source/index.m3u8"));
        String::from_utf8_lossy(&pl).contains("#EXT-X-ENDLIST")
    });
    let root = dir.join("www");
    let paths = copy_window(edge_addr, &root);
    let script = dir.join("paths.lua");
    std::fs::write(
        &script,
        format!(
            "local paths = {{ {} }}\nlocal i = 0\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format(\"GET\", paths[i])\nend\n",
            paths.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", ")
        ),
    )
    .unwrap();
    let nginx = static_files(&dir.join("nginx"), &root).expect("nginx");
    let nginx_port = nginx.http_port;
    for p in &paths {
        let (a, b) = (
            curl(&format!("http://{edge_addr}{p}")),
            curl(&format!("http://127.0.0.1:{nginx_port}{p}")),
        );
        assert!(
            a == b && a.0 == 200,
            "{p}: the edge and nginx serve different bytes"
        );
    }
    let bytes: usize = paths
        .iter()
        .map(|p| std::fs::metadata(root.join(p.trim_start_matches('/'))).map_or(0, |m| m.len() as usize))
        .sum();
    println!(
        "\n== throughput: wrk, {WRK_CONNECTIONS} connections, 2 threads, {WRK_SECS} s, round robin over the same {} paths ({} KiB: playlist, init, parts, segments)",
        paths.len(),
        bytes / 1024
    );
    let edge_wrk = wrk(edge_addr.port(), &script);
    let nginx_wrk = wrk(nginx_port, &script);
    drop(nginx);
    println!(
        "{:<8} {:>12} {:>10} {:>10} {:>10} {:>8}",
        "server", "requests/s", "MiB/s", "p50", "p99", "non-2xx"
    );
    for (name, v) in [("edge", &edge_wrk), ("nginx", &nginx_wrk)] {
        println!(
            "{name:<8} {:>12.0} {:>10.1} {:>10} {:>10} {:>8}",
            v["requests_per_s"].as_f64().unwrap_or(f64::NAN),
            v["mib_per_s"].as_f64().unwrap_or(f64::NAN),
            v["latency_p50"].as_str().unwrap_or("?"),
            v["latency_p99"].as_str().unwrap_or("?"),
            v["non_2xx"],
        );
    }
    let ratio = edge_wrk["requests_per_s"].as_f64().unwrap_or(f64::NAN)
        / nginx_wrk["requests_per_s"].as_f64().unwrap_or(f64::NAN);
    println!("edge / nginx requests/s: {ratio:.2}");

    let nginx_version = Command::new("nginx")
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
        .unwrap_or_default();
    let doc = serde_json::json!({
        "scenario": "edge",
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "source": "ffmpeg CLI, -re, libx264 ultrafast zerolatency 1280x720@30 2.5 Mbit/s GOP 2 s, AAC 48 kHz, RTMP; default packager (200 ms parts, 2 s segments)",
        "machine": format!("{} cores", std::thread::available_parallelism().map_or(0, |n| n.get())),
        "delay": {
            "what": "per part: its last frame's arrival at the origin (prft) -> the part's last byte at a preload-hint LL-HLS viewer over HTTP/1.1 on loopback",
            "measured_secs": DELAY_SECS,
            "via_origin": delay_origin,
            "via_edge": delay_edge,
        },
        "fan_out": {
            "what": "viewers following the live edge part by part on one edge; held = 0 failed requests, part delay p99 < 1 s and >= 95 % of the parts made received per viewer; load clients share the process and its 2 cores",
            "parts_made_per_s": parts_made_per_s,
            "step_secs": STEP_SECS,
            "held_viewers": held,
            "steps": steps,
            "origin_part_objects_sent_to_edge": sent,
            "origin_repeats": repeats,
        },
        "throughput": {
            "what": "wrk round robin over the ended event's final window, the same bytes from the edge (memory) and nginx (static files, sendfile)",
            "tool": format!("wrk -t 2 -c {WRK_CONNECTIONS} -d {WRK_SECS}s"),
            "paths": paths.len(),
            "bytes": bytes,
            "edge": edge_wrk,
            "nginx": nginx_wrk,
            "nginx_version": nginx_version,
            "edge_over_nginx_requests": ratio,
        },
    });
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("results/edge.json");
    std::fs::write(&out, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    println!("wrote {}", out.display());
    drop(edge);
    drop(origin);
    let _ = std::fs::remove_dir_all::<PathBuf>(dir);
}
