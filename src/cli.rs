//! The command-line interface: every subcommand and flag, with its help text.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Popcast: edge-first live streaming for micro-events.
///
/// Creators push RTMP or WHIP to an origin; the packager cuts low-latency HLS; regional
/// edges serve viewers. Logs go to stderr (filter with RUST_LOG, e.g. RUST_LOG=debug);
/// URLs and results go to stdout. Commands whose work is not built yet say so and exit
/// with status 3.
#[derive(Debug, Parser)]
#[command(name = "popcast", version, propagate_version = true)]
pub struct Cli {
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything on one machine with embedded defaults: origin, edge, a demo event and
    /// the built-in test source.
    ///
    /// Runs the origin (RTMP ingest and HTTP playback) with the event `demo`, fed by the
    /// built-in test source until a creator publishes to it. Prints the URLs, one labelled
    /// line each, and one in-process edge that dials the origin's relay. Stop with Ctrl-C.
    Up(UpArgs),
    /// Run an origin (ingest, packaging, control API, relay to edges).
    Origin(ServiceArgs),
    /// Run an edge node (per-event cache slots, viewer HTTP).
    Edge(ServiceArgs),
    /// Operator commands against an origin's control API.
    #[command(subcommand)]
    Event(EventCommand),
    /// Run a benchmark scenario and write its results under bench/results/.
    Bench(BenchArgs),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Config file; embedded defaults when omitted.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// What feeds the demo event when no creator publishes.
    #[arg(long, value_enum, default_value_t = SourceKind::Test)]
    pub source: SourceKind,
    /// Stop after this many seconds (runs until Ctrl-C when omitted).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Seconds between status lines.
    #[arg(long, default_value_t = 5)]
    pub status_every: u64,
    /// RTMP listen address (overrides `origin.rtmp_listen`; default 0.0.0.0:1935).
    #[arg(long)]
    pub rtmp_listen: Option<std::net::SocketAddr>,
    /// HTTP listen address (overrides `origin.http_listen`; default 0.0.0.0:8080).
    #[arg(long)]
    pub http_listen: Option<std::net::SocketAddr>,
    /// Viewer HTTP address of the in-process edge (default: `edge.http_listen`).
    #[arg(long)]
    pub edge_listen: Option<std::net::SocketAddr>,
    /// QUIC address of the origin's relay (default: `origin.relay_listen`).
    #[arg(long)]
    pub relay_listen: Option<std::net::SocketAddr>,
    /// UDP address of WHIP's WebRTC media (overrides `origin.whip.udp_listen`; default 0.0.0.0:8189).
    #[arg(long)]
    pub whip_listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceKind {
    /// The built-in test pattern with a burned-in clock, plus a tone.
    Test,
    /// Nothing: the demo event waits for a creator.
    None,
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// Config file (see config/examples/).
    #[arg(long, short)]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct OriginArgs {
    /// Origin base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub origin: String,
    /// Operator bearer token (or set POPCAST_OPERATOR_TOKEN).
    #[arg(long, env = "POPCAST_OPERATOR_TOKEN", hide_env_values = true)]
    pub token: Option<popcast_config::Secret>,
    /// PEM file with the CA (or certificate) an https:// origin is checked against.
    #[arg(long)]
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// Schedule an event; prints its id and stream key (shown once).
    Create {
        #[command(flatten)]
        origin: OriginArgs,
        /// Title shown to viewers.
        #[arg(long)]
        title: String,
        /// Start time: RFC 3339 (2026-12-01T18:00:00Z) or from now (+90s, +10m, +2h); now
        /// when omitted.
        #[arg(long)]
        start: Option<String>,
        /// Duration in minutes (15, 30, 60, 90 or any other).
        #[arg(long)]
        duration: Option<u32>,
        /// Regions to place edge capacity in (repeatable).
        #[arg(long = "region")]
        regions: Vec<String>,
        /// Whether viewers need a token.
        #[arg(long, value_parser = ["public", "ticketed"])]
        access: Option<String>,
        /// URL-safe id (a-z 0-9 - _); made from the title when omitted.
        #[arg(long)]
        id: Option<String>,
        /// Who hosts it.
        #[arg(long, default_value = "operator")]
        creator: String,
        /// Viewers the event admits.
        #[arg(long)]
        viewer_cap: Option<u32>,
        /// Leave it out of the public calendar (`/calendar.ics`).
        #[arg(long)]
        unlisted: bool,
        /// This event's own lifecycle webhook receiver (https:// or http://), instead of the
        /// deployment's `webhooks.url`; signed with the deployment's `webhooks.secret`.
        #[arg(long)]
        webhook_url: Option<String>,
    },
    /// List events.
    List {
        #[command(flatten)]
        origin: OriginArgs,
    },
    /// Show one event.
    Show {
        #[command(flatten)]
        origin: OriginArgs,
        id: String,
    },
    /// End an event now.
    End {
        #[command(flatten)]
        origin: OriginArgs,
        id: String,
    },
    /// End the current publisher's session and revoke the event's stream key until
    /// `popcast event stream-key` makes a new one.
    Kick {
        #[command(flatten)]
        origin: OriginArgs,
        id: String,
    },
    /// Make a new stream key for an event (printed once); the old one stops working.
    StreamKey {
        #[command(flatten)]
        origin: OriginArgs,
        id: String,
    },
    /// Give a ticketed event a new viewer-token key; tokens signed by older keys keep working
    /// until they expire, unless --revoke-previous.
    RotateKey {
        #[command(flatten)]
        origin: OriginArgs,
        id: String,
        /// Drop the older keys now (a leaked key): every token they signed stops working.
        #[arg(long)]
        revoke_previous: bool,
    },
    /// Mint a viewer token for a ticketed event.
    Token {
        #[command(flatten)]
        origin: OriginArgs,
        id: String,
        /// Token lifetime in seconds (default 3600).
        #[arg(long)]
        ttl: Option<u64>,
        /// A ticket or session id signed into the token.
        #[arg(long)]
        session: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    pub scenario: Scenario,
    /// The short version (what `make bench` runs).
    #[arg(long)]
    pub short: bool,
    /// Where the JSON results go (and RESULTS.md is made from).
    #[arg(long, default_value = "bench/results")]
    pub results: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Per-frame delivery delay and client live latency, source to viewer.
    Latency,
    /// Viewers one edge holds before errors or stalls appear.
    Fanout,
    /// Time to first part and to a playable buffer for joining viewers.
    Startup,
    /// The ABR ladder against the ffmpeg CLI.
    Transcode,
    /// The same source and load against peers (nginx-rtmp, nginx as a caching edge).
    Compare,
    /// `<popcast-player>` against plain hls.js in Chromium, an edge killed halfway.
    Player,
    /// latency, startup, fanout, compare, transcode and player, one after another.
    All,
    /// Remake bench/RESULTS.md from the JSON results.
    Results,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate a config file; errors name the key and line.
    Check { file: PathBuf },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
