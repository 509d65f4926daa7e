//! HTTP/3 for viewers: a thin adapter from h3 (over quinn) to the same request handler HTTP/1.1 and HTTP/2 use.
//!
//! Bound on UDP at the TCP listener's port when the edge has TLS, and advertised by the
//! `Alt-Svc` header of every response (HTTP/2 over TLS stays the baseline: a client that
//! cannot reach UDP never notices). Each request is answered by [`super::handle`]; its
//! [`Reply`] is written as headers, then each body chunk as it arrives (parts still being
//! produced stream as produced), then the end of the stream. A body that fails (a torn
//! object) resets the stream with `H3_INTERNAL_ERROR`, and so does every other way a
//! response can end early, so a short body is never presented as complete.
//!
//! One viewer per QUIC connection, as per TCP connection. Limits: connections at once
//! (beyond, new ones are refused and clients fall back to TCP), request streams at once per
//! connection, an idle timeout, the handshake and request-head timeouts and the write-stall
//! cut of the TCP path, and the size of a request's header section.

use super::{ServeState, handle};
use crate::slot::ViewerGuard;
use bytes::Bytes;
use h3::error::Code;
use h3::server::RequestStream;
use http::{HeaderValue, Method, Response, StatusCode, header};
use popcast_packager::http::{Body, ConnLimits, Reply};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::Semaphore;

/// The ALPN token of HTTP/3.
pub const ALPN: &[u8] = b"h3";

/// Limits of the HTTP/3 listener.
#[derive(Debug, Clone)]
pub struct H3Limits {
    /// Handshake and request-head timeouts, the write-stall cut and the connection cap, as
    /// for TCP (the cap counts QUIC connections on their own).
    pub conn: ConnLimits,
    /// Requests in flight at once on one connection (a player needs a handful: a blocking
    /// playlist reload per rendition and a part or two).
    pub max_streams: u32,
    /// A connection with no packets for this long is dropped.
    pub idle_timeout: Duration,
    /// Largest request header section accepted (QPACK-decoded size); larger ones get 431.
    pub max_field_section_size: u64,
}

impl H3Limits {
    pub fn new(conn: ConnLimits) -> Self {
        Self {
            conn,
            max_streams: 100,
            idle_timeout: Duration::from_secs(30),
            max_field_section_size: 16 * 1024,
        }
    }
}

/// Why the HTTP/3 listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum H3StartError {
    #[error("HTTP/3 TLS configuration: {0}")]
    Tls(String),
    #[error("cannot listen for HTTP/3 on udp {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The QUIC endpoint for viewers on `addr` (UDP), offering only `h3`.
pub fn bind(
    addr: SocketAddr,
    tls: &rustls::ServerConfig,
    limits: &H3Limits,
) -> Result<quinn::Endpoint, H3StartError> {
    let mut tls = tls.clone();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    // 0-RTT stays off (rustls' default): a replayed request is harmless for GETs, but it
    // would also replay viewer admission.
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| H3StartError::Tls(e.to_string()))?;
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_bidi_streams(limits.max_streams.into())
        // The client's control and two QPACK streams, with room for greased ones.
        .max_concurrent_uni_streams(8u8.into())
        .max_idle_timeout(quinn::IdleTimeout::try_from(limits.idle_timeout).ok())
        // Clients send request heads only: small receive windows.
        .stream_receive_window(quinn::VarInt::from_u32(64 * 1024))
        .receive_window(quinn::VarInt::from_u32(1024 * 1024))
        // Bytes in flight or queued per connection (quinn copies what it is given; its
        // default is 10 MB). Ample for a part or a segment at any rung; a viewer that
        // takes nothing is cut by the write-stall timeout.
        .send_window(2 * 1024 * 1024);
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(t));
    quinn::Endpoint::server(server, addr).map_err(|source| H3StartError::Bind { addr, source })
}

/// Accepts QUIC connections on `endpoint` until it is closed; each is served on its own task.
pub async fn serve(endpoint: quinn::Endpoint, limits: H3Limits, state: Arc<ServeState>) {
    let slots = Arc::new(Semaphore::new(limits.conn.max_connections));
    while let Some(incoming) = endpoint.accept().await {
        // UDP has no backlog to leave them in: at the cap, refuse (the client keeps TCP).
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(peer = %incoming.remote_address(), "h3 connection refused: at the cap");
            incoming.refuse();
            continue;
        };
        let limits = limits.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let _slot = slot;
            connection(incoming, limits, state).await;
        });
    }
}

