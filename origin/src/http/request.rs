//! What a viewer's request asks for: the path against DESIGN's URL table, the LL-HLS query
//! and a byte range, parsed without touching any state (fuzzed as `http_request`).

use popcast_packager::http::request::{self as playback, check_query};
pub use popcast_packager::http::request::{Range, RequestError, range};
use popcast_packager::naming::{PlaybackPath, check_name};
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
    /// `/publish/{event}`: the creator's publish page (camera and microphone over WHIP).
    Publish { event: String },
    /// `/player.js`: the web player bundle.
    Player,
    /// `/healthz`
    Health,
    /// `/dashboard`: the operator dashboard (a static page; its data needs the operator
    /// token).
    Dashboard,
    /// `/calendar.ics`
    Calendar,
    /// `/play/{event}?region=&format=json`: which edge to watch from.
    Play {
        event: String,
        /// The viewer's region, preferred when an edge there holds the event.
        region: Option<String>,
        /// Answer with JSON (primary and fallbacks) rather than a redirect.
        json: bool,
    },
}

/// The query of `/play/{event}`: `region` (a URL-safe name), `format` (`json` or
/// `redirect`); other parameters (the token, CMCD) are left to others.
fn play_query(query: &str) -> Result<(Option<String>, bool), RequestError> {
    let mut region = None;
    let mut json = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "region" => {
                check_name("region", v).map_err(|e| RequestError::BadQuery(e.to_string()))?;
                region = Some(v.to_string());
            }
            "format" => {
                json = match v {
                    "json" => true,
                    "redirect" => false,
                    other => {
                        return Err(RequestError::BadQuery(format!(
                            "format {:?}: expected json or redirect",
                            other.chars().take(32).collect::<String>()
                        )));
                    }
                }
            }
            _ => {}
        }
    }
    Ok((region, json))
}

/// Routes `path` and `query` (without `?`). Only playlists read the query; on other
/// objects it is ignored, as CDNs do, except that its length is always bounded.
pub fn route(path: &str, query: &str, max_query_bytes: usize) -> Result<Route, RequestError> {
    check_query(query, max_query_bytes)?;
    match path {
        "/healthz" => return Ok(Route::Health),
        "/calendar.ics" => return Ok(Route::Calendar),
        "/dashboard" => return Ok(Route::Dashboard),
        "/player.js" => return Ok(Route::Player),
        _ => {}
    }
    if let Some(event) = path.strip_prefix("/play/") {
        check_name("event", event)?;
        let (region, json) = play_query(query)?;
        return Ok(Route::Play {
            event: event.to_string(),
            region,
            json,
        });
    }
    if let Some(event) = path.strip_prefix("/publish/") {
        check_name("event", event)?;
        return Ok(Route::Publish {
            event: event.to_string(),
        });
    }
    if let Some(event) = path.strip_prefix("/embed/") {
        check_name("event", event)?;
        return Ok(Route::Embed {
            event: event.to_string(),
        });
    }
    let (path, query) = playback::playback(path, query)?;
    Ok(Route::Playback { path, query })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn play_reads_region_and_format_and_names_what_is_wrong() {
        assert_eq!(
            route("/play/demo", "region=eu-west&token=abc&format=json", 256),
            Ok(Route::Play {
                event: "demo".into(),
                region: Some("eu-west".into()),
                json: true
            })
        );
        assert_eq!(
            route("/play/demo", "", 64),
            Ok(Route::Play {
                event: "demo".into(),
                region: None,
                json: false
            })
        );
        let e = route("/play/demo", "region=EU%2F1", 64).unwrap_err();
        assert!(
            matches!(&e, RequestError::BadQuery(m) if m.contains("region")),
            "{e}"
        );
        let e = route("/play/demo", "format=xml", 64).unwrap_err();
        assert!(
            matches!(&e, RequestError::BadQuery(m) if m.contains("format")),
            "{e}"
        );
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
        assert_eq!(
            route("/publish/demo", "", 64),
            Ok(Route::Publish { event: "demo".into() })
        );
        assert!(matches!(
            route("/publish/a/b", "", 64),
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
            "/play/",
            "/play/demo/master.m3u8",
            "/live/demo/source/x/index.m3u8",
        ] {
            assert!(
                matches!(route(bad, "", 64), Err(RequestError::NotFound(_))),
                "{bad}"
            );
        }
    }
}
