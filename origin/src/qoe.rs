//! Each event's QoE as the origin sees it: the latest report from every edge that serves
//! it (edges send running totals, so the latest is the truth and a lost one costs
//! nothing), merged per region and in total, and sampled over time for the dashboard's
//! charts. Serves `GET /api/v1/events/{id}/stats` and the origin's `/metrics`.

use popcast_packager::qoe::{ErrorCause, Hist, Report};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

/// Bounds of the board (config `[qoe]`).
#[derive(Debug, Clone)]
pub struct BoardConfig {
    pub max_samples: usize,
    pub max_events: usize,
    /// Edges per event (more than any real placement; bounds what an edge can make us hold).
    pub max_edges_per_event: usize,
}

impl BoardConfig {
    pub fn from_config(q: &popcast_config::QoeConfig) -> Self {
        Self {
            max_samples: q.max_samples as usize,
            max_events: q.max_events as usize,
            max_edges_per_event: 256,
        }
    }
}

/// One point of an event's time series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub unix_ms: u64,
    pub viewers: u64,
    pub success_rate: Option<f64>,
    pub rebuffer_ratio: Option<f64>,
    pub stalls: u64,
    /// Of the sessions that started since the previous sample.
    pub startup_p50_ms: Option<u64>,
    /// Of the latency samples since the previous sample.
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
}

/// A sample's series per region and edge as well as in total.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub total: Sample,
    pub regions: BTreeMap<String, Sample>,
    pub edges: BTreeMap<String, Sample>,
}

/// The reports a sample was taken from: merged, per region, per edge.
type Snapshot = (Report, BTreeMap<String, Report>, BTreeMap<String, Report>);

/// One edge's reports of one event.
#[derive(Debug, Default)]
struct EdgeEntry {
    region: String,
    /// The tracker the latest report came from, and that report.
    epoch: u64,
    latest: Report,
    /// The last reports of its earlier trackers (a restarted edge, a re-made slot), summed,
    /// with nobody watching through them any more.
    earlier: Report,
    at: u64,
}

impl EdgeEntry {
    fn total(&self) -> Report {
        let mut r = self.earlier.clone();
        r.merge(&self.latest);
        r
    }
}

#[derive(Debug, Default)]
struct EventBoard {
    /// node id → its reports.
    edges: BTreeMap<String, EdgeEntry>,
    updated_ms: u64,
    series: VecDeque<Point>,
    /// The reports at the previous sample (for interval quantiles).
    last: Option<Snapshot>,
}

/// What the origin knows of every event's QoE.
pub struct QoeBoard {
    cfg: BoardConfig,
    events: Mutex<HashMap<String, EventBoard>>,
}

/// An event's numbers merged: in total, by region, by edge.
#[derive(Debug, Clone)]
pub struct Merged {
    pub total: Report,
    pub regions: BTreeMap<String, Report>,
    pub edges: BTreeMap<String, (String, Report)>,
    pub updated_ms: u64,
    pub series: Vec<Point>,
}

fn merge_of(edges: &BTreeMap<String, EdgeEntry>) -> (Report, BTreeMap<String, Report>) {
    let mut total = Report::default();
    let mut regions: BTreeMap<String, Report> = BTreeMap::new();
    for e in edges.values() {
        let r = e.total();
        total.merge(&r);
        regions.entry(e.region.clone()).or_default().merge(&r);
    }
    (total, regions)
}

fn sample_of(now: u64, r: &Report, last: Option<&Report>) -> Sample {
    let since = |h: &Hist, prev: Option<&Hist>| match prev {
        Some(p) => h.since(p),
        None => h.clone(),
    };
    let startup = since(&r.startup, last.map(|l| &l.startup));
    let latency = since(&r.latency, last.map(|l| &l.latency));
    Sample {
        unix_ms: now,
        viewers: r.viewers_now,
        success_rate: r.success_rate(),
        rebuffer_ratio: r.rebuffer_ratio(),
        stalls: r.stalls,
        startup_p50_ms: startup.quantile(0.5),
        latency_p50_ms: latency.quantile(0.5),
        latency_p95_ms: latency.quantile(0.95),
    }
}

