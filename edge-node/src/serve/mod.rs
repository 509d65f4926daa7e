//! Viewer HTTP on an edge: DESIGN's playback URLs answered from the event's slot with the
//! origin's own LL-HLS code (`packager::http`), one viewer per connection counted against
//! the slot's cap, and `/healthz`. HTTP/3 (`h3`) is an adapter onto the same handler.

pub mod h3;

pub use crate::qoe::Posted;
use crate::slot::{Slots, ViewerGuard};
use crate::upstream::LinkStatus;
use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode};
use popcast_packager::http::request::{RequestError, check_query, playback};
use popcast_packager::http::{
    self as serve_http, Body, ConnLimits, Reply, reply, store_error, text, tickets,
};
use popcast_packager::naming::Object;
use popcast_packager::relay::EventState;
use popcast_packager::store::StoreError;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What the viewer server reads.
pub struct ServeState {
    pub slots: Arc<Slots>,
    pub link: Arc<LinkStatus>,
    pub node_id: String,
    pub region: String,
    /// Requests for events without a slot create one (else 404).
    pub open_pull: bool,
    pub open_pull_viewer_cap: u32,
    pub max_query_bytes: usize,
    /// How long a request waits for the origin (catalog, first objects) before 503.
    pub hold_limit: Duration,
    pub started: Instant,
    /// `Alt-Svc` advertised on every response (HTTP/3 on the same port), when enabled.
    pub alt_svc: Option<HeaderValue>,
    /// Session tracking and beacon limits.
    pub qoe: popcast_packager::qoe::TrackerConfig,
    pub cmcd: popcast_packager::qoe::CmcdLimits,
    /// Beacons refused before an event was known (bad JSON, unknown event, ...).
    pub beacons_unrouted: std::sync::atomic::AtomicU64,
    /// How long a POST body may take to arrive.
    pub body_timeout: Duration,
    /// The bearer token `/metrics` needs (unset: `/metrics` is refused).
    pub metrics_token: Option<popcast_config::Secret>,
}

/// Serves viewers on `listener` until it fails.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: ConnLimits,
    state: Arc<ServeState>,
) {
    serve_http::serve(listener, tls, limits, move |_peer| {
        let state = state.clone();
        // One viewer per connection: admitted on its first playback request, released when
        // the connection closes.
        let viewer: Arc<Mutex<Option<ViewerGuard>>> = Arc::default();
        move |req: Request<hyper::body::Incoming>| {
            let state = state.clone();
            let viewer = viewer.clone();
            async move {
                let (parts, body) = req.into_parts();
                let posted = if parts.method == Method::POST {
                    // A body that trickles in is cut off like a slow request head.
                    let read = read_body(body, state.qoe.beacon.max_bytes, &parts.headers);
                    Some(
                        tokio::time::timeout(state.body_timeout, read)
                            .await
                            .unwrap_or(Posted::Broken),
                    )
                } else {
                    None
                };
                handle(&state, &viewer, Request::from_parts(parts, ()), posted).await
            }
        }
    })
    .await;
}

/// Reads a POST body of at most `max` bytes.
async fn read_body(body: hyper::body::Incoming, max: usize, headers: &http::HeaderMap) -> Posted {
    use http_body_util::BodyExt;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Posted::TooLarge { max };
    }
    match http_body_util::Limited::new(body, max).collect().await {
        Ok(b) => Posted::Body(b.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Posted::TooLarge { max },
        Err(_) => Posted::Broken,
    }
}

/// Answers one request (HTTP/1.1, HTTP/2 or HTTP/3); `posted` is a POST's body.
pub async fn handle<B>(
    state: &ServeState,
    viewer: &Mutex<Option<ViewerGuard>>,
    req: Request<B>,
    posted: Option<Posted>,
) -> Reply {
    let method = req.method().clone();
    let r = match (method.clone(), req.uri().path()) {
        (Method::POST, "/qoe") => crate::qoe::post(
            state,
            req.headers(),
            req.uri().query().unwrap_or(""),
            posted.unwrap_or(Posted::Broken),
        ),
        (Method::GET | Method::HEAD, "/metrics") => crate::qoe::metrics(state, req.headers()),
        (Method::GET | Method::HEAD, "/player.js") => serve_http::player::serve(req.headers()),
        (Method::GET | Method::HEAD, _) => answer(state, viewer, &req).await,
        (Method::OPTIONS, _) => serve_http::options(),
        _ => serve_http::method_not_allowed(),
    };
    let mut r = serve_http::finish(&method, r);
    if let Some(v) = &state.alt_svc {
        r.headers_mut().insert(header::ALT_SVC, v.clone());
    }
    r
}

