//! The RTMP/RTMPS listener: one tokio task per connection drives a sans-IO [`Session`],
//! authorises the publish against the events' stream keys, and feeds the FLV tags it
//! carries, as frames, to the event.

use crate::events::Events;
use crate::ingest::flv::{FlvConfig, FlvDemuxer, FlvOutput};
use crate::ingest::limits::IpLimits;
use crate::ingest::rtmp::{Session, SessionConfig, SessionEvent};
use crate::live::{ClaimError, Feed, FeedError, SourceKind};
use popcast_packager::media::{Frame, TrackInfo};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The application name in `rtmp://host/live/{key}`.
pub const APP: &str = "live";

/// Frames held while a publisher's tracks are not all known yet.
const MAX_PENDING_FRAMES: usize = 600;
/// How long a publisher's frames may span before the tracks seen so far are taken as all.
const TRACK_WAIT_MS: i64 = 1_000;

/// Warnings about refused or broken connections, at most [`WARN_BURST`] per
/// [`WARN_WINDOW`]: a peer hammering the port must not flood the log. What is held back
/// is counted and reported with the next warning that gets through.
#[derive(Debug, Default)]
pub struct WarnBudget {
    state: std::sync::Mutex<(Option<Instant>, u32, u64)>,
}

const WARN_WINDOW: Duration = Duration::from_secs(10);
const WARN_BURST: u32 = 20;

impl WarnBudget {
    /// Whether a warning may be logged now, and how many were held back before it.
    pub fn take(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (start, used, held) = &mut *s;
        if start.is_none_or(|t| now.saturating_duration_since(t) >= WARN_WINDOW) {
            *start = Some(now);
            *used = 0;
        }
        if *used < WARN_BURST {
            *used += 1;
            Some(std::mem::take(held))
        } else {
            *held += 1;
            None
        }
    }
}

/// Logs a warning within the listener's budget.
macro_rules! budget_warn {
    ($state:expr, $($arg:tt)+) => {
        if let Some(held) = $state.warn_budget.take(Instant::now()) {
            if held > 0 {
                tracing::warn!(held_back = held, $($arg)+);
            } else {
                tracing::warn!($($arg)+);
            }
        }
    };
}

pub(crate) use budget_warn;

/// What the RTMP listener needs.
pub struct RtmpState {
    pub events: Arc<Events>,
    pub limits: Arc<IpLimits>,
    pub session: SessionConfig,
    pub flv: FlvConfig,
    pub handshake_timeout: Duration,
    /// A publisher that sends nothing for this long is dropped.
    pub idle_timeout: Duration,
    /// A peer that accepts none of our bytes for this long is dropped.
    pub write_timeout: Duration,
    pub takeover: bool,
    pub warn_budget: WarnBudget,
}

/// Accepts connections until the listener fails.
pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, state: Arc<RtmpState>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "rtmp accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = state.limits.connect(peer.ip()) else {
            budget_warn!(state, %peer, "rtmp connection refused: connection limit reached");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let ended = match tls {
                None => connection(tcp, peer, &state).await,
                Some(acceptor) => {
                    match tokio::time::timeout(state.handshake_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => connection(stream, peer, &state).await,
                        Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
                        Err(_) => Err("TLS handshake timed out".into()),
                    }
                }
            };
            match ended {
                Ok(why) => tracing::info!(%peer, "rtmp session ended: {why}"),
                Err(why) => budget_warn!(state, %peer, "rtmp session ended: {why}"),
            }
        });
    }
}

/// A publisher's state between the publish and its tracks being known.
struct Publishing {
    feed: Feed,
    demux: FlvDemuxer,
    tracks: Vec<TrackInfo>,
    /// Frames held until the tracks are declared.
    pending: Vec<Frame>,
    declared: bool,
    /// The metadata said which kinds of track to expect.
    expect_video: Option<bool>,
    expect_audio: Option<bool>,
    refused_frames: u64,
    /// When a tag last gave a usable frame (or the publish began).
    last_good: Instant,
}

/// A publisher whose tags have given no usable frame for this long is disconnected with a
/// reason, instead of holding its event while everything it sends is dropped.
const NO_USABLE_MEDIA: Duration = Duration::from_secs(10);

