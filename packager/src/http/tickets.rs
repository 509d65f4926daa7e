//! Viewer tokens at the door, shared by origin and edge: the token a request carries, checked
//! against a ticketed event's keys on every request, and spliced into the playlists its
//! holder is served (players do not carry a playlist's query to the objects it lists).

use super::{Body, Reply};
use crate::token::{EventKey, verify};
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};

/// The viewer token of a request: the `token` query parameter, else a bearer token.
pub fn viewer_token<'a>(headers: &'a HeaderMap, query: &'a str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|p| p.strip_prefix("token="))
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Checks the request's token for `event` against its keys, now. The token when it is
/// valid; otherwise why not, for a 403.
pub fn admit(keys: &[EventKey], event: &str, headers: &HeaderMap, query: &str) -> Result<String, String> {
    let Some(t) = viewer_token(headers, query) else {
        return Err("this event is ticketed: send a viewer token (?token= or Authorization: Bearer)".into());
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    verify(t, keys, event, now).map_err(|e| e.to_string())?;
    Ok(t.to_string())
}

/// A playlist answer with `token` spliced into every URI it names, kept out of shared
/// caches; any other answer unchanged.
pub fn with_token(mut r: Reply, token: &str) -> Reply {
    let is_playlist = r
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/vnd.apple.mpegurl"));
    if !is_playlist || r.status() != StatusCode::OK {
        return r;
    }
    let Body::Chunks(chunks) = std::mem::replace(r.body_mut(), Body::empty()) else {
        return r;
    };
    let text: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    let spliced = crate::hls::write::splice_query(&String::from_utf8_lossy(&text), &format!("token={token}"));
    *r.body_mut() = Body::full(spliced);
    r.headers_mut().remove(header::CONTENT_LENGTH);
    if let Some(cc) = r
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
    {
        if let Ok(v) = HeaderValue::from_str(&cc.replace("public", "private")) {
            r.headers_mut().insert(header::CACHE_CONTROL, v);
        }
    }
    r
}
