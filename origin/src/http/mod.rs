//! Origin HTTP (HTTP/1.1 and HTTP/2, TLS when configured): DESIGN's playback URLs from the
//! live store with LL-HLS semantics, the embed page, the operator dashboard, `/metrics`
//! and `/healthz`.

mod request;

pub use popcast_packager::http::Body;
pub use request::{Range, RequestError, Route, range, route};

use crate::events::Events;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode};
use popcast_packager::http::{self as serve_http, ConnLimits, Reply, reply, store_error, text, tickets};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const EMBED_HTML: &str = include_str!("embed.html");
/// The operator dashboard: reads `/api/v1/events` and each event's `/stats` with the
/// operator token it is given in its URL fragment (never sent to the server) or a form.
const DASHBOARD_HTML: &str = include_str!("dashboard.html");
/// The creator's publish page: camera and microphone to `/whip/{event}`, the stream key
/// typed in (or in the URL fragment, never sent to the server).
const PUBLISH_HTML: &str = include_str!("publish.html");

/// Limits of the HTTP server.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    pub max_query_bytes: usize,
    /// A client must send its request head within this.
    pub header_read_timeout: Duration,
    /// A TLS client must finish its handshake within this.
    pub tls_handshake_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// A peer that accepts no bytes for this long is cut off.
    pub write_stall_timeout: Duration,
    /// HTTP/2 pings an idle peer this often and drops it if the ping is not answered in
    /// time (HTTP/1.1 idles are bounded by `header_read_timeout`).
    pub h2_keep_alive: Duration,
}

impl HttpLimits {
    fn conn(&self) -> ConnLimits {
        ConnLimits {
            header_read_timeout: self.header_read_timeout,
            tls_handshake_timeout: self.tls_handshake_timeout,
            max_connections: self.max_connections,
            write_stall_timeout: self.write_stall_timeout,
            h2_keep_alive: self.h2_keep_alive,
        }
    }

    pub fn from_config(l: &popcast_config::OriginLimits) -> Self {
        Self {
            max_query_bytes: l.http_max_query_bytes as usize,
            header_read_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_millis(l.rtmp_handshake_timeout_ms),
            max_connections: l.http_max_connections as usize,
            write_stall_timeout: Duration::from_millis(l.write_stall_timeout_ms),
            h2_keep_alive: Duration::from_secs(20),
        }
    }
}

/// What the HTTP service reads.
pub struct HttpState {
    pub events: Arc<Events>,
    /// The operator API (`/api/v1/events`).
    pub api: Arc<crate::events::api::ApiState>,
    pub limits: HttpLimits,
    pub started: Instant,
    /// WHIP ingest (`/whip/...`), when enabled.
    pub whip: Option<Arc<crate::ingest::whip::Whip>>,
}

/// Accepts connections until the listener fails; each connection is served on its own task.
pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, state: Arc<HttpState>) {
    let limits = state.limits.conn();
    serve_http::serve(listener, tls, limits, move |peer| {
        let state = state.clone();
        move |req| {
            let state = state.clone();
            async move { handle(&state, req, peer).await }
        }
    })
    .await;
}

async fn handle(state: &HttpState, req: Request<hyper::body::Incoming>, peer: std::net::SocketAddr) -> Reply {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if path.starts_with("/whip/") {
        let r = match &state.whip {
            Some(w) => w.handle(req, peer).await,
            None => text(
                StatusCode::NOT_FOUND,
                "WHIP ingest is off on this origin (origin.whip.enabled)",
            ),
        };
        // Not the path: a session's URL is a capability.
        tracing::debug!(%method, status = r.status().as_u16(), "whip");
        return r;
    }
    if path == "/api/v1/edges" {
        return crate::events::api::edges(&state.api, &req);
    }
    if path == "/metrics" {
        return serve_http::finish(&method, crate::events::api::metrics(&state.api, &req));
    }
    if path == "/api/v1/events" || path.starts_with("/api/v1/events/") {
        let r = crate::events::api::handle(&state.api, req).await;
        tracing::debug!(%path, %method, status = r.status().as_u16(), "api");
        return r;
    }
    let r = match method {
        Method::GET | Method::HEAD => answer(state, &req).await,
        Method::OPTIONS => serve_http::options(),
        _ => serve_http::method_not_allowed(),
    };
    let r = serve_http::finish(&method, r);
    tracing::trace!(
        %path,
        status = r.status().as_u16(),
        us = started.elapsed().as_micros() as u64,
        "http"
    );
    r
}

