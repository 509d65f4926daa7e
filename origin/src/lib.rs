//! The Popcast origin: where creators' streams arrive and where every event is run.
//!
//! Owns: `ingest` (RTMP today, WHIP later: sans-IO protocol sessions wrapped by tokio
//! tasks), and, as their issues land, `events` (the event records, scheduler and control
//! API), `relay` (the QUIC link that pushes media objects to edges) and `http` (playback,
//! API, player pages, /metrics, /healthz).
//!
//! Must not: encode or mux media itself (that is `popcast-packager`'s job), reach into an
//! edge's internals, or read configuration anywhere but from the structs it is handed.

pub mod ingest;

/// Entry points for the fuzz targets in `fuzz/`, also run over the seed corpus by the tests.
/// Each asserts an invariant, not just "no panic".
#[doc(hidden)]
pub mod fuzzing {}
