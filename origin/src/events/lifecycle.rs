//! Moves scheduled events through their lifecycle, once a second:
//! `scheduled → provisioning → live → ending → ended`.
//!
//! - **provisioning** from the provisioning lead time before the start (edges in the
//!   event's regions get its slot then; see the relay's placement);
//! - **live** as soon as a creator publishes (early, even, within the lead time);
//! - **ending** once the scheduled end has passed while live (the creator is wrapping up);
//! - **ended** when the creator has not published for the reconnect grace window
//!   (`events.reconnect_grace_secs`) after the end, at the end plus the release grace
//!   period at the latest, or at the end when nobody ever published.

use super::api::ApiState;
use super::record::{EventRecord, EventState};
use crate::live::SourceKind;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// What the scheduler knows of an event at `now` besides its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// A creator is publishing now.
    pub publishing: bool,
    /// A creator published at some point.
    pub ever_published: bool,
    /// Seconds since a creator last published (0 while one does): a creator may come back
    /// within the reconnect grace window and resume the session.
    pub quiet_secs: i64,
}

/// The windows `next_state` works with, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    pub lead: i64,
    /// The hard stop after the scheduled end.
    pub release_grace: i64,
    /// How long a creator's absence after the scheduled end is waited out.
    pub reconnect_grace: i64,
}

/// The state an event should be in (never behind the one it is in).
pub fn next_state(r: &EventRecord, seen: Observed, now: i64, w: Windows) -> EventState {
    let (lead_secs, grace_secs) = (w.lead, w.release_grace);
    use EventState::*;
    let end = r.end();
    let next = match r.state {
        Ended => Ended,
        Scheduled | Provisioning if seen.publishing => Live,
        Scheduled | Provisioning if now >= end && !seen.ever_published => Ended,
        Scheduled if now >= r.start - lead_secs => Provisioning,
        Live if now >= end => Ending,
        Ending if (!seen.publishing && seen.quiet_secs >= w.reconnect_grace) || now >= end + grace_secs => {
            Ended
        }
        s => s,
    };
    next.max(r.state)
}

/// Runs the lifecycle until the task is dropped.
/// What the lifecycle remembers of an event's publisher between ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublisherSeen {
    /// A publisher was connected and sending frames.
    pub sending: bool,
    /// Sources attached since the origin started (a rise while sending: a takeover).
    pub sources: u64,
    /// A publisher was seen sending at some point (a later one resumes the session).
    pub once: bool,
}

/// The publisher moments since the last tick, `(type, reason)`, given whether a publisher is
/// connected now, whether it sent a frame within the inactivity time, and the sources count.
pub fn publisher_moments(
    prev: Option<PublisherSeen>,
    connected: bool,
    active: bool,
    sources: u64,
) -> (PublisherSeen, Vec<(&'static str, Option<&'static str>)>) {
    let prev = prev.unwrap_or(PublisherSeen {
        sending: false,
        sources,
        once: false,
    });
    let present = connected && active;
    let mut out = Vec::new();
    match (prev.sending, present) {
        (false, true) => out.push((
            if prev.once {
                "publisher.resumed"
            } else {
                "publisher.connected"
            },
            None,
        )),
        (true, false) => out.push((
            "publisher.lost",
            Some(if connected { "inactivity" } else { "disconnect" }),
        )),
        (true, true) if sources > prev.sources => {
            out.push(("publisher.lost", Some("replaced")));
            out.push(("publisher.resumed", None));
        }
        _ => {}
    }
    let now = PublisherSeen {
        sending: present,
        sources,
        once: prev.once || present,
    };
    (now, out)
}

