//! Fuzz target: see `popcast_player::fuzzing::playlist` for what it feeds and which invariant it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| popcast_player::fuzzing::playlist(data));
