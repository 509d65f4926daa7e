//! QoE beacons: what a player reports that CMCD does not carry (time to first frame, each
//! stall, live latency, errors, the end of the session), as small JSON bodies POSTed to an
//! edge's `/qoe`. Parsed strictly (wrong types and out-of-range values are refused with the
//! field named), so that a beacon is either applied whole or not at all.
//!
//! The body (all fields but `event` and `sid` optional; unknown fields are ignored so that
//! newer players work with older edges):
//! ```json
//! {"v":1, "event":"launch", "sid":"6e2f…", "seq":3,
//!  "startup_ms":812, "watch_ms":30000, "stalls":1, "stall_ms":640,
//!  "stall_events":[{"at_ms":12000,"dur_ms":640}],
//!  "latency_ms":[710,690], "errors":[{"code":"fragLoadError","fatal":false}],
//!  "ended":true}
//! ```
//! `watch_ms`, `stalls` and `stall_ms` are the session's running totals (from its first
//! frame), so a lost beacon loses nothing and a repeated one counts once.

use serde::Deserialize;

/// Bounds on a beacon.
#[derive(Debug, Clone, Copy)]
pub struct BeaconLimits {
    /// Body size, bytes.
    pub max_bytes: usize,
    /// Entries in `latency_ms`, `stall_events` and `errors` each.
    pub max_list: usize,
    /// The largest startup, latency or stall length believed, ms.
    pub max_ms: u64,
}

impl Default for BeaconLimits {
    fn default() -> Self {
        Self {
            max_bytes: 16 * 1024,
            max_list: 64,
            max_ms: 600_000,
        }
    }
}

/// One stall a player saw: where on its session clock it began, and how long it lasted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StallEvent {
    pub at_ms: u64,
    pub dur_ms: u64,
}

/// A player error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PlayerError {
    pub code: String,
    #[serde(default)]
    pub fatal: bool,
}

/// A parsed, checked beacon.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Beacon {
    #[serde(default)]
    pub v: Option<u32>,
    pub event: String,
    pub sid: String,
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(default)]
    pub startup_ms: Option<u64>,
    #[serde(default)]
    pub watch_ms: Option<u64>,
    #[serde(default)]
    pub stalls: Option<u64>,
    #[serde(default)]
    pub stall_ms: Option<u64>,
    #[serde(default)]
    pub stall_events: Vec<StallEvent>,
    #[serde(default)]
    pub latency_ms: Vec<u64>,
    #[serde(default)]
    pub errors: Vec<PlayerError>,
    #[serde(default)]
    pub ended: bool,
}

/// Why a beacon was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BeaconError {
    #[error("beacon of {len} bytes is over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("beacon is not valid JSON for its contract: {0}")]
    Json(String),
    #[error("beacon field {field}: {why}")]
    Field { field: &'static str, why: String },
}

impl BeaconError {
    /// The field at fault, when one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Field { field, .. } => Some(field),
            _ => None,
        }
    }
}

fn field(field: &'static str, why: impl Into<String>) -> BeaconError {
    BeaconError::Field {
        field,
        why: why.into(),
    }
}

/// Session ids and event names: 1 to 64 visible ASCII characters.
fn check_id(name: &'static str, v: &str) -> Result<(), BeaconError> {
    if v.is_empty() || v.len() > 64 || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(field(name, "must be 1 to 64 visible ASCII characters"));
    }
    Ok(())
}

