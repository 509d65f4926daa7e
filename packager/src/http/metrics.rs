//! Prometheus `/metrics` for origin and edge: each scrape fills a fresh local recorder from
//! the server's own counters (so several servers in one process never mix their numbers),
//! and renders the text exposition format. Labels are bounded: `event` (events this server
//! holds, capped by config), `cause` ([`ErrorCause`]), `quantile`, `state`.

use super::{Body, Reply, reply};
use crate::qoe::{ErrorCause, Report};
use http::StatusCode;
use metrics::{counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::PrometheusBuilder;

/// Runs `fill` (which records with the `metrics` macros) against a fresh recorder and
/// renders what it recorded.
pub fn render(fill: impl FnOnce()) -> String {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, fill);
    handle.render()
}

/// Whether a request bears `token` (`Authorization: Bearer …`), compared in constant time.
pub fn bearer_is(headers: &http::HeaderMap, token: &popcast_config::Secret) -> bool {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|p| token.matches(p.trim().as_bytes()))
}

/// The `/metrics` response.
pub fn exposition(text: String) -> Reply {
    let mut r = reply(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        Body::full(text),
    );
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    r
}

/// Describes the QoE series once per scrape (HELP lines).
pub fn describe_qoe() {
    describe_gauge!("popcast_qoe_viewers", "Viewing sessions playing or starting now");
    describe_gauge!("popcast_qoe_connections", "Viewer connections now");
    describe_counter!(
        "popcast_qoe_sessions_started_total",
        "Sessions seen (by CMCD or beacon session id)"
    );
    describe_counter!(
        "popcast_qoe_sessions_playing_total",
        "Sessions that showed a first frame"
    );
    describe_counter!(
        "popcast_qoe_sessions_ended_total",
        "Sessions over (ended or idle)"
    );
    describe_counter!(
        "popcast_qoe_sessions_never_started_total",
        "Sessions that ended without a first frame"
    );
    // Gauges: a live session counted clean stops being clean when it stalls.
    describe_gauge!(
        "popcast_qoe_sessions_qualified",
        "Sessions counted in the stream success rate"
    );
    describe_gauge!(
        "popcast_qoe_sessions_clean",
        "Qualified sessions that never stalled"
    );
    describe_gauge!(
        "popcast_qoe_success_ratio",
        "Stream success rate: clean / qualified sessions"
    );
    describe_counter!(
        "popcast_qoe_stalls_total",
        "Stalls (rebuffering after the first frame)"
    );
    describe_counter!("popcast_qoe_stall_seconds_total", "Time stalled");
    describe_counter!(
        "popcast_qoe_watch_seconds_total",
        "Time watched (first frame on, stalls included)"
    );
    describe_gauge!("popcast_qoe_rebuffer_ratio", "Stalled time / watch time");
    describe_gauge!("popcast_qoe_startup_seconds", "Time to first frame, by quantile");
    describe_gauge!("popcast_qoe_latency_seconds", "Live latency, by quantile");
    describe_gauge!(
        "popcast_qoe_bitrate_kbps",
        "Bitrate of video objects requested, by quantile"
    );
    describe_gauge!(
        "popcast_qoe_throughput_kbps",
        "Throughput players measured (CMCD mtp), by quantile"
    );
    describe_gauge!(
        "popcast_qoe_buffer_seconds",
        "Players' buffer at each video request (CMCD bl), by quantile"
    );
    describe_counter!(
        "popcast_delivery_errors_total",
        "Error responses to viewers, by cause"
    );
    describe_counter!(
        "popcast_qoe_player_errors_total",
        "Errors players reported in beacons"
    );
    describe_counter!("popcast_qoe_beacons_total", "Beacons applied");
    describe_counter!(
        "popcast_qoe_beacons_refused_total",
        "Beacons refused (malformed, implausible, over a limit)"
    );
    describe_counter!(
        "popcast_qoe_cmcd_malformed_total",
        "CMCD pairs that did not parse (dropped)"
    );
}

