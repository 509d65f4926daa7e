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
