//! One live event: its stream key, its live store, and which source feeds it (a creator's
//! publisher connection or the built-in test source), through the segmenter into the store.

use crate::ingest::analyzer::{Declared, IngestAnalyzer, IngestReport};
use popcast_config::PackagerConfig;
use popcast_packager::media::{CodecConfig, Frame, TrackId, TrackInfo};
use popcast_packager::segmenter::{Segmenter, SegmenterConfig, SegmenterError};
use popcast_packager::store::{EventStore, StoreConfig};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Rendition names of a passthrough event (the ABR ladder adds encoded ones later).
pub const VIDEO_RENDITION: &str = "source";
pub const AUDIO_RENDITION: &str = "audio";

/// What feeds an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// A creator's publisher connection.
    Publisher { peer: SocketAddr },
    /// The built-in test source (`popcast up`).
    TestSource,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Publisher { peer } => write!(f, "publisher {peer}"),
            Self::TestSource => f.write_str("test source"),
        }
    }
}

/// Why a source may not feed an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("event {event:?} is already fed by {by}")]
    Busy { event: String, by: SourceKind },
    #[error("event {0:?} has ended")]
    Ended(String),
    #[error("event {event:?} opens for publishing at {opens} (its start less the provisioning lead time)")]
    NotYet { event: String, opens: String },
}

/// A publisher that has sent no frame for this long may be replaced by a new one even
/// without `publish_takeover`: after a network change the creator's encoder reconnects
/// before the dead connection's idle timeout has fired, and must not be refused.
pub const STALE_PUBLISHER: Duration = Duration::from_secs(2);

/// Why a frame or a track set was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// Another source took the event over; this one must stop.
    #[error("another source took event {0:?} over")]
    Replaced(String),
    /// An operator ended this publisher's session (and revoked its stream key).
    #[error("an operator ended this publishing session on event {0:?}; its stream key is revoked")]
    Kicked(String),
    /// Frames before the source said which tracks it has.
    #[error("no tracks declared yet")]
    NoTracks,
    /// The event has ended.
    #[error("event {0:?} has ended")]
    Ended(String),
    /// The source's keyframes are further apart than the segment target and the event's
    /// keyframe policy is to refuse: the ingest analyzer's message, with the fix.
    #[error("publish refused: {0}")]
    KeyframeInterval(String),
    /// The segmenter refused the tracks (e.g. a codec record the muxer cannot write).
    #[error("tracks refused: {0}")]
    BadTracks(String),
    /// The segmenter refused one frame; later frames are unaffected.
    #[error(transparent)]
    Frame(#[from] SegmenterError),
}

/// One session's segmenter, the source tracks it was set up with, the rendition each track
/// feeds, and the ABR ladder encoding from the source's video.
struct Pipeline {
    seg: Segmenter,
    /// The live source's tracks (empty in a slate session before the creator's first frame).
    tracks: Vec<TrackInfo>,
    names: Vec<(TrackId, String)>,
    ladder: Option<Ladder>,
    /// Tells this session's ladder output from a later session's.
    generation: u64,
    /// A provisioned event's session, which the slate feeds while no creator's media does.
    slate: Option<SlateSession>,
}

/// What feeds a slate session's renditions now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Live,
    Slate,
}

/// The slate side of a session: its renditions keep their tracks (session track ids) whoever
/// feeds them; a switch is a discontinuity with new codec parameters (a new `init-{msn}.mp4`).
struct SlateSession {
    input: Input,
    /// The session's track of the source rendition and of the audio rendition.
    video: TrackId,
    audio: TrackId,
    /// The live media's parameters per session track (the source's, the ladder's outputs),
    /// given back to the segmenter when the creator's media returns.
    live: Vec<TrackInfo>,
    /// Whether a creator's media has fed the session.
    went_live: bool,
    /// After an end: the ended card plays until then, and the playlists end.
    ending: Option<Instant>,
}

impl Pipeline {
    /// The session track a live frame of `track` feeds (a slate session maps the source's
    /// tracks onto its own by kind).
    fn session_track(&self, track: TrackId) -> Option<TrackId> {
        let Some(sl) = &self.slate else {
            return Some(track);
        };
        let t = self.tracks.iter().find(|t| t.id == track)?;
        Some(match t.codec {
            CodecConfig::H264(_) => sl.video,
            CodecConfig::Aac(_) => sl.audio,
        })
    }

    /// Hands a slate session's renditions to the live media: the timeline breaks and each
    /// track takes the live parameters.
    fn go_live(&mut self, store: &EventStore) {
        let Some(sl) = &mut self.slate else { return };
        if sl.input == Input::Live {
            return;
        }
        self.seg.discontinuity();
        for info in &sl.live {
            if let Err(e) = self.seg.replace_track(info.clone()) {
                tracing::warn!(track = info.id.0, error = %e, "live parameters refused");
            }
        }
        sl.input = Input::Live;
        sl.went_live = true;
        self.flush(store);
    }
}

impl Pipeline {
    /// Applies what the segmenter produced to `store`.
    fn flush(&mut self, store: &EventStore) {
        let events: Vec<_> = self.seg.drain().collect();
        if !events.is_empty() {
            let names = &self.names;
            store.apply(events, |t| {
                names.iter().find(|(id, _)| *id == t).map(|(_, n)| n.clone())
            });
        }
    }
}

#[cfg(feature = "ladder")]
type Ladder = popcast_packager::ffmpeg::ladder::Ladder;
/// Without FFmpeg (the fuzz build) there is no ladder.
#[cfg(not(feature = "ladder"))]
struct Ladder;

#[cfg(not(feature = "ladder"))]
impl Ladder {
    fn push(&self, _: Frame) {}
}

/// The ABR ladders events choose from by name: `default` (the `[ladder]` section), `none`
/// (the source alone), and the `[ladders.NAME]` sections.
#[derive(Debug, Clone, Default)]
pub struct Ladders {
    pub default: popcast_config::LadderConfig,
    pub named: std::collections::BTreeMap<String, popcast_config::LadderConfig>,
}

impl Ladders {
    pub fn from_config(c: &popcast_config::Config) -> Self {
        Self {
            default: c.ladder.clone(),
            named: c.ladders.clone(),
        }
    }

