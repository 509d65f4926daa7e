//! HLS playlists as a player reads them: multivariant and LL-HLS media playlists (parts,
//! preload hints, server control, rendition reports, delta updates), parsed within explicit
//! limits into values, with every refusal naming the line and the problem.

mod attrs;
mod time;

pub use attrs::{AttrError, Attrs};
pub use time::parse_date_time;

use std::time::{Duration, SystemTime};

/// Bounds on what a playlist may make the player hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_segments: usize,
    pub max_parts_per_segment: usize,
    pub max_variants: usize,
    pub max_rendition_reports: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 4 * 1024 * 1024,
            max_segments: 20_000,
            max_parts_per_segment: 1_000,
            max_variants: 256,
            max_rendition_reports: 256,
        }
    }
}

/// Why a playlist was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaylistError {
    #[error("playlist of {len} bytes is over the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("not a playlist: the first line is not #EXTM3U")]
    NotM3u,
    #[error("line {line}: {tag}: {reason}")]
    BadTag {
        line: usize,
        tag: &'static str,
        reason: String,
    },
    #[error("line {line}: a URI with no #EXTINF before it")]
    UriWithoutInf { line: usize },
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("more than {max} {what}")]
    TooMany { what: &'static str, max: usize },
    #[error("delta update: {0}")]
    BadDelta(String),
}

fn bad(line: usize, tag: &'static str, reason: impl Into<String>) -> PlaylistError {
    PlaylistError::BadTag {
        line,
        tag,
        reason: reason.into(),
    }
}

/// A decimal number of seconds (`4`, `0.33334`) as a duration; at most a day.
pub fn seconds(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') || s.matches('.').count() > 1 {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    (v.is_finite() && (0.0..=86_400.0).contains(&v)).then(|| Duration::from_secs_f64(v))
}

/// A video variant (EXT-X-STREAM-INF).
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub uri: String,
    pub bandwidth: u64,
    pub average_bandwidth: Option<u64>,
    pub codecs: Option<String>,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
    /// GROUP-ID of its audio renditions.
    pub audio: Option<String>,
}

/// An alternative rendition (EXT-X-MEDIA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// AUDIO, VIDEO, SUBTITLES or CLOSED-CAPTIONS.
    pub kind: String,
    pub group: String,
    pub name: String,
    pub uri: Option<String>,
    pub default: bool,
}

/// A multivariant playlist.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Multivariant {
    /// In the playlist's order.
    pub variants: Vec<Variant>,
    pub media: Vec<Media>,
    pub independent_segments: bool,
}

impl Multivariant {
    /// The audio rendition a variant plays with: its group's DEFAULT one, else its first.
    pub fn audio_for(&self, v: &Variant) -> Option<&Media> {
        let group = v.audio.as_deref()?;
        let in_group = || {
            self.media
                .iter()
                .filter(move |m| m.kind == "AUDIO" && m.group == group && m.uri.is_some())
        };
        in_group().find(|m| m.default).or_else(|| in_group().next())
    }
}

/// EXT-X-SERVER-CONTROL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerControl {
    pub can_block_reload: bool,
    pub can_skip_until: Option<Duration>,
    pub hold_back: Option<Duration>,
    pub part_hold_back: Option<Duration>,
}

/// One part (EXT-X-PART).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub duration: Duration,
    pub uri: String,
    pub independent: bool,
    pub gap: bool,
}

/// One segment: complete (`uri` and `duration` set) or in progress (parts only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub msn: u64,
    pub uri: Option<String>,
    pub duration: Option<Duration>,
    pub discontinuity: bool,
    pub program_date_time: Option<SystemTime>,
    /// The init segment (EXT-X-MAP) in force.
    pub map: Option<String>,
    pub parts: Vec<Part>,
}

impl Segment {
    pub fn is_complete(&self) -> bool {
        self.uri.is_some()
    }

    /// Its duration, or its parts' so far while in progress.
    pub fn media_duration(&self) -> Duration {
        self.duration
            .unwrap_or_else(|| self.parts.iter().map(|p| p.duration).sum())
    }
}

/// EXT-X-PRELOAD-HINT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreloadHint {
    /// PART or MAP.
    pub kind: String,
    pub uri: String,
}

