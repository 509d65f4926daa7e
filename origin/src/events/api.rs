//! The operator API under `/api/v1/events`: create, list, show, update and end events, and
//! mint viewer tokens. JSON in and out; errors are `{"error": ..., "detail": ...}` with
//! 400 (unreadable JSON), 401 (no or wrong operator token), 403 (API off), 404, 405, 409
//! (exists, edited meanwhile, ended), 413 (body over the limit), 415 (not JSON) and 422 (a
//! field breaks its rule; the detail names it).

use super::Events;
use super::db::{DbError, EventDb};
use super::record::{EventRecord, EventState, FieldError, access_str, parse_access};
use crate::live::{LiveEvent, hash_key};
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use popcast_config::{EventDefaults, PackagerConfig};
use popcast_packager::http::{Body, Reply, reply};
use popcast_packager::token::EventKey;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// A start this far in the past is still accepted (clock skew, slow operators).
const PAST_GRACE_SECS: i64 = 60;
/// Viewer tokens live at most this long.
pub const MAX_TOKEN_TTL_SECS: u64 = 7 * 24 * 3600;
const DEFAULT_TOKEN_TTL_SECS: u64 = 3600;

/// What the API works on.
pub struct ApiState {
    pub db: Arc<EventDb>,
    pub events: Arc<Events>,
    /// SHA-256 of the operator token; `None`: the API is off.
    pub operator_token_hash: Option<[u8; 32]>,
    pub packager: PackagerConfig,
    pub defaults: EventDefaults,
    /// The origin's public base URL, for the playback and embed links in answers.
    pub public_url: String,
    /// Unix seconds now (a parameter so tests can move time).
    pub now: fn() -> i64,
    /// The relay's edges, once it runs (`GET /api/v1/edges`).
    pub edges: std::sync::OnceLock<crate::relay::EdgesView>,
    /// Edges' QoE reports, merged per event (`GET /api/v1/events/{id}/stats`).
    pub qoe: Arc<crate::qoe::QoeBoard>,
    /// The ABR ladders events choose from by name.
    pub ladders: crate::live::Ladders,
    /// The bearer token of `/metrics` (else the operator token).
    pub metrics_token: Option<popcast_config::Secret>,
    /// Each event's lifecycle timeline and the webhooks that carry it.
    pub webhooks: Arc<super::webhooks::Webhooks>,
    /// The slate provisioned events play while their creator's media does not.
    pub slate: popcast_config::SlateConfig,
    /// WHIP ingest, for `/metrics` (set once at start when WHIP is on).
    pub whip: std::sync::OnceLock<Arc<crate::ingest::whip::Whip>>,
}

impl ApiState {
    /// [`sync_record`] with this deployment's provisioning lead time and ladders.
    pub fn sync(&self, event: &LiveEvent, r: &EventRecord) -> Result<(), DbError> {
        sync_record(
            &self.db,
            event,
            r,
            self.defaults.provision_lead_secs,
            &self.ladders,
        )
    }
}

