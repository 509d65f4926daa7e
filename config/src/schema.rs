//! The configuration schema: every section and field, with the defaults that make a config
//! file optional.

use crate::Secret;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The whole configuration of a Popcast process. Each process reads the sections it needs:
/// `popcast origin` reads `origin`, `packager`, `ladder`, `events`; `popcast edge` reads
/// `edge`; `popcast up` reads all of them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub node: NodeConfig,
    pub origin: OriginConfig,
    pub edge: EdgeConfig,
    pub packager: PackagerConfig,
    pub ladder: LadderConfig,
    /// More ladders events may choose by name (`"ladder": "mobile"`), beside `default` (the
    /// `[ladder]` section) and `none` (the source alone).
    pub ladders: std::collections::BTreeMap<String, LadderConfig>,
    pub events: EventDefaults,
    pub qoe: QoeConfig,
    pub test_source: TestSourceConfig,
    pub webhooks: WebhooksConfig,
    pub slate: SlateConfig,
}

/// What every process has.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Directory for the event database, recordings and other state.
    pub data_dir: PathBuf,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
        }
    }
}

/// Certificate and key files (PEM) for a TLS listener.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

/// The origin: ingest, packaging, control API, relay to edges.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OriginConfig {
    /// RTMP (or RTMPS when `tls` is set) ingest listener.
    pub rtmp_listen: SocketAddr,
    /// HTTP listener: control API, playback, player pages, /metrics.
    pub http_listen: SocketAddr,
    /// QUIC listener edges dial.
    pub relay_listen: SocketAddr,
    /// Base URL viewers and tools reach this origin at (used in printed and returned URLs).
    pub public_url: String,
    /// Operator bearer token for `/api/v1`. Unset: the API refuses every request.
    pub operator_token: Option<Secret>,
    /// Secret edges present in their hello. Unset: no edge may connect.
    pub node_secret: Option<Secret>,
    /// TLS for RTMPS and HTTPS; plain when unset.
    pub tls: Option<TlsConfig>,
    /// The relay's QUIC certificate. Unset: `tls` when set, else a self-signed certificate
    /// made once and kept in `{data_dir}/relay/` (edges trust it by `origin_ca_path`).
    pub relay_tls: Option<TlsConfig>,
    /// Whether a second publisher on a live event replaces the first (else it is refused).
    pub publish_takeover: bool,
    pub limits: OriginLimits,
    /// WHIP ingest (WebRTC from OBS 30+ and browsers): `/whip/{event}` on the HTTP listener,
    /// media over one UDP port.
    pub whip: WhipConfig,
    /// Events this origin runs from start, each with its stream key (until the control API
    /// creates them at run time). `popcast up` adds `demo` when it is not listed.
    pub events: Vec<StaticEvent>,
}

/// An event defined in configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticEvent {
    /// URL-safe name (`/live/{name}/master.m3u8`).
    pub name: String,
    /// The key creators publish with (`rtmp://host/live/{stream_key}`). Held only hashed
    /// once loaded; at least 16 bytes.
    pub stream_key: Secret,
}

impl Default for OriginConfig {
    fn default() -> Self {
        Self {
            rtmp_listen: SocketAddr::from(([0, 0, 0, 0], 1935)),
            http_listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            relay_listen: SocketAddr::from(([0, 0, 0, 0], 4433)),
            public_url: "http://127.0.0.1:8080".into(),
            operator_token: None,
            node_secret: None,
            tls: None,
            relay_tls: None,
            publish_takeover: false,
            limits: OriginLimits::default(),
            whip: WhipConfig::default(),
            events: Vec::new(),
        }
    }
}

