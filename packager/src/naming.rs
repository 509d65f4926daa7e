//! Object names and playback URL paths (DESIGN.md's URL table), parsed and formatted in one
//! place so that origin, edge and player agree byte for byte.
//!
//! ```text
//! /live/{event}/master.m3u8                    multivariant playlist
//! /live/{event}/{rendition}/index.m3u8         media playlist
//! /live/{event}/{rendition}/init.mp4           CMAF header (the newest)
//! /live/{event}/{rendition}/init-{msn}.mp4     CMAF header of the segments from msn on
//! /live/{event}/{rendition}/{msn}.m4s          segment
//! /live/{event}/{rendition}/{msn}.{part}.m4s   part
//! /live/{event}/manifest.mpd                   LL-DASH
//! ```

use std::fmt;

/// Longest event id or rendition name.
pub const MAX_NAME_LEN: usize = 64;

/// Why a path is not one of ours. Messages name the offending piece, never echo more than
/// a bounded prefix of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("not a playback path (expected /live/...)")]
    NotPlayback,
    #[error("{what}: {reason}")]
    BadName { what: &'static str, reason: String },
    #[error("unknown object {0:?}")]
    UnknownObject(String),
    #[error("{what} {value:?} is not a decimal number without leading zeros")]
    BadNumber { what: &'static str, value: String },
}

fn shorten(s: &str) -> String {
    s.chars().take(MAX_NAME_LEN + 8).collect()
}

/// Checks an event id or rendition name: 1–64 of `a-z 0-9 - _`, starting with a letter or
/// digit. Keeps names safe in URLs, file names and metric labels.
pub fn check_name(what: &'static str, s: &str) -> Result<(), NameError> {
    let bad = |reason: String| Err(NameError::BadName { what, reason });
    if s.is_empty() {
        return bad("empty".into());
    }
    if s.len() > MAX_NAME_LEN {
        return bad(format!("{} bytes, at most {MAX_NAME_LEN}", s.len()));
    }
    if !s.as_bytes()[0].is_ascii_alphanumeric() {
        return bad(format!("{:?} must start with a letter or digit", shorten(s)));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return bad(format!("{:?} contains {c:?} (allowed: a-z 0-9 - _)", shorten(s)));
    }
    Ok(())
}

/// An object of one rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RenditionObject {
    /// `index.m3u8`
    Playlist,
    /// `init.mp4`: the newest CMAF header (revalidated; tools and old links).
    Init,
    /// `init-{msn}.mp4`: the CMAF header of the segments from `msn` on (a session's source
    /// or slate may change it at a discontinuity; each version has its own immutable URL).
    InitAt { msn: u64 },
    /// `{msn}.m4s`
    Segment { msn: u64 },
    /// `{msn}.{part}.m4s`
    Part { msn: u64, part: u32 },
}

/// What a playback path names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Object {
    /// `master.m3u8`
    Multivariant,
    /// `manifest.mpd`
    DashManifest,
    Rendition {
        rendition: String,
        object: RenditionObject,
    },
}

/// A parsed playback path: `/live/{event}/...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlaybackPath {
    pub event: String,
    pub object: Object,
}

fn number<T: std::str::FromStr>(what: &'static str, s: &str) -> Result<T, NameError> {
    let bad = || NameError::BadNumber {
        what,
        value: shorten(s),
    };
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return Err(bad());
    }
    s.parse().map_err(|_| bad())
}

impl RenditionObject {
    /// Parses the last path segment (`index.m3u8`, `init.mp4`, `12.m4s`, `12.3.m4s`).
    pub fn parse(file: &str) -> Result<Self, NameError> {
        match file {
            "index.m3u8" => return Ok(Self::Playlist),
            "init.mp4" => return Ok(Self::Init),
            _ => {}
        }
        if let Some(msn) = file.strip_prefix("init-").and_then(|f| f.strip_suffix(".mp4")) {
            return Ok(Self::InitAt {
                msn: number("msn", msn)?,
            });
        }
        let stem = file
            .strip_suffix(".m4s")
            .ok_or_else(|| NameError::UnknownObject(shorten(file)))?;
        match stem.split_once('.') {
            None => Ok(Self::Segment {
                msn: number("msn", stem)?,
            }),
            Some((msn, part)) => Ok(Self::Part {
                msn: number("msn", msn)?,
                part: number("part", part)?,
            }),
        }
    }
}

