//! The segmenter's CMAF output read by an independent demuxer: frames from the built-in test
//! source go through the segmenter, and ffprobe (installed by `make test`) must read each
//! track's init segment + all its parts without a warning, agreeing with us on the packet
//! count, every timestamp and every keyframe.

use popcast_config::{FrameRate, TestSourceConfig};
use popcast_packager::cmaf::read::{fragments, init_info};
use popcast_packager::ffmpeg::{Pacing, TestSource};
use popcast_packager::media::{Frame, TrackId};
use popcast_packager::segmenter::{Event, Segmenter, SegmenterConfig};
use std::collections::BTreeMap;

mod support;
use support::{Scratch, ffprobe_clean};

#[test]
fn ffprobe_reads_init_plus_parts_and_agrees_on_every_packet() {
    let config = TestSourceConfig {
        width: 480,
        height: 270,
        frame_rate: FrameRate::new(30, 1),
        keyframe_interval_ms: 1000,
        video_kbps: 500,
        ..TestSourceConfig::default()
    };
    let mut source = TestSource::start(&config, Pacing::Unpaced).unwrap();
    let mut seg = Segmenter::new(SegmenterConfig::default());
    for t in source.tracks() {
        seg.add_track(t.clone()).unwrap();
    }
    let mut pushed: BTreeMap<TrackId, Vec<Frame>> = BTreeMap::new();
    let mut files: BTreeMap<TrackId, Vec<u8>> = BTreeMap::new();
    let mut video_frames = 0;
    while video_frames < 150 {
        let f = source.blocking_recv().expect("source keeps producing");
        video_frames += usize::from(f.track == TestSource::VIDEO);
        pushed.entry(f.track).or_default().push(f.clone());
        seg.push(f).unwrap();
    }
    source.stop().unwrap();
    seg.flush();
    let mut segments = 0;
    for e in seg.drain() {
        match e {
            Event::Init { track, data, .. } => {
                let info = init_info(&data).unwrap();
                assert_eq!(info.track_id, track.0);
                files.entry(track).or_default().extend_from_slice(&data);
            }
            Event::Chunk { track, data } => {
                assert_eq!(fragments(&data).unwrap().len(), 1);
                files
                    .get_mut(&track)
                    .expect("init first")
                    .extend_from_slice(&data);
            }
            Event::SegmentEnd { track, .. } if track == TestSource::VIDEO => segments += 1,
            _ => {}
        }
    }
    assert!(segments >= 2, "{segments} video segments for 5 s");

    let scratch = Scratch::new("cmaf-ffprobe");
    for (track, frames) in &pushed {
        let path = scratch.file(&format!("track{}.mp4", track.0));
        std::fs::write(&path, &files[track]).unwrap();
        let csv = ffprobe_clean(
            &["-show_entries", "packet=pts,dts,flags", "-of", "csv=p=0"],
            &path,
        );
        let packets: Vec<(i64, i64, bool)> = csv
            .lines()
            .map(|l| {
                let mut it = l.split(',');
                let pts = it.next().unwrap().parse().unwrap();
                let dts = it.next().unwrap().parse().unwrap();
                (pts, dts, it.next().unwrap().starts_with('K'))
            })
            .collect();
        assert_eq!(packets.len(), frames.len(), "track {track:?} packet count");
        // Output time = source time + one constant per track.
        let offset = packets[0].1 - frames[0].dts;
        for (i, (p, f)) in packets.iter().zip(frames).enumerate() {
            assert_eq!(
                (p.0 - offset, p.1 - offset),
                (f.pts, f.dts),
                "track {track:?} packet {i}"
            );
            assert_eq!(p.2, f.keyframe, "track {track:?} packet {i} keyframe");
        }
        let streams = ffprobe_clean(
            &[
                "-show_entries",
                "stream=codec_name,width,height",
                "-of",
                "csv=p=0",
            ],
            &path,
        );
        let want = if *track == TestSource::VIDEO {
            "h264,480,270"
        } else {
            "aac"
        };
        assert_eq!(streams.trim(), want);
    }
}
