//! Fuzz target: see `popcast_packager::fuzzing::cmaf_read` for what it feeds and which invariant it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| popcast_packager::fuzzing::cmaf_read(data));
