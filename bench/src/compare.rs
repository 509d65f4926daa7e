//! `popcast bench compare`: one encoded stream (the ffmpeg CLI, tee'd) into our origin and
//! into nginx with its RTMP module, the classic RTMP → HLS origin; then the same player-sdk
//! load through our edge and through nginx as a caching proxy in front of our origin, the
//! classic edge. Ratios are ours ÷ the peer's, in the same run.

use crate::peers::{self, KillOnDrop, Nginx};
use crate::report::{Report, ms, quantile};
use crate::rig::{BenchError, EVENT, Rig};
use crate::scenarios::Options;
use popcast_player::http::{Client, HttpVersion};
use popcast_player::playlist::{Limits, parse_media};
use popcast_player::session::{CmcdMode, Qoe};
use serde_json::json;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// ffmpeg encoding one 1280x720 test pattern once and sending it to every URL in `to`.
fn publish_tee(to: &[String], secs: u64) -> Result<KillOnDrop, BenchError> {
    let outputs = to
        .iter()
        .map(|u| format!("[f=flv:onfail=ignore]{u}"))
        .collect::<Vec<_>>()
        .join("|");
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &secs.to_string(), "-map", "0:v", "-map", "1:a"])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency"])
        .args(["-g", "30", "-keyint_min", "30", "-sc_threshold", "0"])
        .args(["-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "2500k"])
        .args(["-c:a", "aac", "-b:a", "128k"])
        .args(["-flags:v", "+global_header", "-flags:a", "+global_header"])
        .args(["-f", "tee", &outputs])
        .stdout(Stdio::null())
        .spawn()
        .map(KillOnDrop)
        .map_err(|e| BenchError::Setup(format!("run ffmpeg: {e}")))
}

/// When each object of a playlist was first listed: (URI → first seen, msn, media end as
/// the wall clock of its last frame when the playlist dates it, duration).
#[derive(Default)]
struct Seen {
    objects: BTreeMap<String, (SystemTime, u64, Option<SystemTime>, Duration)>,
}

/// Polls `url` every 50 ms until `until`, noting when each segment (and part) first appears.
async fn poll(url: String, until: Instant, parts: bool) -> Seen {
    let mut seen = Seen::default();
    let mut client = Client::new(HttpVersion::Http1);
    while Instant::now() < until {
        if let Ok(f) = client.get(&url, &[]).await {
            let now = SystemTime::now();
            if let Ok(p) = parse_media(&String::from_utf8_lossy(&f.body), &Limits::default()) {
                for s in &p.segments {
                    if parts {
                        let mut end = s.program_date_time;
                        for part in &s.parts {
                            end = end.map(|t| t + part.duration);
                            seen.objects
                                .entry(part.uri.clone())
                                .or_insert((now, s.msn, end, part.duration));
                        }
                    }
                    if let (Some(uri), Some(d)) = (&s.uri, s.duration) {
                        let end = s.program_date_time.map(|t| t + d);
                        seen.objects
                            .entry(format!("segment {uri}"))
                            .or_insert((now, s.msn, end, d));
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

/// Milliseconds from each object's last frame to its first listing, sorted.
fn signed_ms(a: SystemTime, b: SystemTime) -> f64 {
    match a.duration_since(b) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
    }
}

/// Each listed object (segments, or else parts) as (where its media ends, from the stream's
/// start; when it was first listed), in media order. Dated objects count from the first
/// segment's date; undated ones (the peer's) add up their durations from the first segment.
fn listings(seen: &Seen, segments: bool) -> Vec<(Duration, SystemTime)> {
    let mut objects: Vec<&(SystemTime, u64, Option<SystemTime>, Duration)> = seen
        .objects
        .iter()
        .filter(|(k, _)| k.starts_with("segment ") == segments)
        .map(|(_, v)| v)
        .collect();
    objects.sort_by_key(|v| (v.1, v.2));
    let start = seen
        .objects
        .iter()
        .filter(|(k, _)| k.starts_with("segment "))
        .filter_map(|(_, v)| v.2.map(|end| end - v.3))
        .min();
    let mut out = Vec::new();
    let mut media = Duration::ZERO;
    let mut last: Option<u64> = None;
    for (first, msn, end, d) in objects {
        match (end, start) {
            (Some(end), Some(start)) => {
                if let Ok(offset) = end.duration_since(start) {
                    out.push((offset, *first));
                }
            }
            _ => {
                if last.is_some_and(|l| *msn != l + 1) {
                    break; // a gap: the running sum no longer holds
                }
                last = Some(*msn);
                media += *d;
                out.push((media, *first));
            }
        }
    }
    out
}

/// For every 10 ms of media both listed, how much later the peer first listed it than we
/// did (each side lists a frame in its first object reaching past it); sorted, ms.
fn later_over_stream(peer: &[(Duration, SystemTime)], ours: &[(Duration, SystemTime)]) -> Vec<f64> {
    let first = |list: &[(Duration, SystemTime)], t: Duration| {
        list.iter().filter(|(end, _)| *end > t).map(|(_, s)| *s).min()
    };
    let until = peer
        .iter()
        .map(|p| p.0)
        .max()
        .unwrap_or_default()
        .min(ours.iter().map(|o| o.0).max().unwrap_or_default());
    let mut out = Vec::new();
    let mut t = Duration::ZERO;
    while t < until {
        if let (Some(a), Some(b)) = (first(peer, t), first(ours, t)) {
            out.push(signed_ms(a, b));
        }
        t += Duration::from_millis(10);
    }
    out.sort_by(f64::total_cmp);
    out
}

/// For each of the peer's objects, how much later it listed the media up to its end than we
/// listed the same media (in the first of our objects that reaches that far); sorted, ms.
fn later_by(peer: &[(Duration, SystemTime)], ours: &[(Duration, SystemTime)]) -> Vec<f64> {
    let slack = Duration::from_millis(5);
    let mut out: Vec<f64> = peer
        .iter()
        .filter_map(|(end, seen)| {
            ours.iter()
                .filter(|(o, _)| *o + slack >= *end)
                .map(|(_, t)| *t)
                .min()
                .map(|t| signed_ms(*seen, t))
        })
        .collect();
    out.sort_by(f64::total_cmp);
    out
}

/// `n` player-sdk sessions on `url` for `secs`, joining over 2 s, without CMCD (a query
/// unique to each viewer would defeat nginx's cache key); those that started.
async fn load(url: &str, n: usize, secs: u64) -> Vec<Qoe> {
    crate::scenarios::sessions(
        url,
        n,
        Duration::from_secs(secs),
        Duration::from_secs(2) / n as u32,
        CmcdMode::Off,
    )
    .await
    .into_iter()
    .filter_map(Result::ok)
    .collect()
}

struct Side {
    last_error: Option<String>,
    sessions: usize,
    latency_p50: f64,
    stalls: u32,
    errors: u64,
}

fn side(qoes: &[Qoe]) -> Side {
    let mut lat: Vec<f64> = qoes
        .iter()
        .filter_map(|q| q.latency_quantile(0.5))
        .map(|s| s * 1000.0)
        .collect();
    lat.sort_by(f64::total_cmp);
    Side {
        last_error: qoes.iter().find_map(|q| q.last_error.clone()),
        sessions: qoes.len(),
        latency_p50: quantile(&lat, 0.5),
        stalls: qoes.iter().map(|q| q.stalls).sum(),
        errors: qoes.iter().map(|q| q.errors).sum(),
    }
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "–".into()
    }
}

/// Runs the comparison.
pub async fn compare(opts: Options) -> Result<Report, BenchError> {
    let (poll_secs, viewers, watch_secs) = if opts.short { (20, 100, 15) } else { (45, 300, 30) };
    let dir = std::env::temp_dir().join(format!("popcast-bench-compare-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rig = Rig::start("compare", None, true).await?;
    let rtmp: Nginx = peers::rtmp_origin(&dir.join("nginx-rtmp"), 1).map_err(BenchError::Setup)?;
    let rtmp_port = rtmp.rtmp_port.unwrap_or(0);
    let total = poll_secs + 2 * watch_secs + 20;
    let until = Instant::now() + Duration::from_secs(poll_secs);
    let ours = tokio::spawn(poll(
        rig.origin_url(&format!("/live/{EVENT}/source/index.m3u8")),
        until,
        true,
    ));
    let theirs = tokio::spawn(poll(
        format!("http://127.0.0.1:{}/hls/{EVENT}.m3u8", rtmp.http_port),
        until,
        false,
    ));
    let _ff = publish_tee(
        &[
            rig.rtmp_url(),
            format!("rtmp://127.0.0.1:{rtmp_port}/live/{EVENT}"),
        ],
        total,
    )?;
    let (ours, theirs) = (
        ours.await.map_err(|e| BenchError::Run(e.to_string()))?,
        theirs.await.map_err(|e| BenchError::Run(e.to_string()))?,
    );
    // The tee hands each frame to both at once: the same media's listing times compare.
    let their_segments = listings(&theirs, true);
    let our_parts = listings(&ours, false);
    let over_stream = later_over_stream(&their_segments, &our_parts);
    let vs_parts = later_by(&their_segments, &our_parts);
    let vs_segments = later_by(&their_segments, &listings(&ours, true));
    let mean = |v: &[f64]| {
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };

    // The edges: the same load through ours, then through nginx caching our origin.
    rig.ready(2, Duration::from_secs(20)).await?;
    let sent0 = rig.origin.relay.as_ref().map_or(0, |r| r.ledger().objects());
    let edge_cpu = || rig.edge_pid().map_or(f64::NAN, peers::process_cpu_secs);
    let edge_cpu0 = edge_cpu();
    let ours_edge = side(&load(&rig.edge_master(), viewers, watch_secs).await);
    let our_cpu = edge_cpu() - edge_cpu0;
    let relay_sent = rig.origin.relay.as_ref().map_or(0, |r| r.ledger().objects()) - sent0;
    let relay_repeats = rig.origin.relay.as_ref().map_or(0, |r| r.ledger().repeats());
    let proxy =
        peers::caching_proxy(&dir.join("nginx-proxy"), rig.origin.http_addr).map_err(BenchError::Setup)?;
    let cpu0 = proxy.cpu_secs();
    let proxied = side(
        &load(
            &format!("http://127.0.0.1:{}/live/{EVENT}/master.m3u8", proxy.http_port),
            viewers,
            watch_secs,
        )
        .await,
    );
    let proxy_cpu = proxy.cpu_secs() - cpu0;
    // Let nginx flush its access log buffer.
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(proxy.process);
    let log = std::fs::read_to_string(dir.join("nginx-proxy/logs/access.log")).unwrap_or_default();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for l in log.lines() {
        *statuses
            .entry(l.split(' ').next().unwrap_or("").to_string())
            .or_default() += 1;
    }
    let upstream: u64 = statuses
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "HIT" | "-"))
        .map(|(_, v)| v)
        .sum();
    let requests: u64 = statuses.values().sum();
    // nginx-rtmp stays up until here: ffmpeg's tee would lose its other output with it.
    drop(rtmp);
    let _ = std::fs::remove_dir_all(&dir);

    let q = |v: &[f64], p: f64| quantile(v, p);
    let rows = vec![
        vec![
            "a frame listed later by nginx-rtmp than by us: mean over the stream (ms)".into(),
            "0".into(),
            ms(mean(&over_stream)),
            "–".into(),
        ],
        vec![
            "… at nginx-rtmp's segment ends, against our parts (p50 ms)".into(),
            "0".into(),
            ms(q(&vs_parts, 0.5)),
            "–".into(),
        ],
        vec![
            "… at nginx-rtmp's segment ends, against our segments (p50 ms)".into(),
            "0".into(),
            ms(q(&vs_segments, 0.5)),
            "–".into(),
        ],
        vec![
            format!("edge: viewers' live latency p50 ({viewers} player-sdk sessions, ms)"),
            ms(ours_edge.latency_p50),
            ms(proxied.latency_p50),
            ratio(ours_edge.latency_p50, proxied.latency_p50),
        ],
        vec![
            "edge: stalls / request errors".into(),
            format!("{} / {}", ours_edge.stalls, ours_edge.errors),
            format!("{} / {}", proxied.stalls, proxied.errors),
            "–".into(),
        ],
        vec![
            "edge: CPU seconds for the whole load".into(),
            format!("{our_cpu:.1}"),
            format!("{proxy_cpu:.1}"),
            ratio(our_cpu, proxy_cpu),
        ],
        vec![
            "edge: what reached the origin".into(),
            format!("{relay_sent} relay objects, {relay_repeats} repeats"),
            format!("{upstream} of {requests} requests (not HIT)"),
            "–".into(),
        ],
    ];
    Ok(Report {
        name: "compare".into(),
        title: "Compare: our origin and edge beside nginx-rtmp and an nginx caching edge".into(),
        setup: format!(
            "The ffmpeg CLI encodes one 1280x720 30 fps stream (libx264 veryfast zerolatency, 1 s keyframes, 2.5 Mb/s) and tees it over RTMP to our origin and to nginx with libnginx-mod-rtmp ({}; HLS, 1 s fragments, MPEG-TS). Both playlists are polled every 50 ms for {poll_secs} s; since the tee hands each frame to both servers at once, the instants at which each first lists the same media (up to the end of one of nginx-rtmp's segments) compare directly. Our own delay from a frame's arrival to its chunk at a client is in the latency scenario. Then {viewers} player-sdk sessions watch for {watch_secs} s through our edge, and the same through nginx as a caching proxy (proxy_cache, proxy_cache_lock) in front of our origin.",
            peers::nginx_version()
        ),
        columns: vec!["figure".into(), "Popcast".into(), "nginx".into(), "ratio".into()],
        rows,
        notes: vec![
            "nginx-rtmp writes no EXT-X-PROGRAM-DATE-TIME, so a player cannot measure its live latency; its packaging delay plus the 3 target durations a player holds back from a classic HLS live edge bound it from below.".into(),
            format!(
                "Sessions: ours {} (edge), nginx {} (caching proxy); a request error seen: ours {:?}, nginx {:?}. Our edge runs as its own `popcast edge` process and nginx as its master and 2 workers; CPU is read from /proc for each.",
                ours_edge.sessions,
                proxied.sessions,
                ours_edge.last_error,
                proxied.last_error
            ),
            "Polling every 50 ms blurs each listing instant by up to 50 ms, on both sides alike.".into(),
            format!(
                "At nginx-rtmp's own segment ends (the keyframes) it lists the media {:.0} ms sooner than we list the part ending there (p50). Both must see the next keyframe before closing there, so this is ours to explain and remove (not yet understood). Over the whole stream a frame still waits {:.0} ms less with us on average, because parts are listed every 200 ms and segments every second.",
                -q(&vs_parts, 0.5),
                mean(&over_stream)
            ),
        ],
        data: json!({
            "nginx_rtmp_later_over_stream_ms": [q(&over_stream, 0.1), q(&over_stream, 0.5), q(&over_stream, 0.9), mean(&over_stream)],
            "nginx_rtmp_later_than_our_parts_ms": vs_parts,
            "nginx_rtmp_later_than_our_segments_ms": vs_segments,
            "edge_latency_p50_ms": { "ours": ours_edge.latency_p50, "nginx_proxy": proxied.latency_p50 },
            "edge_stalls": { "ours": ours_edge.stalls, "nginx_proxy": proxied.stalls },
            "edge_errors": { "ours": ours_edge.errors, "nginx_proxy": proxied.errors },
            "relay_objects_sent": relay_sent,
            "relay_repeats": relay_repeats,
            "nginx_proxy_cache_status": statuses,
            "nginx_proxy_cpu_secs": proxy_cpu,
            "our_edge_cpu_secs": our_cpu,
            "viewers": viewers,
            "nginx": peers::nginx_version(),
        }),
    })
}
