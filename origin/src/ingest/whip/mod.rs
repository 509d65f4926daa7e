//! WHIP ingest (RFC 9725): `POST /whip/{event}` with an SDP offer and the stream key as a
//! bearer token answers `201 Created` with our SDP answer and the session's URL; `DELETE` on
//! that URL ends it. WebRTC runs on str0m (sans-IO, ICE-lite, DTLS-SRTP over OpenSSL, NACK,
//! RTCP reports) on one UDP socket ([`net`]); [`depack`] turns its media into frames, Opus
//! is transcoded to AAC, and the event is fed as RTMP feeds it.

pub mod depack;
pub mod net;
pub mod offer;

use crate::events::Events;
use crate::ingest::limits::IpLimits;
use crate::ingest::server::budget_warn;
use crate::live::{ClaimError, Feed, FeedError, SourceKind, hash_key};
use depack::{Depacketiser, Out};
use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use net::{Cmd, ToMedia};
use popcast_packager::http::{Body, Reply, reply, text};
use popcast_packager::media::{CodecConfig, Frame, TrackInfo};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Payloads queued from the socket task to one session's media task (about 3 s).
const MEDIA_QUEUE: usize = 512;
/// A session whose media has given no usable video frame for this long is ended with a
/// reason, instead of holding its event while everything it sends is dropped.
const NO_USABLE_MEDIA: Duration = Duration::from_secs(10);

/// Why the WHIP service could not start.
#[derive(Debug, thiserror::Error)]
pub enum WhipStartError {
    #[error("cannot bind the WHIP UDP socket {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make the DTLS certificate: {0}")]
    Certificate(String),
}

/// Counters for `/metrics` (totals since start).
#[derive(Debug, Default)]
pub struct WhipStats {
    /// Sessions answered with 201.
    pub started: AtomicU64,
    /// POSTs refused (any 4xx or 5xx).
    pub refused: AtomicU64,
    /// Media payloads dropped because a session's media task was behind.
    pub dropped: AtomicU64,
    /// Keyframe requests (PLI or FIR) sent to publishers.
    pub keyframe_requests: AtomicU64,
}

/// A live session, as the HTTP side knows it.
struct Entry {
    event: String,
    id: u64,
    /// Tells the media task to stop now (DELETE), without draining what is queued.
    cancel: Arc<tokio::sync::Notify>,
    /// Told once the media task has ended and released the event.
    done: Arc<tokio::sync::Notify>,
}

/// How long a DELETE waits for the event to be released before it answers.
const RELEASE_WAIT: Duration = Duration::from_secs(3);

