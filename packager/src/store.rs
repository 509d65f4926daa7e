//! The live store: per event and rendition, the sliding window of segments and parts in
//! memory, with async waiters for blocking playlist reloads and parts streamed chunk by
//! chunk while they are produced.
//!
//! Media is held as shared [`Bytes`] chunks exactly as the segmenter wrote them: a part is
//! its chunks, a segment is its parts' chunks, and serving either hands out clones of the
//! same buffers. Memory is bounded by the window and freed as it slides.

use crate::hls::write::{
    self, AudioRendition, MediaPlaylist, PartLine, RenditionReport, SegmentLine, Variant,
};
use crate::media::{CodecConfig, TrackInfo};
use crate::naming;
use crate::segmenter::Event;
use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

/// Batches a relay subscriber may fall behind by before it is told it lagged (a few
/// seconds of parts at one batch per chunk).
pub const UPDATE_BACKLOG: usize = 1024;

/// What a rendition's followers (the origin's relay) receive after their replay: every
/// batch of events in the order applied, then the end.
#[derive(Debug, Clone)]
pub enum Update {
    Events(Arc<[Event]>),
    Ended,
}

/// A follower of one rendition: the events that rebuild its window from a point, then
/// every later change. Taken under the rendition's lock, so nothing is missed or repeated
/// between the two.
#[derive(Debug)]
pub struct Follow {
    /// Identifies this rendition's numbering: a new rendition (a new source, a restarted
    /// process) has a new epoch, and positions of another epoch mean nothing here.
    pub epoch: u64,
    /// `Init` first (when there is one), then the window from the resume point.
    pub replay: Vec<Event>,
    pub ended: bool,
    pub updates: broadcast::Receiver<Update>,
}

/// A process-unique, restart-unique rendition epoch below 2^62: the time in nanoseconds
/// mixed with a counter.
fn new_epoch() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // SplitMix64 of both, so that epochs of consecutive renditions look unrelated.
    let mut z = now ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    // 62 bits: the relay carries it as a QUIC varint.
    (z ^ (z >> 31)) & ((1 << 62) - 1)
}

/// Window sizes and timing of one event's renditions.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// Complete segments kept (and listed) per rendition.
    pub window_segments: usize,
    /// Of those, the newest whose parts are listed.
    pub part_window_segments: usize,
    /// `EXT-X-TARGETDURATION`, whole seconds.
    pub target_duration: u64,
    /// The longest a blocking request is held before 503; the spec's limit is three target
    /// durations.
    pub hold_limit: Duration,
}

impl StoreConfig {
    pub fn from_config(c: &popcast_config::PackagerConfig) -> Self {
        let target_duration = (u64::from(c.segment_target_ms)).div_ceil(1000).max(1);
        Self {
            window_segments: c.window_segments as usize,
            part_window_segments: c.part_window_segments as usize,
            target_duration,
            hold_limit: Duration::from_secs(target_duration * 3),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self::from_config(&popcast_config::PackagerConfig::default())
    }
}

/// Why a request cannot be answered. The HTTP layer maps each to a status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// 400: the request asks for something the spec does not let a client block on.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 404: no such rendition or object (outside the window, or beyond the preload hint).
    #[error("not found: {0}")]
    NotFound(String),
    /// 503: not available within the spec's hold limit, or the rendition has no media yet.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// What kind of rendition a track becomes.
fn is_audio(track: &TrackInfo) -> bool {
    matches!(track.codec, CodecConfig::Aac(_))
}

/// A playlist request: `_HLS_msn`, `_HLS_part`, `_HLS_skip=YES`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlaylistRequest {
    pub msn: Option<u64>,
    pub part: Option<u32>,
    pub skip: bool,
}

impl PlaylistRequest {
    /// Parses the query string of a playlist request. Unknown keys (CMCD, tokens, cache
    /// busters) are ignored; the LL-HLS keys must be well formed.
    pub fn parse_query(query: &str) -> Result<Self, StoreError> {
        let mut req = Self::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let num = |what: &str| {
                if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(StoreError::BadRequest(format!(
                        "{what} must be a decimal integer"
                    )));
                }
                v.parse::<u64>()
                    .map_err(|_| StoreError::BadRequest(format!("{what} is out of range")))
            };
            match k {
                "_HLS_msn" => req.msn = Some(num("_HLS_msn")?),
                "_HLS_part" => {
                    let p = num("_HLS_part")?;
                    req.part = Some(
                        u32::try_from(p)
                            .map_err(|_| StoreError::BadRequest("_HLS_part is out of range".into()))?,
                    );
                }
                "_HLS_skip" => match v {
                    "YES" | "v2" => req.skip = true,
                    _ => return Err(StoreError::BadRequest("_HLS_skip must be YES or v2".into())),
                },
                _ => {}
            }
        }
        if req.part.is_some() && req.msn.is_none() {
            return Err(StoreError::BadRequest("_HLS_part without _HLS_msn".into()));
        }
        Ok(req)
    }
}

#[derive(Debug, Default)]
struct Part {
    chunks: Vec<Bytes>,
    duration: Option<Duration>,
    independent: bool,
}

#[derive(Debug)]
struct Segment {
    msn: u64,
    /// Its CMAF header: the key (first msn) of one of [`State::inits`].
    init: u64,
    discontinuity: bool,
    program_date_time: SystemTime,
    duration: Option<Duration>,
    parts: Vec<Part>,
    bytes: usize,
}

#[derive(Debug)]
struct State {
    track: TrackInfo,
    /// The CMAF headers the window's segments use, keyed by the first segment using each
    /// (`init-{msn}.mp4`), oldest first. A new one arrives at a discontinuity when the
    /// source's codec parameters change (slate → live, a creator's new encoder settings).
    inits: VecDeque<(u64, Bytes)>,
    /// A header not yet used by a segment (it is bound to the next one).
    pending_init: Option<Bytes>,
    part_target: Duration,
    segments: VecDeque<Segment>,
    /// Discontinuities that slid out of the window (EXT-X-DISCONTINUITY-SEQUENCE).
    discontinuity_sequence: u64,
    ended: bool,
    bytes: usize,
}

impl State {
    /// Whether a CMAF header has arrived.
    fn has_init(&self) -> bool {
        self.pending_init.is_some() || !self.inits.is_empty()
    }

    /// The newest CMAF header.
    fn newest_init(&self) -> Option<&Bytes> {
        self.pending_init.as_ref().or(self.inits.back().map(|(_, d)| d))
    }

