//! A Popcast edge node: a regional cache with one ephemeral slot per event.
//!
//! Owns: `upstream` (the QUIC link to the origin: hello, provisioning, catalogs, on-demand
//! subscriptions, reconnection), `slot` (per-event relayed copies of the renditions, their
//! budgets and request coalescing) and `serve` (viewer HTTP/1.1 and HTTP/2 with the
//! origin's LL-HLS semantics, and HTTP/3 on the same port when TLS is set) and `qoe` (CMCD
//! on every request and beacons at `/qoe`, per-event reports sent to the origin, and
//! `/metrics`).
//!
//! Must not: transcode or repackage media (objects are relayed as opaque bytes and served
//! as they came), copy a payload per viewer, or let tokens and CMCD into cache keys.

pub mod qoe;
pub mod serve;
pub mod slot;
pub mod upstream;

use http::HeaderValue;
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
    #[error(transparent)]
    H3(#[from] serve::h3::H3StartError),
}

/// A running edge.
pub struct Edge {
    pub http_addr: SocketAddr,
    /// Where viewers reach this edge: `edge.public_url`, or made from `http_addr`.
    pub public_url: String,
    /// The viewer HTTP/3 endpoint (UDP, `http_addr`'s port), when TLS is set.
    pub h3_addr: Option<SocketAddr>,
    pub slots: Arc<slot::Slots>,
    pub link: Arc<upstream::LinkStatus>,
    h3: Option<quinn::Endpoint>,
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
            Some(t) => Some(tls::server_config(t, &[b"h2", b"http/1.1"])?),
            None => None,
        };
        let limits = ConnLimits {
            header_read_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            max_connections: usize::try_from(e.capacity_viewers).unwrap_or(usize::MAX).max(1),
            write_stall_timeout: Duration::from_millis(config.origin.limits.write_stall_timeout_ms),
            h2_keep_alive: Duration::from_secs(20),
        };
        // HTTP/3 on the TCP listener's port (its bound one: `http_listen` may say port 0).
        let h3_limits = serve::h3::H3Limits::new(limits.clone());
        let h3 = match &viewer_tls {
            Some(t) => Some(serve::h3::bind(http_addr, t, &h3_limits)?),
            None => None,
        };
        let h3_addr = match &h3 {
            Some(ep) => Some(ep.local_addr().map_err(|source| EdgeStartError::Bind {
                addr: http_addr,
                source,
            })?),
            None => None,
        };
        let alt_svc =
            h3_addr.and_then(|a| HeaderValue::from_str(&format!("h3=\":{}\"; ma=86400", a.port())).ok());
        let store_config = StoreConfig::from_config(&config.packager);
        let (wanted_tx, wanted) = tokio::sync::mpsc::unbounded_channel();
        let slots = Arc::new(slot::Slots::new(
            store_config.clone(),
            usize::try_from(e.slot_memory_budget_bytes).unwrap_or(usize::MAX),
            Duration::from_secs(e.slot_release_grace_secs),
            wanted_tx,
            popcast_packager::qoe::TrackerConfig::from_config(&config.qoe),
        ));
        let link = Arc::new(upstream::LinkStatus::default());
        let public_url = match &e.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => {
                let mut a = http_addr;
                if a.ip().is_unspecified() {
                    a.set_ip(if a.is_ipv4() {
                        std::net::Ipv4Addr::LOCALHOST.into()
                    } else {
                        std::net::Ipv6Addr::LOCALHOST.into()
                    });
                }
                let scheme = if viewer_tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{a}")
            }
        };
        let up = upstream::UpstreamConfig {
            origin: e.origin_relay.clone(),
            server_name: e.origin_server_name.clone(),
            tls: relay_tls,
            node_id: e.node_id.clone(),
            region: e.region.clone(),
            capacity_viewers: e.capacity_viewers,
            public_url: public_url.clone(),
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
            alt_svc,
            qoe: popcast_packager::qoe::TrackerConfig::from_config(&config.qoe),
            cmcd: popcast_packager::qoe::CmcdLimits {
                max_bytes: config.qoe.max_cmcd_bytes as usize,
                ..Default::default()
            },
            beacons_unrouted: Default::default(),
            metrics_token: config.qoe.metrics_token.clone(),
            body_timeout: Duration::from_secs(10),
        });
        let mut tasks = vec![
            tokio::spawn(upstream::run(up, slots.clone(), wanted, link.clone())),
            tokio::spawn(serve::serve(
                listener,
                viewer_tls.map(tokio_rustls::TlsAcceptor::from),
                limits,
                state.clone(),
            )),
        ];
        if let Some(ep) = &h3 {
            tasks.push(tokio::spawn(serve::h3::serve(ep.clone(), h3_limits, state)));
        }
        tracing::info!(%http_addr, ?h3_addr, node = %e.node_id, region = %e.region, origin = %e.origin_relay, "edge listening");
        Ok(Self {
            http_addr,
            public_url,
            h3_addr,
            slots,
            link,
            h3,
            tasks,
        })
    }

    /// Stops serving and drops the upstream link.
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(ep) = &self.h3 {
            ep.close(quinn::VarInt::from_u32(0x100), b"edge shutting down"); // H3_NO_ERROR
        }
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        self.stop();
    }
}
