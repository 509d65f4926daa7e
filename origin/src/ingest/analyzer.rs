//! Ingest analyzer: what a publisher connection actually sends (keyframe interval, B-frames, profile and level, frame rate, bitrates, timestamp jumps, late frames, A/V offset), with warnings that name the fix.
//!
//! Sans-IO: [`IngestAnalyzer::tracks`] and [`IngestAnalyzer::frame`] are fed from the
//! ingest path as media arrives; [`IngestAnalyzer::report`] is computed on demand (the
//! `GET /api/v1/events/{id}/ingest` handler). Memory is bounded: running sums and a
//! fixed window of recent frame durations.

use popcast_packager::media::{CodecConfig, Frame, TrackInfo};
use serde::Serialize;
use std::collections::VecDeque;
use std::time::SystemTime;

/// Frame durations kept for the frame-rate figures.
const DURATION_WINDOW: usize = 300;
/// A decode-time step larger than this (or backwards) is a timestamp jump.
const JUMP_SECS: f64 = 1.0;
/// Weight of each frame in the averaged timestamp-to-arrival skew.
const SKEW_ALPHA: f64 = 0.02;
/// A frame that arrives this much later than its timestamp says (against the earliest
/// frame of its track) is late.
const LATE_SECS: f64 = 0.5;

/// What the publisher declared (RTMP `onMetaData`), to measure against.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Declared {
    pub video_kbps: Option<f64>,
    pub audio_kbps: Option<f64>,
    pub fps: Option<f64>,
}

#[derive(Debug, Default)]
struct TrackStats {
    timescale: u32,
    first: Option<(i64, SystemTime)>,
    last_dts: Option<i64>,
    last_pts: Option<i64>,
    frames: u64,
    bytes: u64,
    /// Keyframe interval (ticks): min, max, sum, count.
    last_key: Option<i64>,
    kf_min: Option<i64>,
    kf_max: Option<i64>,
    kf_sum: i128,
    kf_count: u64,
    reordered: u64,
    durations: VecDeque<i64>,
    jumps: u64,
    late: u64,
    /// Media time minus arrival time (since the Unix epoch), averaged over recent frames,
    /// seconds: the tracks share the publisher's clock, so video's minus audio's is how far
    /// apart the two are stamped for media that arrives together.
    skew_avg: Option<f64>,
    /// The smallest arrival-minus-media offset seen (the reference for "late").
    min_lag: Option<f64>,
}

impl TrackStats {
    fn secs(&self, ticks: i64) -> f64 {
        ticks as f64 / f64::from(self.timescale.max(1))
    }

    fn frame(&mut self, f: &Frame) {
        self.frames += 1;
        if let Some(prev) = self.last_dts {
            let step = f.dts.saturating_sub(prev);
            if step < 0 || self.secs(step) > JUMP_SECS {
                // Measure afresh from here: an interval, a rate or a lag across a jump means nothing.
                self.jumps += 1;
                self.first = Some((f.dts, f.arrived));
                self.bytes = 0;
                self.last_key = None;
                self.min_lag = None;
                self.skew_avg = None;
            } else if step > 0 {
                if self.durations.len() == DURATION_WINDOW {
                    self.durations.pop_front();
                }
                self.durations.push_back(step);
            }
        }
        if let Some(p) = self.last_pts {
            if f.pts < p {
                self.reordered += 1;
            }
        }
        self.bytes += f.payload.len() as u64;
        let (d0, a0) = *self.first.get_or_insert((f.dts, f.arrived));
        self.last_dts = Some(f.dts);
        self.last_pts = Some(f.pts);
        if f.keyframe {
            if let Some(k) = self.last_key {
                let i = f.dts.saturating_sub(k);
                if i > 0 {
                    self.kf_min = Some(self.kf_min.map_or(i, |m| m.min(i)));
                    self.kf_max = Some(self.kf_max.map_or(i, |m| m.max(i)));
                    self.kf_sum += i128::from(i);
                    self.kf_count += 1;
                }
            }
            self.last_key = Some(f.dts);
        }
        let media = self.secs(f.dts.saturating_sub(d0));
        let wall = f
            .arrived
            .duration_since(a0)
            .map_or_else(|e| -e.duration().as_secs_f64(), |d| d.as_secs_f64());
        let lag = wall - media;
        let min = *self.min_lag.get_or_insert(lag);
        if lag < min {
            self.min_lag = Some(lag);
        } else if lag - min > LATE_SECS {
            self.late += 1;
        }
        let since_epoch = f
            .arrived
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let skew = self.secs(f.dts) - since_epoch;
        // Averaged over many frames, so that how the encoder interleaves the tracks (a big
        // keyframe, a burst of audio) does not read as an offset.
        self.skew_avg = Some(self.skew_avg.map_or(skew, |a| a + SKEW_ALPHA * (skew - a)));
    }