pub fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub(crate) fn error(status: StatusCode, error: &str, detail: impl Into<String>) -> Reply {
    let body = json!({ "error": error, "detail": detail.into() });
    let mut r = reply(status, "application/json", Body::full(body.to_string()));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub(crate) fn ok(status: StatusCode, body: Value) -> Reply {
    let mut r = reply(status, "application/json", Body::full(body.to_string()));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// 422 for a ladder name the deployment does not configure.
fn unknown_ladder(state: &ApiState, name: &str) -> Option<Reply> {
    (!state.ladders.knows(name)).then(|| {
        unprocessable(&[ferr(
            "ladder",
            format!(
                "{:?} is not a configured ladder; choose one of: {}",
                name.chars().take(40).collect::<String>(),
                state.ladders.names().join(", ")
            ),
        )])
    })
}

fn unprocessable(errs: &[FieldError]) -> Reply {
    let detail = errs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let fields: Vec<&str> = errs.iter().map(|e| e.field).collect();
    ok(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({ "error": "invalid field", "detail": detail, "fields": fields }),
    )
}

fn db_error(e: DbError) -> Reply {
    match e {
        DbError::NotFound(_) => error(StatusCode::NOT_FOUND, "not found", e.to_string()),
        DbError::Exists(_) | DbError::DuplicateKey => error(StatusCode::CONFLICT, "exists", e.to_string()),
        DbError::VersionMismatch { .. } => error(StatusCode::CONFLICT, "edited meanwhile", e.to_string()),
        DbError::BadTransition { .. } => error(StatusCode::CONFLICT, "bad state change", e.to_string()),
        other => {
            tracing::error!(error = %other, "event database");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "database",
                "the event database failed; see the origin's log",
            )
        }
    }
}

/// Gives the served event what edges must know of the record: its schedule (an ended
/// event's end is when it ended) and, when it is ticketed, its token keys.
pub fn sync_record(
    db: &EventDb,
    event: &LiveEvent,
    r: &EventRecord,
    lead_secs: u64,
    ladders: &crate::live::Ladders,
) -> Result<(), DbError> {
    // The ladder the record names, from the event's next session on.
    event.set_ladder(ladders.pick(&r.ladder));
    event.set_key_hash(r.key_hash);
    event.set_schedule(Some(crate::live::Schedule {
        publish_from: r
            .start
            .saturating_sub(i64::try_from(lead_secs).unwrap_or(i64::MAX)),
        start: r.start,
        end: if r.state == EventState::Ended {
            r.updated.min(r.end())
        } else {
            r.end()
        },
        regions: r.regions.clone(),
        viewer_cap: r.viewer_cap,
    }));
    let keys = match r.access {
        popcast_config::Access::Public => None,
        popcast_config::Access::Ticketed => Some(
            db.keys(&r.id)?
                .into_iter()
                .map(|(kid, secret, _)| (kid, Bytes::from(secret)))
                .collect(),
        ),
    };
    event.set_tickets(keys);
    Ok(())
}

pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// Unix seconds of an RFC 3339 time (what the API and webhook bodies write).
pub fn parse_rfc3339(s: &str) -> Result<i64, time::error::Parse> {
    OffsetDateTime::parse(s, &Rfc3339).map(|t| t.unix_timestamp())
}

/// The record as the API shows it (never the stream key or token keys).
pub fn record_json(r: &EventRecord, public_url: &str) -> Value {
    let base = public_url.trim_end_matches('/');
    json!({
        "id": r.id,
        "title": r.title,
        "creator": r.creator,
        "start": rfc3339(r.start),
        "end": rfc3339(r.end()),
        "duration_mins": r.duration_mins,
        "regions": r.regions,
        "viewer_cap": r.viewer_cap,
        "ladder": r.ladder,
        "access": access_str(r.access),
        "listed": r.listed,
        "webhook_url": r.webhook_url,
        "state": r.state.as_str(),
        "live_at": r.live_at.map(rfc3339),
        "version": r.version,
        "created": rfc3339(r.created),
        "updated": rfc3339(r.updated),
        "playback_url": format!("{base}/live/{}/master.m3u8", r.id),
        "embed_url": format!("{base}/embed/{}", r.id),
        "play_url": format!("{base}/play/{}", r.id),
    })
}

/// The refusal for a request without the operator token (compared in constant time, as
/// hashes); `None` when it carries it.
fn refusal(state: &ApiState, req: &Request<hyper::body::Incoming>) -> Option<Reply> {
    let Some(want) = &state.operator_token_hash else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "api off",
            "the operator API is off: set origin.operator_token",
        ));
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let unauthorized = |detail: &str| {
        let mut r = error(StatusCode::UNAUTHORIZED, "unauthorized", detail);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"popcast\""),
        );
        r
    };
    let Some(token) = presented else {
        return Some(unauthorized("send Authorization: Bearer <operator token>"));
    };
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        &hash_key(token.trim().as_bytes())[..],
        &want[..],
    )) {
        return Some(unauthorized("the operator token does not match"));
    }
    None
}

/// Reads a JSON object body within [`MAX_BODY_BYTES`].
async fn json_body(req: Request<hyper::body::Incoming>) -> Result<Map<String, Value>, Reply> {
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ctype
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported media type",
            format!(
                "send Content-Type: application/json, not {:?}",
                ctype.chars().take(64).collect::<String>()
            ),
        ));
    }
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body too large",
            format!("at most {MAX_BODY_BYTES} bytes"),
        )
    };
    if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES)
    {
        return Err(too_large());
    }
    let body = http_body_util::Limited::new(req.into_body(), MAX_BODY_BYTES);
    let bytes: Bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return Err(too_large()),
        Err(_) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad body",
                "the request body was cut off",
            ));
        }
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "invalid json",
            "the body must be a JSON object",
        )),
        Err(e) => Err(error(StatusCode::BAD_REQUEST, "invalid json", e.to_string())),
    }
}

/// Typed reads of a JSON object's fields, collecting every problem with its field's name.
struct Fields<'a> {
    m: &'a Map<String, Value>,
    errs: Vec<FieldError>,
}

fn ferr(field: &'static str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field,
        reason: reason.into(),
    }
}

impl<'a> Fields<'a> {
    fn new(m: &'a Map<String, Value>, known: &[&'static str]) -> Self {
        let mut errs = Vec::new();
        for k in m.keys() {
            if !known.contains(&k.as_str()) {
                errs.push(ferr(
                    "body",
                    format!(
                        "unknown field {:?} (known: {})",
                        k.chars().take(64).collect::<String>(),
                        known.join(", ")
                    ),
                ));
            }
        }
        Self { m, errs }
    }

    fn string(&mut self, f: &'static str) -> Option<String> {
        match self.m.get(f) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.errs.push(ferr(f, "must be a string"));
                None
            }
        }
    }

    fn uint(&mut self, f: &'static str) -> Option<u64> {
        match self.m.get(f) {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) => Some(n),
                None => {
                    self.errs.push(ferr(f, "must be a whole number ≥ 0"));
                    None
                }
            },
        }
    }

    fn bool(&mut self, f: &'static str) -> Option<bool> {
        match self.m.get(f) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.errs.push(ferr(f, "must be true or false"));
                None
            }
        }
    }

    fn u32(&mut self, f: &'static str) -> Option<u32> {
        let n = self.uint(f)?;
        match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                self.errs.push(ferr(f, format!("{n} is too large")));
                None
            }
        }
    }

    fn strings(&mut self, f: &'static str) -> Option<Vec<String>> {
        match self.m.get(f) {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
                Some(a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            }
            Some(_) => {
                self.errs.push(ferr(f, "must be an array of strings"));
                None
            }
        }
    }

    /// An RFC 3339 time (`2026-12-01T18:00:00Z`) or Unix seconds.
    fn time(&mut self, f: &'static str) -> Option<i64> {
        match self.m.get(f) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => match parse_rfc3339(s) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.errs.push(ferr(f, format!("not an RFC 3339 time ({e})")));
                    None
                }
            },
            Some(v) => match v.as_i64() {
                Some(n) if n >= 0 => Some(n),
                _ => {
                    self.errs
                        .push(ferr(f, "must be an RFC 3339 string or Unix seconds"));
                    None
                }
            },
        }
    }

    fn required<T>(&mut self, f: &'static str, v: Option<T>) -> Option<T> {
        if v.is_none() && !self.m.contains_key(f) {
            self.errs.push(ferr(f, "required"));
        }
        v
    }
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the system's random source works");
    b
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A slug from a title: lowercase letters and digits, dashes between words, with a short
/// random suffix so that equal titles do not collide.
fn slug(title: &str) -> String {
    let mut s = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            s.push(c);
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
        if s.len() >= 40 {
            break;
        }
    }
    let s = s.trim_end_matches('-');
    let suffix = hex(&random_bytes::<3>());
    if s.is_empty() {
        format!("event-{suffix}")
    } else {
        format!("{s}-{suffix}")
    }
}

