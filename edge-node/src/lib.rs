//! A Popcast edge node: a regional cache with one ephemeral slot per event.
//!
//! Owns: `upstream` (the QUIC link to the origin: hello, provisioning, catalogs, on-demand
//! subscriptions, reconnection), `slot` (per-event relayed copies of the renditions, their
//! budgets and request coalescing) and `serve` (viewer HTTP/1.1 and HTTP/2 with the
//! origin's LL-HLS semantics). HTTP/3 and QoE reporting (CMCD, beacons) join later.
//!
//! Must not: transcode or repackage media (objects are relayed as opaque bytes and served
//! as they came), copy a payload per viewer, or let tokens and CMCD into cache keys.

pub mod serve;
pub mod slot;
pub mod upstream;

use popcast_config::Config;
use popcast_packager::http::ConnLimits;
use popcast_packager::http::tls;
use popcast_packager::relay::Limits;
use popcast_packager::store::StoreConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Why the edge could not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeStartError {
    #[error("edge.{0} must be set to run an edge")]
    Missing(&'static str),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen for viewers on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running edge.
pub struct Edge {
    pub http_addr: SocketAddr,
    pub slots: Arc<slot::Slots>,
    pub link: Arc<upstream::LinkStatus>,
    tasks: Vec<JoinHandle<()>>,
}

impl Edge {
    /// Binds the viewer listener of `config.edge` and dials the origin.
    pub async fn start(config: &Config) -> Result<Self, EdgeStartError> {
        let e = &config.edge;
        let ca = e
            .origin_ca_path
            .as_ref()
            .ok_or(EdgeStartError::Missing("origin_ca_path"))?;
        let secret = e
            .node_secret
            .as_ref()
            .ok_or(EdgeStartError::Missing("node_secret"))?;
        let relay_tls = Arc::new(tls::client_config(ca, &[])?);
        let listener = tokio::net::TcpListener::bind(e.http_listen)
            .await
            .map_err(|source| EdgeStartError::Bind {
                addr: e.http_listen,
                source,
            })?;
        let http_addr = listener.local_addr().map_err(|source| EdgeStartError::Bind {
            addr: e.http_listen,
            source,
        })?;
        let viewer_tls = match &e.tls {
            Some(t) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(
                t,
                &[b"h2", b"http/1.1"],
            )?)),
            None => None,
        };
        let store_config = StoreConfig::from_config(&config.packager);
        let (wanted_tx, wanted) = tokio::sync::mpsc::unbounded_channel();
        let slots = Arc::new(slot::Slots::new(
            store_config.clone(),
            usize::try_from(e.slot_memory_budget_bytes).unwrap_or(usize::MAX),
            Duration::from_secs(e.slot_release_grace_secs),
            wanted_tx,
        ));
        let link = Arc::new(upstream::LinkStatus::default());
        let up = upstream::UpstreamConfig {
            origin: e.origin_relay.clone(),
            server_name: e.origin_server_name.clone(),
            tls: relay_tls,
            node_id: e.node_id.clone(),
            region: e.region.clone(),
            capacity_viewers: e.capacity_viewers,
            node_secret: secret.expose().to_string(),
            limits: Limits::default(),
            max_backoff: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(4),
        };
        let state = Arc::new(serve::ServeState {
            slots: slots.clone(),
            link: link.clone(),
            node_id: e.node_id.clone(),
            region: e.region.clone(),
            open_pull: e.open_pull,
            open_pull_viewer_cap: e.slot_viewer_cap,
            max_query_bytes: config.origin.limits.http_max_query_bytes as usize,
            hold_limit: store_config.hold_limit,
            started: Instant::now(),
            alt_svc: None,
        });
        let limits = ConnLimits {
            header_read_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            max_connections: usize::try_from(e.capacity_viewers).unwrap_or(usize::MAX).max(1),
            write_stall_timeout: Duration::from_millis(config.origin.limits.write_stall_timeout_ms),
            h2_keep_alive: Duration::from_secs(20),
        };
        let tasks = vec![
            tokio::spawn(upstream::run(up, slots.clone(), wanted, link.clone())),
            tokio::spawn(serve::serve(listener, viewer_tls, limits, state)),
        ];
        tracing::info!(%http_addr, node = %e.node_id, region = %e.region, origin = %e.origin_relay, "edge listening");
        Ok(Self {
            http_addr,
            slots,
            link,
            tasks,
        })
    }

    /// Stops serving and drops the upstream link.
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        self.stop();
    }
}
