//! RTMP ingest end to end: the ffmpeg CLI publishes to a real origin on loopback and ffprobe
//! and ffmpeg read the result back over HTTP; publish auth (wrong key, second publisher,
//! takeover, per-IP limits), reconnects, RTMPS, and every bad-input class, each shown to end
//! only its own session while a real publisher next to it keeps going.

mod support;

use popcast_config::Config;
use popcast_origin::Origin;
use popcast_origin::events::Events;
use popcast_origin::live::LiveEvent;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::raw::{self, Client};

const KEY_A: &str = "key-a-0123456789abcdef";
const KEY_B: &str = "key-b-0123456789abcdef";

struct Running {
    origin: Origin,
    events: Arc<Events>,
    _rt: tokio::runtime::Runtime,
}

impl Running {
    fn start(tune: impl FnOnce(&mut Config)) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut config = support::loopback_config();
        config.origin.limits.rtmp_handshake_timeout_ms = 1_000;
        tune(&mut config);
        let events = Arc::new(Events::new());
        for (name, key) in [("a", KEY_A), ("b", KEY_B)] {
            events
                .add(LiveEvent::new(name, key.as_bytes(), &config.packager))
                .unwrap();
        }
        let origin = rt.block_on(Origin::start(&config, events.clone())).unwrap();
        Self {
            origin,
            events,
            _rt: rt,
        }
    }

    fn rtmp(&self, key: &str) -> String {
        let scheme = if self.origin.tls { "rtmps" } else { "rtmp" };
        format!("{scheme}://127.0.0.1:{}/live/{key}", self.origin.rtmp_addr.port())
    }

    fn http(&self, path: &str) -> String {
        let scheme = if self.origin.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.origin.http_addr.port())
    }

    fn event(&self, name: &str) -> Arc<LiveEvent> {
        self.events.get(name).unwrap()
    }

    /// The live edge of event `name`'s video, if it has one.
    fn edge(&self, name: &str) -> Option<(u64, u32)> {
        self.event(name).store().rendition("source").ok()?.last_part()
    }

    fn source(&self, name: &str) -> Option<String> {
        self.event(name)
            .status()
            .borrow()
            .source
            .as_ref()
            .map(|s| s.to_string())
    }
}

/// ffmpeg publishing a test pattern and a tone: `-re`, libx264 zerolatency, AAC, FLV.
fn publish(url: &str, secs: u32, size: &str) -> Child {
    publish_with(
        url,
        secs,
        &[
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={size}:rate=30"),
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
        ],
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-g",
            "30",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
        ],
    )
}

