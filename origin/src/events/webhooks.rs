//! Lifecycle webhooks: each event's moments appended to its timeline (the outbox, in the event database) and POSTed to its receiver (its own, else the deployment's; https or http), signed, in order per event, retried with backoff until a 2xx.
//!
//! A moment is stored before it is sent, with the exact body every attempt sends, so an
//! origin restart loses none and a retry is byte-identical (receivers deduplicate by the
//! body's `id`). Each event's oldest undelivered moment goes first and the next waits for
//! it; events are independent, so one event's failing receiver holds up no other event.

use super::db::{EventDb, TimelineEntry};
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use popcast_config::WebhooksConfig;
use ring::hmac;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest receiver URL.
pub const MAX_URL_CHARS: usize = 2_000;

/// Where moments are POSTed: `http(s)://{authority}{path}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    tls: bool,
    /// The host as it appears in the URL (brackets stripped for an IPv6 address).
    host: String,
    /// `host:port`, for connecting and for the Host header.
    authority: String,
    path: String,
}

impl Target {
    /// `host:port` and the request path (with its query).
    pub fn parts(&self) -> (&str, &str) {
        (&self.authority, &self.path)
    }

    /// Parses a receiver URL, naming what is wrong with it.
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.len() > MAX_URL_CHARS {
            return Err(format!("{} characters, at most {MAX_URL_CHARS}", url.len()));
        }
        if url.chars().any(|c| c.is_control() || c == ' ') {
            return Err("contains spaces or control characters".into());
        }
        let (tls, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
            (Some(rest), _) => (true, rest),
            (_, Some(rest)) => (false, rest),
            _ => return Err("must start with https:// or http://".into()),
        };
        let rest = rest.split('#').next().unwrap_or("");
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        // No credentials in the URL: they would end up in logs and the timeline's errors.
        if authority.contains('@') {
            return Err("must not carry credentials (user:password@)".into());
        }
        // The host: a bracketed IPv6 address (the only place a colon may be), or a name
        // or IPv4 address; then an optional port.
        let (host, bare, rest) = if let Some(inner) = authority.strip_prefix('[') {
            let (ip, rest) = inner
                .split_once(']')
                .ok_or_else(|| format!("bad host {authority:?}"))?;
            if ip.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("bad IPv6 address {ip:?}"));
            }
            (&authority[..ip.len() + 2], ip, rest)
        } else {
            let end = authority.find(':').unwrap_or(authority.len());
            (&authority[..end], &authority[..end], &authority[end..])
        };
        let port = match rest.strip_prefix(':') {
            Some(p) => p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?,
            None if rest.is_empty() => {
                if tls {
                    443
                } else {
                    80
                }
            }
            None => return Err(format!("bad host {authority:?}")),
        };
        if bare.is_empty() {
            return Err("has no host".into());
        }
        if !host.starts_with('[')
            && !bare
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return Err(format!("bad host {host:?}"));
        }
        Ok(Self {
            tls,
            host: bare.to_string(),
            authority: format!("{host}:{port}"),
            path,
        })
    }
}

/// The timeline writer and webhook sender of one origin.
pub struct Webhooks {
    db: Arc<EventDb>,
    /// The deployment's receiver; an event's own `webhook_url` takes its place.
    target: Option<Target>,
    key: Option<hmac::Key>,
    /// For https receivers: the configured CAs, or why they could not be loaded.
    tls: Result<Arc<rustls::ClientConfig>, String>,
    timeout: Duration,
    max_backoff_secs: u64,
    keep_days: u32,
    now: fn() -> i64,
    wake: tokio::sync::Notify,
    in_flight: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The value of the `Popcast-Signature` header for `body`.
pub fn signature(key: &hmac::Key, body: &[u8]) -> String {
    format!("sha256={}", super::api::hex(hmac::sign(key, body).as_ref()))
}

/// Whether `header` (a `Popcast-Signature` value) is the signature of `body` under
/// `secret`, compared in constant time: what a receiver checks.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let tag: Vec<u8> = (0..32)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, secret), body, &tag).is_ok()
}