impl fmt::Display for RenditionObject {
    /// The object's file name, relative to its rendition's playlist.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Playlist => f.write_str("index.m3u8"),
            Self::Init => f.write_str("init.mp4"),
            Self::InitAt { msn } => write!(f, "init-{msn}.mp4"),
            Self::Segment { msn } => write!(f, "{msn}.m4s"),
            Self::Part { msn, part } => write!(f, "{msn}.{part}.m4s"),
        }
    }
}

impl PlaybackPath {
    /// Parses a request path (without query). Rejects anything not in the URL table:
    /// extra or empty segments, `..`, percent-encoding, upper case, leading zeros.
    pub fn parse(path: &str) -> Result<Self, NameError> {
        let rest = path.strip_prefix("/live/").ok_or(NameError::NotPlayback)?;
        let parts: Vec<&str> = rest.splitn(4, '/').collect();
        let (event, object) = match parts.as_slice() {
            [event, "master.m3u8"] => (*event, Object::Multivariant),
            [event, "manifest.mpd"] => (*event, Object::DashManifest),
            [event, rendition, file] => {
                check_name("rendition", rendition)?;
                (
                    *event,
                    Object::Rendition {
                        rendition: (*rendition).to_string(),
                        object: RenditionObject::parse(file)?,
                    },
                )
            }
            [_, file] => return Err(NameError::UnknownObject(shorten(file))),
            _ => return Err(NameError::NotPlayback),
        };
        check_name("event", event)?;
        Ok(Self {
            event: event.to_string(),
            object,
        })
    }
}

impl fmt::Display for PlaybackPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/live/{}/", self.event)?;
        match &self.object {
            Object::Multivariant => f.write_str("master.m3u8"),
            Object::DashManifest => f.write_str("manifest.mpd"),
            Object::Rendition { rendition, object } => write!(f, "{rendition}/{object}"),
        }
    }
}

/// URI of a rendition's media playlist relative to the multivariant playlist.
pub fn media_playlist_uri(rendition: &str) -> String {
    format!("{rendition}/{}", RenditionObject::Playlist)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_in_the_table_round_trips() {
        for p in [
            "/live/demo/master.m3u8",
            "/live/demo/manifest.mpd",
            "/live/demo/video/index.m3u8",
            "/live/demo/video/init.mp4",
            "/live/demo/video/init-1790000000.mp4",
            "/live/demo/720p/0.m4s",
            "/live/demo/audio/18446744073709551615.m4s",
            "/live/e-1_x/audio/12.0.m4s",
            "/live/demo/audio/12.4294967295.m4s",
        ] {
            let parsed = PlaybackPath::parse(p).unwrap_or_else(|e| panic!("{p}: {e}"));
            assert_eq!(parsed.to_string(), p);
        }
        assert_eq!(
            PlaybackPath::parse("/live/demo/video/12.3.m4s").unwrap().object,
            Object::Rendition {
                rendition: "video".into(),
                object: RenditionObject::Part { msn: 12, part: 3 }
            }
        );
    }

    #[test]
    fn garbage_paths_are_refused_with_the_reason() {
        for (p, why) in [
            ("/hls/demo/master.m3u8", "playback"),
            ("/live/demo", "playback"),
            ("/live/../master.m3u8", "event"),
            ("/live/demo/../../etc/passwd", "playback"),
            ("/live/demo/../passwd", "rendition"),
            ("/live/Demo/master.m3u8", "event"),
            ("/live/demo/video/01.m4s", "msn"),
            ("/live/demo/video/1.01.m4s", "part"),
            ("/live/demo/video/+1.m4s", "msn"),
            ("/live/demo/video/1.m4s/x", "playback"),
            ("/live/demo/video/1..m4s", "part"),
            ("/live/demo/video/18446744073709551616.m4s", "msn"),
            ("/live/demo/video/1.4294967296.m4s", "part"),
            ("/live/demo/video/segment.ts", "unknown"),
            ("/live/demo/video/init-01.mp4", "msn"),
            ("/live/demo/video/init-.mp4", "msn"),
            ("/live/demo/video/init-x.mp4", "msn"),
            ("/live/demo/index.m3u8", "unknown"),
            ("/live//video/index.m3u8", "event"),
            ("/live/demo/vid%2Feo/index.m3u8", "rendition"),
        ] {
            let err = PlaybackPath::parse(p).expect_err(p).to_string();
            assert!(err.to_lowercase().contains(why), "{p}: {err}");
        }
        let long = format!("/live/{}/master.m3u8", "a".repeat(65));
        assert!(
            PlaybackPath::parse(&long)
                .unwrap_err()
                .to_string()
                .contains("at most 64")
        );
    }
}
