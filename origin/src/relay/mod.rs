//! The relay to edges: the QUIC listener edges dial, one control session per edge (hello,
//! provisioning, catalogs, subscriptions, heartbeats), and each subscription's media
//! objects written to their own unidirectional streams as the store produces them.

mod catalog;
mod ledger;
mod objects;

pub use ledger::{Ledger, ObjectKey};

use crate::events::Events;
use popcast_config::Secret;
use popcast_packager::relay::io::{FrameReader, ReadFail, write_frame};
use popcast_packager::relay::{self as wire, ErrorCode, Frame, Limits};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Edges must present this in their hello; without one no edge is admitted.
    pub node_secret: Option<Secret>,
    /// Heartbeat period asked of edges; an edge silent for three of them is dropped.
    pub heartbeat: Duration,
    /// An edge must open its control stream and say hello within this.
    pub hello_timeout: Duration,
    /// Objects of one subscription being written at once; an edge slower than this is
    /// told it lags (it resubscribes from what it holds).
    pub max_inflight_objects: usize,
    pub limits: Limits,
    /// Viewer cap given to a slot of an event without a schedule (one from the config file).
    pub viewer_cap: u32,
    /// Scheduled events are provisioned this long before their start...
    pub provision_lead_secs: i64,
    /// ...and released this long after their end.
    pub release_grace_secs: i64,
}

impl RelayConfig {
    pub fn from_config(c: &popcast_config::Config) -> Self {
        Self {
            node_secret: c.origin.node_secret.clone(),
            heartbeat: Duration::from_secs(1),
            hello_timeout: Duration::from_secs(5),
            max_inflight_objects: 32,
            limits: Limits::default(),
            viewer_cap: c.events.viewer_cap,
            provision_lead_secs: i64::try_from(c.events.provision_lead_secs).unwrap_or(i64::MAX / 4),
            release_grace_secs: i64::try_from(c.events.release_grace_secs).unwrap_or(i64::MAX / 4),
        }
    }
}

/// Reads the relay's connected edges (the control API lists them).
#[derive(Clone)]
pub struct EdgesView(Arc<Shared>);

impl EdgesView {
    /// The edges connected now, by node id, with their last heartbeat's load.
    pub fn list(&self) -> Vec<EdgeStatus> {
        lock(&self.0.edges).values().cloned().collect()
    }
}