    fn span_secs(&self) -> f64 {
        match (self.first, self.last_dts) {
            (Some((d0, _)), Some(d)) => self.secs(d.saturating_sub(d0)),
            _ => 0.0,
        }
    }

    fn kbps(&self) -> Option<f64> {
        let s = self.span_secs();
        (s >= 1.0).then(|| round1(self.bytes as f64 * 8.0 / s / 1000.0))
    }

    fn flow(&self, kbps_declared: Option<f64>) -> Flow {
        Flow {
            kbps_declared,
            kbps_measured: self.kbps(),
            frames: self.frames,
            timestamp_jumps: self.jumps,
            late_frames: self.late,
        }
    }

    /// (p5, p95) of the recent frame durations, in seconds.
    fn duration_spread(&self) -> Option<(f64, f64)> {
        if self.durations.len() < 10 {
            return None;
        }
        let mut d: Vec<i64> = self.durations.iter().copied().collect();
        d.sort_unstable();
        let at = |p: usize| d[(d.len() - 1) * p / 100];
        Some((self.secs(at(5)), self.secs(at(95))))
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One publisher connection's figures.
#[derive(Debug, Default)]
pub struct IngestAnalyzer {
    declared: Declared,
    video: Option<(TrackInfo, TrackStats)>,
    audio: Option<(TrackInfo, TrackStats)>,
    /// The segment target the packager cuts at, seconds (keyframe interval advice).
    target_secs: f64,
}

/// Minimum, average and maximum of an interval, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub min: f64,
    pub avg: f64,
    pub max: f64,
}

/// What a track of either kind delivers, against what the publisher declared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flow {
    pub kbps_declared: Option<f64>,
    pub kbps_measured: Option<f64>,
    pub frames: u64,
    pub timestamp_jumps: u64,
    pub late_frames: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoReport {
    pub codec: String,
    pub profile: String,
    pub level: String,
    pub width: u32,
    pub height: u32,
    /// `None` until two keyframes have arrived.
    pub keyframe_interval_s: Option<Spread>,
    /// Media time since the last keyframe: a long GOP shows here before its second keyframe.
    pub since_keyframe_s: Option<f64>,
    pub b_frames: bool,
    pub fps_declared: Option<f64>,
    pub fps_measured: Option<f64>,
    pub variable_frame_rate: bool,
    #[serde(flatten)]
    pub flow: Flow,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudioReport {
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u8,
    #[serde(flatten)]
    pub flow: Flow,
}

/// A problem with the stream, and the fix in a creator's words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IngestReport {
    pub video: Option<VideoReport>,
    pub audio: Option<AudioReport>,
    /// Video timestamps minus audio timestamps at the same arrival, milliseconds (positive:
    /// video is stamped ahead of its audio).
    pub av_offset_ms: Option<i64>,
    pub warnings: Vec<Warning>,
}

fn profile_name(idc: u8) -> String {
    match idc {
        66 => "Baseline".into(),
        77 => "Main".into(),
        88 => "Extended".into(),
        100 => "High".into(),
        110 => "High 10".into(),
        122 => "High 4:2:2".into(),
        244 => "High 4:4:4".into(),
        n => format!("profile {n}"),
    }
}

impl IngestAnalyzer {
    /// `target_secs`: the packager's segment target, which the keyframe interval should not exceed.
    pub fn new(target_secs: f64) -> Self {
        Self {
            target_secs,
            ..Self::default()
        }
    }

    pub fn declared(&mut self, d: Declared) {
        self.declared = d;
    }

    /// The connection's tracks (again when they change: the figures start over for a changed track).
    pub fn tracks(&mut self, tracks: &[TrackInfo]) {
        for t in tracks {
            let slot = if t.video.is_some() {
                &mut self.video
            } else {
                &mut self.audio
            };
            if slot.as_ref().is_some_and(|(old, _)| old == t) {
                continue;
            }
            let stats = TrackStats {
                timescale: t.timescale,
                ..TrackStats::default()
            };
            *slot = Some((t.clone(), stats));
        }
    }

