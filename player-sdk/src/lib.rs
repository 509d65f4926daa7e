//! Popcast's native LL-HLS client: playlists, blocking reloads, part streaming, a playback
//! buffer model, ABR, CMCD and a QoE summary per session, usable headless by the bench.
//!
//! Must not: depend on any other Popcast crate (a client SDK stays lean and publishable).
//! The embeddable web player will live beside it in `web/`.
//!
//! - [`playlist`]: multivariant and media playlists (sans-IO, fuzzed as `player_playlist`).
//! - [`model`]: the playback buffer, stalls and live latency on a clock passed in.
//! - [`abr`]: throughput-based rendition choice with a buffer guard.
//! - [`cmcd`]: CTA-5004 keys as a query argument or headers.
//! - [`beacon`]: QoE beacons to the serving edge's `/qoe`.
//! - [`http`]: kept-alive HTTP/1.1 or HTTP/2 (cleartext) connections.
//! - [`session`]: one headless viewing session and its [`session::Qoe`].

pub mod abr;
pub mod beacon;
pub mod cmcd;
pub mod http;
pub mod model;
pub mod playlist;
pub mod session;

pub use session::{Qoe, SessionConfig, watch};

/// What the fuzz targets run (`fuzz/fuzz_targets/player_playlist.rs`), and their invariants;
/// `tests/fuzz_corpus.rs` replays the committed seeds through the same function.
pub mod fuzzing {
    use crate::playlist::{Limits, parse_media, parse_multivariant};

    /// Any bytes as a multivariant and as a media playlist: never a panic; a media playlist
    /// that parses numbers its segments consecutively, finds each by number, and merges
    /// with itself as a delta base.
    pub fn playlist(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let limits = Limits {
            max_segments: 500,
            ..Limits::default()
        };
        let _ = parse_multivariant(text, &limits);
        if let Ok(p) = parse_media(text, &limits) {
            for w in p.segments.windows(2) {
                assert_eq!(w[1].msn, w[0].msn + 1, "segments are numbered consecutively");
            }
            for s in &p.segments {
                assert_eq!(p.segment(s.msn).map(|f| f.msn), Some(s.msn));
                assert!(s.parts.len() <= limits.max_parts_per_segment);
            }
            let _ = p.next_part();
            let _ = p.last_part();
            let _ = p.duration_from(0);
            let _ = p.merge_delta(p.clone());
        }
    }
}
