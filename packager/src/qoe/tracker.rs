//! One event's viewing sessions on one edge, keyed by CMCD/beacon session id, and the
//! running [`Report`] they add up to. Claims are held to the edge's own clock (a session
//! cannot have watched longer than it has existed), so a lying or broken player skews only
//! its own session, within bounds. Session ids are not authenticated on public events: a
//! client that invents ids can add invented sessions, up to the table's bound.

use super::beacon::{Beacon, BeaconError, BeaconLimits};
use super::cmcd::Cmcd;
use super::{ErrorCause, Report};
use std::collections::HashMap;

/// Limits and thresholds of the tracker (config `[qoe]`).
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// A session with no request and no beacon for this long has ended.
    pub idle_ms: u64,
    /// Watch time from which a clean session counts in the success rate.
    pub qualify_ms: u64,
    /// Sessions tracked per event; more are counted as `untracked`.
    pub max_sessions: usize,
    /// Beacons a session may send per minute; more are refused (429).
    pub beacons_per_minute: u32,
    /// How far a session's reported watch time may exceed the time the edge has known it
    /// (a player's first beacon may come a little after its first frame).
    pub watch_slack_ms: u64,
    pub beacon: BeaconLimits,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            idle_ms: 30_000,
            qualify_ms: 10_000,
            max_sessions: 50_000,
            beacons_per_minute: 60,
            watch_slack_ms: 30_000,
            beacon: BeaconLimits::default(),
        }
    }
}

impl TrackerConfig {
    /// From the `[qoe]` section.
    pub fn from_config(q: &popcast_config::QoeConfig) -> Self {
        Self {
            idle_ms: q.session_idle_secs.saturating_mul(1000),
            qualify_ms: q.qualify_secs.saturating_mul(1000),
            max_sessions: q.max_sessions_per_event as usize,
            beacons_per_minute: q.beacons_per_minute,
            watch_slack_ms: 30_000,
            beacon: BeaconLimits {
                max_bytes: q.max_beacon_bytes as usize,
                ..BeaconLimits::default()
            },
        }
    }
}

/// Why a beacon was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(transparent)]
    Invalid(#[from] BeaconError),
    /// 429.
    #[error("session {0:?} sent more than {1} beacons in a minute")]
    RateLimited(String, u32),
    /// 503: the event's session table is full.
    #[error("this event tracks no more sessions on this edge")]
    Full,
}

#[derive(Debug, Clone, Default)]
struct Session {
    first_ms: u64,
    last_ms: u64,
    /// Reports by beacon: its figures are the truth, CMCD's guesses are not used.
    beacons: bool,
    /// Edge clock at the first frame (CMCD), or `first_ms` for a beacon session.
    playing_from: Option<u64>,
    startup_ms: Option<u64>,
    stalls: u64,
    stall_ms: u64,
    watch_ms: u64,
    /// The previous CMCD request carried `bs`.
    starved: bool,
    ended: bool,
    last_seq: Option<u64>,
    last_stall_at: Option<u64>,
    window_start: u64,
    window_count: u32,
}

impl Session {
    fn playing(&self) -> bool {
        self.playing_from.is_some()
    }

    /// Takes back what [`Session::add_to`] added to `r` as an ended session.
    fn remove_from(&self, r: &mut Report, qualify_ms: u64) {
        r.sessions_started = r.sessions_started.saturating_sub(1);
        r.sessions_ended = r.sessions_ended.saturating_sub(1);
        if self.playing() {
            r.sessions_playing = r.sessions_playing.saturating_sub(1);
            if let Some(s) = self.startup_ms {
                r.startup.remove(s);
            }
            r.watch_ms = r.watch_ms.saturating_sub(self.watch_ms);
            r.stalls = r.stalls.saturating_sub(self.stalls);
            r.stall_ms = r.stall_ms.saturating_sub(self.stall_ms);
            if self.watch_ms >= qualify_ms || self.stalls > 0 {
                r.qualified = r.qualified.saturating_sub(1);
                if self.stalls == 0 {
                    r.clean = r.clean.saturating_sub(1);
                }
            }
        } else {
            r.never_started = r.never_started.saturating_sub(1);
        }
    }

