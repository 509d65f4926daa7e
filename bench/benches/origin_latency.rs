//! Frame arrival → part availability at the origin: the ffmpeg CLI publishes 1280x720 @ 30
//! fps H.264 + AAC over RTMP in real time to an origin on loopback (or, with the argument
//! `whip`, aiortc publishes 640x360 @ 30 fps H.264 + Opus over WHIP), and an LL-HLS client
//! (blocking playlist reloads, then the preload-hinted part fetched and read while it is
//! produced, as hls.js does) times every CMAF chunk it receives against the instant its
//! frame reached the origin, which the chunk's `prft` box carries.
//!
//! Both ends read the same wall clock, so the difference is the origin's own delay: RTMP
//! parsing, FLV, the segmenter (a video frame waits for the next one, whose timestamp gives
//! its duration: one frame period), the store, and HTTP. Over WHIP a frame's arrival is
//! that of its first RTP packet, so the wait for the rest of its packets, SRTP, str0m's
//! reassembly and the Opus → AAC transcode count too. Prints p50/p90/p99/max per rendition
//! and writes `bench/results/origin-latency.json` (`origin-latency-whip.json`). Run with
//! `make bench`.

use popcast_config::Config;
use popcast_origin::Origin;
use popcast_origin::events::Events;
use popcast_origin::live::LiveEvent;
use popcast_packager::cmaf::from_ntp_timestamp;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const KEY: &str = "bench-key-0123456789abcdef";
const PUBLISH_SECS: u64 = 40;
/// Measured after this much publishing (encoder and connection warm-up excluded).
const SKIP_SECS: u64 = 5;
const MEASURE_SECS: u64 = 30;

/// One HTTP/1.1 GET; returns the status and a reader positioned at the (de-chunked) body.
struct Response {
    status: u16,
    chunked: bool,
    length: Option<usize>,
    reader: BufReader<TcpStream>,
    left_in_chunk: usize,
    done: bool,
}

async fn get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut reader = BufReader::new(tcp);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (mut chunked, mut length) = (false, None);
    loop {
        line.clear();
        reader.read_line(&mut line).await?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let lower = l.to_ascii_lowercase();
        if lower == "transfer-encoding: chunked" {
            chunked = true;
        } else if let Some(v) = lower.strip_prefix("content-length: ") {
            length = v.parse().ok();
        }
    }
    Ok(Response {
        status,
        chunked,
        length,
        reader,
        left_in_chunk: 0,
        done: false,
    })
}

