//! Renders LL-HLS playlists (draft-pantos-hls-rfc8216bis) from plain descriptions: media
//! playlists with parts, preload hints, rendition reports and delta updates, and the
//! multivariant playlist.

use crate::naming::RenditionObject;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `EXT-X-VERSION` we write: 9 is the lowest that allows EXT-X-SKIP in delta updates, and
/// covers EXT-X-PART, EXT-X-PRELOAD-HINT and EXT-X-RENDITION-REPORT.
pub const VERSION: u32 = 9;

/// One segment of a media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentLine {
    pub msn: u64,
    /// Its CMAF header's key: `init-{init}.mp4` (EXT-X-MAP).
    pub init: u64,
    /// `None` while the segment is in progress (only its parts are listed).
    pub duration: Option<Duration>,
    pub discontinuity: bool,
    pub program_date_time: SystemTime,
    /// Listed parts (empty for segments older than the part window).
    pub parts: Vec<PartLine>,
}

/// One complete part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartLine {
    /// Its number within the segment (older parts of a segment may be left out).
    pub index: u32,
    pub duration: Duration,
    pub independent: bool,
}

/// A sibling rendition's newest part, for EXT-X-RENDITION-REPORT.
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionReport {
    /// URI relative to this playlist, e.g. `../720p/index.m3u8`.
    pub uri: String,
    pub last_msn: u64,
    pub last_part: u32,
}

/// Everything a media playlist says.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    pub target_duration: u64,
    pub part_target: Duration,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    /// Segments, oldest first, starting at `media_sequence` (including skipped ones).
    pub segments: Vec<SegmentLine>,
    /// The next part (`msn`, `part`) when the stream goes on.
    pub preload_hint: Option<(u64, u32)>,
    pub reports: Vec<RenditionReport>,
    pub ended: bool,
}

impl MediaPlaylist {
    /// PART-HOLD-BACK: three part targets, as Apple recommends (the spec's minimum is two).
    pub fn part_hold_back(&self) -> Duration {
        self.part_target * 3
    }

    /// CAN-SKIP-UNTIL: six target durations, the spec's minimum.
    pub fn can_skip_until(&self) -> Duration {
        Duration::from_secs(self.target_duration * 6)
    }

    /// How many leading segments a delta update (`_HLS_skip=YES`) leaves out: complete
    /// segments that end at least CAN-SKIP-UNTIL before the end of the playlist (the Skip
    /// Boundary).
    pub fn skippable(&self) -> usize {
        // Measured to the end of the last complete segment: the conservative reading of
        // "the end of the Playlist" (parts of the segment in progress do not count).
        let total: Duration = self.segments.iter().filter_map(|s| s.duration).sum();
        let until = self.can_skip_until();
        let mut end = Duration::ZERO;
        let mut n = 0;
        for s in &self.segments {
            let Some(d) = s.duration else { break };
            end += d;
            if total.saturating_sub(end) < until {
                break;
            }
            n += 1;
        }
        n
    }

