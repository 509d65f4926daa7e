//! Per-IP limits on ingest: concurrent connections, and publish attempts per minute (which
//! stops stream-key guessing). Time is passed in.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The window publish attempts are counted over.
pub const ATTEMPT_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Counts {
    connections: HashMap<IpAddr, u32>,
    attempts: HashMap<IpAddr, VecDeque<Instant>>,
}

/// Shared by every ingest connection of one listener.
#[derive(Debug)]
pub struct IpLimits {
    max_connections: u32,
    max_attempts: u32,
    counts: Mutex<Counts>,
}

/// A held connection slot; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnectionSlot {
    limits: Arc<IpLimits>,
    ip: IpAddr,
}

impl IpLimits {
    pub fn new(max_connections_per_ip: u32, max_publish_attempts_per_minute: u32) -> Arc<Self> {
        Arc::new(Self {
            max_connections: max_connections_per_ip,
            max_attempts: max_publish_attempts_per_minute,
            counts: Mutex::new(Counts::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection slot for `ip`, or `None` when it has as many as allowed.
    pub fn connect(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionSlot> {
        let mut c = self.lock();
        let n = c.connections.entry(ip).or_insert(0);
        if *n >= self.max_connections {
            return None;
        }
        *n += 1;
        Some(ConnectionSlot {
            limits: self.clone(),
            ip,
        })
    }

    /// Counts a publish attempt from `ip` at `now`; false when it is over the limit (the
    /// attempt is still counted, so hammering keeps the door shut).
    pub fn attempt(&self, ip: IpAddr, now: Instant) -> bool {
        let mut c = self.lock();
        // Forget idle addresses so the map stays bounded by recent activity.
        if c.attempts.len() > 4096 {
            c.attempts.retain(|_, q| {
                q.back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < ATTEMPT_WINDOW)
            });
        }
        let q = c.attempts.entry(ip).or_default();
        while q
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= ATTEMPT_WINDOW)
        {
            q.pop_front();
        }
        let allowed = (q.len() as u32) < self.max_attempts;
        // Bounded: at most one over the limit is remembered.
        if q.len() as u32 <= self.max_attempts {
            q.push_back(now);
        }
        allowed
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut c = self.limits.lock();
        if let Some(n) = c.connections.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.connections.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_per_ip_and_freed() {
        let l = IpLimits::new(2, 10);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let s1 = l.connect(a).unwrap();
        let _s2 = l.connect(a).unwrap();
        assert!(l.connect(a).is_none());
        assert!(l.connect(b).is_some());
        drop(s1);
        assert!(l.connect(a).is_some());
    }

    #[test]
    fn attempts_are_limited_per_minute() {
        let l = IpLimits::new(2, 3);
        let a: IpAddr = [127, 0, 0, 1].into();
        let t = Instant::now();
        assert!(l.attempt(a, t) && l.attempt(a, t) && l.attempt(a, t));
        assert!(!l.attempt(a, t + Duration::from_secs(10)));
        assert!(l.attempt([127, 0, 0, 9].into(), t));
        assert!(l.attempt(a, t + Duration::from_secs(61)));
    }
}
