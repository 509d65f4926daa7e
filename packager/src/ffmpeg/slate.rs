//! The slate's encoder: a card (a title and a status line, drawn by FFmpeg's drawtext with a
//! TrueType font) encoded once as one closed GOP of H.264 at a rendition's size, and one
//! steady AAC frame of silence. The event's slate loops these with re-stamped timestamps, so
//! a slate costs one short encode per card and rendition, never a live encoder.

use super::test_source::{annexb_avc_config, encoder_extradata};
use crate::codec::{AudioSpecificConfig, annexb_to_avcc};
use crate::media::{CodecConfig, Frame, TrackId, TrackInfo, VideoShape};
use bytes::Bytes;
use ffmpeg_next::{ChannelLayout, Packet, Rational, codec, format, frame};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// Longest text line drawn on a card (longer titles are cut with an ellipsis).
pub const MAX_LINE_CHARS: usize = 60;

/// Why a slate could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum SlateError {
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
    #[error("slate size {width}x{height} is not even, from 16x16 to 7680x4320")]
    BadSize { width: u32, height: u32 },
    #[error("the encoder produced an unusable {0}")]
    Codec(String),
    #[error("could not write the card's text for drawtext: {0}")]
    Text(std::io::Error),
}

fn ff(what: &'static str) -> impl FnOnce(ffmpeg_next::Error) -> SlateError {
    move |source| SlateError::Ffmpeg { what, source }
}

/// One card at one size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSpec {
    pub width: u32,
    pub height: u32,
    /// Frames per second of the loop.
    pub fps: u32,
    /// The GOP's length (the segment target: every looped GOP is one segment).
    pub gop_ms: u32,
    pub video_kbps: u32,
    /// FFmpeg H.264 encoder name (`libx264`).
    pub encoder: String,
    pub font: PathBuf,
    /// The big line (the event's title).
    pub title: String,
    /// The small line ("Starts in 12 min", "We'll be right back", "This event has ended").
    pub status: String,
}

/// An encoded card: one closed GOP, timestamps from 0 at 90 kHz.
#[derive(Debug, Clone)]
pub struct Card {
    /// Track id 1, 90 kHz.
    pub track: TrackInfo,
    /// The GOP's frames in decode order; the first is the only keyframe.
    pub frames: Vec<Frame>,
    /// The GOP's length in 90 kHz ticks (frames × frame duration).
    pub duration: i64,
}

/// Silence: one AAC-LC frame that decodes to 1024 silent samples, repeated for as long as
/// the slate lasts.
#[derive(Debug, Clone)]
pub struct Silence {
    /// Track id 2, timescale = sample rate.
    pub track: TrackInfo,
    pub frame: Bytes,
}

/// Cuts a line to [`MAX_LINE_CHARS`] and removes control characters (drawtext would draw
/// them as boxes).
pub fn card_line(s: &str) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim();
    if clean.chars().count() <= MAX_LINE_CHARS {
        return clean.to_string();
    }
    let mut out: String = clean.chars().take(MAX_LINE_CHARS - 1).collect();
    out.push('…');
    out
}

/// A text file drawtext reads at setup (text from operators never enters the filter
/// syntax), removed when dropped.
struct TextFile(PathBuf);

