//! Ingest: the protocols creators publish with, turned into packager frames.
//!
//! `rtmp` is the RTMP session (handshake, chunk stream, AMF0 commands) as a sans-IO state
//! machine; `flv` turns the FLV audio/video tag bodies it carries into [`Frame`]s and
//! [`TrackInfo`]s; `server` is the tokio listener that drives both and authorises
//! publishers; `limits` holds the per-IP limits; `analyzer` measures what each publisher
//! sends and says what to fix; `whip` takes WebRTC publishers (RFC 9725).
//!
//! [`Frame`]: popcast_packager::media::Frame
//! [`TrackInfo`]: popcast_packager::media::TrackInfo

pub mod analyzer;
pub mod flv;
pub mod limits;
pub mod rtmp;
pub mod server;
pub mod whip;
