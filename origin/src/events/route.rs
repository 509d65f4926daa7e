//! `/play/{event}`: which edge a viewer watches an event from (the edges holding its slot,
//! the viewer's region first, then the least loaded), answered as a redirect to that edge's
//! playlist or as JSON with fallbacks for player SDKs.

use super::api::{ApiState, error, ok};
use crate::relay::EdgeStatus;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use popcast_packager::http::Reply;
use serde_json::{Value, json};

/// One place to watch from.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub node_id: String,
    pub region: String,
    /// The multivariant playlist's URL, with the viewer's token when there is one.
    pub url: String,
    /// Viewers ÷ capacity at the edge's last heartbeat.
    pub load: f64,
}

impl Choice {
    pub fn json(&self) -> Value {
        json!({
            "node_id": self.node_id,
            "region": self.region,
            "url": self.url,
            "load": (self.load * 1000.0).round() / 1000.0,
        })
    }
}

fn load(e: &EdgeStatus) -> f64 {
    if e.capacity_viewers == 0 {
        1.0
    } else {
        f64::from(e.viewers) / f64::from(e.capacity_viewers)
    }
}

/// The playlist URL of `event` under `base`, carrying `token`.
pub fn playlist_url(base: &str, event: &str, token: Option<&str>) -> String {
    let base = base.trim_end_matches('/');
    match token {
        Some(t) => format!("{base}/live/{event}/master.m3u8?token={t}"),
        None => format!("{base}/live/{event}/master.m3u8"),
    }
}

/// The edges that can serve `event`, best first: those in `region` (when given) before the
/// rest, edges with room before full ones, then by load, then by name (a stable order).
/// Edges without a slot for the event, or without a public URL, are left out.
pub fn rank(edges: &[EdgeStatus], event: &str, region: Option<&str>, token: Option<&str>) -> Vec<Choice> {
    let mut held: Vec<&EdgeStatus> = edges
        .iter()
        .filter(|e| e.events.contains(event) && !e.public_url.is_empty())
        .collect();
    held.sort_by(|a, b| {
        let key = |e: &EdgeStatus| {
            (
                region.is_some_and(|r| r != e.region),
                e.viewers >= e.capacity_viewers,
            )
        };
        key(a)
            .cmp(&key(b))
            .then(load(a).total_cmp(&load(b)))
            .then(a.node_id.cmp(&b.node_id))
    });
    held.into_iter()
        .map(|e| Choice {
            node_id: e.node_id.clone(),
            region: e.region.clone(),
            url: playlist_url(&e.public_url, event, token),
            load: load(e),
        })
        .collect()
}

