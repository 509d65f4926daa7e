//! The player's HTTP: one kept-alive connection per host (HTTP/1.1, or HTTP/2 with prior
//! knowledge), redirects followed, bodies read frame by frame with a deadline and an
//! optional pace (to play a viewer on a slow network), and URL resolution for playlists'
//! relative URIs.

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// Which HTTP the player speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersion {
    #[default]
    Http1,
    /// HTTP/2 over cleartext with prior knowledge (h2c), as edges serve it.
    Http2,
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("bad URL {0:?}: {1}")]
    Url(String, String),
    #[error("only http:// URLs are supported by this transport: {0:?}")]
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
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

/// The connections of one player.
pub struct Client {
    version: HttpVersion,
    conns: HashMap<String, Sender>,
    /// Bytes per second a body may be read at; `None`: as fast as it comes.
    pub pace: Option<u64>,
    pub timeout: Duration,
    pub max_body: usize,
    /// Requests made, including redirects.
    pub requests: u64,
}

/// Splits `http://host:port/path?query` into (authority, path-and-query).
fn split(url: &str) -> Result<(&str, &str), FetchError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| FetchError::Scheme(url.chars().take(80).collect()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains(['@', ' ']) {
        return Err(FetchError::Url(url.into(), "no usable host".into()));
    }
    Ok((authority, path))
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
            pace: None,
            timeout: Duration::from_secs(10),
            max_body: 64 * 1024 * 1024,
            requests: 0,
        }
    }

    async fn connect(&mut self, authority: &str) -> Result<(), FetchError> {
        let err = |e: String| FetchError::Connect(authority.to_string(), e);
        let tcp = tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(authority))
            .await
            .map_err(|_| err("timed out".into()))?
            .map_err(|e| err(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let io = hyper_util::rt::TokioIo::new(tcp);
        let sender = match self.version {
            HttpVersion::Http1 => {
                let (send, conn) = hyper::client::conn::http1::handshake(io)
                    .await
                    .map_err(|e| err(e.to_string()))?;
                tokio::spawn(conn);
                Sender::H1(send)
            }
            HttpVersion::Http2 => {
                let (send, conn) =
                    hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                        .await
                        .map_err(|e| err(e.to_string()))?;
                tokio::spawn(conn);
                Sender::H2(send)
            }
        };
        self.conns.insert(authority.to_string(), sender);
        Ok(())
    }

    async fn send(
        &mut self,
        url: &str,
        headers: &[(&str, String)],
    ) -> Result<hyper::Response<Incoming>, FetchError> {
        let (authority, path) = split(url)?;
        let mut req = hyper::Request::get(path);
        if self.version == HttpVersion::Http1 {
            req = req.header(hyper::header::HOST, authority);
        } else {
            req = req.uri(url);
        }
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|e| FetchError::Url(url.into(), e.to_string()))?;
        // A kept connection may have closed meanwhile: one fresh try.
        for attempt in 0..2 {
            if !self.conns.contains_key(authority) {
                self.connect(authority).await?;
            }
            self.requests += 1;
            let sent = match self.conns.get_mut(authority) {
                Some(Sender::H1(s)) => match s.ready().await {
                    Ok(()) => Some(s.send_request(req.clone_parts()).await),
                    Err(_) => None,
                },
                Some(Sender::H2(s)) => match s.ready().await {
                    Ok(()) => Some(s.send_request(req.clone_parts()).await),
                    Err(_) => None,
                },
                None => None,
            };
            match sent {
                Some(Ok(res)) => return Ok(res),
                Some(Err(e)) if attempt == 1 || !e.is_canceled() && !e.is_closed() => {
                    self.conns.remove(authority);
                    return Err(FetchError::Broken(url.into(), e.to_string()));
                }
                _ => {
                    self.conns.remove(authority);
                }
            }
        }
        Err(FetchError::Broken(url.into(), "the connection closed".into()))
    }

    /// GETs `url`, following up to 5 redirects, and reads the whole body.
    pub async fn get(&mut self, url: &str, headers: &[(&str, String)]) -> Result<Fetched, FetchError> {
        let deadline = Instant::now() + self.timeout;
        let mut url = url.to_string();
        for _ in 0..=5 {
            let sent = Instant::now();
            let res = match tokio::time::timeout_at(deadline, self.send(&url, headers)).await {
                Ok(r) => r?,
                Err(_) => {
                    if let Ok((a, _)) = split(&url) {
                        self.conns.remove(a);
                    }
                    return Err(FetchError::Timeout(url));
                }
            };
            let status = res.status();
            if status.is_redirection() {
                let location = res
                    .headers()
                    .get(hyper::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| FetchError::Url(url.clone(), format!("{status} without Location")))?;
                url = resolve(&url, location);
                continue;
            }
            let (body, first_byte, transfer) = self.read(&url, res.into_body(), sent, deadline).await?;
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
            });
        }
        Err(FetchError::Redirects(url, 5))
    }

    async fn read(
        &mut self,
        url: &str,
        mut body: Incoming,
        sent: Instant,
        deadline: Instant,
    ) -> Result<(Bytes, Duration, Duration), FetchError> {
        let mut out = BytesMut::new();
        let mut first: Option<Instant> = None;
        loop {
            match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        let at = *first.get_or_insert_with(Instant::now);
                        out.extend_from_slice(&data);
                        if out.len() > self.max_body {
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
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    if let Ok((a, _)) = split(url) {
                        self.conns.remove(a);
                    }
                    return Err(FetchError::Broken(url.into(), e.to_string()));
                }
                Err(_) => {
                    if let Ok((a, _)) = split(url) {
                        self.conns.remove(a);
                    }
                    return Err(FetchError::Timeout(url.into()));
                }
            }
        }
        let first = first.unwrap_or_else(Instant::now);
        Ok((out.freeze(), first - sent, first.elapsed()))
    }
}

/// Cloning a bodiless GET (the request is rebuilt for a retry).
trait CloneParts {
    fn clone_parts(&self) -> hyper::Request<Empty<Bytes>>;
}

impl CloneParts for hyper::Request<Empty<Bytes>> {
    fn clone_parts(&self) -> hyper::Request<Empty<Bytes>> {
        let mut r = hyper::Request::new(Empty::new());
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
        assert_eq!(split("http://h:1/a?b").unwrap(), ("h:1", "/a?b"));
        assert_eq!(split("http://h:1").unwrap(), ("h:1", "/"));
        assert!(matches!(split("https://h/a"), Err(FetchError::Scheme(_))));
        assert!(matches!(split("http:///a"), Err(FetchError::Url(..))));
    }
}
