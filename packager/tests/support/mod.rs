//! Helpers the packager's integration tests share: scratch directories and the ffprobe CLI.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch directory removed when the test ends (pass or fail).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("popcast-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// ffprobe's JSON for `args` on `file`; it must succeed and print no error.
pub fn ffprobe_json(args: &[&str], file: &Path) -> String {
    let mut all = vec!["-of", "json"];
    all.extend_from_slice(args);
    ffprobe("error", &all, file)
}

/// Runs ffprobe with `args` on `file`, requiring success and no warnings at all; returns its
/// stdout.
pub fn ffprobe_clean(args: &[&str], file: &Path) -> String {
    ffprobe("warning", args, file)
}

/// Runs ffprobe at log `level`: it must succeed and print nothing on stderr.
fn ffprobe(level: &str, args: &[&str], file: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", level])
        .args(args)
        .arg(file)
        .output()
        .expect("ffprobe must be installed (make test installs the ffmpeg package)");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "ffprobe warned: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A live event fed by the built-in test source in real time: frames go through the
/// segmenter into an [`EventStore`] with renditions `video` and `audio`, on a thread that
/// stops after `seconds` (and ends the store's playlists when `end` is set).
pub mod live {
    use popcast_config::{FrameRate, TestSourceConfig};
    use popcast_packager::ffmpeg::{Pacing, TestSource};
    use popcast_packager::segmenter::{Segmenter, SegmenterConfig};
    use popcast_packager::store::{EventStore, StoreConfig};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    pub fn source_config() -> TestSourceConfig {
        TestSourceConfig {
            width: 320,
            height: 180,
            frame_rate: FrameRate::new(30, 1),
            keyframe_interval_ms: 1000,
            video_kbps: 300,
            ..TestSourceConfig::default()
        }
    }

    /// The rendition a test-source track feeds.
    pub fn rendition(track: popcast_packager::media::TrackId) -> &'static str {
        if track == TestSource::VIDEO {
            "video"
        } else {
            "audio"
        }
    }

    /// Adds every track of `source` to the segmenter and, as its rendition, to the store.
    pub fn wire(source: &TestSource, seg: &mut Segmenter, store: &EventStore) {
        for t in source.tracks() {
            seg.add_track(t.clone()).unwrap();
            store.add_rendition(rendition(t.id), t.clone()).unwrap();
        }
    }

    pub fn start(
        store: StoreConfig,
        segmenter: SegmenterConfig,
        seconds: f64,
        end: bool,
    ) -> (Arc<EventStore>, std::thread::JoinHandle<()>) {
        let store = Arc::new(EventStore::new(store));
        let mut source = TestSource::start(&source_config(), Pacing::RealTime).unwrap();
        let mut seg = Segmenter::new(segmenter);
        wire(&source, &mut seg, &store);
        let feed = store.clone();
        let handle = std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs_f64(seconds);
            let route = |t| Some(rendition(t).to_string());
            while Instant::now() < until {
                let Some(f) = source.blocking_recv() else { break };
                seg.push(f).unwrap();
                feed.apply(seg.drain(), route);
            }
            source.stop().unwrap();
            if end {
                seg.flush();
                feed.apply(seg.drain(), route);
                feed.end();
            }
        });
        (store, handle)
    }
}