/// Limits on what peers may make the origin hold or do. All finite by default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OriginLimits {
    /// Concurrent ingest connections from one IP (an IPv6 /64 counts as one; stops one
    /// host exhausting sockets).
    pub max_connections_per_ip: u32,
    /// Concurrent ingest connections in all.
    pub rtmp_max_connections: u32,
    /// Concurrent HTTP connections in all (viewers at the origin; edges take the crowd).
    pub http_max_connections: u32,
    /// An HTTP connection whose peer accepts no bytes for this long is closed (a viewer that
    /// stopped reading must not pin memory); the same bound applies to RTMP writes.
    pub write_stall_timeout_ms: u64,
    /// Publish attempts per IP per minute (stops stream-key guessing).
    pub max_publish_attempts_per_ip_per_minute: u32,
    /// A client must finish the RTMP handshake within this (stops idle half-open sessions).
    pub rtmp_handshake_timeout_ms: u64,
    /// Largest RTMP chunk size a peer may set. Memory is bounded by the message limits, not
    /// by this, so the default takes what encoders send (nginx-rtmp allows 10 MiB).
    pub rtmp_max_chunk_size: u32,
    /// Largest RTMP message a peer may announce (bounds partial-message memory).
    pub rtmp_max_message_bytes: u32,
    /// Most RTMP chunk streams open at once (bounds per-session state).
    pub rtmp_max_chunk_streams: u32,
    /// Deepest AMF0 nesting accepted (stops stack exhaustion).
    pub amf_max_depth: u32,
    /// A publisher that sends no media for this long is considered gone.
    pub publisher_idle_timeout_ms: u64,
    /// Longest HTTP query string accepted (playlist queries are short).
    pub http_max_query_bytes: u32,
}

impl Default for OriginLimits {
    fn default() -> Self {
        Self {
            max_connections_per_ip: 16,
            rtmp_max_connections: 1_000,
            http_max_connections: 10_000,
            write_stall_timeout_ms: 10_000,
            max_publish_attempts_per_ip_per_minute: 30,
            rtmp_handshake_timeout_ms: 10_000,
            rtmp_max_chunk_size: 0xFF_FFFF,
            rtmp_max_message_bytes: 8 * 1024 * 1024,
            rtmp_max_chunk_streams: 64,
            amf_max_depth: 16,
            publisher_idle_timeout_ms: 5_000,
            http_max_query_bytes: 1024,
        }
    }
}

/// WHIP ingest (RFC 9725): the SDP exchange is HTTP on the origin's listener; ICE, DTLS and
/// media share one UDP socket.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhipConfig {
    /// Whether `/whip/{event}` takes publishers (off: it answers 404).
    pub enabled: bool,
    /// The UDP socket every WebRTC session's media arrives on.
    pub udp_listen: SocketAddr,
    /// The address offered to publishers as our ICE candidate (a 1:1 NAT's public address,
    /// say). Unset: the listen address when it names one, else the address this host
    /// routes from.
    pub public_ip: Option<std::net::IpAddr>,
    /// ICE servers sent to clients in `Link` headers (`stun:` or `turn:` URLs). Our side is
    /// ICE-lite on a public address, so clients need none to reach us.
    pub ice_servers: Vec<String>,
    /// WHIP sessions at once (each holds a WebRTC stack and an audio transcoder).
    pub max_sessions: u32,
    /// Largest SDP offer accepted, in bytes (browsers send 4-8 KiB).
    pub max_sdp_bytes: u32,
    /// Most `a=candidate` lines an offer may carry.
    pub max_candidates: u32,
    /// A session must finish ICE and DTLS within this after its answer, or it is freed.
    pub connect_timeout_ms: u64,
    /// The fewest milliseconds between two keyframe requests (PLI) to one publisher.
    pub keyframe_request_min_ms: u64,
    /// The AAC bitrate the publisher's Opus audio is transcoded to, in kb/s.
    pub aac_kbps: u32,
}

impl Default for WhipConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            udp_listen: SocketAddr::from(([0, 0, 0, 0], 8189)),
            public_ip: None,
            ice_servers: Vec::new(),
            max_sessions: 100,
            max_sdp_bytes: 32 * 1024,
            max_candidates: 64,
            connect_timeout_ms: 10_000,
            keyframe_request_min_ms: 500,
            aac_kbps: 128,
        }
    }
}

