//! Fuzz target: see `popcast_origin::fuzzing::whip_depack` for what it feeds and which invariant it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| popcast_origin::fuzzing::whip_depack(data));