/// EXT-X-RENDITION-REPORT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionReport {
    pub uri: String,
    pub last_msn: Option<u64>,
    pub last_part: Option<u64>,
}

/// A media playlist.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MediaPlaylist {
    pub version: Option<u32>,
    pub target_duration: Duration,
    pub part_target: Option<Duration>,
    pub server_control: ServerControl,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    /// Segments a delta update left out (EXT-X-SKIP); 0 once merged, or for a full one.
    pub skipped: u64,
    pub segments: Vec<Segment>,
    pub preload_hint: Option<PreloadHint>,
    pub rendition_reports: Vec<RenditionReport>,
    pub ended: bool,
}

impl MediaPlaylist {
    /// The last listed part as (msn, part index), in progress or not.
    pub fn last_part(&self) -> Option<(u64, u64)> {
        self.segments
            .iter()
            .rev()
            .find_map(|s| (!s.parts.is_empty()).then(|| (s.msn, s.parts.len() as u64 - 1)))
    }

    /// The next part a blocking reload should ask for: after the last listed part (or
    /// segment, when the playlist has no parts).
    pub fn next_part(&self) -> Option<(u64, u64)> {
        let last = self.segments.last()?;
        if last.is_complete() {
            Some((last.msn + 1, 0))
        } else {
            Some((last.msn, last.parts.len() as u64))
        }
    }

    /// The segment with `msn`.
    pub fn segment(&self, msn: u64) -> Option<&Segment> {
        let first = self.segments.first()?.msn;
        self.segments
            .get(usize::try_from(msn.checked_sub(first)?).ok()?)
            .filter(|s| s.msn == msn)
    }

    /// Merges a delta update (a playlist with EXT-X-SKIP) into this, the last full view:
    /// the skipped segments are taken from here, and must all be here.
    pub fn merge_delta(&self, mut delta: MediaPlaylist) -> Result<MediaPlaylist, PlaylistError> {
        if delta.skipped == 0 {
            return Ok(delta);
        }
        let from = delta.media_sequence;
        let to = from + delta.skipped;
        let mut kept = Vec::with_capacity(delta.skipped as usize + delta.segments.len());
        for msn in from..to {
            let s = self.segment(msn).filter(|s| s.is_complete()).ok_or_else(|| {
                PlaylistError::BadDelta(format!(
                    "segment {msn} was skipped but is not in the last full playlist (which has {:?})",
                    self.segments.first().map(|f| f.msn)..self.segments.last().map(|l| l.msn + 1)
                ))
            })?;
            kept.push(s.clone());
        }
        // Discontinuities after the skip keep their flag; the first kept segment's map and
        // date are the old playlist's own.
        kept.append(&mut delta.segments);
        delta.segments = kept;
        delta.skipped = 0;
        Ok(delta)
    }

    /// The media duration listed from segment `msn` on (its parts so far if in progress).
    pub fn duration_from(&self, msn: u64) -> Duration {
        self.segments
            .iter()
            .filter(|s| s.msn >= msn)
            .map(Segment::media_duration)
            .sum()
    }
}

/// The lines of a playlist after its `#EXTM3U`, numbered from 1, blank ones dropped.
fn lines<'a>(
    text: &'a str,
    limits: &Limits,
) -> Result<impl Iterator<Item = (usize, &'a str)>, PlaylistError> {
    if text.len() > limits.max_bytes {
        return Err(PlaylistError::TooLarge {
            len: text.len(),
            max: limits.max_bytes,
        });
    }
    let mut it = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end()));
    match it.next() {
        Some((_, first)) if first.trim_start_matches('\u{feff}') == "#EXTM3U" => {}
        _ => return Err(PlaylistError::NotM3u),
    }
    Ok(it.filter(|(_, l)| !l.is_empty()))
}

fn number(line: usize, tag: &'static str, v: &str) -> Result<u64, PlaylistError> {
    v.trim()
        .parse::<u64>()
        .map_err(|_| bad(line, tag, format!("{:?} is not a whole number", clip(v))))
}

