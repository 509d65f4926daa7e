//! The ABR ladder at work: one H.264 decoder per event (frame-threaded) and, per rendition,
//! a scaler (on the decoder's thread) and a libx264 encoder on its own thread. Live first:
//! the source's frames are handed over without ever waiting (a full queue drops them and
//! the decoder resumes at the next keyframe), lower renditions drop frames when their
//! encoder cannot keep up, and the passthrough rendition never waits for any of this.
//!
//! Every rendition's keyframes are forced at the source's keyframe instants and its frames
//! keep the source frames' timestamps, so the segmenter cuts segment N of every rendition
//! at the same instant and players switch cleanly. Encoders number their own input frames
//! (x264 wants strictly increasing timestamps whatever the source does) and map each packet
//! back to its source frame: without B-frames, packets come out in input order.

use super::test_source::{annexb_avc_config, encoder_extradata};
use crate::codec::annexb_to_avcc;
use crate::ladder::Target;
use crate::media::{CodecConfig, Frame, TrackInfo, VideoShape};
use bytes::Bytes;
use ffmpeg_next::software::scaling;
use ffmpeg_next::{Dictionary, Packet, Rational, codec, format, frame, picture};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Instant, SystemTime};

/// Why the ladder could not start.
#[derive(Debug, thiserror::Error)]
pub enum LadderError {
    #[error("FFmpeg could not {what}: {source}")]
    Ffmpeg {
        what: String,
        #[source]
        source: ffmpeg_next::Error,
    },
    #[error("encoder `{0}` is not in this FFmpeg build")]
    EncoderMissing(String),
    #[error("the source is not H.264 video")]
    NotVideo,
    #[error("rendition {rendition}: the encoder's header is unusable: {reason}")]
    Header { rendition: String, reason: String },
}

fn ff(what: impl Into<String>) -> impl FnOnce(ffmpeg_next::Error) -> LadderError {
    let what = what.into();
    move |source| LadderError::Ffmpeg { what, source }
}

/// How the ladder encodes.
#[derive(Debug, Clone)]
pub struct LadderSettings {
    /// FFmpeg encoder name (`libx264`; `h264_nvenc` where a GPU exists).
    pub encoder: String,
    /// Encoder speed preset (x264's: `veryfast`, ...).
    pub preset: String,
    /// Source frames queued for the decoder at most; more are dropped (and the decoder
    /// resumes at the next keyframe).
    pub decode_queue: usize,
    /// Frames queued per encoder at most; more are dropped for that rendition.
    pub encode_queue: usize,
    /// Wait instead of dropping (a file, not a live source: the transcode benchmark).
    pub lossless: bool,
}

impl LadderSettings {
    pub fn from_config(c: &popcast_config::LadderConfig) -> Self {
        Self {
            encoder: c.encoder.clone(),
            preset: c.preset.clone(),
            decode_queue: 60,
            encode_queue: 30,
            lossless: false,
        }
    }
}

/// Counters of one rendition (read by `/metrics` and health).
#[derive(Debug, Default)]
pub struct RenditionStats {
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    /// Frames dropped because the encoder fell behind.
    pub dropped: AtomicU64,
    /// Source frame handed to the ladder → its encoded frame out, last and worst, µs.
    pub delay_us_last: AtomicU64,
    pub delay_us_max: AtomicU64,
    /// A source keyframe could not be queued: the rendition waits for the next one (its
    /// segments stay aligned; it has a gap).
    pub paused: AtomicU64,
}

/// What the ladder has done, per rendition.
pub struct LadderStats {
    pub renditions: Vec<(String, Arc<RenditionStats>)>,
    /// Source frames dropped before decoding (the decoder fell behind), and decode errors.
    pub source_dropped: AtomicU64,
    pub decode_errors: AtomicU64,
}

/// Where encoded frames go: called on the encoder threads.
pub type Sink = Arc<dyn Fn(Frame) + Send + Sync>;

/// What travels with a source frame through decoding and encoding.
#[derive(Debug, Clone, Copy)]
struct Meta {
    pts: i64,
    dts: i64,
    keyframe: bool,
    arrived: SystemTime,
    given: Instant,
}

/// A running ladder. Dropping it stops it: its threads end once their queues close.
pub struct Ladder {
    input: SyncSender<(Frame, Instant)>,
    targets: Vec<Target>,
    tracks: Vec<TrackInfo>,
    stats: Arc<LadderStats>,
    /// Drop frames until the next keyframe (one was dropped; the decoder cannot use P-frames
    /// without it).
    resync: AtomicBool,
    lossless: bool,
}

