//! A provisioned event's slate task: decides when the slate feeds the session (before the
//! creator's first frame, after a gap in the creator's media, for a moment after the end),
//! keeps the encoded cards (one per size and text, encoded once), and releases their frames
//! on a real-time schedule, looped with re-stamped timestamps.

use crate::live::{Input, LiveEvent, SlateView};
use popcast_config::SlateConfig;
use popcast_packager::ffmpeg::slate::{Card, CardSpec, Silence, encode_card, encode_silence};
use popcast_packager::media::{Frame, TrackInfo};
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

/// How often the task wakes, and how far ahead of the clock it releases frames.
const TICK: Duration = Duration::from_millis(50);
const AHEAD: Duration = Duration::from_millis(100);

const ENDED: &str = "This event has ended";

/// What the card's small line says.
pub(crate) fn status_line(view: &SlateView, start: i64, now: i64) -> String {
    if view.ending.is_some() {
        return ENDED.into();
    }
    if view.went_live {
        return "We'll be right back".into();
    }
    let mins = (start - now + 59) / 60;
    match mins {
        m if m > 1 => format!("Starts in {m} min"),
        1 => "Starts in 1 min".into(),
        _ => "Starting soon".into(),
    }
}

/// The event's title and schedule, for the card.
#[derive(Debug, Clone)]
pub struct SlateText {
    pub title: String,
    pub start: i64,
}

/// Encoded cards by (size, text), and the silence.
struct Cards {
    config: SlateConfig,
    gop_ms: u32,
    cards: HashMap<(u32, u32, String, String), Arc<Card>>,
    silence: Arc<Silence>,
    /// CPU time spent encoding, for the log.
    encode_time: Duration,
}

impl Cards {
    async fn get(&mut self, width: u32, height: u32, title: &str, status: &str) -> Option<Arc<Card>> {
        let key = (width, height, title.to_string(), status.to_string());
        if let Some(c) = self.cards.get(&key) {
            return Some(c.clone());
        }
        let spec = CardSpec {
            width,
            height,
            fps: self.config.fps,
            gop_ms: self.gop_ms,
            video_kbps: self.config.video_kbps,
            encoder: self.config.encoder.clone(),
            font: self.config.font.clone(),
            title: title.to_string(),
            status: status.to_string(),
        };
        let started = Instant::now();
        let card = tokio::task::spawn_blocking(move || encode_card(&spec)).await;
        self.encode_time += started.elapsed();
        match card {
            Ok(Ok(c)) => {
                tracing::debug!(
                    width,
                    height,
                    status,
                    took_ms = started.elapsed().as_millis() as u64,
                    "slate card encoded"
                );
                // Old countdown texts are not needed again.
                if self.cards.len() > 16 {
                    self.cards.clear();
                }
                let c = Arc::new(c);
                self.cards.insert(key, c.clone());
                Some(c)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, width, height, "slate card not encoded");
                // A size the encoder refuses (odd, huge): the configured size instead.
                let (cw, ch) = (self.config.width, self.config.height);
                if (width, height) != (cw, ch) {
                    return Box::pin(self.get(cw, ch, title, status)).await;
                }
                None
            }
            Err(_) => None,
        }
    }
}

/// Opens the event's session on the slate and runs its slate until the event is gone or
/// its playlists have ended. Returns at once when the slate cannot be made (said why).
pub async fn run(
    event: Weak<LiveEvent>,
    config: SlateConfig,
    text: SlateText,
    hold: Duration,
    now: fn() -> i64,
) {
    let Some(ev) = event.upgrade() else { return };
    let gop_ms = ev.segment_target_ms();
    ev.set_ended_card(Duration::from_secs(config.ended_card_secs));
    let silence = match tokio::task::spawn_blocking(|| encode_silence(48_000, 2)).await {
        Ok(Ok(s)) => Arc::new(s),
        Ok(Err(e)) => {
            tracing::warn!(event = %ev.name(), error = %e, "no slate: silence not encoded");
            return;
        }
        Err(_) => return,
    };
    let mut cards = Cards {
        config: config.clone(),
        gop_ms,
        cards: HashMap::new(),
        silence,
        encode_time: Duration::ZERO,
    };
    let first_status = ev.slate_view(hold).map_or_else(
        || "Starting soon".to_string(),
        |v| status_line(&v, text.start, now()),
    );
    let Some(card) = cards
        .get(config.width, config.height, &text.title, &first_status)
        .await
    else {
        return;
    };
    match ev.open_slate(card.track.clone(), cards.silence.track.clone()) {
        Ok(true) => {
            tracing::info!(event = %ev.name(), "slate on: the event plays before its creator goes live")
        }
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(event = %ev.name(), error = %e, "no slate");
            return;
        }
    }
    drop(ev);
    if !play(&event, &mut cards, &config, &text, hold, now).await {
        if let Some(ev) = event.upgrade() {
            tracing::warn!(event = %ev.name(), "the slate stopped early; the event goes on without it");
            ev.slate_abandon();
        }
    }
}

