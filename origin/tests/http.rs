//! Origin HTTP with the curl CLI as the client: DESIGN's URLs with LL-HLS semantics (blocking
//! reload, parts streamed while produced), headers (Content-Type, Cache-Control, CORS, ETag),
//! HEAD, Range, HTTP/2, HTTPS, and 4xx for everything outside the URL table. The event is fed
//! in real time with the packager's fixture frames (a tiny synthetic H.264/AAC pair): what is
//! under test here is the HTTP layer, not the media, which the RTMP tests publish for real.

use popcast_config::TlsConfig;
use popcast_origin::Origin;
use popcast_origin::events::Events;
use popcast_origin::live::{LiveEvent, SourceKind};
use popcast_packager::fixtures::{audio_frame, audio_track, video_frame, video_track};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod support;
use support::{curl, self_signed};

const KEY: &[u8] = b"http-test-key-0123456789";

/// An origin on loopback with event `demo`, fed by fixture frames: the first 4 s at once,
/// then in real time (30 fps video, 48 kHz AAC) until dropped.
struct Fed {
    origin: Origin,
    stop: Arc<AtomicBool>,
    /// Runs the origin's tasks; dropped last.
    _rt: tokio::runtime::Runtime,
}

impl Drop for Fed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.origin.stop();
    }
}

fn fed(tls: Option<TlsConfig>) -> Fed {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut config = support::loopback_config();
    config.origin.tls = tls;
    let events = Arc::new(Events::new());
    let event = LiveEvent::new("demo", KEY, &config.packager);
    events.add(event.clone()).unwrap();
    let origin = rt.block_on(Origin::start(&config, events)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let feed = event.claim(SourceKind::TestSource, false).unwrap();
        feed.set_tracks(vec![video_track(), audio_track()]).unwrap();
        let started = Instant::now();
        let (mut v, mut a) = (0i64, 0i64);
        while !flag.load(Ordering::Relaxed) && v < 30 * 120 {
            // Media time of the next video frame; audio is pushed up to it.
            let t = Duration::from_millis(v as u64 * 1000 / 30);
            if t > Duration::from_secs(4) {
                let now = started.elapsed() + Duration::from_secs(4);
                if t > now {
                    std::thread::sleep(t - now);
                }
            }
            while (a - 1) * 1024 * 1000 / 48 <= v * 1000 * 1000 / 30 {
                feed.push(audio_frame(a)).unwrap();
                a += 1;
            }
            feed.push(video_frame(v, 30)).unwrap();
            v += 1;
        }
    });
    Fed {
        origin,
        stop,
        _rt: rt,
    }
}

impl Fed {
    fn url(&self, path: &str) -> String {
        let scheme = if self.origin.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.origin.http_addr.port())
    }
}