impl Ladder {
    /// Opens every rendition's encoder (errors surface here) and starts the threads.
    /// `source` is the passthrough video track; the encoded frames go to `sink`.
    pub fn start(
        source: &TrackInfo,
        targets: &[Target],
        settings: &LadderSettings,
        sink: Sink,
    ) -> Result<Self, LadderError> {
        super::init().map_err(ff("initialise"))?;
        let CodecConfig::H264(avc) = &source.codec else {
            return Err(LadderError::NotVideo);
        };
        let fps = source
            .video
            .and_then(|v| v.frame_rate)
            .filter(|(n, d)| *n > 0 && *d > 0)
            .unwrap_or((30, 1));
        let mut encoders = Vec::new();
        let mut tracks = Vec::new();
        let mut stats = Vec::new();
        for t in targets {
            let (enc, track) = open_encoder(t, fps, settings)?;
            let s = Arc::new(RenditionStats::default());
            stats.push((t.name.clone(), s.clone()));
            tracks.push(track);
            encoders.push((t.clone(), enc, s));
        }
        let decoder = open_decoder(&avc.to_bytes())?;
        let stats = Arc::new(LadderStats {
            renditions: stats,
            source_dropped: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
        });
        let (input, rx) = sync_channel(settings.decode_queue.max(1));
        let mut outputs = Vec::new();
        for (target, enc, s) in encoders {
            let (tx, erx) = sync_channel::<(frame::Video, Meta)>(settings.encode_queue.max(1));
            let sink = sink.clone();
            let name = target.name.clone();
            let stats = s.clone();
            std::thread::Builder::new()
                .name(format!("ladder-{name}"))
                .spawn(move || encode_loop(target, enc, erx, stats, sink))
                .map_err(|_| ff("start an encoder thread")(ffmpeg_next::Error::Bug))?;
            outputs.push(Output {
                target: targets_find(targets, &name),
                tx,
                stats: s,
                waiting_key: false,
            });
        }
        let dstats = stats.clone();
        let lossless = settings.lossless;
        std::thread::Builder::new()
            .name("ladder-decode".into())
            .spawn(move || decode_loop(decoder, rx, outputs, dstats, lossless))
            .map_err(|_| ff("start the decoder thread")(ffmpeg_next::Error::Bug))?;
        Ok(Self {
            input,
            targets: targets.to_vec(),
            tracks,
            stats,
            resync: AtomicBool::new(false),
            lossless: settings.lossless,
        })
    }

    /// What it encodes: a restart for another source keeps the renditions (and their tracks).
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The renditions' tracks, with the codec records of their encoders' real SPS/PPS.
    pub fn tracks(&self) -> &[TrackInfo] {
        &self.tracks
    }

    pub fn stats(&self) -> &Arc<LadderStats> {
        &self.stats
    }