const CREATE_FIELDS: &[&str] = &[
    "id",
    "title",
    "creator",
    "start",
    "duration_mins",
    "regions",
    "viewer_cap",
    "ladder",
    "access",
    "listed",
    "webhook_url",
];

async fn create(state: &ApiState, req: Request<hyper::body::Incoming>) -> Reply {
    let m = match json_body(req).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let now = (state.now)();
    let mut f = Fields::new(&m, CREATE_FIELDS);
    let title = f.string("title");
    let title = f.required("title", title);
    let creator = f.string("creator");
    let creator = f.required("creator", creator);
    let start = f.time("start");
    let start = f.required("start", start);
    let id = f.string("id");
    let duration_mins = f.u32("duration_mins").unwrap_or(state.defaults.duration_mins);
    let regions = f
        .strings("regions")
        .unwrap_or_else(|| state.defaults.regions.clone());
    let viewer_cap = f.u32("viewer_cap").unwrap_or(state.defaults.viewer_cap);
    let ladder = f.string("ladder").unwrap_or_else(|| "default".into());
    let listed = f.bool("listed").unwrap_or(true);
    let webhook_url = f.string("webhook_url").filter(|u| !u.is_empty());
    if webhook_url.is_some() && !state.webhooks.can_sign() {
        f.errs.push(ferr("webhook_url", NO_SECRET));
    }
    let access = match f.string("access") {
        None => Some(state.defaults.access),
        Some(a) => {
            let parsed = parse_access(&a);
            if parsed.is_none() {
                f.errs.push(ferr("access", "must be \"public\" or \"ticketed\""));
            }
            parsed
        }
    };
    if let Some(s) = start {
        if s < now - PAST_GRACE_SECS {
            f.errs
                .push(ferr("start", format!("{} is in the past", rfc3339(s))));
        }
    }
    let (Some(title), Some(creator), Some(start), Some(access), true) =
        (title, creator, start, access, f.errs.is_empty())
    else {
        return unprocessable(&f.errs);
    };
    let id = id.unwrap_or_else(|| slug(&title));
    let stream_key = hex(&random_bytes::<20>());
    let r = EventRecord {
        id,
        title,
        creator,
        start,
        duration_mins,
        regions,
        viewer_cap,
        ladder,
        access,
        listed,
        state: EventState::Scheduled,
        live_at: None,
        webhook_url,
        key_hash: hash_key(stream_key.as_bytes()),
        version: 1,
        created: now,
        updated: now,
    };
    if let Err(errs) = r.check() {
        return unprocessable(&errs);
    }
    if let Some(refused) = unknown_ladder(state, &r.ladder) {
        return refused;
    }
    if state.events.get(&r.id).is_some() {
        return error(
            StatusCode::CONFLICT,
            "exists",
            format!("event {:?} exists already", r.id),
        );
    }
    if let Some(refused) = creator_cap(state, &r) {
        return refused;
    }
    if let Err(e) = state.db.insert(&r) {
        return db_error(e);
    }
    if let Err(e) = state.db.add_key(&r.id, "k1", &random_bytes::<32>(), now) {
        return db_error(e);
    }
    let live = LiveEvent::with_key_hash(&r.id, r.key_hash, &state.packager);
    live.set_keyframe_policy(state.defaults.keyframe_policy);
    if let Err(e) = state.sync(&live, &r) {
        return db_error(e);
    }
    if let Err(e) = state.events.add(live) {
        tracing::error!(event = %r.id, error = %e, "created event not registered");
    }
    tracing::info!(event = %r.id, start = %rfc3339(r.start), "event created");
    let mut body = record_json(&r, &state.public_url);
    body["stream_key"] = json!(stream_key);
    body["stream_key_note"] = json!("shown once: store it now; only its hash is kept");
    ok(StatusCode::CREATED, body)
}

