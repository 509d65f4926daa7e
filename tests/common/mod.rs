//! Helpers the root crate's integration tests share.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};

/// ffmpeg publishing a small test pattern with the settings the issue names.
pub fn ffmpeg_publish(url: &str, secs: u32, size: &str) -> Child {
    ffmpeg_publish_gop(url, secs, size, 30)
}

/// The same with a keyframe every `gop` frames (30 fps).
pub fn ffmpeg_publish_gop(url: &str, secs: u32, size: &str, gop: u32) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", &format!("testsrc2=size={size}:rate=30")])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &secs.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-g",
            &gop.to_string(),
        ])
        .args(["-c:a", "aac", "-b:a", "64k", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ffmpeg")
}
pub mod tls;

/// The browser harness directory, installed by `make deps-test deps-browser`.
pub fn browser_harness() -> std::path::PathBuf {
    let harness = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        harness.join("node_modules/playwright-core").exists(),
        "the browser harness is not installed: run `make deps-test deps-browser` (make test does)"
    );
    harness
}

/// A GET with a bearer token: (status, body).
pub fn get_with_token(url: &str, token: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "10", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(url)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}
