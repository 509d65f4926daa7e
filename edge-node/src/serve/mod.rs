//! Viewer HTTP on an edge: DESIGN's playback URLs answered from the event's slot with the
//! origin's own LL-HLS code (`packager::http`), one viewer per connection counted against
//! the slot's cap, and `/healthz`. HTTP/3 (`h3`) is an adapter onto the same handler.

pub mod h3;

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
        move |req| {
            let state = state.clone();
            let viewer = viewer.clone();
            async move { handle(&state, &viewer, req).await }
        }
    })
    .await;
}

/// Answers one request (HTTP/1.1, HTTP/2 or HTTP/3).
pub async fn handle<B>(state: &ServeState, viewer: &Mutex<Option<ViewerGuard>>, req: Request<B>) -> Reply {
    let method = req.method().clone();
    let r = match method {
        Method::GET | Method::HEAD => answer(state, viewer, &req).await,
        Method::OPTIONS => serve_http::options(),
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
    let (path, query) = match parsed {
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
