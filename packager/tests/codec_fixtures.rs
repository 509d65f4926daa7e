//! Codec records read from real encoder output: the ffmpeg CLI (installed by `make test`)
//! encodes short test patterns with libx264 and libopus, our parsers read the SPS and the
//! OpusHead, and ffprobe and FFmpeg's MP4 muxer are the independent readers and writers.

use popcast_packager::codec::{
    AvcDecoderConfig, NalUnitType, OpusConfig, PicOrderCnt, Sps, annexb_nal_units,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch directory removed when the test ends (pass or fail).
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("popcast-codec-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a CLI tool and returns its stdout, failing the test with its stderr.
fn run(tool: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} (installed by `make test`): {e}"));
    assert!(
        out.status.success(),
        "{tool} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `ffprobe -show_streams` of the file's first stream, as key=value pairs.
fn probe(path: &Path) -> HashMap<String, String> {
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "0",
            "-show_streams",
            "-of",
            "default=noprint_wrappers=1",
            path.to_str().unwrap(),
        ],
    );
    String::from_utf8(out)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The body of the first box of type `kind` in an MP4 file (found by its fourcc).
fn box_body(file: &[u8], kind: &[u8; 4]) -> Vec<u8> {
    let at = file
        .windows(4)
        .position(|w| w == kind)
        .unwrap_or_else(|| panic!("no {} box", String::from_utf8_lossy(kind)));
    let size = u32::from_be_bytes(file[at - 4..at].try_into().unwrap()) as usize;
    file[at + 4..at - 4 + size].to_vec()
}

/// FFmpeg's name for a profile, as ffprobe prints it.
fn ffmpeg_profile_name(sps: &Sps) -> &'static str {
    let cs1 = sps.constraint_flags & 0x40 != 0;
    let cs3 = sps.constraint_set3();
    match (sps.profile_idc, cs1, cs3) {
        (66, true, _) => "Constrained Baseline",
        (66, false, _) => "Baseline",
        (77, ..) => "Main",
        (88, ..) => "Extended",
        (100, ..) => "High",
        (110, _, true) => "High 10 Intra",
        (110, ..) => "High 10",
        (122, _, true) => "High 4:2:2 Intra",
        (122, ..) => "High 4:2:2",
        (244, _, true) => "High 4:4:4 Intra",
        (244, ..) => "High 4:4:4 Predictive",
        (44, ..) => "CAVLC 4:4:4",
        _ => "unknown",
    }
}

/// `(chroma_format_idc, bit depth)` of an FFmpeg pixel format name.
fn pix_fmt_format(pix_fmt: &str) -> (u8, u8) {
    let depth = if pix_fmt.ends_with("10le") { 10 } else { 8 };
    let chroma = match pix_fmt {
        f if f.starts_with("gray") => 0,
        f if f.contains("420") => 1,
        f if f.contains("422") => 2,
        f if f.contains("444") => 3,
        f => panic!("unexpected pix_fmt {f}"),
    };
    (chroma, depth)
}

fn reduce((x, y): (u16, u16)) -> (u16, u16) {
    let (mut a, mut b) = (x, y);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    (x / a, y / a)
}

/// One libx264 encode of two frames of a test pattern.
/// x264 with NAL HRD signalling at a constant 500 kbit/s.
const HRD_CBR_ARGS: &[&str] = &[
    "-x264-params",
    "nal-hrd=cbr:force-cfr=1",
    "-b:v",
    "500k",
    "-maxrate",
    "500k",
    "-bufsize",
    "1M",
];

struct Encode {
    name: &'static str,
    /// The lavfi source, e.g. `testsrc2=size=854x480:rate=30000/1001`.
    source: &'static str,
    /// Extra ffmpeg output options (profile, pixel format, filters, x264 tuning).
    args: &'static [&'static str],
}

/// What the encode produced: the Annex B stream's SPS and PPS, and what ffprobe says.
struct Encoded {
    sps: Sps,
    sps_nal: Vec<u8>,
    pps_nal: Vec<u8>,
    probe: HashMap<String, String>,
    /// The `avcC` FFmpeg's MP4 muxer writes for the same stream.
    ffmpeg_avcc: Vec<u8>,
}

