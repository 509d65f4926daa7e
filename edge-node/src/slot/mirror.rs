//! One rendition's relayed copy: object frames applied to the slot's store strictly in
//! object order, torn objects dropped, numbering kept monotonic across origin epochs.

use popcast_packager::cmaf::read::track_info;
use popcast_packager::media::TrackId;
use popcast_packager::relay::{Frame, Resume};
use popcast_packager::segmenter::Event;
use popcast_packager::store::{EventStore, Rendition};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};
use tokio::sync::watch;

/// Frames of later objects held while an earlier one is still arriving (bounds memory when
/// a stream lags behind its successors).
const MAX_PENDING_FRAMES: usize = 4096;

/// Why a mirror refused what its upstream sent: the subscription is started over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MirrorError {
    #[error("{rendition}: init segment unusable: {reason}")]
    BadInit { rendition: String, reason: String },
    #[error("{rendition}: {frame} before the rendition's init segment")]
    NoInit { rendition: String, frame: &'static str },
    #[error("{rendition}: {frame} is not a media frame")]
    NotMedia { rendition: String, frame: &'static str },
    #[error("{rendition}: more than {MAX_PENDING_FRAMES} frames of later objects held")]
    TooFarAhead { rendition: String },
}

#[derive(Debug, Default)]
struct State {
    rendition: Option<Arc<Rendition>>,
    /// The track id the copy's events carry (from the init segment).
    track: TrackId,
    /// The subscription being applied, and whether its SubscribeOk arrived.
    sub: Option<u64>,
    started: bool,
    /// The origin epoch of what the copy holds, and of the running subscription.
    held_epoch: Option<u64>,
    /// Object sequence number to apply next.
    next_seq: u64,
    /// Frames of objects that arrived ahead of `next_seq` (or before SubscribeOk).
    pending: BTreeMap<u64, Vec<Frame>>,
    pending_frames: usize,
    /// The last complete part held, in the origin's numbering of `held_epoch`.
    last_complete: Option<(u64, u32)>,
    /// Added to the origin's media sequence numbers (an origin restart or a gap renumbers
    /// from where the copy stands, so viewers' numbers never go back or skip).
    offset: i64,
    /// The current object repeats a part the copy holds: its frames are skipped.
    skipping: bool,
    /// A part was completed by the frames just applied (the budget is checked after the
    /// lock is released).
    part_done: bool,
    /// A part's end, held until the next frame says whether its segment ends with it: the
    /// two go into the copy together, so that no playlist between them hints a part that
    /// will never exist (the origin applies them together too). With the origin's part in
    /// `.1`.
    held_end: Option<(Event, (u64, u32))>,
    /// The replay's last part (origin numbering): viewers are answered once it is held.
    catch_up: Option<(u64, u32)>,
}

/// The relayed copy of one rendition.
pub struct RenditionMirror {
    event: String,
    name: String,
    store: Arc<EventStore>,
    state: Mutex<State>,
    /// Becomes true once the copy has an init segment and the replayed window up to its last
    /// part (a late first viewer is answered at the live edge, not from the window's start).
    ready: watch::Sender<bool>,
    /// Called after each completed part (outside the lock), so the slot keeps its budget.
    on_part: Box<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for RenditionMirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenditionMirror")
            .field("event", &self.event)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl RenditionMirror {
    pub fn new(
        event: &str,
        name: &str,
        store: Arc<EventStore>,
        on_part: Box<dyn Fn() + Send + Sync>,
    ) -> Self {
        Self {
            event: event.to_string(),
            name: name.to_string(),
            store,
            state: Mutex::new(State::default()),
            ready: watch::Sender::new(false),
            on_part,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn event(&self) -> &str {
        &self.event
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Watches readiness (init segment and a complete part held).
    pub fn ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// The rendition in the slot's store, once its init segment arrived.
    pub fn rendition(&self) -> Option<Arc<Rendition>> {
        self.lock().rendition.clone()
    }

    /// The subscription being applied, if any.
    pub fn current_sub(&self) -> Option<u64> {
        self.lock().sub
    }

    /// Where a new subscription should continue from.
    pub fn resume(&self) -> Option<Resume> {
        let s = self.lock();
        match (s.held_epoch, s.last_complete) {
            (Some(epoch), Some((msn, part))) => Some(Resume { epoch, msn, part }),
            _ => None,
        }
    }

    /// A new subscription `sub` was asked for: whatever the previous one left half-applied
    /// is dropped, and its objects are ignored from now on.
    pub fn begin(&self, sub: u64) {
        let mut s = self.lock();
        Self::drop_partial(&mut s);
        s.sub = Some(sub);
        s.started = false;
        s.next_seq = 0;
        s.pending.clear();
        s.pending_frames = 0;
        s.skipping = false;
    }

    /// The link went down: the part in progress is dropped (it would be torn); the
    /// subscription is started again on the next connection.
    pub fn link_lost(&self) {
        let mut s = self.lock();
        Self::drop_partial(&mut s);
        s.sub = None;
        s.pending.clear();
        s.pending_frames = 0;
    }

    fn drop_partial(s: &mut State) {
        s.held_end = None;
        if let Some(r) = &s.rendition {
            r.drop_in_progress(false);
        }
    }

    /// Applies the held part end, if any, with `then` (a segment end) in the same batch.
    fn finish_part(&self, s: &mut State, then: Option<Event>) {
        let Some(r) = s.rendition.clone() else { return };
        let window = self.store.config().window_segments;
        match s.held_end.take() {
            Some((end, done)) => {
                r.apply([end].into_iter().chain(then), window);
                s.last_complete = Some(done);
                if s.catch_up.is_none_or(|c| done >= c) {
                    s.catch_up = None;
                    self.ready
                        .send_if_modified(|ready| !std::mem::replace(ready, true));
                }
                s.part_done = true;
            }
            None => {
                if let Some(e) = then {
                    r.apply([e], window);
                }
            }
        }
    }

    /// The origin accepted subscription `sub`, whose numbering is `epoch`, replaying its
    /// window up to `replay_to`.
    pub fn started(&self, sub: u64, epoch: u64, replay_to: Option<(u64, u32)>) -> Result<(), MirrorError> {
        let mut s = self.lock();
        if s.sub != Some(sub) {
            return Ok(());
        }
        s.catch_up = replay_to;
        if s.held_epoch != Some(epoch) {
            // Other numbering (a new session or a restarted origin): nothing held is skipped;
            // the first segment is renumbered after what is held.
            s.last_complete = None;
            s.held_epoch = Some(epoch);
        }
        s.started = true;
        let drained = self.drain(&mut s);
        self.after(s);
        drained
    }

    /// Runs the per-part hook once the lock is released.
    fn after(&self, mut s: std::sync::MutexGuard<'_, State>) {
        let done = std::mem::take(&mut s.part_done);
        drop(s);
        if done {
            (self.on_part)();
        }
    }

    /// A frame of object `seq` of subscription `sub`, in its stream's order.
    pub fn frame(&self, sub: u64, seq: u64, frame: Frame) -> Result<(), MirrorError> {
        let mut s = self.lock();
        if s.sub != Some(sub) || seq < s.next_seq {
            return Ok(());
        }
        if !s.started || seq > s.next_seq {
            if s.pending_frames >= MAX_PENDING_FRAMES {
                return Err(MirrorError::TooFarAhead {
                    rendition: self.name.clone(),
                });
            }
            s.pending_frames += 1;
            s.pending.entry(seq).or_default().push(frame);
            return Ok(());
        }
        let end = matches!(frame, Frame::ObjectEnd);
        let mut applied = self.apply(&mut s, frame);
        if end && applied.is_ok() {
            s.next_seq += 1;
            applied = self.drain(&mut s);
        }
        self.after(s);
        applied
    }

    /// Object `seq` of `sub` ended without its `ObjectEnd`. Returns whether the copy needs
    /// a new subscription (it does when the torn object was one it was applying or
    /// waiting for).
    pub fn torn(&self, sub: u64, seq: u64) -> bool {
        let mut s = self.lock();
        if s.sub != Some(sub) || seq < s.next_seq {
            return false;
        }
        Self::drop_partial(&mut s);
        s.sub = None;
        s.pending.clear();
        s.pending_frames = 0;
        true
    }

    /// Applies held objects that are next in order.
    fn drain(&self, s: &mut State) -> Result<(), MirrorError> {
        while s.started {
            let Some(frames) = s.pending.remove(&s.next_seq) else {
                return Ok(());
            };
            s.pending_frames -= frames.len();
            let mut complete = false;
            for f in frames {
                complete = matches!(f, Frame::ObjectEnd);
                self.apply(s, f)?;
            }
            if !complete {
                // Still arriving: its next frames come straight through `frame`.
                return Ok(());
            }
            s.next_seq += 1;
        }
        Ok(())
    }

    fn apply(&self, s: &mut State, frame: Frame) -> Result<(), MirrorError> {
        let window = self.store.config().window_segments;
        let no_init = |frame: &'static str| MirrorError::NoInit {
            rendition: self.name.clone(),
            frame,
        };
        let name = frame.name();
        let shift = |msn: u64, offset: i64| msn.saturating_add_signed(offset);
        if !matches!(frame, Frame::SegmentEnd { .. }) {
            self.finish_part(s, None);
        }
        match frame {
            Frame::Init { data, part_target_ns } => {
                let track = track_info(&data).map_err(|e| MirrorError::BadInit {
                    rendition: self.name.clone(),
                    reason: e.to_string(),
                })?;
                let r = match &s.rendition {
                    Some(r) => r.clone(),
                    None => {
                        let r = match self.store.rendition(&self.name) {
                            Ok(r) => r,
                            Err(_) => self.store.add_rendition(&self.name, track.clone()).map_err(|e| {
                                MirrorError::BadInit {
                                    rendition: self.name.clone(),
                                    reason: e.to_string(),
                                }
                            })?,
                        };
                        s.rendition = Some(r.clone());
                        s.track = track.id;
                        r
                    }
                };
                r.apply(
                    [Event::Init {
                        track: track.id,
                        data,
                        part_target: Duration::from_nanos(part_target_ns),
                    }],
                    window,
                );
            }
            Frame::SegmentStart {
                msn,
                mut discontinuity,
                program_date_time_ns,
            } => {
                let r = s.rendition.clone().ok_or_else(|| no_init(name))?;
                if s.last_complete.is_some_and(|(m, _)| msn <= m) {
                    // A segment the copy holds, replayed: its parts are skipped one by one.
                    return Ok(());
                }
                let mut at = shift(msn, s.offset);
                // An unfinished segment at the end that this one does not continue is
                // dropped (what it had is in no playlist as complete).
                if let Some((last, false)) = r.last_segment() {
                    if at <= last {
                        r.drop_in_progress(true);
                    }
                }
                if let Some((last, _)) = r.last_segment() {
                    if at != last + 1 {
                        // A restart or a gap: number on from what viewers have seen.
                        s.offset = (last + 1) as i64 - msn as i64;
                        at = last + 1;
                        discontinuity = true;
                        tracing::info!(event = %self.event, rendition = %self.name, offset = s.offset, "relayed numbering continues after a gap");
                    }
                }
                r.apply(
                    [Event::SegmentStart {
                        track: s.track,
                        msn: at,
                        discontinuity,
                        program_date_time: UNIX_EPOCH + Duration::from_nanos(program_date_time_ns),
                    }],
                    window,
                );
            }
            Frame::PartStart {
                msn,
                part,
                independent,
            } => {
                let r = s.rendition.clone().ok_or_else(|| no_init(name))?;
                s.skipping = s.last_complete.is_some_and(|held| (msn, part) <= held);
                if !s.skipping {
                    r.apply(
                        [Event::PartStart {
                            track: s.track,
                            msn: shift(msn, s.offset),
                            part,
                            independent,
                        }],
                        window,
                    );
                }
            }
            Frame::Chunk { data } => {
                let r = s.rendition.clone().ok_or_else(|| no_init(name))?;
                if !s.skipping {
                    r.apply([Event::Chunk { track: s.track, data }], window);
                }
            }
            Frame::PartEnd {
                msn,
                part,
                duration_ns,
            } => {
                s.rendition.as_ref().ok_or_else(|| no_init(name))?;
                if !s.skipping {
                    let end = Event::PartEnd {
                        track: s.track,
                        msn: shift(msn, s.offset),
                        part,
                        duration: Duration::from_nanos(duration_ns),
                    };
                    s.held_end = Some((end, (msn, part)));
                }
                s.skipping = false;
            }
            Frame::SegmentEnd { msn, duration_ns } => {
                s.rendition.as_ref().ok_or_else(|| no_init(name))?;
                let end = Event::SegmentEnd {
                    track: s.track,
                    msn: shift(msn, s.offset),
                    duration: Duration::from_nanos(duration_ns),
                };
                self.finish_part(s, Some(end));
            }
            Frame::Ended => {
                if let Some(r) = &s.rendition {
                    r.end();
                }
                self.ready.send_replace(true);
            }
            Frame::ObjectEnd => {}
            other => {
                return Err(MirrorError::NotMedia {
                    rendition: self.name.clone(),
                    frame: other.name(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use popcast_packager::store::{PlaylistRequest, StoreConfig};

    async fn playlist(store: &EventStore) -> String {
        let req = PlaylistRequest {
            msn: None,
            part: None,
            skip: false,
        };
        store.media_playlist("audio", req).await.unwrap().to_string()
    }

    /// A late first viewer waits for the replayed window up to its last part, so that its
    /// first playlist is at the live edge rather than at the window's first part.
    #[tokio::test]
    async fn the_copy_is_ready_once_the_replay_has_caught_up() {
        let store = Arc::new(EventStore::new(StoreConfig::default()));
        let m = RenditionMirror::new("ev", "audio", store, Box::new(|| {}));
        m.begin(1);
        m.started(1, 7, Some((0, 1))).unwrap();
        let init = popcast_packager::cmaf::init_segment(&popcast_packager::fixtures::audio_track()).unwrap();
        let ms = |n: u64| n * 1_000_000;
        let part = |p: u32| {
            [
                Frame::PartStart {
                    msn: 0,
                    part: p,
                    independent: true,
                },
                Frame::Chunk {
                    data: Bytes::from_static(b"chunk"),
                },
                Frame::PartEnd {
                    msn: 0,
                    part: p,
                    duration_ns: ms(200),
                },
            ]
        };
        let mut frames = vec![
            Frame::Init {
                data: init,
                part_target_ns: ms(200),
            },
            Frame::SegmentStart {
                msn: 0,
                discontinuity: false,
                program_date_time_ns: ms(1_700_000_000_000),
            },
        ];
        frames.extend(part(0));
        frames.push(Frame::ObjectEnd);
        for f in frames {
            m.frame(1, 0, f).unwrap();
        }
        let ready = m.ready();
        // Part 0.0 is complete once the next object's first frame shows no segment end.
        for f in part(1) {
            m.frame(1, 1, f).unwrap();
        }
        assert!(!*ready.borrow(), "0.0 is held but the replay runs to 0.1");
        for f in [
            Frame::SegmentEnd {
                msn: 0,
                duration_ns: ms(400),
            },
            Frame::ObjectEnd,
        ] {
            m.frame(1, 1, f).unwrap();
        }
        assert!(*ready.borrow(), "caught up with 0.1");
    }

    /// Between a part's end and its segment's end, a playlist would hint a part that never
    /// comes (the next starts a segment): viewers asking for it got 404s and torn bodies.
    #[tokio::test]
    async fn a_part_end_reaches_the_copy_with_its_segment_end() {
        let store = Arc::new(EventStore::new(StoreConfig::default()));
        let m = RenditionMirror::new("ev", "audio", store.clone(), Box::new(|| {}));
        m.begin(1);
        m.started(1, 7, None).unwrap();
        let init = popcast_packager::cmaf::init_segment(&popcast_packager::fixtures::audio_track()).unwrap();
        let ms = |n: u64| n * 1_000_000;
        let frames = [
            Frame::Init {
                data: init,
                part_target_ns: ms(200),
            },
            Frame::SegmentStart {
                msn: 0,
                discontinuity: false,
                program_date_time_ns: ms(1_700_000_000_000),
            },
            Frame::PartStart {
                msn: 0,
                part: 0,
                independent: true,
            },
            Frame::Chunk {
                data: Bytes::from_static(b"chunk"),
            },
            Frame::PartEnd {
                msn: 0,
                part: 0,
                duration_ns: ms(200),
            },
        ];
        for f in frames {
            m.frame(1, 0, f).unwrap();
        }
        let mut ready = m.ready();
        assert!(
            !*ready.borrow_and_update(),
            "the part is not complete in the copy yet"
        );
        m.frame(
            1,
            0,
            Frame::SegmentEnd {
                msn: 0,
                duration_ns: ms(200),
            },
        )
        .unwrap();
        assert!(*ready.borrow_and_update());
        let pl = playlist(&store).await;
        assert!(pl.contains("#EXTINF:0.2"), "{pl}");
        assert!(
            pl.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"1.0.m4s\""),
            "{pl}"
        );
        m.frame(1, 0, Frame::ObjectEnd).unwrap();

        // A part whose segment goes on is applied at its object's end.
        for f in [
            Frame::SegmentStart {
                msn: 1,
                discontinuity: false,
                program_date_time_ns: ms(1_700_000_000_200),
            },
            Frame::PartStart {
                msn: 1,
                part: 0,
                independent: true,
            },
            Frame::Chunk {
                data: Bytes::from_static(b"chunk"),
            },
            Frame::PartEnd {
                msn: 1,
                part: 0,
                duration_ns: ms(200),
            },
            Frame::ObjectEnd,
        ] {
            m.frame(1, 1, f).unwrap();
        }
        let pl = playlist(&store).await;
        assert!(
            pl.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"1.1.m4s\""),
            "{pl}"
        );
    }
}
