//! LL-HLS over HTTP from the live store, one implementation for origin and edge: answers
//! for DESIGN's playback URLs (blocking reloads, parts streamed while produced, ranges,
//! ETags, cache headers, CORS) and the hyper connection loop (HTTP/1.1 and HTTP/2, TLS when
//! given, limits on connections, header reads, handshakes and stalled peers).

pub mod body;
pub mod metrics;
pub mod player;
pub mod request;
pub mod stall;
pub mod tickets;
pub mod tls;

pub use body::Body;
pub use request::{Range, RequestError, range};

use crate::naming::{Object, RenditionObject};
use crate::store::{EventStore, ObjectStream, PlaylistRequest, StoreError};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub const M3U8: &str = "application/vnd.apple.mpegurl";
/// Objects in the window never change once complete.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Limits of an HTTP listener.
#[derive(Debug, Clone)]
pub struct ConnLimits {
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

/// A response with this crate's body.
pub type Reply = Response<Body>;

/// Accepts connections until the listener fails; each connection is served on its own task.
///
/// `connection` makes each connection's request handler (given the peer's address), so a
/// handler can hold per-connection state (an edge counts a connection as one viewer).
pub async fn serve<M, H, F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: ConnLimits,
    connection: M,
) where
    M: Fn(std::net::SocketAddr) -> H + Send + Sync + 'static,
    H: Fn(Request<hyper::body::Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
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
        let handler = connection(peer);
        let tls = tls.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let svc = service_fn(move |req| {
                let answer = handler(req);
                async move { Ok::<_, Infallible>(answer.await) }
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

pub fn reply(status: StatusCode, ctype: &str, body: Body) -> Reply {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(ctype).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    r
}

pub fn text(status: StatusCode, msg: &str) -> Reply {
    let mut r = reply(
        status,
        "text/plain; charset=utf-8",
        Body::full(format!("{msg}\n")),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub fn store_error(e: &StoreError) -> Reply {
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

/// The answer to `OPTIONS` (CORS preflight: players send Range, tokens and CMCD headers,
/// and POST JSON beacons).
pub fn options() -> Reply {
    let mut r = reply(StatusCode::NO_CONTENT, "text/plain", Body::empty());
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "Range, Authorization, If-None-Match, Content-Type, CMCD-Request, CMCD-Object, CMCD-Status, CMCD-Session",
        ),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    r
}

/// 405 for anything but GET, HEAD and OPTIONS.
pub fn method_not_allowed() -> Reply {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET, HEAD and OPTIONS");
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
    r
}

/// What every response gets on the way out: CORS for embedded players on other origins,
/// and for HEAD the length of the body it drops.
pub fn finish(method: &Method, mut r: Reply) -> Reply {
    let h = r.headers_mut();
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
    r
}

/// A playlist response with an ETag, or 304 when the client has it.
pub fn playlist(headers: &HeaderMap, body: Bytes, cache: &'static str) -> Reply {
    let etag = format!("\"{:016x}\"", fnv(&[&body]));
    let not_modified = headers
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

/// The answer for one playback object of `store` (the event's path already resolved):
/// playlists wait per the blocking reload rules, parts in progress stream.
pub async fn playback(
    store: &EventStore,
    object: Object,
    query: Option<PlaylistRequest>,
    headers: &HeaderMap,
) -> Result<Reply, StoreError> {
    match object {
        Object::Multivariant => Ok(playlist(
            headers,
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
                    Ok(playlist(headers, Bytes::from_owner(SharedText(body)), cache))
                }
                // The one object whose URL a new session reuses: revalidated, not immutable.
                RenditionObject::Init => {
                    object_reply(headers, &[r.init()?], ctype, "init", "public, no-cache")
                }
                RenditionObject::InitAt { msn } => object_reply(
                    headers,
                    &[r.init_at(msn)?],
                    ctype,
                    &format!("init-{msn}"),
                    IMMUTABLE,
                ),
                RenditionObject::Segment { msn } => {
                    stream(headers, store.segment(&rendition, msn)?, ctype, &format!("{msn}"))
                }
                RenditionObject::Part { msn, part } => stream(
                    headers,
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
fn stream(headers: &HeaderMap, object: ObjectStream, ctype: &str, name: &str) -> Result<Reply, StoreError> {
    let (chunks, complete) = object.available();
    if complete {
        return object_reply(headers, &chunks, ctype, name, IMMUTABLE);
    }
    let mut r = reply(StatusCode::OK, ctype, Body::live(object));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    Ok(r)
}

/// A complete object, honouring Range and If-None-Match.
pub fn object_reply(
    headers: &HeaderMap,
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
    let header_str = |h| headers.get(h).and_then(|v: &HeaderValue| v.to_str().ok());
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