/// Answers `/play/{event}`: 302 to the best place to watch (`json`: 200 with it and the
/// fallbacks). A ticketed event asks for a valid token here already (403 naming why), so
/// a viewer is not sent on to be refused. With no relay running the origin serves viewers
/// itself; with one, only edges do, and an event no edge holds yet gets 503 with when to
/// come back, an ended one 410.
pub fn play(
    api: &ApiState,
    event: &str,
    region: Option<&str>,
    json: bool,
    headers: &HeaderMap,
    query: &str,
) -> Reply {
    let Some(live) = api.events.get(event) else {
        return error(StatusCode::NOT_FOUND, "not found", format!("no event {event:?}"));
    };
    let token = match live.admit_viewer(headers, query) {
        Ok(t) => t,
        Err(why) => return error(StatusCode::FORBIDDEN, "forbidden", why),
    };
    let choices = match api.edges.get() {
        None => vec![Choice {
            node_id: "origin".into(),
            region: "origin".into(),
            url: playlist_url(&api.public_url, event, token.as_deref()),
            load: 0.0,
        }],
        Some(view) => rank(&view.list(), event, region, token.as_deref()),
    };
    let Some(primary) = choices.first() else {
        let now = (api.now)();
        let schedule = live.schedule();
        if live.is_ended() || schedule.as_ref().is_some_and(|s| now >= s.end) {
            return error(StatusCode::GONE, "ended", format!("event {event:?} has ended"));
        }
        let lead = i64::try_from(api.defaults.provision_lead_secs).unwrap_or(i64::MAX);
        let (wait, detail) = match &schedule {
            Some(s) if now < s.start - lead => (
                (s.start - lead - now).clamp(1, 3600),
                format!(
                    "event {event:?} starts at {}; edges get it from {}",
                    super::api::rfc3339(s.start),
                    super::api::rfc3339(s.start - lead)
                ),
            ),
            _ => (2, format!("no edge holds event {event:?} yet: try again shortly")),
        };
        // `starts_at` lets a player show when to come back.
        let starts_at = schedule.as_ref().map(|s| super::api::rfc3339(s.start));
        let mut r = ok(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": "not provisioned", "detail": detail, "starts_at": starts_at }),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return r;
    };
    if json {
        return ok(
            StatusCode::OK,
            json!({
                "event": event,
                "region": region,
                "primary": primary.json(),
                "fallbacks": choices[1..].iter().map(Choice::json).collect::<Vec<_>>(),
            }),
        );
    }
    let mut r = ok(StatusCode::FOUND, json!({ "location": primary.url }));
    match HeaderValue::from_str(&primary.url) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
            r
        }
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "bad edge url",
            format!(
                "edge {:?} announced a URL that is not a header value",
                primary.node_id
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(id: &str, region: &str, viewers: u32, capacity: u32, events: &[&str]) -> EdgeStatus {
        EdgeStatus {
            node_id: id.into(),
            region: region.into(),
            capacity_viewers: capacity,
            public_url: format!("https://{id}.example/"),
            events: events.iter().map(|e| e.to_string()).collect(),
            remote: "127.0.0.1:1".parse().unwrap(),
            viewers,
            slots: events.len() as u32,
            bytes_held: 0,
            connections: 1,
        }
    }

    fn ids(c: &[Choice]) -> Vec<&str> {
        c.iter().map(|c| c.node_id.as_str()).collect()
    }

    #[test]
    fn the_viewers_region_first_then_room_then_load() {
        let edges = [
            edge("us-1", "us-east", 10, 100, &["clinic"]),
            edge("eu-busy", "eu-west", 90, 100, &["clinic"]),
            edge("eu-calm", "eu-west", 5, 100, &["clinic"]),
            edge("eu-full", "eu-west", 100, 100, &["clinic"]),
            edge("eu-other", "eu-west", 0, 100, &["other-event"]),
        ];
        let r = rank(&edges, "clinic", Some("eu-west"), None);
        assert_eq!(ids(&r), ["eu-calm", "eu-busy", "eu-full", "us-1"]);
        assert_eq!(r[0].url, "https://eu-calm.example/live/clinic/master.m3u8");
        // No region: by room and load alone.
        assert_eq!(
            ids(&rank(&edges, "clinic", None, None)),
            ["eu-calm", "us-1", "eu-busy", "eu-full"]
        );
        // A region with no edge for the event: the others still serve.
        assert_eq!(ids(&rank(&edges, "clinic", Some("ap-south"), None))[0], "eu-calm");
        assert!(rank(&edges, "nothing", None, None).is_empty());
    }

    #[test]
    fn the_token_rides_along_and_edges_without_a_url_are_skipped() {
        let mut quiet = edge("no-url", "eu-west", 0, 100, &["clinic"]);
        quiet.public_url.clear();
        let edges = [quiet, edge("eu-1", "eu-west", 1, 100, &["clinic"])];
        let r = rank(&edges, "clinic", Some("eu-west"), Some("v1.abc.def"));
        assert_eq!(ids(&r), ["eu-1"]);
        assert_eq!(
            r[0].url,
            "https://eu-1.example/live/clinic/master.m3u8?token=v1.abc.def"
        );
        assert_eq!(r[0].json()["load"], 0.01);
    }
}