/// Records one event's report.
pub fn qoe(event: &str, r: &Report) {
    let ev = event.to_string();
    gauge!("popcast_qoe_viewers", "event" => ev.clone()).set(r.viewers_now as f64);
    gauge!("popcast_qoe_connections", "event" => ev.clone()).set(r.connections as f64);
    for (name, v) in [
        ("popcast_qoe_sessions_started_total", r.sessions_started),
        ("popcast_qoe_sessions_playing_total", r.sessions_playing),
        ("popcast_qoe_sessions_ended_total", r.sessions_ended),
        ("popcast_qoe_sessions_never_started_total", r.never_started),
        ("popcast_qoe_stalls_total", r.stalls),
        ("popcast_qoe_player_errors_total", r.player_errors),
        ("popcast_qoe_beacons_total", r.beacons),
        ("popcast_qoe_beacons_refused_total", r.beacons_refused),
        ("popcast_qoe_cmcd_malformed_total", r.cmcd_malformed),
    ] {
        counter!(name, "event" => ev.clone()).absolute(v);
    }
    gauge!("popcast_qoe_sessions_qualified", "event" => ev.clone()).set(r.qualified as f64);
    gauge!("popcast_qoe_sessions_clean", "event" => ev.clone()).set(r.clean as f64);
    // Seconds, as Prometheus wants; counters are integers, so these are gauges of totals.
    gauge!("popcast_qoe_stall_seconds_total", "event" => ev.clone()).set(r.stall_ms as f64 / 1000.0);
    gauge!("popcast_qoe_watch_seconds_total", "event" => ev.clone()).set(r.watch_ms as f64 / 1000.0);
    if let Some(s) = r.success_rate() {
        gauge!("popcast_qoe_success_ratio", "event" => ev.clone()).set(s);
    }
    if let Some(s) = r.rebuffer_ratio() {
        gauge!("popcast_qoe_rebuffer_ratio", "event" => ev.clone()).set(s);
    }
    for (name, h, scale) in [
        ("popcast_qoe_startup_seconds", &r.startup, 1000.0),
        ("popcast_qoe_latency_seconds", &r.latency, 1000.0),
        ("popcast_qoe_bitrate_kbps", &r.bitrate, 1.0),
        ("popcast_qoe_throughput_kbps", &r.throughput, 1.0),
        ("popcast_qoe_buffer_seconds", &r.buffer, 1000.0),
    ] {
        for (q, label) in [(0.5, "0.5"), (0.95, "0.95")] {
            if let Some(v) = h.quantile(q) {
                gauge!(name, "event" => ev.clone(), "quantile" => label).set(v as f64 / scale);
            }
        }
    }
    for c in ErrorCause::ALL {
        let n = r.errors[c as usize];
        if n > 0 {
            counter!("popcast_delivery_errors_total", "event" => ev.clone(), "cause" => c.name()).absolute(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_renders_as_prometheus_text() {
        let mut r = Report {
            viewers_now: 3,
            qualified: 4,
            clean: 3,
            watch_ms: 40_000,
            stall_ms: 400,
            ..Default::default()
        };
        r.latency.add(800);
        r.errors[ErrorCause::Forbidden as usize] = 2;
        let text = render(|| {
            describe_qoe();
            qoe("launch", &r);
        });
        for want in [
            "# TYPE popcast_qoe_viewers gauge",
            "popcast_qoe_viewers{event=\"launch\"} 3",
            "popcast_qoe_success_ratio{event=\"launch\"} 0.75",
            "popcast_qoe_rebuffer_ratio{event=\"launch\"} 0.01",
            "popcast_delivery_errors_total{event=\"launch\",cause=\"forbidden\"} 2",
            "popcast_qoe_latency_seconds{event=\"launch\",quantile=\"0.5\"} 0.8",
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
        // A second render starts empty.
        assert!(!render(|| {}).contains("launch"));
    }
}