/// What the origin knows of a connected edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeStatus {
    pub node_id: String,
    pub region: String,
    pub capacity_viewers: u32,
    /// Where viewers reach the edge (its hello's); empty when it gave none usable, and then
    /// `/play` sends nobody there.
    pub public_url: String,
    /// The events provisioned on it now.
    pub events: std::collections::BTreeSet<String>,
    pub remote: SocketAddr,
    pub viewers: u32,
    pub slots: u32,
    pub bytes_held: u64,
    pub connections: u64,
}

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayStartError {
    #[error("relay TLS: {0}")]
    Tls(String),
    #[error("cannot listen for the relay on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

struct Shared {
    config: RelayConfig,
    events: Arc<Events>,
    edges: Mutex<BTreeMap<String, EdgeStatus>>,
    /// Each connected edge's connection, to close it on demand.
    conns: Mutex<HashMap<String, quinn::Connection>>,
    ledger: Ledger,
    connections: AtomicU64,
    qoe: Arc<crate::qoe::QoeBoard>,
}

/// A running relay listener.
pub struct Relay {
    pub addr: SocketAddr,
    endpoint: quinn::Endpoint,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

/// Transport settings for the origin→edge backbone: windows sized for a few hundred ms of
/// a full ladder in flight, and no streams opened by edges but their one control stream.
fn transport(heartbeat: Duration) -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_bidi_streams(1u8.into())
        .max_concurrent_uni_streams(0u8.into())
        .keep_alive_interval(Some(heartbeat))
        .max_idle_timeout(Some(quinn::IdleTimeout::from(quinn::VarInt::from_u32(
            (heartbeat.as_millis() as u32).saturating_mul(10),
        ))))
        .send_window(64 * 1024 * 1024);
    t
}

impl Relay {
    /// Binds `addr` (UDP) and admits edges that present the node secret.
    pub fn start(
        addr: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
        config: RelayConfig,
        events: Arc<Events>,
        qoe: Arc<crate::qoe::QoeBoard>,
    ) -> Result<Self, RelayStartError> {
        let mut tls = (*tls).clone();
        tls.alpn_protocols = vec![wire::ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
            .map_err(|e| RelayStartError::Tls(e.to_string()))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        server.transport_config(Arc::new(transport(config.heartbeat)));
        let endpoint =
            quinn::Endpoint::server(server, addr).map_err(|source| RelayStartError::Bind { addr, source })?;
        let addr = endpoint
            .local_addr()
            .map_err(|source| RelayStartError::Bind { addr, source })?;
        let shared = Arc::new(Shared {
            config,
            events,
            edges: Mutex::new(BTreeMap::new()),
            conns: Mutex::new(HashMap::new()),
            ledger: Ledger::default(),
            connections: AtomicU64::new(0),
            qoe,
        });
        let task = tokio::spawn(accept(endpoint.clone(), shared.clone()));
        tracing::info!(%addr, "relay listening");
        Ok(Self {
            addr,
            endpoint,
            shared,
            task,
        })
    }

    /// The edges connected now, by node id.
    pub fn edges(&self) -> Vec<EdgeStatus> {
        self.edges_view().list()
    }

    /// A handle that reads the connected edges for as long as the relay runs.
    pub fn edges_view(&self) -> EdgesView {
        EdgesView(self.shared.clone())
    }

    /// Closes edge `node_id`'s connection (it reconnects and resumes). Whether it was
    /// connected.
    pub fn disconnect(&self, node_id: &str) -> bool {
        match lock(&self.shared.conns).remove(node_id) {
            Some(c) => {
                c.close(code(ErrorCode::Shutdown), b"disconnected by the origin");
                true
            }
            None => false,
        }
    }

    /// What was sent to which edge.
    pub fn ledger(&self) -> &Ledger {
        &self.shared.ledger
    }

    /// Closes every edge connection and stops accepting.
    pub fn stop(&self) {
        self.task.abort();
        self.endpoint
            .close(code(ErrorCode::Shutdown), b"origin shutting down");
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn code(c: ErrorCode) -> quinn::VarInt {
    quinn::VarInt::from_u64(c.to_code()).unwrap_or(quinn::VarInt::from_u32(0))
}

async fn accept(endpoint: quinn::Endpoint, shared: Arc<Shared>) {
    while let Some(incoming) = endpoint.accept().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            let conn = match incoming.await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(%remote, error = %e, "relay handshake failed");
                    return;
                }
            };
            if let Err(e) = serve_edge(conn.clone(), shared).await {
                tracing::warn!(%remote, error = %e, "edge session ended");
                conn.close(code(e.code()), e.to_string().as_bytes());
            }
        });
    }
}

/// Why an edge session ended early.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("no hello within {0:?}")]
    NoHello(Duration),
    #[error("expected a hello, got {0}")]
    NotHello(&'static str),
    #[error("edge {node:?} speaks relay version {version}, this origin {ours}")]
    Version { node: String, version: u32, ours: u32 },
    #[error("edge {0:?} presented a wrong node secret")]
    Unauthorized(String),
    #[error("control stream from edge {node:?} at offset {offset}: {source}")]
    Read {
        node: String,
        offset: u64,
        source: ReadFail,
    },
    #[error("edge {node:?} sent {frame} on the control stream")]
    Unexpected { node: String, frame: &'static str },
    #[error("edge {0:?} missed three heartbeats")]
    Silent(String),
    #[error(transparent)]
    Connection(#[from] quinn::ConnectionError),
}

impl SessionError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Version { .. } => ErrorCode::UnsupportedVersion,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Read {
                source: ReadFail::Frame(e),
                ..
            } => e.code(),
            Self::NoHello(_) | Self::NotHello(_) | Self::Unexpected { .. } | Self::Read { .. } => {
                ErrorCode::ProtocolViolation
            }
            Self::Silent(_) | Self::Connection(_) => ErrorCode::Shutdown,
        }
    }
}

/// Tasks of one edge session, aborted when it ends.
#[derive(Default)]
struct SessionTasks {
    watches: HashMap<String, JoinHandle<()>>,
    subs: HashMap<u64, JoinHandle<()>>,
}

impl Drop for SessionTasks {
    fn drop(&mut self) {
        for t in self.watches.values().chain(self.subs.values()) {
            t.abort();
        }
    }
}

