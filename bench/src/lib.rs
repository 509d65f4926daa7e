//! Popcast's benchmarks: latency, fan-out, startup and transcode scenarios, measured as
//! ratios against peers (nginx-rtmp, nginx/Varnish as an edge, moq-relay, xiu) run side by
//! side in the same run, with tables on stdout and JSON under `bench/results/`.
//!
//! Must not: be used by tests for pass/fail decisions; benchmark figures come only from
//! code in this repository.
//!
//! Nothing is built here yet: scenarios come with issue #8 (and `transcode` with #5).
//! Until then `popcast bench` says so and exits non-zero.