async fn answer(state: &HttpState, req: &Request<hyper::body::Incoming>) -> Reply {
    let uri = req.uri();
    let route = match route(
        uri.path(),
        uri.query().unwrap_or(""),
        state.limits.max_query_bytes,
    ) {
        Ok(r) => r,
        Err(e @ RequestError::NotFound(_)) => return text(StatusCode::NOT_FOUND, &e.to_string()),
        Err(e @ RequestError::BadQuery(_)) => return text(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e @ RequestError::QueryTooLong { .. }) => return text(StatusCode::URI_TOO_LONG, &e.to_string()),
    };
    match route {
        Route::Health => {
            let body = serde_json::json!({
                "status": "ok",
                "uptime_secs": state.started.elapsed().as_secs(),
                "events": state.events.names(),
            });
            let mut r = reply(StatusCode::OK, "application/json", Body::full(body.to_string()));
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Route::Calendar => match state.api.db.list(None, None) {
            Ok(events) => {
                let now = crate::events::api::system_now();
                let body = crate::events::calendar::feed(&events, &state.api.public_url, now);
                let mut r = reply(StatusCode::OK, "text/calendar; charset=utf-8", Body::full(body));
                r.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=60"),
                );
                r
            }
            Err(e) => {
                tracing::error!(error = %e, "calendar");
                text(StatusCode::INTERNAL_SERVER_ERROR, "the event database failed")
            }
        },
        Route::Play { event, region, json } => crate::events::route::play(
            &state.api,
            &event,
            region.as_deref(),
            json || req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("application/json")),
            req.headers(),
            uri.query().unwrap_or(""),
        ),
        // The page runs only its own inline script and talks only to this origin.
        Route::Dashboard => own_page(
            Body::full(Bytes::from_static(DASHBOARD_HTML.as_bytes())),
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ),
        Route::Player => serve_http::player::serve(req.headers()),
        Route::Publish { event } => {
            if state.events.get(&event).is_none() {
                return text(StatusCode::NOT_FOUND, &format!("no event {event:?}"));
            }
            // Its own inline script, talking only to this origin; camera and microphone
            // for this page only, and never inside another site's frame.
            let mut r = own_page(
                Body::full(PUBLISH_HTML.replace("{{EVENT}}", &event)),
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; media-src 'self' blob: mediastream:; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
            );
            r.headers_mut().insert(
                http::HeaderName::from_static("permissions-policy"),
                HeaderValue::from_static("camera=(self), microphone=(self)"),
            );
            r
        }
        Route::Embed { event } => {
            if state.events.get(&event).is_none() {
                return text(StatusCode::NOT_FOUND, &format!("no event {event:?}"));
            }
            let page = EMBED_HTML.replace("{{EVENT}}", &event);
            let mut r = reply(StatusCode::OK, "text/html; charset=utf-8", Body::full(page));
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        Route::Playback { path, query } => {
            let Some(event) = state.events.get(&path.event) else {
                return text(StatusCode::NOT_FOUND, &format!("no event {:?}", path.event));
            };
            // A ticketed event asks for a token here as at the edges.
            let token = match event.admit_viewer(req.headers(), uri.query().unwrap_or("")) {
                Ok(t) => t,
                Err(why) => return text(StatusCode::FORBIDDEN, &why),
            };
            let store = event.store();
            match (
                serve_http::playback(&store, path.object, query, req.headers()).await,
                token,
            ) {
                (Ok(r), Some(t)) => tickets::with_token(r, &t),
                (Ok(r), None) => r,
                (Err(e), _) => store_error(&e),
            }
        }
    }
}

/// One of the origin's own pages that hold a secret (the operator token, a stream key):
/// never cached, no referrer, and only what `csp` allows.
fn own_page(body: Body, csp: &'static str) -> Reply {
    let mut r = reply(StatusCode::OK, "text/html; charset=utf-8", body);
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}
