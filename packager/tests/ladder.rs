//! The ABR ladder on its own, fed the test source's frames: keyframes forced at the
//! source's (same instants in every rendition), and bad input (corrupt frames, a source
//! that changes size mid-stream through in-band parameter sets) logged and survived.

use popcast_config::{FrameRate, LadderConfig, TestSourceConfig};
use popcast_packager::ffmpeg::ladder::{Ladder, LadderSettings};
use popcast_packager::ffmpeg::{Pacing, TestSource};
use popcast_packager::ladder::plan;
use popcast_packager::media::{CodecConfig, Frame, TrackId};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn source(width: u32, height: u32) -> TestSource {
    let cfg = TestSourceConfig {
        width,
        height,
        frame_rate: FrameRate { num: 30, den: 1 },
        keyframe_interval_ms: 500,
        video_kbps: 1500,
        ..TestSourceConfig::default()
    };
    TestSource::start(&cfg, Pacing::Unpaced).expect("the test source starts")
}

fn video(src: &mut TestSource, n: usize) -> Vec<Frame> {
    let mut out = Vec::new();
    while out.len() < n {
        let f = src.blocking_recv().expect("frames");
        if f.track == TestSource::VIDEO {
            out.push(f);
        }
    }
    out
}

type Out = Arc<Mutex<BTreeMap<TrackId, Vec<Frame>>>>;

fn start(src: &TestSource, lossless: bool) -> (Ladder, Out, Vec<popcast_packager::ladder::Target>) {
    let track = src.tracks()[0].clone();
    let targets = plan(&track.video.unwrap(), &LadderConfig::default());
    let out: Out = Arc::default();
    let sink_out = out.clone();
    let sink = Arc::new(move |f: Frame| {
        sink_out.lock().unwrap().entry(f.track).or_default().push(f);
    });
    let settings = LadderSettings {
        lossless,
        preset: "ultrafast".into(),
        ..LadderSettings::from_config(&LadderConfig::default())
    };
    let ladder = Ladder::start(&track, &targets, &settings, sink).expect("the ladder starts");
    (ladder, out, targets)
}

fn wait_for(out: &Out, tracks: usize, frames: usize) {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let o = out.lock().unwrap();
        if o.len() == tracks && o.values().all(|v| v.len() >= frames) {
            return;
        }
        let counts: Vec<_> = o
            .iter()
            .map(|(t, v)| (t.0, v.len(), v.iter().map(|f| f.pts).max()))
            .collect();
        drop(o);
        assert!(
            Instant::now() < until,
            "timed out waiting for {frames} frames per rendition: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_rendition_has_its_keyframes_exactly_at_the_sources() {
    let mut src = source(1280, 720);
    let frames = video(&mut src, 90);
    let (ladder, out, targets) = start(&src, true);
    assert_eq!(
        targets.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["480p", "360p"]
    );
    for t in ladder.tracks() {
        let CodecConfig::H264(avc) = &t.codec else {
            panic!("H.264")
        };
        let v = t.video.unwrap();
        assert_eq!((avc.sps_info().width, avc.sps_info().height), (v.width, v.height));
    }
    for f in &frames {
        ladder.push(f.clone());
    }
    drop(ladder);
    wait_for(&out, 2, 90);
    let want: BTreeSet<i64> = frames.iter().filter(|f| f.keyframe).map(|f| f.pts).collect();
    assert_eq!(want.len(), 6, "a keyframe every 500 ms");
    for (track, got) in out.lock().unwrap().iter() {
        let keys: BTreeSet<i64> = got.iter().filter(|f| f.keyframe).map(|f| f.pts).collect();
        assert_eq!(keys, want, "rendition {track:?}");
        // Timestamps kept, decode order increasing.
        assert_eq!(
            got.iter().map(|f| f.pts).collect::<Vec<_>>(),
            frames.iter().map(|f| f.pts).collect::<Vec<_>>()
        );
        assert!(got.windows(2).all(|w| w[1].dts > w[0].dts));
        assert!(got.iter().zip(&frames).all(|(o, s)| o.arrived == s.arrived));
    }
}

#[test]
fn corrupt_frames_and_a_mid_stream_size_change_are_survived() {
    let mut big = source(1280, 720);
    let first = video(&mut big, 30);
    let (ladder, out, _) = start(&big, true);
    // 1. Frames 5..10 are garbage: the decoder says so, skips to the next keyframe (15).
    for (i, f) in first.iter().enumerate() {
        let mut f = f.clone();
        if (5..10).contains(&i) {
            f.payload = bytes::Bytes::from(vec![0, 0, 0, 9, 0x65, 0xff, 0x13, 0x37, 0, 1, 2, 3, 4]);
        }
        ladder.push(f);
    }
    // 2. The source changes size (960x540) with its SPS and PPS in band before each
    //    keyframe, as encoders that restart do: the renditions keep their sizes.
    let mut small = source(960, 540);
    let CodecConfig::H264(avc) = &small.tracks()[0].codec.clone() else {
        panic!("H.264")
    };
    let next_pts = first.last().unwrap().pts + 3000;
    let resized = video(&mut small, 30);
    let offset = next_pts - resized[0].pts;
    for f in &resized {
        let mut f = f.clone();
        f.pts += offset;
        f.dts += offset;
        if f.keyframe {
            let mut with_ps = Vec::new();
            for ps in avc.sps().iter().chain(avc.pps()) {
                with_ps.extend_from_slice(&(ps.len() as u32).to_be_bytes());
                with_ps.extend_from_slice(ps);
            }
            with_ps.extend_from_slice(&f.payload);
            f.payload = bytes::Bytes::from(with_ps);
        }
        ladder.push(f);
    }
    let stats = ladder.stats().clone();
    drop(ladder);
    // 30 + 30 frames in, less the five garbage ones and those up to the next keyframe (15),
    // and at the size change at most one GOP (the decoder re-initialises at the new
    // parameter sets and may drop what comes before the next keyframe).
    wait_for(&out, 2, 35);
    assert!(stats.decode_errors.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    for (track, got) in out.lock().unwrap().iter() {
        let after = got.iter().filter(|f| f.pts >= next_pts).count();
        assert!(after >= 15, "{track:?}: {after} frames after the size change");
        assert!(got.iter().filter(|f| f.pts >= next_pts).any(|f| f.keyframe));
    }
}