impl Response {
    /// The next body bytes as they arrive; empty at the end.
    async fn next(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        if !self.chunked {
            let want = self.length.map_or(buf.len(), |l| l.min(buf.len()));
            if want == 0 {
                self.done = true;
                return Ok(0);
            }
            let n = self.reader.read(&mut buf[..want]).await?;
            if let Some(l) = &mut self.length {
                *l -= n;
            }
            if n == 0 {
                self.done = true;
            }
            return Ok(n);
        }
        if self.left_in_chunk == 0 {
            let mut line = String::new();
            self.reader.read_line(&mut line).await?;
            if line.trim().is_empty() {
                line.clear();
                self.reader.read_line(&mut line).await?;
            }
            self.left_in_chunk = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
            if self.left_in_chunk == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = self.left_in_chunk.min(buf.len());
        let n = self.reader.read(&mut buf[..want]).await?;
        self.left_in_chunk -= n;
        Ok(n)
    }

    async fn text(mut self) -> std::io::Result<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = self.next(&mut buf).await?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// The preload hint's `(msn, part)`.
fn hint(playlist: &str) -> Option<(u64, u32)> {
    let line = playlist.lines().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT"))?;
    let uri = line.split("URI=\"").nth(1)?.split('"').next()?;
    let mut it = uri.trim_end_matches(".m4s").split('.');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Reads one part as it is produced; for every complete `prft` + `moof` + `mdat` run, the
/// delay from the frame's arrival (prft) to the receipt of its last byte, in milliseconds.
async fn time_part(addr: SocketAddr, path: &str, out: &mut Vec<f64>) -> std::io::Result<()> {
    let mut r = get(addr, path).await?;
    if r.status != 200 {
        return Ok(());
    }
    let mut pending: Vec<u8> = Vec::new();
    let mut arrival: Option<SystemTime> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.next(&mut buf).await?;
        if n == 0 {
            break;
        }
        let now = SystemTime::now();
        pending.extend_from_slice(&buf[..n]);
        // Consume whole boxes.
        while pending.len() >= 8 {
            let size = u32::from_be_bytes([pending[0], pending[1], pending[2], pending[3]]) as usize;
            if size < 8 || pending.len() < size {
                break;
            }
            match &pending[4..8] {
                b"prft" if size >= 28 => {
                    let ntp = u64::from_be_bytes(pending[16..24].try_into().expect("8 bytes"));
                    arrival = Some(from_ntp_timestamp(ntp));
                }
                b"mdat" => {
                    if let Some(a) = arrival.take() {
                        if let Ok(d) = now.duration_since(a) {
                            out.push(d.as_secs_f64() * 1000.0);
                        }
                    }
                }
                _ => {}
            }
            pending.drain(..size);
        }
    }
    Ok(())
}

/// Follows one rendition's live edge like an LL-HLS player until `until`, timing chunks
/// received after `from`.
async fn follow(addr: SocketAddr, rendition: &str, from: Instant, until: Instant) -> Vec<f64> {
    let base = format!("/live/bench/{rendition}");
    let mut samples = Vec::new();
    let mut next: Option<(u64, u32)> = None;
    while Instant::now() < until {
        let q = next.map_or(String::new(), |(m, p)| format!("?_HLS_msn={m}&_HLS_part={p}"));
        let Ok(r) = get(addr, &format!("{base}/index.m3u8{q}")).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let ok = r.status == 200;
        let Ok(pl) = r.text().await else { continue };
        let Some((m, p)) = hint(&pl).filter(|_| ok) else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            next = None;
            continue;
        };
        let mut got = Vec::new();
        if time_part(addr, &format!("{base}/{m}.{p}.m4s"), &mut got)
            .await
            .is_ok()
            && Instant::now() > from
        {
            samples.extend(got);
        }
        // A playlist that has this part (it is complete now, so the request returns at
        // once) hints the next one, which is then fetched while it is produced.
        next = Some((m, p));
    }
    samples
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut config = Config::default();
    config.origin.rtmp_listen = "127.0.0.1:0".parse().unwrap();
    config.origin.whip.udp_listen = "127.0.0.1:0".parse().unwrap();
    config.origin.http_listen = "127.0.0.1:0".parse().unwrap();
    let events = Arc::new(Events::new());
    events
        .add(LiveEvent::new("bench", KEY.as_bytes(), &config.packager))
        .unwrap();
    let origin = rt.block_on(Origin::start(&config, events)).unwrap();
    let whip = std::env::args().any(|a| a == "whip");
    let mut publisher = if whip {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/whip/whip_publish.py");
        Command::new("python3")
            .arg(script)
            .arg(format!("http://{}/whip/bench", origin.http_addr))
            .args([KEY, &PUBLISH_SECS.to_string(), "--size", "640x360"])
            .spawn()
            .expect("python3 with aiortc (make deps-whip)")
    } else {
        let url = format!("rtmp://127.0.0.1:{}/live/{KEY}", origin.rtmp_addr.port());
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", &PUBLISH_SECS.to_string()])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-tune",
                "zerolatency",
                "-g",
                "60",
                "-b:v",
                "2500k",
            ])
            .args(["-c:a", "aac", "-b:a", "128k", "-f", "flv", &url])
            .stdout(Stdio::null())
            .spawn()
            .expect("run ffmpeg")
    };
    let start = Instant::now();
    let from = start + Duration::from_secs(SKIP_SECS);
    let until = from + Duration::from_secs(MEASURE_SECS);
    let addr = origin.http_addr;
    let (video, audio) = rt.block_on(async {
        let v = tokio::spawn(follow(addr, "source", from, until));
        let a = tokio::spawn(follow(addr, "audio", from, until));
        (v.await.unwrap(), a.await.unwrap())
    });
    let _ = publisher.kill();
    let _ = publisher.wait();
    let mut results = serde_json::Map::new();
    println!("frame arrival at the origin -> chunk received by an LL-HLS client on loopback (ms)");
    println!(
        "{:<10} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "rendition", "chunks", "p50", "p90", "p99", "max"
    );
    for (name, mut s) in [("source", video), ("audio", audio)] {
        s.sort_by(|a, b| a.total_cmp(b));
        let (p50, p90, p99) = (percentile(&s, 0.5), percentile(&s, 0.9), percentile(&s, 0.99));
        let max = s.last().copied().unwrap_or(f64::NAN);
        println!(
            "{name:<10} {:>8} {p50:>8.1} {p90:>8.1} {p99:>8.1} {max:>8.1}",
            s.len()
        );
        assert!(s.len() > 100, "{name}: only {} chunks timed", s.len());
        results.insert(
            name.to_string(),
            serde_json::json!({"chunks": s.len(), "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "max_ms": max}),
        );
    }
    let doc = serde_json::json!({
        "scenario": "origin-latency",
        "what": "frame arrival at the origin (prft) to receipt of its CMAF chunk by an LL-HLS client over HTTP/1.1 on loopback",
        "source": if whip {
            "aiortc 1.16 (tests/whip/whip_publish.py), 640x360@30 H.264 (libx264 via PyAV, its own bitrate control; keyframes on our PLI) + Opus 48 kHz transcoded to AAC, WHIP; arrival = the frame's first RTP packet"
        } else {
            "ffmpeg CLI, -re, libx264 veryfast zerolatency 1280x720@30 2.5 Mbit/s GOP 2 s, AAC 48 kHz, RTMP"
        },
        "ingest": if whip { "whip" } else { "rtmp" },
        "measured_secs": MEASURE_SECS,
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "results": results,
    });
    let file = if whip {
        "results/origin-latency-whip.json"
    } else {
        "results/origin-latency.json"
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    println!("wrote {}", path.display());
}
