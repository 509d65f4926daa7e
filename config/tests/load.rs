//! Loading real files and bad inputs through the public API: the examples load, defaults
//! need no file, and every error names the key and where it is written.

use popcast_config::{Access, Config, ConfigError, FrameRate};
use std::path::{Path, PathBuf};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

#[test]
fn defaults_need_no_file_and_are_valid() {
    let c = Config::from_toml_str("", "<empty>").expect("empty config is valid");
    assert_eq!(c, Config::default());
    assert!(Config::default().problems().is_empty());
    assert_eq!(c.origin.http_listen.port(), 8080);
    assert_eq!(c.origin.rtmp_listen.port(), 1935);
    assert_eq!(c.test_source.frame_rate, FrameRate::new(30, 1));
}

#[test]
fn single_node_example_loads() {
    let c = Config::load(&examples().join("single-node.toml")).unwrap();
    assert_eq!(c.ladder.renditions.len(), 3);
    assert_eq!(c.events.access, Access::Public);
    assert_eq!(c.slate, popcast_config::SlateConfig::default());
    let found = problems("[slate]\nwidth = 641\nfps = 0\nended_card_secs = 600\n");
    for key in ["slate.width", "slate.fps", "slate.ended_card_secs"] {
        problem_for(&found, key);
    }
}

#[test]
fn two_region_examples_load_with_matching_secrets_and_regions() {
    let dir = examples().join("two-regions");
    let origin = Config::load(&dir.join("origin.toml")).unwrap();
    let mut regions = Vec::new();
    for name in ["eu-west", "us-east"] {
        let edge = Config::load(&dir.join(format!("{name}.toml"))).unwrap();
        assert_eq!(edge.edge.region, name);
        assert_eq!(edge.edge.origin_relay, origin.origin.relay_listen.to_string());
        assert_eq!(
            edge.edge.node_secret.as_ref().map(|s| s.expose()),
            origin.origin.node_secret.as_ref().map(|s| s.expose())
        );
        assert_ne!(edge.edge.http_listen, origin.origin.http_listen);
        regions.push(edge.edge.region.clone());
    }
    assert_eq!(origin.events.regions, regions);
}

fn parse_err(src: &str) -> (String, usize, usize, Option<String>, String) {
    match Config::from_toml_str(src, "t.toml") {
        Err(ConfigError::Parse { at, key, message }) => (at.file, at.line, at.column, key, message),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let (file, line, col, key, message) =
        parse_err("[origin]\nhttp_listen = \"127.0.0.1:1\"\nrtmp_lisen = 5\n");
    assert_eq!((file.as_str(), line, col), ("t.toml", 3, 1));
    assert_eq!(key.as_deref(), Some("origin.rtmp_lisen"));
    assert!(message.contains("unknown field `rtmp_lisen`"), "{message}");
}

#[test]
fn wrong_type_is_named_with_its_line() {
    let (_, line, _, key, message) = parse_err("[packager]\n\npart_target_ms = \"fast\"\n");
    assert_eq!(line, 3);
    assert_eq!(key.as_deref(), Some("packager.part_target_ms"));
    assert!(message.contains("invalid type"), "{message}");
}

#[test]
fn bad_socket_address_is_named() {
    let (_, line, _, key, message) = parse_err("[origin]\nrtmp_listen = \"localhost\"\n");
    assert_eq!(line, 2);
    assert_eq!(key.as_deref(), Some("origin.rtmp_listen"));
    assert!(message.contains("invalid socket address"), "{message}");
}

#[test]
fn unknown_section_and_enum_value_are_named() {
    let (_, line, _, key, _) = parse_err("[orgin]\nx = 1\n");
    assert_eq!((line, key.as_deref()), (1, Some("orgin")));
    let (_, line, _, key, message) = parse_err("[events]\naccess = \"vip\"\n");
    assert_eq!((line, key.as_deref()), (2, Some("events.access")));
    assert!(message.contains("unknown variant `vip`"), "{message}");
}

#[test]
fn broken_toml_points_at_the_line() {
    let (_, line, _, _, message) = parse_err("[node]\ndata_dir = \"unterminated\n");
    assert_eq!(line, 2);
    assert!(!message.is_empty());
}

#[test]
fn inexact_frame_rate_is_refused_with_a_hint() {
    let (_, _, _, key, message) = parse_err("[test_source]\nframe_rate = \"29.97\"\n");
    assert_eq!(key.as_deref(), Some("test_source.frame_rate"));
    assert!(message.contains("30000/1001"), "{message}");
    let c = Config::from_toml_str("[test_source]\nframe_rate = \"30000/1001\"\n", "t").unwrap();
    assert_eq!(c.test_source.frame_rate, FrameRate::new(30000, 1001));
}

fn problems(src: &str) -> Vec<popcast_config::Problem> {
    match Config::from_toml_str(src, "t.toml") {
        Err(ConfigError::Invalid { problems }) => problems,
        other => panic!("expected invalid, got {other:?}"),
    }
}

/// The problem reported for `key`, or a failure listing all that were reported.
fn problem_for<'a>(found: &'a [popcast_config::Problem], key: &str) -> &'a popcast_config::Problem {
    found
        .iter()
        .find(|p| p.key == key)
        .unwrap_or_else(|| panic!("no problem for {key} in {found:#?}"))
}