/// The refusal (429) for an event that would take its creator past their daily cap: a
/// base for new creators, one more for each of their events that went live and ended, up to
/// a maximum. Days are UTC days of the event's start.
fn creator_cap(state: &ApiState, r: &EventRecord) -> Option<Reply> {
    const DAY: i64 = 86_400;
    let day = r.start.div_euclid(DAY) * DAY;
    let (on_day, delivered) = match state.db.creator_counts(&r.creator, day, day + DAY) {
        Ok(c) => c,
        Err(e) => return Some(db_error(e)),
    };
    let d = &state.defaults;
    let cap = d
        .creator_daily_events
        .saturating_add(delivered)
        .min(d.creator_daily_events_max.max(d.creator_daily_events));
    if on_day < cap {
        return None;
    }
    let date = rfc3339(day);
    let date = date.split('T').next().unwrap_or(&date);
    let mut body = json!({
        "error": "creator daily cap",
        "detail": format!(
            "`creator`: {:?} already has {on_day} events on {date} (UTC), the cap for a creator with {delivered} delivered events is {cap}; each event that goes live and ends raises it by one, up to {}",
            r.creator, d.creator_daily_events_max
        ),
        "fields": ["creator"],
        "cap": cap,
    });
    body["events_on_day"] = json!(on_day);
    Some(ok(StatusCode::TOO_MANY_REQUESTS, body))
}

const UPDATE_FIELDS: &[&str] = &[
    "version",
    "title",
    "creator",
    "start",
    "duration_mins",
    "regions",
    "viewer_cap",
    "ladder",
    "access",
    "listed",
    "webhook_url",
];

/// Why an event cannot have its own receiver.
const NO_SECRET: &str = "needs webhooks.secret in the origin's config (every webhook is signed)";

async fn update(state: &ApiState, id: &str, req: Request<hyper::body::Incoming>) -> Reply {
    let m = match json_body(req).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let now = (state.now)();
    let current = match state.db.get(id) {
        Ok(r) => r,
        Err(e) => return db_error(e),
    };
    if current.state == EventState::Ended {
        return error(StatusCode::CONFLICT, "ended", format!("event {id:?} has ended"));
    }
    let mut f = Fields::new(&m, UPDATE_FIELDS);
    let version = f.uint("version");
    let version = f.required("version", version);
    let mut next = current.clone();
    if let Some(v) = f.string("title") {
        next.title = v;
    }
    if let Some(v) = f.string("creator") {
        next.creator = v;
    }
    if let Some(v) = f.time("start") {
        if v != current.start && v < now - PAST_GRACE_SECS {
            f.errs
                .push(ferr("start", format!("{} is in the past", rfc3339(v))));
        }
        next.start = v;
    }
    if let Some(v) = f.u32("duration_mins") {
        next.duration_mins = v;
    }
    if let Some(v) = f.strings("regions") {
        next.regions = v;
    }
    if let Some(v) = f.u32("viewer_cap") {
        next.viewer_cap = v;
    }
    if let Some(v) = f.string("ladder") {
        next.ladder = v;
    }
    if let Some(v) = f.bool("listed") {
        next.listed = v;
    }
    // An empty string removes the event's own receiver.
    if let Some(v) = f.string("webhook_url") {
        if !v.is_empty() && !state.webhooks.can_sign() {
            f.errs.push(ferr("webhook_url", NO_SECRET));
        }
        next.webhook_url = Some(v).filter(|u| !u.is_empty());
    }
    if let Some(a) = f.string("access") {
        match parse_access(&a) {
            Some(a) => next.access = a,
            None => f.errs.push(ferr("access", "must be \"public\" or \"ticketed\"")),
        }
    }
    let Some(version) = version.filter(|_| f.errs.is_empty()) else {
        return unprocessable(&f.errs);
    };
    if let Err(errs) = next.check() {
        return unprocessable(&errs);
    }
    if let Some(refused) = unknown_ladder(state, &next.ladder) {
        return refused;
    }
    // Moving an event to another day or creator must not step around the daily cap.
    if (next.creator != current.creator || next.start.div_euclid(86_400) != current.start.div_euclid(86_400))
        && let Some(refused) = creator_cap(state, &next)
    {
        return refused;
    }
    match state.db.update(&next, version, now) {
        Ok(r) => {
            if let Some(live) = state.events.get(&r.id) {
                if let Err(e) = state.sync(&live, &r) {
                    return db_error(e);
                }
                state.events.touch();
            }
            ok(StatusCode::OK, record_json(&r, &state.public_url))
        }
        Err(e) => db_error(e),
    }
}

fn end(state: &ApiState, id: &str) -> Reply {
    let now = (state.now)();
    match state.db.set_state(id, EventState::Ended, now) {
        Ok(r) => {
            if let Some(e) = state.events.get(id) {
                let publishing = matches!(
                    e.status().borrow().source,
                    Some(crate::live::SourceKind::Publisher { .. })
                );
                if publishing {
                    state
                        .webhooks
                        .emit(id, "publisher.lost", json!({ "reason": "ended" }));
                }
                e.end();
            }
            // Before anything that can fail: the record is ended already, and nothing else
            // would send these.
            let hooks = &state.webhooks;
            hooks.emit(id, "event.ended", json!({ "from": "operator" }));
            hooks.emit(id, "slots.released", json!({ "regions": r.regions }));
            if let Some(e) = state.events.get(id) {
                if let Err(err) = state.sync(&e, &r) {
                    return db_error(err);
                }
                state.events.touch();
            }
            tracing::info!(event = %id, "event ended by the operator");
            ok(StatusCode::OK, record_json(&r, &state.public_url))
        }
        Err(e) => db_error(e),
    }
}