/// Waits for a child with a deadline (killing it past the deadline).
fn finish(mut child: Child, secs: u64) -> Output {
    let until = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ffprobe(args: &[&str], url: &str) -> String {
    let out = Command::new("ffprobe")
        .args(["-hide_banner", "-loglevel", "error", "-rw_timeout", "10000000"])
        .args(args)
        .arg(url)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ffmpeg_publishes_and_ffprobe_and_ffmpeg_read_it_back() {
    let o = Running::start(|_| {});
    let secs = 8;
    let ff = publish(&o.rtmp(KEY_A), secs, "320x180");
    // A complete segment (the first is complete once a part of the next one is).
    wait_until(15, "the first parts", || o.edge("a").is_some());
    let (first, _) = o.edge("a").unwrap();
    wait_until(15, "the first segment", || {
        o.edge("a").is_some_and(|(m, _)| m > first)
    });
    assert!(o.source("a").unwrap().starts_with("publisher 127.0.0.1:"));
    // While live: ffprobe reads the media playlist.
    let live = ffprobe(
        &[
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
        ],
        &o.http("/live/a/source/index.m3u8"),
    );
    assert!(live.contains("h264,320,180"), "{live}");
    // Our playlists hold to the spec (the checker written from draft-22) with a real source.
    for rendition in ["source", "audio"] {
        let pl = support::curl(&[], &o.http(&format!("/live/a/{rendition}/index.m3u8"))).text();
        if let Err(v) = popcast_packager::hls::check::check_media(&pl) {
            panic!("{rendition}: {v:?}\n{pl}");
        }
        assert!(pl.contains("PART-TARGET=0.2\n") || rendition == "audio", "{pl}");
    }
    let out = finish(ff, 30);
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The publisher left without the operator ending the event: the session stays open for
    // a reconnect. End it, so readers see the whole recording with EXT-X-ENDLIST.
    o.event("a").end();
    let format = ffprobe(
        &[
            "-show_entries",
            "format=duration:stream=codec_name,width,height,sample_rate",
            "-of",
            "json",
        ],
        &o.http("/live/a/master.m3u8"),
    );
    let json: serde_json::Value = serde_json::from_str(&format).unwrap();
    let duration: f64 = json["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!(
        (duration - f64::from(secs)).abs() <= 0.1 * f64::from(secs),
        "published {secs} s, the playlist holds {duration} s"
    );
    let streams = json["streams"].as_array().unwrap();
    assert!(
        streams
            .iter()
            .any(|s| s["codec_name"] == "h264" && s["width"] == 320 && s["height"] == 180),
        "{format}"
    );
    assert!(
        streams
            .iter()
            .any(|s| s["codec_name"] == "aac" && s["sample_rate"] == "48000"),
        "{format}"
    );
    // ffmpeg reads the whole thing back into an MP4.
    let dir = std::env::temp_dir().join(format!("popcast-ingest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("back.mp4");
    let read = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
        .arg(o.http("/live/a/master.m3u8"))
        .args(["-c", "copy"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    let back = ffprobe(
        &["-show_entries", "format=duration", "-of", "csv=p=0"],
        file.to_str().unwrap(),
    );
    let d: f64 = back.trim().parse().unwrap();
    assert!(
        (d - f64::from(secs)).abs() <= 0.1 * f64::from(secs),
        "read back {d} s"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The onStatus answer to a raw publish with `key`.
fn raw_publish(o: &Running, key: &str) -> Vec<u8> {
    let mut c = Client::connect(o.origin.rtmp_addr);
    c.handshake();
    c.connect_app();
    c.publish(key);
    c.read_for(Duration::from_millis(800))
}

#[test]
fn wrong_keys_are_refused_and_a_second_publisher_waits_its_turn() {
    let o = Running::start(|_| {});
    // ffmpeg with a wrong key fails.
    let out = finish(publish(&o.rtmp("not-the-key-0123456789"), 3, "160x90"), 20);
    assert!(!out.status.success(), "ffmpeg published with a wrong key");
    let answer = raw_publish(&o, "not-the-key-0123456789");
    assert!(
        raw::contains(&answer, "NetStream.Publish.BadName"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(o.source("a").is_none() && o.source("b").is_none());

    // The right key publishes; a second publisher with the same key is refused and the
    // first carries on.
    let first = publish(&o.rtmp(KEY_A), 6, "160x90");
    wait_until(15, "the first publisher", || o.edge("a").is_some());
    let holder = o.source("a").unwrap();
    let answer = raw_publish(&o, KEY_A);
    assert!(
        raw::contains(&answer, "NetStream.Publish.BadName"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(raw::contains(&answer, "already has a publisher"));
    assert_eq!(o.source("a").unwrap(), holder);
    let before = o.edge("a").unwrap();
    wait_until(10, "the first publisher to go on", || {
        o.edge("a").unwrap() > before
    });
    let out = finish(first, 30);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn with_takeover_a_second_publisher_replaces_the_first() {
    let o = Running::start(|c| c.origin.publish_takeover = true);
    let first = publish(&o.rtmp(KEY_A), 20, "160x90");
    wait_until(15, "the first publisher", || o.edge("a").is_some());
    let holder = o.source("a").unwrap();
    let second = publish(&o.rtmp(KEY_A), 4, "160x90");
    wait_until(15, "the takeover", || o.source("a").is_some_and(|s| s != holder));
    // The first publisher's connection is closed: ffmpeg fails well before its 20 s.
    let out = finish(first, 15);
    assert!(!out.status.success());
    let out = finish(second, 30);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_publisher_that_reconnects_continues_the_session_after_a_discontinuity() {
    let o = Running::start(|_| {});
    let out = finish(publish(&o.rtmp(KEY_A), 4, "320x180"), 30);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let store = o.event("a").store();
    let (gone_at, _) = o.edge("a").unwrap();
    // A viewer polls the playlist during the gap and after: it never fails.
    std::thread::sleep(Duration::from_secs(1));
    let gap = support::curl(&[], &o.http("/live/a/source/index.m3u8"));
    assert_eq!(gap.status, 200);
    let out = finish(publish(&o.rtmp(KEY_A), 4, "320x180"), 30);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(Arc::ptr_eq(&store, &o.event("a").store()), "same session");
    let pl = support::curl(&[], &o.http("/live/a/source/index.m3u8")).text();
    assert!(pl.contains("#EXT-X-DISCONTINUITY\n"), "{pl}");
    let (edge, _) = o.edge("a").unwrap();
    assert!(
        edge > gone_at,
        "media sequence numbers go on: {gone_at} then {edge}"
    );
    if let Err(violations) = popcast_packager::hls::check::check_media(&pl) {
        panic!("{violations:?}\n{pl}");
    }
    // Read back across the discontinuity: both halves are there.
    o.event("a").end();
    let d: f64 = ffprobe(
        &["-show_entries", "format=duration", "-of", "csv=p=0"],
        &o.http("/live/a/master.m3u8"),
    )
    .trim()
    .parse()
    .unwrap();
    assert!(
        (7.0..=9.0).contains(&d),
        "two 4 s publishes, {d} s in the playlist"
    );
}

#[test]
fn rtmps_publish_and_https_playback() {
    let dir = std::env::temp_dir().join(format!("popcast-rtmps-{}", std::process::id()));
    let tls = support::self_signed(&dir);
    let cacert = tls.cert_path.display().to_string();
    let o = Running::start(|c| c.origin.tls = Some(tls));
    assert!(o.rtmp(KEY_A).starts_with("rtmps://"));
    let ff = publish(&o.rtmp(KEY_A), 4, "160x90");
    wait_until(15, "parts over RTMPS", || o.edge("a").is_some());
    let a = support::curl(&["--cacert", &cacert], &o.http("/live/a/source/index.m3u8"));
    assert_eq!(a.status, 200);
    assert!(a.text().contains("#EXT-X-PART:"));
    let out = finish(ff, 30);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Plain RTMP against the RTMPS port gets nowhere and harms nothing.
    let mut c = Client::connect(o.origin.rtmp_addr);
    let _ = c.send(&[3u8; 1537]);
    assert!(c.closed_within(Duration::from_secs(5), &mut Vec::new()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn per_ip_connection_and_publish_attempt_limits() {
    let o = Running::start(|c| {
        c.origin.limits.max_connections_per_ip = 3;
        c.origin.limits.max_publish_attempts_per_ip_per_minute = 3;
    });
    let mut held: Vec<Client> = (0..3)
        .map(|_| {
            let mut c = Client::connect(o.origin.rtmp_addr);
            c.handshake();
            c
        })
        .collect();
    let mut fourth = Client::connect(o.origin.rtmp_addr);
    assert!(
        fourth.closed_within(Duration::from_secs(3), &mut Vec::new()),
        "a 4th connection was served"
    );
    held.clear();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        let a = raw_publish(&o, "guess-0123456789abcdef");
        assert!(
            raw::contains(&a, "unknown stream key"),
            "{}",
            String::from_utf8_lossy(&a)
        );
    }
    // Over the limit even the right key is refused.
    let a = raw_publish(&o, KEY_A);
    assert!(
        raw::contains(&a, "too many publish attempts"),
        "{}",
        String::from_utf8_lossy(&a)
    );
    assert!(o.source("a").is_none());
}

/// Each bad-input class ends its own session, named in the log, while a real publisher on
/// event `b` keeps publishing and its viewers keep getting parts.
#[test]
fn bad_input_ends_only_its_own_session() {
    let o = Running::start(|c| {
        c.origin.limits.rtmp_handshake_timeout_ms = 500;
        c.origin.limits.rtmp_max_message_bytes = 1024 * 1024;
    });
    let good = publish(&o.rtmp(KEY_B), 14, "160x90");
    wait_until(15, "the good publisher", || o.edge("b").is_some());

    type Case = (&'static str, Box<dyn Fn(&mut Client)>);
    let deep = {
        let mut v = raw::string("x");
        for _ in 0..200 {
            v = raw::object(&[("n", v)]);
        }
        raw::command(&[raw::string("connect"), raw::number(1.0), v])
    };
    let cases: Vec<Case> = vec![
        (
            "stalls mid-handshake",
            Box::new(|c: &mut Client| {
                c.send(&[3u8; 700]).unwrap();
            }),
        ),
        (
            "wrong protocol version",
            Box::new(|c: &mut Client| {
                let _ = c.send(&[0x06; 1537]);
            }),
        ),
        (
            "HTTP on the RTMP port",
            Box::new(|c: &mut Client| {
                let _ = c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            }),
        ),
        (
            "continuation chunk on an unknown chunk stream",
            Box::new(|c: &mut Client| {
                c.handshake();
                let _ = c.send(&[0xC5, 1, 2, 3, 4]);
            }),
        ),
        (
            "chunk size over the limit",
            Box::new(|c: &mut Client| {
                c.handshake();
                let _ = c.message(2, 1, 0, 0, &0x7FFF_FFFFu32.to_be_bytes());
            }),
        ),
        (
            "message larger than the limit",
            Box::new(|c: &mut Client| {
                c.handshake();
                let _ = c.send(&[0x03, 0, 0, 0, 0xFF, 0xFF, 0xF0, 20, 0, 0, 0, 0]);
                let _ = c.send(&[0u8; 128]);
            }),
        ),
        (
            "AMF nested too deep",
            Box::new(move |c: &mut Client| {
                c.handshake();
                let _ = c.message(3, 20, 0, 0, &deep);
            }),
        ),
        (
            "truncated AMF",
            Box::new(|c: &mut Client| {
                c.handshake();
                let mut connect = raw::command(&[raw::string("connect"), raw::number(1.0)]);
                connect.extend_from_slice(&[0x02, 0x00, 0x40, b'l']);
                let _ = c.message(3, 20, 0, 0, &connect);
            }),
        ),
        (
            "media before publish",
            Box::new(|c: &mut Client| {
                c.handshake();
                c.connect_app();
                let _ = c.message(6, 9, 1, 0, &[0x17, 0, 0, 0, 0, 1, 2, 3]);
            }),
        ),
    ];
    for (what, case) in &cases {
        let mut c = Client::connect(o.origin.rtmp_addr);
        case(&mut c);
        let mut seen = Vec::new();
        assert!(
            c.closed_within(Duration::from_secs(5), &mut seen),
            "{what}: the session stayed open"
        );
    }
    // A publisher that vanishes in the middle of a frame: its event is freed for the next.
    let mut c = Client::connect(o.origin.rtmp_addr);
    c.handshake();
    c.connect_app();
    c.publish(KEY_A);
    let answer = c.read_for(Duration::from_millis(500));
    assert!(
        raw::contains(&answer, "NetStream.Publish.Start"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    wait_until(5, "the raw publisher to hold event a", || o.source("a").is_some());
    c.send(&[0x06, 0, 0, 0, 0, 0x10, 0x00, 9, 1, 0, 0, 0]).unwrap();
    c.send(&[0x17, 0x01, 0, 0, 0, 0, 0, 0x0F, 0xF0]).unwrap();
    drop(c);
    wait_until(5, "event a to be released", || o.source("a").is_none());
    let again = raw_publish(&o, KEY_A);
    assert!(
        raw::contains(&again, "NetStream.Publish.Start"),
        "{}",
        String::from_utf8_lossy(&again)
    );

    // Nothing else was harmed: the good publisher's viewers got new parts and it finished.
    let before = o.edge("b").unwrap();
    wait_until(10, "new parts on event b", || o.edge("b").unwrap() > before);
    let out = finish(good, 40);
    assert!(
        out.status.success(),
        "the good publisher failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ffmpeg `-re` publishing `input` for `secs`, encoded with `codec`, as FLV to `url`.
fn publish_with(url: &str, secs: u32, input: &[&str], codec: &[&str]) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(input)
        .args(["-t", &secs.to_string()])
        .args(codec)
        .args(["-f", "flv", url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ffmpeg")
}

#[test]
fn video_only_and_audio_only_publishers() {
    let o = Running::start(|_| {});
    let video = publish_with(
        &o.rtmp(KEY_A),
        5,
        &["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30"],
        &[
            "-an",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-g",
            "30",
        ],
    );
    let audio = publish_with(
        &o.rtmp(KEY_B),
        5,
        &["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"],
        &["-vn", "-c:a", "aac"],
    );
    let master = |event: &str| support::curl(&[], &o.http(&format!("/live/{event}/master.m3u8")));
    wait_until(15, "both masters", || {
        master("a").status == 200 && master("b").status == 200
    });
    let v = master("a").text();
    assert!(
        v.contains("CODECS=\"avc1.") && !v.contains("mp4a") && v.contains("RESOLUTION=320x180"),
        "{v}"
    );
    let a = master("b").text();
    assert!(
        a.contains("CODECS=\"mp4a.40.2\"") && !a.contains("avc1") && a.contains("audio/index.m3u8"),
        "{a}"
    );
    for (event, rendition) in [("a", "source"), ("b", "audio")] {
        let pl = support::curl(&[], &o.http(&format!("/live/{event}/{rendition}/index.m3u8"))).text();
        if let Err(v) = popcast_packager::hls::check::check_media(&pl) {
            panic!("{event}/{rendition}: {v:?}\n{pl}");
        }
    }
    for ff in [video, audio] {
        let out = finish(ff, 30);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}
