//! Fuzz target: see `popcast_packager::fuzzing::qoe_cmcd` for what it feeds and which invariant it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| popcast_packager::fuzzing::qoe_cmcd(data));
