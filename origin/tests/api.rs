//! The operator API over real HTTP with curl: auth, creating events (the stream key shown
//! once, then publishing with it from the ffmpeg CLI), edits that race, bad input, tokens,
//! ending, and events surviving an origin restart (SQLite in the data directory).

mod support;

use popcast_config::{Config, Secret};
use popcast_origin::Origin;
use popcast_origin::events::Events;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{Answer, curl, loopback_config};

const TOKEN: &str = "operator-token-0123456789abcdef";

struct Api {
    origin: Option<Origin>,
    rt: tokio::runtime::Runtime,
    config: Config,
}

impl Api {
    fn start(test: &str) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut config = loopback_config();
        config.node.data_dir =
            std::env::temp_dir().join(format!("popcast-api-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&config.node.data_dir);
        config.origin.operator_token = Some(Secret::new(TOKEN));
        let origin = rt
            .block_on(Origin::start(&config, Arc::new(Events::new())))
            .unwrap();
        config.origin.public_url = format!("http://{}", origin.http_addr);
        Self {
            origin: Some(origin),
            rt,
            config,
        }
    }

    fn restart(&mut self) {
        drop(self.origin.take());
        let mut c = self.config.clone();
        c.origin.http_listen = "127.0.0.1:0".parse().unwrap();
        self.origin = Some(
            self.rt
                .block_on(Origin::start(&c, Arc::new(Events::new())))
                .unwrap(),
        );
    }

    fn origin(&self) -> &Origin {
        self.origin.as_ref().unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.origin().http_addr)
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let auth = format!("Authorization: Bearer {TOKEN}");
        let mut args = vec!["-X", method, "-H", &auth];
        if let Some(b) = body {
            args.extend(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        let a = curl(&args, &self.url(path));
        (a.status, json(&a))
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        drop(self.origin.take());
        let _ = std::fs::remove_dir_all(&self.config.node.data_dir);
    }
}

fn json(a: &Answer) -> Value {
    serde_json::from_slice(&a.body).unwrap_or_else(|_| Value::String(a.text()))
}

fn unix_in(secs: u64) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + secs;
    t.to_string()
}

fn in_an_hour() -> String {
    unix_in(3600)
}

/// ffmpeg publishing a small test pattern for `secs` to the origin with `key`.
fn publish(api: &Api, key: &str, secs: u32) -> std::process::Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &secs.to_string(), "-c:v", "libx264", "-preset", "ultrafast"])
        .args(["-tune", "zerolatency", "-g", "30", "-c:a", "aac", "-f", "flv"])
        .arg(format!("rtmp://{}/live/{key}", api.origin().rtmp_addr))
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ffmpeg")
}

