//! The scenarios' stage: one origin in this process and one edge (in this process, or as a
//! `popcast edge` child process when its CPU and memory must be measured alone) on loopback,
//! linked by the QUIC relay, with the built-in test source (libx264 through FFmpeg's
//! libraries, real-time pacing) or an RTMP publisher feeding one event. Everything stops
//! when the rig is dropped.

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

/// Where the edge runs.
pub enum EdgeRun {
    InProcess(Edge),
    Process {
        child: crate::peers::KillOnDrop,
        addr: std::net::SocketAddr,
    },
}

/// A running origin + edge + source.
pub struct Rig {
    pub origin: Origin,
    pub edge: EdgeRun,
    /// Edges added with [`Rig::add_edge`] (processes), by node id.
    pub extra: Vec<(String, EdgeRun)>,
    source: Option<JoinHandle<String>>,
    dir: PathBuf,
    relay: std::net::SocketAddr,
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(s) = &self.source {
            s.abort();
        }
        if let EdgeRun::InProcess(e) = &self.edge {
            e.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Rig {
    /// Starts the rig with the test source at `source`'s settings, or with none (a publisher
    /// comes over RTMP to [`Rig::rtmp_url`]); call within a runtime.
    pub async fn start(
        name: &str,
        source: Option<TestSourceConfig>,
        edge_process: bool,
    ) -> Result<Self, BenchError> {
        let dir = std::env::temp_dir().join(format!("popcast-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut c = Config::default();
        c.node.data_dir = dir.join("origin");
        c.origin.rtmp_listen = "127.0.0.1:0".parse().expect("address");
        c.origin.whip.udp_listen = "127.0.0.1:0".parse().expect("address");
        c.origin.http_listen = "127.0.0.1:0".parse().expect("address");
        c.origin.relay_listen = "127.0.0.1:0".parse().expect("address");
        c.origin.node_secret = Some(Secret::new(SECRET));
        // Thousands of viewers on one loopback host.
        c.origin.limits.max_connections_per_ip = 100_000;
        c.origin.limits.http_max_connections = 100_000;
        // The event's viewer cap (edges refuse viewers past it) far above any ramp step.
        c.events.viewer_cap = 100_000;
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
        let e = edge_config(&dir, relay, "bench-edge");
        let edge = if edge_process {
            spawn_edge(&e, &dir).await?
        } else {
            EdgeRun::InProcess(
                Edge::start(&e)
                    .await
                    .map_err(|e| BenchError::Setup(format!("edge: {e}")))?,
            )
        };
        let source = source.map(|s| tokio::spawn(popcast_origin::test_source::feed(event, s, |_| {})));
        Ok(Self {
            origin,
            edge,
            extra: Vec::new(),
            source,
            dir,
            relay,
        })
    }

    /// Starts another edge, `node_id`, as a `popcast edge` process (so that it can be
    /// killed like a failing machine); returns its viewer address.
    pub async fn add_edge(&mut self, node_id: &str) -> Result<std::net::SocketAddr, BenchError> {
        let e = edge_config(&self.dir, self.relay, node_id);
        let run = spawn_edge(&e, &self.dir).await?;
        let EdgeRun::Process { addr, .. } = &run else {
            unreachable!("spawn_edge runs a process")
        };
        let addr = *addr;
        self.extra.push((node_id.to_string(), run));
        Ok(addr)
    }

    /// Kills the edge process `node_id` (SIGKILL); false when no such process runs.
    pub fn kill_edge(&mut self, node_id: &str) -> bool {
        let run = if node_id == "bench-edge" {
            Some(&mut self.edge)
        } else {
            self.extra.iter_mut().find(|(n, _)| n == node_id).map(|(_, r)| r)
        };
        match run {
            Some(EdgeRun::Process { child, .. }) => {
                let _ = child.0.kill();
                let _ = child.0.wait();
                true
            }
            _ => false,
        }
    }

    /// The edge's viewer address.
    pub fn edge_addr(&self) -> std::net::SocketAddr {
        match &self.edge {
            EdgeRun::InProcess(e) => e.http_addr,
            EdgeRun::Process { addr, .. } => *addr,
        }
    }

    /// The edge's process id when it runs on its own.
    pub fn edge_pid(&self) -> Option<u32> {
        match &self.edge {
            EdgeRun::InProcess(_) => None,
            EdgeRun::Process { child, .. } => Some(child.pid()),
        }
    }

    pub fn edge_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.edge_addr())
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

/// The settings of edge `node_id` of a rig in `dir` whose origin relays at `relay`.
fn edge_config(dir: &std::path::Path, relay: std::net::SocketAddr, node_id: &str) -> Config {
    let mut e = Config::default();
    e.node.data_dir = dir.join(node_id);
    e.edge.node_id = node_id.into();
    e.edge.region = "bench".into();
    e.edge.origin_relay = relay.to_string();
    e.edge.origin_server_name = "localhost".into();
    e.edge.origin_ca_path = Some(dir.join("origin/relay/cert.pem"));
    e.edge.node_secret = Some(Secret::new(SECRET));
    e.edge.http_listen = "127.0.0.1:0".parse().expect("address");
    e.edge.capacity_viewers = 100_000;
    e.edge.slot_viewer_cap = 100_000;
    e
}

/// `popcast edge` as a child process with the settings of `e` (this program must be the
/// `popcast` binary: scenarios run as `popcast bench`).
async fn spawn_edge(e: &Config, dir: &std::path::Path) -> Result<EdgeRun, BenchError> {
    let exe = std::env::current_exe().map_err(|err| BenchError::Setup(err.to_string()))?;
    if exe.file_stem().is_none_or(|s| s != "popcast") {
        return Err(BenchError::Setup(format!(
            "an edge of its own needs the popcast binary (run `popcast bench`), not {}",
            exe.display()
        )));
    }
    let port = crate::peers::free_port();
    let c = &e.edge;
    let toml = format!(
        "[node]\ndata_dir = {:?}\n\n[edge]\nnode_id = {:?}\nregion = {:?}\norigin_relay = {:?}\norigin_server_name = {:?}\norigin_ca_path = {:?}\nnode_secret = {:?}\nhttp_listen = \"127.0.0.1:{port}\"\ncapacity_viewers = {}\nslot_viewer_cap = {}\n",
        e.node.data_dir.display().to_string(),
        c.node_id,
        c.region,
        c.origin_relay,
        c.origin_server_name,
        c.origin_ca_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        SECRET,
        c.capacity_viewers,
        c.slot_viewer_cap,
    );
    let path = dir.join(format!("{}.toml", c.node_id));
    std::fs::create_dir_all(dir).map_err(|err| BenchError::Setup(err.to_string()))?;
    std::fs::write(&path, toml).map_err(|err| BenchError::Setup(err.to_string()))?;
    let child = std::process::Command::new(exe)
        .args(["edge", "--config"])
        .arg(&path)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .map(crate::peers::KillOnDrop)
        .map_err(|err| BenchError::Setup(format!("popcast edge: {err}")))?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let until = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if Instant::now() > until {
            return Err(BenchError::Setup(
                "popcast edge did not listen within 10 s".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(EdgeRun::Process { child, addr })
}

/// CPU seconds this process has used (user + system).
pub fn cpu_secs() -> f64 {
    crate::peers::process_cpu_secs(std::process::id())
}

/// This process's resident memory, MiB.
pub fn rss_mib() -> f64 {
    crate::peers::process_rss_mib(std::process::id())
}
