//! The segmenter: a sans-IO state machine that turns one source's frames into CMAF chunks,
//! LL-HLS parts and segments, as [`Event`]s for the live store.
//!
//! Every track of a source becomes its own rendition (CMAF: one track per file). The first
//! video track leads: segments are cut at its keyframes once the segment target is reached,
//! and the other tracks cut their segments at the lead's cut instants, so segment `msn` N
//! covers the same time in every rendition. Each track cuts its own parts at its part
//! target. A chunk (one frame) is emitted as soon as its duration is known: at once for
//! fixed-duration audio (AAC), when the next frame arrives for video.
//!
//! Output timestamps only increase for the life of the segmenter. A publisher that stops
//! and resumes, or timestamps that jump, start a discontinuity: open segments are closed,
//! the next ones carry `discontinuity = true` and continue the output timeline.

use crate::cmaf::{self, ChunkSample};
use crate::codec::avcc_nal_units;
use crate::media::{CodecConfig, Frame, TrackId, TrackInfo};
use bytes::Bytes;
use std::time::{Duration, SystemTime};

/// Timing and limits of the segmenter.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmenterConfig {
    /// Wanted part duration; the advertised PART-TARGET is the nearest whole number of
    /// frames to it.
    pub part_target: Duration,
    /// Segments are cut at the first keyframe at or after this duration.
    pub segment_target: Duration,
    /// Largest frame accepted.
    pub max_frame_bytes: usize,
    /// A forward jump in a track's timestamps larger than this starts a discontinuity.
    pub max_timestamp_gap: Duration,
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        Self::from(&popcast_config::PackagerConfig::default())
    }
}

impl From<&popcast_config::PackagerConfig> for SegmenterConfig {
    fn from(c: &popcast_config::PackagerConfig) -> Self {
        Self {
            part_target: Duration::from_millis(u64::from(c.part_target_ms)),
            segment_target: Duration::from_millis(u64::from(c.segment_target_ms)),
            max_frame_bytes: c.max_frame_bytes as usize,
            max_timestamp_gap: Duration::from_millis(u64::from(c.max_timestamp_gap_ms)),
        }
    }
}

impl SegmenterConfig {
    /// `EXT-X-TARGETDURATION`: the segment target rounded up to whole seconds. Segments that
    /// would round above it are cut even without a keyframe.
    pub fn target_duration_secs(&self) -> u64 {
        self.segment_target.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// What the segmenter produced, in order. Events of one track form a strict grammar:
/// `Init`, then per segment `SegmentStart (PartStart Chunk+ PartEnd)+ SegmentEnd`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The track's init segment and its advertised part target; sent before its first chunk.
    Init {
        track: TrackId,
        data: Bytes,
        part_target: Duration,
    },
    SegmentStart {
        track: TrackId,
        msn: u64,
        /// The segment follows a discontinuity (EXT-X-DISCONTINUITY).
        discontinuity: bool,
        /// Wall-clock instant of the segment's first frame (EXT-X-PROGRAM-DATE-TIME).
        program_date_time: SystemTime,
    },
    PartStart {
        track: TrackId,
        msn: u64,
        part: u32,
        /// Begins with a sync sample (EXT-X-PART INDEPENDENT=YES).
        independent: bool,
    },
    /// One CMAF chunk (`prft` + `moof` + `mdat`) of the current part.
    Chunk { track: TrackId, data: Bytes },
    PartEnd {
        track: TrackId,
        msn: u64,
        part: u32,
        duration: Duration,
    },
    SegmentEnd {
        track: TrackId,
        msn: u64,
        duration: Duration,
    },
}

/// Why a frame or track was refused. The frame is dropped; the segmenter stays usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmenterError {
    #[error("unknown track {0:?}")]
    UnknownTrack(TrackId),
    #[error("track {0:?} was already added")]
    DuplicateTrack(TrackId),
    #[error("track {track:?}: {reason}")]
    BadTrack { track: TrackId, reason: String },
    #[error("track {track:?}: frame of {size} bytes is over the {max}-byte limit")]
    FrameTooLarge { track: TrackId, size: usize, max: usize },
    #[error("track {track:?}: empty frame")]
    EmptyFrame { track: TrackId },
    #[error("track {track:?}: frame is not valid AVCC: {reason}")]
    BadPayload { track: TrackId, reason: String },
    #[error("track {track:?}: waiting for a keyframe to start")]
    WaitingForKeyframe { track: TrackId },
    #[error("track {track:?}: decode time {dts} does not advance past {last}")]
    NotIncreasing { track: TrackId, dts: i64, last: i64 },
    #[error("track {track:?}: timestamp {dts} is outside the current timeline")]
    OutsideTimeline { track: TrackId, dts: i64 },
}

/// Shared mapping from source time to output time, reset at each discontinuity.
#[derive(Debug, Clone, Copy)]
struct Epoch {
    /// Source time of the first frame of this timeline, in nanoseconds.
    source_ns: i128,
    /// Output time it maps to, in nanoseconds.
    output_ns: i128,
    /// Wall clock of the first frame; EXT-X-PROGRAM-DATE-TIME counts from here.
    wall: SystemTime,
}

