//! Quality of experience: what viewers' players tell edges (CMCD on every request, beacons
//! to `/qoe`), turned into per-event numbers that merge across edges. Sans-IO: time is
//! passed in as milliseconds on the caller's clock.
//!
//! Owns: the CMCD parser ([`cmcd`]), the beacon contract ([`beacon`]), mergeable
//! histograms ([`hist`]), per-session tracking on an edge ([`tracker`]) and the report an
//! edge sends the origin for each event ([`Report`]), with the **stream success rate**.
//!
//! ## The stream success rate
//! `success_rate = clean ÷ qualified`, where a session is
//! - *started* once any request or beacon carries its session id (`sid`);
//! - *playing* once it showed its first frame (a beacon's `startup_ms` or `watch_ms`; for a
//!   player that sends only CMCD, its first media request without `su`);
//! - *qualified* once it is playing and has either watched for at least the qualifying time
//!   (10 s by default, `qoe.qualify_secs`) or stalled: a clean session shorter than that
//!   is no evidence either way (a viewer who glanced and left), while one that stalled
//!   counts whatever its length (the stall may be why the viewer left);
//! - *clean* when qualified with no stall.
//!
//! Sessions that never started playing are not in the rate; they are counted as
//! `never_started` once they end (a startup failure, reported beside the rate). A stall is a
//! rebuffering after the first frame (startup is not a stall). Stalls, stalled time and
//! watch time (first frame to the last report, stalls included) come from a player's
//! beacons when it sends them; from CMCD alone, a stall is a request that carries `bs`
//! after one that did not, and watch time runs from the first frame to the last request.
//! `rebuffer_ratio = stall_ms ÷ watch_ms` over all playing sessions.

pub mod beacon;
pub mod cmcd;
pub mod hist;
pub mod tracker;

pub use beacon::{Beacon, BeaconError, BeaconLimits};
pub use cmcd::{Cmcd, CmcdLimits};
pub use hist::Hist;
pub use tracker::{Tracker, TrackerConfig};

/// Why an object was not delivered: the error statuses an edge answers, in a bounded set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCause {
    BadRequest = 0,
    Forbidden = 1,
    NotFound = 2,
    Gone = 3,
    TooLong = 4,
    Range = 5,
    RateLimited = 6,
    Unavailable = 7,
    ServerError = 8,
    Other = 9,
}

/// The number of [`ErrorCause`]s.
pub const CAUSES: usize = 10;

impl ErrorCause {
    pub const ALL: [ErrorCause; CAUSES] = [
        Self::BadRequest,
        Self::Forbidden,
        Self::NotFound,
        Self::Gone,
        Self::TooLong,
        Self::Range,
        Self::RateLimited,
        Self::Unavailable,
        Self::ServerError,
        Self::Other,
    ];

    /// The cause of an error status; `None` below 400.
    pub fn of(status: u16) -> Option<Self> {
        Some(match status {
            0..=399 => return None,
            400 => Self::BadRequest,
            403 | 401 => Self::Forbidden,
            404 => Self::NotFound,
            410 => Self::Gone,
            414 | 431 | 413 => Self::TooLong,
            416 => Self::Range,
            429 => Self::RateLimited,
            503 => Self::Unavailable,
            500..=599 => Self::ServerError,
            _ => Self::Other,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Gone => "gone",
            Self::TooLong => "too_long",
            Self::Range => "range",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::ServerError => "server_error",
            Self::Other => "other",
        }
    }
}

/// One event's QoE on one edge (or merged over several): running totals since the slot
/// was made, so that a lost report loses nothing and the latest one is the truth.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Sessions playing or starting now.
    pub viewers_now: u64,
    /// Viewer connections now (players without a session id are counted here only).
    pub connections: u64,
    pub sessions_started: u64,
    pub sessions_playing: u64,
    pub sessions_ended: u64,
    pub never_started: u64,
    pub qualified: u64,
    pub clean: u64,
    pub stalls: u64,
    pub stall_ms: u64,
    pub watch_ms: u64,
    pub requests: u64,
    /// Errors players reported in beacons.
    pub player_errors: u64,
    /// CMCD pairs that did not parse (dropped).
    pub cmcd_malformed: u64,
    pub beacons: u64,
    pub beacons_refused: u64,
    /// Sessions not tracked because the event's session table was full.
    pub untracked: u64,
    /// Error responses by [`ErrorCause`].
    pub errors: [u64; CAUSES],
    /// Time to first frame, ms.
    pub startup: Hist,
    /// Live latency samples, ms.
    pub latency: Hist,
    /// Bitrate of each video object requested, kb/s.
    pub bitrate: Hist,
    /// Length of each stall, ms.
    pub stall_len: Hist,
    /// Throughput players measured (CMCD `mtp`) on each video request, kb/s.
    pub throughput: Hist,
    /// Players' buffer (CMCD `bl`) at each video request, ms.
    pub buffer: Hist,
}

