//! The ABR ladder's plan: which renditions an event's source gets, at what size and
//! bitrate. Pure (no FFmpeg): the encoding itself is `ffmpeg::ladder`.
//!
//! A rendition keeps the configured height and takes its width from the source's aspect
//! ratio (even numbers, as 4:2:0 needs), so a 4:3 or vertical source is never stretched. It
//! is skipped when taller than the source (no upscaling), or as tall as the source while
//! the source itself is offered (passthrough): a 720p source gets no second 720p.

use crate::media::{TrackId, VideoShape};
use popcast_config::LadderConfig;

/// One rendition to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub kbps: u32,
    /// The track its frames carry (distinct from any source track).
    pub track: TrackId,
}

/// Track ids of ladder renditions start here (sources use small ids).
pub const FIRST_TRACK: u32 = 0x100;

/// The renditions `cfg` gives a source of `shape`, largest first. A rendition's configured
/// height is its short side, so a vertical (portrait) source gets portrait renditions.
pub fn plan(shape: &VideoShape, cfg: &LadderConfig) -> Vec<Target> {
    let (sw, sh) = (u64::from(shape.width.max(2)), u64::from(shape.height.max(2)));
    let portrait = sh > sw;
    let (short, long) = if portrait { (sw, sh) } else { (sh, sw) };
    let mut out: Vec<Target> = Vec::new();
    for r in &cfg.renditions {
        let side = u64::from(r.height);
        let too_big = side > short || (side == short && cfg.passthrough);
        if too_big
            || side < 2
            || out
                .iter()
                .any(|t| t.name == r.name || t.width.min(t.height) as u64 == side)
        {
            continue;
        }
        // The long side from the source's aspect ratio, rounded to an even number.
        let other = ((side * long + short) / (2 * short) * 2).max(2) as u32;
        let (width, height) = if portrait {
            (side as u32, other)
        } else {
            (other, side as u32)
        };
        out.push(Target {
            name: r.name.clone(),
            width,
            height,
            kbps: r.video_kbps,
            track: TrackId(0),
        });
    }
    out.sort_by_key(|t| std::cmp::Reverse(u64::from(t.width) * u64::from(t.height)));
    for (i, t) in out.iter_mut().enumerate() {
        t.track = TrackId(FIRST_TRACK + i as u32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(w: u32, h: u32) -> VideoShape {
        VideoShape {
            width: w,
            height: h,
            frame_rate: Some((30, 1)),
        }
    }

    #[test]
    fn a_720p_source_gets_480p_and_360p_and_no_second_720p() {
        let cfg = LadderConfig::default();
        let names: Vec<_> = plan(&shape(1280, 720), &cfg)
            .into_iter()
            .map(|t| (t.name, t.width, t.height))
            .collect();
        assert_eq!(names, [("480p".into(), 854, 480), ("360p".into(), 640, 360)]);
        // Without passthrough the 720p is encoded (capped at its bitrate).
        let all = plan(
            &shape(1280, 720),
            &LadderConfig {
                passthrough: false,
                ..cfg.clone()
            },
        );
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].track, TrackId(FIRST_TRACK));
        // Nothing upscaled; an odd aspect keeps its shape.
        assert!(plan(&shape(320, 180), &cfg).is_empty());
        let vertical: Vec<_> = plan(&shape(720, 1280), &cfg)
            .into_iter()
            .map(|t| (t.width, t.height))
            .collect();
        assert_eq!(vertical, [(480, 854), (360, 640)]);
        let four_three = plan(&shape(960, 720), &cfg);
        assert_eq!((four_three[0].width, four_three[0].height), (640, 480));
    }
}
