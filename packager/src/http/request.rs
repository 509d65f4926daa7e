//! What a viewer asks of a playback URL: the path against DESIGN's URL table, the LL-HLS
//! query and a byte range, parsed without touching any state (fuzzed as `http_request`).

use crate::naming::{NameError, Object, PlaybackPath, RenditionObject};
use crate::store::PlaylistRequest;

/// Why a request is not a playback request we can answer.
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

/// Checks the query's length against `max_query_bytes`.
pub fn check_query(query: &str, max_query_bytes: usize) -> Result<(), RequestError> {
    if query.len() > max_query_bytes {
        return Err(RequestError::QueryTooLong {
            len: query.len(),
            max: max_query_bytes,
        });
    }
    Ok(())
}

/// Parses a playback path and, for media playlists, its LL-HLS query (without `?`). Other
/// objects ignore the query, as CDNs do; its length is bounded by [`check_query`] first.
pub fn playback(path: &str, query: &str) -> Result<(PlaybackPath, Option<PlaylistRequest>), RequestError> {
    let path = PlaybackPath::parse(path)?;
    let query = match &path.object {
        Object::Rendition {
            object: RenditionObject::Playlist,
            ..
        } => Some(PlaylistRequest::parse_query(query).map_err(|e| RequestError::BadQuery(e.to_string()))?),
        _ => None,
    };
    Ok((path, query))
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
}
