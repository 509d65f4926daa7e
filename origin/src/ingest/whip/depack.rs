//! WHIP media into packager frames: H.264 access units (as str0m reassembles them from RFC
//! 6184 single-NAL, STAP-A and FU-A packets) become AVCC frames with their parameter sets
//! tracked, and RTP times of both tracks are put on one timeline (from RTCP sender reports
//! when the publisher sends them in time, else from arrival). Sans-IO: no sockets, no clock.

use bytes::Bytes;
use popcast_packager::codec::{AvcDecoderConfig, NalUnitType, annexb_nal_units};
use popcast_packager::media::{CodecConfig, Frame, TrackId, TrackInfo};
use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

/// The video track's id in the frames this produces.
pub const VIDEO: TrackId = TrackId(1);
/// The audio track's id.
pub const AUDIO: TrackId = TrackId(2);
/// RTP clock rate of H.264 (RFC 6184) and of Opus (RFC 7587).
pub const VIDEO_RATE: u32 = 90_000;
pub const AUDIO_RATE: u32 = 48_000;

/// How long media is held for the first RTCP sender reports of every track, which put audio
/// and video on the sender's clock. Past this, arrival times align them instead.
pub const SENDER_REPORT_WAIT: Duration = Duration::from_millis(1_500);
/// Most packets held while waiting (about 1.5 s of 60 fps video and 20 ms audio is 165).
const MAX_HELD: usize = 400;

/// Which track a payload belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Video,
    Audio,
}

/// The sender's clock at one RTP time of a stream (an RTCP sender report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderClock {
    pub ntp: SystemTime,
    /// The RTP time (extended, as the stream's payloads carry) the report pairs with `ntp`.
    pub rtp: u64,
}

/// One depacketised payload: an H.264 access unit in Annex B, or one Opus packet.
#[derive(Debug, Clone)]
pub struct Payload {
    pub kind: Kind,
    /// RTP time, extended past 32-bit wrap-around (str0m's `MediaTime` numerator).
    pub rtp: u64,
    pub data: Bytes,
    /// Monotonic arrival (aligns the tracks when no sender report came).
    pub at: Instant,
    /// Wall-clock arrival, carried on the frame for latency measurement.
    pub arrived: SystemTime,
    /// The stream's latest sender report, if any.
    pub sender: Option<SenderClock>,
}

/// What the mapper made of its input.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// The video track, first or changed (new SPS/PPS: another size or profile).
    VideoTrack(TrackInfo),
    /// A video frame (AVCC, 4-byte lengths), on the session timeline in 1/90 000 s.
    Video(Frame),
    /// An Opus packet on the session timeline in 1/48 000 s.
    Audio {
        pts: i64,
        data: Bytes,
        arrived: SystemTime,
    },
}

/// Why a payload was dropped (the session goes on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepackError {
    #[error("an H.264 access unit without NAL units")]
    EmptyAccessUnit,
    #[error("an H.264 access unit of {size} bytes is over the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("H.264 parameter sets refused: {0}")]
    ParameterSets(String),
    #[error("video before the first SPS and PPS (waiting for a keyframe)")]
    NoParameterSets,
    #[error("video before the first keyframe")]
    NoKeyframe,
    #[error("an empty Opus packet")]
    EmptyAudio,
    #[error("a timestamp before the session's start")]
    BeforeStart,
}

/// How the tracks' RTP times map onto the session timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The sender's NTP clock from RTCP sender reports (lip sync as the sender captured).
    SenderReports,
    /// Arrival at the origin (used when a track had no sender report in time).
    Arrival,
}