/// An edge node: per-event cache slots fed by the origin, serving viewers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// Stable name of this node, unique among the origin's edges.
    pub node_id: String,
    /// Region this node serves (events are placed by region).
    pub region: String,
    /// The origin's relay address (`host:port`, QUIC).
    pub origin_relay: String,
    /// Name the origin's relay certificate is checked against.
    pub origin_server_name: String,
    /// PEM file with the certificate (or its CA) the origin's relay presents. Required to
    /// run an edge: the relay link is always TLS-verified.
    pub origin_ca_path: Option<PathBuf>,
    /// Secret presented in the edge hello; must match the origin's `node_secret`.
    pub node_secret: Option<Secret>,
    /// Viewer HTTP listener (HTTP/1.1 and h2c; HTTPS, HTTP/2 and HTTP/3 when `tls` is set).
    pub http_listen: SocketAddr,
    /// TLS for viewers; enables HTTPS and HTTP/3 on `http_listen`'s port.
    pub tls: Option<TlsConfig>,
    /// Base URL viewers reach this edge at (`https://edge-fra-1.example.com`); the origin's
    /// `/play` sends viewers there. Unset: made from `http_listen` (an unspecified address
    /// becomes loopback), which suits one machine only.
    pub public_url: Option<String>,
    /// Viewers this node can hold in total; reported to the origin for placement.
    pub capacity_viewers: u32,
    /// Whether a request for an event with no provisioned slot creates one (else refused).
    pub open_pull: bool,
    /// Memory one event slot may hold, in bytes.
    pub slot_memory_budget_bytes: u64,
    /// Viewers one event slot serves before answering 503 with Retry-After.
    pub slot_viewer_cap: u32,
    /// How long an ended event's slot lingers before its memory is freed.
    pub slot_release_grace_secs: u64,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            node_id: "edge-local".into(),
            region: "local".into(),
            origin_relay: "127.0.0.1:4433".into(),
            origin_server_name: "localhost".into(),
            origin_ca_path: None,
            node_secret: None,
            http_listen: SocketAddr::from(([0, 0, 0, 0], 8081)),
            tls: None,
            public_url: None,
            capacity_viewers: 10_000,
            open_pull: false,
            slot_memory_budget_bytes: 256 * 1024 * 1024,
            slot_viewer_cap: 5_000,
            slot_release_grace_secs: 60,
        }
    }
}

/// CMAF segmenting and LL-HLS playlist shape.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PackagerConfig {
    /// Target duration of an LL-HLS part (at most 500 ms); parts are the whole number of
    /// frames nearest to it. 200 ms by measurement (`make bench`, hls.js): about 1.3 s live
    /// latency at 22 requests/s per viewer, against about 1.1 s at 40/s for 100 ms and
    /// 1.6 s at 13/s for 334 ms.
    pub part_target_ms: u32,
    /// Target duration of a segment; segments are cut only at keyframes once it is reached.
    pub segment_target_ms: u32,
    /// Segments kept in a media playlist's sliding window.
    pub window_segments: u32,
    /// Of those, the newest segments whose parts are listed (the spec asks for at least 3
    /// target durations' worth near the live edge).
    pub part_window_segments: u32,
    /// Largest single frame accepted from a source (bounds memory per frame).
    pub max_frame_bytes: u32,
    /// A forward jump in a track's timestamps larger than this (or a step back of more than
    /// a part) starts a discontinuity; smaller holes stay holes in the media timeline.
    /// 1 s: beyond that, program date-times would jump without a discontinuity.
    pub max_timestamp_gap_ms: u32,
}

impl Default for PackagerConfig {
    fn default() -> Self {
        Self {
            part_target_ms: 200,
            segment_target_ms: 2_000,
            window_segments: 6,
            part_window_segments: 3,
            max_frame_bytes: 4 * 1024 * 1024,
            max_timestamp_gap_ms: 1_000,
        }
    }
}

/// The ABR ladder: renditions encoded from the source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LadderConfig {
    /// Whether the source itself is offered as a rendition (no re-encode).
    pub passthrough: bool,
    /// FFmpeg encoder name for renditions (`libx264`, or `h264_nvenc` where a GPU exists).
    pub encoder: String,
    /// Encoder speed preset.
    pub preset: String,
    /// Renditions, largest first. Those larger than the source are skipped.
    pub renditions: Vec<RenditionConfig>,
}

impl Default for LadderConfig {
    fn default() -> Self {
        Self {
            passthrough: true,
            encoder: "libx264".into(),
            preset: "veryfast".into(),
            renditions: vec![
                RenditionConfig::new("720p", 1280, 720, 2_800),
                RenditionConfig::new("480p", 854, 480, 1_200),
                RenditionConfig::new("360p", 640, 360, 700),
            ],
        }
    }
}

/// One encoded rendition of the ladder.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenditionConfig {
    /// URL-safe name used in paths (`/live/{event}/{name}/index.m3u8`).
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub video_kbps: u32,
}

impl RenditionConfig {
    pub fn new(name: &str, width: u32, height: u32, video_kbps: u32) -> Self {
        Self {
            name: name.into(),
            width,
            height,
            video_kbps,
        }
    }
}

/// Whether viewers need a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Public,
    Ticketed,
}