/// At most 40 characters of `s`, for messages.
fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Parses a multivariant playlist.
pub fn parse_multivariant(text: &str, limits: &Limits) -> Result<Multivariant, PlaylistError> {
    let mut out = Multivariant::default();
    let mut pending: Option<(usize, Variant)> = None;
    for (n, line) in lines(text, limits)? {
        if let Some(rest) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            const TAG: &str = "EXT-X-STREAM-INF";
            let a = Attrs::parse(rest).map_err(|e| bad(n, TAG, e.to_string()))?;
            let bandwidth = a
                .int("BANDWIDTH")
                .map_err(|e| bad(n, TAG, e.to_string()))?
                .ok_or_else(|| bad(n, TAG, "no BANDWIDTH"))?;
            let resolution = match a.get("RESOLUTION") {
                None => None,
                Some(r) => Some(
                    r.split_once('x')
                        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
                        .ok_or_else(|| bad(n, TAG, format!("RESOLUTION {:?} is not WxH", clip(r))))?,
                ),
            };
            let frame_rate = match a.get("FRAME-RATE") {
                None => None,
                Some(f) => Some(
                    f.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite() && *f > 0.0 && *f <= 1000.0)
                        .ok_or_else(|| bad(n, TAG, format!("FRAME-RATE {:?}", clip(f))))?,
                ),
            };
            pending = Some((
                n,
                Variant {
                    uri: String::new(),
                    bandwidth,
                    average_bandwidth: a
                        .int("AVERAGE-BANDWIDTH")
                        .map_err(|e| bad(n, TAG, e.to_string()))?,
                    codecs: a.quoted("CODECS").map(str::to_string),
                    resolution,
                    frame_rate,
                    audio: a.quoted("AUDIO").map(str::to_string),
                },
            ));
        } else if let Some(rest) = line.strip_prefix("#EXT-X-MEDIA:") {
            const TAG: &str = "EXT-X-MEDIA";
            let a = Attrs::parse(rest).map_err(|e| bad(n, TAG, e.to_string()))?;
            let need = |k: &'static str| {
                a.get(k)
                    .map(str::to_string)
                    .ok_or_else(|| bad(n, TAG, format!("no {k}")))
            };
            out.media.push(Media {
                kind: need("TYPE")?,
                group: need("GROUP-ID")?,
                name: need("NAME")?,
                uri: a.quoted("URI").map(str::to_string),
                default: a.get("DEFAULT") == Some("YES"),
            });
            if out.media.len() > limits.max_variants {
                return Err(PlaylistError::TooMany {
                    what: "renditions",
                    max: limits.max_variants,
                });
            }
        } else if line == "#EXT-X-INDEPENDENT-SEGMENTS" {
            out.independent_segments = true;
        } else if line.starts_with("#EXTINF") || line.starts_with("#EXT-X-TARGETDURATION") {
            return Err(bad(
                n,
                "EXTINF",
                "a media playlist's tag in a multivariant playlist",
            ));
        } else if !line.starts_with('#') {
            let Some((_, mut v)) = pending.take() else {
                return Err(PlaylistError::UriWithoutInf { line: n });
            };
            v.uri = line.trim().to_string();
            out.variants.push(v);
            if out.variants.len() > limits.max_variants {
                return Err(PlaylistError::TooMany {
                    what: "variants",
                    max: limits.max_variants,
                });
            }
        }
    }
    if let Some((n, _)) = pending {
        return Err(bad(n, "EXT-X-STREAM-INF", "no URI line follows"));
    }
    if out.variants.is_empty() {
        return Err(PlaylistError::Missing("EXT-X-STREAM-INF (no variants)"));
    }
    Ok(out)
}

