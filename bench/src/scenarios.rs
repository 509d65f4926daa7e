//! The `popcast bench` scenarios: latency, startup and fan-out, each on a fresh [`Rig`] with
//! player-sdk sessions (and the prft-timing [`viewer`]) as the load, each returning a
//! [`Report`].

use crate::report::{Report, ms, quantile};
use crate::rig::{BenchError, EVENT, Rig, cpu_secs};
use crate::viewer::{Stats, viewer};
use popcast_config::TestSourceConfig;
use popcast_player::session::{CmcdMode, Qoe, SessionConfig, watch};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long and how big.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The short version `make bench` runs.
    pub short: bool,
}

fn session(url: String, watch_for: Duration, id: usize, cmcd: CmcdMode) -> SessionConfig {
    let mut c = SessionConfig::new(url, watch_for);
    c.cmcd = cmcd;
    c.session_id = format!("bench-{id}");
    c.content_id = Some(EVENT.into());
    c
}

/// Runs `n` sessions of `watch_for` sending CMCD as `cmcd`, the i-th starting at
/// `i × spacing`.
pub(crate) async fn sessions(
    url: &str,
    n: usize,
    watch_for: Duration,
    spacing: Duration,
    cmcd: CmcdMode,
) -> Vec<Result<Qoe, String>> {
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let cfg = session(url.to_string(), watch_for, i, cmcd);
            tokio::spawn(async move {
                tokio::time::sleep(spacing * i as u32).await;
                watch(cfg).await.map_err(|e| e.to_string())
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.unwrap_or_else(|e| Err(e.to_string())));
    }
    out
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn secs_ms(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64() * 1000.0)
}

/// The test source at 1280x720, 30 fps, 1 s keyframes (the config defaults).
fn hd_source() -> TestSourceConfig {
    TestSourceConfig::default()
}

/// Source → origin → edge → N player-sdk clients: per-chunk delivery delay (the frame's
/// arrival at the origin → its chunk's last byte at a client, on the origin and on the edge)
/// and the clients' live latency.
pub async fn latency(opts: Options) -> Result<Report, BenchError> {
    let (clients, secs) = if opts.short { (10, 20) } else { (20, 45) };
    let rig = Rig::start("latency", Some(hd_source()), false).await?;
    rig.ready(3, Duration::from_secs(30)).await?;
    let until = Instant::now() + Duration::from_secs(secs);
    let at_edge = Arc::new(Stats::default());
    let at_origin = Arc::new(Stats::default());
    for (stats, addr) in [
        (at_edge.clone(), rig.edge_addr()),
        (at_origin.clone(), rig.origin.http_addr),
    ] {
        stats.recording.store(true, Ordering::Relaxed);
        tokio::spawn(async move { viewer(addr, EVENT, "source", until, &stats).await });
    }
    let results = sessions(
        &rig.edge_master(),
        clients,
        Duration::from_secs(secs),
        Duration::ZERO,
        CmcdMode::Query,
    )
    .await;
    tokio::time::sleep_until(until.into()).await;
    let qoes: Vec<&Qoe> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let failed = results.len() - qoes.len();
    let (edge_parts, edge_chunks) = at_edge.sorted_delays();
    let (origin_parts, origin_chunks) = at_origin.sorted_delays();
    let lat50 = sorted(
        qoes.iter()
            .filter_map(|q| q.latency_quantile(0.5))
            .map(|s| s * 1000.0)
            .collect(),
    );
    let lat90 = sorted(
        qoes.iter()
            .filter_map(|q| q.latency_quantile(0.9))
            .map(|s| s * 1000.0)
            .collect(),
    );
    let stalls: u32 = qoes.iter().map(|q| q.stalls).sum();
    let errors: u64 = qoes.iter().map(|q| q.errors).sum();
    let row = |what: &str, v: &[f64]| {
        vec![
            what.to_string(),
            ms(quantile(v, 0.5)),
            ms(quantile(v, 0.9)),
            ms(quantile(v, 0.99)),
            v.len().to_string(),
        ]
    };
    let rows = vec![
        row("chunk delay at the origin", &origin_chunks),
        row("chunk delay through the edge", &edge_chunks),
        row("part delay at the origin", &origin_parts),
        row("part delay through the edge", &edge_parts),
        vec![
            "player-sdk live latency (sessions' medians)".into(),
            ms(quantile(&lat50, 0.5)),
            ms(quantile(&lat90, 0.5)),
            ms(lat90.last().copied().unwrap_or(f64::NAN)),
            qoes.len().to_string(),
        ],
    ];
    Ok(Report {
        name: "latency".into(),
        title: "Latency: source → origin → edge → clients".into(),
        setup: format!(
            "The built-in test source (1280x720, 30 fps, 1 s keyframes, libx264) publishes in this process; one origin and one edge on loopback; {clients} player-sdk sessions (HTTP/1.1, CMCD) watch through the edge for {secs} s, and one prft-timing viewer each on the origin and the edge. Delays are from a frame's arrival at the origin (the chunk's prft) to the last byte of its chunk or part at the client, on one clock."
        ),
        columns: vec!["figure".into(), "p50 ms".into(), "p90 ms".into(), "p99 ms".into(), "samples".into()],
        rows,
        notes: vec![
            format!("Sessions: {} ran, {failed} failed to start; {stalls} stalls and {errors} request errors in all.", qoes.len()),
            "For the player-sdk row the columns are the median of the sessions' p50, the median of their p90, and the worst p90. Its latency is the wall clock minus the program date-time at the playhead, with the player starting PART-HOLD-BACK behind the live edge.".into(),
            "With the ABR ladder: not measured, the ladder is not built yet (issue #5); every client plays the source rendition.".into(),
        ],
        data: json!({
            "clients": clients,
            "seconds": secs,
            "edge_chunk_ms": [quantile(&edge_chunks, 0.5), quantile(&edge_chunks, 0.9), quantile(&edge_chunks, 0.99)],
            "origin_chunk_ms": [quantile(&origin_chunks, 0.5), quantile(&origin_chunks, 0.9), quantile(&origin_chunks, 0.99)],
            "edge_part_ms": [quantile(&edge_parts, 0.5), quantile(&edge_parts, 0.9), quantile(&edge_parts, 0.99)],
            "origin_part_ms": [quantile(&origin_parts, 0.5), quantile(&origin_parts, 0.9), quantile(&origin_parts, 0.99)],
            "player_latency_p50_ms": lat50,
            "player_latency_p90_ms": lat90,
            "stalls": stalls,
            "errors": errors,
            "failed_sessions": failed,
            "viewer_errors": at_edge.errors.load(Ordering::Relaxed) + at_origin.errors.load(Ordering::Relaxed),
        }),
    })
}