/// Media of one WHIP session on its way to the packager.
#[derive(Debug)]
pub struct Depacketiser {
    expect_video: bool,
    expect_audio: bool,
    max_frame_bytes: usize,
    held: VecDeque<Payload>,
    first_at: Option<Instant>,
    /// Chosen once: the basis and the session's zero on its clock.
    basis: Option<(Basis, Epoch)>,
    /// Per track: RTP time that maps to pts 0 (pts = rtp - offset).
    video_offset: Option<i128>,
    audio_offset: Option<i128>,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    config: Option<AvcDecoderConfig>,
    seen_keyframe: bool,
    /// Session time (1/90 000 s) of the last keyframe, for keyframe requests.
    last_keyframe: Option<i64>,
    last_video_dts: Option<i64>,
    last_audio_pts: Option<i64>,
    cadence: Cadence,
}

/// Evens out capture-clock jitter in video times. Browsers stamp each frame with its
/// capture time, a few milliseconds off a steady rate; four 50 ms frames then add up to
/// 201 ms and a 200 ms part holds three. While frames keep a steady period (within an
/// eighth of it), they are placed on that period, never more than a quarter period from
/// their own time; a change of rate (the encoder dropping frames) is followed at once.
#[derive(Debug, Default)]
struct Cadence {
    /// The last input time and the time given for it.
    last: Option<(i64, i64)>,
    /// Recent input intervals, newest last.
    deltas: VecDeque<i64>,
}

impl Cadence {
    const WINDOW: usize = 8;

    fn place(&mut self, raw: i64) -> i64 {
        let Some((last_raw, last_out)) = self.last else {
            self.last = Some((raw, raw));
            return raw;
        };
        let delta = raw - last_raw;
        if delta <= 0 {
            self.last = Some((raw, raw));
            self.deltas.clear();
            return raw;
        }
        if self.deltas.len() == Self::WINDOW {
            self.deltas.pop_front();
        }
        self.deltas.push_back(delta);
        let period = snap(self.deltas.iter().sum::<i64>() / self.deltas.len() as i64);
        // A common rate is trusted from the first interval (the packager sizes its parts
        // from the first frame's duration); another only once three intervals agree.
        let known = self.deltas.len() >= 3 || PERIODS.contains(&period);
        let steady = known && (delta - period).abs() <= period / 8;
        let placed = last_out + period;
        let out = if steady && (placed - raw).abs() <= period / 4 {
            placed
        } else {
            raw
        };
        self.last = Some((raw, out));
        out
    }
}

/// Frame periods (1/90 000 s) of the rates cameras and encoders run at: 60, 50, 30, 29.97,
/// 25, 24, 20, 15, 12, 10, 7.5 and 5 fps.
const PERIODS: [i64; 12] = [
    1_500, 1_800, 3_000, 3_003, 3_600, 3_750, 4_500, 6_000, 7_500, 9_000, 12_000, 18_000,
];