impl Webhooks {
    pub fn new(db: Arc<EventDb>, cfg: &WebhooksConfig, now: fn() -> i64) -> Self {
        Self {
            db,
            target: cfg.url.as_deref().and_then(|u| {
                Target::parse(u)
                    .map_err(|why| tracing::error!("webhooks.url {why}: no deployment receiver"))
                    .ok()
            }),
            tls: tls_client(&cfg.ca_file),
            key: cfg
                .secret
                .as_ref()
                .map(|s| hmac::Key::new(hmac::HMAC_SHA256, s.expose().as_bytes())),
            timeout: Duration::from_millis(cfg.timeout_ms),
            max_backoff_secs: cfg.max_backoff_secs.max(1),
            keep_days: cfg.keep_days.max(1),
            now,
            wake: tokio::sync::Notify::new(),
            in_flight: Mutex::new(HashSet::new()),
        }
    }

    /// Appends a moment to the event's timeline and wakes the sender. `kind` is one of
    /// `event.provisioned`, `publisher.connected`, `event.live`, `publisher.lost`,
    /// `publisher.resumed`, `event.ended`, `slots.released`.
    pub fn emit(&self, event: &str, kind: &str, data: Value) {
        let now = (self.now)();
        // Random, so receivers can deduplicate retries by it.
        let id = super::api::hex(&super::api::random_bytes::<16>());
        let made = self.db.append_timeline(event, kind, now, |seq| {
            json!({
                "id": id,
                "type": kind,
                "event": event,
                "seq": seq,
                "at": super::api::rfc3339(now),
                "data": data,
            })
            .to_string()
        });
        match made {
            Ok(e) => {
                tracing::info!(event, kind, seq = e.seq, "lifecycle");
                self.wake.notify_one();
            }
            Err(e) => tracing::warn!(event, kind, error = %e, "lifecycle moment not recorded"),
        }
    }

    /// How long to wait before attempt `attempts + 1`: 1, 2, 4, … s, at most the configured maximum.
    fn backoff(&self, attempts: u32) -> i64 {
        let secs = 1u64 << attempts.min(20);
        secs.min(self.max_backoff_secs) as i64
    }

    /// Whether moments can be signed (a secret is configured): what an event's own
    /// receiver needs.
    pub fn can_sign(&self) -> bool {
        self.key.is_some()
    }

    /// Where `event`'s moments go: its own receiver, else the deployment's.
    fn target_for(&self, event: &str) -> Option<Target> {
        match self.db.webhook_url(event) {
            Ok(Some(url)) => Target::parse(&url).ok(),
            Ok(None) => self.target.clone(),
            Err(e) => {
                tracing::warn!(event, error = %e, "webhooks: cannot read the event's receiver");
                None
            }
        }
    }