/// A minimal HTTP/1.1 server over an [`EventStore`] for tests, standing in for the origin's
/// server (issue #4): DESIGN's playback paths, LL-HLS query keys, parts streamed with
/// chunked transfer while produced, CORS for the browser harness. One request per
/// connection; loopback only.
pub mod http {
    use popcast_packager::naming::{Object, PlaybackPath, RenditionObject};
    use popcast_packager::store::{EventStore, PlaylistRequest, StoreError};
    use std::sync::Arc;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    /// Serves `store` as event `event` on 127.0.0.1; returns the port.
    pub async fn serve(store: Arc<EventStore>, event: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = handle(conn, &store, event).await;
                });
            }
        });
        port
    }

    async fn head(
        conn: &mut TcpStream,
        status: &str,
        ctype: &str,
        len: Option<usize>,
    ) -> std::io::Result<()> {
        let length = match len {
            Some(n) => format!("Content-Length: {n}\r\n"),
            None => "Transfer-Encoding: chunked\r\n".to_string(),
        };
        let h = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n{length}Access-Control-Allow-Origin: *\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
        );
        conn.write_all(h.as_bytes()).await
    }

    async fn handle(mut conn: TcpStream, store: &EventStore, event: &str) -> std::io::Result<()> {
        let mut line = String::new();
        let mut reader = BufReader::new(&mut conn);
        reader.read_line(&mut line).await?;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).await? <= 2 {
                break;
            }
        }
        let target = line.split(' ').nth(1).unwrap_or("/").to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        // POPCAST_TEST_HTTP_LOG=1 prints every request with its outcome and timing.
        let log = std::env::var_os("POPCAST_TEST_HTTP_LOG").is_some();
        let started = std::time::Instant::now();
        let result: Result<(), StoreError> = async {
            let parsed = PlaybackPath::parse(path).map_err(|e| StoreError::NotFound(e.to_string()))?;
            if parsed.event != event {
                return Err(StoreError::NotFound("no such event".into()));
            }
            match parsed.object {
                Object::Multivariant => {
                    let body = store.multivariant()?;
                    send(&mut conn, "application/vnd.apple.mpegurl", body.as_bytes()).await
                }
                Object::Rendition { rendition, object } => match object {
                    RenditionObject::Playlist => {
                        let req = PlaylistRequest::parse_query(query)?;
                        let body = store.media_playlist(&rendition, req).await?;
                        send(&mut conn, "application/vnd.apple.mpegurl", body.as_bytes()).await
                    }
                    RenditionObject::Init => {
                        let body = store.rendition(&rendition)?.init()?;
                        send(&mut conn, "video/mp4", &body).await
                    }
                    RenditionObject::InitAt { msn } => {
                        let body = store.rendition(&rendition)?.init_at(msn)?;
                        send(&mut conn, "video/mp4", &body).await
                    }
                    RenditionObject::Segment { msn } => {
                        stream(&mut conn, store.segment(&rendition, msn)?).await
                    }
                    RenditionObject::Part { msn, part } => {
                        stream(&mut conn, store.part(&rendition, msn, part)?).await
                    }
                },
                Object::DashManifest => Err(StoreError::NotFound("no DASH yet".into())),
            }
        }
        .await;
        if log {
            eprintln!(
                "http {target} -> {:?} in {:?}",
                result.as_ref().err(),
                started.elapsed()
            );
        }
        if let Err(e) = result {
            let status = match e {
                StoreError::BadRequest(_) => "400 Bad Request",
                StoreError::NotFound(_) => "404 Not Found",
                StoreError::Unavailable(_) => "503 Service Unavailable",
            };
            let body = e.to_string();
            head(&mut conn, status, "text/plain", Some(body.len())).await?;
            conn.write_all(body.as_bytes()).await?;
        }
        conn.shutdown().await
    }

    async fn send(conn: &mut TcpStream, ctype: &str, body: &[u8]) -> Result<(), StoreError> {
        let io = |e: std::io::Error| StoreError::Unavailable(e.to_string());
        head(conn, "200 OK", ctype, Some(body.len())).await.map_err(io)?;
        conn.write_all(body).await.map_err(io)
    }

    /// Complete objects go out with a length; objects in progress with chunked transfer,
    /// one HTTP chunk per CMAF chunk as it is produced.
    async fn stream(
        conn: &mut TcpStream,
        mut object: popcast_packager::store::ObjectStream,
    ) -> Result<(), StoreError> {
        let io = |e: std::io::Error| StoreError::Unavailable(e.to_string());
        let (body, complete) = object.available();
        if complete {
            let len = body.iter().map(|b| b.len()).sum();
            head(conn, "200 OK", "video/mp4", Some(len)).await.map_err(io)?;
            for b in body {
                conn.write_all(&b).await.map_err(io)?;
            }
            return Ok(());
        }
        // Wait for the first chunk before committing to a 200.
        let first = object.next_chunk().await?;
        head(conn, "200 OK", "video/mp4", None).await.map_err(io)?;
        let mut next = first;
        while let Some(c) = next {
            conn.write_all(format!("{:x}\r\n", c.len()).as_bytes())
                .await
                .map_err(io)?;
            conn.write_all(&c).await.map_err(io)?;
            conn.write_all(b"\r\n").await.map_err(io)?;
            next = match object.next_chunk().await {
                Ok(n) => n,
                // Headers are out: close without the final chunk, so the client sees a torn
                // body, never a short one that looks complete.
                Err(_) => return Ok(()),
            };
        }
        conn.write_all(b"0\r\n\r\n").await.map_err(io)
    }
}

/// Runs the browser harness (tests/browser/play.mjs: hls.js in headless Chromium) against
/// `url` for `seconds`; returns its one-line JSON report and whether it exited 0.
pub fn play_in_browser(url: &str, seconds: u32) -> (String, bool) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser");
    assert!(
        dir.join("node_modules/hls.js").exists(),
        "the browser harness is not installed: run `make deps-test deps-browser` (make test does)"
    );
    let out = Command::new("node")
        .arg(dir.join("play.mjs"))
        .args([
            "--url",
            url,
            "--seconds",
            &seconds.to_string(),
            "--low-latency",
            "--expect-live",
        ])
        .output()
        .expect("node must be installed");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        out.status.success(),
    )
}