impl Encode {
    fn run(&self, scratch: &Scratch) -> Encoded {
        let h264 = scratch.path(&format!("{}.h264", self.name));
        let mp4 = scratch.path(&format!("{}.mp4", self.name));
        let mut args = vec!["-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", self.source];
        args.extend_from_slice(self.args);
        args.extend_from_slice(&["-frames:v", "2", "-c:v", "libx264", "-f", "h264"]);
        args.push(h264.to_str().unwrap());
        run("ffmpeg", &args);
        let stream = std::fs::read(&h264).unwrap();
        let nal_of = |t: NalUnitType| {
            annexb_nal_units(&stream)
                .find(|n| NalUnitType::of(n) == Some(t))
                .unwrap_or_else(|| panic!("{}: no NAL unit of type {}", self.name, t.0))
                .to_vec()
        };
        let sps_nal = nal_of(NalUnitType::SPS);
        let pps_nal = nal_of(NalUnitType::PPS);
        let sps = Sps::parse(&sps_nal).unwrap_or_else(|e| panic!("{}: {e}", self.name));
        run(
            "ffmpeg",
            &[
                "-v",
                "error",
                "-nostdin",
                "-y",
                "-f",
                "h264",
                "-i",
                h264.to_str().unwrap(),
                "-c",
                "copy",
                mp4.to_str().unwrap(),
            ],
        );
        Encoded {
            sps,
            sps_nal,
            pps_nal,
            probe: probe(&h264),
            ffmpeg_avcc: box_body(&std::fs::read(&mp4).unwrap(), b"avcC"),
        }
    }
}

/// Checks our reading of the SPS against ffprobe's, field by field, and our `avcC` against
/// FFmpeg's.
fn check_against_ffprobe(e: &Encoded, name: &str) {
    let p = |k: &str| {
        e.probe
            .get(k)
            .unwrap_or_else(|| panic!("{name}: ffprobe printed no {k}"))
            .as_str()
    };
    let sps = &e.sps;
    assert_eq!(ffmpeg_profile_name(sps), p("profile"), "{name}: profile");
    assert_eq!(sps.level_idc.to_string(), p("level"), "{name}: level");
    assert_eq!(sps.width.to_string(), p("width"), "{name}: width");
    assert_eq!(sps.height.to_string(), p("height"), "{name}: height");
    let (n, d) = sps.frame_rate.unwrap_or_else(|| panic!("{name}: no frame rate"));
    assert_eq!(format!("{n}/{d}"), p("r_frame_rate"), "{name}: frame rate");
    assert_eq!(
        sps.bit_depth_luma.to_string(),
        p("bits_per_raw_sample"),
        "{name}: bit depth"
    );
    // FFmpeg decodes monochrome H.264 into 4:2:0 with grey chroma, so its pix_fmt says 4:2:0.
    let (chroma, depth) = pix_fmt_format(p("pix_fmt"));
    let ours = if sps.chroma_format_idc == 0 {
        1
    } else {
        sps.chroma_format_idc
    };
    assert_eq!((ours, sps.bit_depth_chroma), (chroma, depth), "{name}: pix_fmt");
    let sar = sps.sample_aspect_ratio().map(reduce);
    let sar = sar.map_or("N/A".to_owned(), |(w, h)| format!("{w}:{h}"));
    assert_eq!(sar, p("sample_aspect_ratio"), "{name}: sample aspect ratio");
    assert_eq!(
        sps.max_num_reorder_frames().to_string(),
        p("has_b_frames"),
        "{name}: reordering"
    );
    assert_eq!(
        sps.frame_mbs_only,
        p("field_order") == "progressive",
        "{name}: field order"
    );

    // Our record from the same parameter sets is byte for byte FFmpeg's.
    let rec = AvcDecoderConfig::from_parameter_sets(&[&e.sps_nal], &[&e.pps_nal]).unwrap();
    assert_eq!(rec.sps_info(), sps);
    let ours = rec.to_bytes();
    assert_eq!(&ours[..], &e.ffmpeg_avcc[..], "{name}: avcC");
    let theirs = AvcDecoderConfig::parse(&e.ffmpeg_avcc).unwrap_or_else(|err| panic!("{name}: {err}"));
    assert_eq!(theirs.sps_info(), sps);
    assert_eq!(theirs.codec_string(), rec.codec_string());
    assert_eq!(
        rec.codec_string(),
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            sps.profile_idc, sps.constraint_flags, sps.level_idc
        )
    );
}

