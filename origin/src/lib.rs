//! The Popcast origin: where creators' streams arrive and where every event is run.
//!
//! Owns: `ingest` (RTMP/RTMPS today, WHIP later: sans-IO protocol sessions wrapped by tokio
//! tasks), `live` (an event's store and the source feeding it), `events` (the origin's
//! events and the stream-key lookup), `http` (playback with LL-HLS semantics, the embed
//! page, /healthz, /metrics), `relay` (the QUIC link to edges), `qoe` (edges' QoE
//! reports merged per event, for the stats API, /metrics and the dashboard) and `tls`.
//!
//! Must not: encode or mux media itself (that is `popcast-packager`'s job), reach into an
//! edge's internals, or read configuration anywhere but from the structs it is handed.

pub mod events;
pub mod http;
pub mod ingest;
pub mod live;
pub mod qoe;
pub mod relay;
#[cfg(feature = "ladder")]
pub mod slate;
#[cfg(feature = "test-source")]
pub mod test_source;

pub use popcast_packager::http::tls;

use popcast_config::Config;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Why the origin could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Relay(#[from] relay::RelayStartError),
    #[error(transparent)]
    Whip(#[from] ingest::whip::WhipStartError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    EventDb(#[from] events::db::DbError),
}

/// A running origin: its listeners' addresses and its events.
pub struct Origin {
    pub rtmp_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// The WHIP media socket's ICE candidate (publishers send UDP here), when WHIP is on.
    pub whip_candidate: Option<SocketAddr>,
    /// Whether RTMP and HTTP are behind TLS (RTMPS, HTTPS).
    pub tls: bool,
    pub events: Arc<Events>,
    /// The relay edges dial; running when `origin.node_secret` is set.
    pub relay: Option<relay::Relay>,
    tasks: Vec<JoinHandle<()>>,
}

pub use events::Events;

impl Origin {
    /// Binds the RTMP and HTTP listeners of `config.origin` and serves `events` on them.
    pub async fn start(config: &Config, events: Arc<Events>) -> Result<Self, StartError> {
        let o = &config.origin;
        let bind = |what, addr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { what, addr, source })
        };
        let rtmp = bind("RTMP", o.rtmp_listen).await?;
        let web = bind("HTTP", o.http_listen).await?;
        let local = |l: &TcpListener, what, addr| {
            l.local_addr()
                .map_err(|source| StartError::Bind { what, addr, source })
        };
        let rtmp_addr = local(&rtmp, "RTMP", o.rtmp_listen)?;
        let http_addr = local(&web, "HTTP", o.http_listen)?;
        let (rtmp_tls, http_tls) = match &o.tls {
            Some(t) => (
                Some(tokio_rustls::TlsAcceptor::from(tls::server_config(t, &[])?)),
                Some(tokio_rustls::TlsAcceptor::from(tls::server_config(
                    t,
                    &[b"h2", b"http/1.1"],
                )?)),
            ),
            None => (None, None),
        };
        // One budget of publish attempts per address for RTMP and WHIP alike.
        let ingest_limits = ingest::limits::IpLimits::new(
            o.limits.rtmp_max_connections,
            o.limits.max_connections_per_ip,
            o.limits.max_publish_attempts_per_ip_per_minute,
        );
        let whip = match o.whip.enabled {
            false => None,
            true => Some(
                ingest::whip::Whip::start(
                    &o.whip,
                    ingest::whip::WhipSetup {
                        events: events.clone(),
                        limits: ingest_limits.clone(),
                        takeover: o.publish_takeover,
                        max_frame_bytes: config.packager.max_frame_bytes,
                        idle_timeout: std::time::Duration::from_millis(o.limits.publisher_idle_timeout_ms),
                        segment_target: std::time::Duration::from_millis(u64::from(
                            config.packager.segment_target_ms,
                        )),
                    },
                )
                .await?,
            ),
        };
        let whip_candidate = whip.as_ref().map(|w| w.candidate());
        let rtmp_state = Arc::new(ingest::server::RtmpState {
            events: events.clone(),
            limits: ingest_limits,
            session: ingest::rtmp::SessionConfig::from_limits(&o.limits),
            flv: ingest::flv::FlvConfig {
                max_frame_bytes: config.packager.max_frame_bytes,
            },
            handshake_timeout: std::time::Duration::from_millis(o.limits.rtmp_handshake_timeout_ms),
            idle_timeout: std::time::Duration::from_millis(o.limits.publisher_idle_timeout_ms),
            write_timeout: std::time::Duration::from_millis(o.limits.write_stall_timeout_ms),
            warn_budget: ingest::server::WarnBudget::default(),
            takeover: o.publish_takeover,
        });
        let db = Arc::new(match &o.operator_token {
            // Events are created through the API, so they are kept on disk only with it on.
            Some(_) => {
                std::fs::create_dir_all(&config.node.data_dir).map_err(|source| StartError::DataDir {
                    path: config.node.data_dir.clone(),
                    source,
                })?;
                events::db::EventDb::open(&config.node.data_dir.join("events.sqlite3"))?
            }
            None => events::db::EventDb::in_memory()?,
        });
        let ladders = live::Ladders::from_config(config);
        for r in db.list(None, None)? {
            if r.state == events::record::EventState::Ended {
                continue;
            }
            let live = live::LiveEvent::with_key_hash(&r.id, r.key_hash, &config.packager);
            events::api::sync_record(&db, &live, &r, config.events.provision_lead_secs, &ladders)?;
            if let Err(e) = events.add(live) {
                tracing::warn!(event = %r.id, error = %e, "stored event not served");
            }
        }
        // Stored events and the config file's alike.
        for name in events.names() {
            if let Some(ev) = events.get(&name) {
                ev.set_keyframe_policy(config.events.keyframe_policy);
            }
        }
        let qoe_board = Arc::new(qoe::QoeBoard::new(qoe::BoardConfig::from_config(&config.qoe)));
        let webhooks = Arc::new(events::webhooks::Webhooks::new(
            db.clone(),
            &config.webhooks,
            events::api::system_now,
        ));
        let api = Arc::new(events::api::ApiState {
            webhooks: webhooks.clone(),
            db,
            events: events.clone(),
            operator_token_hash: o
                .operator_token
                .as_ref()
                .map(|t| live::hash_key(t.expose().as_bytes())),
            packager: config.packager.clone(),
            defaults: config.events.clone(),
            public_url: o.public_url.clone(),
            now: events::api::system_now,
            edges: std::sync::OnceLock::new(),
            qoe: qoe_board.clone(),
            metrics_token: config.qoe.metrics_token.clone(),
            ladders: ladders.clone(),
            slate: config.slate.clone(),
            whip: std::sync::OnceLock::new(),
        });
        if let Some(w) = &whip {
            let _ = api.whip.set(w.clone());
        }
        let api_edges = api.clone();
        let lifecycle = tokio::spawn(events::lifecycle::run(api.clone()));
        let http_state = Arc::new(http::HttpState {
            api,
            events: events.clone(),
            limits: http::HttpLimits::from_config(&o.limits),
            started: Instant::now(),
            whip,
        });
        let tasks = vec![
            lifecycle,
            tokio::spawn(webhooks.run()),
            tokio::spawn(qoe::sampler(
                qoe_board.clone(),
                std::time::Duration::from_secs(u64::from(config.qoe.sample_secs)),
            )),
            tokio::spawn(ingest::server::serve(rtmp, rtmp_tls, rtmp_state)),
            tokio::spawn(http::serve(web, http_tls, http_state)),
        ];
        let relay = match &o.node_secret {
            None => {
                tracing::info!("no origin.node_secret: the relay is off and no edge can connect");
                None
            }
            Some(_) => {
                let cert = match (&o.relay_tls, &o.tls) {
                    (Some(t), _) | (None, Some(t)) => t.clone(),
                    (None, None) => tls::self_signed(
                        &config.node.data_dir.join("relay"),
                        &["localhost", "127.0.0.1", "::1"],
                    )?,
                };
                let server = tls::server_config(&cert, &[])?;
                Some(relay::Relay::start(
                    o.relay_listen,
                    server,
                    relay::RelayConfig::from_config(config),
                    events.clone(),
                    qoe_board.clone(),
                )?)
            }
        };
        if let Some(r) = &relay {
            let _ = api_edges.edges.set(r.edges_view());
        }
        tracing::info!(%rtmp_addr, %http_addr, relay = ?relay.as_ref().map(|r| r.addr), tls = o.tls.is_some(), "origin listening");
        Ok(Self {
            rtmp_addr,
            http_addr,
            whip_candidate,
            tls: o.tls.is_some(),
            events,
            relay,
            tasks,
        })
    }

    /// Stops accepting (connections in progress end with the runtime).
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(r) = &self.relay {
            r.stop();
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Entry points for the fuzz targets in `fuzz/`, also run over the seed corpus by the tests.
/// Each asserts an invariant, not just "no panic".
#[doc(hidden)]
pub mod fuzzing {
    use crate::ingest::rtmp::{RtmpError, Session, SessionConfig, SessionEvent, amf0};

    /// FLV tag bodies through one [`FlvDemuxer`](crate::ingest::flv::FlvDemuxer). The input
    /// is a sequence of records: kind (`u8`, even = video, odd = audio), body length (`u16`
    /// BE), RTMP timestamp (`u32` BE), body (a short last body is taken as it is).
    ///
    /// Invariants: every frame belongs to a track announced before it and still configured,
    /// is non-empty, fits `max_frame_bytes` and carries the arrival instant it was given;
    /// `tracks()` is the latest announcement of each track; a video frame's dts is within
    /// the frame-grid tolerance of its unwrapped millisecond timestamp × 90, its composition
    /// offset fits FLV's 24 bits, and a keyframe holds an IDR; an AAC
    /// frame either follows the previous one by exactly one frame length or sits at its
    /// millisecond timestamp, and never strays more than the re-anchor threshold from it;
    /// exactly the fatal errors have `onStatus` text. The ingest analyzer is fed the same
    /// tracks and frames and its report always serialises.
    pub fn flv(data: &[u8]) {
        use crate::ingest::flv::{
            AAC_REANCHOR_FRAMES, AUDIO, FlvConfig, FlvDemuxer, FlvOutput, VIDEO, ms_to_ticks,
        };
        use bytes::Bytes;
        use popcast_packager::codec::{NalUnitType, avcc_nal_units};
        use popcast_packager::media::{CodecConfig, TrackInfo};
        use std::time::{Duration, UNIX_EPOCH};

        const MAX_FRAME_BYTES: u32 = 4096;
        let mut demuxer = FlvDemuxer::new(FlvConfig {
            max_frame_bytes: MAX_FRAME_BYTES,
        });
        let mut announced: Vec<TrackInfo> = Vec::new();
        let mut analyzer = crate::ingest::analyzer::IngestAnalyzer::new(2.0);
        // The model of the timestamp unwrapper: each step is a signed 32-bit delta.
        let mut clock: Option<(u32, i64)> = None;
        let mut last_audio_dts: Option<i64> = None;
        let mut rest = data;
        let mut index = 0u64;
        while let [kind, l0, l1, t0, t1, t2, t3, tail @ ..] = rest {
            let len = usize::from(u16::from_be_bytes([*l0, *l1])).min(tail.len());
            let (body, next) = tail.split_at(len);
            rest = next;
            let ts = u32::from_be_bytes([*t0, *t1, *t2, *t3]);
            let ms = clock.map_or(i64::from(ts), |(raw, ms)| {
                ms + i64::from(ts.wrapping_sub(raw) as i32)
            });
            clock = Some((ts, ms));
            index += 1;
            let arrived = UNIX_EPOCH + Duration::from_millis(index);
            let body = Bytes::copy_from_slice(body);
            let result = if kind % 2 == 0 {
                demuxer.video(ts, body, arrived)
            } else {
                demuxer.audio(ts, body, arrived)
            };
            let outputs = match result {
                Ok(outputs) => outputs,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    assert_eq!(e.is_fatal(), e.status_description().is_some(), "{e}");
                    continue;
                }
            };
            for output in outputs {
                match output {
                    FlvOutput::Track(info) => {
                        assert!(info.id == VIDEO || info.id == AUDIO);
                        assert!(info.timescale > 0);
                        if info.id == AUDIO {
                            last_audio_dts = None;
                        }
                        announced.retain(|t| t.id != info.id);
                        announced.push(info);
                        analyzer.tracks(&announced);
                    }
                    FlvOutput::Frame(frame) => {
                        analyzer.frame(&frame);
                        let track = announced
                            .iter()
                            .find(|t| t.id == frame.track)
                            .expect("a frame's track was announced first");
                        assert!(!frame.payload.is_empty());
                        assert!(frame.payload.len() <= MAX_FRAME_BYTES as usize);
                        assert_eq!(frame.arrived, arrived);
                        match &track.codec {
                            CodecConfig::H264(avc) => {
                                assert_eq!(frame.track, VIDEO);
                                assert!(
                                    (frame.dts - ms * 90).abs() <= crate::ingest::flv::GRID_TOLERANCE_TICKS,
                                    "dts {} is not within a grid tolerance of {ms} ms",
                                    frame.dts
                                );
                                assert!(
                                    (frame.pts - frame.dts).abs()
                                        <= (1 << 23) * 90 + crate::ingest::flv::GRID_TOLERANCE_TICKS
                                );
                                let idr = avcc_nal_units(&frame.payload, avc.nal_length_size())
                                    .map(|nal| nal.expect("a frame's NAL framing was checked"))
                                    .any(|nal| NalUnitType::of(nal) == Some(NalUnitType::IDR_SLICE));
                                assert_eq!(frame.keyframe, idr);
                            }
                            CodecConfig::Aac(_) => {
                                assert_eq!(frame.track, AUDIO);
                                assert!(frame.keyframe && frame.pts == frame.dts);
                                let at_ms = ms_to_ticks(ms, track.timescale);
                                let step = last_audio_dts.and_then(|last| frame.dts.checked_sub(last));
                                assert!(
                                    frame.dts == at_ms || matches!(step, Some(960 | 1024)),
                                    "AAC dts {} after {last_audio_dts:?}, {at_ms} by the clock",
                                    frame.dts
                                );
                                assert!(frame.dts.abs_diff(at_ms) <= (AAC_REANCHOR_FRAMES * 1024) as u64);
                                last_audio_dts = Some(frame.dts);
                            }
                        }
                    }
                }
            }
            let mut tracks = demuxer.tracks();
            tracks.sort_by_key(|t| t.id);
            announced.sort_by_key(|t| t.id);
            assert_eq!(tracks, announced);
        }
        let report = analyzer.report();
        assert!(serde_json::to_string(&report).is_ok());
        assert!(report.warnings.iter().all(|w| !w.message.is_empty()));
    }

    /// Feeds `data` (client→server bytes) to a session that accepts every publish: whole,
    /// in ragged pieces and (when short) byte by byte. Asserts that it never panics, that a
    /// failed session stays failed, that what it writes is bounded by what it read, that
    /// delivered media is non-empty and within `max_message_bytes`, and that the events and
    /// the outcome do not depend on how the bytes were split.
    pub fn rtmp_session(data: &[u8]) {
        let config = SessionConfig::default();
        let whole = run_session(&config, data, &[data.len().max(1)]);
        let ragged = run_session(
            &config,
            data,
            &[1, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377],
        );
        assert_same_run(&whole, &ragged);
        if data.len() <= 4096 {
            let bytewise = run_session(&config, data, &[1]);
            assert_same_run(&whole, &bytewise);
        }
    }

    struct Run {
        events: Vec<SessionEvent>,
        outcome: Result<(), RtmpError>,
    }

    fn run_session(config: &SessionConfig, data: &[u8], pieces: &[usize]) -> Run {
        let mut session = Session::new(config.clone());
        let mut events = Vec::new();
        let mut written = 0usize;
        let mut rest = data;
        let mut failed = None;
        for &size in pieces.iter().cycle() {
            let (piece, tail) = rest.split_at(size.min(rest.len()));
            rest = tail;
            let r = session.receive(piece);
            drain(&mut session, config, &mut events, &mut written);
            if let Err(e) = r {
                failed = Some(e);
                break;
            }
            if rest.is_empty() {
                break;
            }
        }
        // The final word, including errors found in input held while a publish was pending.
        let outcome = session.receive(&[]);
        drain(&mut session, config, &mut events, &mut written);
        if let Some(e) = failed {
            assert_eq!(
                outcome.as_ref().err(),
                Some(&e),
                "a failed session must stay failed"
            );
        }
        if let Err(e) = &outcome {
            assert_eq!(
                session.receive(b"more").as_ref().err(),
                Some(e),
                "a failed session must stay failed"
            );
            assert!(!e.to_string().is_empty());
        }
        // S0/S1/S2, the connect reply, then at most a few bytes out per byte in.
        let bound = 3073 + 1024 + 8 * data.len();
        assert!(written <= bound, "wrote {written} bytes for {} read", data.len());
        Run { events, outcome }
    }

    fn drain(
        session: &mut Session,
        config: &SessionConfig,
        events: &mut Vec<SessionEvent>,
        written: &mut usize,
    ) {
        loop {
            while let Some(ev) = session.poll_event() {
                match &ev {
                    SessionEvent::PublishRequested { .. } => session.accept_publish(),
                    SessionEvent::Video { data, .. } | SessionEvent::Audio { data, .. } => {
                        assert!(!data.is_empty(), "empty media delivered");
                        assert!(
                            data.len() <= config.max_message_bytes as usize,
                            "media over max_message_bytes"
                        );
                    }
                    _ => {}
                }
                events.push(ev);
            }
            match session.take_output() {
                Some(out) => *written += out.len(),
                None => break,
            }
        }
    }

    fn assert_same_run(a: &Run, b: &Run) {
        assert_eq!(a.outcome, b.outcome, "outcome depends on how the input was split");
        assert_eq!(
            a.events.len(),
            b.events.len(),
            "events depend on how the input was split"
        );
        for (x, y) in a.events.iter().zip(&b.events) {
            // Debug, not ==: metadata may hold NaN.
            match (x, y) {
                (SessionEvent::Metadata(_), SessionEvent::Metadata(_)) => {
                    assert_eq!(format!("{x:?}"), format!("{y:?}"))
                }
                _ => assert_eq!(x, y, "events depend on how the input was split"),
            }
        }
    }

    /// Decodes AMF0 values one after another; each one decoded must re-encode to bytes that
    /// decode to the same value and re-encode identically.
    pub fn amf0(data: &[u8]) {
        let mut decoder = amf0::Decoder::new(data, 16);
        while !decoder.is_empty() {
            let before = decoder.position();
            let Ok(value) = decoder.decode() else { break };
            assert!(decoder.position() > before && decoder.position() <= data.len());
            let mut encoded = Vec::new();
            amf0::encode(&value, &mut encoded);
            let again = amf0::decode_all(&encoded, 16).expect("our own encoding decodes");
            assert_eq!(again.len(), 1, "one value encodes as one value");
            // Debug, not ==: NaN.
            assert_eq!(
                format!("{:?}", again[0]),
                format!("{value:?}"),
                "value changed in a round trip"
            );
            let mut re_encoded = Vec::new();
            amf0::encode(&again[0], &mut re_encoded);
            assert_eq!(re_encoded, encoded, "encoding is not stable");
        }
    }

    /// A WHIP client's SDP offer through our checks and, when they pass, str0m's parser and
    /// answerer (the path `POST /whip/{event}` takes). Invariants: nothing panics; an accepted
    /// offer publishes video or audio, and its parameter sets are non-empty NAL units.
    pub fn whip_offer(data: &[u8]) {
        let Ok(offer) = crate::ingest::whip::offer::check(data, 32 * 1024, 64) else {
            return;
        };
        assert!(offer.video || offer.audio);
        assert!(offer.sprop.iter().all(|n| !n.is_empty()));
        let Ok(text) = std::str::from_utf8(data) else {
            panic!("an accepted offer is UTF-8");
        };
        if let Ok(sdp) = str0m::change::SdpOffer::from_sdp_string(text) {
            // One certificate for every run: making one costs more than the rest together.
            static CERT: std::sync::OnceLock<Option<str0m::config::DtlsCert>> = std::sync::OnceLock::new();
            let cert = CERT.get_or_init(|| {
                str0m::crypto::from_feature_flags()
                    .dtls_provider
                    .generate_certificate()
            });
            let mut config = str0m::RtcConfig::new();
            if let Some(c) = cert {
                config = config.set_dtls_cert(c.clone());
            }
            let mut rtc = config
                .set_ice_lite(true)
                .clear_codecs()
                .enable_h264(true)
                .enable_opus(true)
                .build(std::time::Instant::now());
            if let Ok(c) = str0m::Candidate::host("127.0.0.1:9".parse().expect("literal"), "udp") {
                rtc.add_local_candidate(c);
            }
            let _ = rtc.sdp_api().accept_offer(sdp);
        }
    }

    /// WebRTC media through the WHIP depacketiser. The input is a sequence of records: kind
    /// (`u8`: even = video, odd = audio), RTP time step (`i16` BE, in 1/90 000 or 1/48 000 s),
    /// arrival step (`u8`, ms), a sender report flag (`u8`, odd = this payload's stream has
    /// one), payload length (`u16` BE), payload (Annex B for video, Opus for audio).
    ///
    /// Invariants: every video frame follows a video track and is AVCC whose lengths add up
    /// to its size; decode times only increase, per track; a presentation time is never
    /// before its decode time; a keyframe holds an IDR slice.
    pub fn whip_depack(data: &[u8]) {
        use crate::ingest::whip::depack::{Depacketiser, Kind, Out, Payload, SenderClock};
        use std::time::{Duration, Instant, SystemTime};
        let t0 = Instant::now();
        let w0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut d = Depacketiser::new(true, true, 1 << 16, &[]);
        let (mut rtp, mut ms) = ([1u64 << 32, 1u64 << 31], 0u64);
        let mut rest = data;
        let (mut have_track, mut last_v, mut last_a) = (false, i64::MIN, i64::MIN);
        while rest.len() >= 7 {
            let kind = if rest[0] % 2 == 0 {
                Kind::Video
            } else {
                Kind::Audio
            };
            let k = usize::from(rest[0] % 2);
            let step = i16::from_be_bytes([rest[1], rest[2]]);
            rtp[k] = rtp[k].saturating_add_signed(i64::from(step));
            ms += u64::from(rest[3]);
            let sender = (rest[4] % 2 == 1).then_some(SenderClock {
                ntp: w0 + Duration::from_millis(u64::from(rest[4]) * 7),
                rtp: rtp[k].saturating_sub(u64::from(rest[4]) * 90),
            });
            let len = usize::from(u16::from_be_bytes([rest[5], rest[6]])).min(rest.len() - 7);
            let payload = bytes::Bytes::copy_from_slice(&rest[7..7 + len]);
            rest = &rest[7 + len..];
            let (outs, _errors) = d.push(Payload {
                kind,
                rtp: rtp[k],
                data: payload,
                at: t0 + Duration::from_millis(ms),
                arrived: w0,
                sender,
            });
            for out in outs {
                match out {
                    Out::VideoTrack(t) => {
                        let v = t.video.expect("a video track has a shape");
                        assert!(v.width > 0 && v.height > 0);
                        have_track = true;
                    }
                    Out::Video(f) => {
                        assert!(have_track, "a frame before its track");
                        assert!(f.dts > last_v, "decode times went back");
                        assert!(f.pts >= f.dts);
                        last_v = f.dts;
                        let mut at = 0;
                        let mut idr = false;
                        while at < f.payload.len() {
                            let n = u32::from_be_bytes(f.payload[at..at + 4].try_into().expect("4 bytes"))
                                as usize;
                            assert!(n > 0 && at + 4 + n <= f.payload.len(), "AVCC lengths");
                            idr |= f.payload[at + 4] & 0x1f == 5;
                            at += 4 + n;
                        }
                        assert_eq!(f.keyframe, idr);
                    }
                    Out::Audio { pts, data, .. } => {
                        assert!(pts > last_a && !data.is_empty());
                        last_a = pts;
                    }
                }
            }
        }
    }

    /// A webhook receiver URL (an operator's `webhook_url` or `webhooks.url`). Invariants:
    /// an accepted URL has a host, a port and a path starting with `/`, and carries no
    /// credentials, spaces or control characters into a request line or Host header.
    pub fn webhook_url(data: &[u8]) {
        let url = String::from_utf8_lossy(data);
        if let Ok(t) = crate::events::webhooks::Target::parse(&url) {
            let (authority, path) = t.parts();
            assert!(path.starts_with('/'), "{path:?}");
            let (host, port) = authority.rsplit_once(':').expect("a port");
            assert!(!host.is_empty() && port.parse::<u16>().is_ok(), "{authority:?}");
            assert!(!authority.contains('@'), "{authority:?}");
            for part in [authority, path] {
                assert!(
                    !part.contains(' ') && !part.chars().any(char::is_control),
                    "{part:?}"
                );
            }
        }
    }

    /// A viewer's request line: path and query routed, a Range header parsed against a length.
    /// Input: `path ? query \n range \n len`. Invariants: a route's playback path prints back
    /// to the path it came from; a range lies inside the object.
    pub fn http_request(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let mut lines = text.splitn(3, '\n');
        let target = lines.next().unwrap_or("");
        let range_header = lines.next().unwrap_or("");
        let len: u64 = lines.next().and_then(|l| l.trim().parse().ok()).unwrap_or(1000);
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        match crate::http::route(path, query, 1024) {
            Ok(crate::http::Route::Playback { path: p, .. }) => {
                assert_eq!(p.to_string(), path, "a routed path is canonical");
            }
            Ok(crate::http::Route::Play { event, region, .. }) => {
                assert!(popcast_packager::naming::check_name("event", &event).is_ok());
                assert!(region.is_none_or(|r| popcast_packager::naming::check_name("region", &r).is_ok()));
            }
            _ => {}
        }
        match crate::http::range(range_header, len) {
            crate::http::Range::Bytes { start, end } => assert!(start <= end && end < len),
            crate::http::Range::Whole | crate::http::Range::Unsatisfiable => {}
        }
    }
}