pub async fn run(state: Arc<ApiState>) {
    let lead = i64::try_from(state.defaults.provision_lead_secs).unwrap_or(i64::MAX / 4);
    let grace = i64::try_from(state.defaults.release_grace_secs).unwrap_or(i64::MAX / 4);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let inactivity = Duration::from_millis(state.defaults.publisher_inactivity_ms);
    let mut publishers: HashMap<String, PublisherSeen> = HashMap::new();
    let windows = Windows {
        lead,
        release_grace: grace,
        reconnect_grace: i64::try_from(state.defaults.reconnect_grace_secs).unwrap_or(i64::MAX / 4),
    };
    // When each event's creator was last seen publishing: a monotonic instant, so that a
    // step of the machine's clock neither shortens nor lengthens a creator's grace window.
    let mut last_published: HashMap<String, std::time::Instant> = HashMap::new();
    loop {
        tick.tick().await;
        let now = (state.now)();
        let records = match state.db.list(None, None) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "lifecycle: cannot read events");
                continue;
            }
        };
        for r in records.iter().filter(|r| r.state != EventState::Ended) {
            let Some(live) = state.events.get(&r.id) else {
                continue;
            };
            let status = live.status().borrow().clone();
            let publishing = matches!(status.source, Some(SourceKind::Publisher { .. }));
            let mono = std::time::Instant::now();
            if publishing {
                last_published.insert(r.id.clone(), mono);
            }
            let quiet = mono.duration_since(*last_published.entry(r.id.clone()).or_insert(mono));
            let seen = Observed {
                publishing,
                ever_published: status.sources > 0,
                // Not seen since this origin started: counted from now.
                quiet_secs: i64::try_from(quiet.as_secs()).unwrap_or(i64::MAX),
            };
            if live.is_ended() {
                // Ended by the operator meanwhile (its moments are sent there).
                continue;
            }
            let next = next_state(r, seen, now, windows);
            // The state change is stored first, so that a failing database does not repeat
            // moments; they then go in order: provisioned (also when a creator went live
            // before the lead time had come), publisher moments, live or ended.
            let advanced = if next == r.state {
                None
            } else {
                match state.db.advance_state(&r.id, next, now) {
                    Ok(updated) => Some(updated),
                    Err(e) => {
                        tracing::warn!(event = %r.id, error = %e, "lifecycle: state not advanced");
                        None
                    }
                }
            };
            // A provisioned event plays the slate until its creator's media arrives.
            #[cfg(feature = "ladder")]
            if state.slate.enabled
                && matches!(
                    next,
                    EventState::Provisioning | EventState::Live | EventState::Ending
                )
                && live.begin_slate()
            {
                tokio::spawn(crate::slate::run(
                    Arc::downgrade(&live),
                    state.slate.clone(),
                    crate::slate::SlateText {
                        title: r.title.clone(),
                        start: r.start,
                    },
                    inactivity,
                    state.now,
                ));
            }
            let hooks = &state.webhooks;
            if advanced.is_some() && r.state == EventState::Scheduled && next != EventState::Ended {
                let start = super::api::rfc3339(r.start);
                hooks.emit(&r.id, "event.provisioned", json!({ "start": start }));
            }
            let source = status.source.as_ref().map(|s| s.to_string());
            // Inactivity is read from the media: no frame for the configured time.
            let active = live.since_last_frame().is_some_and(|d| d < inactivity);
            let (seen_now, moments) = publisher_moments(
                publishers.get(&r.id).copied(),
                seen.publishing,
                active,
                status.sources,
            );
            for (kind, reason) in moments {
                let data = match reason {
                    // A drop an operator caused is a kick.
                    Some("disconnect") if live.was_kicked() => json!({ "reason": "kicked" }),
                    Some(why) => json!({ "reason": why }),
                    None => json!({ "source": source }),
                };
                hooks.emit(&r.id, kind, data);
            }
            publishers.insert(r.id.clone(), seen_now);
            let Some(updated) = advanced else {
                continue;
            };
            tracing::info!(event = %r.id, from = %r.state, to = %next, "event state");
            let data = json!({ "from": r.state.as_str(), "to": next.as_str() });
            match next {
                EventState::Live => hooks.emit(&r.id, "event.live", data),
                EventState::Ended => {
                    // The hard stop at the end plus grace disconnects a creator still sending.
                    if seen_now.sending {
                        hooks.emit(&r.id, "publisher.lost", json!({ "reason": "ended" }));
                    }
                    hooks.emit(&r.id, "event.ended", data);
                    publishers.remove(&r.id);
                    last_published.remove(&r.id);
                    live.end();
                    if let Err(e) = state.sync(&live, &updated) {
                        tracing::warn!(event = %r.id, error = %e, "lifecycle: ended event not synced");
                    }
                    state.events.touch();
                    // Edges drop the slot once the event is no longer announced.
                    hooks.emit(&r.id, "slots.released", json!({ "regions": updated.regions }));
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::record::sample;
    use EventState::*;

    const LEAD: i64 = 120;
    const GRACE: i64 = 300;
    const RECONNECT: i64 = 60;

    fn quiet(state: EventState, publishing: bool, ever: bool, now: i64, quiet_secs: i64) -> EventState {
        // sample: start 1_800_000_000, 30 minutes.
        let mut r = sample("e");
        r.state = state;
        let seen = Observed {
            publishing,
            ever_published: ever || publishing,
            quiet_secs,
        };
        let w = Windows {
            lead: LEAD,
            release_grace: GRACE,
            reconnect_grace: RECONNECT,
        };
        next_state(&r, seen, now, w)
    }

    fn at(state: EventState, publishing: bool, ever: bool, now: i64) -> EventState {
        quiet(
            state,
            publishing,
            ever,
            now,
            if publishing { 0 } else { RECONNECT },
        )
    }

    #[test]
    fn an_event_moves_through_its_states_on_time() {
        let start = 1_800_000_000;
        let end = start + 1_800;
        assert_eq!(at(Scheduled, false, false, start - LEAD - 1), Scheduled);
        assert_eq!(at(Scheduled, false, false, start - LEAD), Provisioning);
        assert_eq!(at(Provisioning, true, true, start - 30), Live, "early is fine");
        assert_eq!(
            at(Live, false, true, start + 60),
            Live,
            "a reconnect gap stays live"
        );
        assert_eq!(at(Live, true, true, end), Ending);
        assert_eq!(at(Ending, true, true, end + 60), Ending, "wrapping up");
        assert_eq!(at(Ending, false, true, end + 60), Ended, "the creator stopped");
        assert_eq!(
            quiet(Ending, false, true, end + 60, RECONNECT - 1),
            Ending,
            "a creator gone for less than the reconnect grace may still come back"
        );
        assert_eq!(
            quiet(Live, false, true, end, 45),
            Ending,
            "a gap across the scheduled end"
        );
        assert_eq!(at(Ending, true, true, end + GRACE), Ended, "the hard stop");
    }

    #[test]
    fn publisher_moments_follow_connects_silences_takeovers_and_drops() {
        let step = |prev: Option<PublisherSeen>, connected, active, sources| {
            publisher_moments(prev, connected, active, sources)
        };
        let (s, m) = step(None, false, false, 0);
        assert!(m.is_empty());
        let (s, m) = step(Some(s), true, true, 1);
        assert_eq!(m, [("publisher.connected", None)]);
        // Connected but silent past the inactivity time: lost, once.
        let (s, m) = step(Some(s), true, false, 1);
        assert_eq!(m, [("publisher.lost", Some("inactivity"))]);
        let (s, m) = step(Some(s), false, false, 1);
        assert!(m.is_empty(), "the drop after a silence is not a second loss");
        let (s, m) = step(Some(s), true, true, 2);
        assert_eq!(m, [("publisher.resumed", None)]);
        // Another publisher takes over between ticks.
        let (s, m) = step(Some(s), true, true, 3);
        assert_eq!(
            m,
            [("publisher.lost", Some("replaced")), ("publisher.resumed", None)]
        );
        let (_, m) = step(Some(s), false, false, 3);
        assert_eq!(m, [("publisher.lost", Some("disconnect"))]);
    }

    #[test]
    fn an_event_nobody_publishes_to_ends_at_its_end_and_states_never_go_back() {
        let end = 1_800_000_000 + 1_800;
        assert_eq!(at(Provisioning, false, false, end - 1), Provisioning);
        assert_eq!(at(Provisioning, false, false, end), Ended);
        assert_eq!(at(Scheduled, false, false, end), Ended);
        assert_eq!(at(Ended, true, true, end), Ended);
        assert_eq!(at(Live, false, true, 0), Live);
    }
}
