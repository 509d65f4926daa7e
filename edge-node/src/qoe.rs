//! QoE at the edge: the CMCD of every viewer request and the beacons players POST to
//! `/qoe`, kept per event slot by a [`Tracker`], reported to the origin on the relay link,
//! and exported with the slot counters at `/metrics`.

use crate::serve::ServeState;
use crate::slot::EventSlot;
use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode};
use popcast_packager::http::{Body, Reply, metrics, reply, tickets};
use popcast_packager::qoe::tracker::Refused;
use popcast_packager::qoe::{Beacon, BeaconError, Cmcd, CmcdLimits, Report, Tracker, TrackerConfig};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// One slot's sessions, on the slot's own millisecond clock.
pub struct SlotQoe {
    tracker: Mutex<Tracker>,
    born: Instant,
    /// Names this tracker to the origin (random: a restarted edge's trackers are new ones).
    epoch: u64,
}

impl SlotQoe {
    pub fn new(cfg: TrackerConfig) -> Self {
        // Distinct per tracker in this process (a counter) and across restarts (the clock).
        static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let epoch = nanos.wrapping_add(MADE.fetch_add(1, Ordering::Relaxed) << 40) & ((1 << 62) - 1);
        Self {
            tracker: Mutex::new(Tracker::new(cfg)),
            born: Instant::now(),
            epoch,
        }
    }

    /// This tracker's epoch (see [`SlotQoe::new`]).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    fn now(&self) -> u64 {
        self.born.elapsed().as_millis() as u64
    }

    fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A viewer request with its CMCD, answered with `status`.
    pub fn request(&self, cmcd: &Cmcd, status: u16) {
        let now = self.now();
        self.tracker().request(now, cmcd, status);
    }

    pub fn beacon(&self, b: &Beacon) -> Result<(), Refused> {
        let now = self.now();
        self.tracker().beacon(now, b)
    }

    pub fn refused_beacon(&self) {
        self.tracker().refused_beacon();
    }

    /// The running report, with the slot's viewer connections.
    pub fn report(&self, connections: u64) -> Report {
        let now = self.now();
        self.tracker().report(now, connections)
    }
}

/// The CMCD of a request (query argument and headers); never an error.
pub fn cmcd_of(query: &str, headers: &HeaderMap, limits: &CmcdLimits) -> Cmcd {
    Cmcd::parse(
        query,
        headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
        limits,
    )
}

/// A JSON error `{"error", "detail", "field"?}`.
fn refuse(status: StatusCode, error: &str, detail: &str, field: Option<&str>) -> Reply {
    let mut body = serde_json::json!({ "error": error, "detail": detail });
    if let Some(f) = field {
        body["field"] = f.into();
    }
    let mut r = reply(status, "application/json", Body::full(body.to_string()));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A request body as read by the server: bounded by the beacon size limit.
#[derive(Debug)]
pub enum Posted {
    Body(bytes::Bytes),
    TooLarge { max: usize },
    Broken,
}

/// `POST /qoe`: one beacon. 204 when applied; otherwise a status and a JSON error naming
/// the problem (nothing is applied).
pub fn post(state: &ServeState, headers: &HeaderMap, query: &str, body: Posted) -> Reply {
    let limits = &state.qoe.beacon;
    let refused_here = |r: Reply| {
        state.beacons_unrouted.fetch_add(1, Ordering::Relaxed);
        r
    };
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    // sendBeacon with a string sends text/plain (no CORS preflight); fetch sends JSON.
    if !matches!(ctype.as_str(), "application/json" | "text/plain") {
        return refused_here(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported media type",
            &format!("send the beacon as application/json or text/plain, not {ctype:?}"),
            None,
        ));
    }
    let bytes = match body {
        Posted::Body(b) => b,
        Posted::TooLarge { max } => {
            return refused_here(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too large",
                &format!("a beacon is at most {max} bytes"),
                None,
            ));
        }
        Posted::Broken => {
            return refused_here(refuse(
                StatusCode::BAD_REQUEST,
                "bad body",
                "the body was cut off",
                None,
            ));
        }
    };
    let b = match Beacon::parse(&bytes, limits) {
        Ok(b) => b,
        Err(e) => return refused_here(beacon_error(&e)),
    };
    let slot: std::sync::Arc<EventSlot> = match state.slots.get(&b.event) {
        Some(s) => s,
        None => {
            return refused_here(refuse(
                StatusCode::NOT_FOUND,
                "unknown event",
                &format!("event {:?} is not served by this edge", b.event),
                Some("event"),
            ));
        }
    };
    if let Some(keys) = slot.tickets() {
        if let Err(why) = tickets::admit(&keys, slot.name(), headers, query) {
            slot.counters.token_refusals.fetch_add(1, Ordering::Relaxed);
            slot.qoe.refused_beacon();
            return refuse(StatusCode::FORBIDDEN, "forbidden", &why, None);
        }
    }
    match slot.qoe.beacon(&b) {
        Ok(()) => {
            let mut r = reply(StatusCode::NO_CONTENT, "text/plain", Body::empty());
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(Refused::Invalid(e)) => beacon_error(&e),
        Err(e @ Refused::RateLimited(..)) => {
            let mut r = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "rate limited",
                &e.to_string(),
                None,
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            r
        }
        Err(e @ Refused::Full) => refuse(StatusCode::SERVICE_UNAVAILABLE, "full", &e.to_string(), None),
    }
}

