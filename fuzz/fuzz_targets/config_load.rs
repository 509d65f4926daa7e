//! Fuzz target: see `popcast_config::fuzzing::load` for what it feeds and which invariant it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| popcast_config::fuzzing::load(data));