    /// Hands one source video frame over, never waiting. A full queue drops it, and the
    /// frames after it until the next keyframe. In lossless mode it waits for room instead.
    pub fn push(&self, frame: Frame) {
        if self.lossless {
            let _ = self.input.send((frame, Instant::now()));
            return;
        }
        if self.resync.load(Ordering::Relaxed) {
            if !frame.keyframe {
                self.stats.source_dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            self.resync.store(false, Ordering::Relaxed);
        }
        match self.input.try_send((frame, Instant::now())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.stats.source_dropped.fetch_add(1, Ordering::Relaxed);
                self.resync.store(true, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {
                self.stats.source_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn targets_find(targets: &[Target], name: &str) -> Target {
    targets
        .iter()
        .find(|t| t.name == name)
        .cloned()
        .expect("made from this list")
}

fn open_decoder(avcc: &[u8]) -> Result<codec::decoder::Video, LadderError> {
    let h264 =
        codec::decoder::find(codec::Id::H264).ok_or(LadderError::EncoderMissing("h264 decoder".into()))?;
    let mut ctx = codec::context::Context::new_with_codec(h264);
    // The avcC record as extradata: the decoder then reads length-prefixed (AVCC) frames.
    // SAFETY: the context is fresh and owned here; FFmpeg frees `extradata` with it, so it
    // must come from av_mallocz, with the padding FFmpeg's bitstream readers may overread.
    unsafe {
        let pad = ffmpeg_next::ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
        let buf = ffmpeg_next::ffi::av_mallocz(avcc.len() + pad) as *mut u8;
        if buf.is_null() {
            return Err(ff("allocate the decoder's extradata")(ffmpeg_next::Error::Bug));
        }
        std::ptr::copy_nonoverlapping(avcc.as_ptr(), buf, avcc.len());
        let raw = ctx.as_mut_ptr();
        (*raw).extradata = buf;
        (*raw).extradata_size = avcc.len() as i32;
    }
    let mut threads = codec::threading::Config::kind(codec::threading::Type::Frame);
    threads.count = 2;
    ctx.set_threading(threads);
    ctx.decoder().video().map_err(ff("open the H.264 decoder"))
}

fn open_encoder(
    t: &Target,
    (num, den): (u32, u32),
    s: &LadderSettings,
) -> Result<(codec::encoder::Video, TrackInfo), LadderError> {
    let x264 = codec::encoder::find_by_name(&s.encoder)
        .ok_or_else(|| LadderError::EncoderMissing(s.encoder.clone()))?;
    let mut v = codec::context::Context::new_with_codec(x264)
        .encoder()
        .video()
        .map_err(ff(format!("create the {} encoder", t.name)))?;
    v.set_width(t.width);
    v.set_height(t.height);
    v.set_format(format::Pixel::YUV420P);
    v.set_time_base(Rational::new(den as i32, num as i32));
    v.set_frame_rate(Some(Rational::new(num as i32, den as i32)));
    // Keyframes only where the source has them (forced per frame); none of the encoder's own.
    v.set_gop(100_000);
    v.set_max_b_frames(0);
    let bps = t.kbps as usize * 1000;
    v.set_bit_rate(bps);
    v.set_max_bit_rate(bps);
    v.set_flags(codec::Flags::GLOBAL_HEADER);
    let mut opts = Dictionary::new();
    if s.encoder == "libx264" {
        opts.set("preset", &s.preset);
        opts.set("tune", "zerolatency");
        // VBV of one second at the target rate: segments stay near their BANDWIDTH.
        opts.set("bufsize", &bps.to_string());
        opts.set("forced-idr", "1");
        opts.set("x264-params", "scenecut=0:keyint=infinite:min-keyint=1");
    }
    let enc = v
        .open_as_with(x264, opts)
        .map_err(ff(format!("open the {} encoder ({})", t.name, s.encoder)))?;
    let avcc = annexb_avc_config(encoder_extradata(&enc)).map_err(|e| LadderError::Header {
        rendition: t.name.clone(),
        reason: e.to_string(),
    })?;
    let track = TrackInfo {
        id: t.track,
        timescale: 90_000,
        codec: CodecConfig::H264(avcc),
        video: Some(VideoShape {
            width: t.width,
            height: t.height,
            frame_rate: Some((num, den)),
        }),
    };
    Ok((enc, track))
}

/// One rendition as the decoder thread sees it.
struct Output {
    target: Target,
    tx: SyncSender<(frame::Video, Meta)>,
    stats: Arc<RenditionStats>,
    /// A keyframe could not be queued: send nothing until the next one.
    waiting_key: bool,
}

fn decode_loop(
    mut decoder: codec::decoder::Video,
    rx: Receiver<(Frame, Instant)>,
    mut outputs: Vec<Output>,
    stats: Arc<LadderStats>,
    lossless: bool,
) {
    let mut metas: HashMap<i64, Meta> = HashMap::new();
    let mut decoded = frame::Video::empty();
    let mut resync = false;
    let mut logged_errors = 0u32;
    // Per rendition, made for the decoded frames' size and format (remade when they change);
    // they live on this thread (FFmpeg's scaler contexts are not to be shared).
    let mut scalers: Vec<Option<Scaler>> = outputs.iter().map(|_| None).collect();
    while let Ok((f, given)) = rx.recv() {
        if resync && !f.keyframe {
            continue;
        }
        resync = false;
        let mut packet = Packet::copy(&f.payload);
        packet.set_pts(Some(f.pts));
        packet.set_dts(Some(f.dts));
        if f.keyframe {
            packet.set_flags(ffmpeg_next::packet::Flags::KEY);
        }
        if metas.len() > 256 {
            metas.clear(); // frames the decoder never returned (errors): forget them
        }
        metas.insert(
            f.pts,
            Meta {
                pts: f.pts,
                dts: f.dts,
                keyframe: f.keyframe,
                arrived: f.arrived,
                given,
            },
        );
        if let Err(e) = decoder.send_packet(&packet) {
            stats.decode_errors.fetch_add(1, Ordering::Relaxed);
            if logged_errors < 10 {
                logged_errors += 1;
                tracing::warn!(error = %e, pts = f.pts, "ladder: a source frame did not decode; resuming at the next keyframe");
            }
            resync = true;
            continue;
        }
        while decoder.receive_frame(&mut decoded).is_ok() {
            let Some(meta) = decoded.pts().and_then(|p| metas.remove(&p)) else {
                continue;
            };
            for (out, scaler) in outputs.iter_mut().zip(&mut scalers) {
                scale_and_queue(out, scaler, &decoded, meta, lossless);
            }
        }
    }
    // The source ended: what the decoder still holds (frame threading keeps one back).
    if decoder.send_eof().is_ok() {
        while decoder.receive_frame(&mut decoded).is_ok() {
            if let Some(meta) = decoded.pts().and_then(|p| metas.remove(&p)) {
                for (out, scaler) in outputs.iter_mut().zip(&mut scalers) {
                    scale_and_queue(out, scaler, &decoded, meta, lossless);
                }
            }
        }
    }
}

/// A scaler and the input (format, width, height) it was made for.
type Scaler = (scaling::Context, (format::Pixel, u32, u32));

/// Scales `decoded` for one rendition and queues it for its encoder (never waiting).
fn scale_and_queue(
    out: &mut Output,
    scaler: &mut Option<Scaler>,
    decoded: &frame::Video,
    meta: Meta,
    lossless: bool,
) {
    out.stats.frames_in.fetch_add(1, Ordering::Relaxed);
    if out.waiting_key && !meta.keyframe {
        out.stats.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let shape = (decoded.format(), decoded.width(), decoded.height());
    if scaler.as_ref().is_none_or(|(_, s)| *s != shape) {
        if scaler.is_some() {
            tracing::info!(rendition = %out.target.name, width = shape.1, height = shape.2, "ladder: the source changed size; scaling from the new one");
        }
        match scaling::Context::get(
            shape.0,
            shape.1,
            shape.2,
            format::Pixel::YUV420P,
            out.target.width,
            out.target.height,
            scaling::Flags::BILINEAR,
        ) {
            Ok(s) => *scaler = Some((s, shape)),
            Err(e) => {
                tracing::warn!(rendition = %out.target.name, error = %e, "ladder: no scaler for this source frame");
                *scaler = None;
                out.stats.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
    let Some((sws, _)) = scaler.as_mut() else { return };
    let mut scaled = frame::Video::empty();
    if sws.run(decoded, &mut scaled).is_err() {
        out.stats.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    scaled.set_kind(if meta.keyframe {
        picture::Type::I
    } else {
        picture::Type::None
    });
    if lossless {
        let _ = out.tx.send((scaled, meta));
        return;
    }
    match out.tx.try_send((scaled, meta)) {
        Ok(()) => out.waiting_key = false,
        Err(TrySendError::Full(_)) => {
            out.stats.dropped.fetch_add(1, Ordering::Relaxed);
            if meta.keyframe {
                // Its segment would start without a keyframe: skip to the next one.
                out.waiting_key = true;
                out.stats.paused.fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(TrySendError::Disconnected(_)) => {}
    }
}

fn encode_loop(
    target: Target,
    mut enc: codec::encoder::Video,
    rx: Receiver<(frame::Video, Meta)>,
    stats: Arc<RenditionStats>,
    sink: Sink,
) {
    let mut pending: VecDeque<Meta> = VecDeque::new();
    let mut counter: i64 = 0;
    // The source keyframe's pts − dts: output frames (no B-frames) keep it, so each
    // rendition's keyframe has exactly the source keyframe's decode time (the segmenter cuts
    // there) and decode times still increase frame by frame.
    let mut shift: i64 = 0;
    let mut packet = Packet::empty();
    let mut logged = false;
    let mut input = rx.iter();
    loop {
        // Each frame in, then what came out; at the end of the source, the encoder's rest.
        match input.next() {
            Some((mut picture, meta)) => {
                picture.set_pts(Some(counter));
                counter += 1;
                if let Err(e) = enc.send_frame(&picture) {
                    if !logged {
                        logged = true;
                        tracing::warn!(rendition = %target.name, error = %e, "ladder: a frame did not encode");
                    }
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                pending.push_back(meta);
            }
            None => {
                if enc.send_eof().is_err() || pending.is_empty() {
                    return;
                }
            }
        }
        while enc.receive_packet(&mut packet).is_ok() {
            let Some(meta) = pending.pop_front() else { break };
            if meta.keyframe {
                shift = (meta.pts - meta.dts).max(0);
            }
            let Some(data) = packet.data() else { continue };
            let payload = match annexb_to_avcc(data) {
                Ok(p) => Bytes::from(p),
                Err(e) => {
                    tracing::warn!(rendition = %target.name, error = %e, "ladder: unusable encoder output");
                    continue;
                }
            };
            let delay = meta.given.elapsed().as_micros() as u64;
            stats.delay_us_last.store(delay, Ordering::Relaxed);
            stats.delay_us_max.fetch_max(delay, Ordering::Relaxed);
            stats.frames_out.fetch_add(1, Ordering::Relaxed);
            sink(Frame {
                track: target.track,
                pts: meta.pts,
                dts: meta.pts - shift,
                keyframe: packet.is_key(),
                payload,
                arrived: meta.arrived,
            });
        }
    }
}
