//! What the relay sent to whom: each part object per edge, counted, so that "every object
//! crosses to an edge once" is a number a test can assert, not a hope.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A part of a rendition of an event, sent to one edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub node: String,
    pub event: String,
    pub rendition: String,
    pub msn: u64,
    pub part: u32,
}

/// Keys recorded before the ledger forgets its oldest half (it is a window, not a log).
const MAX_KEYS: usize = 200_000;

/// Counts of part objects sent per edge.
#[derive(Debug, Default)]
pub struct Ledger {
    sent: Mutex<HashMap<ObjectKey, u32>>,
    objects: AtomicU64,
    repeats: AtomicU64,
}

impl Ledger {
    pub(super) fn record(&self, node: &str, event: &str, rendition: &str, msn: u64, part: u32) {
        let key = ObjectKey {
            node: node.to_string(),
            event: event.to_string(),
            rendition: rendition.to_string(),
            msn,
            part,
        };
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        if sent.len() >= MAX_KEYS {
            let mut msns: Vec<u64> = sent.keys().map(|k| k.msn).collect();
            msns.sort_unstable();
            let cut = msns[msns.len() / 2];
            sent.retain(|k, _| k.msn > cut);
        }
        let n = sent.entry(key).or_default();
        *n += 1;
        self.objects.fetch_add(1, Ordering::Relaxed);
        if *n > 1 {
            self.repeats.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every part sent, with how many times, to the edges.
    pub fn counts(&self) -> Vec<(ObjectKey, u32)> {
        let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = sent.iter().map(|(k, n)| (k.clone(), *n)).collect();
        v.sort();
        v
    }

    /// Part objects sent in all.
    pub fn objects(&self) -> u64 {
        self.objects.load(Ordering::Relaxed)
    }

    /// Part objects sent again to an edge that had been sent them before (a resumed
    /// subscription after a torn object does this; nothing else should).
    pub fn repeats(&self) -> u64 {
        self.repeats.load(Ordering::Relaxed)
    }
}