/// What the packager does with a source whose keyframes are further apart than the
/// segment target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyframePolicy {
    /// Cut segments at the target anyway (segments never exceed EXT-X-TARGETDURATION, but
    /// some do not start with a keyframe); the ingest report warns the creator.
    Cut,
    /// End the publish with the ingest analyzer's message once a keyframe is overdue.
    Refuse,
}

/// Defaults for new events and the event scheduler.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventDefaults {
    /// Edge slots are provisioned this long before an event's start.
    pub provision_lead_secs: u64,
    /// Edge slots are released this long after an event ends.
    pub release_grace_secs: u64,
    /// A creator may reconnect within this window without ending the event session.
    pub reconnect_grace_secs: u64,
    /// A publisher that sends no frame for this long has lost the event (`publisher.lost`,
    /// reason `inactivity`), whatever its TCP connection says.
    pub publisher_inactivity_ms: u64,
    /// Duration of an event created without one.
    pub duration_mins: u32,
    /// Viewer cap of an event created without one.
    pub viewer_cap: u32,
    pub access: Access,
    /// Regions an event is placed in when none are given.
    pub regions: Vec<String>,
    /// Events a creator with no track record may have starting on one (UTC) day. Each of
    /// their past events that went live and ended lifts it by one, up to
    /// `creator_daily_events_max` (progressive limits: new accounts cannot flood the
    /// schedule; creators who deliver earn room).
    pub creator_daily_events: u32,
    pub creator_daily_events_max: u32,
    /// A source whose keyframe interval exceeds `packager.segment_target_ms`.
    pub keyframe_policy: KeyframePolicy,
}

impl Default for EventDefaults {
    fn default() -> Self {
        Self {
            provision_lead_secs: 120,
            release_grace_secs: 300,
            reconnect_grace_secs: 60,
            publisher_inactivity_ms: 2_000,
            duration_mins: 30,
            viewer_cap: 1_000,
            access: Access::Public,
            regions: vec!["local".into()],
            creator_daily_events: 3,
            creator_daily_events_max: 24,
            keyframe_policy: KeyframePolicy::Cut,
        }
    }
}

/// Viewer QoE: what edges accept from players (CMCD, beacons to `/qoe`), how they count
/// sessions, and how the origin keeps each event's numbers over time.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QoeConfig {
    /// A session with no request and no beacon for this long has ended.
    pub session_idle_secs: u64,
    /// Watch time from which a session without stalls counts in the success rate.
    pub qualify_secs: u64,
    /// Sessions tracked per event on one edge; more are counted, not tracked.
    pub max_sessions_per_event: u32,
    /// Beacon body size, bytes.
    pub max_beacon_bytes: u32,
    /// Beacons one session may send per minute.
    pub beacons_per_minute: u32,
    /// CMCD data per request (query argument and headers), bytes.
    pub max_cmcd_bytes: u32,
    /// How often the origin samples each event's numbers for the dashboard's charts.
    pub sample_secs: u32,
    /// Samples kept per event (at 5 s, 720 is the last hour).
    pub max_samples: u32,
    /// Events whose numbers the origin keeps (the oldest ended ones go first).
    pub max_events: u32,
    /// Bearer token Prometheus presents at `/metrics` on origin and edges. Unset: the
    /// origin takes its operator token and edges refuse (their numbers name events, unlisted
    /// ones too).
    pub metrics_token: Option<Secret>,
}

impl Default for QoeConfig {
    fn default() -> Self {
        Self {
            session_idle_secs: 30,
            qualify_secs: 10,
            max_sessions_per_event: 50_000,
            max_beacon_bytes: 16 * 1024,
            beacons_per_minute: 60,
            max_cmcd_bytes: 4096,
            sample_secs: 5,
            max_samples: 720,
            max_events: 1_000,
            metrics_token: None,
        }
    }
}