/// The number of histograms in a [`Report`], and their names in wire order.
pub const HISTS: usize = 6;
pub const HIST_NAMES: [&str; HISTS] = [
    "startup",
    "latency",
    "bitrate",
    "stall_len",
    "throughput",
    "buffer",
];

/// The number of counters [`Report::counters`] lists.
pub const COUNTERS: usize = 17 + CAUSES;

impl Report {
    /// The counters in wire order (histograms apart).
    pub fn counters(&self) -> [u64; COUNTERS] {
        let mut c = [0u64; COUNTERS];
        let head = [
            self.viewers_now,
            self.connections,
            self.sessions_started,
            self.sessions_playing,
            self.sessions_ended,
            self.never_started,
            self.qualified,
            self.clean,
            self.stalls,
            self.stall_ms,
            self.watch_ms,
            self.requests,
            self.player_errors,
            self.cmcd_malformed,
            self.beacons,
            self.beacons_refused,
            self.untracked,
        ];
        c[..17].copy_from_slice(&head);
        c[17..].copy_from_slice(&self.errors);
        c
    }

    /// Sets the counters from wire order; missing ones are 0, extra ones ignored.
    pub fn set_counters(&mut self, c: &[u64]) {
        let at = |i: usize| c.get(i).copied().unwrap_or(0);
        self.viewers_now = at(0);
        self.connections = at(1);
        self.sessions_started = at(2);
        self.sessions_playing = at(3);
        self.sessions_ended = at(4);
        self.never_started = at(5);
        self.qualified = at(6);
        self.clean = at(7);
        self.stalls = at(8);
        self.stall_ms = at(9);
        self.watch_ms = at(10);
        self.requests = at(11);
        self.player_errors = at(12);
        self.cmcd_malformed = at(13);
        self.beacons = at(14);
        self.beacons_refused = at(15);
        self.untracked = at(16);
        for (i, e) in self.errors.iter_mut().enumerate() {
            *e = at(17 + i);
        }
    }

    /// The histograms in wire order.
    pub fn hists(&self) -> [&Hist; HISTS] {
        [
            &self.startup,
            &self.latency,
            &self.bitrate,
            &self.stall_len,
            &self.throughput,
            &self.buffer,
        ]
    }

    pub fn hists_mut(&mut self) -> [&mut Hist; HISTS] {
        [
            &mut self.startup,
            &mut self.latency,
            &mut self.bitrate,
            &mut self.stall_len,
            &mut self.throughput,
            &mut self.buffer,
        ]
    }

    /// Adds `other` (another edge's report of the same event).
    pub fn merge(&mut self, other: &Report) {
        let mut c = self.counters();
        for (a, b) in c.iter_mut().zip(other.counters()) {
            *a = a.saturating_add(b);
        }
        self.set_counters(&c);
        for (a, b) in self.hists_mut().into_iter().zip(other.hists()) {
            a.merge(b);
        }
    }

    /// Clean ÷ qualified sessions (see the module docs); `None` before any qualifies.
    pub fn success_rate(&self) -> Option<f64> {
        (self.qualified > 0).then(|| self.clean as f64 / self.qualified as f64)
    }

    /// Stalled time ÷ watch time; `None` before anything was watched.
    pub fn rebuffer_ratio(&self) -> Option<f64> {
        (self.watch_ms > 0).then(|| self.stall_ms as f64 / self.watch_ms as f64)
    }

    /// Stalls per playing session.
    pub fn stalls_per_session(&self) -> Option<f64> {
        (self.sessions_playing > 0).then(|| self.stalls as f64 / self.sessions_playing as f64)
    }

    /// All delivery errors.
    pub fn error_count(&self) -> u64 {
        self.errors.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_merge_counter_by_counter_and_histograms_bucket_by_bucket() {
        let mut a = Report {
            qualified: 4,
            clean: 3,
            stall_ms: 100,
            watch_ms: 10_000,
            ..Default::default()
        };
        a.errors[ErrorCause::Forbidden as usize] = 2;
        a.latency.add(700);
        let mut b = Report {
            qualified: 6,
            clean: 6,
            watch_ms: 10_000,
            ..Default::default()
        };
        b.latency.add(900);
        a.merge(&b);
        assert_eq!(a.success_rate(), Some(0.9));
        assert_eq!(a.rebuffer_ratio(), Some(0.005));
        assert_eq!(a.latency.count(), 2);
        assert_eq!(a.error_count(), 2);
        let mut c = Report::default();
        c.set_counters(&a.counters());
        assert_eq!(c.counters(), a.counters());
        assert_eq!(Report::default().success_rate(), None);
        assert_eq!(ErrorCause::of(403), Some(ErrorCause::Forbidden));
        assert_eq!(ErrorCause::of(200), None);
        assert_eq!(ErrorCause::of(502), Some(ErrorCause::ServerError));
        for (i, c) in ErrorCause::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
    }
}
