//! Popcast's benchmarks: latency, fan-out, startup and transcode scenarios, measured as
//! ratios against peers (nginx-rtmp, nginx/Varnish as an edge, moq-relay, xiu) run side by
//! side in the same run, with tables on stdout and JSON under `bench/results/`.
//!
//! Must not: be used by tests for pass/fail decisions; benchmark figures come only from
//! code in this repository.
//!
//! Built so far: the `cargo bench` targets in `benches/` (muxing, origin latency, the edge)
//! and the headless LL-HLS [`viewer`] they share. The `popcast bench` scenarios come with
//! issue #8 (and `transcode` with #5); until then `popcast bench` says so and exits
//! non-zero.

pub mod viewer;
