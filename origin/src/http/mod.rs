//! Origin HTTP (HTTP/1.1 and HTTP/2, TLS when configured): DESIGN's playback URLs from the
//! live store with LL-HLS semantics, the embed page, and `/healthz`.

mod body;
mod request;
mod stall;

pub use body::Body;
pub use request::{Range, RequestError, Route, range, route};

use crate::events::Events;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use popcast_packager::naming::{Object, RenditionObject};
use popcast_packager::store::{EventStore, StoreError};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// hls.js, served to the embed page from the origin itself (no third-party CDN).
const HLS_JS: &[u8] = include_bytes!("../../assets/hls.min.js");
const EMBED_HTML: &str = include_str!("embed.html");

const M3U8: &str = "application/vnd.apple.mpegurl";
/// Objects in the window never change once complete.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

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
    pub limits: HttpLimits,
    pub started: Instant,
}

/// Accepts connections until the listener fails; each connection is served on its own task.
pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, state: Arc<HttpState>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(state.limits.max_connections));
    loop {
        // At the limit, stop accepting: new connections wait in the kernel's backlog.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "http accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Parts are streamed chunk by chunk: each chunk must leave at once.
        let _ = tcp.set_nodelay(true);
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let limits = state.limits.clone();
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            builder
                .http2()
                .timer(TokioTimer::new())
                .keep_alive_interval(limits.h2_keep_alive)
                .keep_alive_timeout(limits.h2_keep_alive);
            let stall = limits.write_stall_timeout;
            let result = match tls {
                None => {
                    builder
                        .serve_connection(TokioIo::new(stall::StallGuard::new(tcp, stall)), svc)
                        .await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            builder
                                .serve_connection(TokioIo::new(stall::StallGuard::new(stream, stall)), svc)
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "tls handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "tls handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "http connection ended with an error");
            }
        });
    }
}

type Reply = Response<Body>;

fn reply(status: StatusCode, ctype: &str, body: Body) -> Reply {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(ctype).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    r
}