    /// Forgets headers no segment in the window uses any more.
    fn drop_unused_inits(&mut self) {
        if let Some(first) = self.segments.front().map(|s| s.init) {
            while self.inits.len() > 1 && self.inits.front().is_some_and(|(k, _)| *k < first) {
                self.inits.pop_front();
            }
        }
    }

    /// The newest complete part: (msn, part).
    fn last_part(&self) -> Option<(u64, u32)> {
        self.segments.iter().rev().find_map(|s| {
            let done = s.parts.iter().take_while(|p| p.duration.is_some()).count();
            (done > 0).then(|| (s.msn, done as u32 - 1))
        })
    }

    /// The part being produced now, or the one expected next: the preload hint.
    fn next_part(&self) -> Option<(u64, u32)> {
        let s = self.segments.back()?;
        if self.ended {
            return None;
        }
        if s.duration.is_some() {
            return Some((s.msn + 1, 0));
        }
        let done = s.parts.iter().take_while(|p| p.duration.is_some()).count();
        Some((s.msn, done as u32))
    }

    fn segment(&self, msn: u64) -> Option<&Segment> {
        let i = self.segments.binary_search_by_key(&msn, |s| s.msn).ok()?;
        self.segments.get(i)
    }

    fn segment_mut(&mut self, msn: u64) -> Option<&mut Segment> {
        let i = self.segments.binary_search_by_key(&msn, |s| s.msn).ok()?;
        self.segments.get_mut(i)
    }

    fn apply(&mut self, event: Event, window: usize) {
        match event {
            Event::Init {
                data, part_target, ..
            } => {
                // A header that differs from the one in use describes the new source: the
                // multivariant playlist's CODECS and RESOLUTION follow it.
                if self.newest_init().is_some_and(|d| *d != data) {
                    if let Ok(info) = crate::cmaf::read::track_info(&data) {
                        self.track = TrackInfo {
                            id: self.track.id,
                            ..info
                        };
                    }
                }
                self.pending_init = Some(data);
                self.part_target = part_target;
            }
            Event::SegmentStart {
                msn,
                discontinuity,
                program_date_time,
                ..
            } => {
                if let Some(data) = self.pending_init.take() {
                    match self.inits.back_mut() {
                        Some((_, d)) if *d == data => {}
                        // A segment dropped and produced again: its header is replaced, never
                        // listed twice under one key.
                        Some((k, d)) if *k == msn => *d = data,
                        _ => self.inits.push_back((msn, data)),
                    }
                }
                let init = self.inits.back().map_or(msn, |(k, _)| *k);
                self.segments.push_back(Segment {
                    msn,
                    init,
                    discontinuity,
                    program_date_time,
                    duration: None,
                    parts: Vec::new(),
                    bytes: 0,
                })
            }
            Event::PartStart { msn, independent, .. } => {
                if let Some(s) = self.segment_mut(msn) {
                    s.parts.push(Part {
                        independent,
                        ..Part::default()
                    });
                }
            }
            Event::Chunk { data, .. } => {
                if let Some(s) = self.segments.back_mut() {
                    if let Some(p) = s.parts.last_mut() {
                        s.bytes += data.len();
                        self.bytes += data.len();
                        p.chunks.push(data);
                    }
                }
            }
            Event::PartEnd {
                msn, part, duration, ..
            } => {
                if let Some(p) = self.segment_mut(msn).and_then(|s| s.parts.get_mut(part as usize)) {
                    p.duration = Some(duration);
                }
            }
            Event::SegmentEnd { msn, duration, .. } => {
                if let Some(s) = self.segment_mut(msn) {
                    s.duration = Some(duration);
                }
                // Slide: keep `window` complete segments (plus the one in progress).
                while self.segments.iter().filter(|s| s.duration.is_some()).count() > window {
                    if let Some(old) = self.segments.pop_front() {
                        self.bytes -= old.bytes;
                        if old.discontinuity {
                            self.discontinuity_sequence += 1;
                        }
                    }
                }
                self.drop_unused_inits();
            }
        }
    }
}

/// One rendition: its window and the waiters on it.
#[derive(Debug)]
pub struct Rendition {
    name: String,
    epoch: u64,
    state: Mutex<State>,
    /// Every applied batch, for followers (sent under the state lock).
    updates: broadcast::Sender<Update>,
    /// Bumped after every batch of events; waiters re-check on change.
    version: watch::Sender<u64>,
    /// The last rendered playlist, full and delta, with the versions of every rendition of
    /// the event it was rendered at (rendition reports depend on the siblings). Viewers
    /// woken by the same part share one rendering.
    playlists: Mutex<[Option<Rendered>; 2]>,
}

/// A rendered playlist and the event's rendition versions it was rendered at.
type Rendered = (Vec<u64>, Arc<str>);

/// A part or segment body: its chunks, shared with every other reader.
pub type Body = Vec<Bytes>;

impl Rendition {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn track(&self) -> TrackInfo {
        self.lock().track.clone()
    }

    /// An audio rendition (it goes in the multivariant playlist's audio group).
    pub fn is_audio(&self) -> bool {
        is_audio(&self.lock().track)
    }

    /// Bytes of media held in the window.
    pub fn bytes_held(&self) -> usize {
        self.lock().bytes
    }

    /// The newest CMAF header, once the first frame has been muxed (`init.mp4`).
    pub fn init(&self) -> Result<Bytes, StoreError> {
        self.lock()
            .newest_init()
            .cloned()
            .ok_or_else(|| StoreError::Unavailable(format!("{}: no media yet", self.name)))
    }

