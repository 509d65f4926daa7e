//! The FLV demuxer against the real ffmpeg CLI: an FLV written by libx264 (with B-frames) and
//! FFmpeg's AAC encoder, read tag by tag as the RTMP session would hand the bodies over, then
//! packaged by the segmenter.

use popcast_origin::ingest::flv::{AUDIO, FlvConfig, FlvDemuxer, FlvOutput, VIDEO};
use popcast_packager::media::{CodecConfig, Frame, TrackInfo};
use popcast_packager::segmenter::{Event, Segmenter, SegmenterConfig};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

const TAG_AUDIO: u8 = 8;
const TAG_VIDEO: u8 = 9;

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("popcast-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn ffmpeg_flv_demuxes_into_tracks_and_frames_the_segmenter_accepts() {
    let scratch = Scratch::new("flv-ffmpeg");
    let flv = scratch.0.join("x264-bf2-aac48k.flv");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-t", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "2", "-g", "30",
        ])
        .args([
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
            "-ar",
            "48000",
            "-ac",
            "2",
            "-f",
            "flv",
        ])
        .arg(&flv)
        .status()
        .expect("the ffmpeg CLI runs (make deps installs it)");
    assert!(status.success(), "ffmpeg failed: {status}");
    let tags = popcast_origin::ingest::flv::file_tags(&std::fs::read(&flv).unwrap()).expect("an FLV file");

    let mut demuxer = FlvDemuxer::new(FlvConfig::default());
    let mut tracks: Vec<TrackInfo> = Vec::new();
    let mut frames: Vec<Frame> = Vec::new();
    let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for (kind, ts, body) in tags {
        let arrived = start + Duration::from_millis(u64::from(ts));
        let out = match kind {
            TAG_VIDEO => demuxer.video(ts, body, arrived),
            TAG_AUDIO => demuxer.audio(ts, body, arrived),
            _ => continue, // onMetaData
        };
        for o in out.unwrap_or_else(|e| panic!("tag at {ts} ms: {e}")) {
            match o {
                FlvOutput::Track(t) => tracks.push(t),
                FlvOutput::Frame(f) => {
                    assert_eq!(f.arrived, arrived);
                    frames.push(f);
                }
            }
        }
    }

    assert_eq!(tracks.len(), 2, "{tracks:?}");
    assert_eq!(demuxer.tracks(), tracks);
    let video = &tracks[0];
    assert_eq!((video.id, video.timescale), (VIDEO, 90_000));
    let shape = video.video.expect("video shape");
    assert_eq!((shape.width, shape.height), (320, 180));
    let CodecConfig::H264(avc) = &video.codec else {
        panic!("{video:?}")
    };
    let codec = avc.codec_string();
    assert!(codec.starts_with("avc1.") && codec.len() == 11, "{codec}");
    let audio = &tracks[1];
    assert_eq!((audio.id, audio.timescale), (AUDIO, 48_000));
    let CodecConfig::Aac(asc) = &audio.codec else {
        panic!("{audio:?}")
    };
    assert_eq!(
        (asc.codec_string().as_str(), asc.channel_config),
        ("mp4a.40.2", 2)
    );

    let v: Vec<&Frame> = frames.iter().filter(|f| f.track == VIDEO).collect();
    assert!((58..=62).contains(&v.len()), "{} video frames", v.len());
    assert!(v[0].keyframe, "the stream starts with an IDR");
    assert!(v.iter().any(|f| f.pts != f.dts), "-bf 2 reorders frames");
    assert!(v.windows(2).all(|w| w[0].dts < w[1].dts));
    let keys: Vec<i64> = v.iter().filter(|f| f.keyframe).map(|f| f.pts).collect();
    assert_eq!(keys.len(), 2, "a keyframe per 30-frame GOP: {keys:?}");
    assert!(
        (keys[1] - keys[0] - 90_000).abs() <= 90,
        "GOP spacing of 1 s: {keys:?}"
    );
    let gop = v.iter().position(|f| f.pts == keys[1]).unwrap();
    assert_eq!(gop, 30, "the second IDR is the 31st frame in decode order");

    let a: Vec<&Frame> = frames.iter().filter(|f| f.track == AUDIO).collect();
    assert!(a.len() > 80, "{} audio frames", a.len());
    for w in a.windows(2) {
        assert_eq!(
            w[1].dts - w[0].dts,
            1024,
            "AAC frames are exactly 1024 samples apart"
        );
    }

    // What the demuxer produces is what the segmenter takes.
    let mut segmenter = Segmenter::new(SegmenterConfig::default());
    for t in &tracks {
        segmenter.add_track(t.clone()).unwrap();
    }
    for f in frames {
        segmenter.push(f.clone()).unwrap_or_else(|e| panic!("{f:?}: {e}"));
    }
    segmenter.flush();
    let events: Vec<Event> = segmenter.drain().collect();
    for id in [VIDEO, AUDIO] {
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Init { track, .. } if *track == id))
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::SegmentEnd { track, .. } if *track == id))
        );
    }
}