/// The media playlist once it lists parts.
fn live_playlist(fed: &Fed) -> String {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let a = curl(&[], &fed.url("/live/demo/source/index.m3u8"));
        if a.status == 200 && a.text().contains("#EXT-X-PRELOAD-HINT") && a.text().contains("#EXTINF") {
            return a.text();
        }
        assert!(Instant::now() < until, "no live playlist: {a:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `(msn, part)` of the preload hint.
fn hint(playlist: &str) -> (u64, u32) {
    let line = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT"))
        .unwrap();
    let uri = line.split("URI=\"").nth(1).unwrap().split('"').next().unwrap();
    let mut it = uri.trim_end_matches(".m4s").split('.');
    (
        it.next().unwrap().parse().unwrap(),
        it.next().unwrap().parse().unwrap(),
    )
}

#[test]
fn playback_objects_carry_the_right_headers() {
    let fed = fed(None);
    let pl = live_playlist(&fed);
    let first_seg = pl
        .lines()
        .find(|l| l.ends_with(".m4s") && !l.starts_with('#'))
        .unwrap()
        .to_string();
    for (path, ctype, cache) in [
        (
            "/live/demo/master.m3u8",
            "application/vnd.apple.mpegurl",
            "max-age=1",
        ),
        (
            "/live/demo/source/index.m3u8",
            "application/vnd.apple.mpegurl",
            "max-age=1",
        ),
        ("/live/demo/source/init.mp4", "video/mp4", "no-cache"),
        ("/live/demo/audio/init.mp4", "audio/mp4", "no-cache"),
        (
            &format!("/live/demo/source/{first_seg}"),
            "video/mp4",
            "immutable",
        ),
    ] {
        let a = curl(&[], &fed.url(path));
        assert_eq!(a.status, 200, "{path}: {a:?}");
        assert_eq!(a.header("content-type"), Some(ctype), "{path}");
        assert!(
            a.header("cache-control").unwrap().contains(cache),
            "{path}: {:?}",
            a.header("cache-control")
        );
        assert_eq!(a.header("access-control-allow-origin"), Some("*"), "{path}");
        assert!(a.header("etag").is_some(), "{path}");
        // ETag revalidation: 304 with no body.
        let etag = a.header("etag").unwrap().to_string();
        let again = curl(&["-H", &format!("If-None-Match: {etag}")], &fed.url(path));
        if path.ends_with(".m3u8") && again.status == 200 {
            // The live playlist moved on between the two requests; that is allowed.
            continue;
        }
        assert_eq!(again.status, 304, "{path}: {again:?}");
        assert!(again.body.is_empty());
    }
    let health = curl(&[], &fed.url("/healthz"));
    assert_eq!(health.status, 200);
    assert!(
        health.text().contains("\"status\":\"ok\"") && health.text().contains("demo"),
        "{}",
        health.text()
    );
    let page = curl(&[], &fed.url("/embed/demo"));
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<popcast-player") && page.text().contains("from '/player.js'"));
    assert!(page.text().contains("event: 'demo'"));
    let js = curl(&[], &fed.url("/player.js"));
    assert_eq!(js.status, 200);
    assert!(js.body.len() > 100_000);
    assert_eq!(js.header("content-type"), Some("text/javascript; charset=utf-8"));
    assert_eq!(
        js.header("access-control-allow-origin"),
        Some("*"),
        "a module script from another origin needs CORS"
    );
    let pre = curl(
        &[
            "-X",
            "OPTIONS",
            "-H",
            "Origin: https://example.com",
            "-H",
            "Access-Control-Request-Method: GET",
        ],
        &fed.url("/live/demo/master.m3u8"),
    );
    assert_eq!(pre.status, 204, "{pre:?}");
    assert!(
        pre.header("access-control-allow-methods")
            .unwrap()
            .contains("GET")
    );
    assert_eq!(
        curl(&["-X", "POST"], &fed.url("/live/demo/master.m3u8")).status,
        405
    );
}

#[test]
fn head_and_range_on_segments() {
    let fed = fed(None);
    let pl = live_playlist(&fed);
    let seg = pl
        .lines()
        .find(|l| l.ends_with(".m4s") && !l.starts_with('#'))
        .unwrap()
        .to_string();
    let url = fed.url(&format!("/live/demo/source/{seg}"));
    let full = curl(&[], &url);
    assert_eq!(full.status, 200);
    let len = full.body.len();
    assert!(len > 200, "{len}");
    assert_eq!(full.header("content-length"), Some(len.to_string().as_str()));
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    let head = curl(&["-I"], &url);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(len.to_string().as_str()),
        "{head:?}"
    );
    // (curl -I prints the headers as its output; no media bytes may follow them.)
    assert!(!head.body.windows(4).any(|w| w == b"moof"), "HEAD sent a body");
    let part = curl(&["-H", "Range: bytes=10-109"], &url);
    assert_eq!(part.status, 206, "{part:?}");
    assert_eq!(part.body, full.body[10..110]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 10-109/{len}").as_str())
    );
    let tail = curl(&["-H", "Range: bytes=-16"], &url);
    assert_eq!(tail.body, full.body[len - 16..]);
    let past = curl(&["-H", &format!("Range: bytes={len}-")], &url);
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("content-range"),
        Some(format!("bytes */{len}").as_str())
    );
    // Garbage ranges are ignored, as RFC 9110 allows.
    assert_eq!(curl(&["-H", "Range: bytes=zz-"], &url).status, 200);
}

#[test]
fn requests_outside_the_url_table_or_the_spec_are_refused() {
    let fed = fed(None);
    live_playlist(&fed);
    for path in [
        "/",
        "/etc/passwd",
        "/live/demo/../../etc/passwd",
        "/live/demo/source/../../../etc/passwd",
        "/live/%2e%2e/master.m3u8",
        "/live/Demo/master.m3u8",
        "/live/nosuch/master.m3u8",
        "/live/demo/nosuch/index.m3u8",
        "/live/demo/source/007.m4s",
        "/live/demo/source/1.m4s.bak",
        "/embed/nosuch",
        "/embed/../healthz",
        "/live/demo/manifest.mpd",
    ] {
        let a = curl(&["--path-as-is"], &fed.url(path));
        assert_eq!(a.status, 404, "{path}: {a:?}");
    }
    let pl = |q: &str| curl(&[], &fed.url(&format!("/live/demo/source/index.m3u8?{q}"))).status;
    assert_eq!(pl("_HLS_part=1"), 400);
    assert_eq!(pl("_HLS_msn=abc"), 400);
    assert_eq!(pl("_HLS_skip=maybe"), 400);
    assert_eq!(pl("_HLS_msn=99999999999999"), 400, "far beyond the live edge");
    assert_eq!(pl(&format!("x={}", "a".repeat(2000))), 414);
    // Tokens, CMCD and cache busters pass.
    assert_eq!(pl("token=abc&CMCD=br%3D3200&_=123"), 200);
    // A segment far outside the window.
    assert_eq!(curl(&[], &fed.url("/live/demo/source/999999.m4s")).status, 404);
}

