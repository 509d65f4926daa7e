//! Replays the committed fuzz seed corpora (fuzz/corpus/) through the same functions the
//! fuzz targets call, so every target's invariant is checked on every `make test`.

use popcast_packager::fuzzing::replay;

#[test]
fn avc_config_corpus() {
    replay("avc_config", popcast_packager::fuzzing::avc_config);
}

#[test]
fn annexb_corpus() {
    replay("annexb", popcast_packager::fuzzing::annexb);
}

#[test]
fn aac_config_corpus() {
    replay("aac_config", popcast_packager::fuzzing::aac_config);
}

#[test]
fn segmenter_corpus() {
    replay("segmenter", popcast_packager::fuzzing::segmenter);
}

#[test]
fn cmaf_read_corpus() {
    replay("cmaf_read", popcast_packager::fuzzing::cmaf_read);
}

#[test]
fn sps_corpus() {
    replay("sps", popcast_packager::fuzzing::sps);
}

#[test]
fn opus_head_corpus() {
    replay("opus_head", popcast_packager::fuzzing::opus_head);
}

#[test]
fn hls_check_corpus() {
    replay("hls_check", popcast_packager::fuzzing::hls_check);
}

#[test]
fn playback_path_corpus() {
    replay("playback_path", popcast_packager::fuzzing::playback_path);
}

#[test]
fn relay_frame_corpus() {
    replay("relay_frame", popcast_packager::fuzzing::relay_frame);
}

#[test]
fn token_corpus() {
    replay("token", popcast_packager::fuzzing::token);
    replay("qoe_cmcd", popcast_packager::fuzzing::qoe_cmcd);
    replay("qoe_beacon", popcast_packager::fuzzing::qoe_beacon);
}
