//! The one boundary to FFmpeg's libraries (ffmpeg-next). Everything that decodes, encodes,
//! scales or filters with FFmpeg lives under this module: the built-in test source and the ABR
//! ladder ([`ladder`]), the slate's cards ([`slate`]) and WHIP's Opus → AAC ([`opus_aac`]). Nothing outside it names an `ffmpeg_next` type.

pub mod ladder;
pub mod opus_aac;
pub mod slate;
mod test_source;

pub use test_source::{Pacing, TestSource, TestSourceError};

use std::path::Path;
use std::sync::OnceLock;

/// Characters of FFmpeg's filter syntax that no path passed into a filter may hold.
pub(crate) const FILTER_SYNTAX: [char; 7] = ['\'', '\\', ':', ',', ';', '[', ']'];

/// A font file drawtext can take: its path, or `(path, why not)`.
pub(crate) fn font_path(font: &Path) -> Result<String, (String, String)> {
    let path = font.display().to_string();
    if path.contains(FILTER_SYNTAX) {
        let why = "path must not contain any of ' \\ : , ; [ ] (FFmpeg filter syntax)";
        return Err((path, why.into()));
    }
    match std::fs::metadata(font) {
        Ok(_) => Ok(path),
        Err(e) => Err((path, format!("{e} (Debian: apt-get install fonts-dejavu-core)"))),
    }
}

/// A filter graph from `spec` into a buffersink, and the sink. `build` and `configure`
/// name those steps in errors; an error is `(the step, FFmpeg's error)`.
pub(crate) fn sink_graph(
    spec: &str,
    build: &'static str,
    configure: &'static str,
) -> Result<(ffmpeg_next::filter::Graph, ffmpeg_next::filter::Context), (&'static str, ffmpeg_next::Error)> {
    use ffmpeg_next::{Error, filter};
    let mut graph = filter::Graph::new();
    let sink = filter::find("buffersink").ok_or(("find the buffersink filter", Error::FilterNotFound))?;
    graph
        .add(&sink, "out", "")
        .map_err(|e| ("add the buffersink filter", e))?;
    graph
        .input("out", 0)
        .and_then(|p| p.parse(spec))
        .map_err(|e| (build, e))?;
    graph.validate().map_err(|e| (configure, e))?;
    let sink = graph.get("out").ok_or((
        "find the buffersink in the configured graph",
        Error::FilterNotFound,
    ))?;
    Ok((graph, sink))
}

/// Opens a live H.264 encoder: `size`, frame rate `(num, den)` (the time base is its
/// inverse), a closed GOP of `gop` frames with no scene-cut keyframes, no B-frames, `kbps`
/// as both rate and cap, the parameter sets in the global header (for `avcC`), and x264's
/// veryfast preset with the zerolatency tune. An error is `(the step, FFmpeg's error)`.
pub(crate) fn open_live_h264(
    encoder: ffmpeg_next::Codec,
    (width, height): (u32, u32),
    (num, den): (u32, u32),
    gop: u32,
    kbps: u32,
) -> Result<ffmpeg_next::codec::encoder::Video, (&'static str, ffmpeg_next::Error)> {
    use ffmpeg_next::{Dictionary, Rational, codec, format};
    let mut v = codec::context::Context::new_with_codec(encoder)
        .encoder()
        .video()
        .map_err(|e| ("create the video encoder", e))?;
    v.set_width(width);
    v.set_height(height);
    v.set_format(format::Pixel::YUV420P);
    v.set_time_base(Rational::new(den as i32, num as i32));
    v.set_frame_rate(Some(Rational::new(num as i32, den as i32)));
    v.set_gop(gop);
    v.set_max_b_frames(0);
    v.set_bit_rate(kbps as usize * 1000);
    v.set_max_bit_rate(kbps as usize * 1000);
    v.set_flags(codec::Flags::GLOBAL_HEADER);
    let mut opts = Dictionary::new();
    opts.set("preset", "veryfast");
    opts.set("tune", "zerolatency");
    opts.set("bufsize", &(kbps * 1000).to_string());
    opts.set(
        "x264-params",
        &format!("keyint={gop}:min-keyint={gop}:scenecut=0"),
    );
    v.open_as_with(encoder, opts)
        .map_err(|e| ("open the video encoder", e))
}

/// Initialises FFmpeg once per process and quiets its own logging (we log through tracing).
pub(crate) fn init() -> Result<(), ffmpeg_next::Error> {
    static INIT: OnceLock<Result<(), ffmpeg_next::Error>> = OnceLock::new();
    *INIT.get_or_init(|| {
        ffmpeg_next::init()?;
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Error);
        Ok(())
    })
}
