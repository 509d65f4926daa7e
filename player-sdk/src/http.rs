//! The player's HTTP: one kept-alive connection per host (HTTP/1.1, HTTP/2, or HTTP/3 over
//! QUIC; `https://` over rustls with the roots the caller trusts), redirects followed,
//! bodies read chunk by chunk with a deadline and an optional pace (to play a viewer on a
//! slow network), and URL resolution for playlists' relative URIs.

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Which HTTP the player speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersion {
    #[default]
    Http1,
    /// HTTP/2: by ALPN over TLS, with prior knowledge (h2c) over cleartext.
    Http2,
    /// HTTP/3 over QUIC (`https://` only).
    Http3,
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("bad URL {0:?}: {1}")]
    Url(String, String),
    #[error("unsupported URL {0:?}: http:// or https:// (HTTP/3 needs https://)")]
    Scheme(String),
    #[error("connect to {0}: {1}")]
    Connect(String, String),
    #[error("{url}: HTTP {status}{}", if .body.is_empty() { String::new() } else { format!(": {}", .body) })]
    Status { url: String, status: u16, body: String },
    #[error("{0}: no answer in time")]
    Timeout(String),
    #[error("{0}: the connection failed: {1}")]
    Broken(String, String),
    #[error("{0}: more than {1} redirects")]
    Redirects(String, usize),
    #[error("{url}: body over {max} bytes")]
    TooLarge { url: String, max: usize },
}

impl FetchError {
    /// The HTTP status, when the server answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A fetched object.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Where it came from after redirects.
    pub url: String,
    pub body: Bytes,
    /// Request sent → first body byte.
    pub first_byte: Duration,
    /// First body byte → last.
    pub transfer: Duration,
    /// The protocol that carried it ("http/1.1", "h2", "h3").
    pub protocol: &'static str,
}

type H3Send = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;
type H3Stream = h3::client::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
    H3(H3Send, quinn::Connection),
}

/// A response body being read.
enum Body {
    Hyper(Incoming),
    Quic(Box<H3Stream>),
}

impl Body {
    async fn chunk(&mut self) -> Option<Result<Bytes, String>> {
        match self {
            Self::Hyper(b) => loop {
                match b.frame().await? {
                    Ok(f) => {
                        if let Ok(d) = f.into_data() {
                            return Some(Ok(d));
                        }
                    }
                    Err(e) => return Some(Err(e.to_string())),
                }
            },
            Self::Quic(s) => match s.recv_data().await {
                Ok(Some(mut b)) => Some(Ok(b.copy_to_bytes(b.remaining()))),
                Ok(None) => None,
                Err(e) => Some(Err(e.to_string())),
            },
        }
    }
}

/// The connections of one player.
pub struct Client {
    version: HttpVersion,
    conns: HashMap<String, Sender>,
    roots: Option<Arc<rustls::RootCertStore>>,
    quic: Option<quinn::Endpoint>,
    /// Bytes per second a body may be read at; `None`: as fast as it comes.
    pub pace: Option<u64>,
    pub timeout: Duration,
    pub max_body: usize,
    /// Requests made, including redirects.
    pub requests: u64,
}

/// `scheme://authority/path?query` → (https?, authority, path-and-query).
fn split(url: &str) -> Result<(bool, &str, &str), FetchError> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(FetchError::Scheme(url.chars().take(80).collect()));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains(['@', ' ']) {
        return Err(FetchError::Url(url.into(), "no usable host".into()));
    }
    Ok((tls, authority, path))
}

/// The host of an authority (no port, no IPv6 brackets), and the authority with the
/// scheme's default port when it names none.
fn host_port(authority: &str, tls: bool) -> (String, String) {
    let default = if tls { 443 } else { 80 };
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        let port = after.strip_prefix(':').unwrap_or("");
        let port = if port.is_empty() {
            default.to_string()
        } else {
            port.to_string()
        };
        return (host.to_string(), format!("[{host}]:{port}"));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), format!("{h}:{p}")),
        None => (authority.to_string(), format!("{authority}:{default}")),
    }
}

/// Loads the PEM certificates at `path` (a CA, or a server's own certificate) as roots to
/// trust for `https://`.
pub fn roots_from_pem(path: &std::path::Path) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| format!("{}: {e}", path.display()))? {
        roots
            .add(cert.map_err(|e| format!("{}: {e}", path.display()))?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no certificate", path.display()));
    }
    Ok(roots)
}