/// A measured period, on the nearest common rate's period when within 2 % of it.
fn snap(measured: i64) -> i64 {
    PERIODS
        .iter()
        .copied()
        .min_by_key(|p| (p - measured).abs())
        .filter(|p| (p - measured).abs() * 50 <= *p)
        .unwrap_or(measured)
        .max(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Epoch {
    Ntp(SystemTime),
    Arrival(Instant),
}

impl Depacketiser {
    /// `sprop` holds the SPS and PPS from the offer's `sprop-parameter-sets`, if any.
    pub fn new(expect_video: bool, expect_audio: bool, max_frame_bytes: usize, sprop: &[Bytes]) -> Self {
        let mut d = Self {
            expect_video,
            expect_audio,
            max_frame_bytes,
            held: VecDeque::new(),
            first_at: None,
            basis: None,
            video_offset: None,
            audio_offset: None,
            sps: None,
            pps: None,
            config: None,
            seen_keyframe: false,
            last_keyframe: None,
            last_video_dts: None,
            last_audio_pts: None,
            cadence: Cadence::default(),
        };
        for nal in sprop {
            match NalUnitType::of(nal) {
                Some(NalUnitType::SPS) => d.sps = Some(nal.clone()),
                Some(NalUnitType::PPS) => d.pps = Some(nal.clone()),
                _ => {}
            }
        }
        d
    }

    /// The timeline's basis, once chosen.
    pub fn basis(&self) -> Option<Basis> {
        self.basis.map(|(b, _)| b)
    }

    /// Whether a keyframe should be asked for: none yet, or none for longer than `target`
    /// of media time (segments are cut at keyframes, so a long GOP makes long segments).
    pub fn wants_keyframe(&self, target: Duration) -> bool {
        if !self.seen_keyframe {
            return true;
        }
        match (self.last_keyframe, self.last_video_dts) {
            (Some(k), Some(now)) => {
                let target_ticks = (target.as_millis() as i64).saturating_mul(90);
                now.saturating_sub(k) >= target_ticks
            }
            _ => false,
        }
    }

    /// Takes one payload; returns what is ready (nothing while the basis is being chosen)
    /// and the payloads dropped on the way, with why.
    pub fn push(&mut self, p: Payload) -> (Vec<Out>, Vec<DepackError>) {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        if self.basis.is_none() {
            self.first_at.get_or_insert(p.at);
            let at = p.at;
            if self.held.len() >= MAX_HELD {
                self.held.pop_front();
            }
            self.held.push_back(p);
            if !self.choose_basis(at) {
                return (out, errors);
            }
            for held in std::mem::take(&mut self.held) {
                self.map(held, &mut out, &mut errors);
            }
            return (out, errors);
        }
        self.map(p, &mut out, &mut errors);
        (out, errors)
    }

    /// Picks the basis when every expected track has a sender report, or when the wait is over.
    fn choose_basis(&mut self, now: Instant) -> bool {
        let report = |kind: Kind| {
            self.held
                .iter()
                .rev()
                .find(|p| p.kind == kind)
                .and_then(|p| p.sender.map(|s| (s, rate(kind))))
        };
        let has = |kind: Kind| self.held.iter().any(|p| p.kind == kind);
        let all_reports = (!self.expect_video || report(Kind::Video).is_some())
            && (!self.expect_audio || report(Kind::Audio).is_some())
            && (has(Kind::Video) || has(Kind::Audio));
        let waited = self
            .first_at
            .is_some_and(|t| now.saturating_duration_since(t) >= SENDER_REPORT_WAIT);
        if !all_reports && !waited && self.held.len() < MAX_HELD {
            return false;
        }
        let firsts: Vec<&Payload> = [Kind::Video, Kind::Audio]
            .into_iter()
            .filter_map(|k| self.held.iter().find(|p| p.kind == k))
            .collect();
        if all_reports {
            // The session's zero: the earliest first payload, on the sender's clock. A
            // stream's first payloads come before its first report (str0m attaches the
            // latest one it has): each is placed with its stream's report, held or later.
            let Some(epoch) = firsts
                .iter()
                .filter_map(|p| report(p.kind).map(|(s, r)| ntp_of(s, p.rtp, r)))
                .min()
            else {
                unreachable!("all_reports holds a report for each track with a payload")
            };
            self.basis = Some((Basis::SenderReports, Epoch::Ntp(epoch)));
            let offsets: Vec<(Kind, i128)> = [Kind::Video, Kind::Audio]
                .into_iter()
                .filter_map(|kind| report(kind).map(|(s, r)| (kind, offset_from_report(s, r, epoch))))
                .collect();
            for (kind, o) in offsets {
                self.set_offset(kind, o);
            }
        } else {
            let epoch = firsts.iter().map(|p| p.at).min().unwrap_or(now);
            self.basis = Some((Basis::Arrival, Epoch::Arrival(epoch)));
        }
        true
    }

    fn set_offset(&mut self, kind: Kind, offset: i128) {
        match kind {
            Kind::Video => self.video_offset = Some(offset),
            Kind::Audio => self.audio_offset = Some(offset),
        }
    }

    /// The session time of an RTP time, fixing the track's offset at its first payload.
    fn pts(&mut self, p: &Payload) -> Option<i64> {
        let offset = match p.kind {
            Kind::Video => self.video_offset,
            Kind::Audio => self.audio_offset,
        };
        let offset = match offset {
            Some(o) => o,
            None => {
                let r = rate(p.kind);
                let o = match self.basis {
                    Some((Basis::SenderReports, Epoch::Ntp(epoch))) if p.sender.is_some() => {
                        offset_from_report(p.sender.expect("checked"), r, epoch)
                    }
                    Some((_, Epoch::Arrival(epoch))) => {
                        i128::from(p.rtp) - ticks(p.at.saturating_duration_since(epoch), r)
                    }
                    // A track that starts after the basis was set from reports, without its
                    // own report: aligned on arrival against the first track's payloads
                    // (the best there is; logged by the caller through `basis`).
                    _ => {
                        let since = self
                            .first_at
                            .map_or(Duration::ZERO, |t| p.at.saturating_duration_since(t));
                        i128::from(p.rtp) - ticks(since, r)
                    }
                };
                self.set_offset(p.kind, o);
                o
            }
        };
        i64::try_from(i128::from(p.rtp) - offset).ok().filter(|t| *t >= 0)
    }

    fn map(&mut self, p: Payload, out: &mut Vec<Out>, errors: &mut Vec<DepackError>) {
        let Some(pts) = self.pts(&p) else {
            errors.push(DepackError::BeforeStart);
            return;
        };
        match p.kind {
            Kind::Audio => {
                if p.data.is_empty() {
                    errors.push(DepackError::EmptyAudio);
                    return;
                }
                if self.last_audio_pts.is_some_and(|l| pts <= l) {
                    errors.push(DepackError::BeforeStart);
                    return;
                }
                self.last_audio_pts = Some(pts);
                out.push(Out::Audio {
                    pts,
                    data: p.data,
                    arrived: p.arrived,
                });
            }
            Kind::Video => match self.video(pts, &p, out) {
                Ok(()) => {}
                Err(e) => errors.push(e),
            },
        }
    }

    fn video(&mut self, pts: i64, p: &Payload, out: &mut Vec<Out>) -> Result<(), DepackError> {
        if p.data.len() > self.max_frame_bytes {
            return Err(DepackError::TooLarge {
                size: p.data.len(),
                max: self.max_frame_bytes,
            });
        }
        let mut sps = None;
        let mut pps = None;
        let mut idr = false;
        let mut kept: Vec<&[u8]> = Vec::new();
        for nal in annexb_nal_units(&p.data) {
            match NalUnitType::of(nal) {
                Some(NalUnitType::SPS) => sps = Some(nal),
                Some(NalUnitType::PPS) => pps = Some(nal),
                Some(NalUnitType::AUD) => {}
                Some(t) => {
                    idr |= t == NalUnitType::IDR_SLICE;
                    kept.push(nal);
                }
                None => {}
            }
        }
        let changed =
            |cur: &Option<Bytes>, new: Option<&[u8]>| new.is_some_and(|n| cur.as_deref() != Some(n));
        if changed(&self.sps, sps)
            || changed(&self.pps, pps)
            || (self.config.is_none() && self.sps.is_some() && self.pps.is_some())
        {
            let s = sps.map(Bytes::copy_from_slice).or_else(|| self.sps.clone());
            let q = pps.map(Bytes::copy_from_slice).or_else(|| self.pps.clone());
            if let (Some(s), Some(q)) = (s, q) {
                let config = AvcDecoderConfig::from_parameter_sets(&[&s], &[&q])
                    .map_err(|e| DepackError::ParameterSets(e.to_string()))?;
                self.sps = Some(s);
                self.pps = Some(q);
                if self.config.as_ref() != Some(&config) {
                    out.push(Out::VideoTrack(TrackInfo {
                        id: VIDEO,
                        timescale: VIDEO_RATE,
                        video: Some(config.sps_info().video_shape()),
                        codec: CodecConfig::H264(config.clone()),
                    }));
                    self.config = Some(config);
                }
            } else {
                // One of the two so far: keep it for when the other arrives.
                if let Some(s) = sps {
                    self.sps = Some(Bytes::copy_from_slice(s));
                }
                if let Some(q) = pps {
                    self.pps = Some(Bytes::copy_from_slice(q));
                }
            }
        }
        if kept.is_empty() {
            return Err(DepackError::EmptyAccessUnit);
        }
        if self.config.is_none() {
            return Err(DepackError::NoParameterSets);
        }
        if !self.seen_keyframe && !idr {
            return Err(DepackError::NoKeyframe);
        }
        self.seen_keyframe |= idr;
        let pts = self.cadence.place(pts);
        if idr {
            self.last_keyframe = Some(pts);
        }
        // WebRTC H.264 has no B-frames (RTP time is both times); keep decode order strictly
        // increasing even if a sender breaks that.
        let dts = match self.last_video_dts {
            Some(l) if pts <= l => l + 1,
            _ => pts,
        };
        self.last_video_dts = Some(dts);
        let mut payload = Vec::with_capacity(kept.iter().map(|n| n.len() + 4).sum());
        for nal in kept {
            payload.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            payload.extend_from_slice(nal);
        }
        out.push(Out::Video(Frame {
            track: VIDEO,
            pts: pts.max(dts),
            dts,
            keyframe: idr,
            payload: Bytes::from(payload),
            arrived: p.arrived,
        }));
        Ok(())
    }
}

fn rate(kind: Kind) -> u32 {
    match kind {
        Kind::Video => VIDEO_RATE,
        Kind::Audio => AUDIO_RATE,
    }
}

fn ticks(d: Duration, rate: u32) -> i128 {
    (d.as_nanos() as i128) * i128::from(rate) / 1_000_000_000
}

/// The sender's wall clock at an RTP time, from a report.
fn ntp_of(s: SenderClock, rtp: u64, rate: u32) -> SystemTime {
    let diff = i128::from(rtp) - i128::from(s.rtp);
    let nanos = diff * 1_000_000_000 / i128::from(rate.max(1));
    let d = Duration::from_nanos(nanos.unsigned_abs().min(u128::from(u64::MAX)) as u64);
    if nanos >= 0 {
        s.ntp.checked_add(d).unwrap_or(s.ntp)
    } else {
        s.ntp.checked_sub(d).unwrap_or(s.ntp)
    }
}

/// The RTP time that maps to session time 0, given a report and the session's zero.
fn offset_from_report(s: SenderClock, rate: u32, epoch: SystemTime) -> i128 {
    let since = match s.ntp.duration_since(epoch) {
        Ok(d) => ticks(d, rate),
        Err(e) => -ticks(e.duration(), rate),
    };
    i128::from(s.rtp) - since
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal Baseline SPS for 320x240 and a PPS (from x264, Annex B without start codes).
    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00,
        0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
    ];
    const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

    fn annexb(nals: &[&[u8]]) -> Bytes {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&[0, 0, 0, 1]);
            v.extend_from_slice(n);
        }
        Bytes::from(v)
    }

    fn payload(kind: Kind, rtp: u64, data: Bytes, at: Instant, sender: Option<SenderClock>) -> Payload {
        Payload {
            kind,
            rtp,
            data,
            at,
            arrived: SystemTime::now(),
            sender,
        }
    }

    #[test]
    fn sender_reports_put_audio_and_video_on_the_senders_clock() {
        let t0 = Instant::now();
        let ntp0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut d = Depacketiser::new(true, true, 1 << 20, &[]);
        // Video RTP 1_000_000 is ntp0; audio RTP 5_000 is ntp0 + 100 ms.
        let vs = SenderClock {
            ntp: ntp0,
            rtp: 1_000_000,
        };
        let as_ = SenderClock {
            ntp: ntp0 + Duration::from_millis(100),
            rtp: 5_000,
        };
        let key = annexb(&[SPS, PPS, &[0x65, 0x88, 0x84]]);
        // As str0m gives them: a stream's first payloads come before its first report.
        let (out, errs) = d.push(payload(Kind::Video, 1_000_000, key, t0, None));
        assert!(out.is_empty() && errs.is_empty(), "held for the reports");
        let delta = annexb(&[&[0x41, 0x9a]]);
        let (out, _) = d.push(payload(Kind::Video, 1_003_000, delta, t0, Some(vs)));
        assert!(out.is_empty(), "held for the audio report");
        let first = Bytes::from_static(b"op");
        assert!(d.push(payload(Kind::Audio, 5_000, first, t0, None)).0.is_empty());
        // Audio at ntp0 + 100 ms: 4 800 ticks after the video's first frame.
        let second = Bytes::from_static(b"oq");
        let (out, errs) = d.push(payload(Kind::Audio, 5_960, second, t0, Some(as_)));
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(d.basis(), Some(Basis::SenderReports));
        assert!(matches!(&out[0], Out::VideoTrack(t) if t.video.unwrap().width == 320));
        assert!(
            matches!(&out[1], Out::Video(f) if f.pts == 0 && f.keyframe && f.payload[..4] == [0, 0, 0, 3])
        );
        assert!(matches!(&out[2], Out::Video(f) if f.pts == 3_000));
        assert!(matches!(&out[3], Out::Audio { pts: 4_800, .. }), "{:?}", out[3]);
        assert!(matches!(&out[4], Out::Audio { pts: 5_760, .. }), "{:?}", out[4]);
    }

    #[test]
    fn without_reports_arrival_aligns_the_tracks_after_the_wait() {
        let t0 = Instant::now();
        let mut d = Depacketiser::new(
            true,
            true,
            1 << 20,
            &[Bytes::from_static(SPS), Bytes::from_static(PPS)],
        );
        let key = annexb(&[&[0x65, 0x88, 0x84]]);
        assert!(d.push(payload(Kind::Video, 7, key, t0, None)).0.is_empty());
        let later = t0 + Duration::from_millis(200);
        assert!(
            d.push(payload(Kind::Audio, 900, Bytes::from_static(b"a"), later, None))
                .0
                .is_empty()
        );
        let (out, _) = d.push(payload(
            Kind::Audio,
            900 + 960,
            Bytes::from_static(b"b"),
            t0 + SENDER_REPORT_WAIT,
            None,
        ));
        assert_eq!(d.basis(), Some(Basis::Arrival));
        // The sprop parameter sets gave the track; the audio started 200 ms after the video.
        assert!(matches!(&out[0], Out::VideoTrack(_)));
        assert!(matches!(&out[1], Out::Video(f) if f.pts == 0));
        assert!(matches!(&out[2], Out::Audio { pts: 9_600, .. }), "{:?}", out[2]);
        assert!(matches!(&out[3], Out::Audio { pts: 10_560, .. }));
    }

    #[test]
    fn video_waits_for_parameter_sets_and_a_keyframe_and_asks_for_one() {
        let t0 = Instant::now();
        let mut d = Depacketiser::new(true, false, 1 << 20, &[]);
        let delta = annexb(&[&[0x41, 0x9a, 0x01]]);
        let (_, errs) = d.push(payload(Kind::Video, 0, delta.clone(), t0, None));
        assert!(errs.is_empty(), "held");
        let (_, errs) = d.push(payload(
            Kind::Video,
            3000,
            delta.clone(),
            t0 + SENDER_REPORT_WAIT,
            None,
        ));
        assert_eq!(
            errs,
            vec![DepackError::NoParameterSets, DepackError::NoParameterSets]
        );
        assert!(d.wants_keyframe(Duration::from_secs(2)));
        // Parameter sets without an IDR: still no keyframe.
        let (out, errs) = d.push(payload(
            Kind::Video,
            6000,
            annexb(&[SPS, PPS, &[0x41, 0x9a]]),
            t0,
            None,
        ));
        assert!(matches!(&out[..], [Out::VideoTrack(_)]));
        assert_eq!(errs, vec![DepackError::NoKeyframe]);
        let (out, errs) = d.push(payload(Kind::Video, 9000, annexb(&[&[0x65, 0x88]]), t0, None));
        assert!(errs.is_empty());
        assert!(matches!(&out[..], [Out::Video(f)] if f.keyframe));
        assert!(!d.wants_keyframe(Duration::from_secs(2)));
        // Two seconds of deltas later, a keyframe is due.
        let (_, errs) = d.push(payload(Kind::Video, 9000 + 180_000, delta, t0, None));
        assert!(errs.is_empty());
        assert!(d.wants_keyframe(Duration::from_secs(2)));
    }

    #[test]
    fn garbage_is_refused_with_a_reason_and_oversized_units_are_dropped() {
        let t0 = Instant::now();
        let mut d = Depacketiser::new(true, false, 64, &[]);
        d.push(payload(Kind::Video, 0, Bytes::new(), t0, None));
        let (_, errs) = d.push(payload(
            Kind::Video,
            1,
            Bytes::from(vec![0u8; 65]),
            t0 + SENDER_REPORT_WAIT,
            None,
        ));
        assert!(errs.contains(&DepackError::EmptyAccessUnit), "{errs:?}");
        assert!(
            errs.contains(&DepackError::TooLarge { size: 65, max: 64 }),
            "{errs:?}"
        );
        // A broken SPS names the problem.
        let (_, errs) = d.push(payload(
            Kind::Video,
            2,
            annexb(&[&[0x67, 0xff], PPS, &[0x65, 1]]),
            t0,
            None,
        ));
        assert!(matches!(&errs[..], [DepackError::ParameterSets(_)]), "{errs:?}");
    }

    #[test]
    fn capture_jitter_is_evened_out_and_a_change_of_rate_followed() {
        let mut c = Cadence::default();
        // 20 fps from a capture clock: 4 500 ticks give or take 2 ms.
        let jitter = [0, 180, -150, 90, -180, 120, 0, -90, 160, -170, 40, 0];
        let mut t = 1_000_000;
        let mut out = Vec::new();
        for j in jitter {
            out.push(c.place(t + j));
            t += 4_500;
        }
        let steps: Vec<i64> = out.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(steps[3..].iter().all(|d| *d == 4_500), "{steps:?}");
        for (i, o) in out.iter().enumerate() {
            assert!((o - (1_000_000 + i as i64 * 4_500)).abs() <= 4_500 / 4, "{out:?}");
        }
        // The encoder drops to 10 fps: followed at once, then steady again.
        let mut last = *out.last().unwrap();
        for k in 0..10 {
            t += 4_500;
            let o = c.place(t + if k % 2 == 0 { 100 } else { -100 });
            assert!(o > last);
            assert!((o - t).abs() <= 9_000 / 4, "{o} vs {t}");
            last = o;
            t += 4_500;
        }
    }

    #[test]
    fn rtp_times_far_apart_never_overflow() {
        let t0 = Instant::now();
        let mut d = Depacketiser::new(false, true, 64, &[]);
        let far = SenderClock {
            ntp: SystemTime::UNIX_EPOCH,
            rtp: u64::MAX,
        };
        for rtp in [0, u64::MAX, 1 << 40, 5] {
            let _ = d.push(payload(Kind::Audio, rtp, Bytes::from_static(b"x"), t0, Some(far)));
        }
        assert!(d.basis().is_some());
    }
}
