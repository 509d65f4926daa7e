//! A headless LL-HLS viewer for the benches: follows one rendition's live edge over an
//! HTTP/1.1 keep-alive connection (blocking playlist reload, then the hinted part, read as
//! it is produced) and times every part against the instant its frames reached the origin.
//!
//! Each CMAF chunk the origin makes carries a `prft` box with the wall-clock instant its
//! frame arrived at the origin. The viewer reads the part body as it streams, and records
//! - per chunk: frame arrival at the origin → the chunk's last byte received here;
//! - per part: the arrival of the part's last frame → the part's last byte received here,
//!
//! on the same machine's clock, so the figures are the delivery path's own delay (origin
//! packaging, relay, edge, HTTP), not the encoder's.

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use popcast_packager::cmaf::from_ntp_timestamp;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// A request that takes longer than this counts as an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What a group of viewers saw, summed. Samples are kept only while `recording` is set.
#[derive(Default)]
pub struct Stats {
    pub recording: AtomicBool,
    pub requests: AtomicU64,
    pub parts: AtomicU64,
    pub part_bytes: AtomicU64,
    /// Failed requests (a status other than 200, a timeout, a torn body, a refused
    /// connection) and parts whose numbers went backwards.
    pub errors: AtomicU64,
    /// Why: "<status or failure> <kind>", counted.
    pub why: Mutex<BTreeMap<String, u64>>,
    /// Milliseconds, per part: its last frame's arrival at the origin → its last byte here.
    pub part_delays_ms: Mutex<Vec<f64>>,
    /// Milliseconds, per chunk: its frame's arrival at the origin → its last byte here.
    pub chunk_delays_ms: Mutex<Vec<f64>>,
}

impl Stats {
    fn failed(&self, why: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self
            .why
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(why)
            .or_default() += 1;
    }

    fn recording(&self) -> bool {
        self.recording.load(Ordering::Relaxed)
    }

    /// Sorted copies of the part and chunk delay samples.
    pub fn sorted_delays(&self) -> (Vec<f64>, Vec<f64>) {
        let sorted = |m: &Mutex<Vec<f64>>| {
            let mut v = m.lock().unwrap_or_else(|e| e.into_inner()).clone();
            v.sort_by(f64::total_cmp);
            v
        };
        (sorted(&self.part_delays_ms), sorted(&self.chunk_delays_ms))
    }
}

/// The `p` quantile (0..=1) of sorted samples, nearest rank; NaN when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The preload hint's part `(msn, part)` in a media playlist.
pub fn hint(playlist: &str) -> Option<(u64, u32)> {
    let line = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:TYPE=PART"))?;
    let uri = line.split("URI=\"").nth(1)?.split('"').next()?;
    let (msn, rest) = uri.split_once('.')?;
    let part = rest.strip_suffix(".m4s")?;
    Some((msn.parse().ok()?, part.parse().ok()?))
}

/// An HTTP/1.1 keep-alive connection that reconnects when it breaks, as players do.
struct Client {
    addr: SocketAddr,
    send: Option<hyper::client::conn::http1::SendRequest<Empty<Bytes>>>,
}

/// One CMAF part as it streams in: box boundaries and the delays they give.
#[derive(Default)]
struct PartTimer {
    pending: BytesMut,
    arrival: Option<SystemTime>,
    chunk_delays: Vec<f64>,
    last: Option<f64>,
}

impl PartTimer {
    fn feed(&mut self, mut data: Bytes, now: SystemTime) {
        self.pending.extend_from_slice(&data.split_off(0));
        while self.pending.len() >= 8 {
            let size =
                u32::from_be_bytes([self.pending[0], self.pending[1], self.pending[2], self.pending[3]])
                    as usize;
            if size < 8 || self.pending.len() < size {
                break;
            }
            match &self.pending[4..8] {
                b"prft" if size >= 28 => {
                    let ntp = u64::from_be_bytes(self.pending[16..24].try_into().expect("8 bytes"));
                    self.arrival = Some(from_ntp_timestamp(ntp));
                }
                b"mdat" => {
                    if let Some(d) = self.arrival.take().and_then(|a| now.duration_since(a).ok()) {
                        let ms = d.as_secs_f64() * 1000.0;
                        self.chunk_delays.push(ms);
                        self.last = Some(ms);
                    }
                }
                _ => {}
            }
            self.pending.advance(size);
        }
    }
}

