//! The upstream link: this edge's QUIC connection to its origin. Says hello, takes
//! provisioning, watches catalogs, subscribes renditions on demand and feeds each object
//! stream into its rendition's relayed copy; reconnects with jittered backoff and resumes
//! every subscription from what the copies hold.

use crate::slot::{Catalog, RenditionMirror, Slots, Wanted};
use popcast_packager::relay::io::{FrameReader, write_frame};
use popcast_packager::relay::{self as wire, ErrorCode, Frame, Limits};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How the link is made.
#[derive(Clone)]
pub struct UpstreamConfig {
    pub origin: String,
    pub server_name: String,
    pub tls: Arc<rustls::ClientConfig>,
    pub node_id: String,
    pub region: String,
    pub capacity_viewers: u32,
    /// Where viewers reach this edge (announced in the hello for `/play`).
    pub public_url: String,
    pub node_secret: String,
    pub limits: Limits,
    /// Longest wait between reconnection attempts (attempts start at 100 ms and double).
    pub max_backoff: Duration,
    /// The link counts as dead after this long without a packet.
    pub idle_timeout: Duration,
}

/// Why a connection attempt or a session failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot resolve the origin relay address {0:?}")]
    Resolve(String),
    #[error("relay TLS: {0}")]
    Tls(String),
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("control stream: {0}")]
    Read(#[from] wire::io::ReadFail),
    #[error("control stream write: {0}")]
    Write(#[from] std::io::Error),
    #[error("the origin closed the control stream")]
    Closed,
    #[error("the origin sent {0} where it should not")]
    Unexpected(&'static str),
    #[error("no welcome from the origin in time")]
    NoWelcome,
}

/// Link state others may read.
#[derive(Debug, Default)]
pub struct LinkStatus {
    pub connected: AtomicBool,
    pub connections: AtomicU64,
    /// Objects torn by the link (dropped, never served as complete).
    pub torn_objects: AtomicU64,
    /// Subscriptions started again after a torn object, a lag or a superseded session.
    pub resubscribes: AtomicU64,
}

/// Subscription ids of the running connection, to their copies.
type Subs = Arc<Mutex<HashMap<u64, Arc<RenditionMirror>>>>;

/// Runs the link until the task is dropped: connect, serve, reconnect.
pub async fn run(
    config: UpstreamConfig,
    slots: Arc<Slots>,
    mut wanted: mpsc::UnboundedReceiver<Wanted>,
    status: Arc<LinkStatus>,
) {
    let mut state = Wants::default();
    let mut backoff = Duration::from_millis(100);
    let mut endpoint: Option<quinn::Endpoint> = None;
    loop {
        match connect(&config, &mut endpoint).await {
            Ok(conn) => {
                backoff = Duration::from_millis(100);
                status.connected.store(true, Ordering::Relaxed);
                status.connections.fetch_add(1, Ordering::Relaxed);
                tracing::info!(origin = %config.origin, "upstream connected");
                let ended = session(&config, &conn, &slots, &mut wanted, &mut state, &status).await;
                status.connected.store(false, Ordering::Relaxed);
                match ended {
                    Ok(()) => tracing::info!("upstream closed"),
                    Err(e) => tracing::warn!(error = %e, "upstream lost"),
                }
                conn.close(code(ErrorCode::Shutdown), b"edge reconnecting");
                for m in state.subscriptions.values() {
                    m.link_lost();
                }
            }
            Err(e) => tracing::warn!(origin = %config.origin, error = %e, "upstream connect failed"),
        }
        // Take what slots asked for meanwhile, then wait with jitter (edges that lost the
        // same origin must not all come back in the same instant).
        while let Ok(w) = wanted.try_recv() {
            state.note(w);
        }
        let jitter = 0.5 + jitter_unit();
        tokio::time::sleep(backoff.mul_f64(jitter)).await;
        backoff = (backoff * 2).min(config.max_backoff);
    }
}

/// A number in [0, 1) from the clock's low bits: enough to spread reconnections.
fn jitter_unit() -> f64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(n % 1000) / 1000.0
}

fn code(c: ErrorCode) -> quinn::VarInt {
    quinn::VarInt::from_u64(c.to_code()).unwrap_or(quinn::VarInt::from_u32(0))
}

/// What the slots asked for, kept across connections.
#[derive(Default)]
struct Wants {
    watched: HashSet<String>,
    /// Copies wanted, by (event, rendition).
    subscriptions: HashMap<(String, String), Arc<RenditionMirror>>,
}

impl Wants {
    fn note(&mut self, w: Wanted) {
        match w {
            Wanted::Watch { event } => {
                self.watched.insert(event);
            }
            Wanted::Subscribe { mirror } => {
                self.subscriptions
                    .insert((mirror.event().to_string(), mirror.name().to_string()), mirror);
            }
            Wanted::Forget { event } => {
                self.watched.remove(&event);
                self.subscriptions.retain(|(e, _), _| *e != event);
            }
        }
    }
}

async fn connect(
    config: &UpstreamConfig,
    endpoint: &mut Option<quinn::Endpoint>,
) -> Result<quinn::Connection, LinkError> {
    let addr: SocketAddr = tokio::net::lookup_host(&config.origin)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| LinkError::Resolve(config.origin.clone()))?;
    if endpoint.is_none() {
        let bind: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let bind = if addr.ip().is_loopback() {
            SocketAddr::new(
                if addr.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                },
                0,
            )
        } else {
            bind
        };
        let mut e = quinn::Endpoint::client(bind).map_err(|e| LinkError::Tls(e.to_string()))?;
        let mut tls = (*config.tls).clone();
        tls.alpn_protocols = vec![wire::ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
            .map_err(|e| LinkError::Tls(e.to_string()))?;
        let mut client = quinn::ClientConfig::new(Arc::new(crypto));
        let mut t = quinn::TransportConfig::default();
        // The origin opens one stream per object; many are in flight on a busy event.
        t.max_concurrent_uni_streams(4096u32.into())
            .max_concurrent_bidi_streams(0u8.into())
            .receive_window(quinn::VarInt::from_u32(64 * 1024 * 1024))
            .stream_receive_window(quinn::VarInt::from_u32(16 * 1024 * 1024))
            .keep_alive_interval(Some(config.idle_timeout / 4))
            .max_idle_timeout(quinn::IdleTimeout::try_from(config.idle_timeout).ok());
        client.transport_config(Arc::new(t));
        e.set_default_client_config(client);
        *endpoint = Some(e);
    }
    let e = endpoint.as_ref().expect("set above");
    Ok(e.connect(addr, &config.server_name)?.await?)
}