#[test]
fn invalid_values_are_all_reported_with_key_and_line() {
    let src = "\
[packager]
part_target_ms = 900

[ladder]
[[ladder.renditions]]
name = \"hd\"
width = 1280
height = 720
video_kbps = 2000

[[ladder.renditions]]
name = \"hd\"
width = 853
height = 480
video_kbps = 900

[origin]
operator_token = \"short\"
";
    let problems = problems(src);
    let find = |key: &str| problem_for(&problems, key);
    assert_eq!(find("packager.part_target_ms").at.as_ref().unwrap().line, 2);
    let dup = find("ladder.renditions[1].name");
    assert_eq!(dup.at.as_ref().unwrap().line, 12);
    assert!(dup.message.contains("earlier rendition"));
    assert_eq!(find("ladder.renditions[1].width").at.as_ref().unwrap().line, 13);
    let token = find("origin.operator_token");
    assert_eq!(token.at.as_ref().unwrap().line, 18);
    assert!(!token.message.contains("short"), "a secret must never be echoed");
    // The whole message lists every problem with file:line:col.
    let text = ConfigError::Invalid {
        problems: problems.clone(),
    }
    .to_string();
    assert!(text.contains("t.toml:2:1: `packager.part_target_ms`"), "{text}");
}

#[test]
fn problem_in_a_default_value_has_no_location() {
    // slot_viewer_cap keeps its default (5000), which the lowered capacity makes too large.
    let found = problems("[edge]\ncapacity_viewers = 100\n");
    let p = problem_for(&found, "edge.slot_viewer_cap");
    assert_eq!(p.at, None);
    assert!(p.to_string().contains("(default value)"), "{p}");
}

#[test]
fn an_edge_public_url_must_be_a_plain_http_base() {
    for bad in ["edge.example.com", "ftp://e.example", "https://e.example/?x=1"] {
        let found = problems(&format!("[edge]\npublic_url = \"{bad}\"\n"));
        let p = problem_for(&found, "edge.public_url");
        assert_eq!(p.at.as_ref().map(|a| a.line), Some(2), "{bad}");
    }
    let c = Config::from_toml_str("[edge]\npublic_url = \"https://edge-fra-1.example\"\n", "t").unwrap();
    assert_eq!(c.edge.public_url.as_deref(), Some("https://edge-fra-1.example"));
}

#[test]
fn problem_in_a_written_value_has_its_line() {
    let found = problems("[packager]\npart_target_ms = 500\nsegment_target_ms = 900\n");
    let p = problem_for(&found, "packager.segment_target_ms");
    assert_eq!(p.at.as_ref().map(|a| a.line), Some(3));
}

#[test]
fn secret_values_never_appear_in_errors() {
    for src in [
        "[origin]\noperator_token = 9876543210987654\n",
        "[edge]\nnode_secret = [\"s3cr3t-s3cr3t-s3cr3t\"]\n",
    ] {
        let err = Config::from_toml_str(src, "t.toml").unwrap_err().to_string();
        assert!(
            !err.contains("9876543210987654") && !err.contains("s3cr3t"),
            "{err}"
        );
        assert!(err.contains("secret"), "{err}");
    }
}

#[test]
fn oversized_config_is_a_limit_error() {
    let big = format!("# {}\n", "x".repeat(popcast_config::MAX_CONFIG_BYTES));
    assert!(matches!(
        Config::from_toml_str(&big, "big.toml"),
        Err(ConfigError::TooLarge { .. })
    ));
}

#[test]
fn counts_and_frame_rate_terms_are_limited() {
    let mut src = String::from("[ladder]\n");
    for i in 0..17 {
        src.push_str(&format!(
            "[[ladder.renditions]]\nname = \"r{i}\"\nwidth = 640\nheight = 360\nvideo_kbps = 500\n"
        ));
    }
    assert!(
        problems(&src)
            .iter()
            .any(|p| p.key == "ladder.renditions" && p.message.contains("limit"))
    );
    let (_, _, _, key, message) = parse_err("[test_source]\nframe_rate = \"4000000000/4000000000\"\n");
    assert_eq!(key.as_deref(), Some("test_source.frame_rate"));
    assert!(!message.is_empty());
}
#[test]
fn missing_file_names_the_path() {
    let err = Config::load(Path::new("/nonexistent/popcast.toml")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/popcast.toml"), "{err}");
}

#[test]
fn garbage_never_panics() {
    // A small deterministic stand-in for the fuzz target (fuzz/fuzz_targets/config_load.rs):
    // mutate the example file byte by byte and require an Ok or an error, never a panic.
    let src = std::fs::read(examples().join("single-node.toml")).unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..2_000 {
        let mut bytes = src.clone();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let i = (state as usize) % bytes.len();
            bytes[i] = (state >> 32) as u8;
        }
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = Config::from_toml_str(text, "mutated.toml");
        }
    }
    // Every prefix, too: truncated files are the common real-world garbage.
    let text = std::str::from_utf8(&src).unwrap();
    for end in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
        let _ = Config::from_toml_str(&text[..end], "prefix.toml");
    }
}

#[test]
fn named_ladders_load_and_bad_ones_name_their_key() {
    let ok =
        "[ladders.mobile]\nrenditions = [{ name = \"240p\", width = 426, height = 240, video_kbps = 300 }]\n";
    let c = Config::from_toml_str(ok, "ok.toml").expect("a named ladder");
    assert_eq!(c.ladders["mobile"].renditions[0].name, "240p");
    assert_eq!(c.ladders["mobile"].encoder, "libx264", "defaults fill the rest");
    let bad =
        "[ladders.none]\nrenditions = [{ name = \"source\", width = 427, height = 240, video_kbps = 300 }]\n";
    let e = Config::from_toml_str(bad, "bad.toml").unwrap_err().to_string();
    for key in [
        "ladders.none",
        "ladders.none.renditions[0].name",
        "ladders.none.renditions[0]",
    ] {
        assert!(e.contains(key), "{key} in {e}");
    }
}
