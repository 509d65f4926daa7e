//! `popcast bench transcode`: the ABR ladder against the ffmpeg CLI making the same ladder
//! from the same input in the same run. The input is a 720p30 H.264 stream from the built-in
//! test source (1 s GOP); our ladder takes its frames in memory, ffmpeg reads the same frames
//! from a raw H.264 file. Both scale with bilinear filtering and encode 480p and 360p with
//! libx264 (the ladder's preset, zerolatency, no B-frames, CBR with a one-second VBV,
//! keyframes at the source's), as fast as they can. CPU time is user + system of the
//! process (ours: this process's, measured around the ladder alone; ffmpeg's: its own
//! `-benchmark` report); the real-time factor is media seconds ÷ wall seconds.

use crate::report::Report;
use crate::rig::BenchError;
use crate::scenarios::Options;
use popcast_config::{LadderConfig, TestSourceConfig};
use popcast_packager::codec::avcc_to_annexb;
use popcast_packager::ffmpeg::ladder::{Ladder, LadderSettings};
use popcast_packager::ffmpeg::{Pacing, TestSource};
use popcast_packager::media::{CodecConfig, Frame, VideoShape};
use serde_json::json;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn setup(e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(e.to_string())
}

/// This process's CPU time (all threads), seconds.
fn self_cpu_secs() -> f64 {
    crate::peers::process_cpu_secs(std::process::id())
}

/// `seconds` of the test source's 720p30 video, encoded as a live creator's would be.
fn source_frames(seconds: u32) -> Result<(popcast_packager::media::TrackInfo, Vec<Frame>), BenchError> {
    let cfg = TestSourceConfig::default();
    let mut src = TestSource::start(&cfg, Pacing::Unpaced).map_err(setup)?;
    let video = src.tracks()[0].clone();
    let want = (seconds * cfg.frame_rate.num / cfg.frame_rate.den.max(1)) as usize;
    let mut frames = Vec::with_capacity(want);
    while frames.len() < want {
        match src.blocking_recv() {
            Some(f) if f.track == video.id => frames.push(f),
            Some(_) => {}
            None => return Err(BenchError::Run("the test source stopped".into())),
        }
    }
    drop(src);
    Ok((video, frames))
}

/// The frames as a raw H.264 (Annex B) file, SPS and PPS before each keyframe.
fn write_annexb(
    path: &std::path::Path,
    track: &popcast_packager::media::TrackInfo,
    frames: &[Frame],
) -> Result<(), BenchError> {
    let CodecConfig::H264(avc) = &track.codec else {
        return Err(BenchError::Setup("the test source's video is not H.264".into()));
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(setup)?);
    for f in frames {
        if f.keyframe {
            for ps in avc.sps().iter().chain(avc.pps()) {
                out.write_all(&[0, 0, 0, 1]).map_err(setup)?;
                out.write_all(ps).map_err(setup)?;
            }
        }
        let annexb = avcc_to_annexb(&f.payload, avc.nal_length_size()).map_err(setup)?;
        out.write_all(&annexb).map_err(setup)?;
    }
    out.flush().map_err(setup)
}

struct Run {
    cpu_secs: f64,
    wall_secs: f64,
}

