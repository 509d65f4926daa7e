//! QoE beacons as a player sends them to the serving edge's `/qoe` (the edge's contract:
//! `popcast_packager::qoe::beacon`): running totals of the session, plus what happened
//! since the previous beacon (stalls, latency samples, errors). Written as JSON by hand, so
//! the SDK needs no serialisation crate.

use crate::http::{Client, HttpVersion};
use bytes::Bytes;
use std::fmt::Write;
use std::time::Duration;
use tokio::sync::mpsc;

/// Where and how often a session reports.
#[derive(Debug, Clone)]
pub struct BeaconConfig {
    /// The event the session watches (the edge files the beacon under it).
    pub event: String,
    /// A beacon at least this often while playing (and one at the first frame and at the
    /// end).
    pub every: Duration,
    /// The endpoint; `None`: `/qoe` on the host that served the multivariant playlist,
    /// with its `token` query argument when it had one.
    pub url: Option<String>,
}

impl BeaconConfig {
    pub fn new(event: impl Into<String>) -> Self {
        Self {
            event: event.into(),
            every: Duration::from_secs(5),
            url: None,
        }
    }
}

/// One beacon's content.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Beacon {
    pub event: String,
    pub sid: String,
    pub seq: u64,
    pub startup_ms: Option<u64>,
    pub watch_ms: Option<u64>,
    pub stalls: u64,
    pub stall_ms: u64,
    /// (session clock at its start, length), ms.
    pub stall_events: Vec<(u64, u64)>,
    pub latency_ms: Vec<u64>,
    /// (code, fatal).
    pub errors: Vec<(String, bool)>,
    pub ended: bool,
}

fn quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Beacon {
    pub fn to_json(&self) -> String {
        let mut o = String::from("{\"v\":1,\"event\":");
        quoted(&mut o, &self.event);
        o.push_str(",\"sid\":");
        quoted(&mut o, &self.sid);
        let _ = write!(o, ",\"seq\":{}", self.seq);
        if let Some(s) = self.startup_ms {
            let _ = write!(o, ",\"startup_ms\":{s}");
        }
        if let Some(w) = self.watch_ms {
            let _ = write!(
                o,
                ",\"watch_ms\":{w},\"stalls\":{},\"stall_ms\":{}",
                self.stalls, self.stall_ms
            );
        }
        if !self.stall_events.is_empty() {
            o.push_str(",\"stall_events\":[");
            for (i, (at, dur)) in self.stall_events.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                let _ = write!(o, "{{\"at_ms\":{at},\"dur_ms\":{dur}}}");
            }
            o.push(']');
        }
        if !self.latency_ms.is_empty() {
            o.push_str(",\"latency_ms\":[");
            for (i, l) in self.latency_ms.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                let _ = write!(o, "{l}");
            }
            o.push(']');
        }
        if !self.errors.is_empty() {
            o.push_str(",\"errors\":[");
            for (i, (code, fatal)) in self.errors.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                o.push_str("{\"code\":");
                quoted(&mut o, code);
                let _ = write!(o, ",\"fatal\":{fatal}}}");
            }
            o.push(']');
        }
        if self.ended {
            o.push_str(",\"ended\":true");
        }
        o.push('}');
        o
    }
}

/// What became of a session's beacons.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BeaconStats {
    pub sent: u32,
    /// Answered 2xx.
    pub accepted: u32,
    /// The last refusal's status (0: none).
    pub last_refusal: u16,
}

/// The `/qoe` URL for a session whose multivariant playlist came from `served_from`.
pub fn default_url(served_from: &str) -> String {
    let (base, query) = served_from.split_once('?').unwrap_or((served_from, ""));
    let origin_end = base
        .find("://")
        .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(base.len());
    let mut url = format!("{}/qoe", &base[..origin_end]);
    if let Some(t) = query.split('&').find(|p| p.starts_with("token=")) {
        url.push('?');
        url.push_str(t);
    }
    url
}

/// Sends the beacons it is given, in order, on its own connection; returns what became of
/// them when the sender is dropped.
pub fn spawn(
    url: String,
    version: HttpVersion,
    roots: Option<rustls::RootCertStore>,
) -> (
    mpsc::UnboundedSender<Beacon>,
    tokio::task::JoinHandle<BeaconStats>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Beacon>();
    let task = tokio::spawn(async move {
        let mut client = Client::new(version);
        if let Some(r) = roots {
            client.trust(r);
        }
        client.timeout = Duration::from_secs(5);
        let mut stats = BeaconStats::default();
        let headers = [("content-type", "application/json".to_string())];
        while let Some(b) = rx.recv().await {
            stats.sent += 1;
            match client.post(&url, &headers, Bytes::from(b.to_json())).await {
                Ok(s) if (200..300).contains(&s) => stats.accepted += 1,
                Ok(s) => stats.last_refusal = s,
                Err(_) => stats.last_refusal = 599,
            }
        }
        stats
    });
    (tx, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beacons_are_the_json_the_edge_expects() {
        let b = Beacon {
            event: "launch".into(),
            sid: "s\"1".into(),
            seq: 2,
            startup_ms: Some(800),
            watch_ms: Some(12_000),
            stalls: 1,
            stall_ms: 640,
            stall_events: vec![(5000, 640)],
            latency_ms: vec![700, 710],
            errors: vec![("fragLoadError".into(), false)],
            ended: true,
        };
        assert_eq!(
            b.to_json(),
            r#"{"v":1,"event":"launch","sid":"s\"1","seq":2,"startup_ms":800,"watch_ms":12000,"stalls":1,"stall_ms":640,"stall_events":[{"at_ms":5000,"dur_ms":640}],"latency_ms":[700,710],"errors":[{"code":"fragLoadError","fatal":false}],"ended":true}"#
        );
        assert_eq!(
            default_url("http://127.0.0.1:8081/live/ev/master.m3u8?token=abc&x=1"),
            "http://127.0.0.1:8081/qoe?token=abc"
        );
        assert_eq!(
            default_url("https://edge:1/live/ev/master.m3u8"),
            "https://edge:1/qoe"
        );
    }
}
