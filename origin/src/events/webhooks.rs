//! Lifecycle webhooks: each event's moments appended to its timeline (the outbox, in the event database) and POSTed to the configured receiver, signed, in order per event, retried with backoff until a 2xx.
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

/// Where moments are POSTed: `http://{authority}{path}`.
#[derive(Debug, Clone)]
struct Target {
    authority: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Option<Self> {
        let rest = url.strip_prefix("http://")?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        // No credentials in the URL: they would end up in logs and the timeline's errors.
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        // Port 80 when none is given (a bracketed IPv6 address has colons of its own).
        let has_port = !authority.ends_with(']')
            && authority
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
        let authority = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Some(Self {
            authority,
            path: path.to_string(),
        })
    }
}

/// The timeline writer and webhook sender of one origin.
pub struct Webhooks {
    db: Arc<EventDb>,
    target: Option<Target>,
    key: Option<hmac::Key>,
    timeout: Duration,
    max_backoff_secs: u64,
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
            target: cfg.url.as_deref().and_then(Target::parse),
            key: cfg
                .secret
                .as_ref()
                .map(|s| hmac::Key::new(hmac::HMAC_SHA256, s.expose().as_bytes())),
            timeout: Duration::from_millis(cfg.timeout_ms),
            max_backoff_secs: cfg.max_backoff_secs.max(1),
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

    /// Sends what is due, forever (returns at once when no receiver is configured).
    pub async fn run(self: Arc<Self>) {
        if self.target.is_none() || self.key.is_none() {
            return;
        }
        loop {
            let now = (self.now)();
            {
                // Held while the heads are read and sent off, so that a delivery finishing
                // meanwhile cannot leave a stale head (its moment would be sent twice).
                let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                match self.db.undelivered_heads() {
                    Ok(heads) => {
                        for h in heads.into_iter().filter(|h| h.next_attempt <= now) {
                            if in_flight.insert(h.event_id.clone()) {
                                tokio::spawn(self.clone().deliver(h));
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

    async fn deliver(self: Arc<Self>, e: TimelineEntry) {
        let result = tokio::time::timeout(self.timeout, self.post(&e)).await;
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

    async fn post(&self, e: &TimelineEntry) -> Result<(), String> {
        let (Some(target), Some(key)) = (&self.target, &self.key) else {
            return Err("no receiver configured".into());
        };
        let stream = tokio::net::TcpStream::connect(&target.authority)
            .await
            .map_err(|err| format!("connect to {}: {err}", target.authority))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|err| format!("HTTP handshake: {err}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
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

    /// The event's timeline as the API shows it.
    pub fn timeline_json(&self, event: &str, limit: usize) -> Result<Value, super::db::DbError> {
        let entries = self.db.timeline(event, limit)?;
        Ok(json!({
            "event": event,
            "webhooks": self.target.is_some(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_http_with_a_host_and_a_path() {
        let t = Target::parse("http://127.0.0.1:9000/hooks/popcast").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("127.0.0.1:9000", "/hooks/popcast")
        );
        assert_eq!(Target::parse("http://h:1").unwrap().path, "/");
        assert_eq!(
            Target::parse("http://hooks.example/x").unwrap().authority,
            "hooks.example:80"
        );
        assert_eq!(Target::parse("http://[::1]:9/x").unwrap().authority, "[::1]:9");
        assert_eq!(Target::parse("http://[::1]/x").unwrap().authority, "[::1]:80");
        assert!(Target::parse("http://user:pass@h:1/x").is_none());
        assert!(Target::parse("https://h/x").is_none());
        assert!(Target::parse("http:///x").is_none());
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