impl Publishing {
    /// Counts a refusal; past [`NO_USABLE_MEDIA`] without a usable frame, ends the session.
    fn refused(&self, why: &str) -> Result<(), String> {
        if self.last_good.elapsed() >= NO_USABLE_MEDIA {
            return Err(format!(
                "no usable media for {} s (last refusal: {why})",
                NO_USABLE_MEDIA.as_secs()
            ));
        }
        Ok(())
    }

    fn ready(&self) -> bool {
        let has = |audio: bool| self.tracks.iter().any(|t| is_audio(t) == audio);
        let want_v = self.expect_video.unwrap_or(true);
        let want_a = self.expect_audio.unwrap_or(true);
        let all = (!want_v || has(false)) && (!want_a || has(true)) && !self.tracks.is_empty();
        let span = match (self.pending.first(), self.pending.last()) {
            (Some(a), Some(b)) => {
                let ms = |f: &Frame| {
                    let ts = self
                        .tracks
                        .iter()
                        .find(|t| t.id == f.track)
                        .map_or(1000, |t| t.timescale.max(1));
                    // i128: a hostile publisher's timestamps may be anywhere in i64.
                    i128::from(f.dts) * 1000 / i128::from(ts)
                };
                ms(b) - ms(a)
            }
            _ => 0,
        };
        all || (!self.tracks.is_empty()
            && (span.abs() >= i128::from(TRACK_WAIT_MS) || self.pending.len() >= MAX_PENDING_FRAMES))
    }

    /// Takes the demuxer's outputs: tracks first, frames fed (or held until the tracks are known).
    fn take(&mut self, outputs: Vec<FlvOutput>) -> Result<(), String> {
        for out in outputs {
            match out {
                FlvOutput::Track(t) => {
                    self.tracks.retain(|x| x.id != t.id);
                    self.tracks.push(t);
                    self.tracks.sort_by_key(|t| t.id);
                    if self.declared {
                        // A new codec configuration mid-stream.
                        self.declare()?;
                    }
                }
                FlvOutput::Frame(f) if self.declared => self.feed(f)?,
                FlvOutput::Frame(f) => {
                    if self.pending.len() >= MAX_PENDING_FRAMES {
                        self.pending.remove(0);
                    }
                    self.pending.push(f);
                    self.last_good = Instant::now();
                }
            }
        }
        if !self.declared && self.ready() {
            self.declare()?;
            for f in std::mem::take(&mut self.pending) {
                self.feed(f)?;
            }
        }
        Ok(())
    }

    fn declare(&mut self) -> Result<(), String> {
        self.feed
            .set_tracks(self.tracks.clone())
            .map_err(|e| e.to_string())?;
        self.declared = true;
        Ok(())
    }

    fn feed(&mut self, f: Frame) -> Result<(), String> {
        match self.feed.push(f) {
            Ok(()) => {
                self.last_good = Instant::now();
                Ok(())
            }
            Err(
                e @ (FeedError::Replaced(_)
                | FeedError::Ended(_)
                | FeedError::Kicked(_)
                | FeedError::KeyframeInterval(_)),
            ) => Err(e.to_string()),
            Err(e) => {
                self.refused(&e.to_string())?;
                self.refused_frames += 1;
                // The first few in full; then one line per 100 so a broken source cannot flood logs.
                if self.refused_frames <= 5 || self.refused_frames % 100 == 0 {
                    tracing::warn!(event = %self.feed.event().name(), refused = self.refused_frames, "frame refused: {e}");
                }
                Ok(())
            }
        }
    }
}

fn is_audio(t: &TrackInfo) -> bool {
    t.video.is_none()
}

fn metadata_flag(props: &[(String, crate::ingest::rtmp::amf0::Value)], key: &str) -> Option<bool> {
    props.iter().find(|(k, _)| k == key).map(|(_, v)| {
        !matches!(
            v,
            crate::ingest::rtmp::amf0::Value::Null | crate::ingest::rtmp::amf0::Value::Undefined
        )
    })
}

/// A positive, finite number from the metadata (encoders send 0 for "not set").
fn metadata_number(props: &[(String, crate::ingest::rtmp::amf0::Value)], key: &str) -> Option<f64> {
    props.iter().find(|(k, _)| k == key).and_then(|(_, v)| match v {
        crate::ingest::rtmp::amf0::Value::Number(n) if n.is_finite() && *n > 0.0 && *n < 1e7 => Some(*n),
        _ => None,
    })
}

