//! The Popcast origin: where creators' streams arrive and where every event is run.
//!
//! Will own (see DESIGN.md): `ingest::rtmp` and `ingest::whip` (sans-IO protocol sessions
//! wrapped by tokio tasks), `events` (the event records, scheduler and control API),
//! `relay` (the QUIC link that pushes media objects to edges) and `http` (playback, API,
//! player pages, /metrics, /healthz).
//!
//! Must not: encode or mux media itself (that is `popcast-packager`'s job), reach into an
//! edge's internals, or read configuration anywhere but from the structs it is handed.
//!
//! Nothing is built here yet: RTMP ingest and origin HTTP come with issue #4, the relay
//! with #6, events with #7, WHIP with #9. Until then the CLI's `popcast origin` says so and
//! exits non-zero.