/// Stores `hash` as the event's stream key (record and live event).
fn store_key_hash(state: &ApiState, id: &str, hash: [u8; 32]) -> Result<EventRecord, DbError> {
    let now = (state.now)();
    let mut r = state.db.get(id)?;
    let version = r.version;
    r.key_hash = hash;
    let r = state.db.update(&r, version, now)?;
    if let Some(e) = state.events.get(id) {
        state.sync(&e, &r)?;
    }
    Ok(r)
}

/// `POST /api/v1/events/{id}/kick`: ends the current publisher's session and revokes the
/// stream key until a new one is made (`POST …/stream-key`).
fn kick(state: &ApiState, id: &str) -> Reply {
    let r = match state.db.get(id) {
        Ok(r) => r,
        Err(e) => return db_error(e),
    };
    if r.state == EventState::Ended {
        return error(StatusCode::CONFLICT, "ended", format!("event {id:?} has ended"));
    }
    // Revoked first, so the kicked publisher cannot come straight back.
    if let Err(e) = store_key_hash(state, id, hash_key(&random_bytes::<32>())) {
        return db_error(e);
    }
    let kicked = state.events.get(id).is_some_and(|e| e.kick());
    tracing::info!(event = %id, kicked, "publisher kicked by the operator; stream key revoked");
    ok(
        StatusCode::OK,
        json!({
            "event": id,
            "kicked": kicked,
            "stream_key_revoked": true,
            "next": format!("POST /api/v1/events/{id}/stream-key for a new stream key"),
        }),
    )
}

/// `POST /api/v1/events/{id}/stream-key`: a new stream key (shown once); the old one stops working.
fn new_stream_key(state: &ApiState, id: &str) -> Reply {
    let key = hex(&random_bytes::<20>());
    let r = match store_key_hash(state, id, hash_key(key.as_bytes())) {
        Ok(r) => r,
        Err(e) => return db_error(e),
    };
    tracing::info!(event = %id, "stream key rotated");
    ok(
        StatusCode::OK,
        json!({
            "event": r.id,
            "stream_key": key,
            "stream_key_note": "shown once: store it now; only its hash is kept",
        }),
    )
}

async fn mint(state: &ApiState, id: &str, req: Request<hyper::body::Incoming>) -> Reply {
    let m = match json_body(req).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut f = Fields::new(&m, &["ttl_secs", "session"]);
    let ttl = f.uint("ttl_secs").unwrap_or(DEFAULT_TOKEN_TTL_SECS);
    let session = f.string("session");
    if ttl == 0 || ttl > MAX_TOKEN_TTL_SECS {
        f.errs.push(ferr(
            "ttl_secs",
            format!("{ttl} is outside 1..={MAX_TOKEN_TTL_SECS}"),
        ));
    }
    if !f.errs.is_empty() {
        return unprocessable(&f.errs);
    }
    let r = match state.db.get(id) {
        Ok(r) => r,
        Err(e) => return db_error(e),
    };
    if r.state == EventState::Ended {
        return error(StatusCode::CONFLICT, "ended", format!("event {id:?} has ended"));
    }
    let keys = match state.db.keys(id) {
        Ok(k) => k,
        Err(e) => return db_error(e),
    };
    let Some((kid, secret, _)) = keys.first() else {
        return error(
            StatusCode::CONFLICT,
            "no key",
            format!("event {id:?} has no token key"),
        );
    };
    let key = match EventKey::new(kid, secret) {
        Ok(k) => k,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "bad key", e.to_string()),
    };
    let expires = (state.now)().max(0) as u64 + ttl;
    match key.mint(id, expires, session.as_deref()) {
        Ok(token) => ok(
            StatusCode::CREATED,
            json!({
                "token": token,
                "expires": rfc3339(expires as i64),
                "kid": kid,
                "play_url": format!("{}/play/{id}?token={token}", state.public_url.trim_end_matches('/')),
            }),
        ),
        Err(e) => unprocessable(&[ferr("session", e.to_string())]),
    }
}

/// Given an event's key creation times newest first, the time before which keys can go: a
/// key whose successor was made longer ago than any token lives signs nothing valid now.
fn retire_before(now: i64, created_newest_first: &[i64]) -> Option<i64> {
    let max_ttl = i64::try_from(MAX_TOKEN_TTL_SECS).unwrap_or(i64::MAX);
    created_newest_first
        .windows(2)
        .find(|w| w[0] < now.saturating_sub(max_ttl))
        .map(|w| w[0])
}