#[test]
fn x264_profiles_sizes_and_rates_match_ffprobe() {
    let scratch = Scratch::new("x264");
    let encodes = [
        Encode {
            name: "high-1080p-ntsc",
            source: "testsrc2=size=1920x1080:rate=30000/1001",
            args: &["-profile:v", "high"],
        },
        Encode {
            name: "baseline-640x360",
            source: "testsrc2=size=640x360:rate=25",
            args: &["-profile:v", "baseline"],
        },
        Encode {
            name: "main-854x480",
            source: "testsrc2=size=854x480:rate=24000/1001",
            args: &["-profile:v", "main"],
        },
        Encode {
            name: "high-1280x718",
            source: "testsrc2=size=1280x718:rate=60",
            args: &[],
        },
        Encode {
            name: "high10",
            source: "testsrc2=size=1280x720:rate=50",
            args: &["-pix_fmt", "yuv420p10le"],
        },
        Encode {
            name: "high422",
            source: "testsrc2=size=640x480:rate=25",
            args: &["-pix_fmt", "yuv422p"],
        },
        Encode {
            name: "high444-odd",
            source: "testsrc2=size=854x480:rate=30",
            args: &["-vf", "scale=853:479", "-pix_fmt", "yuv444p"],
        },
        Encode {
            name: "monochrome-odd",
            source: "testsrc2=size=320x240:rate=25",
            args: &["-vf", "scale=318:238,format=gray"],
        },
        Encode {
            name: "interlaced-1080i",
            source: "testsrc2=size=1920x1080:rate=25",
            args: &["-flags", "+ildct", "-x264-params", "force-cfr=1"],
        },
        Encode {
            name: "sar-5-4-zerolatency",
            source: "testsrc2=size=320x240:rate=25",
            args: &["-vf", "setsar=5/4", "-tune", "zerolatency"],
        },
        Encode {
            name: "hrd-cbr",
            source: "testsrc2=size=320x240:rate=25",
            args: HRD_CBR_ARGS,
        },
    ];
    let mut sps = HashMap::new();
    for encode in &encodes {
        let e = encode.run(&scratch);
        check_against_ffprobe(&e, encode.name);
        sps.insert(encode.name, e.sps);
    }
    // What ffprobe cannot show: the cropping arithmetic's inputs.
    let mono = &sps["monochrome-odd"];
    assert_eq!((mono.chroma_format_idc, mono.crop_unit()), (0, (1, 1)));
    assert_eq!((mono.width, mono.height), (318, 238));
    let yuv444 = &sps["high444-odd"];
    assert_eq!((yuv444.crop_unit(), yuv444.coded_width()), ((1, 1), 864));
    let interlaced = &sps["interlaced-1080i"];
    assert_eq!(
        (interlaced.crop_unit(), interlaced.coded_height()),
        ((2, 4), 1088)
    );
    let ntsc = &sps["high-1080p-ntsc"];
    assert_eq!((ntsc.crop_unit(), ntsc.coded_height()), ((2, 2), 1088));
    assert_eq!(sps["high422"].crop_unit(), (2, 1));
}

#[test]
fn x264_reordering_follows_b_frames() {
    let scratch = Scratch::new("reorder");
    let with_b = Encode {
        name: "bf2",
        source: "testsrc2=size=640x360:rate=30",
        args: &["-bf", "2", "-x264-params", "b-pyramid=none"],
    }
    .run(&scratch);
    let zero_latency = Encode {
        name: "zerolatency",
        source: "testsrc2=size=640x360:rate=30",
        args: &["-tune", "zerolatency"],
    }
    .run(&scratch);
    for (e, name) in [(&with_b, "bf2"), (&zero_latency, "zerolatency")] {
        check_against_ffprobe(e, name);
    }
    assert_eq!(with_b.sps.max_num_reorder_frames(), 1);
    assert!(matches!(with_b.sps.pic_order_cnt, PicOrderCnt::Type0 { .. }));
    assert_eq!(zero_latency.sps.max_num_reorder_frames(), 0);
    assert_eq!(zero_latency.sps.pic_order_cnt, PicOrderCnt::Type2);
    // x264 marks the rate fixed only when told the input is constant-rate.
    let timing = |e: &Encoded| e.sps.vui.as_ref().and_then(|v| v.timing).unwrap();
    assert!(!timing(&with_b).fixed_frame_rate);
    assert!(timing(&zero_latency).fixed_frame_rate);
    assert_eq!(with_b.sps.video_shape().frame_rate, Some((30, 1)));
}

#[test]
fn x264_hrd_parameters_carry_the_rate_control() {
    let scratch = Scratch::new("hrd");
    let e = Encode {
        name: "cbr",
        source: "testsrc2=size=320x240:rate=25",
        args: HRD_CBR_ARGS,
    }
    .run(&scratch);
    let vui = e.sps.vui.as_ref().unwrap();
    let hrd = vui.nal_hrd.as_ref().expect("nal-hrd asked for");
    let cpb = hrd.cpb.first().unwrap();
    assert!(cpb.cbr);
    // BitRate and CpbSize are value << (6 + scale) and value << (4 + scale): x264 rounds
    // down to the nearest step it can send.
    assert!((499_000..=500_000).contains(&cpb.bit_rate), "{cpb:?}");
    assert!((990_000..=1_000_000).contains(&cpb.cpb_size), "{cpb:?}");
    assert!(vui.vcl_hrd.is_none() && !vui.low_delay_hrd);
    assert!(vui.timing.unwrap().fixed_frame_rate);
}