/// Lifecycle webhooks: every event's `event.*`, `publisher.*` and `slots.released` moments,
/// POSTed in order per event, signed, retried until a 2xx, kept in the event database so
/// that a restart loses none.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Where to POST every event's moments (`https://host/path` or `http://host:port/path`);
    /// an event's own `webhook_url` takes its place for that event. Unset: only events with
    /// their own receiver send webhooks (every timeline is still kept).
    pub url: Option<String>,
    /// HMAC-SHA256 key; each request carries `Popcast-Signature: sha256=<hex of the MAC of the body>`.
    pub secret: Option<Secret>,
    /// One attempt's limit.
    pub timeout_ms: u64,
    /// Retries wait 1, 2, 4, … seconds, at most this long.
    pub max_backoff_secs: u64,
    /// PEM bundle of the certificate authorities https receivers are checked against
    /// (Debian's `ca-certificates` bundle by default; a private CA's file for receivers on a
    /// private network).
    pub ca_file: PathBuf,
    /// An event's timeline is deleted this many days after its last moment, once every
    /// moment was delivered.
    pub keep_days: u32,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            url: None,
            secret: None,
            timeout_ms: 5_000,
            max_backoff_secs: 60,
            ca_file: PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
            keep_days: 30,
        }
    }
}

/// The slate a provisioned event's viewers see before its creator goes live, during a gap
/// in the creator's media, and at its end: a card with the event's title and a status line,
/// with silent audio.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlateConfig {
    /// Off: a provisioned event has no playlist until its creator's first keyframe.
    pub enabled: bool,
    /// The card's size before the creator's first keyframe (later, each rendition's own).
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub video_kbps: u32,
    /// FFmpeg H.264 encoder name.
    pub encoder: String,
    /// TrueType font of the card's text.
    pub font: PathBuf,
    /// How long the "this event has ended" card plays before the playlists end.
    pub ended_card_secs: u64,
}

impl Default for SlateConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            width: 1280,
            height: 720,
            fps: 30,
            video_kbps: 300,
            encoder: "libx264".into(),
            font: PathBuf::from("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
            ended_card_secs: 4,
        }
    }
}

/// A frame rate as an exact fraction (`30`, `25`, `"30000/1001"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRate {
    pub num: u32,
    pub den: u32,
}

impl FrameRate {
    pub const fn new(num: u32, den: u32) -> Self {
        Self { num, den }
    }

    /// Frames per second as a float (for display and rough arithmetic only).
    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den.max(1))
    }

    /// Largest numerator or denominator accepted (keeps timestamp arithmetic far from
    /// overflow and FFmpeg's 32-bit rationals valid).
    pub const MAX_TERM: u32 = 1_000_000;

    /// Parses `30` or `30000/1001`; `29.97` is refused as inexact.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (num, den) = match s.split_once('/') {
            Some((n, d)) => (n.trim(), d.trim()),
            None => (s.trim(), "1"),
        };
        let num: u32 = num.parse().map_err(|_| {
            format!("frame rate numerator `{num}` is not a whole number (write 30000/1001, not 29.97)")
        })?;
        let den: u32 = den
            .parse()
            .map_err(|_| format!("frame rate denominator `{den}` is not a whole number"))?;
        if num == 0 || den == 0 {
            return Err("frame rate must be greater than zero".into());
        }
        if num > Self::MAX_TERM || den > Self::MAX_TERM {
            return Err(format!(
                "frame rate {num}/{den} has a term above {}",
                Self::MAX_TERM
            ));
        }
        Ok(Self { num, den })
    }
}

impl fmt::Display for FrameRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

impl<'de> Deserialize<'de> for FrameRate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u32),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => FrameRate::parse(&n.to_string()),
            Raw::Text(s) => FrameRate::parse(&s),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// The built-in test source: a moving pattern with a burned-in wall clock and frame counter,
/// plus a tone, encoded as H.264 + AAC in real time.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestSourceConfig {
    pub width: u32,
    pub height: u32,
    pub frame_rate: FrameRate,
    /// Distance between keyframes (the source's GOP), in milliseconds.
    pub keyframe_interval_ms: u32,
    pub video_kbps: u32,
    /// FFmpeg H.264 encoder name.
    pub encoder: String,
    pub audio_sample_rate: u32,
    pub audio_channels: u32,
    pub audio_kbps: u32,
    /// Frequency of the continuous tone; a 1 kHz beep also sounds for 100 ms each second.
    pub tone_hz: u32,
    /// TrueType font used to burn in the clock and counter.
    pub font: PathBuf,
}

impl Default for TestSourceConfig {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 720,
            frame_rate: FrameRate::new(30, 1),
            keyframe_interval_ms: 1_000,
            video_kbps: 2_500,
            encoder: "libx264".into(),
            audio_sample_rate: 48_000,
            audio_channels: 2,
            audio_kbps: 128,
            tone_hz: 440,
            font: PathBuf::from("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"),
        }
    }
}