/// Plays the slate while the event needs it. False: it had to stop early.
async fn play(
    event: &Weak<LiveEvent>,
    cards: &mut Cards,
    config: &SlateConfig,
    text: &SlateText,
    hold: Duration,
    now: fn() -> i64,
) -> bool {
    let mut ended_shown = false;
    // The running slate: its clock, the next video frame index (common to every card: same
    // rate and GOP) and audio frame index, and the card each video track plays this GOP.
    let mut clock: Option<Instant> = None;
    let (mut k, mut j) = (0u64, 0u64);
    let mut playing: HashMap<u32, Arc<Card>> = HashMap::new();
    let mut playing_status = String::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(ev) = event.upgrade() else { return true };
        let Some(view) = ev.slate_view(hold) else {
            tracing::info!(event = %ev.name(), cards_encode_ms = cards.encode_time.as_millis() as u64, "slate done");
            return true;
        };
        if let Some(at) = view.ending {
            if ended_shown && Instant::now() >= at {
                ev.slate_finish();
                tracing::info!(event = %ev.name(), cards_encode_ms = cards.encode_time.as_millis() as u64, "slate done: the playlists end");
                return true;
            }
        }
        let wanted = view.ending.is_some() || !view.live_recent;
        if !wanted {
            clock = None;
            continue;
        }
        let status = status_line(&view, text.start, now());
        if clock.is_none() || view.input == Input::Live {
            // The slate comes on: a new timeline from now.
            let mut tracks = Vec::new();
            playing.clear();
            for &(id, w, h) in &view.videos {
                let Some(c) = cards.get(w, h, &text.title, &status).await else {
                    return false;
                };
                tracks.push(TrackInfo {
                    id,
                    ..c.track.clone()
                });
                playing.insert(id.0, c);
            }
            tracks.push(TrackInfo {
                id: view.audio,
                ..cards.silence.track.clone()
            });
            ev.slate_on(&tracks, hold);
            playing_status = status.clone();
            clock = Some(Instant::now());
            (k, j) = (0, 0);
        }
        let Some(start) = clock else { continue };
        let due = start.elapsed() + AHEAD;
        let mut frames = Vec::new();
        let rate = u64::from(config.fps.clamp(1, 60));
        while Duration::from_nanos(k * 1_000_000_000 / rate) <= due {
            for &(id, w, h) in &view.videos {
                let n = playing.get(&id.0).map_or(1, |c| c.frames.len() as u64).max(1);
                if k % n == 0 {
                    // A GOP boundary: the card may change (the countdown, a new size).
                    if let Some(c) = cards.get(w, h, &text.title, &status).await {
                        let same = playing.get(&id.0).is_some_and(|p| p.track == c.track);
                        if !same {
                            ev.slate_on(
                                &[TrackInfo {
                                    id,
                                    ..c.track.clone()
                                }],
                                hold,
                            );
                        }
                        playing.insert(id.0, c);
                        playing_status = status.clone();
                    }
                }
                let Some(card) = playing.get(&id.0) else { continue };
                let n = card.frames.len() as u64;
                let f = &card.frames[(k % n) as usize];
                let tick = card.duration / n as i64;
                let dts = k as i64 * tick;
                frames.push(Frame {
                    track: id,
                    pts: dts + (f.pts - f.dts),
                    dts,
                    keyframe: f.keyframe,
                    payload: f.payload.clone(),
                    arrived: SystemTime::now(),
                });
            }
            k += 1;
        }
        let sr = u64::from(cards.silence.track.timescale.max(1));
        while Duration::from_nanos(j * 1024 * 1_000_000_000 / sr) <= due {
            frames.push(Frame {
                track: view.audio,
                pts: (j * 1024) as i64,
                dts: (j * 1024) as i64,
                keyframe: true,
                payload: cards.silence.frame.clone(),
                arrived: SystemTime::now(),
            });
            j += 1;
        }
        // Interleaved by time, as a source would send them.
        frames.sort_by_key(|f| {
            let ts = if f.track == view.audio { sr } else { 90_000 };
            i128::from(f.dts) * 1_000_000_000 / i128::from(ts)
        });
        ev.slate_push(frames);
        // The ended card plays its full time from when it first goes out.
        if view.ending.is_some() && !ended_shown && playing_status == ENDED {
            ended_shown = true;
            ev.slate_ending_shown(Duration::from_secs(config.ended_card_secs));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use popcast_packager::media::TrackId;

    fn view(went_live: bool, ending: bool) -> SlateView {
        SlateView {
            input: Input::Slate,
            live_recent: false,
            went_live,
            ending: ending.then(Instant::now),
            videos: vec![(TrackId(1), 1280, 720)],
            audio: TrackId(2),
        }
    }

    #[test]
    fn the_status_line_counts_down_then_says_why_the_slate_plays() {
        assert_eq!(
            status_line(&view(false, false), 1_000, 1_000 - 12 * 60),
            "Starts in 12 min"
        );
        assert_eq!(
            status_line(&view(false, false), 1_000, 1_000 - 61),
            "Starts in 2 min"
        );
        assert_eq!(
            status_line(&view(false, false), 1_000, 1_000 - 30),
            "Starts in 1 min"
        );
        assert_eq!(status_line(&view(false, false), 1_000, 1_005), "Starting soon");
        assert_eq!(
            status_line(&view(true, false), 1_000, 1_005),
            "We'll be right back"
        );
        assert_eq!(
            status_line(&view(true, true), 1_000, 1_005),
            "This event has ended"
        );
    }
}
