//! The web player bundle (`player-sdk/web/dist/player.js`), served at `/player.js` by origin and edges.

use super::{Body, Reply, reply};
use bytes::Bytes;
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use std::sync::OnceLock;

/// `<popcast-player>` with hls.js inside: one ES module, built by `make player` from
/// `player-sdk/web/src` (committed, and checked against its sources by `make test`).
pub const PLAYER_JS: &[u8] = include_bytes!("../../../player-sdk/web/dist/player.js");

fn etag() -> &'static str {
    static ETAG: OnceLock<String> = OnceLock::new();
    ETAG.get_or_init(|| format!("\"p{:016x}\"", super::fnv(&[PLAYER_JS])))
}

/// `GET /player.js`: the bundle, revalidated by ETag (304 when the client has it) and
/// cached for five minutes, so that a new release reaches embeds quickly.
pub fn serve(headers: &HeaderMap) -> Reply {
    let tag = etag();
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut r = if fresh {
        reply(
            StatusCode::NOT_MODIFIED,
            "text/javascript; charset=utf-8",
            Body::empty(),
        )
    } else {
        reply(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            Body::full(Bytes::from_static(PLAYER_JS)),
        )
    };
    let h = r.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_is_an_es_module_defining_the_element_and_revalidates() {
        let text = std::str::from_utf8(PLAYER_JS).expect("utf-8");
        assert!(
            text.starts_with("/* @popcast/player "),
            "the banner names the package"
        );
        assert!(text.contains("popcast-player"));
        assert!(text.contains("export{"), "an ES module");
        let r = serve(&HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        let tag = r.headers()[header::ETAG].clone();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, tag);
        assert_eq!(serve(&h).status(), StatusCode::NOT_MODIFIED);
    }
}