    /// Sends what is due, and prunes old timelines hourly, forever. Without a secret
    /// nothing can be signed, so nothing is sent.
    pub async fn run(self: Arc<Self>) {
        let mut pruned_at: Option<std::time::Instant> = None;
        loop {
            let now = (self.now)();
            if pruned_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(3_600)) {
                pruned_at = Some(std::time::Instant::now());
                if let Err(e) = self.prune() {
                    tracing::warn!(error = %e, "webhooks: old timelines not pruned");
                }
            }
            if self.key.is_some() {
                // Held while the heads are read and sent off, so that a delivery finishing
                // meanwhile cannot leave a stale head (its moment would be sent twice).
                let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                match self.db.undelivered_heads() {
                    Ok(heads) => {
                        // A retry planned further ahead than the longest backoff was planned
                        // before the clock stepped back: due now, not when the clock catches up.
                        let latest = now + self.max_backoff_secs as i64;
                        for h in heads
                            .into_iter()
                            .filter(|h| h.next_attempt <= now || h.next_attempt > latest)
                        {
                            if in_flight.contains(&h.event_id) {
                                continue;
                            }
                            // An event with no receiver keeps its moments undelivered.
                            if let Some(target) = self.target_for(&h.event_id) {
                                in_flight.insert(h.event_id.clone());
                                tokio::spawn(self.clone().deliver(h, target));
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "webhooks: cannot read the timeline"),
                }
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    async fn deliver(self: Arc<Self>, e: TimelineEntry, target: Target) {
        let result = tokio::time::timeout(self.timeout, self.post(&e, &target)).await;
        let outcome = match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(why),
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        };
        let now = (self.now)();
        let stored = match &outcome {
            Ok(()) => self.db.delivered(&e.event_id, e.seq, now),
            Err(why) => {
                let next = now + self.backoff(e.attempts);
                tracing::warn!(event = %e.event_id, seq = e.seq, kind = %e.kind, attempts = e.attempts + 1, retry_in_secs = next - now, "webhook not delivered: {why}");
                self.db.attempt_failed(&e.event_id, e.seq, next, why)
            }
        };
        if let Err(err) = stored {
            tracing::warn!(event = %e.event_id, error = %err, "webhooks: outcome not stored");
        }
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&e.event_id);
        if outcome.is_ok() {
            // The event's next moment may be waiting for this one.
            self.wake.notify_one();
        }
    }

    async fn post(&self, e: &TimelineEntry, target: &Target) -> Result<(), String> {
        let Some(key) = &self.key else {
            return Err("no secret to sign with".into());
        };
        let stream = tokio::net::TcpStream::connect(&target.authority)
            .await
            .map_err(|err| format!("connect to {}: {err}", target.authority))?;
        let mut sender = if target.tls {
            let config = self.tls.clone().map_err(|why| format!("https: {why}"))?;
            let name = rustls_pki_types::ServerName::try_from(target.host.clone())
                .map_err(|err| format!("https: {}: {err}", target.host))?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map_err(|err| format!("TLS with {}: {err}", target.authority))?;
            handshake(tls).await?
        } else {
            handshake(stream).await?
        };
        let body = Bytes::from(e.body.clone());
        let req = Request::post(target.path.as_str())
            .header(http::header::HOST, target.authority.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("popcast/", env!("CARGO_PKG_VERSION")),
            )
            .header("popcast-event", e.kind.as_str())
            .header("popcast-signature", signature(key, &body))
            .body(Full::new(body))
            .map_err(|err| format!("request: {err}"))?;
        let res = sender
            .send_request(req)
            .await
            .map_err(|err| format!("request failed: {err}"))?;
        let status = res.status();
        // Read (and drop) a bounded answer so the connection ends cleanly.
        let _ = http_body_util::Limited::new(res.into_body(), 64 * 1024)
            .collect()
            .await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!(
                "the receiver answered {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ))
        }
    }

    /// Deletes the timelines quiet for the configured `keep_days` whose moments were all
    /// delivered (or have nowhere to go). How many moments went.
    pub fn prune(&self) -> Result<usize, super::db::DbError> {
        let cutoff = (self.now)() - i64::from(self.keep_days) * 86_400;
        let mut gone = 0;
        for (event, delivered) in self.db.quiet_timelines(cutoff)? {
            if delivered || self.key.is_none() || self.target_for(&event).is_none() {
                gone += self.db.delete_timeline(&event, cutoff)?;
            }
        }
        if gone > 0 {
            tracing::info!(moments = gone, keep_days = self.keep_days, "old timelines pruned");
        }
        Ok(gone)
    }

    /// The event's timeline as the API shows it.
    pub fn timeline_json(&self, event: &str, limit: usize) -> Result<Value, super::db::DbError> {
        let entries = self.db.timeline(event, limit)?;
        Ok(json!({
            "event": event,
            "webhooks": self.key.is_some() && self.target_for(event).is_some(),
            "timeline": entries.iter().map(|e| json!({
                "seq": e.seq,
                "type": e.kind,
                "at": super::api::rfc3339(e.at),
                "delivered": e.delivered.map(super::api::rfc3339),
                "attempts": e.attempts,
                "last_error": e.last_error,
                "body": serde_json::from_str::<Value>(&e.body).unwrap_or(Value::Null),
            })).collect::<Vec<_>>(),
        }))
    }
}

/// An HTTP/1.1 client connection over `io`, its connection driven on its own task.
async fn handshake<T>(io: T) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .map_err(|err| format!("HTTP handshake: {err}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// The TLS client for https receivers (TLS 1.2 and 1.3, ring), trusting the CAs in the PEM
/// bundle `ca_file`; or why there is none.
fn tls_client(ca_file: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| format!("CA bundle {}: {e}", ca_file.display()))?;
    for cert in certs.flatten() {
        // A bundle may hold certificates this verifier cannot use; the rest still count.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(format!("CA bundle {}: no usable certificate", ca_file.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_http_or_https_with_a_host_and_a_path() {
        let t = Target::parse("http://127.0.0.1:9000/hooks/popcast").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.path.as_str(), t.tls),
            ("127.0.0.1:9000", "/hooks/popcast", false)
        );
        assert_eq!(Target::parse("http://h:1").unwrap().path, "/");
        assert_eq!(Target::parse("http://h:1?a=b#frag").unwrap().path, "/?a=b");
        assert_eq!(
            Target::parse("http://hooks.example/x").unwrap().authority,
            "hooks.example:80"
        );
        let t = Target::parse("https://hooks.example/x?k=v").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.host.as_str(), t.path.as_str(), t.tls),
            ("hooks.example:443", "hooks.example", "/x?k=v", true)
        );
        assert_eq!(Target::parse("http://[::1]:9/x").unwrap().authority, "[::1]:9");
        let t = Target::parse("https://[::1]/x").unwrap();
        assert_eq!((t.authority.as_str(), t.host.as_str()), ("[::1]:443", "::1"));
        for (bad, why) in [
            ("http://user:pass@h:1/x", "credentials"),
            ("ftp://h/x", "https://"),
            ("http:///x", "no host"),
            ("http://h:99999/x", "bad port"),
            ("http://h x/", "spaces"),
            ("http://h\r\nHost: evil/", "control"),
            ("http://h%2f/", "bad host"),
            ("http://::1/x", "bad port"),
            ("http://h:1:2/", "bad port"),
            ("http://[hooks.example]/", "bad IPv6"),
            ("http://[::1/", "bad host"),
            ("http://[::1]x/", "bad host"),
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(Target::parse(&format!("http://h/{}", "x".repeat(2_000))).is_err());
    }