/// Viewers joining a live event one after another: time to the first media part and to a
/// playable buffer (the first frame played).
pub async fn startup(opts: Options) -> Result<Report, BenchError> {
    let joins = if opts.short { 12 } else { 40 };
    let rig = Rig::start("startup", Some(hd_source()), false).await?;
    rig.ready(3, Duration::from_secs(30)).await?;
    // 730 ms apart: joins land at every phase of the 200 ms part cadence.
    let results = sessions(
        &rig.edge_master(),
        joins,
        Duration::from_secs(3),
        Duration::from_millis(730),
        CmcdMode::Query,
    )
    .await;
    let qoes: Vec<&Qoe> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let first = sorted(qoes.iter().filter_map(|q| secs_ms(q.first_media)).collect());
    let play = sorted(qoes.iter().filter_map(|q| secs_ms(q.startup)).collect());
    let row = |what: &str, v: &[f64]| {
        vec![
            what.to_string(),
            ms(quantile(v, 0.5)),
            ms(quantile(v, 0.9)),
            ms(v.last().copied().unwrap_or(f64::NAN)),
            v.len().to_string(),
        ]
    };
    Ok(Report {
        name: "startup".into(),
        title: "Startup: viewers joining a live event".into(),
        setup: format!(
            "{joins} player-sdk sessions join through the edge 730 ms apart (so joins fall at every phase of the part cadence) while the built-in test source is live; each starts PART-HOLD-BACK behind the live edge on an independent part and plays once 300 ms is buffered. Times are from the session's first request (the multivariant playlist) on loopback."
        ),
        columns: vec![
            "figure".into(),
            "p50 ms".into(),
            "p90 ms".into(),
            "max ms".into(),
            "joins".into(),
        ],
        rows: vec![
            row("first media part received", &first),
            row("first frame played (300 ms buffered)", &play),
        ],
        notes: vec![format!(
            "{} of {joins} sessions started; on loopback these are the server's and the protocol's share of startup, not a network's.",
            qoes.len()
        )],
        data: json!({ "joins": joins, "first_media_ms": first, "first_play_ms": play }),
    })
}