fn ours(
    track: &popcast_packager::media::TrackInfo,
    frames: &[Frame],
    cfg: &LadderConfig,
) -> Result<Run, BenchError> {
    let shape: VideoShape = track.video.ok_or_else(|| setup("no video shape"))?;
    let targets = popcast_packager::ladder::plan(&shape, cfg);
    let out = Arc::new(AtomicU64::new(0));
    let counted = out.clone();
    let sink = Arc::new(move |_f: Frame| {
        counted.fetch_add(1, Ordering::Relaxed);
    });
    let settings = LadderSettings {
        lossless: true,
        ..LadderSettings::from_config(cfg)
    };
    let want = (frames.len() * targets.len()) as u64;
    let (cpu0, t0) = (self_cpu_secs(), Instant::now());
    let ladder = Ladder::start(track, &targets, &settings, sink).map_err(setup)?;
    for f in frames {
        ladder.push(f.clone());
    }
    drop(ladder); // the end of the source: the threads flush and stop
    let deadline = Instant::now() + Duration::from_secs(300);
    while out.load(Ordering::Relaxed) < want {
        if Instant::now() > deadline {
            return Err(BenchError::Run(format!(
                "the ladder gave {} of {want} frames",
                out.load(Ordering::Relaxed)
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let wall_secs = t0.elapsed().as_secs_f64();
    // The threads account their last ticks as they exit.
    std::thread::sleep(Duration::from_millis(50));
    Ok(Run {
        cpu_secs: self_cpu_secs() - cpu0,
        wall_secs,
    })
}

fn ffmpeg(
    input: &std::path::Path,
    cfg: &LadderConfig,
    shape: VideoShape,
    fps: u32,
) -> Result<Run, BenchError> {
    let targets = popcast_packager::ladder::plan(&shape, cfg);
    let split: String = (0..targets.len()).map(|i| format!("[s{i}]")).collect();
    let mut graph = format!("[0:v]split={}{split}", targets.len());
    for (i, t) in targets.iter().enumerate() {
        graph.push_str(&format!(
            ";[s{i}]scale={}:{}:flags=bilinear[o{i}]",
            t.width, t.height
        ));
    }
    let mut cmd = std::process::Command::new("ffmpeg");
    // -benchmark reports at the info level.
    cmd.args(["-hide_banner", "-nostats", "-loglevel", "info", "-benchmark"])
        .args(["-f", "h264", "-framerate", &fps.to_string(), "-i"])
        .arg(input)
        .args(["-filter_complex", &graph]);
    for (i, t) in targets.iter().enumerate() {
        let rate = format!("{}k", t.kbps);
        cmd.args([
            "-map",
            &format!("[o{i}]"),
            "-c:v",
            "libx264",
            "-preset",
            &cfg.preset,
            "-tune",
            "zerolatency",
        ])
        .args(["-b:v", &rate, "-maxrate", &rate, "-bufsize", &rate, "-bf", "0"])
        .args(["-force_key_frames", "source", "-x264-params", "scenecut=0"])
        .args(["-f", "null", "-"]);
    }
    let t0 = Instant::now();
    let out = cmd.output().map_err(|e| setup(format!("ffmpeg: {e}")))?;
    let wall_secs = t0.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(BenchError::Run(format!("ffmpeg failed: {stderr}")));
    }
    // "bench: utime=1.234s stime=0.056s rtime=0.789s"
    let field = |name: &str| -> Option<f64> {
        let line = stderr.lines().find(|l| l.starts_with("bench: utime="))?;
        let v = line.split(&format!("{name}=")).nth(1)?.split('s').next()?;
        v.parse().ok()
    };
    let (u, s) = field("utime")
        .zip(field("stime"))
        .ok_or_else(|| BenchError::Run(format!("no -benchmark line from ffmpeg: {stderr}")))?;
    Ok(Run {
        cpu_secs: u + s,
        wall_secs,
    })
}

pub async fn transcode(opts: Options) -> Result<Report, BenchError> {
    tokio::task::spawn_blocking(move || run(opts))
        .await
        .map_err(|e| BenchError::Run(e.to_string()))?
}

fn run(opts: Options) -> Result<Report, BenchError> {
    let seconds = if opts.short { 20 } else { 60 };
    let cfg = LadderConfig::default();
    let (track, frames) = source_frames(seconds)?;
    let shape = track.video.ok_or_else(|| setup("no video shape"))?;
    let fps = shape.frame_rate.map_or(30, |(n, d)| n / d.max(1));
    let dir = std::env::temp_dir().join(format!("popcast-bench-transcode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(setup)?;
    let input = dir.join("source.h264");
    write_annexb(&input, &track, &frames)?;
    let media = frames.len() as f64 / f64::from(fps);
    let renditions: Vec<String> = popcast_packager::ladder::plan(&shape, &cfg)
        .iter()
        .map(|t| format!("{} {}x{} {} kb/s", t.name, t.width, t.height, t.kbps))
        .collect();
    // Alternate, best of two each, so neither side alone meets a busy moment.
    let mut best_ours: Option<Run> = None;
    let mut best_ff: Option<Run> = None;
    for _ in 0..2 {
        let o = ours(&track, &frames, &cfg)?;
        if best_ours.as_ref().is_none_or(|b| o.cpu_secs < b.cpu_secs) {
            best_ours = Some(o);
        }
        let f = ffmpeg(&input, &cfg, shape, fps)?;
        if best_ff.as_ref().is_none_or(|b| f.cpu_secs < b.cpu_secs) {
            best_ff = Some(f);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (o, f) = (best_ours.expect("ran"), best_ff.expect("ran"));
    let row = |name: &str, r: &Run| {
        vec![
            name.to_string(),
            format!("{:.2}", r.cpu_secs),
            format!("{:.2}", r.wall_secs),
            format!("{:.2}×", media / r.wall_secs),
            format!("{:.0}%", 100.0 * r.cpu_secs / media),
        ]
    };
    let cpu_ratio = o.cpu_secs / f.cpu_secs;
    Ok(Report {
        name: "transcode".into(),
        title: "Transcode: the ABR ladder vs the ffmpeg CLI".into(),
        setup: format!(
            "{media:.0} s of 720p30 H.264 (the test source, 1 s GOP) into {}; libx264 preset {}, zerolatency, no B-frames, CBR with a 1 s VBV, keyframes at the source's; bilinear scaling; as fast as possible, best of two runs each.",
            renditions.join(" and "),
            cfg.preset
        ),
        columns: [
            "transcoder",
            "CPU s",
            "wall s",
            "real-time factor",
            "CPU per media s",
        ]
        .map(String::from)
        .to_vec(),
        rows: vec![row("popcast ladder", &o), row("ffmpeg CLI", &f)],
        notes: vec![format!(
            "Ours uses {cpu_ratio:.2}× ffmpeg's CPU time for the same ladder (goal ≤ 1.0×) and runs at {:.2}× real time (goal ≥ 1.5×).",
            media / o.wall_secs
        )],
        data: json!({
            "media_secs": media,
            "renditions": renditions,
            "ours": { "cpu_secs": o.cpu_secs, "wall_secs": o.wall_secs, "realtime_factor": media / o.wall_secs },
            "ffmpeg": { "cpu_secs": f.cpu_secs, "wall_secs": f.wall_secs, "realtime_factor": media / f.wall_secs },
            "cpu_ratio": cpu_ratio,
        }),
    })
}