/// One connection's life: hello, then control frames, object streams and the slots'
/// wants, until something fails.
async fn session(
    config: &UpstreamConfig,
    conn: &quinn::Connection,
    slots: &Arc<Slots>,
    wanted: &mut mpsc::UnboundedReceiver<Wanted>,
    state: &mut Wants,
    status: &Arc<LinkStatus>,
) -> Result<(), LinkError> {
    let (mut send, recv) = conn.open_bi().await?;
    write_frame(
        &mut send,
        &Frame::Hello {
            version: wire::VERSION,
            node_id: config.node_id.clone(),
            region: config.region.clone(),
            capacity_viewers: config.capacity_viewers,
            public_url: config.public_url.clone(),
            secret: bytes::Bytes::copy_from_slice(config.node_secret.as_bytes()),
        },
    )
    .await?;
    let mut reader = FrameReader::new(recv, config.limits.clone());
    let heartbeat = match tokio::time::timeout(Duration::from_secs(5), reader.next()).await {
        Ok(Ok(Some(Frame::Welcome { heartbeat_ms, .. }))) => {
            Duration::from_millis(u64::from(heartbeat_ms.clamp(100, 60_000)))
        }
        Ok(Ok(Some(other))) => return Err(LinkError::Unexpected(other.name())),
        Ok(Ok(None)) => return Err(LinkError::Closed),
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => return Err(LinkError::NoWelcome),
    };
    let subs: Subs = Arc::default();
    let mut next_sub: u64 = 1;
    // A copy has at most one subscription: an older one is cancelled at the origin.
    let mut subscribe = |mirror: &Arc<RenditionMirror>, subs: &Subs| {
        let sub = next_sub;
        next_sub += 1;
        mirror.begin(sub);
        let mut map = subs.lock().unwrap_or_else(|e| e.into_inner());
        let old: Vec<u64> = map
            .iter()
            .filter(|(_, m)| Arc::ptr_eq(m, mirror))
            .map(|(s, _)| *s)
            .collect();
        let mut frames: Vec<Frame> = old
            .into_iter()
            .map(|sub| {
                map.remove(&sub);
                Frame::Unsubscribe { sub }
            })
            .collect();
        map.insert(sub, mirror.clone());
        frames.push(Frame::Subscribe {
            sub,
            event: mirror.event().to_string(),
            rendition: mirror.name().to_string(),
            resume: mirror.resume(),
        });
        frames
    };
    for event in &state.watched {
        write_frame(&mut send, &Frame::Watch { event: event.clone() }).await?;
    }
    for mirror in state.subscriptions.values() {
        for f in subscribe(mirror, &subs) {
            write_frame(&mut send, &f).await?;
        }
    }
    // Objects torn or refused ask for their copy to be subscribed again through here.
    let (again_tx, mut again) = mpsc::unbounded_channel::<Arc<RenditionMirror>>();
    let mut beat = tokio::time::interval(heartbeat);
    let mut seq = 0u64;
    // The QoE report last sent per event on this connection (a new connection sends all).
    let mut qoe_sent: HashMap<String, popcast_packager::qoe::Report> = HashMap::new();
    let mut retry: Vec<Arc<RenditionMirror>> = Vec::new();
    let mut retry_tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            frame = reader.next() => {
                let frame = frame?.ok_or(LinkError::Closed)?;
                match frame {
                    Frame::Provision { event, viewer_cap, ticketed, keys } => {
                        slots.provision(&event, viewer_cap).set_tickets(ticketed, &keys);
                    }
                    Frame::Release { event } => slots.release(&event),
                    Frame::Catalog { event, state: s, renditions, multivariant } => {
                        if let Some(slot) = slots.get(&event) {
                            slot.set_catalog(Catalog { state: s, renditions, multivariant });
                        }
                    }
                    Frame::SubscribeOk { sub, epoch, replay_to } => {
                        let m = subs.lock().unwrap_or_else(|e| e.into_inner()).get(&sub).cloned();
                        if let Some(m) = m {
                            if let Err(e) = m.started(sub, epoch, replay_to) {
                                tracing::warn!(error = %e, "relayed copy refused its objects");
                                let _ = again_tx.send(m);
                            }
                        }
                    }
                    Frame::SubscribeError { sub, code: c, reason } => {
                        let m = subs.lock().unwrap_or_else(|e| e.into_inner()).remove(&sub);
                        if let Some(m) = m {
                            tracing::debug!(event = m.event(), rendition = m.name(), code = %c, %reason, "subscription refused; retrying");
                            retry.push(m);
                        }
                    }
                    Frame::SubscriptionEnd { sub, code: c, reason } => {
                        // An ended rendition's last objects (its `Ended` among them) are on
                        // their own streams and may still be arriving: the copy stays
                        // registered for them until it is forgotten or subscribed again.
                        let m = if c == ErrorCode::Ended {
                            None
                        } else {
                            subs.lock().unwrap_or_else(|e| e.into_inner()).remove(&sub)
                        };
                        if let Some(m) = m.filter(|m| m.current_sub() == Some(sub)) {
                            tracing::info!(event = m.event(), rendition = m.name(), code = %c, %reason, "subscription ended; resubscribing");
                            status.resubscribes.fetch_add(1, Ordering::Relaxed);
                            for f in subscribe(&m, &subs) {
                                write_frame(&mut send, &f).await?;
                            }
                        }
                    }
                    Frame::HeartbeatAck { .. } => {}
                    other => return Err(LinkError::Unexpected(other.name())),
                }
            }
            w = wanted.recv() => {
                let Some(w) = w else { return Ok(()) };
                match &w {
                    Wanted::Watch { event } => write_frame(&mut send, &Frame::Watch { event: event.clone() }).await?,
                    Wanted::Subscribe { mirror } => {
                        for f in subscribe(mirror, &subs) {
                            write_frame(&mut send, &f).await?;
                        }
                    }
                    Wanted::Forget { event } => {
                        write_frame(&mut send, &Frame::Unwatch { event: event.clone() }).await?;
                        let gone: Vec<u64> = subs
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .iter()
                            .filter(|(_, m)| m.event() == event)
                            .map(|(s, _)| *s)
                            .collect();
                        for sub in gone {
                            subs.lock().unwrap_or_else(|e| e.into_inner()).remove(&sub);
                            write_frame(&mut send, &Frame::Unsubscribe { sub }).await?;
                        }
                    }
                }
                state.note(w);
            }
            m = again.recv() => {
                if let Some(m) = m {
                    status.resubscribes.fetch_add(1, Ordering::Relaxed);
                    for f in subscribe(&m, &subs) {
                        write_frame(&mut send, &f).await?;
                    }
                }
            }
            stream = conn.accept_uni() => {
                let recv = stream?;
                tokio::spawn(object(recv, subs.clone(), config.limits.clone(), again_tx.clone(), status.clone()));
            }
            _ = beat.tick() => {
                seq += 1;
                let all = slots.all();
                write_frame(&mut send, &Frame::Heartbeat {
                    seq,
                    viewers: all.iter().map(|s| s.viewers()).sum(),
                    slots: all.len() as u32,
                    bytes_held: all.iter().map(|s| s.bytes_held() as u64).sum(),
                }).await?;
                // Each event's QoE, when it changed since the last report.
                qoe_sent.retain(|event, _| all.iter().any(|s| s.name() == event));
                for slot in &all {
                    let report = slot.qoe.report(u64::from(slot.viewers()));
                    if qoe_sent.get(slot.name()) != Some(&report) {
                        write_frame(&mut send, &Frame::Qoe {
                            event: slot.name().to_string(),
                            epoch: slot.qoe.epoch(),
                            report: Box::new(report.clone()),
                        }).await?;
                        qoe_sent.insert(slot.name().to_string(), report);
                    }
                }
            }
            _ = retry_tick.tick() => {
                for m in std::mem::take(&mut retry) {
                    for f in subscribe(&m, &subs) {
                        write_frame(&mut send, &f).await?;
                    }
                }
            }
        }
    }
}