    /// Renders the playlist; with `skip`, as a delta update.
    pub fn render(&self, skip: bool) -> String {
        let skipped = if skip { self.skippable() } else { 0 };
        let mut out = String::with_capacity(256 + self.segments.len() * 96);
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:{VERSION}\n#EXT-X-TARGETDURATION:{}\n#EXT-X-PART-INF:PART-TARGET={}\n",
            self.target_duration,
            secs(self.part_target)
        );
        let _ = writeln!(
            out,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={},PART-HOLD-BACK={}",
            secs(self.can_skip_until()),
            secs(self.part_hold_back())
        );
        let _ = write!(
            out,
            "#EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
            self.media_sequence, self.discontinuity_sequence,
        );
        let listed = &self.segments[skipped.min(self.segments.len())..];
        // The header of the first listed segment (a delta update's skipped segments keep
        // the ones the client already has), then each change where it happens.
        let mut map = listed.first().or(self.segments.last()).map(|s| s.init);
        if let Some(msn) = map {
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", RenditionObject::InitAt { msn });
        }
        if skipped > 0 {
            let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
        }
        for s in listed {
            if s.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if map != Some(s.init) {
                map = Some(s.init);
                let _ = writeln!(
                    out,
                    "#EXT-X-MAP:URI=\"{}\"",
                    RenditionObject::InitAt { msn: s.init }
                );
            }
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", date_time(s.program_date_time));
            for p in &s.parts {
                let _ = write!(
                    out,
                    "#EXT-X-PART:DURATION={},URI=\"{}\"",
                    secs(p.duration),
                    RenditionObject::Part {
                        msn: s.msn,
                        part: p.index
                    }
                );
                out.push_str(if p.independent { ",INDEPENDENT=YES\n" } else { "\n" });
            }
            if let Some(d) = s.duration {
                let _ = write!(
                    out,
                    "#EXTINF:{},\n{}\n",
                    secs(d),
                    RenditionObject::Segment { msn: s.msn }
                );
            }
        }
        if let Some((msn, part)) = self.preload_hint {
            let _ = writeln!(
                out,
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
                RenditionObject::Part { msn, part }
            );
        }
        for r in &self.reports {
            let _ = writeln!(
                out,
                "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={},LAST-PART={}",
                r.uri, r.last_msn, r.last_part
            );
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }
}

/// A video variant of the multivariant playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// URI of its media playlist, relative to the multivariant playlist.
    pub uri: String,
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    /// RFC 6381 codecs of the variant and its audio group.
    pub codecs: String,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
    /// GROUP-ID of its audio renditions.
    pub audio_group: Option<String>,
}

/// An audio rendition (EXT-X-MEDIA TYPE=AUDIO).
#[derive(Debug, Clone, PartialEq)]
pub struct AudioRendition {
    pub group: String,
    pub name: String,
    pub uri: String,
    pub channels: Option<u8>,
    pub default: bool,
}

/// Renders a multivariant playlist. `independent` claims EXT-X-INDEPENDENT-SEGMENTS: every
/// segment starts with a keyframe.
pub fn multivariant(audio: &[AudioRendition], variants: &[Variant], independent: bool) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:9\n");
    if independent {
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }
    for a in audio {
        let yes_no = if a.default { "YES" } else { "NO" };
        let _ = write!(
            out,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{}\",NAME=\"{}\",DEFAULT={yes_no},AUTOSELECT=YES,URI=\"{}\"",
            a.group, a.name, a.uri
        );
        if let Some(c) = a.channels {
            let _ = write!(out, ",CHANNELS=\"{c}\"");
        }
        out.push('\n');
    }
    for v in variants {
        let _ = write!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\"",
            v.bandwidth,
            v.average_bandwidth.min(v.bandwidth),
            v.codecs
        );
        if let Some((w, h)) = v.resolution {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        if let Some(f) = v.frame_rate {
            let _ = write!(out, ",FRAME-RATE={f:.3}");
        }
        if let Some(g) = &v.audio_group {
            let _ = write!(out, ",AUDIO=\"{g}\"");
        }
        let _ = write!(out, "\n{}\n", v.uri);
    }
    out
}

/// Seconds with up to five decimals and no trailing zeros (`2`, `0.2002`, `0.19200`→`0.192`).
/// Five decimals keep 90 kHz and 48 kHz durations exact enough that parts sum to their
/// segment within 10 µs.
///
/// Rounded *down*: a playlist's times must never run ahead of the media. Five AAC frames
/// (0.1066666… s) written as 0.10667 put a part's end 3 µs past the end of its samples;
/// the browser reports the buffer's end truncated to the microsecond, so hls.js saw that
/// part as never quite buffered and fetched it again and again (hundreds of requests, a
/// 1–4 s stall) until the whole segment could be loaded instead.
pub fn secs(d: Duration) -> String {
    let units = d.as_nanos() / 10_000;
    let whole = units / 100_000;
    let frac = units % 100_000;
    if frac == 0 {
        return format!("{whole}.0");
    }
    let s = format!("{whole}.{frac:05}");
    s.trim_end_matches('0').to_string()
}

