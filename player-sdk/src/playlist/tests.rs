use super::*;

const MEDIA: &str = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-PART-INF:PART-TARGET=0.2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=0.6
#EXT-X-MEDIA-SEQUENCE:40
#EXT-X-DISCONTINUITY-SEQUENCE:1
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-11-24T04:22:54.000Z
#EXTINF:1.00000,
40.m4s
#EXT-X-DISCONTINUITY
#EXT-X-PROGRAM-DATE-TIME:2026-11-24T04:22:56.000Z
#EXT-X-PART:DURATION=0.20000,URI=\"41.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI=\"41.1.m4s\"
#EXTINF:1.00000,
41.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-24T04:22:57.000Z
#EXT-X-PART:DURATION=0.20000,URI=\"42.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI=\"42.1.m4s\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"42.2.m4s\"
#EXT-X-RENDITION-REPORT:URI=\"../audio/index.m3u8\",LAST-MSN=42,LAST-PART=1
";

fn limits() -> Limits {
    Limits::default()
}

#[test]
fn an_ll_hls_media_playlist_reads_whole() {
    let p = parse_media(MEDIA, &limits()).unwrap();
    assert_eq!(p.version, Some(9));
    assert_eq!(p.target_duration, Duration::from_secs(2));
    assert_eq!(p.part_target, Some(Duration::from_millis(200)));
    assert!(p.server_control.can_block_reload);
    assert_eq!(p.server_control.can_skip_until, Some(Duration::from_secs(12)));
    assert_eq!(p.server_control.part_hold_back, Some(Duration::from_millis(600)));
    assert_eq!((p.media_sequence, p.discontinuity_sequence), (40, 1));
    let msns: Vec<u64> = p.segments.iter().map(|s| s.msn).collect();
    assert_eq!(msns, [40, 41, 42]);
    assert!(p.segments[1].discontinuity && !p.segments[0].discontinuity);
    assert_eq!(p.segments[1].parts.len(), 2);
    assert!(p.segments[1].parts[0].independent && !p.segments[1].parts[1].independent);
    assert_eq!(p.segments[0].map.as_deref(), Some("init.mp4"));
    let open = &p.segments[2];
    assert!(!open.is_complete());
    assert_eq!(open.media_duration(), Duration::from_millis(400));
    assert_eq!(p.last_part(), Some((42, 1)));
    assert_eq!(p.next_part(), Some((42, 2)));
    assert_eq!(
        p.preload_hint,
        Some(PreloadHint {
            kind: "PART".into(),
            uri: "42.2.m4s".into()
        })
    );
    assert_eq!(p.rendition_reports[0].last_msn, Some(42));
    assert_eq!(p.duration_from(41), Duration::from_millis(1400));
    assert!(p.segments[1].program_date_time.unwrap() > p.segments[0].program_date_time.unwrap());
    assert!(!p.ended);
}

#[test]
fn a_delta_update_merges_into_the_last_full_playlist() {
    let full = parse_media(MEDIA, &limits()).unwrap();
    let delta = "#EXTM3U
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:41
#EXT-X-DISCONTINUITY-SEQUENCE:1
#EXT-X-SKIP:SKIPPED-SEGMENTS=1
#EXT-X-PROGRAM-DATE-TIME:2026-11-24T04:22:57.000Z
#EXTINF:1.00000,
42.m4s
#EXT-X-PART:DURATION=0.20000,URI=\"43.0.m4s\",INDEPENDENT=YES
#EXT-X-ENDLIST
";
    let d = parse_media(delta, &limits()).unwrap();
    assert_eq!(d.skipped, 1);
    assert_eq!(
        d.segments[0].msn, 42,
        "the first listed segment follows the skipped ones"
    );
    let merged = full.merge_delta(d).unwrap();
    let msns: Vec<u64> = merged.segments.iter().map(|s| s.msn).collect();
    assert_eq!(msns, [41, 42, 43]);
    assert_eq!(merged.skipped, 0);
    assert!(merged.segments[0].discontinuity, "kept from the full playlist");
    assert_eq!(merged.segments[0].uri.as_deref(), Some("41.m4s"));
    assert!(merged.ended);
    // Skipping segments this player never saw: refused, so it asks for a full playlist.
    let far = delta.replace("MEDIA-SEQUENCE:41", "MEDIA-SEQUENCE:30");
    let e = full
        .merge_delta(parse_media(&far, &limits()).unwrap())
        .unwrap_err();
    assert!(matches!(e, PlaylistError::BadDelta(_)), "{e}");
}

