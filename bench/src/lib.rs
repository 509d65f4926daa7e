//! Popcast's benchmarks: latency, fan-out, startup and transcode scenarios, measured as
//! ratios against peers (nginx-rtmp, nginx/Varnish as an edge, moq-relay, xiu) run side by
//! side in the same run, with tables on stdout and JSON under `bench/results/`.
//!
//! Must not: be used by tests for pass/fail decisions; benchmark figures come only from
//! code in this repository.
//!
//! - [`scenarios`]: `popcast bench latency|startup|fanout` on an in-process [`rig`] with
//!   player-sdk sessions as the load; [`report`] turns each into a table, a JSON file and a
//!   section of `bench/RESULTS.md`.
//! - The `cargo bench` targets in `benches/` (muxing vs ffmpeg, origin latency, the edge vs
//!   nginx) and the prft-timing [`viewer`] they share.
//! - [`compare`]: the same stream into our origin and nginx-rtmp, the same load through our
//!   edge and an nginx caching proxy; [`peers`] runs the nginx processes.
//! - [`transcode`]: the ABR ladder against the ffmpeg CLI making the same ladder.
//! - [`player`]: the web player against plain hls.js in Chromium, with an edge killed.

pub mod compare;
pub mod peers;
pub mod player;
pub mod report;
pub mod rig;
pub mod scenarios;
pub mod transcode;
pub mod viewer;
