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