/// A frame waiting for its duration (known when the next frame of the track arrives).
#[derive(Debug)]
struct Held {
    frame: Frame,
    out_dts: i64,
}

#[derive(Debug)]
struct Track {
    info: TrackInfo,
    lead: bool,
    /// Samples of fixed duration (AAC: 1024 per frame) are emitted without waiting.
    fixed_duration: Option<u32>,
    nal_length_size: Option<u8>,
    init_sent: bool,
    /// Advertised part target, in ticks (decided at the first muxed frame).
    part_target: i64,
    held: Option<Held>,
    /// Last source dts accepted, for gap and order checks.
    last_source_dts: Option<i64>,
    /// Output time the next frame is expected at (end of the last muxed frame).
    out_end: Option<i64>,
    last_duration: u32,
    sequence: u32,
    next_msn: u64,
    /// Whether this track has opened a segment (a follower's first takes the lead's msn).
    started: bool,
    segment: Option<OpenSegment>,
    /// The next segment follows a discontinuity.
    discontinuity_pending: bool,
    /// Waiting for a keyframe before accepting frames (lead video, at start and after a
    /// discontinuity).
    need_keyframe: bool,
}

#[derive(Debug)]
struct OpenSegment {
    msn: u64,
    part: u32,
    /// Sum of the sample durations in the segment and in its open part: EXTINF and part
    /// DURATION count samples, so a hole in the source's timestamps never makes a part
    /// longer than PART-TARGET or a segment longer than TARGETDURATION.
    samples: i64,
    part_samples: i64,
    /// A part is open (PartStart sent, PartEnd not yet).
    part_open: bool,
}

/// The segmenter of one source. See the module docs.
#[derive(Debug)]
pub struct Segmenter {
    config: SegmenterConfig,
    tracks: Vec<Track>,
    epoch: Option<Epoch>,
    /// The timeline before the last discontinuity, so that dates continue from it.
    previous_epoch: Option<Epoch>,
    /// Output instant (ns) of the lead's most recent segment cut that followers have not
    /// all reached yet, with the msn that starts there.
    lead_cut: Option<(i128, u64)>,
    events: Vec<Event>,
    /// Media sequence number of the first segment (0 unless set by [`Segmenter::start_at`]).
    first_msn: u64,
    /// Whether the first segment of each track follows an earlier session (a discontinuity).
    after_earlier: bool,
}

fn ns(ticks: i64, timescale: u32) -> i128 {
    i128::from(ticks) * 1_000_000_000 / i128::from(timescale)
}