async fn serve_edge(conn: quinn::Connection, shared: Arc<Shared>) -> Result<(), SessionError> {
    let remote = conn.remote_address();
    let timeout = shared.config.hello_timeout;
    let (mut send, recv) = tokio::time::timeout(timeout, conn.accept_bi())
        .await
        .map_err(|_| SessionError::NoHello(timeout))??;
    let mut reader = FrameReader::new(recv, shared.config.limits.clone());
    let read_err = |node: &str, offset, source| SessionError::Read {
        node: node.to_string(),
        offset,
        source,
    };
    let hello = tokio::time::timeout(timeout, reader.next())
        .await
        .map_err(|_| SessionError::NoHello(timeout))?;
    let offset = reader.offset();
    let (node_id, region, capacity_viewers, public_url) = match hello.map_err(|e| read_err("?", offset, e))? {
        Some(Frame::Hello {
            version,
            node_id,
            region,
            capacity_viewers,
            public_url,
            secret,
        }) => {
            if version != wire::VERSION {
                return Err(SessionError::Version {
                    node: node_id,
                    version,
                    ours: wire::VERSION,
                });
            }
            // Constant time; no secret configured admits nobody.
            let ok = shared
                .config
                .node_secret
                .as_ref()
                .is_some_and(|s| s.matches(&secret));
            if !ok {
                return Err(SessionError::Unauthorized(node_id));
            }
            (node_id, region, capacity_viewers, public_url)
        }
        Some(other) => return Err(SessionError::NotHello(other.name())),
        None => return Err(SessionError::NotHello("end of stream")),
    };
    let span = tracing::info_span!("edge", node = %node_id, %region, %remote);
    let _enter = span.enter();
    let public_url = if (public_url.starts_with("http://") || public_url.starts_with("https://"))
        && !public_url.contains(['?', '#', ' '])
    {
        public_url.trim_end_matches('/').to_string()
    } else {
        tracing::warn!(
            public_url = %public_url.chars().take(80).collect::<String>(),
            "the edge gave no usable public URL: /play will not send viewers to it"
        );
        String::new()
    };
    tracing::info!(capacity_viewers, %public_url, "edge connected");
    let connections = shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
    lock(&shared.edges).insert(
        node_id.clone(),
        EdgeStatus {
            node_id: node_id.clone(),
            region: region.clone(),
            capacity_viewers,
            public_url,
            events: std::collections::BTreeSet::new(),
            remote,
            viewers: 0,
            slots: 0,
            bytes_held: 0,
            connections,
        },
    );
    lock(&shared.conns).insert(node_id.clone(), conn.clone());
    let _registered = Registered {
        shared: shared.clone(),
        node_id: node_id.clone(),
        connections,
    };

    // One writer owns the control stream's send side.
    let (ctl, mut ctl_rx) = mpsc::channel::<Frame>(256);
    let writer = tokio::spawn(async move {
        while let Some(f) = ctl_rx.recv().await {
            if write_frame(&mut send, &f).await.is_err() {
                break;
            }
        }
    });
    let _writer = AbortOnDrop(writer);
    let _ = ctl
        .send(Frame::Welcome {
            origin_id: "origin".into(),
            heartbeat_ms: shared.config.heartbeat.as_millis() as u32,
        })
        .await;
    // Placement: an event with a schedule is provisioned on edges of its regions from a lead
    // time before its start until a grace period after its end, then released; an event from
    // the config file on every edge. Checked every second and whenever the events change
    // (one added, ended, rescheduled, a ticketed event's keys rotated), when every slot is
    // provisioned again so that edges pick the change up.
    let provision = {
        let (shared, ctl, region, node_id) = (shared.clone(), ctl.clone(), region.clone(), node_id.clone());
        async move {
            let mut changes = shared.events.changes();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut held = std::collections::BTreeSet::new();
            loop {
                let changed = tokio::select! {
                    r = changes.changed() => {
                        if r.is_err() {
                            return;
                        }
                        true
                    }
                    _ = tick.tick() => false,
                };
                changes.borrow_and_update();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let c = &shared.config;
                let mut wanted = std::collections::BTreeSet::new();
                for name in shared.events.names() {
                    let Some(e) = shared.events.get(&name) else {
                        continue;
                    };
                    let schedule = e.schedule();
                    if schedule
                        .as_ref()
                        .is_some_and(|s| !s.wants(&region, now, c.provision_lead_secs, c.release_grace_secs))
                    {
                        continue;
                    }
                    wanted.insert(name.clone());
                    if changed || !held.contains(&name) {
                        let tickets = e.tickets();
                        let frame = Frame::Provision {
                            event: name,
                            viewer_cap: schedule.map_or(c.viewer_cap, |s| s.viewer_cap),
                            ticketed: tickets.is_some(),
                            keys: tickets.map(|k| k.to_vec()).unwrap_or_default(),
                        };
                        if ctl.send(frame).await.is_err() {
                            return;
                        }
                    }
                }
                for gone in held.difference(&wanted) {
                    tracing::info!(event = %gone, "slot released");
                    if ctl.send(Frame::Release { event: gone.clone() }).await.is_err() {
                        return;
                    }
                }
                if let Some(s) = lock(&shared.edges).get_mut(&node_id) {
                    s.events.clone_from(&wanted);
                }
                held = wanted;
            }
        }
    };
    let _provision = AbortOnDrop(tokio::spawn(provision));

    let mut tasks = SessionTasks::default();
    let silent = shared.config.heartbeat * 3;
    let mut last_heard = Instant::now();
    loop {
        let next = tokio::select! {
            next = reader.next() => next,
            () = tokio::time::sleep_until((last_heard + silent).into()) => {
                return Err(SessionError::Silent(node_id));
            }
            e = conn.closed() => return match e {
                quinn::ConnectionError::ApplicationClosed(_) | quinn::ConnectionError::LocallyClosed => Ok(()),
                e => Err(e.into()),
            },
        };
        let offset = reader.offset();
        let frame = match next {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(()),
            Err(e) => return Err(read_err(&node_id, offset, e)),
        };
        last_heard = Instant::now();
        match frame {
            Frame::Heartbeat {
                seq,
                viewers,
                slots,
                bytes_held,
            } => {
                if let Some(s) = lock(&shared.edges).get_mut(&node_id) {
                    s.viewers = viewers;
                    s.slots = slots;
                    s.bytes_held = bytes_held;
                }
                let _ = ctl.send(Frame::HeartbeatAck { seq }).await;
            }
            // Only events the origin runs: an edge cannot make it hold numbers for others.
            Frame::Qoe { event, epoch, report } => {
                if shared.events.get(&event).is_some() {
                    shared
                        .qoe
                        .update(&event, &node_id, &region, epoch, *report, crate::qoe::unix_ms());
                }
            }
            Frame::Watch { event } => {
                if let std::collections::hash_map::Entry::Vacant(v) = tasks.watches.entry(event.clone()) {
                    v.insert(tokio::spawn(catalog::run(
                        ctl.clone(),
                        shared.events.clone(),
                        event,
                    )));
                }
            }
            Frame::Unwatch { event } => {
                if let Some(t) = tasks.watches.remove(&event) {
                    t.abort();
                }
            }
            Frame::Subscribe {
                sub,
                event,
                rendition,
                resume,
            } => {
                tasks.subs.retain(|_, t| !t.is_finished());
                if tasks.subs.len() >= 1024 || tasks.subs.contains_key(&sub) {
                    let _ = ctl
                        .send(Frame::SubscribeError {
                            sub,
                            code: ErrorCode::LimitExceeded,
                            reason: "too many subscriptions, or a subscription id in use".into(),
                        })
                        .await;
                    continue;
                }
                let t = tokio::spawn(objects::run(objects::Subscription {
                    conn: conn.clone(),
                    ctl: ctl.clone(),
                    node: node_id.clone(),
                    shared: shared.clone(),
                    sub,
                    event,
                    rendition,
                    resume,
                }));
                tasks.subs.insert(sub, t);
            }
            Frame::Unsubscribe { sub } => {
                if let Some(t) = tasks.subs.remove(&sub) {
                    t.abort();
                }
            }
            other => {
                return Err(SessionError::Unexpected {
                    node: node_id,
                    frame: other.name(),
                });
            }
        }
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Removes the edge from the registry when its session ends, unless a newer connection of
/// the same node took its place.
struct Registered {
    shared: Arc<Shared>,
    node_id: String,
    connections: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut edges = lock(&self.shared.edges);
        if edges
            .get(&self.node_id)
            .is_some_and(|s| s.connections == self.connections)
        {
            edges.remove(&self.node_id);
            lock(&self.shared.conns).remove(&self.node_id);
            // Its viewers are no longer watching there (its totals stay).
            self.shared.qoe.edge_gone(&self.node_id);
            tracing::info!(node = %self.node_id, "edge disconnected");
        }
    }
}
