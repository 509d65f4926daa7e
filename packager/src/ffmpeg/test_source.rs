//! The built-in test source: a moving pattern with the wall clock and frame counter burned
//! in, plus a tone with a beep each second, encoded as H.264 (libx264) + AAC and released as
//! [`Frame`]s on a real-time schedule. `popcast up` feeds it to the demo event when no
//! creator publishes; the bench uses it to measure latency (the burned-in clock is the
//! instant each frame was due at the origin).

use crate::codec::{
    AudioSpecificConfig, AvcDecoderConfig, CodecError, NalUnitType, annexb_nal_units, annexb_to_avcc,
};
use crate::media::{CodecConfig, Frame, TrackId, TrackInfo, VideoShape};
use bytes::Bytes;
use ffmpeg_next::{ChannelLayout, Packet, codec, filter, format, frame};
use popcast_config::TestSourceConfig;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// When frames are handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// Each frame when its timestamp comes due, as a live encoder would (the default).
    RealTime,
    /// As fast as the encoder goes (tests and throughput benchmarks).
    Unpaced,
}

/// Why the test source could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum TestSourceError {
    #[error("FFmpeg could not {what}: {source}")]
    Ffmpeg {
        what: &'static str,
        #[source]
        source: ffmpeg_next::Error,
    },
    #[error("encoder `{0}` is not in this FFmpeg build")]
    EncoderMissing(String),
    #[error("font {path}: {reason}")]
    Font { path: String, reason: String },
    #[error("the encoder produced an unusable {what}: {source}")]
    Codec {
        what: &'static str,
        #[source]
        source: CodecError,
    },
    #[error("the test source thread panicked")]
    Panicked,
}

fn ff(what: &'static str) -> impl FnOnce(ffmpeg_next::Error) -> TestSourceError {
    move |source| TestSourceError::Ffmpeg { what, source }
}

/// A running test source. Frames come from [`TestSource::recv`] (async) or
/// [`TestSource::blocking_recv`]; dropping it stops the encoder thread.
pub struct TestSource {
    tracks: Vec<TrackInfo>,
    frames: Option<mpsc::Receiver<Frame>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), TestSourceError>>>,
}

impl TestSource {
    /// The video track's id.
    pub const VIDEO: TrackId = TrackId(1);
    /// The audio track's id.
    pub const AUDIO: TrackId = TrackId(2);

    /// Opens the encoders (errors surface here) and starts producing frames.
    pub fn start(config: &TestSourceConfig, pacing: Pacing) -> Result<Self, TestSourceError> {
        let fps = config.frame_rate.as_f64();
        let capacity = (fps * 2.0) as usize + 128; // two seconds of video and audio
        let (tx, rx) = mpsc::channel(capacity);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let stop = Arc::new(AtomicBool::new(false));
        let config = config.clone();
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("test-source".into())
            .spawn(move || {
                let mut encoder = match Encoders::open(&config) {
                    Ok(e) => e,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return Ok(());
                    }
                };
                let _ = ready_tx.send(Ok(encoder.tracks.clone()));
                encoder.run(pacing, &tx, &thread_stop)
            })
            .expect("spawning a thread only fails when the OS is out of resources");
        match ready_rx.recv() {
            Ok(Ok(tracks)) => Ok(Self {
                tracks,
                frames: Some(rx),
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(TestSourceError::Panicked)
            }
        }
    }

    /// The video and audio tracks, with their codec records.
    pub fn tracks(&self) -> &[TrackInfo] {
        &self.tracks
    }

    /// The next frame, in timestamp order per track; `None` once stopped or failed
    /// ([`TestSource::stop`] then says why).
    pub async fn recv(&mut self) -> Option<Frame> {
        self.frames.as_mut()?.recv().await
    }

    /// [`TestSource::recv`] for threads outside an async runtime.
    pub fn blocking_recv(&mut self) -> Option<Frame> {
        self.frames.as_mut()?.blocking_recv()
    }

    /// Stops the encoder thread and reports whether it had failed.
    pub fn stop(mut self) -> Result<(), TestSourceError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), TestSourceError> {
        self.stop.store(true, Ordering::Relaxed);
        self.frames = None; // unblocks a producer waiting on a full channel
        match self.thread.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(TestSourceError::Panicked),
        }
    }
}

