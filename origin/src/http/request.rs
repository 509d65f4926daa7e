//! What a viewer's request asks for: the path against DESIGN's URL table, the LL-HLS query
//! and a byte range, parsed without touching any state (fuzzed as `http_request`).

use popcast_packager::naming::{NameError, PlaybackPath, check_name};
use popcast_packager::store::PlaylistRequest;

/// A request the origin knows how to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/live/...`, with the playlist query when the object is a media playlist.
    Playback {
        path: PlaybackPath,
        query: Option<PlaylistRequest>,
    },
    /// `/embed/{event}`
    Embed { event: String },
    /// `/assets/hls.min.js`
    HlsJs,
    /// `/healthz`
    Health,
}

/// Why a request gets no route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// 404: not in the URL table.
    #[error("not found: {0}")]
    NotFound(String),
    /// 400: in the table, but the query is malformed.
    #[error("bad request: {0}")]
    BadQuery(String),
    /// 414: the query is longer than the configured limit.
    #[error("query of {len} bytes is over the {max}-byte limit")]
    QueryTooLong { len: usize, max: usize },
}

impl From<NameError> for RequestError {
    fn from(e: NameError) -> Self {
        Self::NotFound(e.to_string())
    }
}

/// Routes `path` and `query` (without `?`). Only playlists read the query; on other
/// objects it is ignored, as CDNs do, except that its length is always bounded.
pub fn route(path: &str, query: &str, max_query_bytes: usize) -> Result<Route, RequestError> {
    if query.len() > max_query_bytes {
        return Err(RequestError::QueryTooLong {
            len: query.len(),
            max: max_query_bytes,
        });
    }
    match path {
        "/healthz" => return Ok(Route::Health),
        "/assets/hls.min.js" => return Ok(Route::HlsJs),
        _ => {}
    }
    if let Some(event) = path.strip_prefix("/embed/") {
        check_name("event", event)?;
        return Ok(Route::Embed {
            event: event.to_string(),
        });
    }
    let path = PlaybackPath::parse(path)?;
    let query = match &path.object {
        popcast_packager::naming::Object::Rendition {
            object: popcast_packager::naming::RenditionObject::Playlist,
            ..
        } => Some(PlaylistRequest::parse_query(query).map_err(|e| RequestError::BadQuery(e.to_string()))?),
        _ => None,
    };
    Ok(Route::Playback { path, query })
}

/// A `Range` header's meaning for an object of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// No usable range: serve the whole object (also for multiple ranges, which we do not
    /// serve as multipart).
    Whole,
    /// Bytes `start..=end`.
    Bytes { start: u64, end: u64 },
    /// 416.
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n` against an object of `len` bytes. Garbage is
/// ignored (RFC 9110 §14.2: a server may ignore a Range it does not understand).
pub fn range(header: &str, len: u64) -> Range {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Range::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || s.len() > 19 || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (a.trim().is_empty(), num(a), num(b)) {
        // bytes=-n: the last n bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                Range::Unsatisfiable
            } else {
                Range::Bytes {
                    start: len.saturating_sub(n),
                    end: len - 1,
                }
            }
        }
        (false, Some(start), end) if b.trim().is_empty() || end.is_some() => {
            if start >= len {
                return Range::Unsatisfiable;
            }
            let end = end.map_or(len - 1, |e| e.min(len - 1));
            if end < start {
                Range::Whole
            } else {
                Range::Bytes { start, end }
            }
        }
        _ => Range::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(range("bytes=0-9", 100), Range::Bytes { start: 0, end: 9 });
        assert_eq!(range("bytes=90-", 100), Range::Bytes { start: 90, end: 99 });
        assert_eq!(range("bytes=-10", 100), Range::Bytes { start: 90, end: 99 });
        assert_eq!(range("bytes=-1000", 100), Range::Bytes { start: 0, end: 99 });
        assert_eq!(range("bytes=50-1000", 100), Range::Bytes { start: 50, end: 99 });
        assert_eq!(range("bytes=100-", 100), Range::Unsatisfiable);
        assert_eq!(range("bytes=-0", 100), Range::Unsatisfiable);
        assert_eq!(range("bytes=9-1", 100), Range::Whole);
        assert_eq!(range("bytes=0-1,5-6", 100), Range::Whole);
        assert_eq!(range("items=0-1", 100), Range::Whole);
        assert_eq!(range("bytes=x-1", 100), Range::Whole);
        assert_eq!(range("bytes=99999999999999999999-", 100), Range::Whole);
        assert_eq!(range("bytes=-", 100), Range::Whole);
    }

    #[test]
    fn routes_follow_the_url_table() {
        assert_eq!(route("/healthz", "", 64), Ok(Route::Health));
        assert_eq!(
            route("/embed/demo", "", 64),
            Ok(Route::Embed { event: "demo".into() })
        );
        assert!(matches!(
            route("/embed/../etc/passwd", "", 64),
            Err(RequestError::NotFound(_))
        ));
        assert!(matches!(route("/live/demo/source/index.m3u8", "_HLS_msn=3", 64),
            Ok(Route::Playback { query: Some(q), .. }) if q.msn == Some(3)));
        // Tokens and CMCD ride along without upsetting the LL-HLS parser.
        assert!(
            route(
                "/live/demo/source/index.m3u8",
                "_HLS_msn=3&token=abc&CMCD=br%3D3200",
                64
            )
            .is_ok()
        );
        assert!(matches!(
            route("/live/demo/source/index.m3u8", "_HLS_part=1", 64),
            Err(RequestError::BadQuery(_))
        ));
        assert!(matches!(
            route("/live/demo/source/1.m4s", &"x".repeat(65), 64),
            Err(RequestError::QueryTooLong { .. })
        ));
        for bad in [
            "/",
            "/live",
            "/live/demo",
            "/live/demo/../x/index.m3u8",
            "/etc/passwd",
            "/live/Demo/master.m3u8",
            "/live/demo/source/01.m4s",
            "/embed/",
            "/live/demo/source/x/index.m3u8",
        ] {
            assert!(
                matches!(route(bad, "", 64), Err(RequestError::NotFound(_))),
                "{bad}"
            );
        }
    }
}