fn retry_later(msg: &str, secs: u32) -> Reply {
    let mut r = text(StatusCode::SERVICE_UNAVAILABLE, msg);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

async fn answer<B>(state: &ServeState, viewer: &Mutex<Option<ViewerGuard>>, req: &Request<B>) -> Reply {
    let uri = req.uri();
    let query = uri.query().unwrap_or("");
    if uri.path() == "/healthz" {
        return health(state);
    }
    let parsed = check_query(query, state.max_query_bytes).and_then(|()| playback(uri.path(), query));
    let (path, playlist_query) = match parsed {
        Ok(p) => p,
        Err(e @ RequestError::NotFound(_)) => return text(StatusCode::NOT_FOUND, &e.to_string()),
        Err(e @ RequestError::BadQuery(_)) => return text(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e @ RequestError::QueryTooLong { .. }) => return text(StatusCode::URI_TOO_LONG, &e.to_string()),
    };
    let slot = match state.slots.get(&path.event) {
        Some(s) if !s.is_released() => s,
        None if state.open_pull => state.slots.provision(&path.event, state.open_pull_viewer_cap),
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                &format!("event {:?} is not served by this edge", path.event),
            );
        }
    };
    // Every request to a slot counts in its QoE: its CMCD, and how it was answered.
    let cmcd = crate::qoe::cmcd_of(query, req.headers(), &state.cmcd);
    let r = answer_slot(state, viewer, req, &slot, path, playlist_query).await;
    slot.qoe.request(&cmcd, r.status().as_u16());
    r
}

async fn answer_slot<B>(
    state: &ServeState,
    viewer: &Mutex<Option<ViewerGuard>>,
    req: &Request<B>,
    slot: &Arc<crate::slot::EventSlot>,
    path: popcast_packager::naming::PlaybackPath,
    query: Option<popcast_packager::store::PlaylistRequest>,
) -> Reply {
    let uri = req.uri();
    // A ticketed event: every request carries a valid token for this event.
    let token = match slot.tickets() {
        None => None,
        Some(keys) => match tickets::admit(&keys, slot.name(), req.headers(), uri.query().unwrap_or("")) {
            Ok(t) => Some(t),
            Err(why) => {
                slot.counters.token_refusals.fetch_add(1, Ordering::Relaxed);
                return text(StatusCode::FORBIDDEN, &why);
            }
        },
    };
    {
        let mut v = viewer.lock().unwrap_or_else(|e| e.into_inner());
        if v.as_ref().is_none_or(|g| g.event() != slot.name()) {
            match slot.admit() {
                Some(g) => *v = Some(g),
                None => return retry_later("this event's viewer cap on this edge is reached; try again", 5),
            }
        }
    }
    let deadline = tokio::time::Instant::now() + state.hold_limit;
    let result = match path.object {
        Object::Multivariant => {
            let mut catalog = slot.catalog();
            let got = tokio::time::timeout_at(
                deadline,
                catalog.wait_for(|c| {
                    c.as_ref()
                        .is_some_and(|c| c.multivariant.is_some() || c.state == EventState::Ended)
                }),
            )
            .await;
            match got {
                Ok(Ok(c)) => match c.as_ref().and_then(|c| c.multivariant.clone()) {
                    Some(text) => Ok(serve_http::playlist(
                        req.headers(),
                        bytes::Bytes::from(text),
                        "public, max-age=1",
                    )),
                    None => Err(StoreError::NotFound(format!("event {:?} has ended", path.event))),
                },
                _ => Err(StoreError::Unavailable(format!(
                    "event {:?}: no media from the origin yet",
                    path.event
                ))),
            }
        }
        Object::DashManifest => Err(StoreError::NotFound("LL-DASH is not served yet".into())),
        Object::Rendition { ref rendition, .. } => match slot.rendition(rendition, deadline).await {
            Ok(_) => serve_http::playback(slot.store(), path.object.clone(), query, req.headers()).await,
            Err(e) => Err(e),
        },
    };
    match (result, token) {
        (Ok(r), Some(t)) => tickets::with_token(r, &t),
        (Ok(r), None) => r,
        (Err(e), _) => store_error(&e),
    }
}

fn health(state: &ServeState) -> Reply {
    let all = state.slots.all();
    let bytes_held: usize = all.iter().map(|s| s.bytes_held()).sum();
    let slots: Vec<_> = all
        .iter()
        .map(|s| {
            let c = &s.counters;
            serde_json::json!({
                "event": s.name(),
                "viewers": s.viewers(),
                "bytes_held": s.bytes_held(),
                "renditions": s.store().rendition_names(),
                "hits": c.hits.load(Ordering::Relaxed),
                "misses": c.misses.load(Ordering::Relaxed),
                "upstream_fetches": c.upstream_fetches.load(Ordering::Relaxed),
                "budget_trimmed_bytes": c.budget_trimmed_bytes.load(Ordering::Relaxed),
                "refused_viewers": c.refused_viewers.load(Ordering::Relaxed),
                "token_refusals": c.token_refusals.load(Ordering::Relaxed),
                "ticketed": s.tickets().is_some(),
                "released": s.is_released(),
            })
        })
        .collect();
    let l = &state.link;
    let body = serde_json::json!({
        "status": if l.connected.load(Ordering::Relaxed) { "ok" } else { "degraded" },
        "node_id": state.node_id,
        "region": state.region,
        "uptime_secs": state.started.elapsed().as_secs(),
        "upstream": {
            "connected": l.connected.load(Ordering::Relaxed),
            "connections": l.connections.load(Ordering::Relaxed),
            "torn_objects": l.torn_objects.load(Ordering::Relaxed),
            "resubscribes": l.resubscribes.load(Ordering::Relaxed),
        },
        "bytes_held": bytes_held,
        "slots": slots,
    });
    let mut r = reply(StatusCode::OK, "application/json", Body::full(body.to_string()));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
