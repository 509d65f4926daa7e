//! A Popcast edge node: a regional cache with one ephemeral slot per event.
//!
//! Will own (see DESIGN.md): `upstream` (the QUIC link from the origin, subscriptions and
//! fetch-on-miss), `slot` (per-event windows of shared `Bytes`, budgets, coalescing),
//! `serve` (viewer HTTP/1.1, HTTP/2 and HTTP/3 with LL-HLS blocking semantics) and `qoe`
//! (CMCD and beacons turned into per-event stream success figures).
//!
//! Must not: transcode or repackage media (objects are relayed as opaque bytes), copy a
//! payload per viewer, or let tokens and CMCD into cache keys.
//!
//! Nothing is built here yet: it comes with issue #6 (and QoE with #10). Until then the
//! CLI's `popcast edge` says so and exits non-zero.
