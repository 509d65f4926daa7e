//! `popcast up` and `popcast origin`: the origin with its configured events; `up` adds the
//! event `demo`, fed by the built-in test source until a creator publishes to it.

use crate::cli::{SourceKind, UpArgs};
use anyhow::Context;
use popcast_config::Config;
use popcast_edge::Edge;
use popcast_origin::Origin;
use popcast_origin::events::{Events, new_stream_key};
use popcast_origin::live::{self, LiveEvent};
use popcast_packager::ffmpeg::TestSource;
use popcast_packager::media::CodecConfig;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The event `popcast up` runs.
pub const DEMO: &str = "demo";

/// The configured events (`origin.events`).
fn configured_events(config: &Config) -> anyhow::Result<Arc<Events>> {
    let events = Arc::new(Events::new());
    for e in &config.origin.events {
        let live = LiveEvent::new(&e.name, e.stream_key.expose().as_bytes(), &config.packager);
        live.set_ladder(Some(config.ladder.clone()));
        events.add(live)?;
    }
    Ok(events)
}

/// A secret of this all-in-one kept in `data_dir/file` (the demo event's key, so a creator's
/// OBS setup survives restarts; the operator token, so a bookmarked dashboard does):
/// created on first use with owner-only permissions.
fn saved_secret(data_dir: &Path, file: &str) -> anyhow::Result<String> {
    let path = data_dir.join(file);
    if let Ok(k) = std::fs::read_to_string(&path) {
        let k = k.trim().to_string();
        if k.len() >= 16 && k.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(k);
        }
        tracing::warn!(path = %path.display(), "ignoring a malformed secret file; writing a new one");
    }
    let key = new_stream_key().map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    let saved = std::fs::create_dir_all(data_dir).and_then(|()| {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(key.as_bytes())
    });
    if let Err(e) = saved {
        tracing::warn!(path = %path.display(), error = %e, "cannot save the secret; it changes on every run");
    }
    Ok(key)
}

/// Base URL printed for HTTP: the configured public URL, or the bound port on loopback when
/// the public URL was left at its default.
fn http_base(config: &Config, origin: &Origin) -> String {
    let default = popcast_config::OriginConfig::default().public_url;
    if config.origin.public_url != default {
        return config.origin.public_url.trim_end_matches('/').to_string();
    }
    let scheme = if origin.tls { "https" } else { "http" };
    format!("{scheme}://{}", reachable(origin.http_addr))
}

/// `addr` as a client on this machine dials it: a wildcard bind is reached on loopback.
fn reachable(addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    }
}

pub async fn run(mut config: Config, args: UpArgs) -> anyhow::Result<()> {
    if let Some(a) = args.rtmp_listen {
        config.origin.rtmp_listen = a;
    }
    if let Some(a) = args.http_listen {
        config.origin.http_listen = a;
    }
    if let Some(a) = args.edge_listen {
        config.edge.http_listen = a;
    }
    if let Some(a) = args.whip_listen {
        config.origin.whip.udp_listen = a;
    }
    if let Some(a) = args.relay_listen {
        config.origin.relay_listen = a;
    }
    // The in-process edge and the origin share a node secret: the configured one, or one
    // made for this run.
    let secret = match (&config.origin.node_secret, &config.edge.node_secret) {
        (Some(s), _) | (None, Some(s)) => s.clone(),
        (None, None) => popcast_config::Secret::new(
            new_stream_key().map_err(|_| anyhow::anyhow!("no randomness for the node secret"))?,
        ),
    };
    config.origin.node_secret = Some(secret.clone());
    config.edge.node_secret = Some(secret);
    // The operator API and dashboard: the configured token, or one kept for this data
    // directory (owner-only; its path is printed, never the token).
    let made_token = match &config.origin.operator_token {
        Some(_) => None,
        None => {
            let t = saved_secret(&config.node.data_dir, "operator.token")?;
            config.origin.operator_token = Some(popcast_config::Secret::new(t));
            Some(config.node.data_dir.join("operator.token"))
        }
    };
    let events = configured_events(&config)?;
    let key = match config.origin.events.iter().find(|e| e.name == DEMO) {
        Some(e) => e.stream_key.expose().to_string(),
        None => {
            let key = saved_secret(&config.node.data_dir, "demo.stream-key")?;
            let demo = LiveEvent::new(DEMO, key.as_bytes(), &config.packager);
            demo.set_ladder(Some(config.ladder.clone()));
            events.add(demo)?;
            key
        }
    };
    let demo = events.get(DEMO).context("the demo event")?;
    let origin = Origin::start(&config, events.clone()).await?;
    let edge = start_edge(&mut config, &origin).await?;
    let base = http_base(&config, &origin);
    let rtmp_scheme = if origin.tls { "rtmps" } else { "rtmp" };
    println!("origin playback: {base}/live/{DEMO}/master.m3u8");
    println!(
        "edge playback: http://{}/live/{DEMO}/master.m3u8",
        reachable(edge.http_addr)
    );
    println!(
        "RTMP publish: {rtmp_scheme}://{}/live/{key}",
        reachable(origin.rtmp_addr)
    );
    match origin.whip_candidate {
        Some(_) => println!("WHIP publish: {base}/whip/{DEMO} (bearer token: the stream key above)"),
        None => println!("WHIP publish: off (origin.whip.enabled = false)"),
    }
    println!("embed page: {base}/embed/{DEMO}");
    match &made_token {
        Some(path) => println!(
            "dashboard: {base}/dashboard (operator token in {}; or open {base}/dashboard#token=<token>)",
            path.display()
        ),
        None => println!("dashboard: {base}/dashboard (sign in with origin.operator_token)"),
    }

    let source = match args.source {
        SourceKind::Test => Some(tokio::spawn(test_source(
            demo.clone(),
            config.test_source.clone(),
        ))),
        SourceKind::None => {
            println!("test source: off (--source none); the demo event waits for a creator");
            None
        }
    };

    let every = Duration::from_secs(args.status_every.clamp(1, 86_400));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let stop_at = args
        .duration
        .and_then(|s| tokio::time::Instant::now().checked_add(Duration::from_secs(s)));
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut status = demo.status();
    let mut shown = None;
    let ended_by = loop {
        tokio::select! {
            _ = ticker.tick() => println!("{}", status_line(&demo)),
            changed = status.changed() => {
                if changed.is_err() { break "the demo event closed"; }
                let now = status.borrow_and_update().source.clone();
                if now != shown {
                    match &now {
                        Some(by) => println!("{DEMO}: now fed by {by}"),
                        None => println!("{DEMO}: no source (waiting for a creator to publish)"),
                    }
                    shown = now;
                }
            }
            _ = async { tokio::time::sleep_until(stop_at.expect("guarded")).await }, if stop_at.is_some() => {
                break "--duration elapsed";
            }
            signal = &mut shutdown => break signal,
        }
    };
    if let Some(s) = source {
        s.abort();
        // The source thread stops when its task's handle drops; give it a moment.
        let _ = s.await;
    }
    edge.stop();
    origin.stop();
    println!("stopped: {ended_by}");
    Ok(())
}

