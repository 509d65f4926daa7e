//! The one boundary to FFmpeg's libraries (ffmpeg-next). Everything that decodes, encodes,
//! scales or filters with FFmpeg lives under this module: the built-in test source and the ABR
//! ladder ([`ladder`]) and the slate's cards ([`slate`]). Nothing outside it names an `ffmpeg_next` type.

pub mod ladder;
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

/// Initialises FFmpeg once per process and quiets its own logging (we log through tracing).
pub(crate) fn init() -> Result<(), ffmpeg_next::Error> {
    static INIT: OnceLock<Result<(), ffmpeg_next::Error>> = OnceLock::new();
    *INIT.get_or_init(|| {
        ffmpeg_next::init()?;
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Error);
        Ok(())
    })
}