async fn connection(incoming: quinn::Incoming, limits: H3Limits, state: Arc<ServeState>) {
    let peer = incoming.remote_address();
    let handshake = async {
        let conn = incoming.accept()?.await?;
        Ok::<_, quinn::ConnectionError>(conn)
    };
    let conn = match tokio::time::timeout(limits.conn.tls_handshake_timeout, handshake).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "h3 handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "h3 handshake timed out");
            return;
        }
    };
    let mut h3_conn = match h3::server::builder()
        .max_field_section_size(limits.max_field_section_size)
        .build::<_, Bytes>(h3_quinn::Connection::new(conn.clone()))
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "h3 connection setup failed");
            return;
        }
    };
    // One viewer per connection: admitted on its first playback request, released when the
    // connection and its last request are gone.
    let viewer: Arc<Mutex<Option<ViewerGuard>>> = Arc::default();
    loop {
        match h3_conn.accept().await {
            Ok(Some(resolver)) => {
                let (conn, limits, state, viewer) =
                    (conn.clone(), limits.clone(), state.clone(), viewer.clone());
                tokio::spawn(async move {
                    // A closed connection ends requests still waiting (blocking playlist
                    // reloads, parts in production) at once.
                    tokio::select! {
                        () = request(resolver, &limits, &state, &viewer) => {}
                        _ = conn.closed() => {}
                    }
                });
            }
            // The client said GOAWAY and its requests are done.
            Ok(None) => break,
            Err(e) => {
                if !e.is_h3_no_error() {
                    tracing::debug!(%peer, error = %e, "h3 connection ended with an error");
                }
                break;
            }
        }
    }
}

type Stream = RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

/// A response stream that is reset unless finished: quinn ends a dropped send stream
/// cleanly, which would present a cut-off body as complete.
struct ResetUnlessFinished(Option<Stream>);

impl ResetUnlessFinished {
    fn get(&mut self) -> &mut Stream {
        self.0.as_mut().expect("taken only by finish")
    }

    async fn finish(mut self) -> Result<(), h3::error::StreamError> {
        let mut s = self.0.take().expect("taken only by finish");
        let r = s.finish().await;
        if r.is_err() {
            s.stop_stream(Code::H3_INTERNAL_ERROR);
        }
        r
    }
}

impl Drop for ResetUnlessFinished {
    fn drop(&mut self) {
        if let Some(s) = &mut self.0 {
            s.stop_stream(Code::H3_INTERNAL_ERROR);
        }
    }
}

async fn request(
    resolver: h3::server::RequestResolver<h3_quinn::Connection, Bytes>,
    limits: &H3Limits,
    state: &ServeState,
    viewer: &Mutex<Option<ViewerGuard>>,
) {
    let (req, mut stream) =
        match tokio::time::timeout(limits.conn.header_read_timeout, resolver.resolve_request()).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "h3 request rejected");
                return;
            }
            Err(_) => {
                tracing::debug!("h3 request head timed out");
                return;
            }
        };
    let posted = if req.method() == Method::POST {
        Some(
            read_body(
                &mut stream,
                state.qoe.beacon.max_bytes,
                limits.conn.header_read_timeout,
            )
            .await,
        )
    } else {
        ignore_body(&mut stream).await;
        None
    };
    let stream = ResetUnlessFinished(Some(stream));
    let head = req.method() == Method::HEAD;
    let reply = handle(state, viewer, req, posted).await;
    respond(stream, head, reply, limits.conn.write_stall_timeout).await;
}