/// The in-process edge of `popcast up`: dials the origin's relay on loopback, trusting the
/// certificate the origin made (or was given) for it.
async fn start_edge(config: &mut Config, origin: &Origin) -> anyhow::Result<Edge> {
    let relay = origin
        .relay
        .as_ref()
        .context("the relay (it runs when a node secret is set)")?;
    config.edge.origin_relay = reachable(relay.addr);
    config.edge.origin_server_name = "localhost".into();
    if config.edge.origin_ca_path.is_none() {
        let cert = match (&config.origin.relay_tls, &config.origin.tls) {
            (Some(t), _) | (None, Some(t)) => t.cert_path.clone(),
            (None, None) => config.node.data_dir.join("relay/cert.pem"),
        };
        config.edge.origin_ca_path = Some(cert);
    }
    Ok(Edge::start(config).await?)
}

/// `popcast edge`: an edge node serving the events its origin provisions, until Ctrl-C or
/// SIGTERM.
pub async fn edge(config: Config) -> anyhow::Result<()> {
    let edge = Edge::start(&config).await?;
    println!("edge {} ({})", config.edge.node_id, config.edge.region);
    println!("viewer HTTP: {}", edge.http_addr);
    println!("origin relay: {}", config.edge.origin_relay);
    let signal = shutdown_signal().await;
    edge.stop();
    println!("stopped: {signal}");
    Ok(())
}

/// `popcast origin`: the configured events, served until Ctrl-C or SIGTERM.
pub async fn origin(config: Config) -> anyhow::Result<()> {
    let events = configured_events(&config)?;
    let origin = Origin::start(&config, events.clone()).await?;
    println!("RTMP ingest: {}", origin.rtmp_addr);
    println!("HTTP: {}", origin.http_addr);
    match &origin.relay {
        Some(r) => println!("relay (QUIC): {}", r.addr),
        None => println!("relay: off (no origin.node_secret)"),
    }
    for name in events.names() {
        println!("event {name}: /live/{name}/master.m3u8");
    }
    let signal = shutdown_signal().await;
    origin.stop();
    println!("stopped: {signal}");
    Ok(())
}

fn status_line(event: &LiveEvent) -> String {
    let store = event.store();
    let edge = |name| {
        store
            .rendition(name)
            .ok()
            .and_then(|r| r.last_part())
            .map_or("-".to_string(), |(m, p)| format!("{m}.{p}"))
    };
    let s = event.status().borrow().clone();
    format!(
        "{}: source {}, live edge {}={} {}={}, sessions {}",
        event.name(),
        s.source.map_or("none".to_string(), |k| k.to_string()),
        live::VIDEO_RENDITION,
        edge(live::VIDEO_RENDITION),
        live::AUDIO_RENDITION,
        edge(live::AUDIO_RENDITION),
        s.sessions,
    )
}

/// Feeds the test source into `event` until a creator takes it over.
async fn test_source(event: Arc<LiveEvent>, settings: popcast_config::TestSourceConfig) {
    let shown = settings.clone();
    let why = popcast_origin::test_source::feed(event, settings, |source| describe(source, &shown)).await;
    println!("test source: stopped ({why})");
}

/// One line per track of the test source.
fn describe(source: &TestSource, settings: &popcast_config::TestSourceConfig) {
    for track in source.tracks() {
        match (&track.codec, &track.video) {
            (CodecConfig::H264(avc), Some(v)) => println!(
                "test source video: {} {}x{} @ {} fps, keyframe every {} ms, {} kbit/s",
                avc.codec_string(),
                v.width,
                v.height,
                settings.frame_rate,
                settings.keyframe_interval_ms,
                settings.video_kbps,
            ),
            (CodecConfig::Aac(asc), _) => println!(
                "test source audio: {} {} Hz, {} channel(s), {} kbit/s",
                asc.codec_string(),
                asc.sample_rate,
                asc.channel_config,
                settings.audio_kbps,
            ),
            (other, _) => println!("test source track {:?}: {other:?}", track.id),
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM, naming which.
async fn shutdown_signal() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C still stops");
            let _ = tokio::signal::ctrl_c().await;
            return "Ctrl-C";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = term.recv() => "SIGTERM",
    }
}