impl Drop for TestSource {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "test source stopped with an error");
        }
    }
}

/// Samples per AAC frame (AAC-LC).
const AAC_FRAME: usize = 1024;

/// The FFmpeg state of a running source; lives on the source's own thread.
struct Encoders {
    /// Owns the test pattern's filters; kept alive for `sink`, never read directly.
    _graph: filter::Graph,
    /// The graph's buffersink, looked up once (a pointer into `_graph`, valid while it lives).
    sink: filter::Context,
    video: codec::encoder::Video,
    audio: codec::encoder::Audio,
    tracks: Vec<TrackInfo>,
    fps: (u32, u32),
    sample_rate: u32,
    channels: usize,
    tone_hz: u32,
    /// Timestamp zero: the monotonic instant frames are scheduled from, read together with
    /// the wall-clock instant burned into the picture (as pts + that).
    epoch: Instant,
}

impl Encoders {
    fn open(c: &TestSourceConfig) -> Result<Self, TestSourceError> {
        super::init().map_err(ff("initialise"))?;
        let font =
            super::font_path(&c.font).map_err(|(path, reason)| TestSourceError::Font { path, reason })?;
        let (num, den) = (c.frame_rate.num, c.frame_rate.den);
        let x264 = codec::encoder::find_by_name(&c.encoder)
            .ok_or_else(|| TestSourceError::EncoderMissing(c.encoder.clone()))?;
        // Nearest whole frame: 1000 ms at 29.97 fps is 30 frames (1001 ms), not 29.
        let gop = ((u64::from(c.keyframe_interval_ms) * u64::from(num) + 500 * u64::from(den))
            / (1000 * u64::from(den)))
        .max(1) as u32;
        let video = super::open_live_h264(x264, (c.width, c.height), (num, den), gop, c.video_kbps)
            .map_err(|(what, source)| TestSourceError::Ffmpeg { what, source })?;
        let avcc = annexb_avc_config(encoder_extradata(&video)).map_err(|source| TestSourceError::Codec {
            what: "H.264 header (extradata)",
            source,
        })?;

        let audio =
            super::opus_aac::open_aac(c.audio_sample_rate, c.audio_channels, c.audio_kbps).map_err(|e| {
                match e {
                    super::opus_aac::TranscodeError::Ffmpeg { what, source } => {
                        TestSourceError::Ffmpeg { what, source }
                    }
                    other => TestSourceError::EncoderMissing(other.to_string()),
                }
            })?;
        let asc = AudioSpecificConfig::parse(encoder_extradata(&audio)).map_err(|source| {
            TestSourceError::Codec {
                what: "AudioSpecificConfig (extradata)",
                source,
            }
        })?;

        // Timestamp zero is now, after the encoders opened (which can take a while on a busy
        // machine), so the first frames are not born late; the filter graph bakes it into
        // the burned-in clock.
        let (epoch_wall, epoch) = (SystemTime::now(), Instant::now());
        let since_midnight = epoch_wall
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
            % 86_400.0;

        // Video: pattern + burned-in UTC clock (pts + offset) and frame counter.
        let size = c.height / 16;
        let spec = format!(
            "testsrc2=size={w}x{h}:rate={num}/{den},\
             drawtext=fontfile='{font}':fontsize={size}:fontcolor=white:box=1:boxcolor=black@0.7:\
             boxborderw={b}:x=(w-text_w)/2:y=h-text_h-{b}*3:\
             text='%{{pts\\:hms\\:{since_midnight:.3}}} UTC  #%{{frame_num}}',\
             format=yuv420p",
            w = c.width,
            h = c.height,
            b = size / 4,
        );
        let (graph, sink) = super::sink_graph(
            &spec,
            "build the test pattern filter graph (testsrc2, drawtext)",
            "configure the test pattern filter graph",
        )
        .map_err(|(what, source)| TestSourceError::Ffmpeg { what, source })?;

        let tracks = vec![
            TrackInfo {
                id: TestSource::VIDEO,
                timescale: 90_000,
                codec: CodecConfig::H264(avcc),
                video: Some(VideoShape {
                    width: c.width,
                    height: c.height,
                    frame_rate: Some((num, den)),
                }),
            },
            TrackInfo {
                id: TestSource::AUDIO,
                timescale: c.audio_sample_rate,
                codec: CodecConfig::Aac(asc),
                video: None,
            },
        ];
        Ok(Self {
            _graph: graph,
            sink,
            video,
            audio,
            tracks,
            fps: (num, den),
            sample_rate: c.audio_sample_rate,
            channels: c.audio_channels as usize,
            tone_hz: c.tone_hz,
            epoch,
        })
    }

