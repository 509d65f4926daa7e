//! Popcast's packager: turns a live source's frames into what viewers fetch.
//!
//! Owns: the media model ([`media::Frame`], [`media::TrackInfo`]), codec configuration
//! records ([`codec`]), and, behind the one FFmpeg boundary ([`ffmpeg`]), the built-in test
//! source. The CMAF muxer, segmenter, LL-HLS/LL-DASH manifests, live store (issue #3) and
//! the ABR ladder (issue #5) will live here too.
//!
//! Must not: open sockets or know about RTMP, WHIP, HTTP or the relay (those live in origin
//! and edge-node); read clocks inside protocol cores (time is passed in). FFmpeg is used only
//! inside the `ffmpeg` module.

pub mod codec;
pub mod ffmpeg;
pub mod media;