fn ticks(ns: i128, timescale: u32) -> i64 {
    let t = ns * i128::from(timescale);
    // Round to nearest so that converting back and forth does not drift by a tick.
    let r = if t >= 0 {
        (t + 500_000_000) / 1_000_000_000
    } else {
        (t - 500_000_000) / 1_000_000_000
    };
    r.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn duration_of(ticks: i64, timescale: u32) -> Duration {
    Duration::from_nanos(u64::try_from(ns(ticks.max(0), timescale)).unwrap_or(u64::MAX))
}

/// Output time of the first frame of a session: a margin so that frames slightly earlier
/// than the first one seen (audio priming, a lagging track) still map to positive times.
const START_MARGIN_NS: i128 = 10_000_000_000;

/// Gap left in the output timeline at a discontinuity, so that a track whose first new
/// frame is slightly earlier than the others' (audio priming) does not overlap its past.
const RESUME_GAP_NS: i128 = 100_000_000;

impl Segmenter {
    pub fn new(config: SegmenterConfig) -> Self {
        Self {
            config,
            tracks: Vec::new(),
            epoch: None,
            previous_epoch: None,
            lead_cut: None,
            events: Vec::new(),
            first_msn: 0,
            after_earlier: false,
        }
    }

    /// Numbers segments from `msn` on. With `after_earlier`, the first segment of every
    /// track is marked as a discontinuity: a new session of an event (a source with other
    /// tracks) continues the old one's numbering, so no URL of the event is ever reused for
    /// other bytes. Call before the first frame; tracks added later start there too.
    pub fn start_at(&mut self, msn: u64, after_earlier: bool) {
        self.first_msn = msn;
        self.after_earlier = after_earlier;
        for t in &mut self.tracks {
            if !t.started {
                t.next_msn = msn;
                t.discontinuity_pending = after_earlier;
            }
        }
    }

    pub fn config(&self) -> &SegmenterConfig {
        &self.config
    }

    /// Adds a track. The first video track leads segment cuts; without video, the first
    /// track leads.
    pub fn add_track(&mut self, info: TrackInfo) -> Result<(), SegmenterError> {
        if self.tracks.iter().any(|t| t.info.id == info.id) {
            return Err(SegmenterError::DuplicateTrack(info.id));
        }
        cmaf::init_segment(&info).map_err(|e| SegmenterError::BadTrack {
            track: info.id,
            reason: e.to_string(),
        })?;
        let is_video = matches!(info.codec, CodecConfig::H264(_));
        let (fixed_duration, nal_length_size) = match &info.codec {
            CodecConfig::Aac(asc) if asc.sample_rate == info.timescale => (Some(1024), None),
            CodecConfig::Aac(_) => (None, None),
            CodecConfig::H264(avc) => (None, Some(avc.nal_length_size())),
        };
        let has_video_lead = self.tracks.iter().any(|t| t.lead && t.nal_length_size.is_some());
        if is_video && !has_video_lead {
            for t in &mut self.tracks {
                t.lead = false;
            }
        }
        let lead = (is_video && !has_video_lead) || self.tracks.is_empty();
        self.tracks.push(Track {
            info,
            lead,
            fixed_duration,
            nal_length_size,
            init_sent: false,
            part_target: 0,
            held: None,
            last_source_dts: None,
            out_end: None,
            last_duration: 0,
            sequence: 0,
            next_msn: self.first_msn,
            started: false,
            segment: None,
            discontinuity_pending: self.after_earlier,
            need_keyframe: is_video,
        });
        Ok(())
    }

    /// Gives a track new codec parameters (another source takes over its rendition: the
    /// slate after a creator, a creator after the slate, an encoder with new settings). The
    /// current timeline ends (a discontinuity), and the track's next segment starts with a
    /// new `Init`. The part target stays what the rendition advertised; a timescale change
    /// carries the output timeline over. Same parameters: nothing changes.
    pub fn replace_track(&mut self, info: TrackInfo) -> Result<(), SegmenterError> {
        let idx = self
            .tracks
            .iter()
            .position(|t| t.info.id == info.id)
            .ok_or(SegmenterError::UnknownTrack(info.id))?;
        if self.tracks[idx].info == info {
            return Ok(());
        }
        let was_video = self.tracks[idx].nal_length_size.is_some();
        let is_video = matches!(info.codec, CodecConfig::H264(_));
        if was_video != is_video {
            return Err(SegmenterError::BadTrack {
                track: info.id,
                reason: "a video track cannot become audio or the reverse".into(),
            });
        }
        cmaf::init_segment(&info).map_err(|e| SegmenterError::BadTrack {
            track: info.id,
            reason: e.to_string(),
        })?;
        self.discontinuity();
        let t = &mut self.tracks[idx];
        let (from, to) = (t.info.timescale, info.timescale);
        if from != to {
            let convert = |v: i64| ticks(ns(v, from), to);
            t.out_end = t.out_end.map(convert);
            t.part_target = convert(t.part_target);
            t.last_duration = u32::try_from(convert(i64::from(t.last_duration))).unwrap_or(u32::MAX);
        }
        (t.fixed_duration, t.nal_length_size) = match &info.codec {
            CodecConfig::Aac(asc) if asc.sample_rate == info.timescale => (Some(1024), None),
            CodecConfig::Aac(_) => (None, None),
            CodecConfig::H264(avc) => (None, Some(avc.nal_length_size())),
        };
        t.info = info;
        t.init_sent = false;
        t.need_keyframe = is_video;
        Ok(())
    }

    /// The tracks, in the order added.
    pub fn tracks(&self) -> impl Iterator<Item = &TrackInfo> {
        self.tracks.iter().map(|t| &t.info)
    }

    /// Takes the events produced so far.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    /// Accepts one frame. On error the frame is dropped and nothing else changes, except
    /// that a timestamp jump first closes the current segments (a discontinuity).
    pub fn push(&mut self, frame: Frame) -> Result<(), SegmenterError> {
        let idx = self
            .tracks
            .iter()
            .position(|t| t.info.id == frame.track)
            .ok_or(SegmenterError::UnknownTrack(frame.track))?;
        self.check_payload(idx, &frame)?;

        // Timeline checks: backwards or a large jump starts a discontinuity.
        let t = &self.tracks[idx];
        let ts = t.info.timescale;
        if let Some(last) = t.last_source_dts {
            let gap = ns(frame.dts, ts) - ns(last, ts);
            // A small step back (a stray late frame) is refused; a large one is a new timeline.
            let small_back = gap < 0 && -gap <= self.config.part_target.as_nanos() as i128;
            if gap <= 0 || gap > self.config.max_timestamp_gap.as_nanos() as i128 {
                if gap == 0 || small_back {
                    return Err(SegmenterError::NotIncreasing {
                        track: frame.track,
                        dts: frame.dts,
                        last,
                    });
                }
                tracing::info!(
                    track = frame.track.0,
                    gap_ms = (gap / 1_000_000) as i64,
                    "timestamp jump: discontinuity"
                );
                self.discontinuity();
            }
        }
        let t = &self.tracks[idx];
        if t.need_keyframe && !frame.keyframe {
            return Err(SegmenterError::WaitingForKeyframe { track: frame.track });
        }

        // Map to output time.
        let epoch = *self.epoch.get_or_insert_with(|| {
            let output_ns = self
                .tracks
                .iter()
                .filter_map(|t| t.out_end.map(|e| ns(e, t.info.timescale)))
                .max()
                .map_or(START_MARGIN_NS, |end| end + RESUME_GAP_NS);
            // Program date-times never go back: after a discontinuity the new timeline starts
            // at the frame's arrival, or where the previous timeline's dates reached if that
            // is later (a source that sent faster than real time).
            let continued = self.previous_epoch.map(|e| {
                let ahead = u64::try_from(output_ns - e.output_ns).unwrap_or(0);
                e.wall + Duration::from_nanos(ahead)
            });
            Epoch {
                source_ns: ns(frame.dts, ts),
                output_ns,
                wall: continued.map_or(frame.arrived, |c| c.max(frame.arrived)),
            }
        });
        let rel = ns(frame.dts, ts) - epoch.source_ns;
        let max_gap = self.config.max_timestamp_gap.as_nanos() as i128;
        // A track's first frame on this timeline must be near the timeline's start: a frame
        // far before it, or far after it, belongs to another timeline.
        if rel < -(START_MARGIN_NS / 2) || (t.last_source_dts.is_none() && rel > max_gap) {
            return Err(SegmenterError::OutsideTimeline {
                track: frame.track,
                dts: frame.dts,
            });
        }
        let out_dts = ticks(epoch.output_ns + rel, ts);
        if let Some(end) = t.out_end {
            // A track that starts a new timeline must not overlap what it already sent.
            if t.held.is_none() && out_dts < end - i64::from(t.last_duration) / 2 {
                return Err(SegmenterError::OutsideTimeline {
                    track: frame.track,
                    dts: frame.dts,
                });
            }
        }
        if out_dts < 0 {
            return Err(SegmenterError::OutsideTimeline {
                track: frame.track,
                dts: frame.dts,
            });
        }

        let t = &mut self.tracks[idx];
        t.need_keyframe = false;
        t.last_source_dts = Some(frame.dts);
        if let Some(d) = t.fixed_duration {
            self.mux(idx, frame, out_dts, d);
        } else {
            // The lead announces a keyframe cut as soon as the keyframe arrives, so that
            // followers (whose frames are muxed without waiting) cut at the same instant.
            // The same test `mux` applies: the segment's samples once the held frame is in,
            // against the target less half the held frame's (capped) duration.
            if let (true, true, Some(seg), Some(held)) = (t.lead, frame.keyframe, &t.segment, &t.held) {
                let target = ticks(self.config.segment_target.as_nanos() as i128, ts);
                let held_d = (out_dts - held.out_dts).clamp(1, t.part_target.max(1));
                if seg.samples + held_d >= target - held_d / 2 {
                    self.lead_cut = Some((ns(out_dts, ts), t.next_msn));
                }
            }
            let t = &mut self.tracks[idx];
            if let Some(prev) = t.held.replace(Held { frame, out_dts }) {
                let d = (out_dts - prev.out_dts).clamp(1, i64::from(u32::MAX)) as u32;
                self.mux(idx, prev.frame, prev.out_dts, d);
            }
        }
        Ok(())
    }

    /// Ends the current timeline: muxes held frames, closes every open part and segment,
    /// and marks the next segments as following a discontinuity. Call it when a publisher
    /// disconnects; a reconnecting one then continues the same output timeline.
    pub fn discontinuity(&mut self) {
        self.flush();
        for t in &mut self.tracks {
            t.discontinuity_pending = t.out_end.is_some();
            t.last_source_dts = None;
            t.need_keyframe = t.nal_length_size.is_some();
        }
        self.previous_epoch = self.epoch.take().or(self.previous_epoch);
        self.lead_cut = None;
    }

    /// Muxes held frames (with their predecessor's duration) and closes open segments.
    pub fn flush(&mut self) {
        for idx in 0..self.tracks.len() {
            if let Some(h) = self.tracks[idx].held.take() {
                let d = self.tracks[idx].last_duration.max(1);
                self.mux(idx, h.frame, h.out_dts, d);
            }
            self.close_segment(idx);
        }
    }

    fn check_payload(&self, idx: usize, frame: &Frame) -> Result<(), SegmenterError> {
        let track = frame.track;
        if frame.payload.is_empty() {
            return Err(SegmenterError::EmptyFrame { track });
        }
        if frame.payload.len() > self.config.max_frame_bytes {
            return Err(SegmenterError::FrameTooLarge {
                track,
                size: frame.payload.len(),
                max: self.config.max_frame_bytes,
            });
        }
        if let Some(size) = self.tracks[idx].nal_length_size {
            for nal in avcc_nal_units(&frame.payload, size) {
                nal.map_err(|e| SegmenterError::BadPayload {
                    track,
                    reason: e.to_string(),
                })?;
            }
        }
        Ok(())
    }

    /// Writes one frame whose duration is known, cutting parts and segments before it.
    fn mux(&mut self, idx: usize, frame: Frame, out_dts: i64, duration: u32) {
        let ts = self.tracks[idx].info.timescale;
        if !self.tracks[idx].init_sent {
            let t = &mut self.tracks[idx];
            let wanted = ticks(self.config.part_target.as_nanos() as i128, ts).max(1);
            let d = i64::from(duration);
            // A whole number of frames; a first frame longer than wanted (a stall at the
            // start) does not stretch the part target. Decided once: PART-TARGET never
            // changes in a playlist, whatever source follows.
            if t.part_target == 0 {
                t.part_target = if d > wanted {
                    wanted
                } else {
                    ((wanted as f64 / d as f64).round() as i64).max(1) * d
                };
            }
            t.init_sent = true;
            let data = cmaf::init_segment(&t.info).unwrap_or_default();
            self.events.push(Event::Init {
                track: t.info.id,
                data,
                part_target: duration_of(t.part_target, ts),
            });
        }
        let target_ticks = ticks(self.config.segment_target.as_nanos() as i128, ts);
        // Segments whose duration would round above EXT-X-TARGETDURATION are cut anyway.
        let hard_max = ticks(
            i128::from(self.config.target_duration_secs()) * 1_000_000_000 + 499_000_000,
            ts,
        );
        let t = &self.tracks[idx];
        // A frame followed by a hole (a stalled source) counts as one frame of at most a
        // part: the hole stays in the media timeline (tfdt) and out of the durations.
        let duration = if t.fixed_duration.is_none() {
            duration
                .min(u32::try_from(t.part_target).unwrap_or(u32::MAX))
                .max(1)
        } else {
            duration
        };
        let d = i64::from(duration);
        let cut_segment = match &t.segment {
            None => true,
            Some(s) => {
                let elapsed = s.samples;
                if t.lead {
                    let half = i64::from(t.last_duration) / 2;
                    (frame.keyframe && elapsed >= target_ticks - half) || elapsed + d > hard_max
                } else {
                    let lead_says = self
                        .lead_cut
                        .is_some_and(|(at, msn)| msn > s.msn && ns(out_dts + d / 2, ts) >= at);
                    lead_says || elapsed + d > hard_max
                }
            }
        };
        if cut_segment {
            self.close_segment(idx);
            self.open_segment(idx, out_dts);
        } else {
            let t = &mut self.tracks[idx];
            let part_target = t.part_target;
            let s = t.segment.as_mut().expect("segment open");
            if s.part_open && s.part_samples + d > part_target {
                close_part(&mut self.events, t.info.id, ts, s);
            }
        }

        let t = &mut self.tracks[idx];
        let id = t.info.id;
        let s = t.segment.as_mut().expect("segment open");
        if !s.part_open {
            s.part_open = true;
            self.events.push(Event::PartStart {
                track: id,
                msn: s.msn,
                part: s.part,
                independent: frame.keyframe,
            });
        }
        s.samples += d;
        s.part_samples += d;
        t.sequence = t.sequence.wrapping_add(1);
        let cto = i128::from(frame.pts) - i128::from(frame.dts);
        let sample = ChunkSample {
            duration,
            composition_offset: cto.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32,
            sync: frame.keyframe,
            data: frame.payload,
        };
        // Sizes were checked on push, so writing cannot fail.
        match cmaf::chunk(id.0, t.sequence, out_dts as u64, &[sample], Some(frame.arrived)) {
            Ok(data) => self.events.push(Event::Chunk { track: id, data }),
            Err(e) => tracing::error!(track = id.0, "chunk not written: {e}"),
        }
        t.out_end = Some(out_dts + d);
        t.last_duration = duration;
    }

    fn open_segment(&mut self, idx: usize, out_dts: i64) {
        let lead_msn = self.lead_cut.map(|(_, m)| m).unwrap_or(self.first_msn);
        let epoch = self.epoch.expect("epoch set before muxing");
        let t = &mut self.tracks[idx];
        let ts = t.info.timescale;
        // Numbers stay consecutive within a rendition (a playlist cannot skip one); only a
        // follower's first segment takes the lead's number, so that renditions align.
        let msn = if t.lead || t.started { t.next_msn } else { lead_msn };
        t.started = true;
        let since = ns(out_dts, ts) - epoch.output_ns;
        let pdt = if since >= 0 {
            epoch.wall + Duration::from_nanos(since as u64)
        } else {
            epoch
                .wall
                .checked_sub(Duration::from_nanos((-since) as u64))
                .unwrap_or(epoch.wall)
        };
        t.segment = Some(OpenSegment {
            msn,
            part: 0,
            samples: 0,
            part_samples: 0,
            part_open: false,
        });
        t.next_msn = msn + 1;
        self.events.push(Event::SegmentStart {
            track: t.info.id,
            msn,
            discontinuity: std::mem::take(&mut t.discontinuity_pending),
            program_date_time: pdt,
        });
        if t.lead {
            self.lead_cut = Some((ns(out_dts, ts), msn));
        }
    }

    fn close_segment(&mut self, idx: usize) {
        let t = &mut self.tracks[idx];
        let Some(mut s) = t.segment.take() else { return };
        let ts = t.info.timescale;
        if s.part_open {
            close_part(&mut self.events, t.info.id, ts, &mut s);
        }
        self.events.push(Event::SegmentEnd {
            track: t.info.id,
            msn: s.msn,
            duration: duration_of(s.samples, ts),
        });
    }
}

fn close_part(events: &mut Vec<Event>, track: TrackId, ts: u32, s: &mut OpenSegment) {
    events.push(Event::PartEnd {
        track,
        msn: s.msn,
        part: s.part,
        duration: duration_of(s.part_samples, ts),
    });
    s.part += 1;
    s.part_open = false;
    s.part_samples = 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmaf::read::fragments;
    use crate::fixtures::{audio_track, video_track};
    use std::collections::BTreeMap;

    const V: TrackId = TrackId(1);
    const A: TrackId = TrackId(2);

    fn video(i: i64, gop: i64) -> Frame {
        crate::fixtures::video_frame(i, gop)
    }

    fn audio(i: i64) -> Frame {
        crate::fixtures::audio_frame(i)
    }

    #[derive(Debug, Default)]
    struct Seg {
        discontinuity: bool,
        duration: Duration,
        parts: Vec<(Duration, bool)>,
        samples: usize,
        first_sync: bool,
        start: u64,
    }

    /// Checks the event grammar per track and collects segments by msn.
    fn collect(events: &[Event]) -> BTreeMap<TrackId, (Duration, BTreeMap<u64, Seg>)> {
        let mut out: BTreeMap<TrackId, (Duration, BTreeMap<u64, Seg>)> = BTreeMap::new();
        let mut open: BTreeMap<TrackId, (Option<u64>, Option<u32>)> = BTreeMap::new();
        for e in events {
            match e {
                Event::Init {
                    track, part_target, ..
                } => {
                    assert!(!out.contains_key(track), "second init");
                    out.insert(*track, (*part_target, BTreeMap::new()));
                }
                Event::SegmentStart {
                    track,
                    msn,
                    discontinuity,
                    ..
                } => {
                    let o = open.entry(*track).or_default();
                    assert_eq!(*o, (None, None), "segment start while open");
                    o.0 = Some(*msn);
                    let segs = &mut out.get_mut(track).expect("init first").1;
                    assert!(segs.keys().all(|k| k < msn), "msn {msn} not increasing");
                    segs.insert(
                        *msn,
                        Seg {
                            discontinuity: *discontinuity,
                            ..Seg::default()
                        },
                    );
                }
                Event::PartStart {
                    track,
                    msn,
                    part,
                    independent,
                } => {
                    let o = open.get_mut(track).unwrap();
                    assert_eq!(o.0, Some(*msn));
                    assert_eq!(o.1, None);
                    o.1 = Some(*part);
                    let seg = out.get_mut(track).unwrap().1.get_mut(msn).unwrap();
                    assert_eq!(seg.parts.len() as u32, *part);
                    seg.parts.push((Duration::ZERO, *independent));
                }
                Event::Chunk { track, data } => {
                    let o = open[track];
                    let seg = out.get_mut(track).unwrap().1.get_mut(&o.0.unwrap()).unwrap();
                    assert!(o.1.is_some(), "chunk outside a part");
                    let f = fragments(data).unwrap();
                    assert_eq!(f.len(), 1);
                    if seg.samples == 0 {
                        seg.first_sync = f[0].samples[0].is_sync();
                        seg.start = f[0].base_decode_time;
                    }
                    seg.samples += f[0].samples.len();
                }
                Event::PartEnd {
                    track,
                    msn,
                    part,
                    duration,
                } => {
                    let o = open.get_mut(track).unwrap();
                    assert_eq!((o.0, o.1), (Some(*msn), Some(*part)));
                    o.1 = None;
                    let seg = out.get_mut(track).unwrap().1.get_mut(msn).unwrap();
                    seg.parts.last_mut().unwrap().0 = *duration;
                }
                Event::SegmentEnd { track, msn, duration } => {
                    let o = open.get_mut(track).unwrap();
                    assert_eq!(*o, (Some(*msn), None));
                    o.0 = None;
                    let seg = out.get_mut(track).unwrap().1.get_mut(msn).unwrap();
                    seg.duration = *duration;
                    let sum: Duration = seg.parts.iter().map(|p| p.0).sum();
                    assert!(
                        sum.abs_diff(*duration) < Duration::from_micros(50),
                        "{sum:?} vs {duration:?}"
                    );
                }
            }
        }
        out
    }

    fn av_segmenter() -> Segmenter {
        let mut s = Segmenter::new(SegmenterConfig::default());
        s.add_track(video_track()).unwrap();
        s.add_track(audio_track()).unwrap();
        s
    }

    /// Feeds `secs` of 30 fps video (GOP in frames) and 48 kHz AAC, interleaved by time.
    fn feed(s: &mut Segmenter, from_frame: i64, secs: i64, gop: i64) -> Vec<Event> {
        // From the start: the priming frame; later: the first frame starting at or after
        // the first video frame (the previous call sent those before it).
        let start = from_frame * 1600;
        let mut a = if from_frame == 0 {
            0
        } else {
            (start + 1024 + 1023) / 1024
        };
        for i in from_frame..from_frame + secs * 30 {
            s.push(video(i, gop)).unwrap();
            while (a * 1024 - 1024) * 90_000 < (i + 1) * 3000 * 48_000 {
                s.push(audio(a)).unwrap();
                a += 1;
            }
        }
        s.drain().collect()
    }

    #[test]
    fn cuts_segments_at_keyframes_and_parts_at_the_target() {
        let mut s = av_segmenter();
        let mut events = feed(&mut s, 0, 7, 30);
        s.flush();
        events.extend(s.drain());
        let tracks = collect(&events);
        let (vpt, vsegs) = &tracks[&V];
        // 200 ms at 30 fps is 6 frames.
        assert_eq!(*vpt, Duration::from_millis(200));
        assert_eq!(vsegs.len(), 4, "{:?}", vsegs.keys());
        for (msn, seg) in vsegs {
            assert!(seg.first_sync, "segment {msn} starts with a keyframe");
            assert!(seg.parts[0].1, "first part independent");
            for (i, (d, independent)) in seg.parts.iter().enumerate() {
                assert!(*d <= *vpt, "part {i} {d:?}");
                assert_eq!(*independent, i % 5 == 0, "keyframe every 5 parts");
            }
            if *msn < 3 {
                assert_eq!(seg.duration, Duration::from_secs(2));
                assert_eq!(seg.parts.len(), 10);
            }
        }
        let (apt, asegs) = &tracks[&A];
        // 9 AAC frames of 1024 samples = 192 ms.
        assert_eq!(*apt, Duration::from_millis(192));
        assert_eq!(asegs.keys().collect::<Vec<_>>(), vsegs.keys().collect::<Vec<_>>());
        for (msn, seg) in asegs {
            assert!(seg.parts.iter().all(|(d, _)| d <= apt));
            if *msn > 0 && *msn < 3 {
                // Audio segments start within one audio frame of the video cut.
                let v = vsegs[msn].start as i128 * 48_000;
                let a = seg.start as i128 * 90_000;
                assert!((v - a).abs() <= 1024 * 90_000, "msn {msn}: video {v} audio {a}");
            }
        }
    }

    #[test]
    fn resume_after_stop_is_a_discontinuity_with_increasing_time() {
        let mut s = av_segmenter();
        let mut events = feed(&mut s, 0, 3, 30);
        s.discontinuity();
        // The publisher comes back with timestamps from zero again.
        events.extend(feed(&mut s, 0, 3, 30));
        s.flush();
        events.extend(s.drain());
        let tracks = collect(&events);
        for track in [V, A] {
            let segs = &tracks[&track].1;
            let flagged: Vec<u64> = segs
                .iter()
                .filter(|(_, s)| s.discontinuity)
                .map(|(m, _)| *m)
                .collect();
            assert_eq!(flagged.len(), 1, "{track:?}: {flagged:?}");
            let starts: Vec<u64> = segs.values().map(|s| s.start).collect();
            assert!(starts.windows(2).all(|w| w[0] < w[1]), "{track:?}: {starts:?}");
        }
    }

    #[test]
    fn timestamp_jumps_start_a_discontinuity_and_wait_for_a_keyframe() {
        let mut s = av_segmenter();
        let mut events = feed(&mut s, 0, 2, 30);
        // Ten seconds later, mid-GOP: dropped until the next keyframe.
        let mut f = video(305, 30);
        f.dts += 0;
        assert!(matches!(
            s.push(f),
            Err(SegmenterError::WaitingForKeyframe { .. })
        ));
        events.extend(feed(&mut s, 330, 2, 30));
        s.flush();
        events.extend(s.drain());
        let segs = &collect(&events)[&V].1;
        assert_eq!(segs.values().filter(|s| s.discontinuity).count(), 1);
    }

    #[test]
    fn bad_frames_are_refused_and_later_output_is_intact() {
        let mut s = av_segmenter();
        assert!(matches!(
            s.push(video(1, 30)),
            Err(SegmenterError::WaitingForKeyframe { .. })
        ));
        let mut garbage = video(0, 30);
        garbage.payload = Bytes::from_static(&[0, 0, 0, 9, 0x65]);
        assert!(matches!(s.push(garbage), Err(SegmenterError::BadPayload { .. })));
        let mut empty = audio(0);
        empty.payload = Bytes::new();
        assert!(matches!(s.push(empty), Err(SegmenterError::EmptyFrame { .. })));
        let mut huge = audio(0);
        huge.payload = Bytes::from(vec![0; 5 << 20]);
        assert!(matches!(s.push(huge), Err(SegmenterError::FrameTooLarge { .. })));
        let mut other = audio(0);
        other.track = TrackId(9);
        assert_eq!(s.push(other), Err(SegmenterError::UnknownTrack(TrackId(9))));
        let mut events = feed(&mut s, 0, 1, 30);
        assert!(matches!(
            s.push(video(29, 30)),
            Err(SegmenterError::NotIncreasing { .. })
        ));
        events.extend(feed(&mut s, 30, 2, 30));
        s.flush();
        events.extend(s.drain());
        let segs = &collect(&events)[&V].1;
        assert_eq!(segs.values().map(|s| s.samples).sum::<usize>(), 90);
        assert!(segs.values().all(|s| !s.discontinuity));
    }

    #[test]
    fn b_frames_carry_composition_offsets() {
        let mut s = Segmenter::new(SegmenterConfig::default());
        s.add_track(video_track()).unwrap();
        // Decode order I P B B ... with pts = dts + 2 frames for I/P, + 0 for B.
        for i in 0..60 {
            let mut f = video(i, 30);
            f.pts = f.dts + if i % 3 == 0 { 6000 } else { 0 };
            s.push(f).unwrap();
        }
        s.flush();
        let offsets: Vec<i32> = s
            .drain()
            .filter_map(|e| match e {
                Event::Chunk { data, .. } => Some(fragments(&data).unwrap()[0].samples[0].composition_offset),
                _ => None,
            })
            .collect();
        assert_eq!(offsets.len(), 60);
        assert_eq!(&offsets[..4], &[6000, 0, 0, 6000]);
    }

    #[test]
    fn audio_only_and_video_only_sources_segment_on_their_own() {
        let mut s = Segmenter::new(SegmenterConfig::default());
        s.add_track(audio_track()).unwrap();
        for i in 0..(48_000 * 5 / 1024) {
            s.push(audio(i)).unwrap();
        }
        s.flush();
        let events: Vec<Event> = s.drain().collect();
        let segs = &collect(&events)[&A].1;
        assert!(segs.len() >= 2, "{}", segs.len());
        assert!(segs.values().all(|s| s.duration <= Duration::from_millis(2_500)));

        let mut s = Segmenter::new(SegmenterConfig::default());
        s.add_track(video_track()).unwrap();
        let events = {
            for i in 0..150 {
                s.push(video(i, 60)).unwrap();
            }
            s.flush();
            s.drain().collect::<Vec<_>>()
        };
        let segs = &collect(&events)[&V].1;
        assert_eq!(segs.len(), 3);
        assert!(
            segs.values()
                .all(|s| s.duration == Duration::from_secs(2) || s.samples < 60)
        );
    }

    #[test]
    fn a_gop_longer_than_the_target_duration_is_cut_anyway() {
        let mut s = Segmenter::new(SegmenterConfig::default());
        s.add_track(video_track()).unwrap();
        for i in 0..300 {
            s.push(video(i, 150)).unwrap();
        }
        s.flush();
        let events: Vec<Event> = s.drain().collect();
        let segs = &collect(&events)[&V].1;
        // Target duration 2 s: no segment may round above it.
        assert!(
            segs.values().all(|s| s.duration.as_secs_f64().round() <= 2.0),
            "{segs:?}"
        );
        assert!(segs.values().any(|s| !s.first_sync));
    }

    #[test]
    fn a_stalled_source_never_stretches_parts_or_segments() {
        let mut s = av_segmenter();
        let mut events = feed(&mut s, 0, 2, 30);
        // Video freezes for 2.6 s (under the discontinuity gap), then resumes; audio too.
        let mut late = video(60 + 78, 30);
        late.keyframe = true;
        late.payload = Bytes::from_static(&[0, 0, 0, 2, 0x65, 0]);
        s.push(late).unwrap();
        events.extend(feed(&mut s, 139, 3, 30));
        s.flush();
        events.extend(s.drain());
        let tracks = collect(&events);
        let (pt, segs) = &tracks[&V];
        for (msn, seg) in segs {
            assert!(
                seg.parts.iter().all(|(d, _)| d <= pt),
                "segment {msn}: {:?}",
                seg.parts
            );
            assert!(
                seg.duration.as_secs_f64().round() <= 2.0,
                "segment {msn}: {:?}",
                seg.duration
            );
        }
        // Extreme timestamps are refused or clamped, never a panic.
        let mut odd = video(200, 30);
        odd.pts = i64::MAX;
        odd.dts = i64::MIN + 1;
        let _ = s.push(odd);
        let mut odd = audio(500);
        odd.dts = i64::MAX;
        let _ = s.push(odd);
    }

    #[test]
    fn a_small_step_back_is_refused_not_a_discontinuity() {
        let mut s = av_segmenter();
        let mut events = feed(&mut s, 0, 1, 30);
        let mut stray = audio(40);
        stray.dts -= 2048;
        stray.pts = stray.dts;
        assert!(matches!(s.push(stray), Err(SegmenterError::NotIncreasing { .. })));
        // Video carries on without waiting for a keyframe.
        s.push(video(30, 29)).unwrap();
        events.extend(s.drain());
        s.flush();
        events.extend(s.drain());
        assert!(collect(&events)[&V].1.values().all(|s| !s.discontinuity));
    }

    #[test]
    fn a_new_session_continues_the_numbering_after_a_discontinuity() {
        let mut s = av_segmenter();
        s.start_at(7, true);
        let mut events = feed(&mut s, 0, 5, 30);
        s.flush();
        events.extend(s.drain());
        let all = collect(&events);
        for track in [V, A] {
            let segs = &all[&track].1;
            assert_eq!(segs.keys().next(), Some(&7), "{track:?}");
            assert!(segs[&7].discontinuity, "{track:?}");
            assert!(segs.iter().skip(1).all(|(_, s)| !s.discontinuity), "{track:?}");
        }
        assert_eq!(
            all[&V].1.keys().collect::<Vec<_>>(),
            all[&A].1.keys().collect::<Vec<_>>()
        );
        // A first session numbered from elsewhere than 0 has no discontinuity.
        let mut s = av_segmenter();
        s.start_at(1_000, false);
        let mut events = feed(&mut s, 0, 5, 30);
        s.flush();
        events.extend(s.drain());
        let all = collect(&events);
        assert_eq!(all[&V].1.keys().next(), Some(&1_000));
        assert!(all[&V].1.values().all(|s| !s.discontinuity));
    }
}