fn beacon_error(e: &BeaconError) -> Reply {
    match e {
        BeaconError::TooLarge { .. } => {
            refuse(StatusCode::PAYLOAD_TOO_LARGE, "too large", &e.to_string(), None)
        }
        BeaconError::Json(_) => refuse(StatusCode::BAD_REQUEST, "invalid json", &e.to_string(), None),
        BeaconError::Field { field, .. } => refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid field",
            &e.to_string(),
            Some(field),
        ),
    }
}

/// `/metrics`, for a request bearing `qoe.metrics_token`.
pub fn metrics(state: &ServeState, headers: &HeaderMap) -> Reply {
    let Some(want) = &state.metrics_token else {
        return refuse(
            StatusCode::FORBIDDEN,
            "metrics off",
            "set qoe.metrics_token to scrape this edge (its numbers name every event it serves)",
            None,
        );
    };
    if !metrics::bearer_is(headers, want) {
        let mut r = refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send Authorization: Bearer <qoe.metrics_token>",
            None,
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"popcast\""),
        );
        return r;
    }
    metrics::exposition(metrics_text(state))
}

/// Every slot's QoE and counters, and the link's, as Prometheus text.
pub fn metrics_text(state: &ServeState) -> String {
    use ::metrics::{counter, gauge};
    let slots = state.slots.all();
    let link = &state.link;
    metrics::render(|| {
        metrics::describe_qoe();
        gauge!("popcast_edge_upstream_connected").set(if link.connected.load(Ordering::Relaxed) {
            1.0
        } else {
            0.0
        });
        counter!("popcast_edge_upstream_connections_total")
            .absolute(link.connections.load(Ordering::Relaxed));
        counter!("popcast_edge_torn_objects_total").absolute(link.torn_objects.load(Ordering::Relaxed));
        counter!("popcast_edge_resubscribes_total").absolute(link.resubscribes.load(Ordering::Relaxed));
        counter!("popcast_qoe_beacons_unrouted_total")
            .absolute(state.beacons_unrouted.load(Ordering::Relaxed));
        gauge!("popcast_edge_slots").set(slots.len() as f64);
        for s in &slots {
            let ev = s.name().to_string();
            let c = &s.counters;
            gauge!("popcast_edge_slot_viewers", "event" => ev.clone()).set(f64::from(s.viewers()));
            gauge!("popcast_edge_slot_bytes_held", "event" => ev.clone()).set(s.bytes_held() as f64);
            for (name, v) in [
                ("popcast_edge_hits_total", &c.hits),
                ("popcast_edge_misses_total", &c.misses),
                ("popcast_edge_upstream_fetches_total", &c.upstream_fetches),
                ("popcast_edge_budget_trimmed_bytes_total", &c.budget_trimmed_bytes),
                ("popcast_edge_refused_viewers_total", &c.refused_viewers),
                ("popcast_edge_token_refusals_total", &c.token_refusals),
            ] {
                counter!(name, "event" => ev.clone()).absolute(v.load(Ordering::Relaxed));
            }
            metrics::qoe(&ev, &s.qoe.report(u64::from(s.viewers())));
        }
    })
}