/// ISO 8601 / RFC 3339 UTC date-time with milliseconds, e.g. `2026-11-23T21:16:49.123Z`.
pub fn date_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_dates_format_exactly() {
        assert_eq!(secs(Duration::from_secs(2)), "2.0");
        assert_eq!(secs(Duration::from_micros(200_200)), "0.2002");
        assert_eq!(secs(Duration::from_millis(192)), "0.192");
        // Never rounded up past the media: five and eight AAC frames at 48 kHz.
        assert_eq!(
            secs(Duration::from_nanos(5 * 1024 * 1_000_000_000 / 48_000)),
            "0.10666"
        );
        assert_eq!(
            secs(Duration::from_nanos(8 * 1024 * 1_000_000_000 / 48_000)),
            "0.17066"
        );
        assert_eq!(secs(Duration::from_nanos(21_333_333)), "0.02133");
        assert_eq!(date_time(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            date_time(UNIX_EPOCH + Duration::from_millis(1_795_468_609_123)),
            "2026-11-23T21:16:49.123Z"
        );
        assert_eq!(
            date_time(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }
}

/// `playlist` with `param` (`name=value`, already URL-safe) added to the query of every URI
/// it names: URI lines and `URI="..."` attributes (EXT-X-MAP, EXT-X-PART, EXT-X-MEDIA,
/// EXT-X-PRELOAD-HINT, EXT-X-RENDITION-REPORT...). Players resolve relative URIs without
/// the playlist's query, so a viewer token reaches child requests only this way.
pub fn splice_query(playlist: &str, param: &str) -> String {
    let add = |uri: &str, out: &mut String| {
        out.push_str(uri);
        out.push(if uri.contains('?') { '&' } else { '?' });
        out.push_str(param);
    };
    let mut out = String::with_capacity(playlist.len() + 64);
    for line in playlist.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(b) => (
                b.strip_suffix('\r').unwrap_or(b),
                &line[b.strip_suffix('\r').unwrap_or(b).len()..],
            ),
            None => (line, ""),
        };
        if body.starts_with('#') {
            let mut rest = body;
            while let Some(i) = rest.find("URI=\"") {
                let start = i + 5;
                let Some(len) = rest[start..].find('"') else { break };
                out.push_str(&rest[..start]);
                add(&rest[start..start + len], &mut out);
                rest = &rest[start + len..];
            }
            out.push_str(rest);
        } else if body.trim().is_empty() {
            out.push_str(body);
        } else {
            add(body, &mut out);
        }
        out.push_str(end);
    }
    out
}

#[cfg(test)]
mod splice_tests {
    use super::splice_query;

    #[test]
    fn every_uri_carries_the_parameter() {
        let pl = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.0,\n4.m4s\n\
                  #EXT-X-PART:DURATION=0.2,URI=\"5.0.m4s\",INDEPENDENT=YES\n\
                  #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"5.1.m4s\"\n\
                  #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",URI=\"audio/index.m3u8?x=1\"\n\r\n";
        let out = splice_query(pl, "token=v1.abc.def");
        assert_eq!(
            out,
            "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4?token=v1.abc.def\"\n#EXTINF:2.0,\n4.m4s?token=v1.abc.def\n\
             #EXT-X-PART:DURATION=0.2,URI=\"5.0.m4s?token=v1.abc.def\",INDEPENDENT=YES\n\
             #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"5.1.m4s?token=v1.abc.def\"\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",URI=\"audio/index.m3u8?x=1&token=v1.abc.def\"\n\r\n"
        );
    }
}