    /// Adds this session to `r`; `ended` when it is over (also by going idle).
    fn add_to(&self, r: &mut Report, qualify_ms: u64, ended: bool) {
        r.sessions_started += 1;
        if self.playing() {
            r.sessions_playing += 1;
            if let Some(s) = self.startup_ms {
                r.startup.add(s);
            }
            r.watch_ms = r.watch_ms.saturating_add(self.watch_ms);
            r.stalls = r.stalls.saturating_add(self.stalls);
            r.stall_ms = r.stall_ms.saturating_add(self.stall_ms);
            if self.watch_ms >= qualify_ms || self.stalls > 0 {
                r.qualified += 1;
                if self.stalls == 0 {
                    r.clean += 1;
                }
            }
        }
        if ended {
            r.sessions_ended += 1;
            if !self.playing() {
                r.never_started += 1;
            }
        } else {
            r.viewers_now += 1;
        }
    }
}

/// The sessions of one event on one edge.
#[derive(Debug, Default)]
pub struct Tracker {
    cfg: TrackerConfig,
    sessions: HashMap<String, Session>,
    /// Sessions folded into `done` after going idle, kept a while (when folded, by sid): a
    /// player back from a long stall or a late final beacon re-opens its session instead of
    /// counting as a new viewer.
    folded: HashMap<String, (u64, Session)>,
    /// Sessions that are over, request-level counts, and every per-sample histogram.
    done: Report,
}

impl Tracker {
    pub fn new(cfg: TrackerConfig) -> Self {
        Self {
            cfg,
            sessions: HashMap::new(),
            folded: HashMap::new(),
            done: Report::default(),
        }
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.cfg
    }

    /// The session `sid`, made at `now` when new; `None` when the table is full.
    fn session(&mut self, sid: &str, now: u64) -> Option<&mut Session> {
        if !self.sessions.contains_key(sid) && self.sessions.len() < self.cfg.max_sessions {
            if let Some((_, s)) = self.folded.remove(sid) {
                s.remove_from(&mut self.done, self.cfg.qualify_ms);
                self.sessions.insert(sid.to_string(), s);
            }
        }
        if !self.sessions.contains_key(sid) {
            if self.sessions.len() >= self.cfg.max_sessions {
                self.done.untracked += 1;
                return None;
            }
            self.sessions.insert(
                sid.to_string(),
                Session {
                    first_ms: now,
                    last_ms: now,
                    window_start: now,
                    ..Default::default()
                },
            );
        }
        self.sessions.get_mut(sid)
    }

    /// One viewer request at `now` with its CMCD, answered with `status`.
    pub fn request(&mut self, now: u64, cmcd: &Cmcd, status: u16) {
        self.done.requests += 1;
        self.done.cmcd_malformed += u64::from(cmcd.malformed);
        if let Some(c) = ErrorCause::of(status) {
            self.done.errors[c as usize] += 1;
        }
        let media = cmcd
            .ot
            .is_some_and(|o| o.is_video() || o == super::cmcd::ObjectType::Audio);
        if cmcd.ot.is_some_and(|o| o.is_video()) && status < 400 {
            if let Some(br) = cmcd.br {
                self.done.bitrate.add(br);
            }
            if let Some(mtp) = cmcd.mtp {
                self.done.throughput.add(mtp);
            }
            if let Some(bl) = cmcd.bl {
                self.done.buffer.add(bl);
            }
        }
        // A refused request (no valid token, say) opens or refreshes no session.
        let Some(sid) = cmcd.sid.as_ref().filter(|_| status < 400) else {
            return;
        };
        let Some(s) = self.session(sid, now) else { return };
        s.last_ms = s.last_ms.max(now);
        if s.ended || s.beacons {
            return;
        }
        // CMCD alone: the first media object fetched without `su` means playback began.
        if !s.playing() && media && !cmcd.su {
            s.playing_from = Some(now);
            s.startup_ms = Some(now.saturating_sub(s.first_ms));
        }
        if let Some(from) = s.playing_from {
            if cmcd.bs && !s.starved {
                s.stalls += 1;
            }
            s.watch_ms = s.watch_ms.max(now.saturating_sub(from));
        }
        s.starved = cmcd.bs;
    }

    /// A beacon that failed to parse (counted; nothing else changes).
    pub fn refused_beacon(&mut self) {
        self.done.beacons_refused += 1;
    }

    /// Applies a parsed beacon at `now`, or refuses it whole.
    pub fn beacon(&mut self, now: u64, b: &Beacon) -> Result<(), Refused> {
        let r = self.apply(now, b);
        match &r {
            Ok(()) => self.done.beacons += 1,
            Err(_) => self.done.beacons_refused += 1,
        }
        r
    }