    /// The CMAF header of the segments from `msn` on (`init-{msn}.mp4`), while a segment in
    /// the window uses it.
    pub fn init_at(&self, msn: u64) -> Result<Bytes, StoreError> {
        let s = self.lock();
        s.inits
            .iter()
            .find(|(k, _)| *k == msn)
            .map(|(_, d)| d.clone())
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "{}/{}",
                    self.name,
                    naming::RenditionObject::InitAt { msn }
                ))
            })
    }

    /// Applies a batch of segmenter events for this rendition's track, then wakes waiters.
    /// A batch leaves the window consistent (a part end and the next part's start arrive
    /// together), so readers never see a half-applied cut.
    pub fn apply(&self, events: impl IntoIterator<Item = Event>, window: usize) {
        {
            let mut s = self.lock();
            // Followers get the batch itself; without any, the events go straight in.
            if self.updates.receiver_count() > 0 {
                let batch: Arc<[Event]> = events.into_iter().collect();
                for e in batch.iter() {
                    s.apply(e.clone(), window);
                }
                let _ = self.updates.send(Update::Events(batch));
            } else {
                for e in events {
                    s.apply(e, window);
                }
            }
        }
        self.version.send_modify(|v| *v += 1);
    }

    /// Marks the stream ended (EXT-X-ENDLIST) and wakes every waiter.
    pub fn end(&self) {
        {
            let mut s = self.lock();
            s.ended = true;
            let _ = self.updates.send(Update::Ended);
        }
        self.version.send_modify(|v| *v += 1);
    }

    /// Whether the stream has ended.
    pub fn is_ended(&self) -> bool {
        self.lock().ended
    }

    /// This rendition's epoch (see [`Follow::epoch`]).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Starts following this rendition. `after` is the last complete part the follower
    /// holds, in this rendition's numbering: the replay continues from the part after it
    /// when that is still in the window, and is the whole window otherwise.
    pub fn follow(&self, after: Option<(u64, u32)>) -> Follow {
        let s = self.lock();
        let updates = self.updates.subscribe();
        let mut replay = Vec::new();
        let track = s.track.id;
        let init_event = |data: &Bytes| Event::Init {
            track,
            data: data.clone(),
            part_target: s.part_target,
        };
        // Each header goes just before the first replayed segment that uses it, so that a
        // follower binds it to the same segment (and so names it the same).
        let mut sent_init = None;
        // Resume inside the window only from a complete part it still holds.
        let resume = after.filter(|&(msn, part)| {
            s.segment(msn)
                .and_then(|seg| seg.parts.get(part as usize))
                .is_some_and(|p| p.duration.is_some())
        });
        for seg in &s.segments {
            let first_part = match resume {
                Some((msn, _)) if seg.msn < msn => continue,
                Some((msn, part)) if seg.msn == msn => part as usize + 1,
                _ => 0,
            };
            if sent_init != Some(seg.init) {
                if let Some((_, data)) = s.inits.iter().find(|(k, _)| *k == seg.init) {
                    replay.push(init_event(data));
                }
                sent_init = Some(seg.init);
            }
            if first_part == 0 {
                replay.push(Event::SegmentStart {
                    track,
                    msn: seg.msn,
                    discontinuity: seg.discontinuity,
                    program_date_time: seg.program_date_time,
                });
            }
            for (i, p) in seg.parts.iter().enumerate().skip(first_part) {
                replay.push(Event::PartStart {
                    track,
                    msn: seg.msn,
                    part: i as u32,
                    independent: p.independent,
                });
                replay.extend(p.chunks.iter().map(|c| Event::Chunk {
                    track,
                    data: c.clone(),
                }));
                if let Some(duration) = p.duration {
                    replay.push(Event::PartEnd {
                        track,
                        msn: seg.msn,
                        part: i as u32,
                        duration,
                    });
                }
            }
            if let Some(duration) = seg.duration {
                replay.push(Event::SegmentEnd {
                    track,
                    msn: seg.msn,
                    duration,
                });
            }
        }
        if let Some(data) = s.pending_init.as_ref().or(if sent_init.is_none() {
            s.inits.back().map(|(_, d)| d)
        } else {
            None
        }) {
            replay.push(init_event(data));
        }
        Follow {
            epoch: self.epoch,
            replay,
            ended: s.ended,
            updates,
        }
    }

    /// Drops what is in progress at the end of the window: the part being produced, and
    /// with `segment` the whole unfinished segment. A relayed copy does this when its
    /// upstream broke off mid-object, so that nothing torn is served as complete; readers of
    /// the dropped part wait for it to come again (or for the hold limit).
    pub fn drop_in_progress(&self, segment: bool) {
        {
            let mut s = self.lock();
            let s = &mut *s;
            if let Some(seg) = s.segments.back_mut() {
                if seg.duration.is_none() {
                    if segment {
                        s.bytes -= seg.bytes;
                        if let Some(gone) = s.segments.pop_back() {
                            // A header only that segment used waits for the next one again.
                            let used = s.segments.back().is_some_and(|b| b.init == gone.init);
                            if !used && s.inits.back().is_some_and(|(k, _)| *k == gone.init) {
                                let header = s.inits.pop_back().map(|(_, d)| d);
                                s.pending_init = s.pending_init.take().or(header);
                            }
                        }
                    } else if seg.parts.last().is_some_and(|p| p.duration.is_none()) {
                        if let Some(p) = seg.parts.pop() {
                            let n: usize = p.chunks.iter().map(Bytes::len).sum();
                            seg.bytes -= n;
                            s.bytes -= n;
                        }
                    }
                }
            }
        }
        self.version.send_modify(|v| *v += 1);
    }

    /// Slides the window early until it holds at most `max_bytes`, keeping at least the
    /// newest complete segment and the one in progress. Returns the bytes freed.
    pub fn trim_to(&self, max_bytes: usize) -> usize {
        let freed = {
            let mut s = self.lock();
            let before = s.bytes;
            while s.bytes > max_bytes && s.segments.iter().filter(|seg| seg.duration.is_some()).count() > 1 {
                let Some(old) = s.segments.pop_front() else { break };
                s.bytes -= old.bytes;
                if old.discontinuity {
                    s.discontinuity_sequence += 1;
                }
            }
            s.drop_unused_inits();
            before - s.bytes
        };
        if freed > 0 {
            self.version.send_modify(|v| *v += 1);
        }
        freed
    }

    /// The newest segment in the window: its number and whether it is complete.
    pub fn last_segment(&self) -> Option<(u64, bool)> {
        self.lock().segments.back().map(|s| (s.msn, s.duration.is_some()))
    }

    /// The newest complete part (msn, part), for rendition reports and tests.
    pub fn last_part(&self) -> Option<(u64, u32)> {
        self.lock().last_part()
    }

    /// Waits until `ready` holds for the state or the deadline passes.
    async fn wait_for<T>(
        &self,
        deadline: Instant,
        mut ready: impl FnMut(&State) -> Result<Option<T>, StoreError>,
    ) -> Result<T, StoreError> {
        let mut rx = self.version.subscribe();
        loop {
            rx.borrow_and_update();
            if let Some(v) = ready(&self.lock())? {
                return Ok(v);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(StoreError::NotFound(format!("{}: removed", self.name))),
                Err(_) => {
                    return Err(StoreError::Unavailable(format!(
                        "{}: not produced within the hold limit",
                        self.name
                    )));
                }
            }
        }
    }
}