/// `reference` resolved against `base` (RFC 3986 §5.2, for the forms playlists use:
/// absolute URLs, absolute paths and relative paths with `.`/`..` segments).
pub fn resolve(base: &str, reference: &str) -> String {
    if reference.contains("://") {
        return reference.to_string();
    }
    let (origin, base_path) = match base.find("://").map(|i| i + 3) {
        Some(s) => match base[s..].find('/') {
            Some(p) => (&base[..s + p], &base[s + p..]),
            None => (base, "/"),
        },
        None => ("", base),
    };
    if reference.starts_with('/') {
        return format!("{origin}{reference}");
    }
    let base_path = base_path.split(['?', '#']).next().unwrap_or("/");
    let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
    let (ref_path, ref_query) = match reference.find('?') {
        Some(i) => (&reference[..i], &reference[i..]),
        None => (reference, ""),
    };
    let mut segs: Vec<&str> = dir.split('/').collect();
    segs.pop(); // the empty segment after the last '/'
    let parts: Vec<&str> = ref_path.split('/').collect();
    for (i, s) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        match *s {
            "." => {
                if last {
                    segs.push("");
                }
            }
            ".." => {
                if segs.len() > 1 {
                    segs.pop();
                }
                if last {
                    segs.push("");
                }
            }
            s => segs.push(s),
        }
    }
    format!("{origin}{}{ref_query}", segs.join("/"))
}

impl Client {
    pub fn new(version: HttpVersion) -> Self {
        Self {
            version,
            conns: HashMap::new(),
            roots: None,
            quic: None,
            pace: None,
            timeout: Duration::from_secs(10),
            max_body: 64 * 1024 * 1024,
            requests: 0,
        }
    }

    /// Trusts `roots` for `https://` (without any, https URLs cannot be fetched).
    pub fn trust(&mut self, roots: rustls::RootCertStore) {
        self.roots = Some(Arc::new(roots));
    }

    fn tls_config(&self, alpn: &[&[u8]]) -> Result<rustls::ClientConfig, String> {
        let roots = self
            .roots
            .clone()
            .ok_or("https:// needs trusted roots (Client::trust)")?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut c = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(c)
    }