    fn apply(&mut self, now: u64, b: &Beacon) -> Result<(), Refused> {
        let cfg = self.cfg.clone();
        // Everything is checked before anything changes: a refused beacon leaves no trace
        // (not even a new session).
        let known = self
            .sessions
            .get(&b.sid)
            .or_else(|| self.folded.get(&b.sid).map(|(_, s)| s));
        let (first_ms, known_watch, ended) = match known {
            Some(s) => (s.first_ms, if s.beacons { s.watch_ms } else { 0 }, s.ended),
            None => (now, 0, false),
        };
        if let Some(s) = self.sessions.get_mut(&b.sid) {
            if now.saturating_sub(s.window_start) >= 60_000 {
                s.window_start = now;
                s.window_count = 0;
            }
            // Refused beacons count against the rate too (a flood is a flood).
            s.window_count += 1;
            if s.window_count > cfg.beacons_per_minute {
                return Err(Refused::RateLimited(b.sid.clone(), cfg.beacons_per_minute));
            }
        }
        if ended {
            // A repeated final beacon.
            if let Some(s) = self.sessions.get_mut(&b.sid) {
                s.last_ms = s.last_ms.max(now);
            }
            return Ok(());
        }
        let age = now.saturating_sub(first_ms) + cfg.watch_slack_ms;
        let field = |field: &'static str, why: String| Refused::Invalid(BeaconError::Field { field, why });
        if let Some(w) = b.watch_ms.filter(|w| *w > age) {
            return Err(field(
                "watch_ms",
                format!("{w} ms is more than this session can have watched ({age} ms)"),
            ));
        }
        let watch = b.watch_ms.unwrap_or(0).max(known_watch);
        if let Some(n) = b.stalls.filter(|n| *n > 1 + watch / 100) {
            return Err(field("stalls", format!("{n} stalls in {watch} ms watched")));
        }
        if let Some(st) = b.stall_ms.filter(|st| *st > watch) {
            return Err(field(
                "stall_ms",
                format!("{st} ms stalled in {watch} ms watched"),
            ));
        }
        let new = !self.sessions.contains_key(&b.sid);
        let s = self.session(&b.sid, now).ok_or(Refused::Full)?;
        if new {
            s.window_count = 1;
        }
        s.last_ms = s.last_ms.max(now);
        let fresh = match (b.seq, s.last_seq) {
            (Some(n), Some(last)) => n > last,
            _ => true,
        };
        let timing = b.watch_ms.is_some() || b.startup_ms.is_some();
        if !s.beacons && timing {
            // From now on beacons are the truth; what CMCD guessed is dropped. (A beacon
            // with only samples or errors leaves CMCD's figures alone.)
            s.beacons = true;
            s.stalls = 0;
            s.stall_ms = 0;
            s.watch_ms = 0;
            if b.startup_ms.is_some() {
                s.startup_ms = None;
                s.playing_from = None;
            }
        }
        if b.startup_ms.is_some() || b.watch_ms.is_some_and(|w| w > 0) {
            s.playing_from.get_or_insert(s.first_ms);
            if s.startup_ms.is_none() {
                s.startup_ms = b.startup_ms;
            }
        }
        if s.beacons {
            s.watch_ms = watch;
            s.stalls = s.stalls.max(b.stalls.unwrap_or(0));
            s.stall_ms = s.stall_ms.max(b.stall_ms.unwrap_or(0));
        }
        if b.ended {
            s.ended = true;
        }
        if !fresh {
            return Ok(());
        }
        s.last_seq = b.seq.or(s.last_seq);
        let mut new_stalls = Vec::new();
        for e in &b.stall_events {
            if s.last_stall_at.is_none_or(|at| e.at_ms > at) {
                s.last_stall_at = Some(e.at_ms);
                new_stalls.push(e.dur_ms);
            }
        }
        for d in new_stalls {
            self.done.stall_len.add(d);
        }
        for l in &b.latency_ms {
            self.done.latency.add(*l);
        }
        self.done.player_errors += b.errors.len() as u64;
        Ok(())
    }