impl QoeBoard {
    pub fn new(cfg: BoardConfig) -> Self {
        Self {
            cfg,
            events: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, EventBoard>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Edge `node` disconnected: nobody watches through it now (its totals stay).
    pub fn edge_gone(&self, node: &str) {
        for board in self.lock().values_mut() {
            if let Some(e) = board.edges.get_mut(node) {
                e.latest.viewers_now = 0;
                e.latest.connections = 0;
            }
        }
    }

    /// Edge `node`'s latest report for `event`, at `now` (Unix ms). What cannot be true is
    /// clamped (clean ≤ qualified ≤ playing ≤ started; stalled ≤ watched), so a broken edge
    /// cannot push a success rate past 100 %.
    pub fn update(&self, event: &str, node: &str, region: &str, epoch: u64, mut report: Report, now: u64) {
        let r = &mut report;
        r.sessions_playing = r.sessions_playing.min(r.sessions_started);
        r.qualified = r.qualified.min(r.sessions_playing);
        r.clean = r.clean.min(r.qualified);
        r.never_started = r.never_started.min(r.sessions_started);
        r.sessions_ended = r.sessions_ended.min(r.sessions_started);
        r.stall_ms = r.stall_ms.min(r.watch_ms);
        let mut events = self.lock();
        if !events.contains_key(event) && events.len() >= self.cfg.max_events {
            // Make room: the event heard from least recently goes.
            if let Some(oldest) = events
                .iter()
                .min_by_key(|(_, b)| b.updated_ms)
                .map(|(k, _)| k.clone())
            {
                events.remove(&oldest);
            }
        }
        let board = events.entry(event.to_string()).or_default();
        if !board.edges.contains_key(node) && board.edges.len() >= self.cfg.max_edges_per_event {
            return;
        }
        let e = board.edges.entry(node.to_string()).or_default();
        if e.epoch != epoch && e.at > 0 {
            // A new tracker on that edge: keep what the old one counted.
            let mut old = std::mem::take(&mut e.latest);
            old.viewers_now = 0;
            old.connections = 0;
            e.earlier.merge(&old);
        }
        e.region = region.to_string();
        e.epoch = epoch;
        e.latest = report;
        e.at = now.max(1);
        board.updated_ms = now;
    }

    /// Appends a point to every event's series (called every `qoe.sample_secs`). Events
    /// with nobody watching and nothing new since their last point are skipped.
    pub fn sample(&self, now: u64) {
        let max = self.cfg.max_samples;
        for board in self.lock().values_mut() {
            let (total, regions) = merge_of(&board.edges);
            if let Some((last, _, _)) = &board.last {
                if total.viewers_now == 0 && *last == total {
                    continue;
                }
            }
            let edges: BTreeMap<String, Report> =
                board.edges.iter().map(|(n, e)| (n.clone(), e.total())).collect();
            let prev = board.last.as_ref();
            let point = Point {
                total: sample_of(now, &total, prev.map(|p| &p.0)),
                regions: regions
                    .iter()
                    .map(|(name, r)| (name.clone(), sample_of(now, r, prev.and_then(|p| p.1.get(name)))))
                    .collect(),
                edges: edges
                    .iter()
                    .map(|(name, r)| (name.clone(), sample_of(now, r, prev.and_then(|p| p.2.get(name)))))
                    .collect(),
            };
            board.series.push_back(point);
            while board.series.len() > max {
                board.series.pop_front();
            }
            board.last = Some((total, regions, edges));
        }
    }

    /// `event`'s numbers; `None` when no edge has reported it.
    pub fn merged(&self, event: &str) -> Option<Merged> {
        let events = self.lock();
        let board = events.get(event)?;
        let (total, regions) = merge_of(&board.edges);
        Some(Merged {
            total,
            regions,
            edges: board
                .edges
                .iter()
                .map(|(n, e)| (n.clone(), (e.region.clone(), e.total())))
                .collect(),
            updated_ms: board.updated_ms,
            series: board.series.iter().cloned().collect(),
        })
    }

    /// Every event's merged totals.
    pub fn totals(&self) -> Vec<(String, Report)> {
        let events = self.lock();
        let mut out: Vec<(String, Report)> = events
            .iter()
            .map(|(e, b)| (e.clone(), merge_of(&b.edges).0))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

fn quantiles(h: &Hist) -> Value {
    json!({
        "count": h.count(),
        "p50": h.quantile(0.5),
        "p95": h.quantile(0.95),
    })
}

/// A report as the stats API shows it.
pub fn report_json(r: &Report) -> Value {
    let errors: serde_json::Map<String, Value> = ErrorCause::ALL
        .iter()
        .map(|c| (c.name().to_string(), json!(r.errors[*c as usize])))
        .collect();
    let bitrate: Vec<Value> = r
        .bitrate
        .buckets()
        .map(|(b, n)| {
            let (lo, hi) = popcast_packager::qoe::hist::bucket_range(b);
            json!({ "from_kbps": lo, "to_kbps": hi, "count": n })
        })
        .collect();
    json!({
        "viewers_now": r.viewers_now,
        "connections": r.connections,
        "sessions_started": r.sessions_started,
        "sessions_playing": r.sessions_playing,
        "sessions_ended": r.sessions_ended,
        "never_started": r.never_started,
        "qualified": r.qualified,
        "clean": r.clean,
        "success_rate": r.success_rate(),
        "stalls": r.stalls,
        "stalls_per_session": r.stalls_per_session(),
        "stall_ms": r.stall_ms,
        "watch_ms": r.watch_ms,
        "rebuffer_ratio": r.rebuffer_ratio(),
        "startup_ms": quantiles(&r.startup),
        "latency_ms": quantiles(&r.latency),
        "stall_length_ms": quantiles(&r.stall_len),
        "throughput_kbps": quantiles(&r.throughput),
        "buffer_ms": quantiles(&r.buffer),
        "bitrate_kbps": { "p50": r.bitrate.quantile(0.5), "p95": r.bitrate.quantile(0.95), "buckets": bitrate },
        "errors": errors,
        "error_count": r.error_count(),
        "requests": r.requests,
        "player_errors": r.player_errors,
        "beacons": r.beacons,
        "beacons_refused": r.beacons_refused,
        "cmcd_malformed": r.cmcd_malformed,
        "untracked_sessions": r.untracked,
    })
}

fn sample_json(s: &Sample) -> Value {
    json!({
        "t": s.unix_ms,
        "viewers": s.viewers,
        "success_rate": s.success_rate,
        "rebuffer_ratio": s.rebuffer_ratio,
        "stalls": s.stalls,
        "startup_p50_ms": s.startup_p50_ms,
        "latency_p50_ms": s.latency_p50_ms,
        "latency_p95_ms": s.latency_p95_ms,
    })
}

/// The body of `GET /api/v1/events/{id}/stats`.
pub fn stats_json(event: &str, state: &str, m: Option<&Merged>) -> Value {
    let empty = Report::default();
    let total = m.map_or(&empty, |m| &m.total);
    json!({
        "event": event,
        "state": state,
        "updated_unix_ms": m.map(|m| m.updated_ms),
        "definitions": {
            "success_rate": "clean / qualified sessions: a session qualifies once it has shown a first frame and either watched for qoe.qualify_secs or stalled; it is clean when it never stalled",
            "rebuffer_ratio": "stalled time / watch time (first frame to last report, stalls included)",
            "never_started": "sessions that ended without showing a first frame (not in the success rate)",
        },
        "total": report_json(total),
        "regions": m.map(|m| m.regions.iter().map(|(k, r)| (k.clone(), report_json(r))).collect::<serde_json::Map<_, _>>()).unwrap_or_default(),
        "edges": m.map(|m| m.edges.iter().map(|(k, (region, r))| {
            let mut v = report_json(r);
            v["region"] = json!(region);
            (k.clone(), v)
        }).collect::<serde_json::Map<_, _>>()).unwrap_or_default(),
        "series": m.map(|m| m.series.iter().map(|p| json!({
            "total": sample_json(&p.total),
            "regions": p.regions.iter().map(|(k, s)| (k.clone(), sample_json(s))).collect::<serde_json::Map<_, _>>(),
            "edges": p.edges.iter().map(|(k, s)| (k.clone(), sample_json(s))).collect::<serde_json::Map<_, _>>(),
        })).collect::<Vec<_>>()).unwrap_or_default(),
    })
}

/// Samples `board` every `every` until the task is aborted.
pub async fn sampler(board: std::sync::Arc<QoeBoard>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        board.sample(unix_ms());
    }
}

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(qualified: u64, clean: u64, viewers: u64, latency: &[u64]) -> Report {
        let mut r = Report {
            sessions_started: qualified,
            sessions_playing: qualified,
            qualified,
            clean,
            viewers_now: viewers,
            ..Default::default()
        };
        for l in latency {
            r.latency.add(*l);
        }
        r
    }

    #[test]
    fn edges_merge_by_region_and_the_latest_report_wins() {
        let b = QoeBoard::new(BoardConfig {
            max_samples: 3,
            max_events: 2,
            max_edges_per_event: 2,
        });
        b.update("ev", "fra", "eu-west", 1, report(1, 1, 1, &[700]), 1);
        b.update("ev", "fra", "eu-west", 1, report(4, 3, 2, &[700, 720]), 2);
        b.update("ev", "iad", "us-east", 1, report(6, 6, 3, &[900]), 3);
        b.update("ev", "extra", "us-east", 1, report(100, 0, 0, &[]), 4); // over the edge bound
        let m = b.merged("ev").unwrap();
        assert_eq!(m.total.success_rate(), Some(0.9));
        assert_eq!(m.total.viewers_now, 5);
        assert_eq!(m.regions["eu-west"].success_rate(), Some(0.75));
        assert_eq!(m.edges.len(), 2);
        // Samples: interval latency, bounded series, nothing added while idle and unchanged.
        b.sample(10);
        b.update("ev", "iad", "us-east", 1, report(6, 6, 0, &[900, 2000]), 11);
        b.update("ev", "fra", "eu-west", 1, report(4, 3, 0, &[700, 720]), 11);
        b.sample(20);
        b.sample(30);
        let s = b.merged("ev").unwrap().series;
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].total.latency_p50_ms.map(|v| v / 100), Some(7));
        assert_eq!(s[1].total.latency_p50_ms.map(|v| v / 100), Some(20));
        assert_eq!(s[1].regions["eu-west"].latency_p50_ms, None);
        // The event count is bounded: the least recently heard goes.
        b.update("a", "fra", "eu-west", 1, Report::default(), 40);
        b.update("b", "fra", "eu-west", 1, Report::default(), 41);
        assert!(b.merged("ev").is_none());
        assert_eq!(b.totals().len(), 2);
        // An impossible report (clean > qualified > started) is clamped, never > 100 %.
        b.update(
            "a",
            "bad",
            "eu-west",
            1,
            Report {
                sessions_started: 1,
                qualified: 50,
                clean: 99,
                ..Default::default()
            },
            42,
        );
        assert!(
            b.merged("a")
                .unwrap()
                .total
                .success_rate()
                .is_none_or(|r| r <= 1.0)
        );
        // An edge that restarts (a new tracker epoch) does not take its old totals away.
        b.update("a", "fra", "eu-west", 1, report(10, 9, 4, &[]), 50);
        b.update("a", "fra", "eu-west", 2, report(2, 2, 2, &[]), 51);
        let m = b.merged("a").unwrap().total;
        assert_eq!((m.qualified, m.clean, m.viewers_now), (12, 11, 2));
        let j = stats_json("ev", "live", None);
        assert_eq!(j["total"]["success_rate"], Value::Null);
    }
}