#[test]
fn blocking_reload_and_parts_streamed_while_produced() {
    let fed = fed(None);
    let pl = live_playlist(&fed);
    let (msn, part) = hint(&pl);
    // Blocking reload: asks for the hinted part, which does not exist yet.
    let t = Instant::now();
    let a = curl(
        &[],
        &fed.url(&format!(
            "/live/demo/source/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"
        )),
    );
    assert_eq!(a.status, 200);
    assert!(
        a.text().contains(&format!("URI=\"{msn}.{part}.m4s\"")),
        "{}",
        a.text()
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(a.header("cache-control").unwrap().contains("max-age=6"));

    // The part after that is hinted now: fetch it at once. It is streamed: the first bytes
    // arrive before the part is complete, and HTTP/1.1 uses chunked transfer.
    let (msn, part) = hint(&a.text());
    let p = curl(&[], &fed.url(&format!("/live/demo/source/{msn}.{part}.m4s")));
    assert_eq!(p.status, 200, "{p:?}");
    assert_eq!(p.header("transfer-encoding"), Some("chunked"), "{p:?}");
    assert!(p.body.len() > 50);
    assert!(
        p.total - p.start_transfer > 0.05,
        "the part arrived all at once: first byte {} s, last {} s",
        p.start_transfer,
        p.total
    );
    // Once complete the same part has a length and the same bytes.
    let again = curl(&[], &fed.url(&format!("/live/demo/source/{msn}.{part}.m4s")));
    assert_eq!(again.body, p.body);
    assert_eq!(
        again.header("content-length"),
        Some(p.body.len().to_string().as_str())
    );
}

#[test]
fn http2_with_prior_knowledge() {
    let fed = fed(None);
    live_playlist(&fed);
    let a = curl(
        &["--http2-prior-knowledge"],
        &fed.url("/live/demo/source/index.m3u8"),
    );
    assert_eq!((a.status, a.version.as_str()), (200, "2"), "{a:?}");
    let (msn, part) = hint(&a.text());
    let p = curl(
        &["--http2-prior-knowledge"],
        &fed.url(&format!("/live/demo/source/{msn}.{part}.m4s")),
    );
    assert_eq!((p.status, p.version.as_str()), (200, "2"), "{p:?}");
    assert!(p.body.len() > 50);
}

#[test]
fn https_with_http2_and_http1() {
    let dir = std::env::temp_dir().join(format!("popcast-tls-{}", std::process::id()));
    let tls = self_signed(&dir);
    let cacert = tls.cert_path.to_str().unwrap().to_string();
    let fed = fed(Some(tls));
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let a = curl(&["--cacert", &cacert], &fed.url("/live/demo/master.m3u8"));
        if a.status == 200 {
            assert_eq!(a.version, "2", "ALPN should pick h2: {a:?}");
            break;
        }
        assert!(Instant::now() < until, "{a:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let a = curl(
        &["--cacert", &cacert, "--http1.1"],
        &fed.url("/live/demo/source/init.mp4"),
    );
    assert_eq!((a.status, a.version.as_str()), (200, "1.1"));
    // A plain-HTTP client on the TLS port gets nothing, and the server keeps serving.
    let plain = curl(&[], &fed.url("/healthz").replace("https://", "http://"));
    assert_ne!(plain.status, 200);
    assert_eq!(curl(&["--cacert", &cacert], &fed.url("/healthz")).status, 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_player_bundles_the_hlsjs_version_the_browser_tests_compare_it_with() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let version = |pkg: &str| {
        let text = std::fs::read_to_string(root.join(pkg)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["dependencies"]["hls.js"].as_str().unwrap().to_string()
    };
    let player = version("player-sdk/web/package.json");
    assert_eq!(player, version("tests/browser/package.json"));
    let js = std::fs::read_to_string(root.join("player-sdk/web/dist/player.js")).unwrap();
    assert!(
        js.lines()
            .next()
            .unwrap()
            .contains(&format!("with hls.js {player}")),
        "dist/player.js was not built with hls.js {player}: run `make player`"
    );
}