impl Client {
    /// GETs `path`; the body is fed to `timer` (when given) as it arrives. `None` after a
    /// failure, which is counted in `stats`.
    async fn get(&mut self, path: &str, stats: &Stats, mut timer: Option<&mut PartTimer>) -> Option<Bytes> {
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let kind = path
            .split('?')
            .next()
            .unwrap_or("")
            .rsplit('.')
            .next()
            .unwrap_or("");
        if self.send.as_ref().is_none_or(|s| s.is_closed()) {
            let handshake = async {
                let tcp = tokio::net::TcpStream::connect(self.addr).await.ok()?;
                let _ = tcp.set_nodelay(true);
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                    .await
                    .ok()
            };
            let Ok(Some((send, conn))) = tokio::time::timeout(REQUEST_TIMEOUT, handshake).await else {
                stats.failed(format!("connect {kind}"));
                return None;
            };
            tokio::spawn(conn);
            self.send = Some(send);
        }
        let send = self.send.as_mut()?;
        let req = hyper::Request::get(path)
            .header("host", "127.0.0.1")
            .body(Empty::<Bytes>::new())
            .ok()?;
        let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
        let Ok(Ok(res)) = tokio::time::timeout_at(deadline, send.send_request(req)).await else {
            self.send = None;
            stats.failed(format!("no answer {kind}"));
            return None;
        };
        let status = res.status();
        let mut body = res.into_body();
        let mut out = BytesMut::new();
        loop {
            match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        if let Some(t) = timer.as_deref_mut() {
                            t.feed(data.clone(), SystemTime::now());
                        }
                        out.extend_from_slice(&data);
                    }
                }
                Ok(None) => break,
                Ok(Some(Err(_))) | Err(_) => {
                    self.send = None;
                    stats.failed(format!("torn body {kind}"));
                    return None;
                }
            }
        }
        if status != 200 {
            stats.failed(format!("{} {kind}", status.as_u16()));
            return None;
        }
        Some(out.freeze())
    }
}

/// One viewer of `/live/{event}/{rendition}` at `addr` until `until`: joins from the
/// multivariant playlist and the init segment, then follows the live edge part by part;
/// after an error it rejoins from a plain reload, as a player does.
pub async fn viewer(addr: SocketAddr, event: &str, rendition: &str, until: Instant, stats: &Stats) {
    let mut client = Client { addr, send: None };
    let base = format!("/live/{event}/{rendition}");
    if client
        .get(&format!("/live/{event}/master.m3u8"), stats, None)
        .await
        .is_none()
        || client
            .get(&format!("{base}/init.mp4"), stats, None)
            .await
            .is_none()
    {
        return;
    }
    let mut next: Option<(u64, u32)> = None;
    let mut last = (0, 0);
    while Instant::now() < until {
        // After the first, a blocking reload for the part just read: it is listed now, so
        // the answer comes at once and hints the part being made, which is read as it is
        // produced (a preload-hint player, as LL-HLS intends).
        let q = next.map_or(String::new(), |(m, p)| format!("?_HLS_msn={m}&_HLS_part={p}"));
        let Some(pl) = client.get(&format!("{base}/index.m3u8{q}"), stats, None).await else {
            next = None;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let Some((msn, part)) = hint(&String::from_utf8_lossy(&pl)) else {
            stats.failed("no preload hint m3u8".into());
            next = None;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut timer = PartTimer::default();
        let Some(body) = client
            .get(&format!("{base}/{msn}.{part}.m4s"), stats, Some(&mut timer))
            .await
        else {
            next = None;
            continue;
        };
        if (msn, part) <= last {
            stats.failed(format!("went back from {last:?} to {:?}", (msn, part)));
        }
        last = (msn, part);
        stats.parts.fetch_add(1, Ordering::Relaxed);
        stats.part_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        if stats.recording() {
            if let Some(ms) = timer.last {
                stats
                    .part_delays_ms
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(ms);
            }
            stats
                .chunk_delays_ms
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(&timer.chunk_delays);
        }
        next = Some((msn, part));
    }
}