/// Drives one connection; `Ok(reason)` for an orderly end, `Err(reason)` for a refused or
/// broken one. The reason never contains the stream key.
async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    peer: SocketAddr,
    state: &RtmpState,
) -> Result<String, String> {
    let mut session = Session::new(state.session.clone());
    let mut publishing: Option<Publishing> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let started = Instant::now();
    loop {
        let limit = if session.handshake_done() {
            state.idle_timeout
        } else {
            state.handshake_timeout.saturating_sub(started.elapsed())
        };
        let n = match tokio::time::timeout(limit, io.read(&mut buf)).await {
            Err(_) if session.handshake_done() => {
                return Err(format!("no data for {} ms", limit.as_millis()));
            }
            Err(_) => return Err("handshake not finished in time".into()),
            Ok(Err(e)) => return Err(format!("read failed: {e}")),
            Ok(Ok(0)) => {
                return if publishing.is_some() {
                    Err("publisher disconnected without unpublishing".into())
                } else {
                    Ok("client closed the connection".into())
                };
            }
            Ok(Ok(n)) => n,
        };
        let received = session.receive(&buf[..n]);
        let arrived = SystemTime::now();
        let mut close: Option<Result<String, String>> = received.err().map(|e| Err(e.to_string()));
        while let Some(event) = session.poll_event() {
            match event {
                SessionEvent::Connected { app, .. } => {
                    // A query on the app may carry a token: never log it.
                    let app = app.split('?').next().unwrap_or_default();
                    tracing::debug!(%peer, %app, "rtmp connect");
                }
                SessionEvent::PublishRequested { app, stream_key } => {
                    match authorise(state, peer, &app, &stream_key) {
                        Ok(feed) => {
                            tracing::info!(%peer, event = %feed.event().name(), "publish accepted");
                            session.accept_publish();
                            publishing = Some(Publishing {
                                feed,
                                demux: FlvDemuxer::new(state.flv),
                                tracks: Vec::new(),
                                pending: Vec::new(),
                                declared: false,
                                expect_video: None,
                                expect_audio: None,
                                refused_frames: 0,
                                last_good: Instant::now(),
                            });
                        }
                        Err((code, why)) => {
                            budget_warn!(state, %peer, "publish refused: {why}");
                            session.reject_publish(code, &why);
                        }
                    }
                }
                SessionEvent::Metadata(props) => {
                    if let Some(p) = &mut publishing {
                        // Trusted only where it names a track: some encoders (HaishinKit) leave
                        // audio out of the metadata when the microphone is not ready yet, and
                        // the track then arrives a moment later.
                        p.expect_video = metadata_flag(&props, "videocodecid");
                        p.expect_audio = metadata_flag(&props, "audiocodecid");
                        // What the encoder says it sends, to measure against (kb/s, fps).
                        p.feed.declare(crate::ingest::analyzer::Declared {
                            video_kbps: metadata_number(&props, "videodatarate"),
                            audio_kbps: metadata_number(&props, "audiodatarate"),
                            fps: metadata_number(&props, "framerate"),
                        });
                    }
                    let keys: Vec<&str> = props.iter().map(|(k, _)| k.as_str()).collect();
                    tracing::debug!(%peer, ?keys, "rtmp metadata");
                }
                SessionEvent::Video { timestamp, data } | SessionEvent::Audio { timestamp, data }
                    if publishing.is_none() =>
                {
                    let _ = (timestamp, data);
                }
                SessionEvent::Video { timestamp, data } => {
                    let p = publishing.as_mut().expect("guarded");
                    let outputs = p.demux.video(timestamp, data, arrived);
                    if let Err(why) = media(&mut session, p, outputs) {
                        close = Some(Err(why));
                    }
                }
                SessionEvent::Audio { timestamp, data } => {
                    let p = publishing.as_mut().expect("guarded");
                    let outputs = p.demux.audio(timestamp, data, arrived);
                    if let Err(why) = media(&mut session, p, outputs) {
                        close = Some(Err(why));
                    }
                }
                SessionEvent::Unpublished => {
                    if let Some(p) = publishing.take() {
                        tracing::info!(%peer, event = %p.feed.event().name(), "unpublished");
                    }
                }
            }
            if close.is_some() {
                break;
            }
        }
        if let Some(out) = session.take_output() {
            match tokio::time::timeout(state.write_timeout, io.write_all(&out)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(format!("write failed: {e}")),
                Err(_) => {
                    return Err(format!(
                        "the peer read nothing for {} ms",
                        state.write_timeout.as_millis()
                    ));
                }
            }
        }
        if let Some(c) = close {
            let _ = tokio::time::timeout(state.write_timeout, io.flush()).await;
            return c;
        }
    }
}

