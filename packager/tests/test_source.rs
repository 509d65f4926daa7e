//! The built-in test source checked by an independent decoder: its H.264 and AAC frames are
//! written out as elementary streams and read back with the ffprobe CLI (installed by
//! `make test`), which must agree on codec, size, frame rate and keyframes.

use popcast_config::{FrameRate, TestSourceConfig};
use popcast_packager::codec::avcc_to_annexb;
use popcast_packager::ffmpeg::{Pacing, TestSource, TestSourceError};
use popcast_packager::media::{CodecConfig, Frame};
use std::time::{Duration, Instant};

mod support;
use support::{Scratch, ffprobe_json};

fn small(width: u32, height: u32, fps: FrameRate) -> TestSourceConfig {
    TestSourceConfig {
        width,
        height,
        frame_rate: fps,
        video_kbps: 600,
        ..TestSourceConfig::default()
    }
}

/// Pulls `n_video` video frames (and the audio produced meanwhile).
fn collect(source: &mut TestSource, n_video: usize) -> (Vec<Frame>, Vec<Frame>) {
    let (mut video, mut audio) = (Vec::new(), Vec::new());
    while video.len() < n_video {
        let f = source.blocking_recv().expect("source keeps producing");
        if f.track == TestSource::VIDEO {
            video.push(f);
        } else {
            audio.push(f);
        }
    }
    (video, audio)
}

#[test]
fn ffprobe_agrees_on_codec_size_frame_rate_and_keyframes() {
    // 29.97 fps: ffprobe's raw H.264 reader assumes 25 fps unless the SPS says otherwise,
    // so agreement here proves the stream carries its own timing.
    let config = TestSourceConfig {
        keyframe_interval_ms: 1000,
        ..small(640, 360, FrameRate::new(30000, 1001))
    };
    let scratch = Scratch::new("ffprobe");
    let mut source = TestSource::start(&config, Pacing::Unpaced).unwrap();
    let CodecConfig::H264(avc) = &source.tracks()[0].codec else {
        panic!("video track first")
    };
    let avc = avc.clone();
    let CodecConfig::Aac(asc) = source.tracks()[1].codec.clone() else {
        panic!("audio track second")
    };
    assert!(avc.codec_string().starts_with("avc1."));
    let (video, audio) = collect(&mut source, 60);
    source.stop().unwrap();

    // Our own view: 90 kHz timestamps 3003 apart, keyframes every 30 frames (1000 ms
    // rounded to the nearest whole frame at 29.97 fps).
    for (i, f) in video.iter().enumerate() {
        assert_eq!(f.pts, i as i64 * 3003, "frame {i} pts");
        assert_eq!(f.dts, f.pts, "no B-frames");
        assert_eq!(f.keyframe, i % 30 == 0, "frame {i} keyframe flag");
    }
    // AAC's first packet holds the encoder's 1024 priming samples, stamped before zero; the
    // packager decides how to present them (edit list or trimming).
    assert_eq!(audio[0].pts, -1024, "AAC priming");
    assert!(audio.windows(2).all(|p| p[1].pts - p[0].pts == 1024));

    // Annex B elementary stream: parameter sets before each keyframe.
    let mut es = Vec::new();
    for f in &video {
        if f.keyframe {
            for ps in avc.sps().iter().chain(avc.pps()) {
                es.extend_from_slice(&[0, 0, 0, 1]);
                es.extend_from_slice(ps);
            }
        }
        es.extend_from_slice(&avcc_to_annexb(&f.payload, avc.nal_length_size()).unwrap());
    }
    let h264 = scratch.file("video.h264");
    std::fs::write(&h264, &es).unwrap();
    let json = ffprobe_json(
        &[
            "-count_frames",
            "-show_entries",
            "stream=codec_name,width,height,r_frame_rate,nb_read_frames",
        ],
        &h264,
    );
    let compact: String = json.split_whitespace().collect();
    for want in [
        r#""codec_name":"h264""#,
        r#""width":640"#,
        r#""height":360"#,
        r#""r_frame_rate":"30000/1001""#,
        r#""nb_read_frames":"60""#,
    ] {
        assert!(compact.contains(want), "ffprobe said {json}, wanted {want}");
    }
    let frames: String = ffprobe_json(&["-show_entries", "frame=key_frame"], &h264)
        .split_whitespace()
        .collect();
    let keys: Vec<bool> = frames
        .split(r#""key_frame":"#)
        .skip(1)
        .map(|rest| rest.starts_with('1'))
        .collect();
    let ours: Vec<bool> = video.iter().map(|f| f.keyframe).collect();
    assert_eq!(keys, ours, "ffprobe's keyframes differ from our flags");

    // Audio: raw AAC frames, wrapped in ADTS so ffprobe can read them.
    let mut adts = Vec::new();
    for f in &audio {
        adts.extend_from_slice(&adts_header(
            asc.object_type,
            asc.sample_rate,
            asc.channel_config,
            f.payload.len(),
        ));
        adts.extend_from_slice(&f.payload);
    }
    let aac = scratch.file("audio.aac");
    std::fs::write(&aac, &adts).unwrap();
    let json = ffprobe_json(&["-show_entries", "stream=codec_name,sample_rate,channels"], &aac);
    let compact: String = json.split_whitespace().collect();
    for want in [
        r#""codec_name":"aac""#,
        r#""sample_rate":"48000""#,
        r#""channels":2"#,
    ] {
        assert!(compact.contains(want), "ffprobe said {json}, wanted {want}");
    }
    // Audio keeps pace with video: 60 frames at 29.97 fps is 2.0 s, i.e. ~94 AAC frames.
    let audio_secs = audio.len() as f64 * 1024.0 / 48_000.0;
    assert!(
        (audio_secs - 2.0).abs() < 0.2,
        "{} AAC frames for 2.0 s of video",
        audio.len()
    );
}

/// A 7-byte ADTS header (ISO/IEC 13818-7) for one raw AAC frame.
fn adts_header(object_type: u8, sample_rate: u32, channels: u8, payload: usize) -> [u8; 7] {
    let rates = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000,
    ];
    let index = rates.iter().position(|&r| r == sample_rate).unwrap() as u8;
    let len = payload + 7;
    [
        0xff,
        0xf1,
        ((object_type - 1) << 6) | (index << 2) | (channels >> 2),
        ((channels & 3) << 6) | ((len >> 11) as u8 & 0x3),
        (len >> 3) as u8,
        ((len as u8 & 7) << 5) | 0x1f,
        0xfc,
    ]
}