    /// Ends sessions idle since before `now - idle`, folding them into the totals.
    pub fn sweep(&mut self, now: u64) {
        let idle = self.cfg.idle_ms;
        let qualify = self.cfg.qualify_ms;
        let done = &mut self.done;
        let folded = &mut self.folded;
        self.sessions.retain(|sid, s| {
            if now.saturating_sub(s.last_ms) < idle {
                return true;
            }
            s.add_to(done, qualify, true);
            folded.insert(sid.clone(), (now, std::mem::take(s)));
            false
        });
        // Folded sessions are remembered for 20 idle periods (10 min by default), and at
        // most as many as the table holds.
        let keep = idle.saturating_mul(20);
        self.folded.retain(|_, (at, _)| now.saturating_sub(*at) < keep);
        while self.folded.len() > self.cfg.max_sessions {
            let Some(oldest) = self
                .folded
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.folded.remove(&oldest);
        }
    }

    /// The running report at `now` (after a sweep), with `connections` as given.
    pub fn report(&mut self, now: u64, connections: u64) -> Report {
        self.sweep(now);
        let mut r = self.done.clone();
        for s in self.sessions.values() {
            s.add_to(&mut r, self.cfg.qualify_ms, s.ended);
        }
        r.connections = connections;
        r
    }

    /// Sessions tracked now (ended ones stay until idle, so that repeats count once).
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qoe::cmcd::{CmcdLimits, ObjectType};

    fn cmcd(sid: &str, ot: ObjectType, su: bool, bs: bool) -> Cmcd {
        Cmcd {
            sid: Some(sid.into()),
            ot: Some(ot),
            su,
            bs,
            br: Some(3000),
            present: true,
            ..Default::default()
        }
    }

    fn beacon(json: &str) -> Beacon {
        Beacon::parse(json.as_bytes(), &BeaconLimits::default()).unwrap()
    }

