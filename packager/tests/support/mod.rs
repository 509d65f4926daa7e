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

pub fn ffprobe_json(args: &[&str], file: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
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

/// Runs ffprobe with `args` on `file`, requiring success and no warnings at all; returns its
/// stdout.
pub fn ffprobe_clean(args: &[&str], file: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "warning"])
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

    pub fn start(
        store: StoreConfig,
        segmenter: SegmenterConfig,
        seconds: f64,
        end: bool,
    ) -> (Arc<EventStore>, std::thread::JoinHandle<()>) {
        let store = Arc::new(EventStore::new(store));
        let mut source = TestSource::start(&source_config(), Pacing::RealTime).unwrap();
        let mut seg = Segmenter::new(segmenter);
        for t in source.tracks() {
            seg.add_track(t.clone()).unwrap();
            let name = if t.id == TestSource::VIDEO {
                "video"
            } else {
                "audio"
            };
            store.add_rendition(name, t.clone()).unwrap();
        }
        let feed = store.clone();
        let handle = std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs_f64(seconds);
            let route = |t| Some(if t == TestSource::VIDEO { "video" } else { "audio" }.to_string());
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