/// Reads one object stream into its copy. A stream that ends without `ObjectEnd` (reset,
/// link lost, malformed) is torn: the copy drops it and is subscribed again.
async fn object(
    recv: quinn::RecvStream,
    subs: Subs,
    limits: Limits,
    again: mpsc::UnboundedSender<Arc<RenditionMirror>>,
    status: Arc<LinkStatus>,
) {
    let mut reader = FrameReader::new(recv, limits);
    let (sub, seq) = match reader.next().await {
        Ok(Some(Frame::ObjectHeader { sub, seq })) => (sub, seq),
        _ => return,
    };
    let Some(mirror) = subs.lock().unwrap_or_else(|e| e.into_inner()).get(&sub).cloned() else {
        let _ = reader.get_mut().stop(code(ErrorCode::NotFound));
        return;
    };
    loop {
        match reader.next().await {
            Ok(Some(f)) => {
                let end = matches!(f, Frame::ObjectEnd);
                if let Err(e) = mirror.frame(sub, seq, f) {
                    tracing::warn!(error = %e, "relayed object refused");
                    if mirror.torn(sub, seq) {
                        let _ = again.send(mirror);
                    }
                    return;
                }
                if end {
                    return;
                }
            }
            Ok(None) | Err(_) => {
                status.torn_objects.fetch_add(1, Ordering::Relaxed);
                if mirror.torn(sub, seq) {
                    let _ = again.send(mirror);
                }
                return;
            }
        }
    }
}
