//! The slate's cards checked by an independent decoder: the GOP written as an H.264
//! elementary stream must be read back by ffprobe at the asked size and frame count, text
//! from operators must not reach FFmpeg's filter syntax, and silence must be real AAC.

use popcast_packager::codec::avcc_to_annexb;
use popcast_packager::ffmpeg::slate::{
    CardSpec, MAX_LINE_CHARS, SlateError, card_line, encode_card, encode_silence,
};
use popcast_packager::media::CodecConfig;
use std::time::Instant;

mod support;
use support::{Scratch, ffprobe_json};

fn spec(title: &str, status: &str) -> CardSpec {
    CardSpec {
        width: 640,
        height: 360,
        fps: 30,
        gop_ms: 1000,
        video_kbps: 400,
        encoder: "libx264".into(),
        font: "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf".into(),
        title: title.into(),
        status: status.into(),
    }
}

#[test]
fn a_card_is_one_closed_gop_that_ffprobe_decodes_at_its_size() {
    let scratch = Scratch::new("slate");
    let started = Instant::now();
    let card = encode_card(&spec("Pop-up clinic", "Starts in 12 min")).unwrap();
    let cost = started.elapsed();
    assert_eq!(card.frames.len(), 30);
    assert_eq!(card.duration, 90_000);
    assert!(card.frames[0].keyframe && card.frames[1..].iter().all(|f| !f.keyframe));
    assert!(
        card.frames
            .iter()
            .enumerate()
            .all(|(i, f)| f.dts == i as i64 * 3000 && f.pts == f.dts)
    );
    let CodecConfig::H264(avc) = &card.track.codec else {
        panic!("video")
    };
    let mut es = Vec::new();
    // Twice: the loop must decode across its own seam.
    for _ in 0..2 {
        for ps in avc.sps().iter().chain(avc.pps()) {
            es.extend_from_slice(&[0, 0, 0, 1]);
            es.extend_from_slice(ps);
        }
        for f in &card.frames {
            es.extend_from_slice(&avcc_to_annexb(&f.payload, avc.nal_length_size()).unwrap());
        }
    }
    let h264 = scratch.file("card.h264");
    std::fs::write(&h264, &es).unwrap();
    let json: String = ffprobe_json(
        &[
            "-count_frames",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
        ],
        &h264,
    )
    .split_whitespace()
    .collect();
    for want in [
        r#""codec_name":"h264""#,
        r#""width":640"#,
        r#""height":360"#,
        r#""nb_read_frames":"60""#,
    ] {
        assert!(json.contains(want), "ffprobe said {json}, wanted {want}");
    }
    let bytes: usize = card.frames.iter().map(|f| f.payload.len()).sum();
    println!("card 640x360, 30 frames: {bytes} bytes, encoded in {cost:?}");

    // The text is drawn: another status gives another picture.
    let other = encode_card(&spec("Pop-up clinic", "We'll be right back")).unwrap();
    assert_ne!(other.frames[0].payload, card.frames[0].payload);
}

#[test]
fn operator_text_never_reaches_the_filter_syntax() {
    // Quotes, colons, backslashes, drawtext's %{} expansion and filter separators are drawn
    // as text (or at worst as glyphs), never parsed.
    let hostile = r"it's: 100% [live] \ %{pts} ;drawtext=text=x, 'end";
    let card = encode_card(&spec(hostile, "x:y'z")).unwrap();
    assert_eq!(card.frames.len(), 30);
    let long = "a".repeat(500);
    assert_eq!(card_line(&long).chars().count(), MAX_LINE_CHARS);
    assert_eq!(card_line("tab\there\nnewline"), "tabherenewline");
    encode_card(&spec(&long, "")).unwrap();
}

#[test]
fn bad_sizes_and_missing_fonts_are_named() {
    let odd = CardSpec {
        width: 641,
        ..spec("t", "s")
    };
    assert!(matches!(encode_card(&odd), Err(SlateError::BadSize { .. })));
    let nofont = CardSpec {
        font: "/nonexistent/font.ttf".into(),
        ..spec("t", "s")
    };
    let err = encode_card(&nofont).unwrap_err().to_string();
    assert!(err.contains("fonts-dejavu-core"), "{err}");
}

#[test]
fn silence_is_one_repeatable_aac_frame() {
    let s = encode_silence(48_000, 2).unwrap();
    let CodecConfig::Aac(asc) = &s.track.codec else {
        panic!("audio")
    };
    assert_eq!((asc.sample_rate, asc.channel_config), (48_000, 2));
    assert!(
        !s.frame.is_empty() && s.frame.len() < 64,
        "{} bytes",
        s.frame.len()
    );
    let scratch = Scratch::new("silence");
    // ADTS-wrap 50 copies and have ffprobe decode them.
    let mut adts = Vec::new();
    for _ in 0..50 {
        let len = s.frame.len() + 7;
        adts.extend_from_slice(&[
            0xff,
            0xf1,
            (1 << 6) | (3 << 2), // LC, 48 kHz (index 3), channel count's high bit 0
            (2 << 6) | (len >> 11) as u8, // 2 channels
            (len >> 3) as u8,
            ((len & 7) << 5) as u8 | 0x1f,
            0xfc,
        ]);
        adts.extend_from_slice(&s.frame);
    }
    let f = scratch.file("silence.aac");
    std::fs::write(&f, &adts).unwrap();
    let json: String = ffprobe_json(
        &[
            "-count_frames",
            "-show_entries",
            "stream=codec_name,sample_rate,channels,nb_read_frames",
        ],
        &f,
    )
    .split_whitespace()
    .collect();
    for want in [
        r#""codec_name":"aac""#,
        r#""sample_rate":"48000""#,
        r#""channels":2"#,
        r#""nb_read_frames":"50""#,
    ] {
        assert!(json.contains(want), "ffprobe said {json}, wanted {want}");
    }
}