/// `POST /api/v1/events/{id}/keys`: a new viewer-token key that tokens are minted with from
/// now on. Older keys keep verifying the tokens they signed until those can have expired (a
/// key is dropped once its successor is older than the longest token lifetime), so current
/// viewers play on; `"revoke_previous": true` drops them at once (a leaked key), cutting
/// off every token they signed.
async fn rotate(state: &ApiState, id: &str, req: Request<hyper::body::Incoming>) -> Reply {
    let m = match json_body(req).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut f = Fields::new(&m, &["revoke_previous"]);
    let revoke = f.bool("revoke_previous").unwrap_or(false);
    if !f.errs.is_empty() {
        return unprocessable(&f.errs);
    }
    let now = (state.now)();
    let r = match state.db.get(id) {
        Ok(r) => r,
        Err(e) => return db_error(e),
    };
    if r.state == EventState::Ended {
        return error(StatusCode::CONFLICT, "ended", format!("event {id:?} has ended"));
    }
    if r.access == popcast_config::Access::Public {
        return error(
            StatusCode::CONFLICT,
            "public event",
            format!("event {id:?} is public: its viewers need no token"),
        );
    }
    let before = match state.db.keys(id) {
        Ok(k) => k,
        Err(e) => return db_error(e),
    };
    let next = before
        .iter()
        .filter_map(|(kid, _, _)| kid.strip_prefix('k')?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    let kid = format!("k{next}");
    if let Err(e) = state.db.add_key(id, &kid, &random_bytes::<32>(), now) {
        return db_error(e);
    }
    let dropped = if revoke {
        state.db.drop_keys_before(id, i64::MAX)
    } else {
        let mut created = vec![now];
        created.extend(before.iter().map(|k| k.2));
        match retire_before(now, &created) {
            Some(t) => state.db.drop_keys_before(id, t),
            None => Ok(0),
        }
    };
    let dropped = match dropped {
        Ok(n) => n,
        Err(e) => return db_error(e),
    };
    if let Some(live) = state.events.get(id) {
        if let Err(e) = state.sync(&live, &r) {
            return db_error(e);
        }
        state.events.touch();
    }
    let keys: Vec<String> = match state.db.keys(id) {
        Ok(k) => k.into_iter().map(|k| k.0).collect(),
        Err(e) => return db_error(e),
    };
    tracing::info!(event = %id, %kid, dropped, revoke, "viewer-token key rotated");
    ok(
        StatusCode::CREATED,
        json!({ "kid": kid, "keys": keys, "dropped": dropped }),
    )
}

fn list(state: &ApiState, query: &str) -> Reply {
    let mut from = None;
    let mut to = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let parse = |v: &str| {
            let v = v
                .replace("%3A", ":")
                .replace("%3a", ":")
                .replace("%2B", "+")
                .replace("%2b", "+");
            OffsetDateTime::parse(&v, &Rfc3339)
                .map(|t| t.unix_timestamp())
                .ok()
                .or_else(|| v.parse::<i64>().ok())
        };
        let slot = match k {
            "from" => &mut from,
            "to" => &mut to,
            _ => continue,
        };
        match parse(v) {
            Some(t) => *slot = Some(t),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad query",
                    format!("`{k}`: not an RFC 3339 time or Unix seconds"),
                );
            }
        }
    }
    match state.db.list(from, to) {
        Ok(v) => ok(
            StatusCode::OK,
            json!({ "events": v.iter().map(|r| record_json(r, &state.public_url)).collect::<Vec<_>>() }),
        ),
        Err(e) => db_error(e),
    }
}

/// Answers `/metrics` (Prometheus): every event's merged QoE, events by state and the
/// connected edges. Needs `qoe.metrics_token`, or the operator token when that is unset.
pub fn metrics(state: &ApiState, req: &Request<hyper::body::Incoming>) -> Reply {
    match &state.metrics_token {
        Some(t) => {
            if !popcast_packager::http::metrics::bearer_is(req.headers(), t) {
                let mut r = error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "send Authorization: Bearer <qoe.metrics_token>",
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"popcast\""),
                );
                return r;
            }
        }
        None => {
            if let Some(r) = refusal(state, req) {
                return r;
            }
        }
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
            "allowed: GET",
        );
    }
    let totals = state.qoe.totals();
    let records = state.db.list(None, None).unwrap_or_default();
    let edges = state.edges.get().map(|v| v.list()).unwrap_or_default();
    let text = popcast_packager::http::metrics::render(|| {
        use metrics::gauge;
        popcast_packager::http::metrics::describe_qoe();
        metrics::describe_gauge!("popcast_origin_events", "Events by state");
        metrics::describe_gauge!("popcast_origin_edges", "Edges connected to the relay");
        for s in crate::events::record::EventState::ALL {
            let n = records.iter().filter(|r| r.state == s).count();
            gauge!("popcast_origin_events", "state" => s.as_str()).set(n as f64);
        }
        gauge!("popcast_origin_edges").set(edges.len() as f64);
        #[cfg(feature = "ladder")]
        ladder_metrics(&state.events);
        ingest_metrics(&state.events);
        if let Some(w) = state.whip.get() {
            whip_metrics(w);
        }
        for (event, r) in &totals {
            popcast_packager::http::metrics::qoe(event, r);
        }
    });
    popcast_packager::http::metrics::exposition(text)
}

/// WHIP ingest: sessions open now, and totals since start.
fn whip_metrics(w: &crate::ingest::whip::Whip) {
    use std::sync::atomic::Ordering::Relaxed;
    metrics::describe_gauge!("popcast_whip_sessions", "WHIP sessions open");
    metrics::describe_counter!(
        "popcast_whip_sessions_started_total",
        "WHIP offers answered with 201"
    );
    metrics::describe_counter!("popcast_whip_refused_total", "WHIP offers refused (4xx, 5xx)");
    metrics::describe_counter!(
        "popcast_whip_dropped_payloads_total",
        "WebRTC payloads dropped because a session's media task was behind"
    );
    metrics::describe_counter!(
        "popcast_whip_keyframe_requests_total",
        "PLI/FIR sent to WHIP publishers"
    );
    let s = w.stats();
    metrics::gauge!("popcast_whip_sessions").set(w.session_count() as f64);
    metrics::counter!("popcast_whip_sessions_started_total").absolute(s.started.load(Relaxed));
    metrics::counter!("popcast_whip_refused_total").absolute(s.refused.load(Relaxed));
    metrics::counter!("popcast_whip_dropped_payloads_total").absolute(s.dropped.load(Relaxed));
    metrics::counter!("popcast_whip_keyframe_requests_total").absolute(s.keyframe_requests.load(Relaxed));
}