fn text(status: StatusCode, msg: &str) -> Reply {
    let mut r = reply(
        status,
        "text/plain; charset=utf-8",
        Body::full(format!("{msg}\n")),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn store_error(e: &StoreError) -> Reply {
    let status = match e {
        StoreError::BadRequest(_) => StatusCode::BAD_REQUEST,
        StoreError::NotFound(_) => StatusCode::NOT_FOUND,
        StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut r = text(status, &e.to_string());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// A playlist the store renders once for every viewer woken by the same part, handed to
/// hyper without a copy.
struct SharedText(Arc<str>);

impl AsRef<[u8]> for SharedText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// FNV-1a of a body, for playlist ETags.
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

async fn handle(state: &HttpState, req: Request<hyper::body::Incoming>) -> Reply {
    let started = Instant::now();
    let method = req.method().clone();
    let mut r = match method {
        Method::GET | Method::HEAD => answer(state, &req).await,
        Method::OPTIONS => {
            let mut r = reply(StatusCode::NO_CONTENT, "text/plain", Body::empty());
            let h = r.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, HEAD, OPTIONS"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Range, Authorization, If-None-Match, CMCD-Request, CMCD-Object, CMCD-Status, CMCD-Session"),
            );
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
            r
        }
        _ => {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET, HEAD and OPTIONS");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
            r
        }
    };
    let h = r.headers_mut();
    // Embedded players fetch from other origins.
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Content-Length, Content-Range, ETag, Age, Date"),
    );
    if method == Method::HEAD {
        if let Some(n) = r.body().known_len().filter(|_| r.status().is_success()) {
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        *r.body_mut() = Body::empty();
    }
    tracing::trace!(
        path = req.uri().path(),
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
        Route::HlsJs => {
            let mut r = reply(
                StatusCode::OK,
                "text/javascript; charset=utf-8",
                Body::full(Bytes::from_static(HLS_JS)),
            );
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
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
            let store = event.store();
            match playback(&store, path.object, query, req).await {
                Ok(r) => r,
                Err(e) => store_error(&e),
            }
        }
    }
}

/// A playlist response with an ETag, or 304 when the client has it.
fn playlist(req: &Request<hyper::body::Incoming>, body: Bytes, cache: &'static str) -> Reply {
    let etag = format!("\"{:016x}\"", fnv(&[&body]));
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut r = if not_modified {
        reply(StatusCode::NOT_MODIFIED, M3U8, Body::empty())
    } else {
        reply(StatusCode::OK, M3U8, Body::full(body))
    };
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    r
}

async fn playback(
    store: &EventStore,
    object: Object,
    query: Option<popcast_packager::store::PlaylistRequest>,
    req: &Request<hyper::body::Incoming>,
) -> Result<Reply, StoreError> {
    match object {
        Object::Multivariant => Ok(playlist(
            req,
            Bytes::from(store.multivariant()?),
            "public, max-age=1",
        )),
        Object::DashManifest => Err(StoreError::NotFound("LL-DASH is not served yet".into())),
        Object::Rendition { rendition, object } => {
            let r = store.rendition(&rendition)?;
            let ctype = if r.is_audio() { "audio/mp4" } else { "video/mp4" };
            match object {
                RenditionObject::Playlist => {
                    let q = query.unwrap_or_default();
                    let body = store.media_playlist(&rendition, q).await?;
                    // A blocking request's answer is what the client waited for; a plain one
                    // goes stale within a part.
                    let cache = if q.msn.is_some() {
                        "public, max-age=6"
                    } else {
                        "public, max-age=1"
                    };
                    Ok(playlist(req, Bytes::from_owner(SharedText(body)), cache))
                }
                // The one object whose URL a new session reuses: revalidated, not immutable.
                RenditionObject::Init => object_reply(req, &[r.init()?], ctype, "init", "public, no-cache"),
                RenditionObject::Segment { msn } => {
                    stream(req, store.segment(&rendition, msn)?, ctype, &format!("{msn}"))
                }
                RenditionObject::Part { msn, part } => stream(
                    req,
                    store.part(&rendition, msn, part)?,
                    ctype,
                    &format!("{msn}.{part}"),
                ),
            }
        }
    }
}

/// A segment or part: complete ones with a length, ETag and Range; one in progress streamed
/// chunk by chunk while it is produced.
fn stream(
    req: &Request<hyper::body::Incoming>,
    object: popcast_packager::store::ObjectStream,
    ctype: &str,
    name: &str,
) -> Result<Reply, StoreError> {
    let (chunks, complete) = object.available();
    if complete {
        return object_reply(req, &chunks, ctype, name, IMMUTABLE);
    }
    let mut r = reply(StatusCode::OK, ctype, Body::live(object));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    Ok(r)
}

/// A complete object, honouring Range and If-None-Match.
fn object_reply(
    req: &Request<hyper::body::Incoming>,
    chunks: &[Bytes],
    ctype: &str,
    name: &str,
    cache: &'static str,
) -> Result<Reply, StoreError> {
    let len: u64 = chunks.iter().map(|c| c.len() as u64).sum();
    // The head of a media chunk names it uniquely (prft's arrival time, moof's sequence
    // number and decode time), so hashing it and the length is enough for segments and
    // parts; small objects (init segments) are hashed whole.
    let etag = if len <= 4096 {
        let all: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
        format!("\"{name}-{len:x}-{:016x}\"", fnv(&all))
    } else {
        let head = chunks.first().map_or(&[][..], |c| &c[..c.len().min(256)]);
        format!("\"{name}-{len:x}-{:016x}\"", fnv(&[head]))
    };
    let header_str = |h| req.headers().get(h).and_then(|v: &HeaderValue| v.to_str().ok());
    if header_str(header::IF_NONE_MATCH).is_some_and(|v| v.split(',').any(|t| t.trim() == etag)) {
        let mut r = reply(StatusCode::NOT_MODIFIED, ctype, Body::empty());
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        r.headers_mut().insert(
            header::ETAG,
            HeaderValue::from_str(&etag).map_err(|e| StoreError::NotFound(e.to_string()))?,
        );
        return Ok(r);
    }
    let mut r = match header_str(header::RANGE)
        .map(|h| range(h, len))
        .unwrap_or(Range::Whole)
    {
        Range::Whole => reply(
            StatusCode::OK,
            ctype,
            Body::Chunks(chunks.iter().cloned().collect()),
        ),
        Range::Bytes { start, end } => {
            let mut r = reply(
                StatusCode::PARTIAL_CONTENT,
                ctype,
                Body::Chunks(body::slice(chunks, start, end)),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
        Range::Unsatisfiable => {
            let mut r = reply(StatusCode::RANGE_NOT_SATISFIABLE, ctype, Body::empty());
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    Ok(r)
}
