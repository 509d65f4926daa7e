//! The `popcast` binary as a user runs it: help for every command, real work where it
//! exists (`up` with the test source, `config check`), and a clear "not yet available"
//! with exit status 3 where it does not.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NOT_YET_AVAILABLE: i32 = 3;

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
fn unbuilt_commands_say_so_and_exit_3() {
    let cases: &[&[&str]] = &[
        &["origin", "--config", &example("two-regions/origin.toml")],
        &["edge", "--config", &example("two-regions/eu-west.toml")],
        &["event", "list"],
        &["event", "create", "--title", "Clinic"],
        &["bench", "latency"],
        &["bench", "transcode"],
        &["up", "--source", "none"],
    ];
    for args in cases {
        let out = popcast(args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(NOT_YET_AVAILABLE), "{args:?}: {stderr}");
        assert!(stderr.contains("not yet available"), "{args:?}: {stderr}");
        assert!(
            stderr.contains("issue #"),
            "{args:?} should say where the work lands: {stderr}"
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

#[test]
fn up_runs_the_test_source_in_real_time_and_logs_json() {
    let config = scratch_file(
        "small.toml",
        "[test_source]\nwidth = 320\nheight = 180\nframe_rate = 25\nvideo_kbps = 300\n",
    );
    let out = popcast(&[
        "--log-format",
        "json",
        "up",
        "--config",
        config.to_str().unwrap(),
        "--duration",
        "3",
        "--status-every",
        "1",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("avc1.") && stdout.contains("320x180 @ 25 fps"),
        "{stdout}"
    );
    assert!(stdout.contains("mp4a.40.2 48000 Hz"), "{stdout}");
    let total = stdout
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap_or_else(|| panic!("no total line: {stdout}"));
    let frames: u64 = total
        .split("video ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read frames from {total}"));
    // Three seconds at 25 fps in real time: about 75 frames; an unpaced source would make
    // hundreds. Wide bounds: a loaded CI machine may start late or fall behind a little.
    assert!((45..=110).contains(&frames), "{total}");
    assert!(total.contains("--duration elapsed"), "{total}");
    assert!(
        stdout.lines().filter(|l| l.starts_with("last")).count() >= 2,
        "{stdout}"
    );
    let log = stderr
        .lines()
        .find(|l| l.contains("test source running"))
        .unwrap_or_else(|| panic!("no log line: {stderr}"));
    assert!(
        log.starts_with('{') && log.contains("\"level\":\"INFO\""),
        "{log}"
    );
}