/// Each event's current publisher, as the ingest analyzer measures it (events with a
/// publisher connected only; labels `event`, `kind` (video/audio), `stat` (min/avg/max)).
fn ingest_metrics(events: &crate::Events) {
    use metrics::gauge;
    metrics::describe_gauge!(
        "popcast_ingest_keyframe_interval_seconds",
        "The publisher's keyframe interval (min, avg, max)"
    );
    metrics::describe_gauge!("popcast_ingest_fps", "The publisher's measured frame rate");
    metrics::describe_gauge!("popcast_ingest_bitrate_kbps", "The publisher's measured bitrate");
    metrics::describe_gauge!(
        "popcast_ingest_b_frames",
        "1 when the publisher's video has B-frames"
    );
    metrics::describe_gauge!(
        "popcast_ingest_warnings",
        "Problems the ingest report names for the publisher (see /api/v1/events/{id}/ingest)"
    );
    for name in events.names() {
        let Some((r, true)) = events.get(&name).and_then(|e| e.ingest_report()) else {
            continue;
        };
        if let Some(v) = &r.video {
            if let Some(k) = v.keyframe_interval_s {
                for (stat, x) in [("min", k.min), ("avg", k.avg), ("max", k.max)] {
                    gauge!("popcast_ingest_keyframe_interval_seconds", "event" => name.clone(), "stat" => stat)
                        .set(x);
                }
            }
            if let Some(f) = v.fps_measured {
                gauge!("popcast_ingest_fps", "event" => name.clone()).set(f);
            }
            if let Some(k) = v.flow.kbps_measured {
                gauge!("popcast_ingest_bitrate_kbps", "event" => name.clone(), "kind" => "video").set(k);
            }
            gauge!("popcast_ingest_b_frames", "event" => name.clone()).set(f64::from(u8::from(v.b_frames)));
        }
        if let Some(k) = r.audio.as_ref().and_then(|a| a.flow.kbps_measured) {
            gauge!("popcast_ingest_bitrate_kbps", "event" => name.clone(), "kind" => "audio").set(k);
        }
        gauge!("popcast_ingest_warnings", "event" => name.clone()).set(r.warnings.len() as f64);
    }
}

/// Each running ABR ladder's renditions: encoder delay, frames out and dropped.
#[cfg(feature = "ladder")]
fn ladder_metrics(events: &crate::Events) {
    use metrics::{counter, gauge};
    use std::sync::atomic::Ordering::Relaxed;
    metrics::describe_gauge!(
        "popcast_ladder_encode_delay_seconds",
        "Source frame in → encoded frame out, per rendition (last, and worst since start)"
    );
    metrics::describe_counter!("popcast_ladder_frames_total", "Frames encoded per rendition");
    metrics::describe_counter!(
        "popcast_ladder_paused_total",
        "Times a rendition missed a source keyframe and waited for the next (a gap in it)"
    );
    metrics::describe_counter!(
        "popcast_ladder_dropped_frames_total",
        "Frames a rendition dropped because its encoder fell behind"
    );
    for name in events.names() {
        let Some(stats) = events.get(&name).and_then(|e| e.ladder_stats()) else {
            continue;
        };
        for (rendition, s) in &stats.renditions {
            let (ev, r) = (name.clone(), rendition.clone());
            gauge!("popcast_ladder_encode_delay_seconds", "event" => ev.clone(), "rendition" => r.clone(), "stat" => "last")
                .set(s.delay_us_last.load(Relaxed) as f64 / 1e6);
            gauge!("popcast_ladder_encode_delay_seconds", "event" => ev.clone(), "rendition" => r.clone(), "stat" => "max")
                .set(s.delay_us_max.load(Relaxed) as f64 / 1e6);
            counter!("popcast_ladder_frames_total", "event" => ev.clone(), "rendition" => r.clone())
                .absolute(s.frames_out.load(Relaxed));
            counter!("popcast_ladder_dropped_frames_total", "event" => ev.clone(), "rendition" => r.clone())
                .absolute(s.dropped.load(Relaxed));
            counter!("popcast_ladder_paused_total", "event" => ev, "rendition" => r)
                .absolute(s.paused.load(Relaxed));
        }
    }
}

