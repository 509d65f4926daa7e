//! The built-in test source as an event's publisher: libx264 through FFmpeg's libraries,
//! paced in real time, feeding an event until a creator takes it over or it stops. `popcast
//! up` runs it for the demo event; the benches run it as their source.

use crate::live::{self, FeedError, LiveEvent};
use popcast_packager::ffmpeg::{Pacing, TestSource};
use std::sync::Arc;

/// Feeds `event` from a test source made with `settings` until a creator replaces it or the
/// source stops; `started` sees the source once it runs. Returns why it stopped, in words.
pub async fn feed(
    event: Arc<LiveEvent>,
    settings: popcast_config::TestSourceConfig,
    started: impl FnOnce(&TestSource),
) -> String {
    let feed = match event.claim(live::SourceKind::TestSource, false) {
        Ok(f) => f,
        Err(e) => return format!("not started ({e})"),
    };
    // Opening libx264 blocks for a moment: keep it off the async workers.
    let mut source =
        match tokio::task::spawn_blocking(move || TestSource::start(&settings, Pacing::RealTime)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return format!("cannot start: {e}"),
            Err(e) => return format!("cannot start: {e}"),
        };
    started(&source);
    tracing::info!(event = %event.name(), "test source running");
    let why = match feed.set_tracks(source.tracks().to_vec()) {
        Err(e) => format!("its tracks were refused: {e}"),
        Ok(()) => loop {
            let Some(frame) = source.recv().await else {
                break "it stopped".to_string();
            };
            match feed.push(frame) {
                Ok(()) => {}
                Err(FeedError::Replaced(_)) => break "a creator is publishing".to_string(),
                Err(e) => tracing::warn!("test source frame refused: {e}"),
            }
        },
    };
    drop(feed);
    let _ = tokio::task::spawn_blocking(move || source.stop()).await;
    why
}
