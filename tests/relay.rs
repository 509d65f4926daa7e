//! Origin → QUIC relay → edges, end to end on loopback: the ffmpeg CLI publishes to a real
//! origin, two real edges dial its relay, and simulated viewers (a small LL-HLS client over
//! HTTP/1.1 keep-alive: blocking playlist reload, then the part) watch through the edges.

mod common;

use bytes::Bytes;
use common::{browser_harness, get_with_token};
use http_body_util::{BodyExt, Empty};
use popcast_config::{Config, Secret};
use popcast_edge::Edge;
use popcast_origin::Origin;
use popcast_origin::events::Events;
use popcast_origin::live::LiveEvent;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const KEY: &str = "relay-test-key-0123456789";
const SECRET: &str = "relay-test-node-secret";
const OPERATOR: &str = "relay-test-operator-token";

struct Topology {
    origin: Option<Origin>,
    config: Config,
    edges: Vec<Edge>,
    rt: tokio::runtime::Runtime,
    dir: PathBuf,
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("popcast-relay-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn origin_config(dir: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.node.data_dir = dir.join("origin");
    c.origin.rtmp_listen = "127.0.0.1:0".parse().unwrap();
    c.origin.whip.udp_listen = "127.0.0.1:0".parse().unwrap();
    c.origin.http_listen = "127.0.0.1:0".parse().unwrap();
    c.origin.relay_listen = "127.0.0.1:0".parse().unwrap();
    c.origin.node_secret = Some(Secret::new(SECRET));
    c.origin.operator_token = Some(Secret::new(OPERATOR));
    c
}

fn edge_config(dir: &std::path::Path, relay: std::net::SocketAddr, name: &str) -> Config {
    let mut c = Config::default();
    c.node.data_dir = dir.join(name);
    c.edge.node_id = name.into();
    c.edge.region = name.into();
    c.edge.origin_relay = relay.to_string();
    c.edge.origin_server_name = "localhost".into();
    c.edge.origin_ca_path = Some(dir.join("origin/relay/cert.pem"));
    c.edge.node_secret = Some(Secret::new(SECRET));
    c.edge.http_listen = "127.0.0.1:0".parse().unwrap();
    c
}

impl Topology {
    fn start(test: &str, edges: &[&str], tune_edge: impl Fn(&mut Config)) -> Self {
        Self::start_tuned(test, edges, |_| {}, tune_edge)
    }

    fn start_tuned(
        test: &str,
        edges: &[&str],
        tune_origin: impl FnOnce(&mut Config),
        tune_edge: impl Fn(&mut Config),
    ) -> Self {
        // RUST_LOG=popcast_edge=debug,popcast_origin=debug shows the relay at work.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = temp_dir(test);
        let mut config = origin_config(&dir);
        tune_origin(&mut config);
        let events = Arc::new(Events::new());
        events
            .add(LiveEvent::new("ev", KEY.as_bytes(), &config.packager))
            .unwrap();
        let origin = rt.block_on(Origin::start(&config, events)).unwrap();
        config.origin.relay_listen = origin.relay.as_ref().expect("relay on").addr;
        let relay = origin.relay.as_ref().expect("relay on").addr;
        let edges = edges
            .iter()
            .map(|name| {
                let mut c = edge_config(&dir, relay, name);
                tune_edge(&mut c);
                rt.block_on(Edge::start(&c)).unwrap()
            })
            .collect();
        Self {
            origin: Some(origin),
            config,
            edges,
            rt,
            dir,
        }
    }