/// Reads a POST body (a beacon) of at most `max` bytes within `timeout`.
async fn read_body(stream: &mut Stream, max: usize, timeout: Duration) -> super::Posted {
    use bytes::Buf;
    let mut out = bytes::BytesMut::new();
    let read = async {
        loop {
            match stream.recv_data().await {
                Ok(Some(mut chunk)) => {
                    if out.len() + chunk.remaining() > max {
                        stream.stop_sending(Code::H3_NO_ERROR);
                        return super::Posted::TooLarge { max };
                    }
                    while chunk.has_remaining() {
                        let c = chunk.chunk();
                        out.extend_from_slice(c);
                        let n = c.len();
                        chunk.advance(n);
                    }
                }
                Ok(None) => return super::Posted::Body(out.split().freeze()),
                Err(_) => return super::Posted::Broken,
            }
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(super::Posted::Broken)
}

/// Ends the request side of `stream` without reading a body (no GET has one).
///
/// A GET's stream ends with its head, usually in the same packet: reading that end lets
/// the stream close quietly. Otherwise (a body, or its end not here yet) the client is
/// asked to stop sending with `H3_NO_ERROR` (RFC 9114 §4.1), never left to quinn, which
/// stops an unread stream with code 0 when it is dropped (curl reports that as a reset of
/// the whole response).
async fn ignore_body(stream: &mut Stream) {
    // `timeout` polls the read once before looking at the (already passed) deadline.
    let ended = matches!(
        tokio::time::timeout(Duration::ZERO, stream.recv_data()).await,
        Ok(Ok(None))
    );
    if !ended {
        stream.stop_sending(Code::H3_NO_ERROR);
    }
}

/// Writes `reply` on `stream` and ends it: finished when the whole body went out, reset
/// otherwise.
async fn respond(mut stream: ResetUnlessFinished, head: bool, reply: Reply, stall: Duration) {
    if let Err(e) = write(stream.get(), head, reply, stall).await {
        // Dropping the guard resets the stream.
        tracing::debug!(error = %e, "h3 response cut short");
        return;
    }
    if let Err(e) = stream.finish().await {
        tracing::debug!(error = %e, "h3 response not finished");
    }
}

/// Why a response was cut short.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error(transparent)]
    Stream(#[from] h3::error::StreamError),
    #[error("the viewer accepted no bytes for {0:?}")]
    Stalled(Duration),
    #[error("the object was torn: {0}")]
    Torn(popcast_packager::store::StoreError),
}

/// Writes `reply`'s head and body, each chunk as soon as it is there.
async fn write(stream: &mut Stream, head: bool, reply: Reply, stall: Duration) -> Result<(), WriteError> {
    let (mut parts, body) = reply.into_parts();
    // What hyper adds for TCP: the exact length of a complete body (a HEAD's was set from
    // the body it dropped, when known), and the date.
    if let Some(n) = body.known_len()
        && !head
        && !matches!(parts.status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED)
    {
        parts
            .headers
            .entry(header::CONTENT_LENGTH)
            .or_insert_with(|| HeaderValue::from(n));
    }
    if !parts.headers.contains_key(header::DATE)
        && let Ok(v) = HeaderValue::try_from(httpdate::fmt_http_date(SystemTime::now()))
    {
        parts.headers.insert(header::DATE, v);
    }
    timed(stall, stream.send_response(Response::from_parts(parts, ()))).await?;
    match body {
        Body::Chunks(chunks) => {
            for c in chunks.into_iter().filter(|c| !c.is_empty()) {
                timed(stall, stream.send_data(c)).await?;
            }
        }
        Body::Live(mut rx) => {
            while let Some(item) = rx.recv().await {
                let c = item.map_err(WriteError::Torn)?;
                if !c.is_empty() {
                    timed(stall, stream.send_data(c)).await?;
                }
            }
        }
    }
    Ok(())
}

/// One write, cut off when the viewer takes nothing for `stall`.
async fn timed(
    stall: Duration,
    write: impl Future<Output = Result<(), h3::error::StreamError>>,
) -> Result<(), WriteError> {
    tokio::time::timeout(stall, write)
        .await
        .map_err(|_| WriteError::Stalled(stall))?
        .map_err(WriteError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use popcast_packager::http::tls;
    use popcast_packager::store::StoreError;
    use tokio::sync::mpsc;

    /// What a client read of one response.
    #[derive(Debug)]
    struct Got {
        /// None when the stream was reset before its head arrived.
        status: Option<StatusCode>,
        content_length: Option<String>,
        body: Vec<u8>,
        /// The stream's end: clean, or the reset code.
        end: Result<(), Option<Code>>,
    }

    /// Serves `replies` in order (one per request) with this module's writer over a real
    /// quinn endpoint, and reads each with h3's own client.
    async fn exchange(name: &str, replies: Vec<Reply>) -> Vec<Got> {
        let dir = std::env::temp_dir().join(format!("popcast-edge-h3-unit-{name}-{}", std::process::id()));
        let cert = tls::self_signed(&dir, &["localhost"]).unwrap();
        let server_tls = tls::server_config(&cert, &[]).unwrap();
        let limits = H3Limits::new(ConnLimits {
            header_read_timeout: Duration::from_secs(5),
            tls_handshake_timeout: Duration::from_secs(5),
            max_connections: 4,
            write_stall_timeout: Duration::from_secs(5),
            h2_keep_alive: Duration::from_secs(20),
        });
        let server = bind("127.0.0.1:0".parse().unwrap(), &server_tls, &limits).unwrap();
        let addr = server.local_addr().unwrap();
        let n = replies.len();
        let serving = tokio::spawn(async move {
            let conn = server.accept().await.unwrap().await.unwrap();
            let mut h3 = h3::server::builder()
                .build::<_, Bytes>(h3_quinn::Connection::new(conn))
                .await
                .unwrap();
            for reply in replies {
                let (_req, mut stream) = h3
                    .accept()
                    .await
                    .unwrap()
                    .unwrap()
                    .resolve_request()
                    .await
                    .unwrap();
                ignore_body(&mut stream).await;
                respond(
                    ResetUnlessFinished(Some(stream)),
                    false,
                    reply,
                    Duration::from_secs(5),
                )
                .await;
            }
            // Keep the connection up until the client is done with it.
            let _ = h3.accept().await;
        });

        let client_tls = tls::client_config(&cert.cert_path, &[ALPN]).unwrap();
        let mut client = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        client.set_default_client_config(quinn::ClientConfig::new(Arc::new(
            quinn::crypto::rustls::QuicClientConfig::try_from(client_tls).unwrap(),
        )));
        let conn = client.connect(addr, "localhost").unwrap().await.unwrap();
        let (mut driver, mut send) = h3::client::new(h3_quinn::Connection::new(conn)).await.unwrap();
        let drive = tokio::spawn(async move { std::future::poll_fn(|cx| driver.poll_close(cx)).await });
        let mut out = Vec::new();
        for _ in 0..n {
            let req = http::Request::get("https://localhost/x").body(()).unwrap();
            let mut s = send.send_request(req).await.unwrap();
            s.finish().await.unwrap();
            // A reset may overtake the head: QUIC drops what a reset stream had buffered.
            let resp = match s.recv_response().await {
                Ok(r) => r,
                Err(h3::error::StreamError::RemoteTerminate { code, .. }) => {
                    out.push(Got {
                        status: None,
                        content_length: None,
                        body: Vec::new(),
                        end: Err(Some(code)),
                    });
                    continue;
                }
                Err(e) => panic!("unexpected stream error: {e}"),
            };
            let mut body = Vec::new();
            let end = loop {
                match s.recv_data().await {
                    Ok(Some(mut b)) => {
                        while b.has_remaining() {
                            let c = b.chunk();
                            body.extend_from_slice(c);
                            let l = c.len();
                            b.advance(l);
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(h3::error::StreamError::RemoteTerminate { code, .. }) => break Err(Some(code)),
                    Err(e) => panic!("unexpected stream error: {e}"),
                }
            };
            out.push(Got {
                status: Some(resp.status()),
                content_length: resp
                    .headers()
                    .get(header::CONTENT_LENGTH)
                    .map(|v| v.to_str().unwrap().to_string()),
                body,
                end,
            });
        }
        drop(send);
        client.close(0u8.into(), b"done");
        drive.abort();
        serving.abort();
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    /// A body produced while it is sent: one item every 20 ms.
    fn live(items: Vec<Result<&'static str, StoreError>>) -> Reply {
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            for i in items {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _ = tx.send(i.map(Bytes::from)).await;
            }
        });
        Response::new(Body::Live(rx))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_torn_live_body_resets_the_stream_and_a_whole_one_ends_cleanly() {
        let got = exchange(
            "live",
            vec![
                live(vec![
                    Ok("moof"),
                    Ok("mdat"),
                    Err(StoreError::Unavailable("torn".into())),
                ]),
                live(vec![Ok("moof"), Ok("mdat")]),
                Response::new(Body::Chunks(["ab", "", "cd"].map(Bytes::from).into())),
            ],
        )
        .await;
        // Torn: at most what was sent before the reset, and never a clean end.
        assert_eq!(got[0].end, Err(Some(Code::H3_INTERNAL_ERROR)), "{got:?}");
        assert!(b"moofmdat".starts_with(&got[0].body), "{got:?}");
        assert_eq!(got[0].content_length, None);
        assert_eq!(got[1].status, Some(StatusCode::OK));
        // Live and complete: streamed without a length, ended cleanly.
        assert_eq!((got[1].body.as_slice(), &got[1].end), (&b"moofmdat"[..], &Ok(())));
        assert_eq!(got[1].content_length, None);
        // Complete chunks: the exact length, as hyper sends it.
        assert_eq!((got[2].body.as_slice(), &got[2].end), (&b"abcd"[..], &Ok(())));
        assert_eq!(got[2].content_length.as_deref(), Some("4"));
    }
}