/// Player-sdk viewers on one edge, ramped in steps until a step has errors or stalls.
pub async fn fanout(opts: Options) -> Result<Report, BenchError> {
    let steps: &[usize] = if opts.short {
        &[100, 200, 400, 800]
    } else {
        &[250, 500, 1000, 2000, 3000]
    };
    let secs = if opts.short { 10 } else { 20 };
    let source = TestSourceConfig {
        width: 640,
        height: 360,
        video_kbps: 800,
        ..TestSourceConfig::default()
    };
    let rig = Rig::start("fanout", Some(source), true).await?;
    rig.ready(3, Duration::from_secs(30)).await?;
    let mut rows = Vec::new();
    let mut data = Vec::new();
    let mut clean = 0;
    let pid = rig
        .edge_pid()
        .ok_or_else(|| BenchError::Setup("the fan-out edge runs on its own".into()))?;
    let (edge_cpu, edge_rss) = (
        || crate::peers::process_cpu_secs(pid),
        || crate::peers::process_rss_mib(pid),
    );
    let rss_base = edge_rss();
    for &n in steps {
        let ledger = rig.origin.relay.as_ref().map(|r| r.ledger());
        let (sent0, cpu0, all0, t0) = (
            ledger.map_or(0, |l| l.objects()),
            edge_cpu(),
            cpu_secs(),
            Instant::now(),
        );
        // Joins spread over 2 s.
        let results = sessions(
            &rig.edge_master(),
            n,
            Duration::from_secs(secs),
            Duration::from_secs(2) / n as u32,
            CmcdMode::Query,
        )
        .await;
        let (cpu, others, wall) = (edge_cpu() - cpu0, cpu_secs() - all0, t0.elapsed().as_secs_f64());
        let rss = edge_rss();
        let qoes: Vec<&Qoe> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        let failed = results.len() - qoes.len();
        let stalls: u32 = qoes.iter().map(|q| q.stalls).sum();
        let errors: u64 = qoes.iter().map(|q| q.errors).sum();
        let repeats = rig.origin.relay.as_ref().map_or(0, |r| r.ledger().repeats());
        let sent = rig.origin.relay.as_ref().map_or(0, |r| r.ledger().objects()) - sent0;
        let lat = sorted(
            qoes.iter()
                .filter_map(|q| q.latency_quantile(0.5))
                .map(|s| s * 1000.0)
                .collect(),
        );
        let ok = failed == 0 && stalls == 0 && errors == 0;
        if ok {
            clean = n;
        }
        rows.push(vec![
            n.to_string(),
            if ok {
                "clean".into()
            } else {
                format!("{failed} failed, {stalls} stalls, {errors} errors")
            },
            format!("{:.2}", cpu / wall / n as f64 * 1000.0),
            format!("{:.0}", (rss - rss_base).max(0.0) / n as f64 * 1000.0),
            format!("{:.2}", others / wall),
            ms(quantile(&lat, 0.5)),
            format!("{sent} sent, {repeats} repeats"),
        ]);
        data.push(json!({
            "viewers": n, "clean": ok, "failed": failed, "stalls": stalls, "errors": errors,
            "edge_cpu_cores": cpu / wall, "edge_rss_mib": rss, "edge_rss_idle_mib": rss_base,
            "bench_process_cpu_cores": others / wall, "latency_p50_ms": quantile(&lat, 0.5),
            "relay_objects_sent": sent, "relay_repeats": repeats,
        }));
        if !ok {
            break;
        }
    }
    Ok(Report {
        name: "fanout".into(),
        title: "Fan-out: player-sdk viewers on one edge".into(),
        setup: format!(
            "The built-in test source (640x360, 800 kb/s) publishes; one origin in the bench process and one edge as its own `popcast edge` process, on loopback; each step runs that many player-sdk sessions (HTTP/1.1 keep-alive, blocking reloads, preload-hinted parts, CMCD) for {secs} s, joining over 2 s. A step is clean with no failed session, no stall and no request error; the ramp stops at the first step that is not."
        ),
        columns: vec![
            "viewers".into(),
            "result".into(),
            "edge CPU cores per 1,000".into(),
            "edge RSS MiB per 1,000 (over idle)".into(),
            "clients + origin + source CPU cores".into(),
            "latency p50 ms".into(),
            "relay objects (origin → edge)".into(),
        ],
        rows,
        notes: vec![
            format!("Highest clean step: {clean} viewers."),
            "The edge's CPU and memory are its own process's (/proc). The clients, the origin and the source's encoder share the machine's cores with it (their CPU is the last column), so the viewer count is a floor for an edge on a machine of its own.".into(),
            "Relay objects: objects the origin sent the edge during the step; repeats counts any object sent to the edge twice (it should stay 0: one origin send per object, however many viewers).".into(),
        ],
        data: json!({ "steps": data, "highest_clean": clean, "seconds": secs }),
    })
}