    /// Stops the origin and starts a new one on the same relay address and data directory
    /// (so the same relay certificate), with fresh ingest and HTTP ports.
    fn restart_origin(&mut self) {
        // Dropped, so its relay socket closes before the new one binds.
        drop(self.origin.take());
        let events = Arc::new(Events::new());
        events
            .add(LiveEvent::new("ev", KEY.as_bytes(), &self.config.packager))
            .unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        self.origin = Some(loop {
            // The old endpoint's socket closes as its tasks wind down.
            match self.rt.block_on(Origin::start(&self.config, events.clone())) {
                Ok(o) => break o,
                Err(e) => {
                    assert!(Instant::now() < until, "origin restart: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
    }

    fn origin(&self) -> &Origin {
        self.origin.as_ref().expect("running")
    }

    fn rtmp(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live/{KEY}", self.origin().rtmp_addr.port())
    }

    fn edge_url(&self, i: usize, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.edges[i].http_addr.port())
    }

    /// Waits until both edges list two whole segments; returns the origin's base URL.
    fn await_both_edges(&self) -> String {
        wait_until(30, "the edges' playlists", || {
            (0..2).all(|i| {
                curl(&self.edge_url(i, "/live/ev/source/index.m3u8"))
                    .1
                    .matches("#EXTINF")
                    .count()
                    >= 2
            })
        });
        format!("http://127.0.0.1:{}", self.origin().http_addr.port())
    }

    fn edge_https_url(&self, i: usize, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.edges[i].http_addr.port())
    }
}

/// The ffmpeg CLI publishing a 320x180 test pattern with a tone.
fn publish(url: &str, secs: u32) -> Child {
    common::ffmpeg_publish(url, secs, "320x180")
}

fn curl(url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "10", "-w", "\n%{http_code}", url])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The raw bytes of a GET with curl.
fn body(url: &str) -> Vec<u8> {
    Command::new("curl")
        .args(["-s", "-m", "10", url])
        .output()
        .expect("curl runs")
        .stdout
}

fn wait_until(secs: u64, what: &str, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_edge_serves_the_origins_playlists_and_parts_over_the_relay() {
    let t = Topology::start("basic", &["eu-west"], |_| {});
    let mut ff = publish(&t.rtmp(), 8);
    wait_until(20, "the edge's multivariant playlist", || {
        curl(&t.edge_url(0, "/live/ev/master.m3u8")).0 == 200
    });
    let (_, master) = curl(&t.edge_url(0, "/live/ev/master.m3u8"));
    assert!(master.contains("source/index.m3u8"), "{master}");
    for rendition in ["source", "audio"] {
        let (code, pl) = curl(&t.edge_url(0, &format!("/live/ev/{rendition}/index.m3u8")));
        assert_eq!(code, 200, "{pl}");
        if let Err(v) = popcast_packager::hls::check::check_media(&pl) {
            panic!("{rendition}: {v:?}\n{pl}");
        }
        // The same parts, byte for byte, as the origin's.
        let part = pl
            .lines()
            .filter_map(|l| l.split("URI=\"").nth(1))
            .filter(|u| u.ends_with(".m4s\",INDEPENDENT=YES") || u.ends_with(".m4s\""))
            .map(|u| u.split('"').next().unwrap().to_string())
            .next_back()
            .expect("a part");
        let path = format!("/live/ev/{rendition}/{part}");
        let from_edge = body(&t.edge_url(0, &path));
        let from_origin = body(&format!("http://127.0.0.1:{}{path}", t.origin().http_addr.port()));
        assert!(!from_edge.is_empty());
        assert_eq!(from_edge, from_origin, "{path}");
    }
    let _ = ff.kill();
    let _ = ff.wait();
    drop(t.rt.enter());
}

/// The first viewer of an edge arriving late in an event: the origin replays a window of
/// more objects than it lets be in flight at once (32 parts), and the edge must get it in
/// one subscription. (It used to count as lagging, so the edge resubscribed into the same
/// window again and again and viewers got 503s.)
#[test]
fn a_late_first_viewer_gets_a_long_window_in_one_subscription() {
    let t = Topology::start("late-viewer", &["eu-west"], |_| {});
    // 2 s keyframes: 6 segments of 10 parts in the window.
    let mut ff = common::ffmpeg_publish_gop(&t.rtmp(), 30, "320x180", 60);
    let origin_media = format!(
        "http://127.0.0.1:{}/live/ev/source/index.m3u8",
        t.origin().http_addr.port()
    );
    // More than 32 parts in the origin's window before anyone asks the edge.
    // (A segment's parts leave the playlist after a while; its 10 parts stay in the window.)
    wait_until(40, "40 parts at the origin", || {
        10 * curl(&origin_media).1.matches("#EXTINF").count() >= 40
    });
    let started = Instant::now();
    let (code, pl) = curl(&t.edge_url(0, "/live/ev/source/index.m3u8"));
    assert_eq!(code, 200, "{pl}");
    // The whole window, up to the live edge: not just the window's first part.
    assert!(pl.matches("#EXTINF").count() >= 4, "the whole window: {pl}");
    assert!(pl.contains("#EXT-X-PART:"), "{pl}");
    println!("the first playlist at the edge took {:?}", started.elapsed());
    std::thread::sleep(Duration::from_secs(2));
    let health: serde_json::Value = serde_json::from_slice(&body(&t.edge_url(0, "/healthz"))).unwrap();
    assert_eq!(health["upstream"]["resubscribes"], 0, "{health}");
    let ledger = t.origin().relay.as_ref().unwrap().ledger();
    assert_eq!(ledger.repeats(), 0, "every object once");
    let _ = ff.kill();
    let _ = ff.wait();
    drop(t.rt.enter());
}

#[test]
fn an_event_the_operator_ends_ends_at_the_edge_too() {
    let t = Topology::start("ended", &["eu-west"], |_| {});
    let mut ff = publish(&t.rtmp(), 30);
    let media = t.edge_url(0, "/live/ev/source/index.m3u8");
    wait_until(20, "the edge's media playlist", || curl(&media).0 == 200);
    t.origin().events.get("ev").expect("the event").end();
    let mut pl = String::new();
    wait_until(10, "EXT-X-ENDLIST at the edge", || {
        pl = curl(&media).1;
        pl.contains("#EXT-X-ENDLIST")
    });
    if let Err(v) = popcast_packager::hls::check::check_media(&pl) {
        panic!("{v:?}\n{pl}");
    }
    let _ = ff.kill();
    let _ = ff.wait();
    drop(t.rt.enter());
}

/// hls.js in Chromium (`play.mjs`, low-latency, expecting a live stream) playing `url` for
/// `seconds`, with `extra` arguments; prints its one-line report under `what` and fails the
/// test when it did not play. The process output and the report line.
fn play_hlsjs(
    harness: &std::path::Path,
    url: &str,
    seconds: u32,
    extra: &[&str],
    what: &str,
) -> (std::process::Output, String) {
    let out = Command::new("node")
        .arg(harness.join("play.mjs"))
        .args([
            "--url",
            url,
            "--seconds",
            &seconds.to_string(),
            "--low-latency",
            "--expect-live",
        ])
        .args(extra)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = stdout.lines().last().unwrap_or("").to_string();
    println!("{what}: {report}");
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out, report)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_ticketed_event_plays_at_the_edge_only_with_a_valid_token() {
    use popcast_packager::token::EventKey;
    let harness = browser_harness();
    let t = Topology::start("tickets", &["eu-west"], |_| {});
    let mut ff = publish(&t.rtmp(), 40);
    let (k1, k2) = (
        (
            "k1".to_string(),
            Bytes::from_static(b"first event key, thirty-two bytes"),
        ),
        (
            "k2".to_string(),
            Bytes::from_static(b"second event key, thirty-two byte"),
        ),
    );
    let ev = t.origin().events.get("ev").unwrap();
    ev.set_tickets(Some(vec![k1.clone()]));
    t.origin().events.touch();
    let key1 = EventKey::new(&k1.0, &k1.1).unwrap();
    let token = key1.mint("ev", unix_now() + 600, Some("ticket-1")).unwrap();
    let master = t.edge_url(0, "/live/ev/master.m3u8");
    let with = |url: &str, token: &str| format!("{url}?token={token}");
    wait_until(20, "the edge's playlist for a token holder", || {
        curl(&with(&master, &token)).0 == 200
    });

    // Refused, each with its reason.
    let refusals = [
        (master.clone(), "ticketed"),
        (with(&master, "garbage"), "malformed"),
        (
            with(
                &master,
                &EventKey::new("k1", b"not the event's key, 32 bytes long")
                    .unwrap()
                    .mint("ev", unix_now() + 600, None)
                    .unwrap(),
            ),
            "signature",
        ),
        (
            with(&master, &key1.mint("ev", unix_now() - 1, None).unwrap()),
            "expired",
        ),
        (
            with(&master, &key1.mint("other", unix_now() + 600, None).unwrap()),
            "another event",
        ),
    ];
    for (url, why) in &refusals {
        let (code, body) = curl(url);
        assert_eq!(code, 403, "{url}: {body}");
        assert!(body.contains(why), "{url}: {body} (wanted {why:?})");
    }

    // A token holder's playlists carry the token into every URI, and those URIs work.
    let (_, mv) = curl(&with(&master, &token));
    let media_uri = mv
        .lines()
        .find(|l| l.starts_with("source/index.m3u8"))
        .expect("source playlist");
    assert!(media_uri.ends_with(&format!("?token={token}")), "{mv}");
    let (code, media) = curl(&t.edge_url(0, &format!("/live/ev/{media_uri}")));
    assert_eq!(code, 200, "{media}");
    let part = media
        .lines()
        .filter(|l| l.starts_with("#EXT-X-PART:"))
        .filter_map(|l| l.split("URI=\"").nth(1))
        .map(|u| u.split('"').next().unwrap().to_string())
        .next_back()
        .expect("a part");
    assert!(part.ends_with(&format!("?token={token}")), "{media}");
    assert_eq!(curl(&t.edge_url(0, &format!("/live/ev/source/{part}"))).0, 200);
    // A bearer header does as well as the query.
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(&master)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");

    // hls.js in Chromium plays it from the tokenized multivariant URL.
    play_hlsjs(
        &harness,
        &with(&master, &token),
        8,
        &[],
        "hls.js with a viewer token through the edge",
    );

    // The key rotates: tokens of the old key hold while it is kept, then stop.
    ev.set_tickets(Some(vec![k2.clone(), k1.clone()]));
    t.origin().events.touch();
    let token2 = EventKey::new(&k2.0, &k2.1)
        .unwrap()
        .mint("ev", unix_now() + 600, None)
        .unwrap();
    wait_until(10, "the new key at the edge", || {
        curl(&with(&master, &token2)).0 == 200
    });
    assert_eq!(curl(&with(&master, &token)).0, 200, "the old key is still held");
    ev.set_tickets(Some(vec![k2]));
    t.origin().events.touch();
    wait_until(10, "the old key dropped at the edge", || {
        curl(&with(&master, &token)).0 == 403
    });
    assert_eq!(curl(&with(&master, &token2)).0, 200);
    let _ = ff.kill();
    let _ = ff.wait();
    drop(t.rt.enter());
}

#[test]
fn scheduled_events_are_placed_on_edges_of_their_regions_and_released_after() {
    use popcast_origin::live::Schedule;
    let t = Topology::start("placement", &["eu-west", "us-east"], |c| {
        c.edge.slot_release_grace_secs = 1;
    });
    let mut ff = publish(&t.rtmp(), 30);
    let ev = t.origin().events.get("ev").unwrap();
    let held = |i: usize| t.edges[i].slots.get("ev").is_some_and(|s| !s.is_released());
    // The creator is on before the schedules below (a schedule's publish window would refuse
    // a publisher arriving early).
    let origin_master = format!(
        "http://127.0.0.1:{}/live/ev/master.m3u8",
        t.origin().http_addr.port()
    );
    wait_until(20, "the origin's playlist", || curl(&origin_master).0 == 200);
    // Without a schedule (an event from the config file) every edge holds it.
    wait_until(10, "both edges provisioned", || held(0) && held(1));
    // The operator API lists both edges with their regions.
    let out = Command::new("curl")
        .args([
            "-s",
            "-m",
            "10",
            "-H",
            &format!("Authorization: Bearer {OPERATOR}"),
        ])
        .arg(format!(
            "http://127.0.0.1:{}/api/v1/edges",
            t.origin().http_addr.port()
        ))
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let regions: Vec<&str> = listed["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["region"].as_str())
        .collect();
    assert_eq!(regions, ["eu-west", "us-east"], "{listed}");
    let now = unix_now() as i64;
    let schedule = |start: i64, end: i64| Schedule {
        publish_from: start - 120,
        start,
        end,
        regions: vec!["eu-west".into()],
        viewer_cap: 50,
    };
    // Starting in a day: nobody holds it yet.
    ev.set_schedule(Some(schedule(now + 86_400, now + 88_200)));
    t.origin().events.touch();
    wait_until(10, "both slots released", || !held(0) && !held(1));
    // Starting within the lead time (2 minutes): the eu-west edge only.
    ev.set_schedule(Some(schedule(now + 60, now + 1_860)));
    t.origin().events.touch();
    wait_until(10, "eu-west provisioned", || held(0));
    wait_until(20, "playback at eu-west", || {
        curl(&t.edge_url(0, "/live/ev/master.m3u8")).0 == 200
    });
    assert!(!held(1), "us-east is not in the event's regions");
    let (code, body) = curl(&t.edge_url(1, "/live/ev/master.m3u8"));
    assert_eq!(code, 404, "{body}");
    // Ended past its grace period: released, and after the edge's own grace its memory freed.
    ev.set_schedule(Some(schedule(now - 4_000, now - 400)));
    t.origin().events.touch();
    wait_until(10, "eu-west released", || !held(0));
    wait_until(10, "the slot and its memory gone", || {
        t.edges[0].slots.get("ev").is_none()
    });
    let _ = ff.kill();
    let _ = ff.wait();
    drop(t.rt.enter());
}

/// `popcast event ...` against the topology's origin; its stdout as `key: value` lines.
fn operator(t: &Topology, args: &[&str]) -> Vec<(String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_popcast"))
        .arg("event")
        .args(args)
        .args([
            "--origin",
            &format!("http://127.0.0.1:{}", t.origin().http_addr.port()),
        ])
        .env("POPCAST_OPERATOR_TOKEN", OPERATOR)
        .output()
        .expect("run popcast");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "popcast event {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn field<'a>(lines: &'a [(String, String)], key: &str) -> &'a str {
    lines
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key:?} in {lines:?}"))
}

/// GET with curl without following redirects: status, `Location`, body.
fn curl_location(url: &str) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "10", "-w", "\n%{http_code} %{redirect_url}", url])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", "0"));
    let (code, location) = tail.split_once(' ').unwrap_or((tail, ""));
    (code.parse().unwrap_or(0), location.to_string(), body.to_string())
}

/// The issue's whole story: an operator creates a ticketed event with the CLI, edges in its
/// two regions get slots before it starts, the creator publishes with the key, a viewer with
/// a minted token plays through `/play` in hls.js, viewers without a good token are refused,
/// the operator ends it, the slots go and their memory with them, and the calendar lists it.
#[test]
fn a_ticketed_event_from_the_cli_is_provisioned_played_through_play_refused_ended_and_listed() {
    let harness = browser_harness();
    let t = Topology::start_tuned(
        "event-story",
        &["eu-west", "us-east", "ap-south"],
        |c| c.events.release_grace_secs = 1,
        |c| c.edge.slot_release_grace_secs = 1,
    );
    let origin = format!("http://127.0.0.1:{}", t.origin().http_addr.port());
    let health = |i: usize| -> serde_json::Value {
        serde_json::from_slice(&body(&t.edge_url(i, "/healthz"))).expect("edge health JSON")
    };
    let slot = |i: usize| -> Option<serde_json::Value> {
        health(i)["slots"]
            .as_array()?
            .iter()
            .find(|s| s["event"] == "launch")
            .cloned()
    };

    // Created from the CLI, starting in 90 s: inside the 2-minute lead, so placed at once.
    let made = operator(
        &t,
        &[
            "create",
            "--id",
            "launch",
            "--title",
            "Launch clinic",
            "--start",
            "+90s",
            "--duration",
            "15",
            "--region",
            "eu-west",
            "--region",
            "us-east",
            "--access",
            "ticketed",
        ],
    );
    let key = field(&made, "stream key").to_string();
    wait_until(10, "slots on the eu-west and us-east edges", || {
        slot(0).is_some() && slot(1).is_some()
    });
    assert!(slot(2).is_none(), "ap-south is not one of the event's regions");
    assert_eq!(slot(0).unwrap()["ticketed"], true);
    let state = |id: &str| field(&operator(&t, &["show", id]), "state").to_string();
    // The lifecycle (a 1 s tick) records what the placement did; the start is still ahead.
    wait_until(5, "the event provisioning", || state("launch") == "provisioning");

    // The creator publishes with the key; a viewer token is minted with the CLI.
    let mut ff = publish(
        &format!("rtmp://127.0.0.1:{}/live/{key}", t.origin().rtmp_addr.port()),
        60,
    );
    wait_until(20, "the event live", || state("launch") == "live");
    let minted = operator(&t, &["token", "launch", "--ttl", "600", "--session", "ticket-42"]);
    let token = field(&minted, "token").to_string();
    assert!(field(&minted, "play").ends_with(&format!("/play/launch?token={token}")));

    // /play sends the viewer to the edge of their region with the token; JSON lists the rest.
    let (code, location, why) = curl_location(&format!("{origin}/play/launch?region=us-east&token={token}"));
    assert_eq!(code, 302, "{why}");
    assert_eq!(
        location,
        t.edge_url(1, &format!("/live/launch/master.m3u8?token={token}"))
    );
    let (code, json) = curl(&format!(
        "{origin}/play/launch?region=eu-west&format=json&token={token}"
    ));
    assert_eq!(code, 200, "{json}");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["primary"]["region"], "eu-west", "{json}");
    let fallbacks: Vec<&str> = json["fallbacks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["region"].as_str())
        .collect();
    assert_eq!(fallbacks, ["us-east"], "ap-south holds no slot: {json}");
    wait_until(20, "the playlist at the us-east edge", || {
        curl(&location).0 == 200
    });

    // hls.js in Chromium, given only the /play URL, follows it to us-east and plays.
    let served_before =
        slot(1).unwrap()["hits"].as_u64().unwrap() + slot(1).unwrap()["misses"].as_u64().unwrap();
    play_hlsjs(
        &harness,
        &format!("{origin}/play/launch?region=us-east&token={token}"),
        8,
        &[],
        "hls.js through /play with a minted token",
    );
    let s = slot(1).unwrap();
    let served = s["hits"].as_u64().unwrap() + s["misses"].as_u64().unwrap();
    assert!(
        served > served_before + 10,
        "the viewer was served by us-east: {served_before} → {served}"
    );

    // No token, a forged one, an expired one, another event's: 403 at the edge and at /play.
    let forged = {
        let (head, _) = token.rsplit_once('.').unwrap();
        format!("{head}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    };
    let stale = popcast_packager::token::EventKey::new("k1", b"some other key, thirty-two bytes!")
        .unwrap()
        .mint("launch", unix_now() - 5, None)
        .unwrap();
    let master = t.edge_url(1, "/live/launch/master.m3u8");
    for (query, why) in [
        (String::new(), "ticketed"),
        (format!("?token={forged}"), "signature"),
        (format!("?token={stale}"), ""),
    ] {
        let (code, body) = curl(&format!("{master}{query}"));
        assert_eq!(code, 403, "edge {query}: {body}");
        assert!(body.contains(why), "edge {query}: {body}");
        let (code, _, body) = curl_location(&format!(
            "{origin}/play/launch?region=us-east{}",
            query.replace('?', "&")
        ));
        assert_eq!(code, 403, "/play {query}: {body}");
    }
    assert!(slot(1).unwrap()["token_refusals"].as_u64().unwrap() >= 3);

    // Ended from the CLI: both slots released, and after the edges' grace their memory freed.
    // Edges fetch on demand: us-east, where the viewer watched, holds the media.
    let held_before = health(1)["bytes_held"].as_u64().unwrap();
    assert!(slot(1).unwrap()["bytes_held"].as_u64().unwrap() > 0);
    assert_eq!(field(&operator(&t, &["end", "launch"]), "launch"), "ended");
    wait_until(15, "both slots and their memory gone", || {
        slot(0).is_none() && slot(1).is_none()
    });
    let held_after = health(1)["bytes_held"].as_u64().unwrap();
    assert!(
        held_after < held_before,
        "us-east held {held_before} bytes before the end, {held_after} after"
    );
    let (code, _, body) = curl_location(&format!("{origin}/play/launch?token={token}"));
    assert_eq!(code, 410, "{body}");

    // The calendar lists it, marked ticketed, with its watch link.
    let (code, ics) = curl(&format!("{origin}/calendar.ics"));
    assert_eq!(code, 200);
    let ics = ics.replace("\r\n ", "");
    assert!(ics.contains("UID:launch@popcast"), "{ics}");
    assert!(ics.contains("SUMMARY:Launch clinic"), "{ics}");
    assert!(ics.contains("a ticket is needed to watch"), "{ics}");
    let _ = ff.kill();
    let _ = ff.wait();
    drop(t.rt.enter());
}

/// The wall-clock instant in the first `prft` box of a CMAF part: when its first frame
/// reached the origin.
fn prft(part: &[u8]) -> Option<std::time::SystemTime> {
    let mut at = 0;
    while at + 8 <= part.len() {
        let size = u32::from_be_bytes(part[at..at + 4].try_into().ok()?) as usize;
        if size < 8 || at + size > part.len() {
            return None;
        }
        if &part[at + 4..at + 8] == b"prft" && size >= 24 {
            let ntp = u64::from_be_bytes(part[at + 16..at + 24].try_into().ok()?);
            return Some(popcast_packager::cmaf::from_ntp_timestamp(ntp));
        }
        at += size;
    }
    None
}

/// The player SDK, headless, through an edge for 30 s: no stall, and its live-latency figure
/// (wall clock − the playlist's program date-time at the playhead) checked against an
/// independent one: wall clock − the instant the frame at the playhead reached the origin,
/// read from the `prft` boxes of the parts the player received.
#[test]
fn the_player_sdk_plays_30_s_through_an_edge_without_a_stall_and_its_latency_holds_up() {
    use popcast_player::session::{CmcdMode, SessionConfig, watch};
    let t = Topology::start("player-sdk", &["eu-west"], |_| {});
    let mut ff = publish(&t.rtmp(), 50);
    let media = t.edge_url(0, "/live/ev/source/index.m3u8");
    wait_until(30, "three segments at the edge", || {
        curl(&media).1.matches("#EXTINF").count() >= 3
    });
    let mut cfg = SessionConfig::new(t.edge_url(0, "/live/ev/master.m3u8"), Duration::from_secs(30));
    cfg.record_parts = true;
    cfg.cmcd = CmcdMode::Query;
    cfg.session_id = "player-sdk-test".into();
    cfg.content_id = Some("ev".into());
    let qoe = t.rt.block_on(watch(cfg)).expect("the session starts");
    let _ = ff.kill();
    let _ = ff.wait();
    let p50 = qoe.latency_quantile(0.5).unwrap_or(f64::NAN);
    println!(
        "player-sdk: startup {:?}, played {:.1} s, stalls {} ({:?}), latency p50 {p50:.3} s p90 {:.3} s, {} parts, {} requests, {} errors ({:?})",
        qoe.startup,
        qoe.played.as_secs_f64(),
        qoe.stalls,
        qoe.stall_time,
        qoe.latency_quantile(0.9).unwrap_or(f64::NAN),
        qoe.parts.len(),
        qoe.requests,
        qoe.errors,
        qoe.last_error
    );
    assert_eq!(qoe.stalls, 0, "{:?}", qoe.stall_time);
    assert_eq!(qoe.errors, 0, "{:?}", qoe.last_error);
    assert!(qoe.played >= Duration::from_secs(27), "played {:?}", qoe.played);
    assert!(qoe.startup.is_some_and(|s| s < Duration::from_secs(5)));
    assert!(qoe.latency.len() >= 60, "{} latency samples", qoe.latency.len());
    // The independent figure for every sample. It carries the jitter of frame arrivals at the
    // origin (the encoder's pacing), which the program date-times smooth out, so the check is
    // on the median difference; the worst is printed.
    let mut worst = Duration::ZERO;
    let mut diffs = Vec::new();
    for s in &qoe.latency {
        let part = qoe
            .parts
            .iter()
            .find(|p| p.media_start <= s.playhead && s.playhead < p.media_start + p.duration)
            .or_else(|| qoe.parts.iter().rev().find(|p| p.media_start <= s.playhead))
            .expect("a part under the playhead");
        let arrived = prft(&part.body).expect("a prft box in every part");
        let at_playhead = arrived + (s.playhead - part.media_start);
        let independent = s.wall.duration_since(at_playhead).expect("behind the wall clock");
        let diff = independent.as_secs_f64() - s.latency.as_secs_f64();
        worst = worst.max(Duration::from_secs_f64(diff.abs()));
        diffs.push(diff);
    }
    diffs.sort_by(f64::total_cmp);
    let median = diffs[diffs.len() / 2];
    println!(
        "player-sdk latency vs prft: median difference {:.1} ms, worst {worst:?}, over {} samples",
        median * 1000.0,
        diffs.len()
    );
    assert!(median.abs() <= 0.1, "median difference {median:.3} s");
    drop(t.rt.enter());
}

/// The last complete part listed in a media playlist.
fn last_part(playlist: &str) -> String {
    playlist
        .lines()
        .filter(|l| l.starts_with("#EXT-X-PART:"))
        .filter_map(|l| l.split("URI=\"").nth(1))
        .map(|u| u.split('"').next().unwrap().to_string())
        .next_back()
        .expect("a part")
}

#[test]
fn hlsjs_plays_through_an_edge_over_http2_with_tls_and_a_part_arrives_over_http3() {
    let harness = browser_harness();
    let pki_dir = temp_dir("tls-pki");
    let (ca, leaf) = common::tls::test_pki(&pki_dir);
    let spki = common::tls::spki_sha256(&leaf.cert_path);
    let t = Topology::start("tls", &["eu-west"], |c| c.edge.tls = Some(leaf.clone()));
    let h3 = t.edges[0].h3_addr.expect("TLS on, so HTTP/3 on");
    let mut ff = publish(&t.rtmp(), 40);
    let master = t.edge_https_url(0, "/live/ev/master.m3u8");
    let curl_tls = |url: &str| {
        let out = Command::new("curl")
            .args(["-s", "-m", "10", "--http2", "--cacert"])
            .arg(&ca)
            .args(["-w", "\n%{http_code} %{http_version}", url])
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    wait_until(20, "the edge's multivariant playlist over HTTPS", || {
        curl_tls(&master).ends_with("200 2")
    });

    // A part over HTTP/3 (curl_cffi's CLI, the edge's certificate checked against the test
    // CA) is the origin's part, byte for byte.
    // The newest part the edge lists (so it holds it), named from its playlist over HTTPS.
    let media = t.edge_https_url(0, "/live/ev/source/index.m3u8");
    let mut pl = String::new();
    wait_until(20, "a part in the edge's media playlist", || {
        pl = curl_tls(&media);
        pl.ends_with("200 2") && pl.contains("#EXT-X-PART:")
    });
    let path = format!("/live/ev/source/{}", last_part(&pl));
    let over_h3 = common::tls::h3_get(&format!("https://localhost:{}{path}", h3.port()), &ca, &pki_dir)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(over_h3.status, 200, "{path}: {over_h3:?}");
    assert_eq!(over_h3.header("content-type"), Some("video/mp4"));
    let from_origin = body(&format!("http://127.0.0.1:{}{path}", t.origin().http_addr.port()));
    assert!(!from_origin.is_empty());
    assert_eq!(over_h3.body, from_origin, "{path} over HTTP/3");
    println!(
        "{path} over HTTP/3: {} bytes, same as the origin's",
        over_h3.body.len()
    );

    // hls.js in Chromium, low-latency mode, through the edge over HTTPS; Chromium trusts
    // the edge's certificate by its key (QUIC is off in the harness, so this is TCP + ALPN).
    let (out, report) = play_hlsjs(
        &harness,
        &master,
        12,
        &["--trust-spki", &spki],
        "hls.js through the edge over TLS",
    );
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        if line.contains("hls.js") || line.contains("HTTP ") {
            println!("  {line}");
        }
    }
    let r: serde_json::Value = serde_json::from_str(&report).expect("one JSON line");
    assert_eq!(r["ok"], true, "{report}");
    let protocols = r["protocols"].as_object().expect("protocols");
    assert!(
        protocols.get("h2").and_then(|n| n.as_u64()).unwrap_or(0) >= 5,
        "every response over HTTP/2: {report}"
    );
    assert_eq!(protocols.len(), 1, "only HTTP/2: {report}");
    assert!(
        r["requests"]["part"].as_u64().unwrap_or(0) > 0,
        "hls.js fetched parts: {report}"
    );

    // The player SDK over HTTPS with HTTP/2 and over HTTP/3, trusting the test CA.
    for (version, protocol) in [
        (popcast_player::http::HttpVersion::Http2, "h2"),
        (popcast_player::http::HttpVersion::Http3, "h3"),
    ] {
        let mut cfg = popcast_player::SessionConfig::new(master.clone(), Duration::from_secs(6));
        cfg.http = version;
        cfg.roots = Some(popcast_player::http::roots_from_pem(&ca).unwrap());
        let qoe =
            t.rt.block_on(popcast_player::watch(cfg))
                .expect("the session starts");
        println!(
            "player-sdk over {protocol}: played {:.1} s, {} stalls, {} errors ({:?}), responses {:?}",
            qoe.played.as_secs_f64(),
            qoe.stalls,
            qoe.errors,
            qoe.last_error,
            qoe.protocols
        );
        assert_eq!(
            (qoe.stalls, qoe.errors),
            (0, 0),
            "{protocol}: {:?}",
            qoe.last_error
        );
        assert!(
            qoe.played >= Duration::from_secs(4),
            "{protocol}: {:?}",
            qoe.played
        );
        assert_eq!(
            qoe.protocols.keys().copied().collect::<Vec<_>>(),
            [protocol],
            "every response over {protocol}"
        );
    }
    let _ = ff.kill();
    let _ = ff.wait();
    let _ = std::fs::remove_dir_all(&pki_dir);
    drop(t.rt.enter());
}

/// What the simulated viewers saw, summed.
#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    parts: AtomicU64,
    part_bytes: AtomicU64,
    errors: AtomicU64,
    /// Why requests failed: "status path" or "timeout path", counted.
    why: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Seen {
    fn failed(&self, why: String) {
        *self.why.lock().unwrap().entry(why).or_default() += 1;
    }
}

/// The preload hint's part (msn, part) in a media playlist.
fn hint(playlist: &str) -> Option<(u64, u32)> {
    let line = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:TYPE=PART"))?;
    let uri = line.split("URI=\"").nth(1)?.split('"').next()?;
    let (msn, rest) = uri.split_once('.')?;
    let part = rest.strip_suffix(".m4s")?;
    Some((msn.parse().ok()?, part.parse().ok()?))
}

/// An HTTP/1.1 keep-alive client that reconnects when its connection breaks (a torn body
/// aborts it), as browsers do.
struct Client {
    addr: std::net::SocketAddr,
    send: Option<hyper::client::conn::http1::SendRequest<Empty<Bytes>>>,
}

impl Client {
    async fn get(&mut self, path: String, seen: &Seen) -> Option<Bytes> {
        seen.requests.fetch_add(1, Ordering::Relaxed);
        let kind = path
            .rsplit('/')
            .next()
            .unwrap_or("")
            .split('?')
            .next()
            .unwrap_or("");
        let kind = kind.split('.').next_back().unwrap_or("").to_string();
        if self.send.as_ref().is_none_or(|s| s.is_closed()) {
            let tcp = tokio::net::TcpStream::connect(self.addr).await.ok();
            let io = tcp.map(hyper_util::rt::TokioIo::new);
            let Some(Ok((send, conn))) = (match io {
                Some(io) => Some(hyper::client::conn::http1::handshake(io).await),
                None => None,
            }) else {
                seen.failed(format!("connect {kind}"));
                return None;
            };
            tokio::spawn(conn);
            self.send = Some(send);
        }
        let send = self.send.as_mut()?;
        let req = hyper::Request::get(path.as_str())
            .header("host", "127.0.0.1")
            .body(Empty::<Bytes>::new())
            .ok()?;
        let Ok(Ok(res)) = tokio::time::timeout(Duration::from_secs(10), send.send_request(req)).await else {
            self.send = None;
            seen.failed(format!("no answer {kind}"));
            return None;
        };
        let ok = res.status() == 200;
        if !ok {
            seen.failed(format!("{} {kind}", res.status()));
        }
        let body = match tokio::time::timeout(Duration::from_secs(10), res.into_body().collect()).await {
            Ok(Ok(b)) => b.to_bytes(),
            _ => {
                self.send = None;
                seen.failed(format!("torn body {kind}"));
                return None;
            }
        };
        ok.then_some(body)
    }
}

/// One viewer, following the live edge like an LL-HLS player: a blocking reload for the
/// next part, then that part, for `secs`; after an error it rejoins from a plain reload.
async fn viewer(addr: std::net::SocketAddr, secs: u64, seen: Arc<Seen>) {
    let fail = |seen: &Seen| {
        seen.errors.fetch_add(1, Ordering::Relaxed);
    };
    let mut client = Client { addr, send: None };
    let seen_ref = &*seen;
    let mut get = async |path: String| client.get(path, seen_ref).await;
    let until = Instant::now() + Duration::from_secs(secs);
    if get("/live/ev/master.m3u8".into()).await.is_none()
        || get("/live/ev/source/init.mp4".into()).await.is_none()
    {
        return fail(&seen);
    }
    let mut next = None;
    let mut last = (0, 0);
    while Instant::now() < until {
        // (Re)join the live edge from a plain reload, as a player does after an error.
        let Some((msn, part)) = next else {
            match get("/live/ev/source/index.m3u8".into()).await {
                Some(pl) => next = hint(&String::from_utf8_lossy(&pl)),
                None => {
                    fail(&seen);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            continue;
        };
        let blocking = format!("/live/ev/source/index.m3u8?_HLS_msn={msn}&_HLS_part={part}");
        let Some(pl) = get(blocking).await else {
            fail(&seen);
            next = None;
            continue;
        };
        // A hint past the end of its segment is answered with the next segment's first
        // part (the playlist says which), as players read it.
        let text = String::from_utf8_lossy(&pl).to_string();
        let (msn, part) = if text.contains(&format!("URI=\"{msn}.{part}.m4s\"")) {
            (msn, part)
        } else {
            (msn + 1, 0)
        };
        let Some(body) = get(format!("/live/ev/source/{msn}.{part}.m4s")).await else {
            fail(&seen);
            next = None;
            continue;
        };
        // Numbers only go forward, whatever happens upstream.
        if (msn, part) <= last {
            seen.failed(format!("went back from {last:?} to {:?}", (msn, part)));
            fail(&seen);
        }
        last = (msn, part);
        seen.parts.fetch_add(1, Ordering::Relaxed);
        seen.part_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        next = hint(&text);
    }
}

#[test]
fn two_edges_hold_200_viewers_each_and_fetch_every_object_once() {
    const VIEWERS: usize = 200;
    const SECS: u64 = 30;
    let t = Topology::start("fanout", &["eu-west", "us-east"], |_| {});
    let mut ff = publish(&t.rtmp(), (SECS + 20) as u32);
    wait_until(20, "the origin's first segment", || {
        curl(&format!(
            "http://127.0.0.1:{}/live/ev/master.m3u8",
            t.origin().http_addr.port()
        ))
        .0 == 200
    });
    let seen: Vec<Arc<Seen>> = (0..2).map(|_| Arc::default()).collect();
    t.rt.block_on(async {
        let mut all = Vec::new();
        for (i, edge) in t.edges.iter().enumerate() {
            for _ in 0..VIEWERS {
                all.push(tokio::spawn(viewer(edge.http_addr, SECS, seen[i].clone())));
            }
        }
        for v in all {
            v.await.unwrap();
        }
    });
    let _ = ff.kill();
    let _ = ff.wait();
    let ledger = t.origin().relay.as_ref().unwrap().ledger();
    let counts = ledger.counts();
    for (i, name) in ["eu-west", "us-east"].iter().enumerate() {
        let s = &seen[i];
        let (requests, parts, errors) = (
            s.requests.load(Ordering::Relaxed),
            s.parts.load(Ordering::Relaxed),
            s.errors.load(Ordering::Relaxed),
        );
        eprintln!(
            "{name}: {VIEWERS} viewers, {requests} requests, {parts} parts ({} bytes), {errors} errors {:?}",
            s.part_bytes.load(Ordering::Relaxed),
            s.why.lock().unwrap()
        );
        assert_eq!(errors, 0, "{name}");
        // Every viewer followed the live edge part by part for the whole run (5 parts/s).
        assert!(
            parts >= (VIEWERS as u64) * SECS * 5 * 8 / 10,
            "{name}: {parts} parts"
        );
        let sent: Vec<_> = counts.iter().filter(|(k, _)| k.node == *name).collect();
        // What the viewers fetched crossed the relay, each part exactly once per edge.
        assert!(
            sent.len() as u64 >= SECS * 5 * 8 / 10,
            "{name}: {} objects",
            sent.len()
        );
        assert!(sent.iter().all(|(_, n)| *n == 1), "{name}: {sent:?}");
        let slot = t.edges[i].slots.get("ev").unwrap();
        assert_eq!(
            slot.counters.upstream_fetches.load(Ordering::Relaxed),
            1,
            "{name}: one subscription"
        );
    }
    assert_eq!(ledger.repeats(), 0);
}

/// Starts `n` viewers on `edge` for `secs`, each with its own tally.
fn viewers(
    t: &Topology,
    edge: usize,
    n: usize,
    secs: u64,
) -> (Vec<Arc<Seen>>, Vec<tokio::task::JoinHandle<()>>) {
    let seen: Vec<Arc<Seen>> = (0..n).map(|_| Arc::default()).collect();
    let handles = seen
        .iter()
        .map(|s| t.rt.spawn(viewer(t.edges[edge].http_addr, secs, s.clone())))
        .collect();
    (seen, handles)
}

fn parts(seen: &[Arc<Seen>]) -> Vec<u64> {
    seen.iter().map(|s| s.parts.load(Ordering::Relaxed)).collect()
}

#[test]
fn viewers_ride_through_a_dropped_link_and_an_origin_restart() {
    let mut t = Topology::start("faults", &["eu-west"], |_| {});
    let mut ff = publish(&t.rtmp(), 60);
    let origin_master = |t: &Topology| {
        format!(
            "http://127.0.0.1:{}/live/ev/master.m3u8",
            t.origin().http_addr.port()
        )
    };
    wait_until(20, "the origin's first segment", || {
        curl(&origin_master(&t)).0 == 200
    });
    let (seen, handles) = viewers(&t, 0, 20, 36);
    std::thread::sleep(Duration::from_secs(6));

    // 1. The relay link drops: the edge reconnects and resumes from the parts it holds.
    let before = parts(&seen);
    assert!(t.origin().relay.as_ref().unwrap().disconnect("eu-west"));
    std::thread::sleep(Duration::from_secs(8));
    let after_drop = parts(&seen);
    assert!(
        before.iter().zip(&after_drop).all(|(b, a)| a >= &(b + 20)),
        "every viewer kept playing through the drop: {before:?} -> {after_drop:?}"
    );
    let link = t.edges[0].link.clone();
    assert!(link.connections.load(Ordering::Relaxed) >= 2);

    // 2. The origin restarts (same relay address and certificate); the creator's encoder
    // reconnects; the edge comes back and numbers on from where its viewers are.
    let _ = ff.kill();
    let _ = ff.wait();
    t.restart_origin();
    let mut ff = publish(&t.rtmp(), 40);
    wait_until(20, "the restarted origin's first segment", || {
        curl(&origin_master(&t)).0 == 200
    });
    t.rt.block_on(async {
        for h in handles {
            h.await.unwrap();
        }
    });
    let _ = ff.kill();
    let _ = ff.wait();
    let end = parts(&seen);
    for (i, s) in seen.iter().enumerate() {
        let why = s.why.lock().unwrap();
        eprintln!(
            "viewer {i}: {} parts, {} errors {why:?}",
            end[i],
            s.errors.load(Ordering::Relaxed)
        );
        assert!(
            !why.keys().any(|k| k.starts_with("went back")),
            "viewer {i}: {why:?}"
        );
        assert!(
            end[i] >= after_drop[i] + 20,
            "viewer {i} plays again after the restart: {} -> {}",
            after_drop[i],
            end[i]
        );
    }
    assert!(link.connections.load(Ordering::Relaxed) >= 3);
    eprintln!(
        "edge link: {} connections, {} torn objects, {} resubscribes",
        link.connections.load(Ordering::Relaxed),
        link.torn_objects.load(Ordering::Relaxed),
        link.resubscribes.load(Ordering::Relaxed)
    );
}

#[test]
fn a_slot_past_its_memory_budget_slides_its_window_early() {
    const BUDGET: u64 = 300_000;
    let t = Topology::start("budget", &["eu-west"], |c| {
        c.edge.slot_memory_budget_bytes = BUDGET
    });
    let mut ff = publish(&t.rtmp(), 20);
    wait_until(20, "the edge's media playlist", || {
        curl(&t.edge_url(0, "/live/ev/source/index.m3u8")).0 == 200
    });
    // Long enough for the origin's window (6 segments) to outgrow the budget.
    std::thread::sleep(Duration::from_secs(14));
    let slot = t.edges[0].slots.get("ev").unwrap();
    let trimmed = slot.counters.budget_trimmed_bytes.load(Ordering::Relaxed);
    let (_, edge_pl) = curl(&t.edge_url(0, "/live/ev/source/index.m3u8"));
    let (_, origin_pl) = curl(&format!(
        "http://127.0.0.1:{}/live/ev/source/index.m3u8",
        t.origin().http_addr.port()
    ));
    let _ = ff.kill();
    let _ = ff.wait();
    eprintln!(
        "budget {BUDGET}: held {} bytes, trimmed {trimmed}",
        slot.bytes_held()
    );
    assert!(trimmed > 0);
    if let Err(v) = popcast_packager::hls::check::check_media(&edge_pl) {
        panic!("{v:?}\n{edge_pl}");
    }
    let segments = |p: &str| p.matches("#EXTINF").count();
    assert!(
        segments(&edge_pl) < segments(&origin_pl),
        "edge:\n{edge_pl}\norigin:\n{origin_pl}"
    );
    assert!(segments(&edge_pl) >= 1);
}

#[test]
fn the_stream_success_rate_stalls_and_rebuffer_ratio_in_the_stats_equal_what_the_players_recorded() {
    use popcast_player::beacon::BeaconConfig;
    use popcast_player::session::{CmcdMode, SessionConfig, watch};
    const METRICS: &str = "relay-test-metrics-token";
    let t = Topology::start("qoe-stats", &["eu-west", "us-east"], |c| {
        c.qoe.metrics_token = Some(Secret::new(METRICS));
    });
    let mut ff = publish(&t.rtmp(), 60);
    for i in 0..2 {
        let media = t.edge_url(i, "/live/ev/source/index.m3u8");
        wait_until(30, "three segments at the edge", || {
            curl(&media).1.matches("#EXTINF").count() >= 3
        });
    }
    // Six viewers, three per edge; one on each edge reads at 12 kB/s, below the stream's
    // bitrate, so it must stall. All send CMCD and beacons; the figures compared below are
    // the ones each player recorded itself.
    let throttled = [1usize, 4];
    let sessions: Vec<_> = (0..6)
        .map(|i| {
            let mut cfg =
                SessionConfig::new(t.edge_url(i / 3, "/live/ev/master.m3u8"), Duration::from_secs(20));
            cfg.cmcd = CmcdMode::Query;
            cfg.session_id = format!("viewer-{i}");
            cfg.content_id = Some("ev".into());
            cfg.beacon = Some(BeaconConfig {
                every: Duration::from_secs(2),
                ..BeaconConfig::new("ev")
            });
            if throttled.contains(&i) {
                cfg.pace = Some(12_000);
            }
            t.rt.spawn(watch(cfg))
        })
        .collect();
    let qoes: Vec<_> = sessions
        .into_iter()
        .map(|s| t.rt.block_on(s).unwrap().expect("the session starts"))
        .collect();
    for (i, q) in qoes.iter().enumerate() {
        println!(
            "viewer-{i}: startup {:?}, stalls {} ({:?}), session {:?}, beacons {:?}",
            q.startup, q.stalls, q.stall_time, q.session, q.beacons
        );
        assert_eq!(
            q.beacons.accepted, q.beacons.sent,
            "viewer-{i}: every beacon accepted: {:?}",
            q.beacons
        );
        assert!(q.beacons.sent >= 2, "viewer-{i}: {:?}", q.beacons);
    }
    for i in throttled {
        assert!(
            qoes[i].stalls >= 1,
            "viewer-{i} is throttled below the bitrate and must stall"
        );
    }
    // What the players recorded, by the success rate's definition (README, packager::qoe).
    let ms = |d: Duration| d.as_millis() as u64;
    let playing: Vec<_> = qoes.iter().filter(|q| q.startup.is_some()).collect();
    let watch_ms = |q: &popcast_player::Qoe| ms(q.session.saturating_sub(q.startup.unwrap()));
    let qualified: Vec<_> = playing
        .iter()
        .filter(|q| watch_ms(q) >= 10_000 || q.stalls > 0)
        .collect();
    let clean = qualified.iter().filter(|q| q.stalls == 0).count();
    let stalls: u64 = qoes.iter().map(|q| u64::from(q.stalls)).sum();
    let stall_ms: u64 = playing.iter().map(|q| ms(q.stall_time)).sum();
    let watched_ms: u64 = playing.iter().map(|q| watch_ms(q)).sum();
    let expected_rate = clean as f64 / qualified.len() as f64;
    let expected_rebuffer = stall_ms as f64 / watched_ms as f64;

    // The origin's stats, once both edges have reported every session's end.
    let stats_url = format!(
        "http://127.0.0.1:{}/api/v1/events/ev/stats",
        t.origin().http_addr.port()
    );
    let mut stats = serde_json::Value::Null;
    wait_until(15, "every session's end in the stats", || {
        let (code, body) = get_with_token(&stats_url, OPERATOR);
        assert_eq!(code, 200, "{body}");
        stats = serde_json::from_str(&body).expect("JSON");
        stats["total"]["sessions_ended"] == 6
    });
    println!("stats: {}", stats["total"]);
    let total = &stats["total"];
    assert_eq!(total["sessions_started"], 6);
    assert_eq!(total["sessions_playing"], playing.len());
    assert_eq!(total["never_started"], 6 - playing.len());
    assert_eq!(total["qualified"], qualified.len());
    assert_eq!(total["clean"], clean);
    assert_eq!(total["stalls"], stalls);
    assert_eq!(total["stall_ms"], stall_ms);
    assert_eq!(total["watch_ms"], watched_ms);
    assert_eq!(total["beacons_refused"], 0);
    let rate = total["success_rate"].as_f64().expect("a success rate");
    let rebuffer = total["rebuffer_ratio"].as_f64().expect("a rebuffer ratio");
    println!(
        "success rate {rate:.4} (players: {expected_rate:.4}), rebuffer ratio {rebuffer:.4} (players: {expected_rebuffer:.4}), stalls {stalls}"
    );
    assert!((rate - expected_rate).abs() <= 0.01);
    assert!((rebuffer - expected_rebuffer).abs() <= 0.01 * expected_rebuffer.max(1e-9));
    assert!(rate < 1.0, "the throttled viewers stalled");
    // Each edge's share, and the regions they make up.
    for (region, range) in [("eu-west", 0..3), ("us-east", 3..6)] {
        let r = &stats["regions"][region];
        let want: u64 = qoes[range].iter().map(|q| u64::from(q.stalls)).sum();
        assert_eq!(r["sessions_started"], 3, "{region}");
        assert_eq!(r["stalls"], want, "{region}");
    }
    assert_eq!(stats["edges"].as_object().map(|e| e.len()), Some(2));
    assert!(total["latency_ms"]["count"].as_u64().unwrap_or(0) > 20);
    assert!(total["startup_ms"]["p50"].as_u64().is_some());
    assert!(total["bitrate_kbps"]["p50"].as_u64().is_some());
    assert!(
        total["buffer_ms"]["count"].as_u64() > Some(100),
        "CMCD bl from every video request"
    );
    assert!(total["throughput_kbps"]["p50"].as_u64().is_some(), "CMCD mtp");

    // Prometheus: the origin with its operator token; an edge with the metrics token only.
    let (code, text) = get_with_token(
        &format!("http://127.0.0.1:{}/metrics", t.origin().http_addr.port()),
        OPERATOR,
    );
    assert_eq!(code, 200);
    assert!(
        text.contains(&format!("popcast_qoe_sessions_clean{{event=\"ev\"}} {clean}")),
        "{text}"
    );
    assert!(text.contains("popcast_qoe_success_ratio{event=\"ev\"}"), "{text}");
    let edge_metrics = t.edge_url(0, "/metrics");
    assert_eq!(get_with_token(&edge_metrics, OPERATOR).0, 401);
    let (code, text) = get_with_token(&edge_metrics, METRICS);
    assert_eq!(code, 200);
    assert!(
        text.contains("popcast_qoe_sessions_started_total{event=\"ev\"} 3"),
        "{text}"
    );
    assert!(text.contains("popcast_edge_hits_total{event=\"ev\"}"), "{text}");
    // Every series the Grafana dashboard charts is one origin or edges export.
    let (_, origin_text) = get_with_token(
        &format!("http://127.0.0.1:{}/metrics", t.origin().http_addr.port()),
        OPERATOR,
    );
    let exported = format!("{origin_text}\n{text}");
    let dashboard = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/grafana/popcast.json"),
    )
    .unwrap();
    let board: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let mut charted = 0;
    for panel in board["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("popcast_"))
            {
                assert!(
                    exported.contains(&format!("\n{name}{{")) || exported.contains(&format!("\n{name} ")),
                    "the dashboard charts {name}, which nothing exports"
                );
                charted += 1;
            }
        }
    }
    assert!(charted >= 15, "{charted} series charted");
    let _ = ff.kill();
    let _ = ff.wait();
    drop(t.rt.enter());
}

/// A POST with curl: (status, body).
fn post(url: &str, ctype: &str, body: &[u8]) -> (u16, String) {
    use std::io::Write;
    let mut child = Command::new("curl")
        .args(["-s", "-m", "10", "-w", "\n%{http_code}", "-X", "POST", "-H"])
        .arg(format!("Content-Type: {ctype}"))
        .args(["--data-binary", "@-", url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl runs");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn garbage_cmcd_and_beacons_never_break_a_viewer_request_nor_poison_the_numbers() {
    let t = Topology::start("qoe-garbage", &["eu-west"], |_| {});
    let mut ff = publish(&t.rtmp(), 40);
    let master = t.edge_url(0, "/live/ev/master.m3u8");
    wait_until(30, "the edge's playlist", || curl(&master).0 == 200);
    let qoe = t.edge_url(0, "/qoe");
    // One honest session: CMCD on a request, a first-frame beacon.
    let honest = format!("{master}?CMCD=sid%3D%22honest%22%2Cot%3Dm%2Csu");
    assert_eq!(curl(&honest).0, 200);
    let (code, body) = post(
        &qoe,
        "application/json",
        br#"{"event":"ev","sid":"honest","seq":1,"startup_ms":400}"#,
    );
    assert_eq!(code, 204, "{body}");
    let stats_url = format!(
        "http://127.0.0.1:{}/api/v1/events/ev/stats",
        t.origin().http_addr.port()
    );
    let stats = || -> serde_json::Value {
        let (code, body) = get_with_token(&stats_url, OPERATOR);
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    };
    let mut before = serde_json::Value::Null;
    wait_until(10, "the honest session in the stats", || {
        before = stats();
        before["total"]["sessions_playing"] == 1
    });

    // Garbage CMCD: the viewer's request is answered as if it had none.
    let long = format!("sid%3D%22{}%22", "x".repeat(900)); // under the query limit, over the 64-character one
    for cmcd in [
        "br%3D-5%2Cbl%3D1e9%2Csid%3Dunquoted%2Cot%3Dzz%2Cpr%3DNaN%2Cbs%3Dmaybe",
        "%ZZ%2C%2C%2C",
        "sid%3D%22unterminated",
        "bl%3D99999999999999999999999",
        &long,
    ] {
        let (code, body) = curl(&format!("{master}?CMCD={cmcd}"));
        assert_eq!(code, 200, "CMCD={}: {body}", &cmcd[..cmcd.len().min(40)]);
        assert!(body.starts_with("#EXTM3U"));
    }
    let out = Command::new("curl")
        .args([
            "-s",
            "-m",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "CMCD-Request: bl=,,,=x,\"",
            "-H",
        ])
        .arg("CMCD-Session: sid=\"a\\\",st=q,cid=\u{e9}")
        .arg(&master)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");

    // Garbage beacons: each refused with the status and the problem named.
    let big = format!(r#"{{"event":"ev","sid":"s","pad":"{}"}}"#, "x".repeat(20_000));
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("application/json", big.into_bytes(), 413, "bytes"),
        (
            "application/xml",
            br#"{"event":"ev","sid":"s"}"#.to_vec(),
            415,
            "application/json",
        ),
        ("application/json", b"{not json".to_vec(), 400, "invalid json"),
        (
            "application/json",
            br#"{"event":"ev","sid":"s","watch_ms":"long"}"#.to_vec(),
            400,
            "invalid type",
        ),
        (
            "application/json",
            br#"{"event":"ev","sid":"s","watch_ms":1e30}"#.to_vec(),
            400,
            "invalid type",
        ),
        (
            "application/json",
            br#"{"event":"ev","sid":"s","stalls":-3}"#.to_vec(),
            400,
            "invalid value",
        ),
        (
            "application/json",
            br#"{"event":"ev","sid":"s","startup_ms":99999999}"#.to_vec(),
            422,
            "startup_ms",
        ),
        (
            "text/plain",
            br#"{"event":"nope","sid":"s"}"#.to_vec(),
            404,
            "not served by this edge",
        ),
        // An unknown session claiming a long, stall-free watch it cannot have had.
        (
            "application/json",
            br#"{"event":"ev","sid":"liar","watch_ms":86400000,"stalls":0,"ended":true}"#.to_vec(),
            422,
            "watch_ms",
        ),
        // A known session claiming more stalls than its watch time allows.
        (
            "application/json",
            br#"{"event":"ev","sid":"honest","seq":2,"watch_ms":1000,"stalls":99}"#.to_vec(),
            422,
            "stalls",
        ),
    ];
    for (ctype, body, want, named) in &cases {
        let (code, answer) = post(&qoe, ctype, body);
        assert_eq!(code, *want, "{answer}");
        assert!(answer.contains(named), "{want}: {answer} should name {named:?}");
    }
    // A flood from one session: refused past the per-minute limit.
    let mut codes = Vec::new();
    for i in 0..65 {
        let b = format!(r#"{{"event":"ev","sid":"flood","seq":{i}}}"#);
        codes.push(post(&qoe, "application/json", b.as_bytes()).0);
    }
    assert_eq!(codes.iter().filter(|c| **c == 204).count(), 60, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 429).count(), 5, "{codes:?}");

    // None of it changed the honest numbers; it is all counted as refused or malformed.
    let mut after = serde_json::Value::Null;
    wait_until(10, "the refusals in the stats", || {
        after = stats();
        after["total"]["beacons_refused"].as_u64() >= Some(7)
    });
    let (b, a) = (&before["total"], &after["total"]);
    for key in [
        "sessions_playing",
        "qualified",
        "clean",
        "stalls",
        "stall_ms",
        "watch_ms",
        "never_started",
    ] {
        assert_eq!(a[key], b[key], "{key} moved: {b} → {a}");
    }
    assert_eq!(a["latency_ms"]["count"], b["latency_ms"]["count"]);
    // The flood's session exists (it is a session, just a quiet one); no other new one does.
    assert_eq!(
        a["sessions_started"].as_u64(),
        b["sessions_started"].as_u64().map(|n| n + 1)
    );
    assert!(a["cmcd_malformed"].as_u64() >= Some(5), "{a}");
    assert!(a["beacons_refused"].as_u64() >= Some(7), "{a}");
    // A viewer's request still plays after all that.
    assert_eq!(curl(&master).0, 200);
    let _ = ff.kill();
    let _ = ff.wait();
    drop(t.rt.enter());
}

#[test]
fn the_operator_dashboard_charts_a_live_events_numbers_in_chromium() {
    use popcast_player::beacon::BeaconConfig;
    use popcast_player::session::{CmcdMode, SessionConfig, watch};
    let harness = browser_harness();
    let t = Topology::start_tuned("dashboard", &["eu-west"], |c| c.qoe.sample_secs = 1, |_| {});
    let mut ff = publish(&t.rtmp(), 60);
    let master = t.edge_url(0, "/live/ev/master.m3u8");
    wait_until(30, "the edge's playlist", || curl(&master).0 == 200);
    let viewers: Vec<_> = (0..2)
        .map(|i| {
            let mut cfg = SessionConfig::new(master.clone(), Duration::from_secs(30));
            cfg.cmcd = CmcdMode::Headers;
            cfg.session_id = format!("dash-{i}");
            cfg.beacon = Some(BeaconConfig {
                every: Duration::from_secs(1),
                ..BeaconConfig::new("ev")
            });
            t.rt.spawn(watch(cfg))
        })
        .collect();
    let stats_url = format!(
        "http://127.0.0.1:{}/api/v1/events/ev/stats",
        t.origin().http_addr.port()
    );
    wait_until(20, "both viewers playing in the stats", || {
        let (_, body) = get_with_token(&stats_url, OPERATOR);
        serde_json::from_str::<serde_json::Value>(&body).is_ok_and(|v| v["total"]["viewers_now"] == 2)
    });
    // The page, given the operator token in its fragment (never sent to the server).
    let dashboard = format!(
        "http://127.0.0.1:{}/dashboard?event=ev#token={OPERATOR}",
        t.origin().http_addr.port()
    );
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("dashboard.png");
    let out = Command::new("node")
        .arg(harness.join("dashboard.mjs"))
        .args(["--url", &dashboard, "--seconds", "30", "--screenshot"])
        .arg(&shot)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    println!("dashboard: {line}\nscreenshot: {}", shot.display());
    assert!(
        out.status.success(),
        "{line}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(line).expect("one JSON line");
    assert_eq!(report["state"], "ready");
    assert!(report["polylines"]["viewers"].as_u64() >= Some(2), "{report}");
    assert!(report["polylines"]["latency_p50"].as_u64() >= Some(2), "{report}");
    assert_eq!(report["tiles"]["viewers"], "2", "{report}");
    assert!(
        report["tiles"]["success"]
            .as_str()
            .is_some_and(|s| s.ends_with('%') || s == "—"),
        "{report}"
    );
    assert!(
        report["tiles"]["latency"]
            .as_str()
            .is_some_and(|s| s.contains("ms") || s.contains(" s")),
        "{report}"
    );
    assert_eq!(report["regions"], serde_json::json!(["eu-west"]));
    assert_eq!(report["edges"].as_array().map(|e| e.len()), Some(1));
    assert_eq!(report["pageErrors"], serde_json::json!([]));
    assert!(
        std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000),
        "a screenshot was kept"
    );
    // Without the token the page asks for it; the data API refuses it.
    assert_eq!(get_with_token(&stats_url, "wrong").0, 401);
    for v in viewers {
        let q = t.rt.block_on(v).unwrap().expect("the session starts");
        assert_eq!(q.beacons.accepted, q.beacons.sent);
    }
    let _ = ff.kill();
    let _ = ff.wait();
    drop(t.rt.enter());
}

#[test]
fn hlsjs_cmcd_is_read_at_the_edge_without_a_malformed_key() {
    let harness = browser_harness();
    let t = Topology::start("qoe-hlsjs", &["eu-west"], |_| {});
    let mut ff = publish(&t.rtmp(), 40);
    let master = t.edge_url(0, "/live/ev/master.m3u8");
    wait_until(30, "the edge's playlist", || {
        curl(&t.edge_url(0, "/live/ev/source/index.m3u8"))
            .1
            .matches("#EXTINF")
            .count()
            >= 2
    });
    // hls.js 1.7's own CMCD (query form), as the web player will send it.
    play_hlsjs(
        &harness,
        &master,
        8,
        &["--cmcd-sid", "hlsjs-viewer", "--cmcd-cid", "ev"],
        "hls.js with CMCD",
    );
    let stats_url = format!(
        "http://127.0.0.1:{}/api/v1/events/ev/stats",
        t.origin().http_addr.port()
    );
    let mut stats = serde_json::Value::Null;
    wait_until(10, "the hls.js session in the stats", || {
        let (_, body) = get_with_token(&stats_url, OPERATOR);
        stats = serde_json::from_str(&body).unwrap_or_default();
        stats["total"]["sessions_playing"] == 1
    });
    let total = &stats["total"];
    println!("stats after hls.js: {total}");
    assert_eq!(total["sessions_started"], 1, "one sid, one session");
    assert_eq!(total["cmcd_malformed"], 0, "hls.js's CMCD parses cleanly");
    assert!(
        total["bitrate_kbps"]["p50"].as_u64().is_some(),
        "br read from hls.js's requests"
    );
    assert!(
        total["startup_ms"]["p50"].as_u64().is_some(),
        "startup seen from CMCD alone"
    );
    let _ = ff.kill();
    let _ = ff.wait();
    drop(t.rt.enter());
}

/// Runs `tests/browser/player.mjs` with `args`; returns its JSON report and the MARK lines'
/// nodes (each handed to `on_mark` as it is printed, while the player keeps playing).
fn run_web_player(
    harness: &std::path::Path,
    args: &[&str],
    mut on_mark: impl FnMut(&str),
) -> (bool, serde_json::Value, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new("node")
        .arg(harness.join("player.mjs"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run node");
    let stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
        s
    });
    let mut last = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap_or_default();
        if let Some(mark) = line.strip_prefix("MARK ") {
            let v: serde_json::Value = serde_json::from_str(mark).expect("MARK JSON");
            on_mark(v["node"].as_str().expect("the serving node"));
        } else if !line.trim().is_empty() {
            last = line;
        }
    }
    let ok = child.wait().unwrap().success();
    let stderr = err.join().unwrap();
    let report = serde_json::from_str(&last).unwrap_or(serde_json::Value::Null);
    (ok, report, stderr)
}

/// The issue's acceptance run: `<popcast-player>` embedded in another site's page plays an
/// event through an edge for 60 s holding its live latency within ±0.5 s of its target with
/// no stall, and its QoE beacons reach the edge and show in the event's stats.
#[test]
fn the_web_player_holds_its_latency_target_for_60_s_and_its_beacons_reach_the_stats() {
    let harness = browser_harness();
    let t = Topology::start("web-player", &["eu-west", "us-east"], |_| {});
    let mut ff = publish(&t.rtmp(), 110);
    let origin = t.await_both_edges();
    let (ok, report, stderr) = run_web_player(
        &harness,
        &[
            "--origin",
            &origin,
            "--event",
            "ev",
            "--region",
            "us-east",
            "--seconds",
            "60",
            "--within",
            "0.5",
        ],
        |_| {},
    );
    println!("web player, 60 s: {report}");
    assert!(ok, "{report}\n{stderr}");
    assert_eq!(report["state"], "playing");
    assert_eq!(report["waiting"], 0, "no stall");
    assert_eq!(
        report["nodes"],
        serde_json::json!(["us-east"]),
        "the viewer's region's edge"
    );
    assert_eq!(report["latency"]["outside"], 0);
    assert!(report["latency"]["samples"].as_u64() > Some(200), "{report}");
    let beacons = &report["beacons"];
    assert!(
        beacons["accepted"].as_u64() >= Some(5),
        "a beacon every 10 s: {beacons}"
    );
    assert_eq!(beacons["refused"], 0);
    // The page went away (Chromium closed): its last beacon, sent on pagehide, ends the
    // session. The stats show what the player reported, under the us-east edge.
    let stats_url = format!("{origin}/api/v1/events/ev/stats");
    let mut stats = serde_json::Value::Null;
    wait_until(15, "the player's session in the stats", || {
        let (_, body) = get_with_token(&stats_url, OPERATOR);
        stats = serde_json::from_str(&body).unwrap_or_default();
        stats["regions"]["us-east"]["beacons"].as_u64() >= beacons["accepted"].as_u64()
    });
    println!("stats: {}", stats["total"]);
    let region = &stats["regions"]["us-east"];
    assert_eq!(region["sessions_started"], 1, "one player, one session: {region}");
    assert_eq!(region["stalls"], 0);
    assert!(region["startup_ms"]["p50"].as_u64().is_some(), "{region}");
    assert!(region["latency_ms"]["count"].as_u64() > Some(30), "{region}");
    assert_eq!(region["beacons_refused"], 0);
    assert!(
        stats["regions"]["eu-west"]["sessions_started"]
            .as_u64()
            .unwrap_or(0)
            == 0
    );
    let _ = ff.kill();
    let _ = ff.wait();
    drop(t.rt.enter());
}

/// Killing the edge a player watches from: the player goes on from the other edge (found
/// through `/play`) within 3 s, without a reload.
#[test]
fn the_web_player_continues_from_the_other_edge_when_its_edge_dies() {
    let harness = browser_harness();
    let mut t = Topology::start("web-failover", &["eu-west", "us-east"], |_| {});
    let mut ff = publish(&t.rtmp(), 70);
    let origin = t.await_both_edges();
    let names = ["eu-west", "us-east"];
    let mut killed = None;
    let embed = format!("{origin}/embed/ev?region=eu-west");
    let (ok, report, stderr) = run_web_player(
        &harness,
        &["--url", &embed, "--seconds", "30", "--mark-after", "12"],
        |node| {
            let i = names.iter().position(|n| *n == node).expect("a known edge");
            let _rt = t.rt.enter();
            // Gone: its listener closes and every connection to it drops.
            drop(t.edges.remove(i));
            killed = Some(node.to_string());
        },
    );
    println!("web player failover: {}", report["failover"]);
    println!("web player: {report}");
    assert!(ok, "{report}\n{stderr}");
    assert_eq!(
        killed.as_deref(),
        Some("eu-west"),
        "it played from the region asked for"
    );
    let f = &report["failover"];
    assert_eq!(f["to"], "us-east", "{f}");
    assert!(
        f["frozenMs"].as_u64() < Some(3000),
        "currentTime stood still too long: {f}"
    );
    let after = f["advancedAfterMark"].as_f64().unwrap();
    let span = f["markedSecondsBeforeEnd"].as_f64().unwrap();
    assert!(
        after >= span - 3.0,
        "currentTime advanced {after} s in the {span} s after the kill"
    );
    assert_eq!(report["state"], "playing");
    let _ = ff.kill();
    let _ = ff.wait();
    drop(t.rt.enter());
}

/// A ticketed event without a token: the player says so rather than spinning.
#[test]
fn the_web_player_shows_not_allowed_for_a_ticketed_event_without_a_token() {
    let harness = browser_harness();
    let t = Topology::start("web-ticket", &["eu-west"], |_| {});
    let ev = t.origin().events.get("ev").unwrap();
    ev.set_tickets(Some(vec![(
        "k1".to_string(),
        Bytes::from_static(b"first event key, thirty-two bytes"),
    )]));
    t.origin().events.touch();
    let origin = format!("http://127.0.0.1:{}", t.origin().http_addr.port());
    let (ok, report, stderr) = run_web_player(
        &harness,
        &[
            "--origin",
            &origin,
            "--event",
            "ev",
            "--expect-state",
            "not-allowed",
        ],
        |_| {},
    );
    println!("web player, no ticket: {report}");
    assert!(ok, "{report}\n{stderr}");
    assert!(
        report["visibleMessage"]
            .as_str()
            .is_some_and(|m| m.contains("needs a ticket")),
        "{report}"
    );
    drop(t.rt.enter());
}