fn wait_for(secs: u64, what: &str, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_api_refuses_requests_without_the_operator_token() {
    let api = Api::start("auth");
    let a = curl(&[], &api.url("/api/v1/events"));
    assert_eq!(a.status, 401, "{}", a.text());
    assert!(a.header("www-authenticate").is_some());
    assert_eq!(json(&a)["error"], "unauthorized");
    let a = curl(
        &["-H", "Authorization: Bearer wrong-token-0123456789"],
        &api.url("/api/v1/events"),
    );
    assert_eq!(a.status, 401);
    assert_eq!(curl(&[], &api.url("/api/v1/edges")).status, 401);
    // Without a relay there are no edges to list.
    let (status, v) = api.call("GET", "/api/v1/edges", None);
    assert_eq!((status, v["relay"].as_str()), (200, Some("off")), "{v}");
    // With no operator token configured the API is off.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let off = rt
        .block_on(Origin::start(&loopback_config(), Arc::new(Events::new())))
        .unwrap();
    let a = curl(
        &["-H", &format!("Authorization: Bearer {TOKEN}")],
        &format!("http://{}/api/v1/events", off.http_addr),
    );
    assert_eq!(a.status, 403, "{}", a.text());
    assert!(a.text().contains("origin.operator_token"));
}

#[test]
fn an_event_is_created_published_to_edited_and_ended_and_survives_a_restart() {
    let mut api = Api::start("lifecycle");
    let title = "Pop-up clinic'); DROP TABLE events; --";
    let create = format!(
        r#"{{"id":"clinic","title":{},"creator":"ana","start":{},"duration_mins":30,"regions":["eu-west","us-east"],"access":"ticketed","viewer_cap":800}}"#,
        serde_json::to_string(title).unwrap(),
        unix_in(60)
    );
    let (status, made) = api.call("POST", "/api/v1/events", Some(&create));
    assert_eq!(status, 201, "{made}");
    let key = made["stream_key"]
        .as_str()
        .expect("the stream key, once")
        .to_string();
    assert_eq!(key.len(), 40);
    assert_eq!(made["state"], "scheduled");
    assert_eq!(made["title"], title);
    assert_eq!(made["version"], 1);

    // Shown once: never again.
    let (status, got) = api.call("GET", "/api/v1/events/clinic", None);
    assert_eq!(status, 200);
    assert!(got.get("stream_key").is_none(), "{got}");
    assert_eq!(got["title"], title, "stored verbatim");
    let (_, listed) = api.call("GET", "/api/v1/events", None);
    assert_eq!(listed["events"].as_array().unwrap().len(), 1);

    // The same id again; a missing field, an unknown one, a start in the past.
    let (status, _) = api.call("POST", "/api/v1/events", Some(&create));
    assert_eq!(status, 409);
    let (status, e) = api.call(
        "POST",
        "/api/v1/events",
        Some(r#"{"title":"x","creator":"y","start":1000,"colour":"red"}"#),
    );
    assert_eq!(status, 422, "{e}");
    let detail = e["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"colour\"") && detail.contains("`start`: ") && detail.contains("in the past"),
        "{detail}"
    );

    // A viewer token for it: the event is ticketed, so the origin asks for one too.
    let (status, t) = api.call(
        "POST",
        "/api/v1/events/clinic/tokens",
        Some(r#"{"ttl_secs":600,"session":"ticket-7"}"#),
    );
    assert_eq!(status, 201, "{t}");
    let token = t["token"].as_str().unwrap().to_string();
    let claims = popcast_packager::token::parse(&token).unwrap().claims;
    assert_eq!(
        (claims.event.as_str(), claims.session.as_deref()),
        ("clinic", Some("ticket-7"))
    );

    // The creator publishes with the key.
    let mut ff = publish(&api, &key, 4);
    let master = api.url(&format!("/live/clinic/master.m3u8?token={token}"));
    wait_for(20, "a playlist after publishing with the created key", || {
        curl(&[], &master).status == 200
    });
    assert!(ff.wait().unwrap().success());
    let a = curl(&[], &api.url("/live/clinic/master.m3u8"));
    assert_eq!(a.status, 403, "no token: {}", a.text());
    let a = curl(&[], &master);
    assert!(a.text().contains(&format!("?token={token}")), "{}", a.text());

    // /play: with no relay the origin serves viewers itself; the token is checked first and
    // carried over.
    let a = curl(&[], &api.url("/play/clinic"));
    assert_eq!(a.status, 403, "{}", a.text());
    assert_eq!(json(&a)["error"], "forbidden");
    let a = curl(&[], &api.url(&format!("/play/clinic?token={token}")));
    assert_eq!(a.status, 302, "{}", a.text());
    assert!(
        a.header("location")
            .is_some_and(|l| l.ends_with(&format!("/live/clinic/master.m3u8?token={token}"))),
        "{:?}",
        a.headers
    );
    let a = curl(
        &["-H", &format!("Authorization: Bearer {token}")],
        &api.url("/play/clinic?region=eu-west&format=json"),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let v = json(&a);
    assert_eq!(
        (
            v["primary"]["node_id"].as_str(),
            v["fallbacks"].as_array().map(Vec::len)
        ),
        (Some("origin"), Some(0)),
        "{v}"
    );
    assert_eq!(curl(&[], &api.url("/play/nope")).status, 404);

    // Key rotation: tokens of the old key keep playing, new ones use the new key; revoking
    // the old key cuts its tokens off.
    let (status, v) = api.call("POST", "/api/v1/events/clinic/keys", Some("{}"));
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (v["kid"].as_str(), v["keys"].clone()),
        (Some("k2"), serde_json::json!(["k2", "k1"])),
        "{v}"
    );
    assert_eq!(curl(&[], &master).status, 200, "the old key's token still plays");
    let (_, t2) = api.call("POST", "/api/v1/events/clinic/tokens", Some("{}"));
    let token2 = t2["token"].as_str().unwrap().to_string();
    assert_eq!(t2["kid"], "k2", "{t2}");
    let (status, v) = api.call(
        "POST",
        "/api/v1/events/clinic/keys",
        Some(r#"{"revoke_previous":true}"#),
    );
    assert_eq!((status, v["dropped"].as_u64()), (201, Some(2)), "{v}");
    let a = curl(&[], &master);
    assert_eq!(a.status, 403, "the revoked key's token: {}", a.text());
    assert!(a.text().contains("key"), "{}", a.text());
    let (_, t3) = api.call("POST", "/api/v1/events/clinic/tokens", Some("{}"));
    let fresh = api.url(&format!(
        "/live/clinic/master.m3u8?token={}",
        t3["token"].as_str().unwrap()
    ));
    assert_eq!(curl(&[], &fresh).status, 200);
    assert_eq!(
        curl(&[], &api.url(&format!("/live/clinic/master.m3u8?token={token2}"))).status,
        403
    );
    let (status, v) = api.call(
        "POST",
        "/api/v1/events/clinic/keys",
        Some(r#"{"revoke_previous":"yes"}"#),
    );
    assert_eq!(
        (status, v["fields"].clone()),
        (422, serde_json::json!(["revoke_previous"]))
    );
    let a = curl(&[], &api.url("/play/clinic?region=Not%20A%20Region"));
    assert_eq!(a.status, 400, "{}", a.text());
    assert!(a.text().contains("region"), "{}", a.text());

    // Two operators edit from version 1: the second is told it changed meanwhile.
    let (status, v2) = api.call(
        "PATCH",
        "/api/v1/events/clinic",
        Some(r#"{"version":1,"viewer_cap":900}"#),
    );
    assert_eq!(
        (status, v2["version"].as_u64(), v2["viewer_cap"].as_u64()),
        (200, Some(2), Some(900)),
        "{v2}"
    );
    let (status, e) = api.call(
        "PATCH",
        "/api/v1/events/clinic",
        Some(r#"{"version":1,"title":"Other"}"#),
    );
    assert_eq!(status, 409, "{e}");
    assert_eq!(e["error"], "edited meanwhile");

    // The origin restarts: the event and its key are still there.
    api.restart();
    let (status, got) = api.call("GET", "/api/v1/events/clinic", None);
    assert_eq!((status, got["version"].as_u64()), (200, Some(2)), "{got}");
    assert!(
        api.origin().events.get("clinic").is_some(),
        "served after the restart"
    );
    assert!(
        api.origin().events.by_key(key.as_bytes()).is_some(),
        "the key still publishes"
    );

    let (status, ended) = api.call("POST", "/api/v1/events/clinic/end", None);
    assert_eq!((status, ended["state"].as_str()), (200, Some("ended")), "{ended}");
    let (status, _) = api.call(
        "PATCH",
        "/api/v1/events/clinic",
        Some(r#"{"version":3,"title":"Late"}"#),
    );
    assert_eq!(status, 409);
    let (status, _) = api.call("POST", "/api/v1/events/clinic/tokens", Some("{}"));
    assert_eq!(status, 409);
}

#[test]
fn bad_requests_get_the_right_status_and_name_the_problem() {
    let api = Api::start("bad");
    let auth = format!("Authorization: Bearer {TOKEN}");
    let post = |ctype: &str, body: &str| {
        curl(
            &[
                "-X",
                "POST",
                "-H",
                &auth,
                "-H",
                &format!("Content-Type: {ctype}"),
                "--data-binary",
                body,
            ],
            &api.url("/api/v1/events"),
        )
    };
    let a = post("application/json", "{not json");
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(json(&a)["error"], "invalid json");
    let a = post("text/plain", "{}");
    assert_eq!(a.status, 415);
    let a = post("application/json", "[1,2]");
    assert_eq!(a.status, 400);
    let huge = format!(r#"{{"title":"{}"}}"#, "x".repeat(20_000));
    let a = post("application/json", &huge);
    assert_eq!(a.status, 413, "{}", a.text());
    let a = post(
        "application/json",
        &format!(
            r#"{{"title":"t","creator":"c","start":{},"duration_mins":"long","regions":"eu"}}"#,
            in_an_hour()
        ),
    );
    assert_eq!(a.status, 422);
    let fields = json(&a)["fields"].clone();
    assert_eq!(
        fields,
        serde_json::json!(["duration_mins", "regions"]),
        "{}",
        a.text()
    );
    let a = post(
        "application/json",
        r#"{"title":"t","creator":"c","start":"tomorrow"}"#,
    );
    assert_eq!(a.status, 422);
    assert!(a.text().contains("RFC 3339"), "{}", a.text());
    // A title of 201 characters, a viewer cap of 0.
    let a = post(
        "application/json",
        &format!(
            r#"{{"title":"{}","creator":"c","start":{},"viewer_cap":0}}"#,
            "t".repeat(201),
            in_an_hour()
        ),
    );
    assert_eq!(a.status, 422);
    assert_eq!(
        json(&a)["fields"],
        serde_json::json!(["title", "viewer_cap"]),
        "{}",
        a.text()
    );
    // Paths and methods.
    let (status, _) = api.call("GET", "/api/v1/events/..%2Fetc", None);
    assert_eq!(status, 404);
    let (status, _) = api.call("GET", "/api/v1/events/nope", None);
    assert_eq!(status, 404);
    let (status, _) = api.call("DELETE", "/api/v1/events", None);
    assert_eq!(status, 405);
    // A generated id from the title.
    let a = post(
        "application/json",
        &format!(
            r#"{{"title":"Friday Q&A: Rust!","creator":"c","start":{}}}"#,
            in_an_hour()
        ),
    );
    assert_eq!(a.status, 201, "{}", a.text());
    let id = json(&a)["id"].as_str().unwrap().to_string();
    assert!(
        id.starts_with("friday-q-a-rust-") && id.len() == "friday-q-a-rust-".len() + 6,
        "{id}"
    );
    // Ladders by name: `default`, `none`, or one the deployment configures; others are
    // refused with the names there are.
    for (ladder, status) in [("none", 201), ("default", 201), ("4k-hdr", 422)] {
        let a = post(
            "application/json",
            &format!(
                r#"{{"title":"ladder {ladder}","creator":"c{ladder}","start":{},"ladder":"{ladder}"}}"#,
                in_an_hour()
            ),
        );
        assert_eq!(a.status, status, "{ladder}: {}", a.text());
        if status == 422 {
            assert_eq!(json(&a)["fields"], serde_json::json!(["ladder"]));
            assert!(a.text().contains("default, none"), "{}", a.text());
        } else {
            assert_eq!(json(&a)["ladder"], ladder);
        }
    }
}

#[test]
fn the_calendar_lists_listed_events_for_a_real_ical_parser() {
    let api = Api::start("calendar");
    let title = "Q&A; tips, tricks \\ and a very long title that must be folded across lines — ünïcödé";
    for (id, access, listed) in [
        ("open-clinic", "public", true),
        ("paid-clinic", "ticketed", true),
        ("private-rehearsal", "public", false),
    ] {
        let body = format!(
            r#"{{"id":"{id}","title":{},"creator":"ana","start":{},"duration_mins":45,"access":"{access}","listed":{listed}}}"#,
            serde_json::to_string(title).unwrap(),
            in_an_hour()
        );
        let (status, v) = api.call("POST", "/api/v1/events", Some(&body));
        assert_eq!(status, 201, "{v}");
    }
    let a = curl(&[], &api.url("/calendar.ics"));
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("text/calendar; charset=utf-8"));
    let file = api.config.node.data_dir.join("feed.ics");
    std::fs::write(&file, &a.body).unwrap();
    // Python's icalendar parses it; what it reads is printed as JSON.
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import icalendar, json, sys\n\
             cal = icalendar.Calendar.from_ical(open(sys.argv[1], 'rb').read())\n\
             print(json.dumps([{'uid': str(e['UID']), 'summary': str(e['SUMMARY']), \
             'minutes': (e.decoded('DTEND') - e.decoded('DTSTART')).total_seconds() / 60, \
             'url': str(e['URL']), 'description': str(e['DESCRIPTION'])} \
             for e in cal.walk('VEVENT')]))",
        )
        .arg(&file)
        .output()
        .expect("run python3 (make deps-ical installs icalendar)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        events.as_array().unwrap().len(),
        2,
        "the unlisted event is left out: {events}"
    );
    // Same start: ordered by id.
    assert_eq!(events[0]["uid"], "open-clinic@popcast");
    assert_eq!(events[0]["summary"], title, "{events}");
    assert_eq!(events[0]["minutes"], 45.0);
    assert!(events[0]["url"].as_str().unwrap().ends_with("/embed/open-clinic"));
    assert_eq!(events[1]["uid"], "paid-clinic@popcast");
    assert!(
        events[1]["description"]
            .as_str()
            .unwrap()
            .contains("a ticket is needed to watch"),
        "{events}"
    );
    // The operator's list still shows the unlisted event, marked.
    let (_, all) = api.call("GET", "/api/v1/events", None);
    let hidden: Vec<&Value> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["listed"] == false)
        .collect();
    assert_eq!(hidden.len(), 1, "{all}");
    assert_eq!(hidden[0]["id"], "private-rehearsal");
}

#[test]
fn the_lifecycle_follows_the_clock_and_the_creator_and_early_publishers_are_told_when() {
    let api = Api::start("lifecycle-clock");
    let create = |id: &str, start: String| {
        let body = format!(r#"{{"id":"{id}","title":"t","creator":"c","start":{start},"duration_mins":30}}"#);
        let (status, v) = api.call("POST", "/api/v1/events", Some(&body));
        assert_eq!(status, 201, "{v}");
        v["stream_key"].as_str().unwrap().to_string()
    };
    let state = |id: &str| api.call("GET", &format!("/api/v1/events/{id}"), None).1["state"].clone();
    // Tomorrow's event: scheduled, and a creator publishing now is refused.
    let tomorrow = create("tomorrow", unix_in(86_400));
    let out = publish(&api, &tomorrow, 3).wait_with_output().unwrap();
    assert!(!out.status.success(), "an early publisher is refused");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("not open for publishing yet: it opens at"),
        "{said}"
    );
    assert_eq!(curl(&[], &api.url("/live/tomorrow/master.m3u8")).status, 503);
    assert_eq!(state("tomorrow"), "scheduled");
    // Starting in a minute (within the 2-minute lead): provisioning, then live when the
    // creator publishes.
    let soon = create("soon", unix_in(60));
    wait_for(5, "provisioning", || state("soon") == "provisioning");
    let mut ff = publish(&api, &soon, 6);
    wait_for(15, "live", || state("soon") == "live");
    let _ = ff.kill();
    let _ = ff.wait();

    // Progressive limits: a creator with no delivered event gets 3 events a day...
    let day = unix_in(10 * 86_400).parse::<i64>().unwrap() / 86_400 * 86_400;
    let on_day = |id: &str, creator: &str, hour: i64| {
        let body = format!(
            r#"{{"id":"{id}","title":"t","creator":"{creator}","start":{}}}"#,
            day + hour * 3600
        );
        api.call("POST", "/api/v1/events", Some(&body))
    };
    for (i, id) in ["d1", "d2", "d3"].into_iter().enumerate() {
        let (status, v) = on_day(id, "c", i as i64 + 1);
        assert_eq!(status, 201, "{v}");
    }
    let (status, v) = on_day("d4", "c", 5);
    assert_eq!(status, 429, "{v}");
    assert_eq!(v["fields"], serde_json::json!(["creator"]), "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("already has 3 events on"),
        "{v}"
    );
    // ...which counts per creator and per day; moving an event onto the full day is refused.
    let (status, v) = on_day("other", "someone-else", 5);
    assert_eq!(status, 201, "{v}");
    let (status, v) = api.call(
        "PATCH",
        "/api/v1/events/other",
        Some(r#"{"version":1,"creator":"c"}"#),
    );
    assert_eq!(status, 429, "{v}");
    // "soon" went live; once it has ended, it counts toward c's track record: one more a day.
    let (status, v) = api.call("POST", "/api/v1/events/soon/end", None);
    assert_eq!(status, 200, "{v}");
    assert!(v["live_at"].is_string(), "{v}");
    let (status, v) = on_day("d4", "c", 5);
    assert_eq!(status, 201, "{v}");
    let (status, v) = on_day("d5", "c", 6);
    assert_eq!(status, 429, "{v}");
    assert_eq!(v["cap"], 4, "{v}");
}
