//! Event slots: one per event provisioned on this edge, holding the relayed copy of the
//! event's renditions (a live store fed by the upstream link), its catalog, its viewers and
//! its memory budget.

mod budget;
mod coalesce;
pub mod mirror;

pub use coalesce::Wanted;
pub use mirror::RenditionMirror;

use dashmap::DashMap;
use popcast_packager::relay::EventState;
use popcast_packager::store::{EventStore, StoreConfig};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What the origin says of an event: its state, renditions and multivariant playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    pub state: EventState,
    pub renditions: Vec<String>,
    pub multivariant: Option<String>,
}

/// Counters of one slot (exported by `/healthz` and `/metrics`).
#[derive(Debug, Default)]
pub struct SlotCounters {
    /// Requests answered from what the slot held.
    pub hits: AtomicU64,
    /// Requests that had to wait for the slot to fetch a rendition.
    pub misses: AtomicU64,
    /// Subscriptions asked of the origin (one per rendition, whatever the audience).
    pub upstream_fetches: AtomicU64,
    /// Bytes freed early to stay within the memory budget.
    pub budget_trimmed_bytes: AtomicU64,
    /// Viewers turned away at the viewer cap.
    pub refused_viewers: AtomicU64,
    /// Requests to a ticketed event refused for a missing, forged, expired or foreign token.
    pub token_refusals: AtomicU64,
}

/// The slot of one event.
pub struct EventSlot {
    name: String,
    viewer_cap: AtomicU32,
    viewers: AtomicU32,
    budget_bytes: usize,
    store: Arc<EventStore>,
    catalog: watch::Sender<Option<Catalog>>,
    mirrors: Mutex<HashMap<String, Arc<RenditionMirror>>>,
    wanted: mpsc::UnboundedSender<Wanted>,
    released: watch::Sender<bool>,
    /// `Some`: a ticketed event; viewers need a token signed by one of these keys.
    tickets: Mutex<Option<Arc<[popcast_packager::token::EventKey]>>>,
    pub counters: SlotCounters,
    /// Its viewers' sessions (CMCD, beacons).
    pub qoe: crate::qoe::SlotQoe,
}

impl EventSlot {
    /// Makes the slot ticketed with these token keys (key id, secret), or public when
    /// `ticketed` is false. A key that is not a valid HMAC key is left out, and said so.
    pub fn set_tickets(&self, ticketed: bool, keys: &[(String, bytes::Bytes)]) {
        let tickets = ticketed.then(|| {
            keys.iter()
                .filter_map(
                    |(kid, secret)| match popcast_packager::token::EventKey::new(kid, secret) {
                        Ok(k) => Some(k),
                        Err(e) => {
                            tracing::warn!(event = %self.name, error = %e, "token key refused");
                            None
                        }
                    },
                )
                .collect::<Vec<_>>()
                .into()
        });
        *self.tickets.lock().unwrap_or_else(|e| e.into_inner()) = tickets;
    }

    /// The token keys of a ticketed event's slot; `None` when anyone may watch.
    pub fn tickets(&self) -> Option<Arc<[popcast_packager::token::EventKey]>> {
        self.tickets.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A viewer admitted to a slot; the count drops when it goes.
pub struct ViewerGuard {
    slot: Arc<EventSlot>,
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.slot.viewers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ViewerGuard {
    pub fn event(&self) -> &str {
        &self.slot.name
    }
}

impl EventSlot {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The relayed copy viewers are served from.
    pub fn store(&self) -> &Arc<EventStore> {
        &self.store
    }

    pub fn viewers(&self) -> u32 {
        self.viewers.load(Ordering::Relaxed)
    }

    pub fn bytes_held(&self) -> usize {
        self.store.bytes_held()
    }

    /// Admits one more viewer unless the slot is full.
    pub fn admit(self: &Arc<Self>) -> Option<ViewerGuard> {
        let cap = self.viewer_cap.load(Ordering::Relaxed);
        let admitted = self
            .viewers
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < cap).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            self.counters.refused_viewers.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(ViewerGuard { slot: self.clone() })
    }

    /// The catalog, as the origin last sent it.
    pub fn catalog(&self) -> watch::Receiver<Option<Catalog>> {
        self.catalog.subscribe()
    }

    pub(crate) fn set_catalog(&self, c: Catalog) {
        self.catalog.send_replace(Some(c));
    }

    pub fn is_released(&self) -> bool {
        *self.released.borrow()
    }
}

/// Every slot on this edge.
pub struct Slots {
    slots: DashMap<String, Arc<EventSlot>>,
    store_config: StoreConfig,
    budget_bytes: usize,
    release_grace: Duration,
    wanted: mpsc::UnboundedSender<Wanted>,
    qoe: popcast_packager::qoe::TrackerConfig,
}

impl Slots {
    /// `wanted` carries what the slots need from upstream (watches, subscriptions).
    pub fn new(
        store_config: StoreConfig,
        budget_bytes: usize,
        release_grace: Duration,
        wanted: mpsc::UnboundedSender<Wanted>,
        qoe: popcast_packager::qoe::TrackerConfig,
    ) -> Self {
        Self {
            slots: DashMap::new(),
            store_config,
            budget_bytes,
            release_grace,
            wanted,
            qoe,
        }
    }

    pub fn get(&self, event: &str) -> Option<Arc<EventSlot>> {
        self.slots.get(event).map(|s| s.clone())
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn all(&self) -> Vec<Arc<EventSlot>> {
        self.slots.iter().map(|s| s.value().clone()).collect()
    }

    /// Creates the slot of `event` (idempotent: provisioning again only updates the cap,
    /// and never disturbs viewers) and starts watching its catalog.
    pub fn provision(&self, event: &str, viewer_cap: u32) -> Arc<EventSlot> {
        if let Some(slot) = self.get(event) {
            slot.viewer_cap.store(viewer_cap, Ordering::Relaxed);
            slot.released.send_replace(false);
            return slot;
        }
        self.slots
            .entry(event.to_string())
            .or_insert_with(|| {
                tracing::info!(event, viewer_cap, "slot provisioned");
                let _ = self.wanted.send(Wanted::Watch {
                    event: event.to_string(),
                });
                Arc::new(EventSlot {
                    name: event.to_string(),
                    viewer_cap: AtomicU32::new(viewer_cap),
                    viewers: AtomicU32::new(0),
                    budget_bytes: self.budget_bytes,
                    store: Arc::new(EventStore::new(self.store_config.clone())),
                    catalog: watch::Sender::new(None),
                    mirrors: Mutex::new(HashMap::new()),
                    wanted: self.wanted.clone(),
                    released: watch::Sender::new(false),
                    tickets: Mutex::new(None),
                    counters: SlotCounters::default(),
                    qoe: crate::qoe::SlotQoe::new(self.qoe.clone()),
                })
            })
            .clone()
    }

    /// Releases the slot of `event`: new viewers are refused at once; its memory is freed
    /// after the grace period unless it is provisioned again meanwhile.
    pub fn release(self: &Arc<Self>, event: &str) {
        let Some(slot) = self.get(event) else { return };
        slot.released.send_replace(true);
        let slots = self.clone();
        let event = event.to_string();
        let grace = self.release_grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if slots.get(&event).is_some_and(|s| s.is_released()) {
                slots.slots.remove(&event);
                let _ = slots.wanted.send(Wanted::Forget { event: event.clone() });
                tracing::info!(%event, "slot removed");
            }
        });
    }
}