/// The WHIP service: its socket task, its sessions, and what it checks publishers against.
pub struct Whip {
    events: Arc<Events>,
    limits: Arc<IpLimits>,
    config: popcast_config::WhipConfig,
    takeover: bool,
    max_frame_bytes: usize,
    idle_timeout: Duration,
    segment_target: Duration,
    aac_kbps: u32,
    /// The address offered to publishers as our only ICE candidate.
    candidate: SocketAddr,
    cert: str0m::config::DtlsCert,
    cmds: mpsc::Sender<Cmd>,
    warn_budget: crate::ingest::server::WarnBudget,
    stats: Arc<WhipStats>,
    /// Resource token (the last part of the session URL) → session.
    sessions: Mutex<HashMap<String, Entry>>,
    next_id: AtomicU64,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Whip {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What `Whip::start` needs beyond the WHIP section.
pub struct WhipSetup {
    pub events: Arc<Events>,
    pub limits: Arc<IpLimits>,
    pub takeover: bool,
    pub max_frame_bytes: u32,
    pub idle_timeout: Duration,
    pub segment_target: Duration,
}

impl Whip {
    /// Binds the UDP socket and starts its task.
    pub async fn start(
        config: &popcast_config::WhipConfig,
        setup: WhipSetup,
    ) -> Result<Arc<Self>, WhipStartError> {
        let addr = config.udp_listen;
        let socket = tokio::net::UdpSocket::bind(addr)
            .await
            .map_err(|source| WhipStartError::Bind { addr, source })?;
        let bound = socket
            .local_addr()
            .map_err(|source| WhipStartError::Bind { addr, source })?;
        let ip = config.public_ip.unwrap_or_else(|| {
            if bound.ip().is_unspecified() {
                routed_ip(bound.ip())
            } else {
                bound.ip()
            }
        });
        let candidate = SocketAddr::new(ip, bound.port());
        let provider = str0m::crypto::from_feature_flags();
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| WhipStartError::Certificate("the crypto provider made none".into()))?;
        let (cmds, rx) = mpsc::channel(1024);
        let stats = Arc::new(WhipStats::default());
        let task = tokio::spawn(net::run(socket, candidate, rx, stats.clone()));
        tracing::info!(udp = %bound, %candidate, "whip listening");
        Ok(Arc::new(Self {
            events: setup.events,
            limits: setup.limits,
            aac_kbps: config.aac_kbps,
            config: config.clone(),
            takeover: setup.takeover,
            max_frame_bytes: setup.max_frame_bytes as usize,
            idle_timeout: setup.idle_timeout,
            segment_target: setup.segment_target,
            candidate,
            cert,
            cmds,
            warn_budget: crate::ingest::server::WarnBudget::default(),
            stats,
            sessions: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            task,
        }))
    }

    /// The ICE candidate publishers are given.
    pub fn candidate(&self) -> SocketAddr {
        self.candidate
    }

    /// Totals since start, for `/metrics`.
    pub fn stats(&self) -> &WhipStats {
        &self.stats
    }

    /// Sessions open now.
    pub fn session_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves `/whip/...`.
    pub async fn handle(self: &Arc<Self>, req: Request<hyper::body::Incoming>, peer: SocketAddr) -> Reply {
        let path = req.uri().path().to_string();
        let parts: Vec<&str> = path
            .strip_prefix("/whip/")
            .unwrap_or_default()
            .split('/')
            .collect();
        let r = match (req.method().clone(), parts.as_slice()) {
            (Method::OPTIONS, [_]) => self.cors(StatusCode::NO_CONTENT, "POST, OPTIONS"),
            (Method::OPTIONS, [_, _]) => self.cors(StatusCode::NO_CONTENT, "GET, DELETE, OPTIONS"),
            (Method::POST, [event]) => {
                let event = event.to_string();
                let r = self.post(req, peer, &event).await;
                let counter = match r.status() {
                    StatusCode::CREATED => &self.stats.started,
                    _ => &self.stats.refused,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                r
            }
            (Method::DELETE, [event, token]) => self.delete(&req, peer, event, token).await,
            // Not in RFC 9725: what the origin receives, for the creator's publish page.
            (Method::GET, [event, token]) => self.report(&req, peer, event, token),
            // Trickle ICE and ICE restarts are not supported: we are ICE-lite with one host
            // candidate, so a client's own candidates reach us in its connectivity checks.
            (Method::PATCH, [_, _]) => {
                let mut r = text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "trickle ICE and ICE restarts are not supported: the server is ICE-lite; send every candidate in the offer",
                );
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, DELETE, OPTIONS"));
                r
            }
            (_, [_]) => not_allowed("POST, OPTIONS"),
            (_, [_, _]) => not_allowed("GET, DELETE, OPTIONS"),
            _ => text(StatusCode::NOT_FOUND, "WHIP endpoints are /whip/{event}"),
        };
        with_cors(r)
    }

    fn cors(&self, status: StatusCode, methods: &'static str) -> Reply {
        let mut r = reply(status, "text/plain", Body::empty());
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(methods),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Content-Type, If-Match"),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        self.ice_links(&mut r);
        r
    }

    /// RFC 9725 §4.4: the configured ICE servers as `Link` headers.
    fn ice_links(&self, r: &mut Reply) {
        for url in &self.config.ice_servers {
            if let Ok(v) = HeaderValue::from_str(&format!("<{url}>; rel=\"ice-server\"")) {
                r.headers_mut().append(header::LINK, v);
            }
        }
    }

    async fn post(
        self: &Arc<Self>,
        req: Request<hyper::body::Incoming>,
        peer: SocketAddr,
        name: &str,
    ) -> Reply {
        let Some(event) = self.events.get(name) else {
            return text(StatusCode::NOT_FOUND, &format!("no event {name:?}"));
        };
        let ctype = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !ctype
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/sdp"))
        {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a WHIP offer is sent with Content-Type: application/sdp",
            );
        }
        if let Err(r) = self.authorised(&req, peer, name, true) {
            budget_warn!(self, %peer, event = %name, status = r.status().as_u16(), "whip publish refused");
            return *r;
        }
        let max = self.config.max_sdp_bytes as usize;
        let body = match http_body_util::Limited::new(req.into_body(), max).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                return text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("the offer is over the limit of {max} bytes"),
                );
            }
            Err(_) => return text(StatusCode::BAD_REQUEST, "the offer was cut off"),
        };
        let offer = match offer::check(&body, max, self.config.max_candidates as usize) {
            Ok(o) => o,
            Err(e) => {
                tracing::info!(%peer, event = %name, "whip offer refused: {e}");
                return text(StatusCode::BAD_REQUEST, &e.to_string());
            }
        };
        if self.session_count() >= self.config.max_sessions as usize {
            return busy("this origin takes no more WHIP sessions now; try again later");
        }
        // Everything that can refuse the offer comes before the claim: a claim ends the
        // timeline of whatever fed the event (the test source, a stale publisher).
        let sdp = match std::str::from_utf8(&body)
            .map_err(|e| e.to_string())
            .and_then(|s| str0m::change::SdpOffer::from_sdp_string(s).map_err(|e| e.to_string()))
        {
            Ok(o) => o,
            Err(e) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    &format!("the offer is not valid SDP: {e}"),
                );
            }
        };
        let mut rtc = str0m::RtcConfig::new()
            .set_ice_lite(true)
            .set_dtls_cert(self.cert.clone())
            .clear_codecs()
            .enable_h264(true)
            .enable_opus(true)
            .build(Instant::now());
        match str0m::Candidate::host(self.candidate, "udp") {
            Ok(c) => {
                rtc.add_local_candidate(c);
            }
            Err(e) => {
                tracing::error!(candidate = %self.candidate, "whip candidate: {e}");
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the server's ICE candidate is unusable",
                );
            }
        }
        let answer = match rtc.sdp_api().accept_offer(sdp) {
            Ok(a) => a,
            Err(e) => {
                tracing::info!(%peer, event = %name, "whip offer refused by WebRTC: {e}");
                return text(
                    StatusCode::BAD_REQUEST,
                    &format!("the offer cannot be answered: {e}"),
                );
            }
        };
        let audio = match offer.audio {
            false => None,
            true => match AudioOut::new(self.aac_kbps) {
                Ok(a) => Some(a),
                // Video still goes out; audio alone cannot.
                Err(e) if offer.video => {
                    tracing::warn!(event = %name, "the publisher's audio will be dropped: {e}");
                    None
                }
                Err(e) => {
                    tracing::error!(event = %name, "whip audio: {e}");
                    return text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "this origin cannot take Opus audio now (its transcoder did not start)",
                    );
                }
            },
        };
        let Some(slot) = self.limits.connect(peer.ip()) else {
            return busy("too many publishing sessions from this address");
        };
        let feed = match event.claim(SourceKind::Publisher { peer }, self.takeover) {
            Ok(f) => f,
            Err(e) => {
                tracing::info!(%peer, "{e}");
                return match e {
                    ClaimError::Busy { .. } => {
                        text(StatusCode::CONFLICT, "this event already has a publisher")
                    }
                    ClaimError::NotYet { opens, .. } => text(
                        StatusCode::FORBIDDEN,
                        &format!("this event is not open for publishing yet: it opens at {opens}"),
                    ),
                    ClaimError::Ended(_) => text(StatusCode::FORBIDDEN, "this event has ended"),
                };
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let token = random_token();
        let (media_tx, media_rx) = mpsc::channel(MEDIA_QUEUE);
        let (added, was_added) = oneshot::channel();
        let connect_by = Instant::now() + Duration::from_millis(self.config.connect_timeout_ms);
        let cmd = Cmd::Add {
            id,
            rtc: Box::new(rtc),
            media: media_tx,
            connect_by,
            added,
        };
        if self.cmds.send(cmd).await.is_err() || was_added.await.is_err() {
            return busy("the WHIP media socket is not running");
        }
        let (cancel, done) = (
            Arc::new(tokio::sync::Notify::new()),
            Arc::new(tokio::sync::Notify::new()),
        );
        self.lock().insert(
            token.clone(),
            Entry {
                event: name.to_string(),
                id,
                cancel: cancel.clone(),
                done: done.clone(),
            },
        );
        tracing::info!(%peer, event = %name, session = id, video = offer.video, audio = offer.audio, "whip publish accepted");
        let me = self.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let why = me.media(id, feed, offer, audio, media_rx, &cancel).await;
            me.lock().retain(|_, e| e.id != id);
            done.notify_one();
            let _ = me.cmds.send(Cmd::Remove { id, why }).await;
        });
        let mut r = reply(
            StatusCode::CREATED,
            "application/sdp",
            Body::full(answer.to_sdp_string()),
        );
        let h = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&format!("/whip/{name}/{token}")) {
            h.insert(header::LOCATION, v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!("\"{token}\"")) {
            h.insert(header::ETAG, v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        self.ice_links(&mut r);
        r
    }

    /// A session's event, when the session exists and the request carries the event's key.
    /// The session first: a wrong key on no session tells a guesser nothing.
    fn session_authorised(
        &self,
        req: &Request<hyper::body::Incoming>,
        peer: SocketAddr,
        name: &str,
        token: &str,
    ) -> Result<Arc<crate::live::LiveEvent>, Box<Reply>> {
        if self.lock().get(token).is_none_or(|e| e.event != name) {
            return Err(Box::new(gone()));
        }
        self.authorised(req, peer, name, false)
    }

    /// The event, when the request carries its stream key; else the reply to send.
    fn authorised(
        &self,
        req: &Request<hyper::body::Incoming>,
        peer: SocketAddr,
        name: &str,
        count: bool,
    ) -> Result<Arc<crate::live::LiveEvent>, Box<Reply>> {
        let Some(event) = self.events.get(name) else {
            return Err(Box::new(text(
                StatusCode::NOT_FOUND,
                &format!("no event {name:?}"),
            )));
        };
        // A publish counts toward the address's attempts (stops key guessing). A session's
        // GET and DELETE need its unguessable URL first, so they tell a guesser nothing.
        if count && !self.limits.attempt(peer.ip(), Instant::now()) {
            return Err(Box::new(too_many()));
        }
        let Some(key) = bearer(req.headers()) else {
            return Err(Box::new(unauthorised(
                "the stream key is sent as Authorization: Bearer {stream key}",
            )));
        };
        // Constant time: the stored side is a hash and `key_matches` compares with subtle.
        if !event.key_matches(&hash_key(key.as_bytes())) {
            return Err(Box::new(unauthorised("wrong stream key for this event")));
        }
        Ok(event)
    }

    /// `GET` on a session: whether media is arriving and the event's ingest report (what
    /// the origin receives, with warnings and their fixes), as JSON.
    fn report(
        &self,
        req: &Request<hyper::body::Incoming>,
        peer: SocketAddr,
        name: &str,
        token: &str,
    ) -> Reply {
        let event = match self.session_authorised(req, peer, name, token) {
            Ok(e) => e,
            Err(r) => return *r,
        };
        let (report, receiving) = match event.ingest_report() {
            Some((r, c)) => (serde_json::to_value(r).unwrap_or(serde_json::Value::Null), c),
            None => (serde_json::Value::Null, false),
        };
        let body = serde_json::json!({ "event": name, "receiving": receiving, "report": report });
        let mut r = reply(StatusCode::OK, "application/json", Body::full(body.to_string()));
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }

    /// Ends a session: the media task stops at once and the event is released before the
    /// answer (so a publisher may POST again straight away).
    async fn delete(
        &self,
        req: &Request<hyper::body::Incoming>,
        peer: SocketAddr,
        name: &str,
        token: &str,
    ) -> Reply {
        if let Err(r) = self.session_authorised(req, peer, name, token) {
            return *r;
        }
        let Some(entry) = self.lock().remove(token) else {
            return gone();
        };
        entry.cancel.notify_one();
        if tokio::time::timeout(RELEASE_WAIT, entry.done.notified())
            .await
            .is_err()
        {
            tracing::warn!(session = entry.id, "whip session slow to end after DELETE");
        }
        tracing::info!(session = entry.id, event = %name, "whip session ended by the publisher (DELETE)");
        reply(StatusCode::OK, "text/plain", Body::empty())
    }

    /// A session's media: depacketised, transcoded, fed to the event. Returns why it ended.
    async fn media(
        &self,
        id: u64,
        feed: Feed,
        offer: offer::Offer,
        mut audio: Option<AudioOut>,
        mut rx: mpsc::Receiver<ToMedia>,
        cancel: &tokio::sync::Notify,
    ) -> String {
        let mut depack = Depacketiser::new(offer.video, offer.audio, self.max_frame_bytes, &offer.sprop);
        let mut last_good = Instant::now();
        let mut video_track: Option<TrackInfo> = None;
        let mut declared = false;
        let mut connected = false;
        let mut last_request: Option<Instant> = None;
        let min_gap = Duration::from_millis(self.config.keyframe_request_min_ms);
        let mut refused: u64 = 0;
        let mut told_basis = false;
        loop {
            let limit = if connected {
                self.idle_timeout
            } else {
                Duration::from_secs(3600)
            };
            let msg = tokio::select! {
                _ = cancel.notified() => return "the publisher ended it (DELETE)".into(),
                m = tokio::time::timeout(limit, rx.recv()) => m,
            };
            let msg = match msg {
                Err(_) => return format!("no media for {} ms", limit.as_millis()),
                Ok(None) => return "the WebRTC session ended".into(),
                Ok(Some(m)) => m,
            };
            let payload = match msg {
                ToMedia::Connected => {
                    connected = true;
                    // Media takes a moment yet (the first keyframe, the sender reports):
                    // a connected session is not a stale publisher to be replaced.
                    feed.touch();
                    last_good = Instant::now();
                    continue;
                }
                ToMedia::Media(p) => p,
            };
            // Until the tracks are declared no frame reaches the event (the first keyframe,
            // the sender reports): mark the source alive. Afterwards every push does.
            if !declared {
                feed.touch();
            }
            if last_good.elapsed() >= NO_USABLE_MEDIA {
                return format!(
                    "no usable media for {} s (the encoder must send H.264 with SPS and PPS and keyframes)",
                    NO_USABLE_MEDIA.as_secs()
                );
            }
            let (outs, errors) = depack.push(payload);
            if !told_basis {
                if let Some(b) = depack.basis() {
                    tracing::info!(session = id, event = %feed.event().name(), basis = ?b, "whip timeline set");
                    told_basis = true;
                }
            }
            for e in errors {
                refused += 1;
                if refused <= 5 || refused % 100 == 0 {
                    tracing::debug!(session = id, refused, "whip media dropped: {e}");
                }
            }
            for out in outs {
                let frames: Vec<Frame> = match out {
                    Out::VideoTrack(t) => {
                        video_track = Some(t);
                        if declared {
                            // New parameter sets mid-stream (another size or profile).
                            if let Err(e) = feed.set_tracks(tracks(&video_track, &audio)) {
                                return e.to_string();
                            }
                        }
                        Vec::new()
                    }
                    Out::Video(f) => {
                        last_good = Instant::now();
                        vec![f]
                    }
                    Out::Audio { pts, data, arrived } => match &mut audio {
                        Some(a) => {
                            let frames = a.frames(pts, &data, arrived);
                            if !offer.video && !frames.is_empty() {
                                last_good = Instant::now();
                            }
                            frames
                        }
                        None => Vec::new(),
                    },
                };
                if !declared {
                    let ready = (!offer.video || video_track.is_some()) && (offer.video || offer.audio);
                    if !ready {
                        continue;
                    }
                    if let Err(e) = feed.set_tracks(tracks(&video_track, &audio)) {
                        return e.to_string();
                    }
                    declared = true;
                }
                for f in frames {
                    match feed.push(f) {
                        Ok(()) => {}
                        Err(
                            e @ (FeedError::Replaced(_)
                            | FeedError::Ended(_)
                            | FeedError::Kicked(_)
                            | FeedError::KeyframeInterval(_)),
                        ) => return e.to_string(),
                        Err(e) => {
                            refused += 1;
                            if refused <= 5 || refused % 100 == 0 {
                                tracing::warn!(session = id, event = %feed.event().name(), refused, "frame refused: {e}");
                            }
                        }
                    }
                }
            }
            if offer.video
                && depack.wants_keyframe(self.segment_target)
                && last_request.is_none_or(|t| t.elapsed() >= min_gap)
            {
                last_request = Some(Instant::now());
                let _ = self.cmds.try_send(Cmd::Keyframe { id });
            }
        }
    }
}

/// The publisher's Opus as AAC frames.
struct AudioOut {
    #[cfg(feature = "opus-aac")]
    transcoder: popcast_packager::ffmpeg::opus_aac::OpusToAac,
    track: TrackInfo,
    failures: u64,
}

impl AudioOut {
    #[cfg(feature = "opus-aac")]
    fn new(kbps: u32) -> Result<Self, String> {
        let transcoder =
            popcast_packager::ffmpeg::opus_aac::OpusToAac::new(kbps).map_err(|e| e.to_string())?;
        let track = TrackInfo {
            id: depack::AUDIO,
            timescale: depack::AUDIO_RATE,
            codec: CodecConfig::Aac(transcoder.config().clone()),
            video: None,
        };
        Ok(Self {
            transcoder,
            track,
            failures: 0,
        })
    }

    #[cfg(not(feature = "opus-aac"))]
    fn new(_kbps: u32) -> Result<Self, String> {
        Err("this build has no Opus → AAC transcoder (feature opus-aac)".into())
    }

    fn frames(&mut self, pts: i64, opus: &[u8], arrived: std::time::SystemTime) -> Vec<Frame> {
        #[cfg(feature = "opus-aac")]
        match self.transcoder.push(pts, opus) {
            Ok(units) => {
                return units
                    .into_iter()
                    .map(|u| Frame {
                        track: self.track.id,
                        pts: u.pts,
                        dts: u.pts,
                        keyframe: true,
                        payload: u.data,
                        arrived,
                    })
                    .collect();
            }
            Err(e) => {
                self.failures += 1;
                if self.failures <= 5 || self.failures % 100 == 0 {
                    tracing::warn!(failures = self.failures, "opus packet not decoded: {e}");
                }
            }
        }
        let _ = (pts, opus, arrived);
        Vec::new()
    }
}

fn tracks(video: &Option<TrackInfo>, audio: &Option<AudioOut>) -> Vec<TrackInfo> {
    video
        .iter()
        .cloned()
        .chain(audio.iter().map(|a| a.track.clone()))
        .collect()
}

/// The bearer token of a request, if it has one.
fn bearer(h: &http::HeaderMap) -> Option<&str> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn unauthorised(msg: &str) -> Reply {
    let mut r = text(StatusCode::UNAUTHORIZED, msg);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"whip\""),
    );
    r
}

