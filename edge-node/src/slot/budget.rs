//! The memory budget of a slot: when the relayed copies hold more than the budget, the
//! largest window slides early (oldest complete segments first) until the slot fits; the
//! newest complete segment of each rendition always stays.

use super::EventSlot;
use std::sync::atomic::Ordering;

impl EventSlot {
    /// Brings the slot within its budget, if it can; counts what it freed.
    pub(super) fn keep_budget(&self) {
        let mut held = self.store.bytes_held();
        if held <= self.budget_bytes {
            return;
        }
        let mirrors: Vec<_> = self
            .mirrors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter_map(|m| m.rendition())
            .collect();
        let share = self.budget_bytes / mirrors.len().max(1);
        let mut freed = 0;
        for r in mirrors {
            if held <= self.budget_bytes {
                break;
            }
            let f = r.trim_to(share);
            held -= f.min(held);
            freed += f;
        }
        if freed > 0 {
            self.counters
                .budget_trimmed_bytes
                .fetch_add(freed as u64, Ordering::Relaxed);
            tracing::debug!(event = %self.name, freed, held, budget = self.budget_bytes, "slot over budget: window trimmed");
        }
    }
}
