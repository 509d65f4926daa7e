//! Popcast's native LL-HLS client: playlists, blocking reloads, part streaming, a playback
//! buffer model, ABR, CMCD and a QoE summary per session, usable headless by the bench.
//!
//! Must not: depend on any other Popcast crate (a client SDK stays lean and publishable).
//! The embeddable web player will live beside it in `web/`.
//!
//! Nothing is built here yet: it comes with issue #8 (the web player with #11).