    /// The ladder an event named: `None` for `none`; a name no longer configured falls back
    /// to the default (said so).
    pub fn pick(&self, name: &str) -> Option<popcast_config::LadderConfig> {
        match name {
            "none" => None,
            "default" => Some(self.default.clone()),
            other => Some(self.named.get(other).cloned().unwrap_or_else(|| {
                tracing::warn!(
                    ladder = other,
                    "an event names a ladder the config no longer has; using the default"
                );
                self.default.clone()
            })),
        }
    }

    /// Whether `name` is a ladder an event may choose.
    pub fn knows(&self, name: &str) -> bool {
        name == "default" || name == "none" || self.named.contains_key(name)
    }

    /// The names an event may choose.
    pub fn names(&self) -> Vec<String> {
        ["default", "none"]
            .into_iter()
            .map(String::from)
            .chain(self.named.keys().cloned())
            .collect()
    }
}

/// A slate session as its slate task sees it.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "ladder"), allow(dead_code))]
pub(crate) struct SlateView {
    pub input: Input,
    /// A creator's media arrived within the hold.
    pub live_recent: bool,
    pub went_live: bool,
    pub ending: Option<Instant>,
    /// The session's video tracks and the card size each needs.
    pub videos: Vec<(TrackId, u32, u32)>,
    pub audio: TrackId,
}

/// Who feeds the event now and the pipeline it feeds.
struct FeedState {
    /// Id of the source holding the event (`None`: nobody feeds it).
    owner: Option<(u64, SourceKind)>,
    /// The current session's pipeline. It outlives a source, so that a source with the same
    /// tracks continues the timeline after a discontinuity.
    pipeline: Option<Pipeline>,
    /// When the current source last gave a frame.
    last_frame: Option<Instant>,
    ended: bool,
    /// What the current (or last) source sends, measured.
    ingest: Option<IngestAnalyzer>,
    /// The source an operator kicked (its next frame gets [`FeedError::Kicked`]), until
    /// another source attaches.
    kicked: Option<u64>,
}

/// Something observers (`popcast up`, the health endpoint) can watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedStatus {
    pub source: Option<SourceKind>,
    /// Sessions started (a source with different tracks starts a new one).
    pub sessions: u64,
    /// Sources attached since start.
    pub sources: u64,
}

/// The first media sequence number of a new session of an event: past every number the
/// event's store has used, and never below the Unix time in units of half the segment
/// target. Segments last about their target, so numbers keep increasing across an origin
/// restart (which forgets the store) as well as within a process, and an edge or player
/// cache never sees a URL name other bytes; and no session starts at 0.
fn first_msn(packager: &PackagerConfig, store: &EventStore) -> u64 {
    let unit = u128::from((packager.segment_target_ms / 2).max(1));
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let from_clock = u64::try_from(now_ms / unit).unwrap_or(u64::MAX >> 2);
    store
        .rendition_names()
        .iter()
        .filter_map(|name| store.rendition(name).ok().and_then(|r| r.last_part()))
        .map(|(msn, _)| msn + 1)
        .fold(from_clock.max(1), u64::max)
}

/// One event: key, store, feeder.
pub struct LiveEvent {
    name: String,
    key_hash: Mutex<[u8; 32]>,
    /// `Some`: a ticketed event, whose viewers need a token signed by one of these keys
    /// (key id, secret; newest first). `None`: anyone may watch.
    tickets: Mutex<Option<TicketKeys>>,
    /// When and where edges serve the event; `None` (an event from the config file): always,
    /// everywhere.
    schedule: Mutex<Option<Schedule>>,
    packager: PackagerConfig,
    /// The ABR ladder new sessions get (`None`: the source alone).
    ladder: Mutex<Option<popcast_config::LadderConfig>>,
    /// Sessions started, numbering each pipeline.
    generations: AtomicU64,
    /// Milliseconds the ended card plays in a slate session.
    ended_card: AtomicU64,
    /// Refuse a source whose keyframe is overdue past the segment target (`KeyframePolicy::Refuse`).
    refuse_long_gops: std::sync::atomic::AtomicBool,
    slate_begun: std::sync::atomic::AtomicBool,
    /// The running ladder's counters, for /metrics.
    #[cfg(feature = "ladder")]
    ladder_stats: Mutex<Option<Arc<popcast_packager::ffmpeg::ladder::LadderStats>>>,
    /// The store viewers read now; watchers (the relay) learn when a new session replaces it.
    store: watch::Sender<Arc<EventStore>>,
    state: Mutex<FeedState>,
    next_source: AtomicU64,
    status: watch::Sender<FeedStatus>,
}

impl fmt::Debug for LiveEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveEvent")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// When and where an event is served: edges in `regions` hold a slot for it from a lead
/// time before `start` until a grace period after `end` (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Publishers are admitted from this instant (the start less the provisioning lead).
    pub publish_from: i64,
    pub start: i64,
    pub end: i64,
    pub regions: Vec<String>,
    pub viewer_cap: u32,
}

impl Schedule {
    /// Whether an edge in `region` should hold the event's slot at `now`.
    pub fn wants(&self, region: &str, now: i64, lead_secs: i64, grace_secs: i64) -> bool {
        self.regions.iter().any(|r| r == region)
            && now >= self.start - lead_secs
            && now < self.end + grace_secs
    }
}

/// A ticketed event's viewer-token keys: (key id, secret), newest first.
pub type TicketKeys = Arc<[(String, bytes::Bytes)]>;

/// SHA-256 of a stream key: keys are held hashed and compared as hashes in constant time.
pub fn hash_key(key: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, key);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

impl LiveEvent {
    /// An event whose creators publish with `stream_key`.
    pub fn new(name: &str, stream_key: &[u8], packager: &PackagerConfig) -> Arc<Self> {
        Self::with_key_hash(name, hash_key(stream_key), packager)
    }

