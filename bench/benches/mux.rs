//! Muxing throughput: frames per second through the segmenter and CMAF muxer (and into the
//! live store), on real H.264 + AAC frames from the built-in test source, with ffmpeg's
//! fragmented-MP4 muxer remuxing the same frames as the peer in the same run.
//!
//! Prints a table and writes `bench/results/mux.json`. Run with `make bench` (or
//! `cargo bench -p popcast-bench --bench mux`).

use popcast_config::{FrameRate, TestSourceConfig};
use popcast_packager::ffmpeg::{Pacing, TestSource};
use popcast_packager::media::{Frame, TrackInfo};
use popcast_packager::segmenter::{Event, Segmenter, SegmenterConfig};
use popcast_packager::store::{EventStore, StoreConfig};
use std::process::Command;
use std::time::{Duration, Instant};

/// Seconds of media captured once from the encoder, then muxed again and again.
const CAPTURE_SECS: usize = 10;
/// Times the captured media is replayed per measured run (timestamps shifted each time).
const REPEATS: i64 = 6;
const RUNS: usize = 5;
/// Copies of the capture the ffmpeg peer remuxes per run: five minutes of video, so that its
/// process start-up is a small share of its time.
const PEER_REPEATS: usize = 30;

fn capture() -> (Vec<TrackInfo>, Vec<Frame>) {
    let config = TestSourceConfig {
        width: 1280,
        height: 720,
        frame_rate: FrameRate::new(30, 1),
        keyframe_interval_ms: 2000,
        video_kbps: 2500,
        ..TestSourceConfig::default()
    };
    let mut source = TestSource::start(&config, Pacing::Unpaced).expect("test source");
    let tracks = source.tracks().to_vec();
    let mut frames = Vec::new();
    let mut video = 0;
    while video < CAPTURE_SECS * 30 {
        let f = source.blocking_recv().expect("frames");
        video += usize::from(f.track == TestSource::VIDEO);
        frames.push(f);
    }
    source.stop().expect("stop");
    (tracks, frames)
}

/// Pushes `REPEATS` copies of the capture through a fresh segmenter (and store, if given);
/// returns the elapsed time and the bytes of CMAF produced per track.
fn run(
    tracks: &[TrackInfo],
    frames: &[Frame],
    store: Option<&EventStore>,
) -> (Duration, Vec<(u32, Vec<u8>)>) {
    let mut seg = Segmenter::new(SegmenterConfig::default());
    for t in tracks {
        seg.add_track(t.clone()).unwrap();
        if let Some(s) = store {
            s.add_rendition(&format!("t{}", t.id.0), t.clone()).unwrap();
        }
    }
    let span = |t: &TrackInfo| {
        let per_sec = i64::from(t.timescale);
        per_sec * CAPTURE_SECS as i64 + if t.id == TestSource::VIDEO { 0 } else { 1024 * 4 }
    };
    let mut out: Vec<(u32, Vec<u8>)> = tracks.iter().map(|t| (t.id.0, Vec::new())).collect();
    let started = Instant::now();
    for r in 0..REPEATS {
        for f in frames {
            let t = tracks.iter().find(|t| t.id == f.track).unwrap();
            let mut f = f.clone();
            f.pts += r * span(t);
            f.dts += r * span(t);
            seg.push(f).unwrap();
            match store {
                Some(s) => s.apply(seg.drain(), |id| Some(format!("t{}", id.0))),
                None => {
                    for e in seg.drain() {
                        if let Event::Init { track, data, .. } | Event::Chunk { track, data } = e {
                            let buf = &mut out.iter_mut().find(|(id, _)| *id == track.0).unwrap().1;
                            // Only the first repeat is kept for the peer's input.
                            if r == 0 {
                                buf.extend_from_slice(&data);
                            }
                        }
                    }
                }
            }
        }
    }
    seg.flush();
    let _ = seg.drain().count();
    (started.elapsed(), out)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// ffmpeg remuxing the same frames (from our fMP4) into fragmented MP4 with one fragment
/// per frame, as LL-HLS chunking needs; `PEER_REPEATS` inputs concatenated, output
/// discarded. Returns the median seconds per `REPEATS` captures, comparable with ours.
fn ffmpeg_peer(dir: &std::path::Path, files: &[(u32, Vec<u8>)]) -> Option<f64> {
    let mut list = String::new();
    for (id, bytes) in files {
        let path = dir.join(format!("track{id}.mp4"));
        std::fs::write(&path, bytes).ok()?;
    }
    for _ in 0..PEER_REPEATS {
        list.push_str(&format!("file '{}'\n", dir.join("track1.mp4").display()));
    }
    let list_path = dir.join("list.txt");
    std::fs::write(&list_path, list).ok()?;
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-f", "concat", "-safe", "0", "-i"])
            .arg(&list_path)
            .args([
                "-c",
                "copy",
                "-f",
                "mp4",
                "-movflags",
                "frag_every_frame+empty_moov+default_base_moof",
                "-y",
                "/dev/null",
            ])
            .status()
            .ok()?;
        if !status.success() {
            return None;
        }
        times.push(t.elapsed().as_secs_f64() * REPEATS as f64 / PEER_REPEATS as f64);
    }
    Some(median(times))
}