    #[test]
    fn beacon_sessions_add_up_to_the_success_rate_the_players_saw() {
        let mut t = Tracker::new(TrackerConfig::default());
        // a: clean, 20 s. b: one stall of 800 ms. c: never started. d: clean but 4 s.
        t.beacon(0, &beacon(r#"{"event":"e","sid":"a","seq":1,"startup_ms":700}"#))
            .unwrap();
        t.beacon(0, &beacon(r#"{"event":"e","sid":"b","seq":1,"startup_ms":900}"#))
            .unwrap();
        t.request(0, &cmcd("c", ObjectType::Manifest, true, false), 200);
        t.beacon(0, &beacon(r#"{"event":"e","sid":"d","startup_ms":500}"#))
            .unwrap();
        t.beacon(5_000, &beacon(r#"{"event":"e","sid":"b","seq":2,"watch_ms":5000,"stalls":1,"stall_ms":800,"stall_events":[{"at_ms":3000,"dur_ms":800}]}"#)).unwrap();
        // A repeat of b's beacon changes nothing.
        t.beacon(5_100, &beacon(r#"{"event":"e","sid":"b","seq":2,"watch_ms":5000,"stalls":1,"stall_ms":800,"stall_events":[{"at_ms":3000,"dur_ms":800}]}"#)).unwrap();
        t.beacon(
            4_000,
            &beacon(r#"{"event":"e","sid":"d","watch_ms":4000,"ended":true}"#),
        )
        .unwrap();
        t.beacon(20_000, &beacon(r#"{"event":"e","sid":"a","seq":2,"watch_ms":20000,"stalls":0,"latency_ms":[700,720],"ended":true}"#)).unwrap();
        t.beacon(
            20_000,
            &beacon(
                r#"{"event":"e","sid":"b","seq":3,"watch_ms":20000,"stalls":1,"stall_ms":800,"ended":true}"#,
            ),
        )
        .unwrap();
        let r = t.report(20_000, 3);
        assert_eq!(r.sessions_started, 4);
        assert_eq!(r.sessions_playing, 3);
        assert_eq!((r.qualified, r.clean), (2, 1));
        assert_eq!(r.success_rate(), Some(0.5));
        assert_eq!((r.stalls, r.stall_ms, r.watch_ms), (1, 800, 44_000));
        assert_eq!(r.stall_len.count(), 1);
        assert_eq!(r.latency.count(), 2);
        assert_eq!(r.startup.count(), 3);
        assert_eq!((r.sessions_ended, r.viewers_now, r.connections), (3, 1, 3));
        // c goes idle without playing: a startup failure, outside the rate.
        let r = t.report(60_000, 0);
        assert_eq!((r.sessions_ended, r.never_started, r.viewers_now), (4, 1, 0));
        assert_eq!(r.success_rate(), Some(0.5));
        assert_eq!(t.sessions(), 0);
        // Folding changed no figure.
        assert_eq!(t.report(61_000, 0).watch_ms, 44_000);
    }

    #[test]
    fn cmcd_alone_gives_startup_stalls_and_watch_time() {
        let mut t = Tracker::new(TrackerConfig::default());
        t.request(0, &cmcd("s", ObjectType::Manifest, true, false), 200);
        t.request(300, &cmcd("s", ObjectType::Video, true, false), 200);
        t.request(600, &cmcd("s", ObjectType::Video, false, false), 200);
        t.request(5_000, &cmcd("s", ObjectType::Video, false, true), 200);
        t.request(5_200, &cmcd("s", ObjectType::Video, false, true), 200); // the same stall
        t.request(12_600, &cmcd("s", ObjectType::Video, false, false), 200);
        t.request(12_700, &cmcd("s", ObjectType::Video, false, false), 404);
        let r = t.report(13_000, 1);
        assert_eq!(r.startup.count(), 1);
        assert!(r.startup.quantile(0.5).unwrap().abs_diff(600) <= 600 / 16);
        // (The 404 at 12.7 s refreshes nothing: refused requests are not the session's.)
        assert_eq!((r.stalls, r.watch_ms, r.qualified, r.clean), (1, 12_000, 1, 0));
        assert_eq!(r.errors[ErrorCause::NotFound as usize], 1);
        assert_eq!(r.bitrate.count(), 5);
        assert_eq!(r.requests, 7);
    }

    #[test]
    fn a_session_back_after_going_idle_is_the_same_session() {
        let mut t = Tracker::new(TrackerConfig::default());
        t.beacon(0, &beacon(r#"{"event":"e","sid":"a","seq":1,"startup_ms":500}"#))
            .unwrap();
        t.beacon(
            20_000,
            &beacon(r#"{"event":"e","sid":"a","seq":2,"watch_ms":20000,"stalls":0}"#),
        )
        .unwrap();
        // Silent for 40 s (a long stall, a dead network): folded as a clean, ended session.
        let r = t.report(60_000, 0);
        assert_eq!((r.sessions_started, r.sessions_ended, r.clean), (1, 1, 1));
        // Back, with its running totals: re-opened, not a second viewer, and its stall counts.
        t.beacon(
            61_000,
            &beacon(r#"{"event":"e","sid":"a","seq":3,"watch_ms":61000,"stalls":1,"stall_ms":38000}"#),
        )
        .unwrap();
        let r = t.report(61_000, 0);
        assert_eq!((r.sessions_started, r.sessions_ended, r.viewers_now), (1, 0, 1));
        assert_eq!((r.qualified, r.clean, r.stalls, r.watch_ms), (1, 0, 1, 61_000));
        assert_eq!(r.startup.count(), 1);
    }

    #[test]
    fn lies_and_floods_are_refused_and_change_nothing() {
        let mut t = Tracker::new(TrackerConfig {
            max_sessions: 2,
            beacons_per_minute: 3,
            ..Default::default()
        });
        t.beacon(0, &beacon(r#"{"event":"e","sid":"a","startup_ms":500}"#))
            .unwrap();
        let before = t.report(1_000, 0);
        for (at, body, field) in [
            (1_000, r#"{"event":"e","sid":"a","watch_ms":9000000}"#, "watch_ms"),
            (
                1_000,
                r#"{"event":"e","sid":"a","watch_ms":1000,"stalls":500}"#,
                "stalls",
            ),
        ] {
            match t.beacon(at, &beacon(body)) {
                Err(Refused::Invalid(e)) => assert_eq!(e.field(), Some(field)),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            t.beacon(1_000, &beacon(r#"{"event":"e","sid":"a"}"#)),
            Err(Refused::RateLimited(..))
        ));
        let after = t.report(1_000, 0);
        assert_eq!(after.beacons_refused, before.beacons_refused + 3);
        let mut same = after.clone();
        same.beacons_refused = before.beacons_refused;
        assert_eq!(same, before);
        // A full table: new sessions are counted, not tracked.
        t.beacon(1_000, &beacon(r#"{"event":"e","sid":"b"}"#)).unwrap();
        assert_eq!(
            t.beacon(1_000, &beacon(r#"{"event":"e","sid":"c"}"#)),
            Err(Refused::Full)
        );
        t.request(
            1_000,
            &Cmcd::parse("CMCD=sid%3D%22d%22", [], &CmcdLimits::default()),
            200,
        );
        assert_eq!(t.report(1_000, 0).untracked, 2);
    }
}