#[test]
fn a_multivariant_playlist_lists_variants_and_their_audio() {
    let text = "#EXTM3U
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"audio\",DEFAULT=YES,URI=\"audio/index.m3u8?token=t\"
#EXT-X-STREAM-INF:BANDWIDTH=1200000,AVERAGE-BANDWIDTH=900000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO=\"aud\"
source/index.m3u8?token=t
#EXT-X-STREAM-INF:BANDWIDTH=500000,RESOLUTION=640x360
360p/index.m3u8
";
    let m = parse_multivariant(text, &limits()).unwrap();
    assert!(m.independent_segments);
    assert_eq!(m.variants.len(), 2);
    let v = &m.variants[0];
    assert_eq!(
        (v.bandwidth, v.average_bandwidth, v.resolution, v.frame_rate),
        (1_200_000, Some(900_000), Some((1280, 720)), Some(30.0))
    );
    assert_eq!(v.codecs.as_deref(), Some("avc1.64001f,mp4a.40.2"));
    assert_eq!(v.uri, "source/index.m3u8?token=t");
    assert_eq!(
        m.audio_for(v).map(|a| a.uri.as_deref()),
        Some(Some("audio/index.m3u8?token=t"))
    );
    assert_eq!(m.audio_for(&m.variants[1]), None);
}

#[test]
fn garbage_is_refused_with_the_line_and_the_problem() {
    let l = limits();
    let cases: Vec<(String, &str)> = vec![
        ("".into(), "#EXTM3U"),
        ("<html>".into(), "#EXTM3U"),
        ("#EXTM3U\n#EXTINF:1,\n".into(), "missing"),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\nseg.m4s\n".into(),
            "line 3: a URI with no #EXTINF",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:x\n".into(),
            "line 2: EXT-X-TARGETDURATION",
        ),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:0\n".into(), "outside"),
        ("#EXTM3U\n#EXTINF:1,\na\n".into(), "missing EXT-X-TARGETDURATION"),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:-1,\na\n".into(),
            "line 3: EXTINF: duration",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:1e400,\na\n".into(),
            "EXTINF",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART:DURATION=0.2\n".into(),
            "no URI",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART:URI=\"x".into(),
            "not closed",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PROGRAM-DATE-TIME:yesterday\n".into(),
            "date-time",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:99999999999999999999\n".into(),
            "whole number",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-STREAM-INF:BANDWIDTH=1\n".into(),
            "multivariant",
        ),
        (
            format!(
                "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-SKIP:SKIPPED-SEGMENTS={}\n",
                u64::MAX
            ),
            "skipped",
        ),
    ];
    for (text, want) in cases {
        let e = parse_media(&text, &l).unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}: {e} (wanted {want:?})");
    }
    for (text, want) in [
        ("#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=1x1\na\n", "no BANDWIDTH"),
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n", "no URI line"),
        (
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=big\na\n",
            "RESOLUTION",
        ),
        ("#EXTM3U\n", "no variants"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n", "media playlist"),
    ] {
        let e = parse_multivariant(text, &l).unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}: {e} (wanted {want:?})");
    }
}

#[test]
fn limits_hold() {
    let small = Limits {
        max_bytes: 64,
        ..limits()
    };
    assert!(matches!(
        parse_media(MEDIA, &small),
        Err(PlaylistError::TooLarge { .. })
    ));
    let few = Limits {
        max_segments: 1,
        ..limits()
    };
    assert!(matches!(
        parse_media(MEDIA, &few),
        Err(PlaylistError::TooMany { what: "segments", .. })
    ));
    let mut many_parts = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:2\n");
    for i in 0..3 {
        many_parts.push_str(&format!("#EXT-X-PART:DURATION=0.1,URI=\"{i}\"\n"));
    }
    let two = Limits {
        max_parts_per_segment: 2,
        ..limits()
    };
    assert!(matches!(
        parse_media(&many_parts, &two),
        Err(PlaylistError::TooMany { .. })
    ));
}
