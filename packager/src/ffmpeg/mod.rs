//! The one boundary to FFmpeg's libraries (ffmpeg-next). Everything that decodes, encodes,
//! scales or filters with FFmpeg lives under this module: the built-in test source and the ABR
//! ladder ([`ladder`]) and the slate's cards ([`slate`]). Nothing outside it names an `ffmpeg_next` type.

pub mod ladder;
pub mod slate;
mod test_source;

pub use test_source::{Pacing, TestSource, TestSourceError};

use std::sync::OnceLock;

/// Initialises FFmpeg once per process and quiets its own logging (we log through tracing).
pub(crate) fn init() -> Result<(), ffmpeg_next::Error> {
    static INIT: OnceLock<Result<(), ffmpeg_next::Error>> = OnceLock::new();
    *INIT.get_or_init(|| {
        ffmpeg_next::init()?;
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Error);
        Ok(())
    })
}