/// Parses a media playlist (a full one, or a delta update to merge with
/// [`MediaPlaylist::merge_delta`]).
pub fn parse_media(text: &str, limits: &Limits) -> Result<MediaPlaylist, PlaylistError> {
    let mut out = MediaPlaylist::default();
    let mut target = None;
    // What the next segment collects until its URI line.
    let mut inf: Option<Duration> = None;
    let mut discontinuity = false;
    let mut pdt: Option<SystemTime> = None;
    let mut parts: Vec<Part> = Vec::new();
    let mut map: Option<String> = None;
    let mut seen_segment = false;
    let mut msn: Option<u64> = None;
    for (n, line) in lines(text, limits)? {
        let Some(tag) = line.strip_prefix('#') else {
            let Some(duration) = inf.take() else {
                return Err(PlaylistError::UriWithoutInf { line: n });
            };
            let next = *msn.get_or_insert(out.media_sequence + out.skipped);
            out.segments.push(Segment {
                msn: next,
                uri: Some(line.trim().to_string()),
                duration: Some(duration),
                discontinuity: std::mem::take(&mut discontinuity),
                program_date_time: pdt.take(),
                map: map.clone(),
                parts: std::mem::take(&mut parts),
            });
            msn = Some(next + 1);
            seen_segment = true;
            if out.segments.len() > limits.max_segments {
                return Err(PlaylistError::TooMany {
                    what: "segments",
                    max: limits.max_segments,
                });
            }
            continue;
        };
        let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
        match name {
            "EXTINF" => {
                let d = value.split(',').next().unwrap_or("");
                inf = Some(seconds(d).ok_or_else(|| bad(n, "EXTINF", format!("duration {:?}", clip(d))))?);
            }
            "EXT-X-VERSION" => {
                out.version = Some(
                    u32::try_from(number(n, "EXT-X-VERSION", value)?)
                        .map_err(|_| bad(n, "EXT-X-VERSION", "too large"))?,
                )
            }
            "EXT-X-TARGETDURATION" => {
                let t = number(n, "EXT-X-TARGETDURATION", value)?;
                if t == 0 || t > 3600 {
                    return Err(bad(
                        n,
                        "EXT-X-TARGETDURATION",
                        format!("{t} s is outside 1..=3600"),
                    ));
                }
                target = Some(Duration::from_secs(t));
            }
            "EXT-X-PART-INF" => {
                let a = Attrs::parse(value).map_err(|e| bad(n, "EXT-X-PART-INF", e.to_string()))?;
                out.part_target = Some(
                    a.get("PART-TARGET")
                        .and_then(seconds)
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| bad(n, "EXT-X-PART-INF", "no usable PART-TARGET"))?,
                );
            }
            "EXT-X-SERVER-CONTROL" => {
                let a = Attrs::parse(value).map_err(|e| bad(n, "EXT-X-SERVER-CONTROL", e.to_string()))?;
                let dur = |k: &str| -> Result<Option<Duration>, PlaylistError> {
                    a.get(k)
                        .map(|v| {
                            seconds(v)
                                .ok_or_else(|| bad(n, "EXT-X-SERVER-CONTROL", format!("{k} {:?}", clip(v))))
                        })
                        .transpose()
                };
                out.server_control = ServerControl {
                    can_block_reload: a.get("CAN-BLOCK-RELOAD") == Some("YES"),
                    can_skip_until: dur("CAN-SKIP-UNTIL")?,
                    hold_back: dur("HOLD-BACK")?,
                    part_hold_back: dur("PART-HOLD-BACK")?,
                };
            }
            "EXT-X-MEDIA-SEQUENCE" => {
                if seen_segment || !parts.is_empty() {
                    return Err(bad(n, "EXT-X-MEDIA-SEQUENCE", "after the first segment"));
                }
                out.media_sequence = number(n, "EXT-X-MEDIA-SEQUENCE", value)?;
                if out.media_sequence > u64::MAX / 2 {
                    return Err(bad(n, "EXT-X-MEDIA-SEQUENCE", "too large"));
                }
            }
            "EXT-X-DISCONTINUITY-SEQUENCE" => {
                out.discontinuity_sequence = number(n, "EXT-X-DISCONTINUITY-SEQUENCE", value)?;
            }
            "EXT-X-SKIP" => {
                let a = Attrs::parse(value).map_err(|e| bad(n, "EXT-X-SKIP", e.to_string()))?;
                let skipped = a
                    .int("SKIPPED-SEGMENTS")
                    .map_err(|e| bad(n, "EXT-X-SKIP", e.to_string()))?
                    .ok_or_else(|| bad(n, "EXT-X-SKIP", "no SKIPPED-SEGMENTS"))?;
                if seen_segment || !parts.is_empty() {
                    return Err(bad(n, "EXT-X-SKIP", "after the first segment"));
                }
                if skipped > limits.max_segments as u64 {
                    return Err(PlaylistError::TooMany {
                        what: "skipped segments",
                        max: limits.max_segments,
                    });
                }
                out.skipped = skipped;
            }
            "EXT-X-MAP" => {
                let a = Attrs::parse(value).map_err(|e| bad(n, "EXT-X-MAP", e.to_string()))?;
                map = Some(
                    a.quoted("URI")
                        .ok_or_else(|| bad(n, "EXT-X-MAP", "no URI"))?
                        .to_string(),
                );
            }
            "EXT-X-DISCONTINUITY" => discontinuity = true,
            "EXT-X-PROGRAM-DATE-TIME" => {
                pdt = Some(parse_date_time(value).ok_or_else(|| {
                    bad(
                        n,
                        "EXT-X-PROGRAM-DATE-TIME",
                        format!("{:?} is not a date-time", clip(value)),
                    )
                })?);
            }
            "EXT-X-PART" => {
                let a = Attrs::parse(value).map_err(|e| bad(n, "EXT-X-PART", e.to_string()))?;
                let duration = a
                    .get("DURATION")
                    .and_then(seconds)
                    .ok_or_else(|| bad(n, "EXT-X-PART", "no usable DURATION"))?;
                let uri = a
                    .quoted("URI")
                    .ok_or_else(|| bad(n, "EXT-X-PART", "no URI"))?
                    .to_string();
                parts.push(Part {
                    duration,
                    uri,
                    independent: a.get("INDEPENDENT") == Some("YES"),
                    gap: a.get("GAP") == Some("YES"),
                });
                if parts.len() > limits.max_parts_per_segment {
                    return Err(PlaylistError::TooMany {
                        what: "parts in a segment",
                        max: limits.max_parts_per_segment,
                    });
                }
            }
            "EXT-X-PRELOAD-HINT" => {
                let a = Attrs::parse(value).map_err(|e| bad(n, "EXT-X-PRELOAD-HINT", e.to_string()))?;
                out.preload_hint = Some(PreloadHint {
                    kind: a
                        .get("TYPE")
                        .ok_or_else(|| bad(n, "EXT-X-PRELOAD-HINT", "no TYPE"))?
                        .to_string(),
                    uri: a
                        .quoted("URI")
                        .ok_or_else(|| bad(n, "EXT-X-PRELOAD-HINT", "no URI"))?
                        .to_string(),
                });
            }
            "EXT-X-RENDITION-REPORT" => {
                let a = Attrs::parse(value).map_err(|e| bad(n, "EXT-X-RENDITION-REPORT", e.to_string()))?;
                let int = |k| {
                    a.int(k)
                        .map_err(|e| bad(n, "EXT-X-RENDITION-REPORT", e.to_string()))
                };
                out.rendition_reports.push(RenditionReport {
                    uri: a
                        .quoted("URI")
                        .ok_or_else(|| bad(n, "EXT-X-RENDITION-REPORT", "no URI"))?
                        .to_string(),
                    last_msn: int("LAST-MSN")?,
                    last_part: int("LAST-PART")?,
                });
                if out.rendition_reports.len() > limits.max_rendition_reports {
                    return Err(PlaylistError::TooMany {
                        what: "rendition reports",
                        max: limits.max_rendition_reports,
                    });
                }
            }
            "EXT-X-ENDLIST" => out.ended = true,
            "EXT-X-STREAM-INF" => {
                return Err(bad(
                    n,
                    "EXT-X-STREAM-INF",
                    "a multivariant playlist's tag in a media playlist",
                ));
            }
            // Comments and tags a player may ignore (EXT-X-INDEPENDENT-SEGMENTS, EXT-X-GAP,
            // EXT-X-BITRATE, ...).
            _ => {}
        }
    }
    out.target_duration = target.ok_or(PlaylistError::Missing("EXT-X-TARGETDURATION"))?;
    if inf.is_some() {
        return Err(bad(0, "EXTINF", "the playlist ends before its URI line"));
    }
    if !parts.is_empty() || discontinuity || pdt.is_some() {
        // The segment in progress: its parts so far.
        let next = msn.unwrap_or(out.media_sequence + out.skipped);
        if !parts.is_empty() {
            out.segments.push(Segment {
                msn: next,
                uri: None,
                duration: None,
                discontinuity,
                program_date_time: pdt,
                map,
                parts,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
