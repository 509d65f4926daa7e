//! Limits on ingest: concurrent connections in all and per IP (an IPv6 /64 counts as one
//! address), and publish attempts per IP per minute (which stops stream-key guessing).
//! Time is passed in.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The window publish attempts are counted over.
pub const ATTEMPT_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Counts {
    total: u32,
    connections: HashMap<IpAddr, u32>,
    attempts: HashMap<IpAddr, VecDeque<Instant>>,
}

/// Shared by every ingest connection of one listener.
#[derive(Debug)]
pub struct IpLimits {
    max_total: u32,
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
    pub fn new(
        max_total: u32,
        max_connections_per_ip: u32,
        max_publish_attempts_per_minute: u32,
    ) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_connections: max_connections_per_ip,
            max_attempts: max_publish_attempts_per_minute,
            counts: Mutex::new(Counts::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection slot for `ip`, or `None` when it (or everyone) has as many as allowed.
    pub fn connect(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionSlot> {
        let ip = host(ip);
        let mut c = self.lock();
        if c.total >= self.max_total {
            return None;
        }
        let n = c.connections.entry(ip).or_insert(0);
        if *n >= self.max_connections {
            return None;
        }
        *n += 1;
        c.total += 1;
        Some(ConnectionSlot {
            limits: self.clone(),
            ip,
        })
    }

    /// Counts a publish attempt from `ip` at `now`; false when it is over the limit (the
    /// attempt is still counted, so hammering keeps the door shut).
    pub fn attempt(&self, ip: IpAddr, now: Instant) -> bool {
        let ip = host(ip);
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

/// The address limits count by: an IPv4 address, an IPv6 /64 (one host's usual allocation,
/// which it can fill with addresses at will), an IPv4-mapped IPv6 address as IPv4.
fn host(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut c = self.limits.lock();
        c.total = c.total.saturating_sub(1);
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
        let l = IpLimits::new(3, 2, 10);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let s1 = l.connect(a).unwrap();
        let _s2 = l.connect(a).unwrap();
        assert!(l.connect(a).is_none());
        let _sb = l.connect(b).unwrap();
        // Three in all.
        assert!(l.connect([127, 0, 0, 3].into()).is_none());
        drop(s1);
        assert!(l.connect(a).is_some());
    }

    #[test]
    fn an_ipv6_slash_64_is_one_host() {
        let l = IpLimits::new(100, 2, 10);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _s = (l.connect(a).unwrap(), l.connect(b).unwrap());
        assert!(l.connect("2001:db8:1:2::77".parse().unwrap()).is_none());
        assert!(l.connect(other).is_some());
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(host(mapped), IpAddr::from([10, 0, 0, 1]));
    }

    #[test]
    fn attempts_are_limited_per_minute() {
        let l = IpLimits::new(10, 2, 3);
        let a: IpAddr = [127, 0, 0, 1].into();
        let t = Instant::now();
        assert!(l.attempt(a, t) && l.attempt(a, t) && l.attempt(a, t));
        assert!(!l.attempt(a, t + Duration::from_secs(10)));
        assert!(l.attempt([127, 0, 0, 9].into(), t));
        assert!(l.attempt(a, t + Duration::from_secs(61)));
    }
}
