//! The `popcast` binary as a user runs it: help for every command, `config check`, and the
//! errors a user meets first (`up` has its own tests in up.rs).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn popcast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_popcast"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run popcast")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/examples")
        .join(name)
        .display()
        .to_string()
}

fn scratch_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("popcast-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn every_command_explains_itself() {
    let top = popcast(&["--help"]);
    assert!(top.status.success());
    let (stdout, _) = text(&top);
    for cmd in ["up", "origin", "edge", "event", "bench", "config"] {
        assert!(stdout.contains(cmd), "top-level help lacks `{cmd}`");
        let out = popcast(&[cmd, "--help"]);
        assert!(out.status.success(), "`{cmd} --help` failed");
        assert!(text(&out).0.len() > 100, "`{cmd} --help` says too little");
    }
    for sub in ["create", "list", "show", "end", "token"] {
        assert!(
            popcast(&["event", sub, "--help"]).status.success(),
            "event {sub} --help"
        );
    }
}

#[test]
fn bad_config_fails_before_anything_else_with_key_and_line() {
    let bad = scratch_file(
        "bad.toml",
        "[edge]\nregion = \"eu-west\"\nslot_viewer_cap = \"many\"\n",
    );
    for args in [
        vec!["config", "check", bad.to_str().unwrap()],
        vec!["edge", "--config", bad.to_str().unwrap()],
    ] {
        let out = popcast(&args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("bad.toml:3:"), "{stderr}");
        assert!(stderr.contains("edge.slot_viewer_cap"), "{stderr}");
    }
    let out = popcast(&["config", "check", &example("single-node.toml")]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(text(&out).0.contains("valid"));
}

#[test]
fn unknown_scenario_lists_the_real_ones() {
    let out = popcast(&["bench", "warp-speed"]);
    assert_eq!(out.status.code(), Some(2));
    let (_, stderr) = text(&out);
    for s in ["latency", "fanout", "startup", "transcode"] {
        assert!(stderr.contains(s), "{stderr}");
    }
}