#[test]
fn real_time_pacing_releases_frames_when_due() {
    let config = small(320, 180, FrameRate::new(30000, 1001));
    // Timed from before start(): every frame is due after this instant, however long the
    // encoders take to open on a busy machine.
    let started = Instant::now();
    let mut source = TestSource::start(&config, Pacing::RealTime).unwrap();
    let (video, audio) = collect(&mut source, 45); // 1.5 s of 29.97 fps
    let elapsed = started.elapsed();
    source.stop().unwrap();
    // Frame 44 is due 44 * 1001/30000 = 1.468 s after the first; generous upper bound.
    assert!(
        elapsed >= Duration::from_millis(1_468),
        "released too early: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(20), "far too slow: {elapsed:?}");
    // No frame is handed out before its time: relative to the first frame's release, frame i
    // is never more than a small margin early (the first may itself be a few ms late).
    let first = video[0].arrived;
    for (i, f) in video.iter().enumerate() {
        let due = Duration::from_nanos((f.pts - video[0].pts) as u64 * 1_000_000_000 / 90_000);
        let after_first = f.arrived.duration_since(first).unwrap_or_default();
        assert!(
            after_first + Duration::from_millis(100) >= due,
            "frame {i} early: {after_first:?} < {due:?}"
        );
    }
    for pair in video.windows(2) {
        assert_eq!(
            pair[1].pts - pair[0].pts,
            3003,
            "29.97 fps is exactly 3003 ticks at 90 kHz"
        );
        assert!(pair[1].arrived >= pair[0].arrived);
    }
    assert!(audio.windows(2).all(|p| p[1].pts - p[0].pts == 1024));
}

#[test]
fn missing_encoder_and_font_are_named() {
    let bad = TestSourceConfig {
        encoder: "no_such_encoder".into(),
        ..small(320, 180, FrameRate::new(30, 1))
    };
    match TestSource::start(&bad, Pacing::Unpaced) {
        Err(TestSourceError::EncoderMissing(name)) => assert_eq!(name, "no_such_encoder"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("started without an encoder"),
    }
    let bad = TestSourceConfig {
        font: "/nonexistent/font.ttf".into(),
        ..small(320, 180, FrameRate::new(30, 1))
    };
    match TestSource::start(&bad, Pacing::Unpaced) {
        Err(e @ TestSourceError::Font { .. }) => assert!(e.to_string().contains("/nonexistent/font.ttf")),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("started without a font"),
    }
}
