//! An event as operators schedule it: the record the control API, the scheduler and the
//! database share, with the rules every field follows.

use popcast_config::Access;
use std::fmt;

/// Longest title and creator name, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_CREATOR_CHARS: usize = 100;
/// Regions one event may be placed in.
pub const MAX_REGIONS: usize = 16;
/// Duration templates (minutes) the CLI and API offer; any whole number of minutes within
/// `MIN_DURATION_MINS..=MAX_DURATION_MINS` is accepted.
pub const DURATION_TEMPLATES_MINS: [u32; 4] = [15, 30, 60, 90];
pub const MIN_DURATION_MINS: u32 = 1;
pub const MAX_DURATION_MINS: u32 = 24 * 60;
pub const MAX_VIEWER_CAP: u32 = 1_000_000;

/// Where an event is in its life. Moves only forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventState {
    Scheduled,
    Provisioning,
    Live,
    Ending,
    Ended,
}

impl EventState {
    pub const ALL: [EventState; 5] = [
        Self::Scheduled,
        Self::Provisioning,
        Self::Live,
        Self::Ending,
        Self::Ended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Provisioning => "provisioning",
            Self::Live => "live",
            Self::Ending => "ending",
            Self::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether `self → next` is a move the lifecycle allows (forward, or staying put).
    pub fn can_become(self, next: EventState) -> bool {
        next >= self
    }
}

impl fmt::Display for EventState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub fn access_str(a: Access) -> &'static str {
    match a {
        Access::Public => "public",
        Access::Ticketed => "ticketed",
    }
}

pub fn parse_access(s: &str) -> Option<Access> {
    match s {
        "public" => Some(Access::Public),
        "ticketed" => Some(Access::Ticketed),
        _ => None,
    }
}

/// A field that breaks its rule, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {reason}")]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

fn field(field: &'static str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field,
        reason: reason.into(),
    }
}

/// An event record. The stream key is held only as its SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// URL-safe slug (`naming::check_name`), unique.
    pub id: String,
    pub title: String,
    pub creator: String,
    /// Unix seconds.
    pub start: i64,
    pub duration_mins: u32,
    pub regions: Vec<String>,
    pub viewer_cap: u32,
    pub ladder: String,
    pub access: Access,
    /// Whether the event appears in the public calendar (a ticketed event is usually listed:
    /// anyone may see it, only ticket holders may watch).
    pub listed: bool,
    pub state: EventState,
    /// Unix seconds at which a creator first went live, if ever: a creator's track record
    /// (events that did go live) lifts their daily event cap.
    pub live_at: Option<i64>,
    /// Where this event's lifecycle webhooks go instead of the deployment's receiver.
    pub webhook_url: Option<String>,
    pub key_hash: [u8; 32],
    /// Bumped on every change; an update naming an older version is refused (409).
    pub version: u64,
    pub created: i64,
    pub updated: i64,
}

impl EventRecord {
    /// Unix seconds at which the event is scheduled to end.
    pub fn end(&self) -> i64 {
        self.start + i64::from(self.duration_mins) * 60
    }

    /// Checks every field's rule; all failures, not just the first.
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        let mut errs = Vec::new();
        if let Err(e) = popcast_packager::naming::check_name("id", &self.id) {
            errs.push(field("id", e.to_string()));
        }
        let text = |name: &'static str, v: &str, max: usize, errs: &mut Vec<FieldError>| {
            let n = v.chars().count();
            if v.trim().is_empty() {
                errs.push(field(name, "empty"));
            } else if n > max {
                errs.push(field(name, format!("{n} characters, at most {max}")));
            } else if v.chars().any(char::is_control) {
                errs.push(field(name, "contains control characters"));
            }
        };
        text("title", &self.title, MAX_TITLE_CHARS, &mut errs);
        text("creator", &self.creator, MAX_CREATOR_CHARS, &mut errs);
        if !(MIN_DURATION_MINS..=MAX_DURATION_MINS).contains(&self.duration_mins) {
            errs.push(field(
                "duration_mins",
                format!(
                    "{} is outside {MIN_DURATION_MINS}..={MAX_DURATION_MINS} (templates: 15, 30, 60, 90)",
                    self.duration_mins
                ),
            ));
        }
        if self.regions.is_empty() {
            errs.push(field("regions", "at least one region"));
        } else if self.regions.len() > MAX_REGIONS {
            errs.push(field(
                "regions",
                format!("{} regions, at most {MAX_REGIONS}", self.regions.len()),
            ));
        }
        for r in &self.regions {
            if let Err(e) = popcast_packager::naming::check_name("region", r) {
                errs.push(field("regions", e.to_string()));
            }
        }
        if self.viewer_cap == 0 || self.viewer_cap > MAX_VIEWER_CAP {
            errs.push(field(
                "viewer_cap",
                format!("{} is outside 1..={MAX_VIEWER_CAP}", self.viewer_cap),
            ));
        }
        // Whether the deployment configures it is the API's to check.
        if let Err(e) = popcast_packager::naming::check_name("ladder", &self.ladder) {
            errs.push(field("ladder", e.to_string()));
        }
        if let Some(Err(e)) = self.webhook_url.as_deref().map(super::webhooks::Target::parse) {
            errs.push(field("webhook_url", e));
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }
}

#[cfg(test)]
pub(crate) fn sample(id: &str) -> EventRecord {
    EventRecord {
        id: id.into(),
        title: "Pop-up clinic: '; DROP TABLE events; --".into(),
        creator: "ana".into(),
        start: 1_800_000_000,
        duration_mins: 30,
        regions: vec!["eu-west".into(), "us-east".into()],
        viewer_cap: 500,
        ladder: "default".into(),
        access: Access::Ticketed,
        listed: true,
        state: EventState::Scheduled,
        live_at: None,
        webhook_url: Some("https://hooks.example/popcast?k=1".into()),
        key_hash: [7; 32],
        version: 1,
        created: 1_799_000_000,
        updated: 1_799_000_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_broken_field_is_named() {
        let mut r = sample("clinic");
        assert_eq!(r.check(), Ok(()));
        assert_eq!(r.end(), 1_800_000_000 + 30 * 60);
        r.id = "Bad Id".into();
        r.title = " ".into();
        r.creator = "x".repeat(101);
        r.duration_mins = 0;
        r.regions = vec!["EU".into()];
        r.viewer_cap = 0;
        r.ladder = String::new();
        r.webhook_url = Some("ftp://hooks.example/".into());
        let fields: Vec<&str> = r.check().unwrap_err().iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "id",
                "title",
                "creator",
                "duration_mins",
                "regions",
                "viewer_cap",
                "ladder",
                "webhook_url"
            ]
        );
    }

    #[test]
    fn states_move_forward_only() {
        assert!(EventState::Scheduled.can_become(EventState::Live));
        assert!(!EventState::Ended.can_become(EventState::Live));
        for s in EventState::ALL {
            assert_eq!(EventState::parse(s.as_str()), Some(s));
        }
        assert_eq!(EventState::parse("LIVE"), None);
    }
}
