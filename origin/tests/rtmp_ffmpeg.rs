//! The RTMP session against a real client: the ffmpeg CLI publishes to a blocking TCP loop
//! on 127.0.0.1 that drives a `Session` and accepts every publish.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use popcast_origin::ingest::rtmp::{Session, SessionConfig, SessionEvent, amf0::Value};

/// What the server side saw: events, the session's error if any, and the client's bytes.
struct Served {
    events: Vec<SessionEvent>,
    error: Option<String>,
    client_bytes: Vec<u8>,
}

/// Serves one connection: read, feed, write replies, accept every publish.
fn serve(listener: TcpListener) -> Served {
    let mut served = Served {
        events: Vec::new(),
        error: None,
        client_bytes: Vec::new(),
    };
    listener.set_nonblocking(false).unwrap();
    let (mut sock, _) = match accept_with_timeout(&listener, Duration::from_secs(30)) {
        Some(s) => s,
        None => {
            served.error = Some("no connection".into());
            return served;
        }
    };
    sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    sock.set_nodelay(true).unwrap();
    let mut session = Session::new(SessionConfig::default());
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                served.error = Some(format!("read: {e}"));
                break;
            }
        };
        served.client_bytes.extend_from_slice(&buf[..n]);
        let result = session.receive(&buf[..n]);
        loop {
            while let Some(ev) = session.poll_event() {
                if matches!(ev, SessionEvent::PublishRequested { .. }) {
                    session.accept_publish();
                }
                served.events.push(ev);
            }
            match session.take_output() {
                Some(out) => {
                    if sock.write_all(&out).is_err() {
                        break;
                    }
                }
                None => break,
            }
        }
        if let Err(e) = result {
            served.error = Some(e.to_string());
            break;
        }
    }
    served
}

fn accept_with_timeout(
    listener: &TcpListener,
    timeout: Duration,
) -> Option<(TcpStream, std::net::SocketAddr)> {
    listener.set_nonblocking(true).ok()?;
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((s, a)) => {
                s.set_nonblocking(false).ok()?;
                return Some((s, a));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(20));
            }
            Err(_) => return None,
        }
    }
}

/// Kills the child if the test fails before it is waited for.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs ffmpeg with `args` (the URL appended) against a served session; returns ffmpeg's
/// exit status, stderr and what the server saw.
fn publish_with_ffmpeg(args: &[&str], path: &str) -> (std::process::ExitStatus, String, Served) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || serve(listener));
    let url = format!("rtmp://127.0.0.1:{port}/{path}");
    let child = Command::new("ffmpeg")
        .args(args)
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs");
    let mut child = KillOnDrop(Some(child));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let c = child.0.as_mut().unwrap();
        if let Some(status) = c.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "ffmpeg did not finish within 60 s");
        thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.0.take().and_then(|mut c| c.stderr.take()) {
        let _ = e.read_to_string(&mut stderr);
    }
    let served = server.join().expect("server thread");
    (status, stderr, served)
}

#[test]
fn ffmpeg_publishes_h264_and_aac() {
    let args = [
        "-hide_banner",
        "-loglevel",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x180:rate=30",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "3",
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
        "-f",
        "flv",
    ];
    let (status, stderr, served) = publish_with_ffmpeg(&args, "live/testkey");
    assert!(
        status.success(),
        "ffmpeg failed: {status}\n{stderr}\nserver error: {:?}",
        served.error
    );
    assert_eq!(served.error, None);
    let events = &served.events;
    assert!(
        matches!(&events[0], SessionEvent::Connected { app, .. } if app == "live"),
        "{:?}",
        events[0]
    );
    assert!(
        events.iter().any(
            |e| matches!(e, SessionEvent::PublishRequested { stream_key, .. } if stream_key == "testkey")
        ),
        "no PublishRequested"
    );
    let width = events.iter().find_map(|e| match e {
        SessionEvent::Metadata(props) => props.iter().find(|(k, _)| k == "width").map(|(_, v)| v.clone()),
        _ => None,
    });
    assert_eq!(width, Some(Value::Number(320.0)));

    let video: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Video { timestamp, data } => Some((*timestamp, data)),
            _ => None,
        })
        .collect();
    let audio: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Audio { timestamp, data } => Some((*timestamp, data)),
            _ => None,
        })
        .collect();
    assert!(video.len() >= 80, "{} video tags", video.len());
    assert!(audio.len() >= 120, "{} audio tags", audio.len());
    assert!(
        video.windows(2).all(|w| w[0].0 <= w[1].0),
        "video timestamps go back"
    );
    assert!(
        audio.windows(2).all(|w| w[0].0 <= w[1].0),
        "audio timestamps go back"
    );
    assert_eq!(
        video[0].1[..2],
        [0x17, 0],
        "first video tag is the AVC sequence header"
    );
    assert!(
        matches!(events.last(), Some(SessionEvent::Unpublished)),
        "{:?}",
        events.last()
    );

    // ffmpeg signs C1 (Flash Player 9 digest); the session must have recognised it and
    // answered with a digest S1, which announces a non-zero version.
    assert_ne!(served.client_bytes[5..9], [0; 4], "ffmpeg sent a plain C1");
    let mut session = Session::new(SessionConfig::default());
    session.receive(&served.client_bytes[..1537]).unwrap();
    let s0s1s2 = session.take_output().unwrap();
    assert_ne!(
        s0s1s2[5..9],
        [0; 4],
        "answered ffmpeg's digest C1 with a plain S1"
    );
}

/// Regenerates the RTMP fuzz seed: a real ffmpeg publish, client→server bytes.
/// Run with `cargo test -p popcast-origin --test rtmp_ffmpeg -- --ignored capture`.
#[test]
#[ignore = "writes fuzz/corpus/rtmp_session/ffmpeg_publish; run by hand"]
fn capture_fuzz_seed() {
    let args = [
        "-hide_banner",
        "-loglevel",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x90:rate=15",
        "-t",
        "1",
        "-c:v",
        "libx264",
        "-g",
        "15",
        "-f",
        "flv",
    ];
    let (status, stderr, served) = publish_with_ffmpeg(&args, "live/key");
    assert!(status.success(), "{stderr}");
    assert_eq!(served.error, None);
    assert!(
        served.client_bytes.len() < 64 * 1024,
        "{} bytes",
        served.client_bytes.len()
    );
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/rtmp_session/ffmpeg_publish");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &served.client_bytes).unwrap();
}
