//! `popcast up`: everything on one machine. Today that is the built-in test source, encoded
//! in real time with its output reported; origin and edge join as their issues land.

use crate::NotYetAvailable;
use crate::cli::{SourceKind, UpArgs};
use popcast_config::Config;
use popcast_packager::ffmpeg::{Pacing, TestSource};
use popcast_packager::media::{CodecConfig, Frame};
use std::time::{Duration, Instant};

/// Counts what the source produced since the last report.
#[derive(Default)]
struct Tally {
    video_frames: u64,
    audio_frames: u64,
    keyframes: u64,
    bytes: u64,
}

impl Tally {
    fn add(&mut self, frame: &Frame) {
        if frame.track == TestSource::VIDEO {
            self.video_frames += 1;
            self.keyframes += u64::from(frame.keyframe);
        } else {
            self.audio_frames += 1;
        }
        self.bytes += frame.payload.len() as u64;
    }

    fn line(&self, label: &str, secs: f64) -> String {
        format!(
            "{label} {secs:.1}s: video {} frames ({:.2} fps, {} keyframes), audio {} frames, {:.2} Mbit/s",
            self.video_frames,
            self.video_frames as f64 / secs,
            self.keyframes,
            self.audio_frames,
            self.bytes as f64 * 8.0 / secs / 1e6,
        )
    }
}

pub async fn run(config: Config, args: UpArgs) -> anyhow::Result<()> {
    println!(
        "popcast up: the origin (issue #4) and edge (issue #6) are not built yet, so no playback URLs are served."
    );
    if args.source == SourceKind::None {
        return Err(NotYetAvailable {
            what: "popcast up without the test source (nothing else runs yet)",
            issue: 4,
        }
        .into());
    }
    let started = Instant::now();
    // Opening libx264 blocks for a moment: keep it off the async workers.
    let settings = config.test_source.clone();
    let mut source =
        tokio::task::spawn_blocking(move || TestSource::start(&settings, Pacing::RealTime)).await??;
    for track in source.tracks() {
        match (&track.codec, &track.video) {
            (CodecConfig::H264(avc), Some(v)) => println!(
                "test source video: {} {}x{} @ {} fps, keyframe every {} ms, {} kbit/s",
                avc.codec_string(),
                v.width,
                v.height,
                config.test_source.frame_rate,
                config.test_source.keyframe_interval_ms,
                config.test_source.video_kbps,
            ),
            (CodecConfig::Aac(asc), _) => println!(
                "test source audio: {} {} Hz, {} channel(s), {} kbit/s",
                asc.codec_string(),
                asc.sample_rate,
                asc.channel_config,
                config.test_source.audio_kbps,
            ),
            (other, _) => println!("test source track {:?}: {other:?}", track.id),
        }
    }
    tracing::info!(
        open_ms = started.elapsed().as_millis() as u64,
        "test source running"
    );

    let every = Duration::from_secs(args.status_every.clamp(1, 86_400));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    // A duration too large to represent means "until stopped".
    let stop_at = args
        .duration
        .and_then(|s| tokio::time::Instant::now().checked_add(Duration::from_secs(s)));
    let (mut window, mut total) = (Tally::default(), Tally::default());
    let mut window_start = Instant::now();
    let run_start = Instant::now();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let ended_by = loop {
        tokio::select! {
            frame = source.recv() => match frame {
                Some(frame) => {
                    window.add(&frame);
                    total.add(&frame);
                }
                None => break "the source stopped",
            },
            _ = ticker.tick() => {
                println!("{}", window.line("last", window_start.elapsed().as_secs_f64()));
                window = Tally::default();
                window_start = Instant::now();
            }
            _ = async { tokio::time::sleep_until(stop_at.expect("guarded")).await }, if stop_at.is_some() => {
                break "--duration elapsed";
            }
            signal = &mut shutdown => break signal,
        }
    };
    let stopped = tokio::task::spawn_blocking(move || source.stop()).await?;
    println!(
        "{} (stopped: {ended_by})",
        total.line("total", run_start.elapsed().as_secs_f64())
    );
    stopped?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM, naming which.
async fn shutdown_signal() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C still stops");
            let _ = tokio::signal::ctrl_c().await;
            return "Ctrl-C";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = term.recv() => "SIGTERM",
    }
}