    pub fn frame(&mut self, f: &Frame) {
        for (t, s) in [&mut self.video, &mut self.audio].into_iter().flatten() {
            if t.id == f.track {
                s.frame(f);
                return;
            }
        }
    }

    /// `what` went wrong with the keyframe interval, and the fix in a creator's words.
    fn keyframe_advice(&self, what: &str) -> String {
        let secs = self.target_secs.floor().max(1.0);
        format!(
            "{what}; set the keyframe interval to {secs} s in OBS → Settings → Output (Output Mode: Advanced) → Keyframe Interval (ffmpeg: -g {} at 30 fps)",
            (secs * 30.0) as u32
        )
    }

    /// The keyframe-interval message once the video's open GOP has run more than
    /// `margin_secs` past the segment target (the refuse policy's test; cheap per frame).
    pub fn keyframe_overdue(&self, margin_secs: f64) -> Option<String> {
        let (_, s) = self.video.as_ref()?;
        let open = s.secs(s.last_dts?.saturating_sub(s.last_key?));
        (open > self.target_secs + margin_secs)
            .then(|| self.keyframe_advice(&format!("no keyframe for {open:.1} s")))
    }

    pub fn report(&self) -> IngestReport {
        let mut warnings = Vec::new();
        let video = self.video.as_ref().map(|(t, s)| {
            let codec = match &t.codec {
                CodecConfig::H264(c) => c.codec_string(),
                CodecConfig::Aac(c) => c.codec_string(),
            };
            let hex = |i: usize| {
                codec
                    .get(5 + i..7 + i)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            };
            let (profile, level) = match (hex(0), hex(4)) {
                (Some(p), Some(l)) => (profile_name(p), format!("{}.{}", l / 10, l % 10)),
                _ => (String::new(), String::new()),
            };
            let shape = t.video.expect("a video track");
            let kf = (s.kf_count > 0).then(|| Spread {
                min: round3(s.secs(s.kf_min.unwrap_or(0))),
                avg: round3(s.kf_sum as f64 / s.kf_count as f64 / f64::from(s.timescale.max(1))),
                max: round3(s.secs(s.kf_max.unwrap_or(0))),
            });
            let spread = s.duration_spread();
            let fps_measured = spread.and_then(|_| {
                let avg = s.durations.iter().sum::<i64>() as f64 / s.durations.len() as f64;
                (avg > 0.0).then(|| round1(f64::from(s.timescale) / avg))
            });
            let variable = spread.is_some_and(|(lo, hi)| lo > 0.0 && hi > lo * 1.25);
            let fps_declared = self.declared.fps.or(shape
                .frame_rate
                .filter(|(_, d)| *d > 0)
                .map(|(n, d)| round1(f64::from(n) / f64::from(d))));
            VideoReport {
                codec,
                profile,
                level,
                width: shape.width,
                height: shape.height,
                keyframe_interval_s: kf,
                since_keyframe_s: s
                    .last_key
                    .zip(s.last_dts)
                    .map(|(k, d)| round3(s.secs(d.saturating_sub(k)))),
                b_frames: s.reordered > 0,
                fps_declared,
                fps_measured,
                variable_frame_rate: variable,
                flow: s.flow(self.declared.video_kbps),
            }
        });
        let audio = self.audio.as_ref().map(|(t, s)| {
            let (codec, sample_rate, channels) = match &t.codec {
                CodecConfig::Aac(c) => (c.codec_string(), c.sample_rate, c.channel_config),
                CodecConfig::H264(c) => (c.codec_string(), t.timescale, 0),
            };
            AudioReport {
                codec,
                sample_rate,
                channels,
                flow: s.flow(self.declared.audio_kbps),
            }
        });
        let av_offset_ms = match (&self.video, &self.audio) {
            (Some((_, v)), Some((_, a))) => v
                .skew_avg
                .zip(a.skew_avg)
                .map(|(vs, as_)| ((vs - as_) * 1000.0).round() as i64),
            _ => None,
        };
        if let Some(v) = &video {
            self.video_warnings(v, &mut warnings);
        }
        if let Some(ms) = av_offset_ms.filter(|ms| ms.abs() > 200) {
            warnings.push(Warning {
                code: "av_offset",
                message: format!(
                    "video is stamped {} ms {} the audio that arrives with it, so players hold the earlier track back (added latency, or lost lip-sync); check the audio source's sync offset (OBS → Edit → Advanced Audio Properties → Sync Offset) or restart the encoder",
                    ms.abs(),
                    if ms > 0 { "ahead of" } else { "behind" }
                ),
            });
        }
        if let Some(a) = &audio {
            if a.flow.timestamp_jumps > 0 {
                warnings.push(Warning {
                    code: "audio_timestamp_jumps",
                    message: format!(
                        "the audio timestamps jumped {} time(s); an audio device may be dropping out",
                        a.flow.timestamp_jumps
                    ),
                });
            }
        }
        IngestReport {
            video,
            audio,
            av_offset_ms,
            warnings,
        }
    }