fn gone() -> Reply {
    text(StatusCode::NOT_FOUND, "no such WHIP session (it may have ended)")
}

/// 503 with a hint to come back.
fn busy(msg: &str) -> Reply {
    let mut r = text(StatusCode::SERVICE_UNAVAILABLE, msg);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

fn too_many() -> Reply {
    let mut r = text(
        StatusCode::TOO_MANY_REQUESTS,
        "too many publish attempts from this address; wait a minute",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    r
}

fn not_allowed(methods: &'static str) -> Reply {
    let mut r = text(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("this WHIP resource takes {methods}"),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(methods));
    r
}

/// Browsers read the answer and `Location` across origins (a publish page served elsewhere).
fn with_cors(mut r: Reply) -> Reply {
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, ETag, Link, Accept-Patch"),
    );
    r
}

/// 128 random bits, hex: a session URL cannot be guessed.
fn random_token() -> String {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .expect("the OS random source works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The address this host sends from toward the outside world (no packet is sent: a UDP
/// `connect` only picks the route); loopback when there is no route.
fn routed_ip(like: IpAddr) -> IpAddr {
    let (bind, probe): (SocketAddr, SocketAddr) = if like.is_ipv6() {
        (
            "[::]:0".parse().expect("literal"),
            "[2001:db8::1]:9".parse().expect("literal"),
        )
    } else {
        (
            "0.0.0.0:0".parse().expect("literal"),
            "192.0.2.1:9".parse().expect("literal"),
        )
    };
    std::net::UdpSocket::bind(bind)
        .and_then(|s| s.connect(probe).and_then(|()| s.local_addr()))
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(if like.is_ipv6() {
            IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
        } else {
            IpAddr::from(std::net::Ipv4Addr::LOCALHOST)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_as_clients_send_them() {
        let mut h = http::HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer  abc "));
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn session_tokens_are_unguessable_and_distinct() {
        let a = random_token();
        assert_eq!(a.len(), 32);
        assert_ne!(a, random_token());
    }
}
