//! An event's catalog as an edge watches it: state, rendition names and the multivariant
//! playlist, sent when first asked and again whenever one of them changes.

use crate::events::Events;
use popcast_packager::relay::{EventState, Frame};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often the multivariant playlist is re-rendered to catch new bandwidth figures.
const REFRESH: Duration = Duration::from_millis(500);

pub(super) async fn run(ctl: mpsc::Sender<Frame>, events: Arc<Events>, name: String) {
    let Some(event) = events.get(&name) else {
        // Unknown here: an ended, empty catalog tells the edge to answer 404.
        let _ = ctl
            .send(Frame::Catalog {
                event: name,
                state: EventState::Ended,
                renditions: Vec::new(),
                multivariant: None,
            })
            .await;
        return;
    };
    let mut stores = event.store_watch();
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = None;
    loop {
        let store = stores.borrow_and_update().clone();
        let multivariant = store.multivariant().ok();
        let state = if event.is_ended() {
            EventState::Ended
        } else if multivariant.is_some() {
            EventState::Live
        } else {
            EventState::Waiting
        };
        let catalog = Frame::Catalog {
            event: name.clone(),
            state,
            renditions: store.rendition_names(),
            multivariant,
        };
        if last.as_ref() != Some(&catalog) {
            if ctl.send(catalog.clone()).await.is_err() {
                return;
            }
            last = Some(catalog);
        }
        tokio::select! {
            changed = stores.changed() => if changed.is_err() { return },
            _ = tick.tick() => {}
        }
    }
}