    fn video_warnings(&self, v: &VideoReport, w: &mut Vec<Warning>) {
        let max = v.keyframe_interval_s.map(|kf| kf.max);
        // A GOP still open past the target is as telling as a closed one (a 10 s GOP is named
        // after the target, not after its second keyframe).
        let open = v.since_keyframe_s.filter(|o| max.is_none_or(|m| *o > m));
        let what = match (max, open) {
            (_, Some(o)) if o > self.target_secs + 0.05 => Some(format!("no keyframe for {o:.1} s so far")),
            (Some(m), _) if m > self.target_secs + 0.05 => Some(format!("keyframe interval is {m:.1} s")),
            _ => None,
        };
        if let Some(what) = what {
            w.push(Warning {
                code: "keyframe_interval",
                message: self.keyframe_advice(&what),
            });
        }
        if v.b_frames {
            w.push(Warning {
                code: "b_frames",
                message: "the video has B-frames, which add delay; use the Baseline profile or set B-frames to 0 in the encoder settings (x264: bframes=0)".into(),
            });
        }
        if v.variable_frame_rate {
            w.push(Warning {
                code: "variable_frame_rate",
                message: "the frame rate varies; set a fixed frame rate (OBS → Settings → Video → Common FPS Values) and check that the machine keeps up".into(),
            });
        }
        if let (Some(d), Some(m)) = (v.fps_declared, v.fps_measured) {
            if d > 0.0 && m < d * 0.9 && !v.variable_frame_rate {
                w.push(Warning {
                    code: "frame_rate",
                    message: format!("the stream says {d:.2} fps but sends {m:.2} fps; the encoder is not keeping up (lower the resolution, or choose a faster preset)"),
                });
            }
        }
        if let (Some(d), Some(m)) = (v.flow.kbps_declared, v.flow.kbps_measured) {
            if d > 0.0 && m > d * 1.5 {
                w.push(Warning {
                    code: "video_bitrate",
                    message: format!("video is {m:.0} kb/s against {d:.0} kb/s declared; use CBR rate control in the encoder settings"),
                });
            }
        }
        if v.flow.timestamp_jumps > 0 {
            w.push(Warning {
                code: "video_timestamp_jumps",
                message: format!("the video timestamps jumped {} time(s); the encoder restarted its clock or dropped a stretch of frames (check its CPU use and the capture source)", v.flow.timestamp_jumps),
            });
        }
        if v.flow.late_frames > 0 {
            w.push(Warning {
                code: "late_frames",
                message: format!("{} video frame(s) arrived over {LATE_SECS} s late; the upload is not keeping up (lower the bitrate)", v.flow.late_frames),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use popcast_packager::fixtures::{audio_frame, audio_track, video_frame, video_track};

    fn run(gop: i64, seconds: i64) -> IngestAnalyzer {
        let mut a = IngestAnalyzer::new(2.0);
        a.tracks(&[video_track(), audio_track()]);
        for i in 0..seconds * 30 {
            a.frame(&video_frame(i, gop));
        }
        for i in 0..seconds * 47 {
            let mut f = audio_frame(i);
            f.arrived = video_frame(0, 30).arrived
                + std::time::Duration::from_micros((f.dts.max(0) as u64) * 1_000_000 / 48_000);
            a.frame(&f);
        }
        a
    }

    #[test]
    fn a_clean_30_fps_source_with_1_s_keyframes_has_no_warnings() {
        let r = run(30, 10).report();
        let v = r.video.as_ref().unwrap();
        assert_eq!((v.profile.as_str(), v.level.as_str()), ("High", "1.3"));
        assert_eq!((v.width, v.height), (320, 240));
        assert_eq!(
            v.keyframe_interval_s,
            Some(Spread {
                min: 1.0,
                avg: 1.0,
                max: 1.0
            })
        );
        assert_eq!(v.fps_measured, Some(30.0));
        assert_eq!(v.fps_declared, Some(30.0));
        assert!(!v.b_frames && !v.variable_frame_rate);
        assert_eq!((v.flow.timestamp_jumps, v.flow.late_frames), (0, 0));
        let a = r.audio.as_ref().unwrap();
        assert_eq!((a.sample_rate, a.channels), (48_000, 2));
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn a_4_s_keyframe_interval_is_named_with_the_fix() {
        let r = run(120, 13).report();
        let kf = r.video.as_ref().unwrap().keyframe_interval_s.unwrap();
        assert_eq!((kf.min, kf.max), (4.0, 4.0));
        let w = r.warnings.iter().find(|w| w.code == "keyframe_interval").unwrap();
        assert!(
            w.message.contains("4.0 s") && w.message.contains("Keyframe Interval"),
            "{}",
            w.message
        );
    }

    #[test]
    fn a_10_s_gop_is_named_before_its_second_keyframe() {
        let r = run(300, 6).report();
        let v = r.video.as_ref().unwrap();
        assert_eq!(v.keyframe_interval_s, None);
        assert_eq!(v.since_keyframe_s, Some(5.967));
        let w = r.warnings.iter().find(|w| w.code == "keyframe_interval").unwrap();
        assert!(
            w.message.starts_with("no keyframe for 6.0 s so far; set"),
            "{}",
            w.message
        );
        // Within the target: nothing to say.
        let r = run(30, 1).report();
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        // The refuse policy's test: overdue 0.5 s past the 2 s target, not before.
        assert_eq!(run(300, 2).keyframe_overdue(0.5), None);
        let m = run(300, 3).keyframe_overdue(0.5).expect("overdue at 3 s");
        assert!(
            m.starts_with("no keyframe for 3.0 s; set the keyframe interval to 2 s"),
            "{m}"
        );
        assert_eq!(run(30, 6).keyframe_overdue(0.5), None);
    }

    #[test]
    fn reordered_presentation_times_are_b_frames() {
        let mut a = IngestAnalyzer::new(2.0);
        a.tracks(&[video_track()]);
        // Decode order I P B B: presentation 0, 3, 1, 2 (frame units).
        for (i, p) in [0i64, 3, 1, 2, 6, 4, 5].iter().enumerate() {
            let mut f = video_frame(i as i64, 30);
            f.pts = p * 3000 + 6000;
            a.frame(&f);
        }
        let r = a.report();
        assert!(r.video.unwrap().b_frames);
        assert!(r.warnings.iter().any(|w| w.code == "b_frames"));
    }

    #[test]
    fn a_timestamp_jump_and_late_frames_are_counted() {
        let mut a = IngestAnalyzer::new(2.0);
        a.tracks(&[video_track()]);
        for i in 0..60 {
            let mut f = video_frame(i, 30);
            if i >= 30 {
                // 5 s forward in the timestamps at frame 30.
                f.dts += 450_000;
                f.pts += 450_000;
                f.arrived += std::time::Duration::from_secs(5);
            }
            if i >= 50 {
                // The last ten arrive a second late.
                f.arrived += std::time::Duration::from_secs(1);
            }
            a.frame(&f);
        }
        let r = a.report();
        let v = r.video.unwrap();
        assert_eq!(v.flow.timestamp_jumps, 1);
        assert_eq!(v.flow.late_frames, 10);
        // Nothing is measured across the jump (keyframes at 0 and right after it).
        assert_eq!(v.keyframe_interval_s, None);
        assert!(
            !r.warnings.iter().any(|w| w.code == "keyframe_interval"),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn video_stamped_ahead_of_its_audio_is_an_av_offset() {
        let mut a = IngestAnalyzer::new(2.0);
        a.tracks(&[video_track(), audio_track()]);
        for i in 0..60 {
            let mut f = video_frame(i, 30);
            // Video timestamps 300 ms ahead of the audio that arrives with them.
            f.dts += 27_000;
            f.pts += 27_000;
            a.frame(&f);
            let mut au = audio_frame(i);
            au.dts = i * 1600;
            au.pts = au.dts;
            au.arrived = video_frame(i, 30).arrived;
            a.frame(&au);
        }
        let r = a.report();
        assert_eq!(r.av_offset_ms, Some(300), "{r:?}");
        assert!(r.warnings.iter().any(|w| w.code == "av_offset"));
    }
}