impl Beacon {
    /// Parses and checks `body` against `limits` (values against the session clock are
    /// checked where the session is known, by the tracker).
    pub fn parse(body: &[u8], limits: &BeaconLimits) -> Result<Beacon, BeaconError> {
        if body.len() > limits.max_bytes {
            return Err(BeaconError::TooLarge {
                len: body.len(),
                max: limits.max_bytes,
            });
        }
        let b: Beacon = serde_json::from_slice(body).map_err(|e| BeaconError::Json(e.to_string()))?;
        if let Some(v) = b.v.filter(|v| *v != 1) {
            return Err(field("v", format!("version {v} is not known (1 is)")));
        }
        check_id("event", &b.event)?;
        check_id("sid", &b.sid)?;
        let ms = |name: &'static str, v: Option<u64>| match v {
            Some(v) if v > limits.max_ms => Err(field(
                name,
                format!("{v} ms is over the {} ms limit", limits.max_ms),
            )),
            _ => Ok(()),
        };
        ms("startup_ms", b.startup_ms)?;
        for (name, len) in [
            ("latency_ms", b.latency_ms.len()),
            ("stall_events", b.stall_events.len()),
            ("errors", b.errors.len()),
        ] {
            if len > limits.max_list {
                return Err(field(
                    name,
                    format!("{len} entries are over the limit of {}", limits.max_list),
                ));
            }
        }
        for l in &b.latency_ms {
            ms("latency_ms", Some(*l))?;
        }
        for s in &b.stall_events {
            ms("stall_events", Some(s.dur_ms))?;
        }
        if let (Some(st), Some(w)) = (b.stall_ms, b.watch_ms) {
            if st > w {
                return Err(field(
                    "stall_ms",
                    format!("{st} ms stalled is more than the {w} ms watched"),
                ));
            }
        }
        if b.stall_ms.is_some_and(|s| s > 0) && b.stalls == Some(0) {
            return Err(field("stalls", "0 stalls but a stalled time"));
        }
        for e in &b.errors {
            if e.code.is_empty() || e.code.len() > 64 {
                return Err(field("errors", "an error code must be 1 to 64 characters"));
            }
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Beacon, BeaconError> {
        Beacon::parse(s.as_bytes(), &BeaconLimits::default())
    }

    #[test]
    fn the_documented_body_parses() {
        let b = parse(r#"{"v":1,"event":"launch","sid":"6e2f","seq":3,"startup_ms":812,"watch_ms":30000,"stalls":1,"stall_ms":640,"stall_events":[{"at_ms":12000,"dur_ms":640}],"latency_ms":[710,690],"errors":[{"code":"fragLoadError","fatal":false}],"ended":true,"future_field":{"x":1}}"#).unwrap();
        assert_eq!(b.event, "launch");
        assert_eq!(
            (b.stalls, b.stall_ms, b.watch_ms),
            (Some(1), Some(640), Some(30000))
        );
        assert_eq!(
            b.stall_events,
            vec![StallEvent {
                at_ms: 12000,
                dur_ms: 640
            }]
        );
        assert!(b.ended);
        let minimal = parse(r#"{"event":"e","sid":"s"}"#).unwrap();
        assert_eq!(minimal.watch_ms, None);
    }

    #[test]
    fn garbage_is_refused_naming_the_problem() {
        for (body, want) in [
            ("", "not valid JSON"),
            ("[]", "not valid JSON"),
            (r#"{"sid":"s"}"#, "missing field `event`"),
            (r#"{"event":"e","sid":"s","watch_ms":"long"}"#, "invalid type"),
            (r#"{"event":"e","sid":"s","watch_ms":-1}"#, "invalid value"),
            (r#"{"event":"e","sid":"s","watch_ms":1e30}"#, "invalid type"),
            (
                r#"{"event":"e","sid":"s","watch_ms":184467440737095516150}"#,
                "not valid JSON",
            ),
            (r#"{"event":"e","sid":""}"#, "field sid"),
            (r#"{"event":"e e","sid":"s"}"#, "field event"),
            (r#"{"v":7,"event":"e","sid":"s"}"#, "field v"),
            (
                r#"{"event":"e","sid":"s","startup_ms":700000}"#,
                "field startup_ms",
            ),
            (
                r#"{"event":"e","sid":"s","watch_ms":10,"stall_ms":20,"stalls":1}"#,
                "field stall_ms",
            ),
            (
                r#"{"event":"e","sid":"s","stall_ms":20,"stalls":0}"#,
                "field stalls",
            ),
            (
                r#"{"event":"e","sid":"s","errors":[{"code":""}]}"#,
                "field errors",
            ),
            (
                r#"{"event":"e","sid":"s","stall_events":[{"at_ms":1}]}"#,
                "missing field `dur_ms`",
            ),
        ] {
            let e = parse(body).unwrap_err().to_string();
            assert!(e.contains(want), "{body}: {e}");
        }
        let many = format!(
            r#"{{"event":"e","sid":"s","latency_ms":[{}]}}"#,
            vec!["1"; 65].join(",")
        );
        assert_eq!(parse(&many).unwrap_err().field(), Some("latency_ms"));
        let big = format!(r#"{{"event":"e","sid":"s","pad":"{}"}}"#, "x".repeat(20_000));
        assert!(matches!(parse(&big), Err(BeaconError::TooLarge { .. })));
    }
}