/// Feeds demuxer outputs; a fatal FLV error (an unsupported codec) is told to the client
/// with an onStatus before the connection closes.
fn media(
    session: &mut Session,
    p: &mut Publishing,
    outputs: Result<Vec<FlvOutput>, crate::ingest::flv::FlvError>,
) -> Result<(), String> {
    match outputs {
        Ok(outs) => p.take(outs).inspect_err(|_| {
            if p.feed.is_kicked() {
                session.send_status(
                    "error",
                    "NetStream.Publish.BadName",
                    "an operator ended this publishing session; the stream key is revoked",
                );
            } else if !p.feed.is_current() {
                session.send_status(
                    "error",
                    "NetStream.Publish.BadName",
                    "another publisher took this event over",
                );
            }
        }),
        Err(e) if e.is_fatal() => {
            session.send_status(
                "error",
                "NetStream.Publish.Failed",
                &e.status_description().unwrap_or_else(|| e.to_string()),
            );
            Err(e.to_string())
        }
        Err(e) => {
            if let Err(why) = p.refused(&e.to_string()) {
                session.send_status("error", "NetStream.Publish.Failed", &why);
                return Err(why);
            }
            p.refused_frames += 1;
            if p.refused_frames <= 5 || p.refused_frames % 100 == 0 {
                tracing::warn!(event = %p.feed.event().name(), refused = p.refused_frames, "tag dropped: {e}");
            }
            Ok(())
        }
    }
}

/// The application name without a query, a trailing `/_definst_` or trailing slashes.
fn normalise_app(app: &str) -> &str {
    let app = app.split('?').next().unwrap_or_default().trim_end_matches('/');
    let app = app.strip_suffix("/_definst_").unwrap_or(app);
    app.trim_end_matches('/')
}

/// Checks a publish: rate limit, application, key → event, and the event's current source.
fn authorise(
    state: &RtmpState,
    peer: SocketAddr,
    app: &str,
    key: &str,
) -> Result<Feed, (&'static str, String)> {
    const BAD_NAME: &str = "NetStream.Publish.BadName";
    if !state.limits.attempt(peer.ip(), Instant::now()) {
        return Err((
            BAD_NAME,
            "too many publish attempts from this address; wait a minute".into(),
        ));
    }
    // A query on the app is allowed (and ignored), as are `live/` and Wowza's
    // `live/_definst_`; the app itself is never echoed or logged: a misconfigured client may
    // have put its key there.
    if normalise_app(app) != APP {
        return Err((
            BAD_NAME,
            format!("unknown application: publish to rtmp://host/{APP}/{{stream key}}"),
        ));
    }
    let Some(event) = state.events.by_key(key.as_bytes()) else {
        return Err((BAD_NAME, "unknown stream key".into()));
    };
    event
        .claim(SourceKind::Publisher { peer }, state.takeover)
        .map_err(|e| {
            tracing::info!(%peer, "{e}");
            match e {
                // The log has who holds it; the client learns only that it is taken.
                ClaimError::Busy { .. } => (BAD_NAME, "this event already has a publisher".into()),
                // The key holder may know when their event opens, and that it ended.
                ClaimError::NotYet { opens, .. } => (
                    BAD_NAME,
                    format!("this event is not open for publishing yet: it opens at {opens}"),
                ),
                ClaimError::Ended(_) => (BAD_NAME, "this event has ended".into()),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_budgeted_and_what_was_held_back_is_counted() {
        let b = WarnBudget::default();
        let t = Instant::now();
        for _ in 0..WARN_BURST {
            assert_eq!(b.take(t), Some(0));
        }
        assert_eq!(b.take(t), None);
        assert_eq!(b.take(t + Duration::from_secs(1)), None);
        assert_eq!(b.take(t + WARN_WINDOW), Some(2));
    }

    #[test]
    fn application_names_as_clients_send_them() {
        for app in ["live", "live/", "live?x=1", "live/_definst_", "live/_definst_/"] {
            assert_eq!(normalise_app(app), "live", "{app}");
        }
        for app in ["", "lives", "other", "live/x"] {
            assert_ne!(normalise_app(app), "live", "{app}");
        }
    }
}
