//! Helpers the origin's integration tests share: curl as the HTTP client, a self-signed
//! certificate from the openssl CLI, and an origin on loopback with ephemeral ports.
#![allow(dead_code)]

use popcast_config::{Config, TlsConfig};
use std::process::Command;

/// A config whose listeners are on 127.0.0.1 with ephemeral ports.
pub fn loopback_config() -> Config {
    let mut config = Config::default();
    config.origin.rtmp_listen = "127.0.0.1:0".parse().unwrap();
    config.origin.whip.udp_listen = "127.0.0.1:0".parse().unwrap();
    config.origin.http_listen = "127.0.0.1:0".parse().unwrap();
    config
}

/// A curl answer: status, lower-cased headers, body, timings.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub start_transfer: f64,
    pub total: f64,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn curl(args: &[&str], url: &str) -> Answer {
    let dir = std::env::temp_dir().join(format!(
        "popcast-http-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (h, b) = (dir.join("h"), dir.join("b"));
    let out = Command::new("curl")
        .args(["-s", "--max-time", "15", "-D"])
        .arg(&h)
        .arg("-o")
        .arg(&b)
        .args([
            "-w",
            "%{http_code} %{http_version} %{time_starttransfer} %{time_total}",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("run curl");
    let w = String::from_utf8_lossy(&out.stdout).into_owned();
    let f: Vec<&str> = w.split_whitespace().collect();
    assert_eq!(
        f.len(),
        4,
        "curl {args:?} {url}: {w} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let headers = std::fs::read_to_string(&h)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = std::fs::read(&b).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    Answer {
        status: f[0].parse().unwrap(),
        version: f[1].to_string(),
        headers,
        body,
        start_transfer: f[2].parse().unwrap(),
        total: f[3].parse().unwrap(),
    }
}

/// A self-signed certificate for 127.0.0.1 from the openssl CLI.
pub fn self_signed(dir: &std::path::Path) -> TlsConfig {
    std::fs::create_dir_all(dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    TlsConfig {
        cert_path: cert,
        key_path: key,
    }
}

/// A hand-written RTMP client for bad-input tests: it says exactly the bytes a test wants,
/// including the wrong ones. Blocking std I/O with timeouts, loopback only.
pub mod raw {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::{Duration, Instant};

    pub struct Client {
        pub tcp: TcpStream,
    }

    /// AMF0 values as bytes.
    pub fn string(s: &str) -> Vec<u8> {
        let mut v = vec![0x02];
        v.extend_from_slice(&(s.len() as u16).to_be_bytes());
        v.extend_from_slice(s.as_bytes());
        v
    }
    pub fn number(n: f64) -> Vec<u8> {
        let mut v = vec![0x00];
        v.extend_from_slice(&n.to_be_bytes());
        v
    }
    pub fn null() -> Vec<u8> {
        vec![0x05]
    }
    pub fn object(props: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut v = vec![0x03];
        for (k, val) in props {
            v.extend_from_slice(&(k.len() as u16).to_be_bytes());
            v.extend_from_slice(k.as_bytes());
            v.extend_from_slice(val);
        }
        v.extend_from_slice(&[0, 0, 0x09]);
        v
    }
    pub fn command(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    impl Client {
        pub fn connect(addr: SocketAddr) -> Self {
            let tcp = TcpStream::connect(addr).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            tcp.set_nodelay(true).unwrap();
            Self { tcp }
        }

        /// C0 + C1, reads S0 S1 S2, sends C2.
        pub fn handshake(&mut self) {
            let mut c = vec![3u8];
            c.extend_from_slice(&[0u8; 1536]);
            self.tcp.write_all(&c).unwrap();
            let mut s = vec![0u8; 1 + 1536 * 2];
            self.tcp.read_exact(&mut s).unwrap();
            assert_eq!(s[0], 3);
            self.tcp.write_all(&s[1..1537]).unwrap();
        }

        /// One message as type-0 chunks of 128 bytes (the default size) on chunk stream `csid`
        /// (2..=63), with type-3 continuations.
        pub fn message(
            &mut self,
            csid: u8,
            type_id: u8,
            stream: u32,
            ts: u32,
            payload: &[u8],
        ) -> std::io::Result<()> {
            let mut out = vec![csid & 0x3f];
            out.extend_from_slice(&ts.min(0xFF_FFFE).to_be_bytes()[1..]);
            out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
            out.push(type_id);
            out.extend_from_slice(&stream.to_le_bytes());
            for (i, chunk) in payload.chunks(128).enumerate() {
                if i > 0 {
                    out.push(0xC0 | (csid & 0x3f));
                }
                out.extend_from_slice(chunk);
            }
            self.tcp.write_all(&out)
        }

        pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
            self.tcp.write_all(bytes)
        }

        /// connect("live") + createStream; the stream id is 1 on our origin.
        pub fn connect_app(&mut self) {
            let connect = command(&[
                string("connect"),
                number(1.0),
                object(&[
                    ("app", string("live")),
                    ("tcUrl", string("rtmp://127.0.0.1/live")),
                ]),
            ]);
            self.message(3, 20, 0, 0, &connect).unwrap();
            self.message(
                3,
                20,
                0,
                0,
                &command(&[string("createStream"), number(2.0), null()]),
            )
            .unwrap();
        }

        pub fn publish(&mut self, key: &str) {
            let p = command(&[
                string("publish"),
                number(3.0),
                null(),
                string(key),
                string("live"),
            ]);
            self.message(4, 20, 1, 0, &p).unwrap();
        }

        /// Reads until the server closes the connection or `within` passes; true when closed.
        /// Everything read is kept in `seen`.
        pub fn closed_within(&mut self, within: Duration, seen: &mut Vec<u8>) -> bool {
            let until = Instant::now() + within;
            let mut buf = [0u8; 4096];
            while Instant::now() < until {
                self.tcp
                    .set_read_timeout(Some(
                        until
                            .saturating_duration_since(Instant::now())
                            .max(Duration::from_millis(10)),
                    ))
                    .unwrap();
                match self.tcp.read(&mut buf) {
                    Ok(0) => return true,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => return true,
                }
            }
            false
        }

        /// Reads for `for_` and returns what arrived (the connection may stay open).
        pub fn read_for(&mut self, for_: Duration) -> Vec<u8> {
            let mut seen = Vec::new();
            self.closed_within(for_, &mut seen);
            seen
        }
    }

    /// Whether `haystack` contains `needle`.
    pub fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
    }
}
