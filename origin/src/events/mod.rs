//! The origin's events by name, and the stream-key lookup publishers go through.

pub mod api;
pub mod calendar;
pub mod db;
pub mod lifecycle;
pub mod record;
pub mod route;
pub mod webhooks;

use crate::live::{LiveEvent, hash_key};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// Why an event cannot be added.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(transparent)]
    Name(#[from] popcast_packager::naming::NameError),
    #[error("event {0:?} exists already")]
    Duplicate(String),
    #[error("event {0:?} has the same stream key as another event")]
    DuplicateKey(String),
}

/// Every event this origin runs.
#[derive(Debug)]
pub struct Events {
    by_name: RwLock<BTreeMap<String, Arc<LiveEvent>>>,
    /// Bumped when an event is added or changes what edges must know of it.
    changes: tokio::sync::watch::Sender<u64>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            by_name: RwLock::default(),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl Events {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an event. Names follow the URL rules (a-z, 0-9, `-`, `_`; at most 64).
    pub fn add(&self, event: Arc<LiveEvent>) -> Result<(), EventsError> {
        popcast_packager::naming::check_name("event", event.name())?;
        let mut all = self.by_name.write().unwrap_or_else(|e| e.into_inner());
        if all.contains_key(event.name()) {
            return Err(EventsError::Duplicate(event.name().to_string()));
        }
        if all.values().any(|e| e.key_matches(&event.key_hash())) {
            return Err(EventsError::DuplicateKey(event.name().to_string()));
        }
        all.insert(event.name().to_string(), event);
        drop(all);
        self.touch();
        Ok(())
    }

    /// Tells watchers (the relay) that an event changed what edges must know of it.
    pub fn touch(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// Changes to the set of events or to what edges must know of them.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn get(&self, name: &str) -> Option<Arc<LiveEvent>> {
        self.by_name
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.by_name
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// The event whose stream key is `key`. The key is hashed and compared against every
    /// event's hash in constant time, without stopping at a match, so the time taken says
    /// nothing about which bytes or which event matched.
    pub fn by_key(&self, key: &[u8]) -> Option<Arc<LiveEvent>> {
        let hash = hash_key(key);
        let all = self.by_name.read().unwrap_or_else(|e| e.into_inner());
        let mut found = None;
        for e in all.values() {
            if e.key_matches(&hash) {
                found = Some(e.clone());
            }
        }
        found
    }
}

/// A new random stream key: 20 bytes from the system's CSPRNG, as 40 hex digits (safe in a
/// URL path and in OBS's key field).
pub fn new_stream_key() -> Result<String, ring::error::Unspecified> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 20];
    ring::rand::SystemRandom::new().fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_select_events_and_collide_nowhere() {
        let p = popcast_config::PackagerConfig::default();
        let events = Events::new();
        events
            .add(LiveEvent::new("demo", b"key-one-0123456789", &p))
            .unwrap();
        events
            .add(LiveEvent::new("other", b"key-two-0123456789", &p))
            .unwrap();
        assert_eq!(events.by_key(b"key-two-0123456789").unwrap().name(), "other");
        assert!(events.by_key(b"key-two-012345678").is_none());
        assert!(events.by_key(b"").is_none());
        assert!(matches!(
            events.add(LiveEvent::new("demo", b"x", &p)),
            Err(EventsError::Duplicate(_))
        ));
        assert!(matches!(
            events.add(LiveEvent::new("third", b"key-one-0123456789", &p)),
            Err(EventsError::DuplicateKey(_))
        ));
        assert!(events.add(LiveEvent::new("Bad/..", b"y", &p)).is_err());
    }
}