fn main() {
    // `cargo bench` passes --bench; nothing else is accepted.
    eprintln!("capturing {CAPTURE_SECS} s of 720p30 H.264 + AAC from the test source ...");
    let (tracks, frames) = capture();
    let video_frames = frames.iter().filter(|f| f.track == TestSource::VIDEO).count() as f64 * REPEATS as f64;
    let total_frames = frames.len() as f64 * REPEATS as f64;
    let media_bytes: usize = frames.iter().map(|f| f.payload.len()).sum::<usize>() * REPEATS as usize;

    let video_tracks: Vec<TrackInfo> = tracks
        .iter()
        .filter(|t| t.id == TestSource::VIDEO)
        .cloned()
        .collect();
    let video_only: Vec<Frame> = frames
        .iter()
        .filter(|f| f.track == TestSource::VIDEO)
        .cloned()
        .collect();
    let (mut mux, mut with_store, mut video_mux) = (Vec::new(), Vec::new(), Vec::new());
    let mut files = Vec::new();
    for _ in 0..RUNS {
        let (d, out) = run(&tracks, &frames, None);
        mux.push(d.as_secs_f64());
        files = out;
        let store = EventStore::new(StoreConfig::default());
        let (d, _) = run(&tracks, &frames, Some(&store));
        with_store.push(d.as_secs_f64());
        video_mux.push(run(&video_tracks, &video_only, None).0.as_secs_f64());
    }
    let mux_s = median(mux);
    let store_s = median(with_store);
    let video_s = median(video_mux);

    let dir = std::env::temp_dir().join(format!("popcast-bench-mux-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let peer_s = ffmpeg_peer(&dir, &files);
    let _ = std::fs::remove_dir_all(&dir);

    let fps = |secs: f64, n: f64| n / secs;
    println!(
        "mux throughput (median of {RUNS} runs, {} frames per run, 720p30 2.5 Mbit/s + AAC)",
        total_frames
    );
    println!("{:<44} {:>14} {:>12}", "pipeline", "frames/s", "MB/s");
    println!(
        "{:<44} {:>14.0} {:>12.0}",
        "segmenter + CMAF muxer (all tracks)",
        fps(mux_s, total_frames),
        media_bytes as f64 / mux_s / 1e6
    );
    println!(
        "{:<44} {:>14.0} {:>12.0}",
        "segmenter + muxer + live store",
        fps(store_s, total_frames),
        media_bytes as f64 / store_s / 1e6
    );
    println!(
        "{:<44} {:>14.0} {:>12}",
        "segmenter + CMAF muxer (video only)",
        fps(video_s, video_frames),
        ""
    );
    let video_bytes: usize =
        files.iter().find(|(id, _)| *id == 1).map_or(0, |f| f.1.len()) * REPEATS as usize;
    if let Some(p) = peer_s {
        println!("ratio (ours / ffmpeg, video): {:.1}x", p / video_s);
        // The peer includes demuxing our file and process start-up (a small share of five
        // minutes of video); ours starts from frames in memory.
        println!(
            "{:<44} {:>14.0} {:>12.0}",
            "ffmpeg -c copy, frag_every_frame (video)",
            fps(p, video_frames),
            video_bytes as f64 / p / 1e6
        );
    } else {
        println!("ffmpeg peer: not run (ffmpeg CLI missing or failed)");
    }
    let result = serde_json::json!({
        "scenario": "mux",
        "runs": RUNS,
        "frames_per_run": total_frames,
        "video_frames_per_run": video_frames,
        "media_bytes_per_run": media_bytes,
        "segmenter_mux_frames_per_sec": fps(mux_s, total_frames),
        "segmenter_mux_store_frames_per_sec": fps(store_s, total_frames),
        "segmenter_mux_video_frames_per_sec": fps(video_s, video_frames),
        "ffmpeg_video_frames_per_sec": peer_s.map(|p| fps(p, video_frames)),
        "ratio_video_vs_ffmpeg": peer_s.map(|p| fps(video_s, video_frames) / fps(p, video_frames)),
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/mux.json");
    std::fs::write(&path, serde_json::to_string_pretty(&result).unwrap()).unwrap();
    println!("wrote {}", path.display());
}