/// Every rendition of one event, and the event-wide playlist settings.
#[derive(Debug)]
pub struct EventStore {
    config: StoreConfig,
    renditions: RwLock<BTreeMap<String, Arc<Rendition>>>,
}

impl EventStore {
    pub fn new(config: StoreConfig) -> Self {
        Self {
            config,
            renditions: RwLock::new(BTreeMap::new()),
        }
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Adds a rendition fed by one track. Names follow [`naming::check_name`].
    pub fn add_rendition(&self, name: &str, track: TrackInfo) -> Result<Arc<Rendition>, naming::NameError> {
        naming::check_name("rendition", name)?;
        let (version, _) = watch::channel(0);
        let (updates, _) = broadcast::channel(UPDATE_BACKLOG);
        let r = Arc::new(Rendition {
            name: name.to_string(),
            epoch: new_epoch(),
            updates,
            state: Mutex::new(State {
                track,
                inits: VecDeque::new(),
                pending_init: None,
                part_target: Duration::ZERO,
                segments: VecDeque::new(),
                discontinuity_sequence: 0,
                ended: false,
                bytes: 0,
            }),
            version,
            playlists: Mutex::new([None, None]),
        });
        self.renditions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), r.clone());
        Ok(r)
    }

    pub fn rendition(&self, name: &str) -> Result<Arc<Rendition>, StoreError> {
        self.renditions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(format!("no rendition {name:?}")))
    }

    fn all(&self) -> Vec<Arc<Rendition>> {
        self.renditions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Applies segmenter events to the renditions their tracks feed (`route` maps a track
    /// to a rendition name); events of unknown tracks are dropped.
    pub fn apply(
        &self,
        events: impl IntoIterator<Item = Event>,
        route: impl Fn(crate::media::TrackId) -> Option<String>,
    ) {
        let mut by_rendition: BTreeMap<String, Vec<Event>> = BTreeMap::new();
        for e in events {
            if let Some(name) = route(event_track(&e)) {
                by_rendition.entry(name).or_default().push(e);
            }
        }
        for (name, events) in by_rendition {
            if let Ok(r) = self.rendition(&name) {
                r.apply(events, self.config.window_segments);
            }
        }
    }

    /// Removes a rendition; its waiters are told it is gone.
    pub fn remove_rendition(&self, name: &str) -> Option<Arc<Rendition>> {
        self.renditions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
    }

    /// The names of the renditions, in order.
    pub fn rendition_names(&self) -> Vec<String> {
        self.renditions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Media bytes held by every rendition's window.
    pub fn bytes_held(&self) -> usize {
        self.all().iter().map(|r| r.bytes_held()).sum()
    }

    /// Ends every rendition (EXT-X-ENDLIST).
    pub fn end(&self) {
        for r in self.all() {
            r.end();
        }
    }

    /// A media playlist, holding the request per LL-HLS blocking reload rules: until the
    /// playlist has segment `msn` (or part `part` of it), at most [`StoreConfig::hold_limit`].
    pub async fn media_playlist(
        &self,
        rendition: &str,
        req: PlaylistRequest,
    ) -> Result<Arc<str>, StoreError> {
        let r = self.rendition(rendition)?;
        if let Some(msn) = req.msn {
            let deadline = Instant::now() + self.config.hold_limit;
            r.wait_for(deadline, |s| {
                // "A Server MUST ignore _HLS_msn and _HLS_part if the Playlist contains an
                // EXT-X-ENDLIST tag."
                if s.ended {
                    return Ok(Some(()));
                }
                // Nothing to compare with yet: hold until the first part is complete.
                let Some((last_msn, last_part)) = s.last_part().filter(|_| s.has_init()) else {
                    return Ok(None);
                };
                if msn > last_msn + 2 {
                    return Err(StoreError::BadRequest(format!(
                        "_HLS_msn={msn} is more than two segments past the last ({last_msn})"
                    )));
                }
                let Some(p) = req.part else {
                    return Ok(s
                        .segments
                        .iter()
                        .any(|seg| seg.msn > msn || (seg.msn == msn && seg.duration.is_some()))
                        .then_some(()));
                };
                // A part past the last one of a complete segment means part 0 of the next.
                let want = match s.segment(msn) {
                    Some(seg) if seg.duration.is_some() && p as usize >= seg.parts.len() => (msn + 1, 0),
                    _ => (msn, p),
                };
                // Advance Part Limit: 3 / PART-TARGET parts when the target is under 1 s.
                let pt = s.part_target.as_secs_f64().max(0.001);
                let limit = if pt < 1.0 { (3.0 / pt).floor() as u64 } else { 3 };
                if parts_between(s, (last_msn, last_part), want) > limit {
                    return Err(StoreError::BadRequest(format!(
                        "_HLS_part={p} of {msn} is beyond the advance part limit ({limit} parts)"
                    )));
                }
                Ok(((last_msn, last_part) >= want).then_some(()))
            })
            .await?;
        }
        // Versions are read before the state: a rendering is never older than its key.
        let key: Vec<u64> = self.all().iter().map(|r| *r.version.borrow()).collect();
        let slot = usize::from(req.skip);
        if let Some((k, text)) = &r.playlists.lock().unwrap_or_else(|e| e.into_inner())[slot] {
            if *k == key {
                return Ok(text.clone());
            }
        }
        let text: Arc<str> = self.describe(&r)?.render(req.skip).into();
        r.playlists.lock().unwrap_or_else(|e| e.into_inner())[slot] = Some((key, text.clone()));
        Ok(text)
    }

    /// The playlist description of a rendition now (sibling reports included).
    fn describe(&self, r: &Rendition) -> Result<MediaPlaylist, StoreError> {
        let mut p = {
            let s = r.lock();
            if !s.has_init() || s.segments.is_empty() {
                return Err(StoreError::Unavailable(format!("{}: no media yet", r.name)));
            }
            // Parts are listed for the newest `part_window_segments` complete segments, and
            // only those that end within three target durations of the playlist's end (the
            // spec asks for older parts to be removed).
            let total: Duration = s
                .segments
                .iter()
                .map(|seg| {
                    seg.duration
                        .unwrap_or_else(|| seg.parts.iter().filter_map(|p| p.duration).sum())
                })
                .sum();
            let keep = Duration::from_secs(3 * self.config.target_duration);
            let complete = s.segments.iter().filter(|seg| seg.duration.is_some()).count();
            let listed_from = complete.saturating_sub(self.config.part_window_segments);
            let mut start = Duration::ZERO;
            let segments = s
                .segments
                .iter()
                .enumerate()
                .map(|(i, seg)| {
                    let mut end = start;
                    let parts = seg
                        .parts
                        .iter()
                        .enumerate()
                        .map_while(|(index, p)| {
                            p.duration.map(|duration| {
                                end += duration;
                                (
                                    end,
                                    PartLine {
                                        index: index as u32,
                                        duration,
                                        independent: p.independent,
                                    },
                                )
                            })
                        })
                        .filter(|(end, _)| i >= listed_from && total - *end <= keep)
                        .map(|(_, p)| p)
                        .collect();
                    start += seg.duration.unwrap_or_default();
                    SegmentLine {
                        msn: seg.msn,
                        init: seg.init,
                        duration: seg.duration,
                        discontinuity: seg.discontinuity,
                        program_date_time: seg.program_date_time,
                        parts,
                    }
                })
                .collect();
            MediaPlaylist {
                target_duration: self.config.target_duration,
                part_target: s.part_target,
                media_sequence: s.segments[0].msn,
                discontinuity_sequence: s.discontinuity_sequence,
                segments,
                preload_hint: s.next_part(),
                reports: Vec::new(),
                ended: s.ended,
            }
        };
        let audio = r.is_audio();
        for sib in self.all() {
            if sib.name != r.name && sib.is_audio() == audio {
                if let Some((last_msn, last_part)) = sib.last_part() {
                    p.reports.push(RenditionReport {
                        uri: format!("../{}", naming::media_playlist_uri(&sib.name)),
                        last_msn,
                        last_part,
                    });
                }
            }
        }
        Ok(p)
    }

    /// The multivariant playlist: every video rendition with media, each with the audio
    /// group; audio alone when the source has no video. EXT-X-INDEPENDENT-SEGMENTS is
    /// claimed while every segment in every window starts with a keyframe. BANDWIDTH is the peak segment
    /// bitrate in the window (video + audio), AVERAGE-BANDWIDTH the mean.
    pub fn multivariant(&self) -> Result<String, StoreError> {
        let mut audio = Vec::new();
        let mut videos = Vec::new();
        // Segments cut without a keyframe (a GOP longer than the target duration) make the
        // INDEPENDENT-SEGMENTS claim false while they are in the window.
        let mut independent = true;
        for r in self.all() {
            let s = r.lock();
            // Every rendition or none, each with a complete segment: a multivariant playlist
            // listed while video still waits for its first keyframe would be an audio-only
            // stream to a player that never asks again; hls.js gives up (levelEmptyError) on
            // a media playlist with parts but no segment; BANDWIDTH needs measured media.
            if !s.has_init() || !s.segments.iter().any(|seg| seg.duration.is_some()) {
                return Err(StoreError::Unavailable(format!(
                    "rendition {:?} has no complete segment yet",
                    r.name
                )));
            }
            independent &= s
                .segments
                .iter()
                .all(|seg| seg.parts.first().is_none_or(|p| p.independent));
            let rates = bitrates(&s);
            match &s.track.codec {
                CodecConfig::Aac(asc) => {
                    audio.push((r.name.clone(), asc.codec_string(), asc.channel_config, rates))
                }
                CodecConfig::H264(avc) => {
                    videos.push((r.name.clone(), avc.codec_string(), s.track.video, rates))
                }
            }
        }
        if audio.is_empty() && videos.is_empty() {
            return Err(StoreError::Unavailable("no rendition has media yet".into()));
        }
        let group = "audio".to_string();
        let (a_peak, a_avg) = audio.iter().map(|a| a.3).max().unwrap_or((0, 0));
        let audio_lines: Vec<AudioRendition> = audio
            .iter()
            .enumerate()
            .map(|(i, (name, _, ch, _))| AudioRendition {
                group: group.clone(),
                name: name.clone(),
                uri: naming::media_playlist_uri(name),
                channels: (*ch > 0).then_some(*ch),
                default: i == 0,
            })
            .collect();
        let audio_codec = audio.first().map(|a| a.1.clone());
        let mut variants: Vec<Variant> = videos
            .iter()
            .map(|(name, codec, shape, (peak, avg))| Variant {
                uri: naming::media_playlist_uri(name),
                bandwidth: peak + a_peak,
                average_bandwidth: avg + a_avg,
                codecs: match &audio_codec {
                    Some(a) => format!("{codec},{a}"),
                    None => codec.clone(),
                },
                resolution: shape.map(|v| (v.width, v.height)),
                frame_rate: shape
                    .and_then(|v| v.frame_rate)
                    .map(|(n, d)| f64::from(n) / f64::from(d.max(1))),
                audio_group: audio_codec.as_ref().map(|_| group.clone()),
            })
            .collect();
        variants.sort_by_key(|v| std::cmp::Reverse(v.bandwidth));
        if variants.is_empty() {
            // Audio-only source: the audio rendition is the variant.
            let (name, codec, _, (peak, avg)) = &audio[0];
            variants.push(Variant {
                uri: naming::media_playlist_uri(name),
                bandwidth: *peak,
                average_bandwidth: *avg,
                codecs: codec.clone(),
                resolution: None,
                frame_rate: None,
                audio_group: None,
            });
            return Ok(write::multivariant(&[], &variants, independent));
        }
        Ok(write::multivariant(&audio_lines, &variants, independent))
    }

    /// The bytes of a complete part, or, for the part in progress (the preload hint), a
    /// stream of its chunks as they are produced.
    pub fn part(&self, rendition: &str, msn: u64, part: u32) -> Result<ObjectStream, StoreError> {
        self.object(rendition, msn, Some(part))
    }

    /// A segment: complete, or streamed while in progress.
    pub fn segment(&self, rendition: &str, msn: u64) -> Result<ObjectStream, StoreError> {
        self.object(rendition, msn, None)
    }

    fn object(&self, rendition: &str, msn: u64, part: Option<u32>) -> Result<ObjectStream, StoreError> {
        let r = self.rendition(rendition)?;
        {
            let s = r.lock();
            let exists = match (s.segment(msn), part) {
                (Some(seg), Some(p)) => (p as usize) < seg.parts.len(),
                (Some(_), None) => true,
                (None, _) => false,
            };
            let hinted = part.is_some_and(|p| s.next_part() == Some((msn, p)));
            if !exists && !hinted {
                let what = match part {
                    Some(p) => naming::RenditionObject::Part { msn, part: p },
                    None => naming::RenditionObject::Segment { msn },
                };
                return Err(StoreError::NotFound(format!("{rendition}/{what}")));
            }
        }
        Ok(ObjectStream {
            rendition: r,
            msn,
            part,
            next: 0,
            deadline: Instant::now() + self.config.hold_limit,
        })
    }
}

fn event_track(e: &Event) -> crate::media::TrackId {
    match e {
        Event::Init { track, .. }
        | Event::SegmentStart { track, .. }
        | Event::PartStart { track, .. }
        | Event::Chunk { track, .. }
        | Event::PartEnd { track, .. }
        | Event::SegmentEnd { track, .. } => *track,
    }
}

/// Parts from `from` (exclusive) to `to`: real part counts for segments in the window, and
/// the most parts any complete segment has for segments not produced yet.
fn parts_between(s: &State, from: (u64, u32), to: (u64, u32)) -> u64 {
    if to <= from {
        return 0;
    }
    let per_segment = s
        .segments
        .iter()
        .filter(|seg| seg.duration.is_some())
        .map(|seg| seg.parts.len() as u64)
        .max()
        .unwrap_or(0)
        .max((s.segments.back().map_or(0, |seg| seg.parts.len())) as u64)
        .max(1);
    let parts_in = |msn: u64| {
        s.segment(msn)
            .filter(|seg| seg.duration.is_some())
            .map_or(per_segment, |seg| seg.parts.len() as u64)
    };
    if to.0 == from.0 {
        return u64::from(to.1 - from.1);
    }
    let mut n = parts_in(from.0).saturating_sub(u64::from(from.1) + 1);
    for msn in from.0 + 1..to.0 {
        n += parts_in(msn);
    }
    n + u64::from(to.1) + 1
}

/// Peak and average bits per second over the complete segments in the window (over the
/// complete parts while no segment is complete yet).
fn bitrates(s: &State) -> (u64, u64) {
    let rate = |bytes: usize, d: Duration| (bytes as f64 * 8.0 / d.as_secs_f64().max(0.001)) as u64;
    let complete: Vec<(usize, Duration)> = s
        .segments
        .iter()
        .filter_map(|seg| seg.duration.map(|d| (seg.bytes, d)))
        .collect();
    if complete.is_empty() {
        let (bytes, d) = s
            .segments
            .iter()
            .flat_map(|seg| &seg.parts)
            .filter_map(|p| {
                p.duration
                    .map(|d| (p.chunks.iter().map(Bytes::len).sum::<usize>(), d))
            })
            .fold((0, Duration::ZERO), |(b, t), (pb, pd)| (b + pb, t + pd));
        let r = rate(bytes, d);
        return (r, r);
    }
    let peak = complete.iter().map(|&(b, d)| rate(b, d)).max().unwrap_or(0);
    let (bytes, d) = complete
        .iter()
        .fold((0, Duration::ZERO), |(b, t), &(pb, pd)| (b + pb, t + pd));
    (peak, rate(bytes, d))
}

/// A part or segment read chunk by chunk; waits for chunks still being produced.
#[derive(Debug)]
pub struct ObjectStream {
    rendition: Arc<Rendition>,
    msn: u64,
    part: Option<u32>,
    next: usize,
    deadline: Instant,
}

impl ObjectStream {
    /// The object's chunks available now and whether it is complete, without waiting.
    pub fn available(&self) -> (Body, bool) {
        let s = self.rendition.lock();
        let mut body = Vec::new();
        loop {
            match chunk_at(&s, self.msn, self.part, body.len()) {
                Some((Some(c), _)) => body.push(c),
                Some((None, complete)) => return (body, complete),
                None => return (body, false),
            }
        }
    }

    /// The next chunk, waiting while the object is in progress; `None` when it is complete.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, StoreError> {
        let (msn, part, from) = (self.msn, self.part, self.next);
        let name = self.rendition.name.clone();
        let chunk = self
            .rendition
            .wait_for(self.deadline, |s| {
                let Some((chunk, complete)) = chunk_at(s, msn, part, from) else {
                    // Not started yet (the hinted part) or slid out of the window.
                    return if s.segment(msn).is_some() || s.next_part().is_some_and(|(m, _)| m == msn) {
                        Ok(None)
                    } else {
                        Err(StoreError::NotFound(format!("{name}: {msn} left the window")))
                    };
                };
                match chunk {
                    Some(c) => Ok(Some(Some(c))),
                    None if complete || s.ended => Ok(Some(None)),
                    None => Ok(None),
                }
            })
            .await?;
        if chunk.is_some() {
            self.next += 1;
        }
        Ok(chunk)
    }

    /// Reads the whole object, waiting until it is complete.
    pub async fn read_all(mut self) -> Result<Body, StoreError> {
        let mut out = Vec::new();
        while let Some(c) = self.next_chunk().await? {
            out.push(c);
        }
        Ok(out)
    }
}

/// Chunk `index` of an object (if produced yet), and whether the object is complete.
fn chunk_at(s: &State, msn: u64, part: Option<u32>, index: usize) -> Option<(Option<Bytes>, bool)> {
    let seg = s.segment(msn)?;
    match part {
        Some(p) => {
            let part = seg.parts.get(p as usize)?;
            Some((part.chunks.get(index).cloned(), part.duration.is_some()))
        }
        None => Some((
            seg.parts.iter().flat_map(|p| &p.chunks).nth(index).cloned(),
            seg.duration.is_some(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{audio_frame, audio_track, video_frame, video_track};
    use crate::hls::check;
    use crate::media::TrackId;
    use crate::segmenter::{Segmenter, SegmenterConfig};

    fn route(t: TrackId) -> Option<String> {
        Some(if t.0 == 1 { "video" } else { "audio" }.to_string())
    }

    /// A store and segmenter with video + audio, fed `frames` video frames (30 fps, keyframe
    /// every second) and the audio alongside, minus the audio frames in `audio_hole`.
    fn fed(frames: i64, audio_hole: std::ops::Range<i64>) -> (EventStore, Segmenter) {
        let store = EventStore::new(StoreConfig {
            hold_limit: Duration::from_millis(200),
            ..StoreConfig::default()
        });
        let mut seg = Segmenter::new(SegmenterConfig::default());
        for (name, t) in [("video", video_track()), ("audio", audio_track())] {
            seg.add_track(t.clone()).unwrap();
            store.add_rendition(name, t).unwrap();
        }
        let mut a = 0;
        for i in 0..frames {
            // After a discontinuity video waits for its next keyframe.
            match seg.push(video_frame(i, 30)) {
                Ok(()) | Err(crate::segmenter::SegmenterError::WaitingForKeyframe { .. }) => {}
                Err(e) => panic!("{e}"),
            }
            while (a * 1024 - 1024) * 90_000 < (i + 1) * 3000 * 48_000 {
                if !audio_hole.contains(&a) {
                    seg.push(audio_frame(a)).unwrap();
                }
                a += 1;
            }
            store.apply(seg.drain(), route);
        }
        (store, seg)
    }

    fn req(msn: u64, part: Option<u32>) -> PlaylistRequest {
        PlaylistRequest {
            msn: Some(msn),
            part,
            skip: false,
        }
    }

    /// A copy fed only from `follow` (the relay's view) renders the origin's playlist text.
    async fn same_playlist(a: &EventStore, b: &EventStore, name: &str) {
        let req = PlaylistRequest::default();
        assert_eq!(
            &*a.media_playlist(name, req).await.unwrap(),
            &*b.media_playlist(name, req).await.unwrap()
        );
    }

    fn drain_updates(f: &mut Follow) -> Vec<Event> {
        let mut out = Vec::new();
        while let Ok(u) = f.updates.try_recv() {
            if let Update::Events(batch) = u {
                out.extend(batch.iter().cloned());
            }
        }
        out
    }

    #[tokio::test]
    async fn a_dropped_segment_gives_its_new_header_to_the_next_one() {
        let (store, mut seg) = fed(100, 0..0);
        let mut other = video_track();
        other.video = Some(crate::media::VideoShape {
            width: 640,
            height: 480,
            frame_rate: Some((30, 1)),
        });
        seg.replace_track(other).unwrap();
        for i in 0..5 {
            seg.push(video_frame(i, 30)).unwrap();
            store.apply(seg.drain(), route);
        }
        let video = store.rendition("video").unwrap();
        let (torn, done) = video.last_segment().unwrap();
        assert!(!done);
        let second = video.init().unwrap();
        assert_eq!(video.init_at(torn).unwrap(), second);
        // A relayed copy drops the torn segment: its header is not left under its key.
        video.drop_in_progress(true);
        assert!(matches!(video.init_at(torn), Err(StoreError::NotFound(_))));
        assert_eq!(video.init().unwrap(), second, "still the newest");
        for i in 5..70 {
            seg.push(video_frame(i, 30)).unwrap();
            store.apply(seg.drain(), route);
        }
        let pl = store.media_playlist("video", Default::default()).await.unwrap();
        let key: u64 = pl
            .lines()
            .filter_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\"init-"))
            .next_back()
            .and_then(|l| l.trim_end_matches(".mp4\"").parse().ok())
            .expect("a map");
        assert!(key > torn, "{pl}");
        assert_eq!(video.init_at(key).unwrap(), second);
    }

    #[tokio::test]
    async fn a_new_header_at_a_discontinuity_gets_its_own_versioned_map() {
        let (store, mut seg) = fed(100, 0..0);
        let first = store.rendition("video").unwrap().init().unwrap();
        // Another source takes the rendition over with other parameters (640x480).
        let mut other = video_track();
        other.video = Some(crate::media::VideoShape {
            width: 640,
            height: 480,
            frame_rate: Some((25, 1)),
        });
        seg.replace_track(other.clone()).unwrap();
        for i in 0..90 {
            seg.push(video_frame(i, 30)).unwrap();
            store.apply(seg.drain(), route);
        }
        let video = store.rendition("video").unwrap();
        let pl = store.media_playlist("video", Default::default()).await.unwrap();
        let maps: Vec<&str> = pl.lines().filter(|l| l.starts_with("#EXT-X-MAP:")).collect();
        assert_eq!(maps.len(), 2, "{pl}");
        let second_key: u64 = maps[1]
            .trim_start_matches("#EXT-X-MAP:URI=\"init-")
            .trim_end_matches(".mp4\"")
            .parse()
            .unwrap();
        // The new header goes with the discontinuity's first segment.
        assert!(
            pl.contains(&format!(
                "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-{second_key}.mp4\""
            )),
            "{pl}"
        );
        assert_eq!(video.init_at(0).unwrap(), first);
        let second = video.init_at(second_key).unwrap();
        assert_ne!(second, first);
        assert_eq!(video.init().unwrap(), second, "init.mp4 is the newest");
        assert!(matches!(
            video.init_at(second_key + 1),
            Err(StoreError::NotFound(_))
        ));
        check::check_media(&pl).unwrap_or_else(|v| panic!("{}\n{pl}", check::report(&v)));
        // A follower that joins now names both headers the same way.
        let copy = EventStore::new(store.config().clone());
        let mut f = video.follow(None);
        let mirror = copy.add_rendition("video", video_track()).unwrap();
        mirror.apply(f.replay.drain(..), store.config().window_segments);
        same_playlist(&store, &copy, "video").await;
        assert_eq!(mirror.init_at(second_key).unwrap(), second);
        // Once the old segments slide out, so does their header.
        for i in 90..400 {
            seg.push(video_frame(i, 30)).unwrap();
            store.apply(seg.drain(), route);
        }
        let pl = store.media_playlist("video", Default::default()).await.unwrap();
        assert_eq!(pl.matches("#EXT-X-MAP:").count(), 1, "{pl}");
        assert!(matches!(video.init_at(0), Err(StoreError::NotFound(_))));
    }

    #[tokio::test]
    async fn a_follower_rebuilds_the_window_and_resumes_where_it_stopped() {
        let (store, mut seg) = fed(100, 0..0);
        let origin = store.rendition("video").unwrap();
        let copy = EventStore::new(store.config().clone());
        let mut f = origin.follow(None);
        let track = crate::cmaf::read::track_info(&origin.init().unwrap()).unwrap();
        assert_eq!(track, video_track());
        let mirror = copy.add_rendition("video", track).unwrap();
        mirror.apply(f.replay.drain(..), store.config().window_segments);
        same_playlist(&store, &copy, "video").await;
        // Later batches arrive as updates, in order.
        for i in 100..130 {
            seg.push(video_frame(i, 30)).unwrap();
            store.apply(seg.drain(), route);
        }
        mirror.apply(drain_updates(&mut f), store.config().window_segments);
        same_playlist(&store, &copy, "video").await;
        // The copy loses its in-progress part (a torn object) and resumes after its last
        // complete part: the replay holds exactly what is missing.
        mirror.drop_in_progress(false);
        let last = mirror.last_part().unwrap();
        for i in 130..140 {
            seg.push(video_frame(i, 30)).unwrap();
            store.apply(seg.drain(), route);
        }
        let mut f2 = origin.follow(Some(last));
        assert_eq!(f2.epoch, origin.epoch());
        assert!(matches!(f2.replay[0], Event::Init { .. }));
        assert!(
            matches!(f2.replay[1], Event::PartStart { msn, .. } | Event::SegmentStart { msn, .. } if (msn, part_of(&f2.replay[1])) > last),
            "{:?} after {last:?}",
            f2.replay[1]
        );
        mirror.apply(f2.replay.drain(1..), store.config().window_segments);
        same_playlist(&store, &copy, "video").await;
        // A position the window no longer holds replays the whole window.
        let f3 = origin.follow(Some((999, 0)));
        assert!(matches!(f3.replay[1], Event::SegmentStart { .. }));
        // Ending reaches followers.
        store.end();
        assert!(matches!(f2.updates.try_recv(), Ok(Update::Ended)));
    }

    fn part_of(e: &Event) -> u32 {
        match e {
            Event::PartStart { part, .. } => *part,
            _ => 0,
        }
    }

    #[tokio::test]
    async fn trimming_to_a_budget_keeps_the_newest_segment() {
        let (store, _) = fed(200, 0..0);
        let video = store.rendition("video").unwrap();
        let before = video.bytes_held();
        let freed = video.trim_to(1);
        assert!(freed > 0 && video.bytes_held() == before - freed);
        let text = store
            .media_playlist("video", PlaylistRequest::default())
            .await
            .unwrap();
        check::check_media(&text).unwrap_or_else(|v| panic!("{}\n{text}", check::report(&v)));
        assert_eq!(text.matches("#EXTINF").count(), 1, "{text}");
    }

    #[tokio::test]
    async fn a_part_past_the_end_of_a_complete_segment_waits_for_the_next_segment() {
        // 2 s + 3 frames: segment 0 is complete with 10 parts; part 1.0 is in progress.
        let (store, _) = fed(63, 0..0);
        assert_eq!(store.rendition("video").unwrap().last_part(), Some((0, 9)));
        let early = store.media_playlist("video", req(0, Some(10))).await;
        assert!(matches!(early, Err(StoreError::Unavailable(_))), "{early:?}");
        // Same for the plain msn form of the next segment.
        let early = store.media_playlist("video", req(1, None)).await;
        assert!(matches!(early, Err(StoreError::Unavailable(_))), "{early:?}");
        // Two segments ahead of the in-progress one is still in range; three is not.
        assert!(matches!(
            store.media_playlist("video", req(4, None)).await,
            Err(StoreError::BadRequest(_))
        ));
    }

    #[tokio::test]
    async fn an_ended_stream_ignores_the_blocking_keys() {
        let (store, mut seg) = fed(40, 0..0);
        seg.flush();
        store.apply(seg.drain(), route);
        store.end();
        let p = store.media_playlist("video", req(9, Some(3))).await.unwrap();
        assert!(p.ends_with("#EXT-X-ENDLIST\n"), "{p}");
    }

    #[tokio::test]
    async fn audio_gaps_keep_numbers_consecutive_and_the_playlist_valid() {
        // Audio stops for 0.5 s (a hole the timeline keeps), or for 2.5 s (more than
        // `max_timestamp_gap`: a discontinuity), in the middle, and comes back.
        for (hole, discontinuities) in [(200..224, 0), (200..317, 1)] {
            let (store, _) = fed(300, hole.clone());
            let text = store
                .media_playlist("audio", PlaylistRequest::default())
                .await
                .unwrap();
            let audio = check::check_media(&text).unwrap_or_else(|v| panic!("{}\n{text}", check::report(&v)));
            let msns: Vec<u64> = audio.segments.iter().map(|s| s.msn).collect();
            assert!(msns.windows(2).all(|w| w[1] == w[0] + 1), "{hole:?}: {msns:?}");
            let flagged = audio.segments.iter().filter(|s| s.discontinuity).count();
            assert_eq!(flagged, discontinuities, "{hole:?}\n{text}");
            let (last_audio, _) = store.rendition("audio").unwrap().last_part().unwrap();
            let (last_video, _) = store.rendition("video").unwrap().last_part().unwrap();
            assert!(
                last_audio + 1 >= last_video,
                "audio {last_audio}, video {last_video}"
            );
        }
    }

    #[tokio::test]
    async fn viewers_share_one_rendering_until_something_changes() {
        let (store, mut seg) = fed(40, 0..0);
        let a = store
            .media_playlist("video", PlaylistRequest::default())
            .await
            .unwrap();
        let b = store
            .media_playlist("video", PlaylistRequest::default())
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        // A sibling's new part changes this playlist's rendition report: rendered again.
        seg.push(audio_frame(80)).unwrap();
        store.apply(seg.drain(), route);
        let c = store
            .media_playlist("video", PlaylistRequest::default())
            .await
            .unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        for i in 40..48 {
            seg.push(video_frame(i, 30)).unwrap();
        }
        store.apply(seg.drain(), route);
        let d = store
            .media_playlist("video", PlaylistRequest::default())
            .await
            .unwrap();
        assert_ne!(*c, *d, "a completed part moves the playlist on");
        assert!(d.contains("#EXT-X-PART:DURATION=0.2,URI=\"0.6.m4s\""), "{d}");
    }

    #[test]
    fn no_multivariant_until_every_rendition_has_media() {
        let store = EventStore::new(StoreConfig::default());
        let mut seg = Segmenter::new(SegmenterConfig::default());
        for (name, t) in [("video", video_track()), ("audio", audio_track())] {
            seg.add_track(t.clone()).unwrap();
            store.add_rendition(name, t).unwrap();
        }
        // Audio runs ahead of video's first keyframe: no audio-only master in between.
        for a in 0..60 {
            seg.push(audio_frame(a)).unwrap();
        }
        store.apply(seg.drain(), route);
        assert!(matches!(store.multivariant(), Err(StoreError::Unavailable(_))));
        for i in 0..61 {
            seg.push(video_frame(i, 30)).unwrap();
        }
        store.apply(seg.drain(), route);
        // Parts, but no complete segment yet.
        assert!(matches!(store.multivariant(), Err(StoreError::Unavailable(_))));
        for a in 60..200 {
            seg.push(audio_frame(a)).unwrap();
        }
        for i in 61..92 {
            seg.push(video_frame(i, 30)).unwrap();
        }
        store.apply(seg.drain(), route);
        let m = store.multivariant().unwrap();
        assert!(m.contains("avc1.") && m.contains("TYPE=AUDIO"), "{m}");
        assert!(!m.contains("BANDWIDTH=0,"), "{m}");
    }
}