    /// An event known by its stream key's [`hash_key`] only (as the event database holds
    /// it).
    pub fn with_key_hash(name: &str, key_hash: [u8; 32], packager: &PackagerConfig) -> Arc<Self> {
        let (status, _) = watch::channel(FeedStatus {
            source: None,
            sessions: 0,
            sources: 0,
        });
        Arc::new(Self {
            name: name.to_string(),
            key_hash: Mutex::new(key_hash),
            tickets: Mutex::new(None),
            schedule: Mutex::new(None),
            packager: packager.clone(),
            ladder: Mutex::new(None),
            generations: AtomicU64::new(0),
            ended_card: AtomicU64::new(0),
            refuse_long_gops: std::sync::atomic::AtomicBool::new(false),
            slate_begun: std::sync::atomic::AtomicBool::new(false),
            #[cfg(feature = "ladder")]
            ladder_stats: Mutex::new(None),
            store: watch::Sender::new(Arc::new(EventStore::new(StoreConfig::from_config(packager)))),
            state: Mutex::new(FeedState {
                owner: None,
                pipeline: None,
                last_frame: None,
                ended: false,
                ingest: None,
                kicked: None,
            }),
            next_source: AtomicU64::new(1),
            status,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The packager's segment target: a slate card's GOP.
    pub fn segment_target_ms(&self) -> u32 {
        self.packager.segment_target_ms
    }

    /// True once: whoever gets it starts the event's slate task.
    pub fn begin_slate(&self) -> bool {
        !self.slate_begun.swap(true, Ordering::Relaxed)
    }

    /// Makes the event ticketed with these token keys (newest first), or public with `None`.
    /// Edges learn it when the relay provisions them again ([`crate::Events::touch`]).
    pub fn set_tickets(&self, keys: Option<Vec<(String, bytes::Bytes)>>) {
        *self.tickets.lock().unwrap_or_else(|e| e.into_inner()) = keys.map(Arc::from);
    }

    /// Sets the ABR ladder of the event's next sessions (`None`: the source alone). A session
    /// under way keeps its ladder.
    pub fn set_ladder(&self, ladder: Option<popcast_config::LadderConfig>) {
        *self.ladder.lock().unwrap_or_else(|e| e.into_inner()) = ladder;
    }

    /// The running ladder's counters per rendition (for /metrics).
    #[cfg(feature = "ladder")]
    pub fn ladder_stats(&self) -> Option<Arc<popcast_packager::ffmpeg::ladder::LadderStats>> {
        self.ladder_stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets when and where edges serve the event (see [`Schedule`]).
    pub fn set_schedule(&self, s: Option<Schedule>) {
        *self.schedule.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }

    pub fn schedule(&self) -> Option<Schedule> {
        self.schedule.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The token keys of a ticketed event; `None` for a public one.
    pub fn tickets(&self) -> Option<TicketKeys> {
        self.tickets.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Checks a viewer request's token against a ticketed event's keys: `Ok(None)` for a
    /// public event, `Ok(Some(token))` for a valid one, `Err(why)` for a 403.
    pub fn admit_viewer(&self, headers: &http::HeaderMap, query: &str) -> Result<Option<String>, String> {
        let Some(keys) = self.tickets() else {
            return Ok(None);
        };
        let keys: Vec<_> = keys
            .iter()
            .filter_map(|(kid, secret)| popcast_packager::token::EventKey::new(kid, secret).ok())
            .collect();
        popcast_packager::http::tickets::admit(&keys, &self.name, headers, query).map(Some)
    }

    pub(crate) fn key_hash(&self) -> [u8; 32] {
        *self.key_hash.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the stream key's hash (a rotation, or a revocation after a kick).
    pub fn set_key_hash(&self, hash: [u8; 32]) {
        *self.key_hash.lock().unwrap_or_else(|e| e.into_inner()) = hash;
    }

    /// Ends the current publisher's session (its next frame is refused and its connection
    /// closed); the timeline continues after a discontinuity for whoever publishes next.
    /// Whether a publisher was there.
    pub fn kick(&self) -> bool {
        let mut state = self.lock();
        let Some((id, SourceKind::Publisher { .. })) = state.owner.clone() else {
            return false;
        };
        self.end_timeline(&mut state);
        state.owner = None;
        state.kicked = Some(id);
        self.status.send_modify(|s| s.source = None);
        true
    }

    /// Whether the last source left because an operator kicked it (and none has attached
    /// since): the lifecycle's `publisher.lost` reason.
    pub fn was_kicked(&self) -> bool {
        let state = self.lock();
        state.owner.is_none() && state.kicked.is_some()
    }

    /// Whether `hash` (a [`hash_key`] of a presented key) is this event's key, in constant time.
    pub fn key_matches(&self, hash: &[u8; 32]) -> bool {
        subtle::ConstantTimeEq::ct_eq(&self.key_hash()[..], &hash[..]).into()
    }

    /// The ingest report of the current source (or the last one), and whether one is connected.
    pub fn ingest_report(&self) -> Option<(IngestReport, bool)> {
        let state = self.lock();
        let connected = state.owner.is_some();
        state.ingest.as_ref().map(|a| (a.report(), connected))
    }

    /// The store viewers read now. A new session (a source with other tracks) replaces it.
    pub fn store(&self) -> Arc<EventStore> {
        self.store.borrow().clone()
    }

    /// Watches the store: changes when a new session replaces it.
    pub fn store_watch(&self) -> watch::Receiver<Arc<EventStore>> {
        self.store.subscribe()
    }

    /// Whether the operator ended the event.
    pub fn is_ended(&self) -> bool {
        self.lock().ended
    }

    /// Ends the event's playlists (EXT-X-ENDLIST) after closing the open segments. The
    /// operator's "end event" (the control API arrives with the events issue).
    pub fn end(&self) {
        let mut state = self.lock();
        self.end_timeline(&mut state);
        state.ended = true;
        state.owner = None;
        let card = self.ended_card.load(Ordering::Relaxed);
        // A slate session shows the ended card first (its task ends the playlists).
        let slate = state.pipeline.as_mut().and_then(|p| p.slate.as_mut());
        match slate {
            Some(sl) if card > 0 && sl.ending.is_none() => {
                sl.ending = Some(Instant::now() + Duration::from_millis(card));
            }
            Some(sl) if sl.ending.is_some() => {}
            Some(_) => {
                // No ended card: the slate session ends now, and its task with it.
                state.pipeline = None;
                self.store().end();
            }
            None => self.store().end(),
        }
        self.status.send_modify(|s| s.source = None);
    }

    /// What a source whose keyframes are further apart than the segment target gets.
    pub fn set_keyframe_policy(&self, policy: popcast_config::KeyframePolicy) {
        self.refuse_long_gops.store(
            policy == popcast_config::KeyframePolicy::Refuse,
            Ordering::Relaxed,
        );
    }

    /// How long a slate session's ended card plays before its playlists end (0: none).
    pub fn set_ended_card(&self, d: Duration) {
        self.ended_card.store(
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Watches who feeds the event.
    pub fn status(&self) -> watch::Receiver<FeedStatus> {
        self.status.subscribe()
    }

    /// How long ago the current source gave its last frame (or attached, before its first).
    pub fn since_last_frame(&self) -> Option<Duration> {
        let state = self.lock();
        state.owner.as_ref()?;
        state.last_frame.map(|t| t.elapsed())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `kind` the event's source. A publisher replaces the test source, and replaces
    /// another publisher only with `takeover`; the test source never replaces anyone.
    pub fn claim(self: &Arc<Self>, kind: SourceKind, takeover: bool) -> Result<Feed, ClaimError> {
        let mut state = self.lock();
        if state.ended {
            return Err(ClaimError::Ended(self.name.clone()));
        }
        if let (SourceKind::Publisher { .. }, Some(s)) = (&kind, self.schedule()) {
            let now = crate::events::api::system_now();
            if now < s.publish_from {
                return Err(ClaimError::NotYet {
                    event: self.name.clone(),
                    opens: crate::events::api::rfc3339(s.publish_from),
                });
            }
        }
        if let Some((_, by)) = &state.owner {
            let stale = state.last_frame.is_none_or(|t| t.elapsed() >= STALE_PUBLISHER);
            let may = match (&kind, by) {
                (SourceKind::TestSource, _) => false,
                (SourceKind::Publisher { .. }, SourceKind::TestSource) => true,
                (SourceKind::Publisher { .. }, SourceKind::Publisher { .. }) => takeover || stale,
            };
            if !may {
                return Err(ClaimError::Busy {
                    event: self.name.clone(),
                    by: by.clone(),
                });
            }
            tracing::info!(event = %self.name, old = %by, new = %kind, "source replaced");
            self.end_timeline(&mut state);
        }
        let id = self.next_source.fetch_add(1, Ordering::Relaxed);
        state.owner = Some((id, kind.clone()));
        state.kicked = None;
        state.last_frame = Some(Instant::now());
        state.ingest = Some(IngestAnalyzer::new(
            f64::from(self.packager.segment_target_ms) / 1000.0,
        ));
        // Under the lock, so that a concurrent release cannot overwrite this.
        self.status.send_modify(|s| {
            s.source = Some(kind);
            s.sources += 1;
        });
        drop(state);
        Ok(Feed {
            event: self.clone(),
            id,
        })
    }

    /// The creator's tracks join a slate session: mapped onto the session's tracks by kind,
    /// with the ladder started from the source's video the first time (its renditions join
    /// the session); the slate steps aside at the creator's first video keyframe.
    fn live_into_slate_session(
        self: &Arc<Self>,
        p: &mut Pipeline,
        tracks: Vec<TrackInfo>,
    ) -> Result<(), FeedError> {
        let store = self.store();
        let first = p.tracks.is_empty();
        let changed = !first && p.tracks != tracks;
        let Some(sl) = &mut p.slate else { return Ok(()) };
        let (video, audio) = (sl.video, sl.audio);
        if first || changed {
            let mut live = Vec::new();
            for t in &tracks {
                let id = match t.codec {
                    CodecConfig::H264(_) => video,
                    CodecConfig::Aac(_) => audio,
                };
                if !live.iter().any(|l: &TrackInfo| l.id == id) {
                    live.push(TrackInfo { id, ..t.clone() });
                }
            }
            sl.live = live;
            p.tracks = tracks;
            if first {
                let mut names = std::mem::take(&mut p.names);
                p.ladder = self.start_ladder(p.generation, &p.tracks, &mut p.seg, &store, &mut names);
                p.names = names;
            } else {
                self.restart_ladder(p);
            }
            #[cfg(feature = "ladder")]
            if let (Some(l), Some(sl)) = (&p.ladder, &mut p.slate) {
                sl.live.extend(l.tracks().iter().cloned());
            }
        }
        // A reconnect while the creator's media still counts as live (within the hold): its
        // timestamps start afresh after a discontinuity, with the new parameters if they
        // changed. Otherwise the slate plays on until the creator's first video keyframe
        // (see `Feed::push`), which hands the renditions the new parameters.
        if let Some(sl) = p.slate.as_ref().filter(|s| s.input == Input::Live) {
            p.seg.discontinuity();
            if changed {
                for info in &sl.live {
                    if let Err(e) = p.seg.replace_track(info.clone()) {
                        tracing::warn!(event = %self.name, track = info.id.0, error = %e, "new parameters refused");
                    }
                }
            }
            p.flush(&store);
        }
        Ok(())
    }

    /// Whether `tracks` can feed a slate session whose creator had `before`: the same kinds
    /// of track (one video, one audio), whatever their parameters.
    fn same_kinds(before: &[TrackInfo], tracks: &[TrackInfo]) -> bool {
        let kinds = |ts: &[TrackInfo]| {
            let mut k: Vec<bool> = ts
                .iter()
                .map(|t| matches!(t.codec, CodecConfig::H264(_)))
                .collect();
            k.sort_unstable();
            k
        };
        !before.is_empty() && kinds(before) == kinds(tracks)
    }

    /// Opens a provisioned event's session on the slate: `card` (the source rendition's size)
    /// and `silence` feed it until the creator's first keyframe. Nothing when the event
    /// already has a session or has ended. Whether it opened.
    pub fn open_slate(&self, card: TrackInfo, silence: TrackInfo) -> Result<bool, FeedError> {
        let mut state = self.lock();
        if state.ended || state.pipeline.is_some() {
            return Ok(false);
        }
        let store = self.store();
        let mut seg = Segmenter::new(SegmenterConfig::from(&self.packager));
        seg.start_at(first_msn(&self.packager, &store), false);
        let (video, audio) = (TrackId(1), TrackId(2));
        let mut names = Vec::new();
        for (info, name) in [
            (TrackInfo { id: video, ..card }, VIDEO_RENDITION),
            (TrackInfo { id: audio, ..silence }, AUDIO_RENDITION),
        ] {
            seg.add_track(info.clone())
                .map_err(|e| FeedError::BadTracks(e.to_string()))?;
            store
                .add_rendition(name, info)
                .map_err(|e| FeedError::BadTracks(e.to_string()))?;
            names.push((
                if name == VIDEO_RENDITION { video } else { audio },
                name.to_string(),
            ));
        }
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        state.pipeline = Some(Pipeline {
            seg,
            tracks: Vec::new(),
            names,
            ladder: None,
            generation,
            slate: Some(SlateSession {
                input: Input::Slate,
                video,
                audio,
                live: Vec::new(),
                went_live: false,
                ending: None,
            }),
        });
        self.status.send_modify(|s| s.sessions += 1);
        Ok(true)
    }

    /// What the slate needs to decide, read under the lock.
    #[cfg_attr(not(feature = "ladder"), allow(dead_code))]
    pub(crate) fn slate_view(&self, hold: Duration) -> Option<SlateView> {
        let state = self.lock();
        let p = state.pipeline.as_ref()?;
        let sl = p.slate.as_ref()?;
        // The creator's media feeds the session and has given a frame within the hold.
        let live_recent = state.owner.is_some()
            && sl.input == Input::Live
            && state.last_frame.is_some_and(|t| t.elapsed() < hold);
        let videos = p
            .seg
            .tracks()
            .filter(|t| t.id != sl.audio)
            .map(|t| {
                // The card's size: the rendition's live size once known, else its own.
                let live = sl.live.iter().find(|l| l.id == t.id).unwrap_or(t);
                let shape = live
                    .video
                    .or(t.video)
                    .unwrap_or(popcast_packager::media::VideoShape {
                        width: 1280,
                        height: 720,
                        frame_rate: None,
                    });
                (t.id, shape.width, shape.height)
            })
            .collect();
        Some(SlateView {
            input: sl.input,
            live_recent,
            went_live: sl.went_live,
            ending: sl.ending,
            videos,
            audio: sl.audio,
        })
    }

    /// Puts the slate on (or a new card of it): the timeline breaks and each track takes the
    /// card's (or silence's) parameters. `tracks` carry session track ids.
    #[cfg_attr(not(feature = "ladder"), allow(dead_code))]
    pub(crate) fn slate_on(&self, tracks: &[TrackInfo], hold: Duration) {
        let mut state = self.lock();
        let store = self.store();
        // The creator's media may have come back while the cards were being encoded.
        let live_recent = state.owner.is_some() && state.last_frame.is_some_and(|t| t.elapsed() < hold);
        let ended = state.ended;
        let Some(p) = state.pipeline.as_mut() else { return };
        let Some(sl) = p.slate.as_mut() else { return };
        if sl.input == Input::Live {
            if live_recent && !ended {
                return;
            }
            p.seg.discontinuity();
            sl.input = Input::Slate;
        }
        for t in tracks {
            if let Err(e) = p.seg.replace_track(t.clone()) {
                tracing::warn!(event = %self.name, track = t.id.0, error = %e, "slate parameters refused");
            }
        }
        p.flush(&store);
    }

    /// Feeds slate frames (session track ids) while the slate is on.
    #[cfg_attr(not(feature = "ladder"), allow(dead_code))]
    pub(crate) fn slate_push(&self, frames: Vec<Frame>) {
        let mut state = self.lock();
        let store = self.store();
        let Some(p) = state.pipeline.as_mut() else { return };
        if p.slate.as_ref().is_none_or(|s| s.input != Input::Slate) {
            return;
        }
        for f in frames {
            if let Err(e) = p.seg.push(f) {
                tracing::debug!(event = %self.name, error = %e, "slate frame refused");
            }
        }
        p.flush(&store);
    }

    /// The ended card has started: it plays at least `d` from now.
    #[cfg_attr(not(feature = "ladder"), allow(dead_code))]
    pub(crate) fn slate_ending_shown(&self, d: Duration) {
        let mut state = self.lock();
        if let Some(sl) = state.pipeline.as_mut().and_then(|p| p.slate.as_mut()) {
            let at = Instant::now() + d;
            sl.ending = Some(sl.ending.map_or(at, |e| e.max(at)));
        }
    }

    /// The slate task stopped early (a card could not be made): an ended event's playlists
    /// end now; otherwise the session goes on without a slate.
    #[cfg_attr(not(feature = "ladder"), allow(dead_code))]
    pub(crate) fn slate_abandon(&self) {
        let mut state = self.lock();
        if state.ended {
            drop(state);
            self.slate_finish();
            return;
        }
        match state.pipeline.as_mut() {
            // Never live: the next creator starts a session of their own.
            Some(p) if p.tracks.is_empty() => {
                self.end_timeline(&mut state);
                state.pipeline = None;
            }
            Some(p) => {
                // Back to the creator's parameters, without a slate from now on.
                let store = self.store();
                p.go_live(&store);
                p.slate = None;
            }
            None => {}
        }
    }

    /// Ends the playlists after the ended card.
    #[cfg_attr(not(feature = "ladder"), allow(dead_code))]
    pub(crate) fn slate_finish(&self) {
        let mut state = self.lock();
        self.end_timeline(&mut state);
        if let Some(sl) = state.pipeline.as_mut().and_then(|p| p.slate.as_mut()) {
            sl.ending = None;
        }
        state.pipeline = None;
        drop(state);
        self.store().end();
    }

    /// Closes the open segments and marks a discontinuity for whoever feeds next.
    fn end_timeline(&self, state: &mut FeedState) {
        if let Some(p) = &mut state.pipeline {
            p.seg.discontinuity();
            p.flush(&self.store());
        }
    }

    /// The rendition a source track feeds.
    fn source_rendition(t: &TrackInfo) -> String {
        match t.codec {
            CodecConfig::H264(_) => VIDEO_RENDITION.to_string(),
            CodecConfig::Aac(_) => AUDIO_RENDITION.to_string(),
        }
    }

    /// A frame the ladder encoded for session `generation`: into that session's segmenter,
    /// if it is still the current one.
    #[cfg_attr(not(feature = "ladder"), allow(dead_code))]
    fn ladder_frame(&self, generation: u64, frame: Frame) {
        let mut state = self.lock();
        if state.ended {
            return;
        }
        let store = self.store();
        let Some(p) = state.pipeline.as_mut().filter(|p| p.generation == generation) else {
            return;
        };
        if p.slate.as_ref().is_some_and(|s| s.input == Input::Slate) {
            return;
        }
        if let Err(e) = p.seg.push(frame) {
            tracing::debug!(event = %self.name, error = %e, "ladder frame refused");
        }
        p.flush(&store);
    }

    /// Starts the ladder for a new session's source video, when the event has one and the
    /// source is large enough for any rendition: its tracks join the segmenter and the store.
    #[cfg(feature = "ladder")]
    fn start_ladder(
        self: &Arc<Self>,
        generation: u64,
        source: &[TrackInfo],
        seg: &mut Segmenter,
        store: &EventStore,
        names: &mut Vec<(TrackId, String)>,
    ) -> Option<Ladder> {
        use popcast_packager::ffmpeg::ladder::{Ladder, LadderSettings};
        let cfg = self.ladder.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        let video = source.iter().find(|t| matches!(t.codec, CodecConfig::H264(_)))?;
        let targets = popcast_packager::ladder::plan(&video.video?, &cfg);
        if targets.is_empty() {
            return None;
        }
        let ladder = match Ladder::start(
            video,
            &targets,
            &LadderSettings::from_config(&cfg),
            self.ladder_sink(generation),
        ) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(event = %self.name, error = %e, "ABR ladder not started; the source alone is served");
                return None;
            }
        };
        for (t, track) in targets.iter().zip(ladder.tracks()) {
            let added = seg
                .add_track(track.clone())
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    store
                        .add_rendition(&t.name, track.clone())
                        .map(drop)
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = added {
                tracing::warn!(event = %self.name, rendition = %t.name, error = %e, "ABR ladder not started");
                return None;
            }
            names.push((track.id, t.name.clone()));
        }
        tracing::info!(event = %self.name, renditions = ?targets.iter().map(|t| format!("{} {}x{} {} kb/s", t.name, t.width, t.height, t.kbps)).collect::<Vec<_>>(), "ABR ladder started");
        *self.ladder_stats.lock().unwrap_or_else(|e| e.into_inner()) = Some(ladder.stats().clone());
        Some(ladder)
    }

    /// Where a ladder of session `generation` hands its frames.
    #[cfg(feature = "ladder")]
    fn ladder_sink(self: &Arc<Self>, generation: u64) -> popcast_packager::ffmpeg::ladder::Sink {
        let weak = Arc::downgrade(self);
        Arc::new(move |f: Frame| {
            if let Some(ev) = weak.upgrade() {
                ev.ladder_frame(generation, f);
            }
        })
    }

    /// Restarts a session's ladder for its creator's new source (other size or codec
    /// parameters), from a new decoder. The renditions are planned again for the new
    /// source (sizes follow its aspect ratio); those the session already has keep their
    /// names and tracks (new headers follow at the switch), a rendition the new source is
    /// too small for pauses, and one the session never had is not added (players know only
    /// the renditions of their multivariant playlist). Frames the old ladder still delivers
    /// are dropped (a new generation).
    #[cfg(feature = "ladder")]
    fn restart_ladder(self: &Arc<Self>, p: &mut Pipeline) {
        use popcast_packager::ffmpeg::ladder::{Ladder, LadderSettings};
        let Some(old) = p.ladder.take() else { return };
        let before = old.targets().to_vec();
        drop(old);
        p.generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let Some(cfg) = self.ladder.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
            return;
        };
        let Some(video) = p.tracks.iter().find(|t| matches!(t.codec, CodecConfig::H264(_))) else {
            return;
        };
        let Some(shape) = video.video else { return };
        let targets: Vec<_> = popcast_packager::ladder::plan(&shape, &cfg)
            .into_iter()
            .filter_map(|mut t| {
                t.track = before.iter().find(|b| b.name == t.name)?.track;
                Some(t)
            })
            .collect();
        let paused: Vec<&str> = before
            .iter()
            .filter(|b| !targets.iter().any(|t| t.name == b.name))
            .map(|b| b.name.as_str())
            .collect();
        if !paused.is_empty() {
            tracing::warn!(event = %self.name, renditions = ?paused, "the new source is too small for these renditions: they pause");
        }
        if targets.is_empty() {
            return;
        }
        match Ladder::start(
            video,
            &targets,
            &LadderSettings::from_config(&cfg),
            self.ladder_sink(p.generation),
        ) {
            Ok(l) => {
                *self.ladder_stats.lock().unwrap_or_else(|e| e.into_inner()) = Some(l.stats().clone());
                tracing::info!(event = %self.name, "ABR ladder restarted for the new source");
                p.ladder = Some(l);
            }
            Err(e) => {
                tracing::warn!(event = %self.name, error = %e, "ABR ladder not restarted; its renditions pause")
            }
        }
    }

    #[cfg(not(feature = "ladder"))]
    fn restart_ladder(self: &Arc<Self>, _: &mut Pipeline) {}

    #[cfg(not(feature = "ladder"))]
    fn start_ladder(
        self: &Arc<Self>,
        _: u64,
        _: &[TrackInfo],
        _: &mut Segmenter,
        _: &EventStore,
        _: &mut Vec<(TrackId, String)>,
    ) -> Option<Ladder> {
        None
    }
}

/// A source's hold on an event. Dropping it releases the event (a reconnecting source with
/// the same tracks continues the session after a discontinuity).
pub struct Feed {
    event: Arc<LiveEvent>,
    id: u64,
}

impl fmt::Debug for Feed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Feed")
            .field("event", &self.event.name)
            .field("id", &self.id)
            .finish()
    }
}

impl Feed {
    pub fn event(&self) -> &Arc<LiveEvent> {
        &self.event
    }

    fn owned(&self) -> Result<std::sync::MutexGuard<'_, FeedState>, FeedError> {
        let state = self.event.lock();
        if state.ended {
            return Err(FeedError::Ended(self.event.name.clone()));
        }
        match state.owner {
            Some((id, _)) if id == self.id => Ok(state),
            _ if state.kicked == Some(self.id) => Err(FeedError::Kicked(self.event.name.clone())),
            _ => Err(FeedError::Replaced(self.event.name.clone())),
        }
    }

    /// Declares the source's tracks (again, when they change). The same tracks as the
    /// session's continue it after a discontinuity. In a slate session (an event provisioned
    /// through the API), tracks of the same kinds with other parameters (size, profile,
    /// sample rate) continue it too, with new headers (`init-{msn}.mp4`) and a restarted
    /// ladder. Anything else starts a new session with a new store (players must reload).
    pub fn set_tracks(&self, tracks: Vec<TrackInfo>) -> Result<(), FeedError> {
        let mut state = self.owned()?;
        if let Some(a) = &mut state.ingest {
            a.tracks(&tracks);
        }
        if let Some(p) = &mut state.pipeline {
            if p.slate.is_some() && (p.tracks.is_empty() || LiveEvent::same_kinds(&p.tracks, &tracks)) {
                if !p.tracks.is_empty() && p.tracks != tracks {
                    tracing::info!(event = %self.event.name, "the creator came back with other settings: the session continues with new headers");
                }
                self.event.live_into_slate_session(p, tracks)?;
                tracing::info!(event = %self.event.name, "the creator's media takes over the session");
                return Ok(());
            }
            if p.tracks == tracks {
                p.seg.discontinuity();
                p.flush(&self.event.store());
                tracing::info!(event = %self.event.name, "same tracks: the session continues after a discontinuity");
                return Ok(());
            }
        }
        // A new session: the old one's open segments are closed and its playlists ended,
        // and the new one numbers on from where it stopped, so no URL of the event ever
        // names other bytes (caches hold segments and parts as immutable).
        let old = self.event.store();
        if let Some(mut p) = state.pipeline.take() {
            p.seg.discontinuity();
            p.flush(&old);
        }
        let after_earlier = old
            .rendition_names()
            .iter()
            .any(|name| old.rendition(name).ok().and_then(|r| r.last_part()).is_some());
        let next_msn = first_msn(&self.event.packager, &old);
        let mut seg = Segmenter::new(SegmenterConfig::from(&self.event.packager));
        seg.start_at(next_msn, after_earlier);
        let store = EventStore::new(StoreConfig::from_config(&self.event.packager));
        let mut names = Vec::new();
        for t in &tracks {
            let added = seg
                .add_track(t.clone())
                .map_err(|e| FeedError::BadTracks(e.to_string()))
                .and_then(|()| {
                    let name = LiveEvent::source_rendition(t);
                    names.push((t.id, name.clone()));
                    store
                        .add_rendition(&name, t.clone())
                        .map(drop)
                        .map_err(|e| FeedError::BadTracks(e.to_string()))
                });
            if let Err(e) = added {
                old.end();
                return Err(e);
            }
        }
        let generation = self.event.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let ladder = self
            .event
            .start_ladder(generation, &tracks, &mut seg, &store, &mut names);
        state.pipeline = Some(Pipeline {
            seg,
            tracks,
            names,
            ladder,
            generation,
            slate: None,
        });
        // Replaced before the old one ends, so whoever sees the end can already tell a new
        // session from the event's end.
        self.event.store.send_replace(Arc::new(store));
        old.end();
        if after_earlier {
            tracing::warn!(event = %self.event.name, next_msn, "tracks changed: a new session starts; players must reload");
        }
        self.event.status.send_modify(|s| s.sessions += 1);
        drop(state);
        Ok(())
    }

    /// Feeds one frame through the segmenter into the store.
    pub fn push(&self, frame: Frame) -> Result<(), FeedError> {
        let mut state = self.owned()?;
        state.last_frame = Some(Instant::now());
        if let Some(a) = &mut state.ingest {
            a.frame(&frame);
            // Half a second past the target: a source a frame or two late is not refused.
            if self.event.refuse_long_gops.load(Ordering::Relaxed) {
                if let Some(why) = a.keyframe_overdue(0.5) {
                    return Err(FeedError::KeyframeInterval(why));
                }
            }
        }
        let Some(p) = &mut state.pipeline else {
            return Err(FeedError::NoTracks);
        };
        if let Some(sl) = &p.slate {
            if p.tracks.is_empty() {
                return Err(FeedError::NoTracks);
            }
            if sl.input == Input::Slate {
                // The slate plays until the creator's next video keyframe (the first, or the
                // first after a gap on this connection); what comes before it is dropped.
                let key = frame.keyframe
                    && p.tracks
                        .iter()
                        .any(|t| t.id == frame.track && matches!(t.codec, CodecConfig::H264(_)));
                if !key {
                    return Ok(());
                }
                p.go_live(&self.event.store());
            }
        }
        let mut frame = frame;
        let Some(track) = p.session_track(frame.track) else {
            return Err(FeedError::Frame(SegmenterError::UnknownTrack(frame.track)));
        };
        let source_track = std::mem::replace(&mut frame.track, track);
        // The source's video also goes to the ladder (never waiting: a full ladder drops).
        let to_ladder = p
            .ladder
            .as_ref()
            .filter(|_| {
                p.tracks
                    .iter()
                    .any(|t| t.id == source_track && matches!(t.codec, CodecConfig::H264(_)))
            })
            .map(|_| Frame {
                track: source_track,
                ..frame.clone()
            });
        let pushed = p.seg.push(frame);
        // A refused frame may still have closed segments (a timestamp jump): apply those.
        p.flush(&self.event.store());
        if let (Some(f), Some(l), true) = (to_ladder, &p.ladder, pushed.is_ok()) {
            l.push(f);
        }
        pushed.map_err(FeedError::from)
    }

    /// What the source declared of itself (RTMP `onMetaData`), for the ingest report.
    pub fn declare(&self, d: Declared) {
        if let Ok(mut state) = self.owned() {
            if let Some(a) = &mut state.ingest {
                a.declared(d);
            }
        }
    }

    /// Marks this source as alive without a frame (a WebRTC publisher between its
    /// connection and its first keyframe), so it is not taken for a stale one and replaced.
    pub fn touch(&self) {
        if let Ok(mut state) = self.owned() {
            state.last_frame = Some(Instant::now());
        }
    }

    /// Whether an operator kicked this source.
    pub fn is_kicked(&self) -> bool {
        self.event.lock().kicked == Some(self.id)
    }

    /// Whether this source still holds the event.
    pub fn is_current(&self) -> bool {
        self.owned().is_ok()
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        let mut state = self.event.lock();
        if !matches!(state.owner, Some((id, _)) if id == self.id) {
            return;
        }
        state.owner = None;
        self.event.end_timeline(&mut state);
        self.event.status.send_modify(|s| s.source = None);
        drop(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_wants_its_regions_from_lead_to_grace() {
        let s = Schedule {
            publish_from: 880,
            start: 1_000,
            end: 2_800,
            regions: vec!["eu-west".into()],
            viewer_cap: 10,
        };
        assert!(!s.wants("eu-west", 879, 120, 300), "before the lead time");
        assert!(s.wants("eu-west", 880, 120, 300));
        assert!(s.wants("eu-west", 3_099, 120, 300), "within the grace period");
        assert!(!s.wants("eu-west", 3_100, 120, 300));
        assert!(!s.wants("us-east", 1_500, 120, 300), "not its region");
    }
    use popcast_packager::fixtures::{audio_frame, audio_track, video_frame, video_track};

    fn peer(n: u8) -> SourceKind {
        SourceKind::Publisher {
            peer: SocketAddr::from(([127, 0, 0, n], 5000)),
        }
    }

    fn feed_secs(feed: &Feed, from: i64, secs: i64) {
        for v in from * 30..(from + secs) * 30 {
            feed.push(video_frame(v, 30)).unwrap();
        }
    }

    #[test]
    fn publishers_replace_the_test_source_but_not_each_other_without_takeover() {
        let e = LiveEvent::new("demo", b"k", &PackagerConfig::default());
        let test = e.claim(SourceKind::TestSource, false).unwrap();
        let first = e.claim(peer(1), false).unwrap();
        assert!(!test.is_current());
        assert!(matches!(
            test.set_tracks(vec![video_track()]),
            Err(FeedError::Replaced(_))
        ));
        assert!(matches!(e.claim(peer(2), false), Err(ClaimError::Busy { .. })));
        assert!(matches!(
            e.claim(SourceKind::TestSource, false),
            Err(ClaimError::Busy { .. })
        ));
        let second = e.claim(peer(2), true).unwrap();
        assert!(!first.is_current() && second.is_current());
        // The replaced source's drop leaves the new one in place.
        drop(first);
        assert!(second.is_current());
        assert_eq!(e.status().borrow().source, Some(peer(2)));
        drop(second);
        assert_eq!(e.status().borrow().source, None);
    }

    #[test]
    fn a_reconnect_with_the_same_tracks_continues_after_a_discontinuity() {
        let e = LiveEvent::new("demo", b"k", &PackagerConfig::default());
        let f = e.claim(peer(1), false).unwrap();
        f.set_tracks(vec![video_track()]).unwrap();
        feed_secs(&f, 0, 5);
        let store = e.store();
        drop(f);
        // The same encoder comes back; its timestamps restart at zero.
        let f = e.claim(peer(1), false).unwrap();
        f.set_tracks(vec![video_track()]).unwrap();
        feed_secs(&f, 0, 5);
        assert!(Arc::ptr_eq(&store, &e.store()), "same session, same store");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let pl = rt
            .block_on(store.media_playlist(VIDEO_RENDITION, Default::default()))
            .unwrap();
        assert!(pl.contains("#EXT-X-DISCONTINUITY\n"), "{pl}");
        assert_eq!(e.status().borrow().sessions, 1);
    }

    #[test]
    fn other_tracks_start_a_new_session() {
        let e = LiveEvent::new("demo", b"k", &PackagerConfig::default());
        let f = e.claim(SourceKind::TestSource, false).unwrap();
        f.set_tracks(vec![video_track(), audio_track()]).unwrap();
        f.push(audio_frame(0)).unwrap();
        let store = e.store();
        let g = e.claim(peer(1), false).unwrap();
        assert!(matches!(f.push(video_frame(0, 30)), Err(FeedError::Replaced(_))));
        g.set_tracks(vec![video_track()]).unwrap();
        assert!(!Arc::ptr_eq(&store, &e.store()));
        assert!(e.store().rendition(AUDIO_RENDITION).is_err());
        assert_eq!(e.status().borrow().sessions, 2);
        assert!(matches!(
            e.claim(peer(2), false).unwrap_err(),
            ClaimError::Busy { .. }
        ));
        // Frames before tracks are refused by name.
        drop(g);
        let h = e.claim(peer(2), false).unwrap();
        drop(h);
        let fresh = LiveEvent::new("x", b"k", &PackagerConfig::default());
        let f = fresh.claim(peer(3), false).unwrap();
        assert_eq!(f.push(video_frame(0, 30)), Err(FeedError::NoTracks));
    }

    #[test]
    fn a_new_session_numbers_on_and_ends_the_old_playlists() {
        let e = LiveEvent::new("demo", b"k", &PackagerConfig::default());
        let f = e.claim(peer(1), false).unwrap();
        f.set_tracks(vec![video_track(), audio_track()]).unwrap();
        feed_secs(&f, 0, 5);
        let old = e.store();
        let (last, _) = old.rendition(VIDEO_RENDITION).unwrap().last_part().unwrap();
        f.set_tracks(vec![video_track()]).unwrap();
        feed_secs(&f, 0, 3);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let old_pl = rt
            .block_on(old.media_playlist(VIDEO_RENDITION, Default::default()))
            .unwrap();
        assert!(old_pl.contains("#EXT-X-ENDLIST"), "{old_pl}");
        let new_pl = rt
            .block_on(e.store().media_playlist(VIDEO_RENDITION, Default::default()))
            .unwrap();
        assert!(
            new_pl.contains(&format!("#EXT-X-MEDIA-SEQUENCE:{}\n", last + 1)),
            "{new_pl}"
        );
    }

    #[test]
    fn sessions_are_numbered_from_the_clock_never_from_0() {
        // With the default 2 s target, the unit is half of it: Unix seconds.
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let e = LiveEvent::new("demo", b"k", &PackagerConfig::default());
        let f = e.claim(peer(1), false).unwrap();
        f.set_tracks(vec![video_track()]).unwrap();
        feed_secs(&f, 0, 5);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let pl = rt
            .block_on(e.store().media_playlist(VIDEO_RENDITION, Default::default()))
            .unwrap();
        let first: u64 = pl
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert!(first >= before && first <= before + 5, "{first} vs {before}");
        assert!(
            !pl.contains("#EXT-X-DISCONTINUITY\n"),
            "a first session has no discontinuity: {pl}"
        );
    }

    #[test]
    fn a_silent_publisher_is_replaced_and_an_ended_event_takes_no_one() {
        let e = LiveEvent::new("demo", b"k", &PackagerConfig::default());
        let f = e.claim(peer(1), false).unwrap();
        e.lock().last_frame = Some(Instant::now() - STALE_PUBLISHER);
        let g = e.claim(peer(2), false).unwrap();
        assert!(!f.is_current() && g.is_current());
        e.end();
        assert!(matches!(g.push(video_frame(0, 30)), Err(FeedError::Ended(_))));
        assert!(matches!(e.claim(peer(3), true), Err(ClaimError::Ended(_))));
        assert_eq!(e.status().borrow().source, None);
    }
}