/// The OpusHead packet of an Ogg Opus stream: the first page's first packet.
fn opus_head(ogg: &[u8]) -> &[u8] {
    assert_eq!(&ogg[..4], b"OggS");
    let segments = usize::from(ogg[26]);
    let len: usize = ogg[27..27 + segments].iter().map(|&s| usize::from(s)).sum();
    let packet = &ogg[27 + segments..27 + segments + len];
    assert!(packet.starts_with(b"OpusHead"));
    packet
}

/// First packet's pts: minus the pre-skip, as FFmpeg's Ogg demuxer applies it.
fn first_pts(path: &Path) -> i64 {
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "0",
            "-show_entries",
            "packet=pts",
            "-read_intervals",
            "%+#1",
            "-of",
            "csv=p=0",
            path.to_str().unwrap(),
        ],
    );
    // csv prints "-312," (an empty side-data column) and a blank line.
    let text = String::from_utf8(out).unwrap();
    let first = text.split([',', '\n']).next().unwrap_or_default();
    first.trim().parse().unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[test]
fn libopus_heads_match_ffprobe_and_ffmpegs_dops() {
    let scratch = Scratch::new("opus");
    // (name, input rate, channels and filter, encoder options, expected family)
    let cases: [(&str, &str, &[&str], u8); 5] = [
        ("stereo-48k", "48000", &["-ac", "2"], 0),
        ("mono-16k", "16000", &["-ac", "1"], 0),
        (
            "surround-5.1",
            "48000",
            &["-af", "pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0"],
            1,
        ),
        (
            "surround-7.1",
            "48000",
            &["-af", "pan=7.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0|c6=c0|c7=c0"],
            1,
        ),
        (
            "family-255",
            "48000",
            &["-af", "pan=3c|c0=c0|c1=c0|c2=c0", "-mapping_family", "255"],
            255,
        ),
    ];
    for (name, rate, opts, family) in cases {
        let ogg = scratch.path(&format!("{name}.ogg"));
        let mp4 = scratch.path(&format!("{name}.mp4"));
        let source = format!("sine=frequency=440:sample_rate={rate}");
        let mut args = vec![
            "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", &source, "-t", "0.1",
        ];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["-c:a", "libopus", "-f", "ogg", ogg.to_str().unwrap()]);
        run("ffmpeg", &args);
        let data = std::fs::read(&ogg).unwrap();
        let head = opus_head(&data);
        let config = OpusConfig::parse_opus_head(head).unwrap_or_else(|e| panic!("{name}: {e}"));

        let probe = probe(&ogg);
        assert_eq!(config.channel_count.to_string(), probe["channels"], "{name}");
        assert_eq!(head.len().to_string(), probe["extradata_size"], "{name}");
        assert_eq!(-i64::from(config.pre_skip), first_pts(&ogg), "{name}: pre-skip");
        assert_eq!(config.channel_mapping_family, family, "{name}");
        assert_eq!(config.output_gain, 0);
        // libopus resamples what it cannot take (44.1 kHz) but keeps 48 and 16 kHz.
        assert_eq!(config.input_sample_rate.to_string(), rate, "{name}");
        if family != 255 {
            // Our default layout for this channel count is libopus's.
            let ours = OpusConfig::new(config.channel_count, config.pre_skip, config.input_sample_rate);
            assert_eq!(ours.unwrap(), config, "{name}");
        }
        assert_eq!(&config.to_opus_head_bytes()[..], head, "{name}");

        // FFmpeg's MP4 muxer writes the same dOps.
        run(
            "ffmpeg",
            &[
                "-v",
                "error",
                "-nostdin",
                "-y",
                "-i",
                ogg.to_str().unwrap(),
                "-c",
                "copy",
                mp4.to_str().unwrap(),
            ],
        );
        let dops = box_body(&std::fs::read(&mp4).unwrap(), b"dOps");
        assert_eq!(&config.to_dops_bytes()[..], &dops[..], "{name}: dOps");
        assert_eq!(OpusConfig::parse_dops(&dops).unwrap(), config, "{name}");
        assert_eq!(config.codec_string(), "opus");
    }
}