    /// Encodes and releases frames until stopped or the receiver goes away.
    fn run(
        &mut self,
        pacing: Pacing,
        tx: &mpsc::Sender<Frame>,
        stop: &AtomicBool,
    ) -> Result<(), TestSourceError> {
        let epoch = self.epoch;
        let (num, den) = (u64::from(self.fps.0), u64::from(self.fps.1));
        let mut picture = frame::Video::empty();
        let mut packet = Packet::empty();
        let mut video_index: u64 = 0;
        let mut audio_index: u64 = 0; // in samples
        let layout = ChannelLayout::default(self.channels as i32);
        let mut samples = frame::Audio::new(
            format::Sample::F32(format::sample::Type::Planar),
            AAC_FRAME,
            layout,
        );
        samples.set_rate(self.sample_rate);

        while !stop.load(Ordering::Relaxed) {
            // Feed whichever input is due first, so the two tracks stay interleaved.
            let video_at = ticks_to_duration(video_index * den, num);
            let audio_at = ticks_to_duration(audio_index, u64::from(self.sample_rate));
            if video_at <= audio_at {
                self.sink
                    .sink()
                    .frame(&mut picture)
                    .map_err(ff("pull a frame from the test pattern"))?;
                picture.set_pts(Some(video_index as i64));
                // testsrc2 marks every picture as type I, and libx264 obeys a frame's type:
                // clear it so keyframes fall exactly on the GOP.
                picture.set_kind(ffmpeg_next::picture::Type::None);
                self.video.send_frame(&picture).map_err(ff("encode video"))?;
                video_index += 1;
            } else {
                // The encoder may still hold a reference to the last buffer we sent; writing
                // into a shared buffer would corrupt it, so take a private one if needed.
                // SAFETY: `samples` is a valid, allocated frame owned by this thread.
                let ret = unsafe { ffmpeg_next::ffi::av_frame_make_writable(samples.as_mut_ptr()) };
                if ret < 0 {
                    return Err(ff("make the audio frame writable")(ffmpeg_next::Error::from(ret)));
                }
                self.fill_tone(&mut samples, audio_index);
                samples.set_pts(Some(audio_index as i64));
                self.audio.send_frame(&samples).map_err(ff("encode audio"))?;
                audio_index += AAC_FRAME as u64;
            }
            for track in [TestSource::VIDEO, TestSource::AUDIO] {
                loop {
                    let encoder: &mut codec::encoder::encoder::Encoder = if track == TestSource::VIDEO {
                        &mut self.video
                    } else {
                        &mut self.audio
                    };
                    match encoder.receive_packet(&mut packet) {
                        Ok(()) => {}
                        Err(ffmpeg_next::Error::Other { errno })
                            if errno == ffmpeg_next::util::error::EAGAIN =>
                        {
                            break; // needs more input
                        }
                        Err(ffmpeg_next::Error::Eof) => break,
                        Err(e) => return Err(ff("encode (receive a packet)")(e)),
                    }
                    let Some(frame) = self.to_frame(track, &packet)? else {
                        continue;
                    };
                    if pacing == Pacing::RealTime {
                        let due = self.due(epoch, track, frame.pts);
                        let now = Instant::now();
                        if due > now {
                            std::thread::sleep(due - now);
                        }
                    }
                    let frame = Frame {
                        arrived: SystemTime::now(),
                        ..frame
                    };
                    if tx.blocking_send(frame).is_err() || stop.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// Instant a frame's timestamp comes due.
    fn due(&self, epoch: Instant, track: TrackId, pts: i64) -> Instant {
        let timescale = if track == TestSource::VIDEO {
            90_000
        } else {
            u64::from(self.sample_rate)
        };
        // AAC's first packet carries the encoder's priming at a negative pts: due at once.
        epoch + ticks_to_duration(u64::try_from(pts).unwrap_or(0), timescale)
    }

    /// A packet as a Frame in the track's timescale; AVCC for video.
    fn to_frame(&self, track: TrackId, packet: &Packet) -> Result<Option<Frame>, TestSourceError> {
        let Some(data) = packet.data() else {
            return Ok(None);
        };
        let (pts, dts) = (
            packet.pts().unwrap_or(0),
            packet.dts().or(packet.pts()).unwrap_or(0),
        );
        let (pts, dts, payload) = if track == TestSource::VIDEO {
            // Encoder time base is den/num seconds; the track timescale is 90 kHz.
            let (num, den) = (i64::from(self.fps.0), i64::from(self.fps.1));
            // i128: no overflow however long the source runs.
            let to_90k = |t: i64| (i128::from(t) * 90_000 * i128::from(den) / i128::from(num)) as i64;
            let avcc = annexb_to_avcc(data).map_err(|source| TestSourceError::Codec {
                what: "H.264 access unit",
                source,
            })?;
            (to_90k(pts), to_90k(dts), Bytes::from(avcc))
        } else {
            (pts, dts, Bytes::copy_from_slice(data))
        };
        Ok(Some(Frame {
            track,
            pts,
            dts,
            keyframe: track == TestSource::AUDIO || packet.is_key(),
            payload,
            arrived: SystemTime::now(),
        }))
    }

    /// A quiet continuous tone plus a 1 kHz beep for the first 100 ms of every second.
    fn fill_tone(&self, frame: &mut frame::Audio, first_sample: u64) {
        let rate = u64::from(self.sample_rate);
        for ch in 0..self.channels {
            let plane = frame.plane_mut::<f32>(ch);
            for (i, s) in plane.iter_mut().enumerate().take(AAC_FRAME) {
                let n = (first_sample + i as u64) % rate; // exact phase every second
                let t = n as f64 / rate as f64;
                let tone = 0.1 * (std::f64::consts::TAU * f64::from(self.tone_hz) * t).sin();
                let beep = if n < rate / 10 {
                    0.3 * (std::f64::consts::TAU * 1000.0 * t).sin()
                } else {
                    0.0
                };
                *s = (tone + beep) as f32;
            }
        }
    }
}

/// The encoder's extradata (global header) bytes.
pub(super) fn encoder_extradata(encoder: &codec::encoder::encoder::Encoder) -> &[u8] {
    // SAFETY: an opened encoder owns `extradata` of `extradata_size` bytes (or null) for its
    // whole life; the slice borrows the encoder.
    unsafe {
        let ctx = encoder.as_ptr();
        let (ptr, len) = ((*ctx).extradata, (*ctx).extradata_size);
        if ptr.is_null() || len <= 0 {
            &[]
        } else {
            std::slice::from_raw_parts(ptr, len as usize)
        }
    }
}

/// libx264 writes SPS and PPS into extradata as Annex B.
pub(super) fn annexb_avc_config(extradata: &[u8]) -> Result<AvcDecoderConfig, CodecError> {
    let nals: Vec<&[u8]> = annexb_nal_units(extradata).collect();
    let of = |t| {
        nals.iter()
            .copied()
            .filter(|n| NalUnitType::of(n) == Some(t))
            .collect::<Vec<_>>()
    };
    AvcDecoderConfig::from_parameter_sets(&of(NalUnitType::SPS), &of(NalUnitType::PPS))
}

/// `ticks / timescale` seconds as a Duration, exact to the nanosecond and free of overflow.
fn ticks_to_duration(ticks: u64, timescale: u64) -> Duration {
    let timescale = timescale.max(1);
    let nanos = (u128::from(ticks % timescale) * 1_000_000_000 / u128::from(timescale)) as u64;
    Duration::from_secs(ticks / timescale) + Duration::from_nanos(nanos)
}

#[cfg(test)]
mod tests {
    use super::ticks_to_duration;
    use std::time::Duration;

    #[test]
    fn tick_conversion_is_exact_and_never_overflows() {
        assert_eq!(ticks_to_duration(3003, 90_000), Duration::from_nanos(33_366_666));
        assert_eq!(ticks_to_duration(48_000, 48_000), Duration::from_secs(1));
        // A month at 90 kHz, far past where u64 nanosecond arithmetic would wrap.
        let month = 30 * 86_400 * 90_000u64;
        assert_eq!(ticks_to_duration(month, 90_000), Duration::from_secs(30 * 86_400));
    }
}