    async fn connect(&mut self, tls: bool, authority: &str) -> Result<(), FetchError> {
        let err = |e: String| FetchError::Connect(authority.to_string(), e);
        let (host, addr) = host_port(authority, tls);
        let sender = if self.version == HttpVersion::Http3 {
            if !tls {
                return Err(err("HTTP/3 needs an https:// URL".into()));
            }
            let target = tokio::net::lookup_host(&addr)
                .await
                .map_err(|e| err(e.to_string()))?
                .next()
                .ok_or_else(|| err("the name has no address".into()))?;
            if self.quic.is_none() {
                let bind: std::net::SocketAddr = if target.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let mut ep = quinn::Endpoint::client(bind).map_err(|e| err(e.to_string()))?;
                let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(
                    self.tls_config(&[b"h3"]).map_err(err)?,
                )
                .map_err(|e| err(e.to_string()))?;
                ep.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
                self.quic = Some(ep);
            }
            let ep = self.quic.as_ref().expect("made above");
            let conn = tokio::time::timeout(
                self.timeout,
                ep.connect(target, &host).map_err(|e| err(e.to_string()))?,
            )
            .await
            .map_err(|_| err("QUIC handshake timed out".into()))?
            .map_err(|e| err(e.to_string()))?;
            let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(conn.clone()))
                .await
                .map_err(|e| err(e.to_string()))?;
            tokio::spawn(async move { std::future::poll_fn(|cx| driver.poll_close(cx)).await });
            Sender::H3(send, conn)
        } else {
            let tcp = tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(&addr))
                .await
                .map_err(|_| err("timed out".into()))?
                .map_err(|e| err(e.to_string()))?;
            let _ = tcp.set_nodelay(true);
            if tls {
                let alpn: &[&[u8]] = match self.version {
                    HttpVersion::Http2 => &[b"h2"],
                    _ => &[b"http/1.1"],
                };
                let config = Arc::new(self.tls_config(alpn).map_err(err)?);
                let name =
                    rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| err(e.to_string()))?;
                let stream = tokio::time::timeout(
                    self.timeout,
                    tokio_rustls::TlsConnector::from(config).connect(name, tcp),
                )
                .await
                .map_err(|_| err("TLS handshake timed out".into()))?
                .map_err(|e| err(e.to_string()))?;
                self.handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(err)?
            } else {
                self.handshake(hyper_util::rt::TokioIo::new(tcp))
                    .await
                    .map_err(err)?
            }
        };
        self.conns.insert(authority.to_string(), sender);
        Ok(())
    }

    async fn handshake<T>(&self, io: T) -> Result<Sender, String>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        Ok(match self.version {
            HttpVersion::Http2 => {
                let (send, conn) =
                    hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                        .await
                        .map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                Sender::H2(send)
            }
            _ => {
                let (send, conn) = hyper::client::conn::http1::handshake(io)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                Sender::H1(send)
            }
        })
    }

    /// Sends a GET (or, with `post`, a POST of that body); the status, the Location header,
    /// and the body to read.
    async fn send(
        &mut self,
        url: &str,
        headers: &[(&str, String)],
        post: Option<&Bytes>,
    ) -> Result<(hyper::StatusCode, Option<String>, Body, &'static str), FetchError> {
        let (tls, authority, path) = split(url)?;
        let method = if post.is_some() {
            hyper::Method::POST
        } else {
            hyper::Method::GET
        };
        let mut req = hyper::Request::builder().method(method.clone()).uri(path);
        if self.version == HttpVersion::Http1 {
            req = req.header(hyper::header::HOST, authority);
        } else {
            req = req.uri(url);
        }
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let req = req
            .body(Full::new(post.cloned().unwrap_or_default()))
            .map_err(|e| FetchError::Url(url.into(), e.to_string()))?;
        let location = |h: &hyper::HeaderMap| {
            h.get(hyper::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        // A kept connection may have closed meanwhile: one fresh try.
        for attempt in 0..2 {
            if !self.conns.contains_key(authority) {
                self.connect(tls, authority).await?;
            }
            self.requests += 1;
            let failed = match self.conns.get_mut(authority) {
                Some(Sender::H1(s)) => match s.ready().await {
                    Ok(()) => match s.send_request(req.clone_parts()).await {
                        Ok(r) => {
                            let (parts, body) = r.into_parts();
                            return Ok((
                                parts.status,
                                location(&parts.headers),
                                Body::Hyper(body),
                                "http/1.1",
                            ));
                        }
                        Err(e) => e.to_string(),
                    },
                    Err(e) => e.to_string(),
                },
                Some(Sender::H2(s)) => match s.ready().await {
                    Ok(()) => match s.send_request(req.clone_parts()).await {
                        Ok(r) => {
                            let (parts, body) = r.into_parts();
                            return Ok((parts.status, location(&parts.headers), Body::Hyper(body), "h2"));
                        }
                        Err(e) => e.to_string(),
                    },
                    Err(e) => e.to_string(),
                },
                Some(Sender::H3(s, _)) => {
                    let mut q = http::Request::builder().method(method.clone()).uri(url);
                    for (k, v) in headers {
                        q = q.header(*k, v.as_str());
                    }
                    let q = q
                        .body(())
                        .map_err(|e| FetchError::Url(url.into(), e.to_string()))?;
                    match s.send_request(q).await {
                        Ok(mut stream) => match async {
                            if let Some(b) = post {
                                stream.send_data(b.clone()).await?;
                            }
                            stream.finish().await
                        }
                        .await
                        {
                            Ok(()) => match stream.recv_response().await {
                                Ok(r) => {
                                    return Ok((
                                        r.status(),
                                        location(r.headers()),
                                        Body::Quic(Box::new(stream)),
                                        "h3",
                                    ));
                                }
                                Err(e) => e.to_string(),
                            },
                            Err(e) => e.to_string(),
                        },
                        Err(e) => e.to_string(),
                    }
                }
                None => "no connection".into(),
            };
            self.conns.remove(authority);
            if attempt == 1 {
                return Err(FetchError::Broken(url.into(), failed));
            }
        }
        Err(FetchError::Broken(url.into(), "the connection closed".into()))
    }

    fn forget(&mut self, url: &str) {
        if let Ok((_, a, _)) = split(url) {
            if let Some(Sender::H3(_, conn)) = self.conns.remove(a) {
                conn.close(0u8.into(), b"");
            }
        }
    }

    /// GETs `url`, following up to 5 redirects, and reads the whole body.
    pub async fn get(&mut self, url: &str, headers: &[(&str, String)]) -> Result<Fetched, FetchError> {
        let deadline = Instant::now() + self.timeout;
        let mut url = url.to_string();
        for _ in 0..=5 {
            let sent = Instant::now();
            let (status, location, body, protocol) =
                match tokio::time::timeout_at(deadline, self.send(&url, headers, None)).await {
                    Ok(r) => r?,
                    Err(_) => {
                        self.forget(&url);
                        return Err(FetchError::Timeout(url));
                    }
                };
            if status.is_redirection() {
                let location = location
                    .ok_or_else(|| FetchError::Url(url.clone(), format!("{status} without Location")))?;
                url = resolve(&url, &location);
                continue;
            }
            let (body, first_byte, transfer) = self.read(&url, body, sent, deadline).await?;
            if status != hyper::StatusCode::OK {
                return Err(FetchError::Status {
                    url,
                    status: status.as_u16(),
                    body: String::from_utf8_lossy(&body[..body.len().min(200)])
                        .trim()
                        .to_string(),
                });
            }
            return Ok(Fetched {
                url,
                body,
                first_byte,
                transfer,
                protocol,
            });
        }
        Err(FetchError::Redirects(url, 5))
    }

    /// POSTs `body` to `url` (no redirects followed); the status.
    pub async fn post(
        &mut self,
        url: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<u16, FetchError> {
        let deadline = Instant::now() + self.timeout;
        let sent = Instant::now();
        let (status, _, resp, _) =
            match tokio::time::timeout_at(deadline, self.send(url, headers, Some(&body))).await {
                Ok(r) => r?,
                Err(_) => {
                    self.forget(url);
                    return Err(FetchError::Timeout(url.into()));
                }
            };
        self.read(url, resp, sent, deadline).await?;
        Ok(status.as_u16())
    }

    async fn read(
        &mut self,
        url: &str,
        mut body: Body,
        sent: Instant,
        deadline: Instant,
    ) -> Result<(Bytes, Duration, Duration), FetchError> {
        let mut out = BytesMut::new();
        let mut first: Option<Instant> = None;
        loop {
            match tokio::time::timeout_at(deadline, body.chunk()).await {
                Ok(Some(Ok(data))) => {
                    let at = *first.get_or_insert_with(Instant::now);
                    out.extend_from_slice(&data);
                    if out.len() > self.max_body {
                        self.forget(url);
                        return Err(FetchError::TooLarge {
                            url: url.into(),
                            max: self.max_body,
                        });
                    }
                    if let Some(pace) = self.pace.filter(|p| *p > 0) {
                        // Not before the paced network would have delivered these bytes.
                        let due = at + Duration::from_secs_f64(out.len() as f64 / pace as f64);
                        tokio::time::sleep_until(due.min(deadline)).await;
                    }
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    self.forget(url);
                    return Err(FetchError::Broken(url.into(), e));
                }
                Err(_) => {
                    self.forget(url);
                    return Err(FetchError::Timeout(url.into()));
                }
            }
        }
        let first = first.unwrap_or_else(Instant::now);
        Ok((out.freeze(), first - sent, first.elapsed()))
    }
}

/// Cloning a request (it is rebuilt for a retry).
trait CloneParts {
    fn clone_parts(&self) -> hyper::Request<Full<Bytes>>;
}

impl CloneParts for hyper::Request<Full<Bytes>> {
    fn clone_parts(&self) -> hyper::Request<Full<Bytes>> {
        let mut r = hyper::Request::new(self.body().clone());
        *r.method_mut() = self.method().clone();
        *r.uri_mut() = self.uri().clone();
        *r.version_mut() = self.version();
        *r.headers_mut() = self.headers().clone();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_uris_resolve_as_players_expect() {
        let base = "http://127.0.0.1:8081/live/ev/master.m3u8?token=t";
        assert_eq!(
            resolve(base, "source/index.m3u8?token=t"),
            "http://127.0.0.1:8081/live/ev/source/index.m3u8?token=t"
        );
        let media = "http://127.0.0.1:8081/live/ev/source/index.m3u8";
        assert_eq!(
            resolve(media, "41.2.m4s"),
            "http://127.0.0.1:8081/live/ev/source/41.2.m4s"
        );
        assert_eq!(
            resolve(media, "../audio/index.m3u8"),
            "http://127.0.0.1:8081/live/ev/audio/index.m3u8"
        );
        assert_eq!(resolve(media, "/healthz"), "http://127.0.0.1:8081/healthz");
        assert_eq!(resolve(media, "http://other:1/x.m4s"), "http://other:1/x.m4s");
        assert_eq!(resolve("http://h:1", "a.m3u8"), "http://h:1/a.m3u8");
        assert_eq!(resolve("http://h:1/a/b/c", "../../../../x"), "http://h:1/x");
    }

    #[test]
    fn urls_are_split_or_refused() {
        assert_eq!(split("http://h:1/a?b").unwrap(), (false, "h:1", "/a?b"));
        assert_eq!(split("https://h:1").unwrap(), (true, "h:1", "/"));
        assert!(matches!(split("ftp://h/a"), Err(FetchError::Scheme(_))));
        assert!(matches!(split("http:///a"), Err(FetchError::Url(..))));
        assert_eq!(host_port("h", true), ("h".into(), "h:443".into()));
        assert_eq!(host_port("h:8", false), ("h".into(), "h:8".into()));
        assert_eq!(host_port("[::1]:9", true), ("::1".into(), "[::1]:9".into()));
        assert_eq!(host_port("[::1]", false), ("::1".into(), "[::1]:80".into()));
    }
}