    #[test]
    fn the_signature_is_the_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        assert_eq!(
            signature(&key, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let good = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert!(verify(b"Jefe", b"what do ya want for nothing?", good));
        assert!(!verify(b"Jefe", b"what do ya want for nothing!", good));
        assert!(!verify(b"Jefe", b"what do ya want for nothing?", "sha256=00"));
        assert!(!verify(b"Jefe", b"x", "md5=abc"));
    }

    #[test]
    fn only_ended_events_quiet_past_keep_days_lose_their_timelines() {
        use crate::events::record::{EventState, sample};
        let db = Arc::new(EventDb::in_memory().unwrap());
        for (id, key) in [("ended", 1u8), ("recent", 2), ("running", 3)] {
            let mut r = sample(id);
            r.key_hash = [key; 32];
            db.insert(&r).unwrap();
        }
        let then = Webhooks::new(db.clone(), &WebhooksConfig::default(), || 1_800_000_000);
        for id in ["ended", "running", "config-file-event"] {
            then.emit(id, "event.provisioned", json!({}));
        }
        db.set_state("ended", EventState::Ended, 1_800_000_000).unwrap();
        db.set_state("recent", EventState::Ended, 1_800_000_000).unwrap();
        let month = Webhooks::new(db.clone(), &WebhooksConfig::default(), || {
            1_800_000_000 + 31 * 86_400
        });
        month.emit("recent", "event.ended", json!({}));
        // No secret: nothing could be delivered, so undelivered moments do not keep it.
        assert_eq!(month.prune().unwrap(), 1);
        assert!(db.timeline("ended", 10).unwrap().is_empty());
        for kept in ["recent", "running", "config-file-event"] {
            assert_eq!(db.timeline(kept, 10).unwrap().len(), 1, "{kept}");
        }
    }

    #[test]
    fn moments_are_numbered_per_event_and_kept_in_order() {
        let db = Arc::new(EventDb::in_memory().unwrap());
        let w = Webhooks::new(db.clone(), &WebhooksConfig::default(), || 1_800_000_000);
        w.emit("a", "event.provisioned", json!({}));
        w.emit("b", "event.provisioned", json!({}));
        w.emit("a", "publisher.connected", json!({}));
        let a = db.timeline("a", 10).unwrap();
        assert_eq!(a.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
        let body: Value = serde_json::from_str(&a[1].body).unwrap();
        assert_eq!(body["type"], "publisher.connected");
        assert_eq!(body["seq"], 2);
        assert_eq!(body["event"], "a");
        assert_eq!(body["id"].as_str().unwrap().len(), 32);
        let heads = db.undelivered_heads().unwrap();
        assert_eq!(heads.len(), 2, "one head per event");
        assert!(heads.iter().all(|h| h.seq == 1));
        db.delivered("a", 1, 1_800_000_001).unwrap();
        let heads = db.undelivered_heads().unwrap();
        assert!(heads.iter().any(|h| h.event_id == "a" && h.seq == 2));
        assert_eq!(w.backoff(0), 1);
        assert_eq!(w.backoff(3), 8);
        assert_eq!(w.backoff(30), 60);
    }
}