/// Answers `/api/v1/edges`: the connected edges with their region, load and slots.
pub fn edges(state: &ApiState, req: &Request<hyper::body::Incoming>) -> Reply {
    if let Some(r) = refusal(state, req) {
        return r;
    }
    if req.method() != Method::GET {
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
            "allowed: GET",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return r;
    }
    let Some(view) = state.edges.get() else {
        return ok(StatusCode::OK, json!({ "relay": "off", "edges": [] }));
    };
    let edges: Vec<Value> = view
        .list()
        .iter()
        .map(|e| {
            json!({
                "node_id": e.node_id,
                "region": e.region,
                "capacity_viewers": e.capacity_viewers,
                "viewers": e.viewers,
                "load": if e.capacity_viewers == 0 { 1.0 } else { f64::from(e.viewers) / f64::from(e.capacity_viewers) },
                "slots": e.slots,
                "events": e.events,
                "public_url": e.public_url,
                "bytes_held": e.bytes_held,
            })
        })
        .collect();
    ok(StatusCode::OK, json!({ "relay": "on", "edges": edges }))
}

/// Answers a request under `/api/v1/events`.
pub async fn handle(state: &ApiState, req: Request<hyper::body::Incoming>) -> Reply {
    if let Some(r) = refusal(state, &req) {
        return r;
    }
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let rest = path.strip_prefix("/api/v1/events").unwrap_or("");
    let parts: Vec<&str> = rest.split('/').skip(1).collect();
    let method = req.method().clone();
    let not_allowed = |allow: &'static str| {
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
            format!("allowed: {allow}"),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        r
    };
    let checked = |id: &str| {
        popcast_packager::naming::check_name("event", id)
            .err()
            .map(|e| error(StatusCode::NOT_FOUND, "not found", e.to_string()))
    };
    match (rest, parts.as_slice()) {
        ("" | "/", _) => match method {
            Method::GET => list(state, &query),
            Method::POST => create(state, req).await,
            _ => not_allowed("GET, POST"),
        },
        (_, [id]) => {
            if let Some(r) = checked(id) {
                return r;
            }
            match method {
                Method::GET => match state.db.get(id) {
                    Ok(r) => ok(StatusCode::OK, record_json(&r, &state.public_url)),
                    Err(e) => db_error(e),
                },
                Method::PATCH => update(state, id, req).await,
                _ => not_allowed("GET, PATCH"),
            }
        }
        (_, [id, "end"]) => {
            if let Some(r) = checked(id) {
                return r;
            }
            match method {
                Method::POST => end(state, id),
                _ => not_allowed("POST"),
            }
        }
        (_, [id, "keys"]) => {
            if let Some(r) = checked(id) {
                return r;
            }
            match method {
                Method::POST => rotate(state, id, req).await,
                _ => not_allowed("POST"),
            }
        }
        (_, [id, "stats"]) => {
            if let Some(r) = checked(id) {
                return r;
            }
            match method {
                Method::GET => {
                    let event_state = match state.db.get(id) {
                        Ok(r) => r.state.as_str(),
                        // An event from the config file runs without a record.
                        Err(DbError::NotFound(_)) if state.events.get(id).is_some() => "configured",
                        Err(e) => return db_error(e),
                    };
                    ok(
                        StatusCode::OK,
                        crate::qoe::stats_json(id, event_state, state.qoe.merged(id).as_ref()),
                    )
                }
                _ => not_allowed("GET"),
            }
        }
        (_, [id, "ingest"]) => {
            if let Some(r) = checked(id) {
                return r;
            }
            match method {
                Method::GET => {
                    let Some(live) = state.events.get(id) else {
                        return match state.db.get(id) {
                            // A scheduled event that nobody has published to yet.
                            Ok(_) => ok(
                                StatusCode::OK,
                                json!({ "event": id, "publisher_connected": false, "report": null }),
                            ),
                            Err(e) => db_error(e),
                        };
                    };
                    let (report, connected) = match live.ingest_report() {
                        Some((r, c)) => (serde_json::to_value(r).unwrap_or(Value::Null), c),
                        None => (Value::Null, false),
                    };
                    ok(
                        StatusCode::OK,
                        json!({ "event": id, "publisher_connected": connected, "report": report }),
                    )
                }
                _ => not_allowed("GET"),
            }
        }
        (_, [id, "kick"]) => {
            if let Some(r) = checked(id) {
                return r;
            }
            match method {
                Method::POST => kick(state, id),
                _ => not_allowed("POST"),
            }
        }
        (_, [id, "stream-key"]) => {
            if let Some(r) = checked(id) {
                return r;
            }
            match method {
                Method::POST => new_stream_key(state, id),
                _ => not_allowed("POST"),
            }
        }
        (_, [id, "timeline"]) => {
            if let Some(r) = checked(id) {
                return r;
            }
            match method {
                Method::GET => match state.webhooks.timeline_json(id, 10_000) {
                    Ok(v) => ok(StatusCode::OK, v),
                    Err(e) => db_error(e),
                },
                _ => not_allowed("GET"),
            }
        }
        (_, [id, "tokens"]) => {
            if let Some(r) = checked(id) {
                return r;
            }
            match method {
                Method::POST => mint(state, id, req).await,
                _ => not_allowed("POST"),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "not found", "no such API path"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_retires_once_its_successor_outlives_every_token() {
        let week = MAX_TOKEN_TTL_SECS as i64;
        let now = 10 * week;
        // k3 now, k2 a day ago, k1 long ago: k1's successor (k2) is only a day old.
        assert_eq!(retire_before(now, &[now, now - 86_400, 0]), None);
        // k2 made more than a week ago: k1 (and anything older) can go, k2 stays.
        assert_eq!(
            retire_before(now, &[now, now - week - 1, 5, 0]),
            Some(now - week - 1)
        );
        assert_eq!(retire_before(now, &[now]), None);
    }
}