impl TextFile {
    fn new(text: &str) -> Result<Self, SlateError> {
        use std::io::Write;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir();
        if dir.display().to_string().contains(super::FILTER_SYNTAX) {
            return Err(SlateError::Text(std::io::Error::other(format!(
                "the temporary directory {} has one of ' \\ : , ; [ ] in its path (FFmpeg filter syntax); set TMPDIR",
                dir.display()
            ))));
        }
        // A fresh name, created exclusively (never through someone else's file or link).
        let nonce = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = dir.join(format!(
            "popcast-slate-{}-{}-{nonce:08x}.txt",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(SlateError::Text)?;
        let file = Self(path);
        f.write_all(text.as_bytes()).map_err(SlateError::Text)?;
        Ok(file)
    }

    /// The path as drawtext needs it (checked free of filter syntax characters).
    fn arg(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TextFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Draws and encodes one card.
pub fn encode_card(c: &CardSpec) -> Result<Card, SlateError> {
    super::init().map_err(ff("initialise"))?;
    if c.width % 2 != 0
        || c.height % 2 != 0
        || !(16..=7680).contains(&c.width)
        || !(16..=4320).contains(&c.height)
    {
        return Err(SlateError::BadSize {
            width: c.width,
            height: c.height,
        });
    }
    let font = super::font_path(&c.font).map_err(|(path, reason)| SlateError::Font { path, reason })?;
    let fps = c.fps.clamp(1, 60);
    let gop = (u64::from(c.gop_ms) * u64::from(fps)).div_ceil(1000).max(1) as usize;
    let title = TextFile::new(&card_line(&c.title))?;
    let status = TextFile::new(&card_line(&c.status))?;
    let (big, small) = ((c.height / 12).max(8), (c.height / 20).max(6));
    let spec = format!(
        "color=c=0x141821:size={w}x{h}:rate={fps},\
         drawtext=fontfile='{font}':textfile='{t}':expansion=none:fontsize={big}:fontcolor=white:\
         x=(w-text_w)/2:y=h/2-text_h-{gap},\
         drawtext=fontfile='{font}':textfile='{s}':expansion=none:fontsize={small}:fontcolor=0xc8ccd8:\
         x=(w-text_w)/2:y=h/2+{gap},\
         format=yuv420p",
        w = c.width,
        h = c.height,
        t = title.arg(),
        s = status.arg(),
        gap = c.height / 40,
    );
    let (_graph, mut sink) = super::sink_graph(
        &spec,
        "build the card's filter graph (color, drawtext)",
        "configure the card's filter graph",
    )
    .map_err(|(what, source)| SlateError::Ffmpeg { what, source })?;
    drop((title, status));

    let x264 = codec::encoder::find_by_name(&c.encoder)
        .ok_or_else(|| SlateError::EncoderMissing(c.encoder.clone()))?;
    let mut video = super::open_live_h264(x264, (c.width, c.height), (fps, 1), gop as u32, c.video_kbps)
        .map_err(|(what, source)| SlateError::Ffmpeg { what, source })?;
    let avcc = annexb_avc_config(encoder_extradata(&video))
        .map_err(|e| SlateError::Codec(format!("H.264 header: {e}")))?;

    let mut picture = frame::Video::empty();
    let mut packet = Packet::empty();
    let tick = 90_000 / i64::from(fps);
    let mut frames = Vec::with_capacity(gop);
    let mut take = |video: &mut codec::encoder::Video, frames: &mut Vec<Frame>| -> Result<(), SlateError> {
        while video.receive_packet(&mut packet).is_ok() {
            let Some(data) = packet.data() else { continue };
            let avcc =
                annexb_to_avcc(data).map_err(|e| SlateError::Codec(format!("H.264 access unit: {e}")))?;
            let dts = packet.dts().or(packet.pts()).unwrap_or(0) * tick;
            frames.push(Frame {
                track: TrackId(1),
                pts: packet.pts().unwrap_or(0) * tick,
                dts,
                keyframe: packet.is_key(),
                payload: Bytes::from(avcc),
                arrived: SystemTime::now(),
            });
        }
        Ok(())
    };
    for i in 0..gop {
        sink.sink()
            .frame(&mut picture)
            .map_err(ff("pull a frame from the card"))?;
        picture.set_pts(Some(i as i64));
        picture.set_kind(ffmpeg_next::picture::Type::None);
        video.send_frame(&picture).map_err(ff("encode the card"))?;
        take(&mut video, &mut frames)?;
    }
    video.send_eof().map_err(ff("finish the card's GOP"))?;
    take(&mut video, &mut frames)?;
    if frames.len() != gop || !frames[0].keyframe || frames[1..].iter().any(|f| f.keyframe) {
        return Err(SlateError::Codec(format!(
            "GOP of {} frames ({} keyframes), wanted {gop} frames opening with the only keyframe",
            frames.len(),
            frames.iter().filter(|f| f.keyframe).count()
        )));
    }
    Ok(Card {
        track: TrackInfo {
            id: TrackId(1),
            timescale: 90_000,
            codec: CodecConfig::H264(avcc),
            video: Some(VideoShape {
                width: c.width,
                height: c.height,
                frame_rate: Some((fps, 1)),
            }),
        },
        frames,
        duration: tick * gop as i64,
    })
}

/// Encodes silence and keeps one frame from the encoder's steady state.
pub fn encode_silence(sample_rate: u32, channels: u32) -> Result<Silence, SlateError> {
    super::init().map_err(ff("initialise"))?;
    let aac = codec::encoder::find(codec::Id::AAC).ok_or_else(|| SlateError::EncoderMissing("aac".into()))?;
    let mut a = codec::context::Context::new_with_codec(aac)
        .encoder()
        .audio()
        .map_err(ff("create the audio encoder"))?;
    let layout = ChannelLayout::default(channels as i32);
    a.set_rate(sample_rate as i32);
    a.set_format(format::Sample::F32(format::sample::Type::Planar));
    a.set_channel_layout(layout);
    a.set_channels(channels as i32);
    a.set_bit_rate(64_000);
    a.set_time_base(Rational::new(1, sample_rate as i32));
    a.set_flags(codec::Flags::GLOBAL_HEADER);
    let mut audio = a.open_as(aac).map_err(ff("open the audio encoder"))?;
    let asc = AudioSpecificConfig::parse(encoder_extradata(&audio))
        .map_err(|e| SlateError::Codec(format!("AudioSpecificConfig: {e}")))?;
    let mut samples = frame::Audio::new(format::Sample::F32(format::sample::Type::Planar), 1024, layout);
    samples.set_rate(sample_rate);
    for ch in 0..channels as usize {
        samples.plane_mut::<f32>(ch).fill(0.0);
    }
    let mut packets = Vec::new();
    let mut packet = Packet::empty();
    for i in 0..12 {
        samples.set_pts(Some(i * 1024));
        audio.send_frame(&samples).map_err(ff("encode silence"))?;
        while audio.receive_packet(&mut packet).is_ok() {
            if let Some(d) = packet.data() {
                packets.push(Bytes::copy_from_slice(d));
            }
        }
    }
    // Past the priming frames, every frame of silence is the same.
    let frame = packets
        .get(6)
        .cloned()
        .ok_or_else(|| SlateError::Codec(format!("{} AAC frames for 12 of silence", packets.len())))?;
    Ok(Silence {
        track: TrackInfo {
            id: TrackId(2),
            timescale: sample_rate,
            codec: CodecConfig::Aac(asc),
            video: None,
        },
        frame,
    })
}
