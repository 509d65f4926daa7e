//! Request coalescing: however many viewers ask for a rendition the slot does not hold yet,
//! the first creates its relayed copy and asks upstream once; the others wait on the same
//! copy becoming ready.

use super::{EventSlot, RenditionMirror};
use popcast_packager::store::StoreError;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::time::Instant;

/// What the slots need from the upstream link.
pub enum Wanted {
    /// Send the event's catalog and its changes.
    Watch { event: String },
    /// Subscribe to a rendition, into this copy.
    Subscribe { mirror: Arc<RenditionMirror> },
    /// The event's slot is gone: stop everything of it.
    Forget { event: String },
}

impl EventSlot {
    /// The relayed copy of `rendition`, subscribed once, ready (init segment and a part
    /// held), waiting at most until `deadline`.
    pub async fn rendition(
        self: &Arc<Self>,
        rendition: &str,
        deadline: Instant,
    ) -> Result<Arc<RenditionMirror>, StoreError> {
        let mirror = {
            let mut mirrors = self.mirrors.lock().unwrap_or_else(|e| e.into_inner());
            match mirrors.get(rendition) {
                Some(m) => m.clone(),
                None => {
                    let known = self
                        .catalog
                        .borrow()
                        .as_ref()
                        .is_none_or(|c| c.renditions.iter().any(|r| r == rendition));
                    if !known {
                        return Err(StoreError::NotFound(format!("no rendition {rendition:?}")));
                    }
                    let slot = Arc::downgrade(self);
                    let m = Arc::new(RenditionMirror::new(
                        &self.name,
                        rendition,
                        self.store.clone(),
                        Box::new(move || {
                            if let Some(slot) = slot.upgrade() {
                                slot.keep_budget();
                            }
                        }),
                    ));
                    mirrors.insert(rendition.to_string(), m.clone());
                    self.counters.upstream_fetches.fetch_add(1, Ordering::Relaxed);
                    let _ = self.wanted.send(Wanted::Subscribe { mirror: m.clone() });
                    m
                }
            }
        };
        let mut ready = mirror.ready();
        if *ready.borrow_and_update() {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(mirror);
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        loop {
            match tokio::time::timeout_at(deadline, ready.changed()).await {
                Ok(Ok(())) if *ready.borrow_and_update() => return Ok(mirror),
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    return Err(StoreError::Unavailable(format!(
                        "{}/{rendition}: not received from the origin in time",
                        self.name
                    )));
                }
            }
        }
    }
}
