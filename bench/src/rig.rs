//! The scenarios' stage: one origin and one edge in this process on loopback, linked by the
//! QUIC relay, with the built-in test source (libx264 through FFmpeg's libraries, real-time
//! pacing) publishing one event. Everything stops when the rig is dropped.

use popcast_config::{Config, Secret, TestSourceConfig};
use popcast_edge::Edge;
use popcast_origin::Origin;
use popcast_origin::events::Events;
use popcast_origin::live::LiveEvent;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Why a rig or a scenario could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Run(String),
}

/// The event every scenario watches.
pub const EVENT: &str = "bench";
const KEY: &str = "bench-key-0123456789abcdef";
const SECRET: &str = "bench-node-secret-0123456789";

/// A running origin + edge + source.
pub struct Rig {
    pub origin: Origin,
    pub edge: Edge,
    source: Option<JoinHandle<String>>,
    dir: PathBuf,
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(s) = &self.source {
            s.abort();
        }
        self.edge.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Rig {
    /// Starts the rig with the test source at `source`'s settings, or with none (a publisher
    /// comes over RTMP to [`Rig::rtmp_url`]); call within a runtime.
    pub async fn start(name: &str, source: Option<TestSourceConfig>) -> Result<Self, BenchError> {
        let dir = std::env::temp_dir().join(format!("popcast-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut c = Config::default();
        c.node.data_dir = dir.join("origin");
        c.origin.rtmp_listen = "127.0.0.1:0".parse().expect("address");
        c.origin.http_listen = "127.0.0.1:0".parse().expect("address");
        c.origin.relay_listen = "127.0.0.1:0".parse().expect("address");
        c.origin.node_secret = Some(Secret::new(SECRET));
        // Thousands of viewers on one loopback host.
        c.origin.limits.max_connections_per_ip = 100_000;
        c.origin.limits.http_max_connections = 100_000;
        let events = Arc::new(Events::new());
        let event = LiveEvent::new(EVENT, KEY.as_bytes(), &c.packager);
        events
            .add(event.clone())
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        let origin = Origin::start(&c, events)
            .await
            .map_err(|e| BenchError::Setup(format!("origin: {e}")))?;
        let relay = origin
            .relay
            .as_ref()
            .ok_or_else(|| BenchError::Setup("the origin's relay is off".into()))?
            .addr;
        let mut e = Config::default();
        e.node.data_dir = dir.join("edge");
        e.edge.node_id = "bench-edge".into();
        e.edge.region = "bench".into();
        e.edge.origin_relay = relay.to_string();
        e.edge.origin_server_name = "localhost".into();
        e.edge.origin_ca_path = Some(dir.join("origin/relay/cert.pem"));
        e.edge.node_secret = Some(Secret::new(SECRET));
        e.edge.http_listen = "127.0.0.1:0".parse().expect("address");
        e.edge.capacity_viewers = 100_000;
        e.edge.slot_viewer_cap = 100_000;
        let edge = Edge::start(&e)
            .await
            .map_err(|e| BenchError::Setup(format!("edge: {e}")))?;
        let source = source.map(|s| tokio::spawn(popcast_origin::test_source::feed(event, s, |_| {})));
        Ok(Self {
            origin,
            edge,
            source,
            dir,
        })
    }

    pub fn edge_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.edge.http_addr)
    }

    pub fn origin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.origin.http_addr)
    }

    /// Where a publisher sends the event over RTMP.
    pub fn rtmp_url(&self) -> String {
        format!("rtmp://{}/live/{KEY}", self.origin.rtmp_addr)
    }

    /// The edge's multivariant playlist URL for the event.
    pub fn edge_master(&self) -> String {
        self.edge_url(&format!("/live/{EVENT}/master.m3u8"))
    }

    /// Waits until the edge lists `segments` whole segments of the source rendition.
    pub async fn ready(&self, segments: usize, within: Duration) -> Result<(), BenchError> {
        let url = self.edge_url(&format!("/live/{EVENT}/source/index.m3u8"));
        let until = Instant::now() + within;
        let mut client = popcast_player::http::Client::new(popcast_player::http::HttpVersion::Http1);
        let mut last;
        loop {
            match client.get(&url, &[]).await {
                Ok(f) => {
                    let body = String::from_utf8_lossy(&f.body);
                    if body.matches("#EXTINF").count() >= segments {
                        return Ok(());
                    }
                    last = format!("a playlist with {} segments", body.matches("#EXTINF").count());
                }
                Err(e) => last = e.to_string(),
            }
            if self.source.as_ref().is_some_and(JoinHandle::is_finished) {
                return Err(BenchError::Setup("the test source stopped".into()));
            }
            if Instant::now() > until {
                return Err(BenchError::Setup(format!(
                    "the edge had no {segments} segments after {within:?} (last: {last})"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// CPU seconds this process has used (user + system).
pub fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

/// This process's resident memory, MiB.
pub fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
