//! `popcast event ...`: operator commands against an origin's control API (`/api/v1/events`)
//! over HTTP, or HTTPS trusting the CA given with `--ca`.

use crate::cli::{EventCommand, OriginArgs};
use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use serde_json::{Value, json};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);
/// Largest answer read from the origin.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// One request to the origin's API; the answer's status and JSON body.
async fn call(
    o: &OriginArgs,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let token = o
        .token
        .as_ref()
        .ok_or_else(|| anyhow!("the operator API needs a token: --token or POPCAST_OPERATOR_TOKEN"))?;
    let uri: hyper::Uri = o
        .origin
        .trim_end_matches('/')
        .parse()
        .with_context(|| format!("--origin {:?} is not a URL", o.origin))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => bail!("--origin must start with http:// or https://"),
    };
    let host = uri
        .host()
        .ok_or_else(|| anyhow!("--origin has no host"))?
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = uri.authority().map_or(host.clone(), ToString::to_string);
    let body_bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let mut req = Request::builder()
        .method(method.clone())
        .uri(path)
        .header("host", &authority)
        .header("authorization", format!("Bearer {}", token.expose()))
        .header("accept", "application/json");
    if !body_bytes.is_empty() || method == Method::POST || method == Method::PATCH {
        req = req.header("content-type", "application/json");
    }
    let req = req.body(Full::new(body_bytes))?;
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .with_context(|| format!("cannot reach the origin at {authority}"))?;
        let res = if https {
            let ca = o.ca.as_ref().ok_or_else(|| {
                anyhow!("an https:// origin needs --ca <PEM file> to check its certificate")
            })?;
            let config = popcast_origin::tls::client_config(ca, &[b"http/1.1"])?;
            let name = rustls_pki_types::ServerName::try_from(host.clone())?;
            let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
                .connect(name, tcp)
                .await
                .with_context(|| format!("TLS with {authority}"))?;
            send(hyper_util::rt::TokioIo::new(tls), req).await?
        } else {
            send(hyper_util::rt::TokioIo::new(tcp), req).await?
        };
        anyhow::Ok(res)
    };
    let (status, bytes) = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| anyhow!("the origin at {authority} did not answer within {TIMEOUT:?}"))??;
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Ok((status, value))
}

async fn send<I>(io: I, req: Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(conn);
    let res = sender.send_request(req).await?;
    let status = res.status().as_u16();
    let body = http_body_util::Limited::new(res.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| anyhow!("reading the origin's answer: {e}"))?
        .to_bytes();
    Ok((status, body))
}

/// The answer, or an error that says what the origin said.
fn expect(status: u16, v: Value, want: u16) -> anyhow::Result<Value> {
    if status == want {
        return Ok(v);
    }
    match (
        v.get("error").and_then(Value::as_str),
        v.get("detail").and_then(Value::as_str),
    ) {
        (Some(e), Some(d)) => bail!("the origin answered {status} ({e}): {d}"),
        _ => bail!("the origin answered {status}: {v}"),
    }
}

fn print_event(v: &Value) {
    let s = |k: &str| {
        v.get(k).map_or(String::new(), |x| {
            x.as_str().map_or_else(|| x.to_string(), str::to_string)
        })
    };
    println!("id: {}", s("id"));
    println!("title: {}", s("title"));
    println!("state: {}", s("state"));
    println!("start: {}", s("start"));
    println!("end: {}", s("end"));
    println!(
        "regions: {}",
        v["regions"].as_array().map_or(String::new(), |r| r
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "))
    );
    println!("access: {}", s("access"));
    println!("listed: {}", s("listed"));
    if let Some(u) = v["webhook_url"].as_str() {
        println!("webhook url: {u}");
    }
    println!("viewer cap: {}", s("viewer_cap"));
    println!("version: {}", s("version"));
    println!("playback: {}", s("playback_url"));
    println!("embed: {}", s("embed_url"));
    println!("play (routes to an edge): {}", s("play_url"));
}

/// Seconds in a relative start (`90s`, `10m`, `2h`; a bare number is seconds).
fn relative_secs(rel: &str) -> anyhow::Result<u64> {
    let (digits, unit) = rel.split_at(rel.find(|c: char| !c.is_ascii_digit()).unwrap_or(rel.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| anyhow::anyhow!("--start +{rel}: expected a number then s, m or h (+90s, +10m, +2h)"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => bail!("--start +{rel}: the unit must be s, m or h"),
    };
    n.checked_mul(scale)
        .filter(|&s| s <= 366 * 86_400)
        .ok_or_else(|| anyhow::anyhow!("--start +{rel}: more than a year ahead"))
}

pub async fn run(cmd: EventCommand) -> anyhow::Result<()> {
    match cmd {
        EventCommand::Create {
            origin,
            title,
            start,
            duration,
            regions,
            access,
            id,
            creator,
            viewer_cap,
            unlisted,
            webhook_url,
        } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let start = match start {
                None => json!(now),
                Some(s) => match s.strip_prefix('+') {
                    Some(rel) => json!(now + relative_secs(rel)?),
                    None => Value::from(s),
                },
            };
            let mut body = json!({
                "title": title,
                "creator": creator,
                "start": start,
            });
            if let Some(d) = duration {
                body["duration_mins"] = json!(d);
            }
            if !regions.is_empty() {
                body["regions"] = json!(regions);
            }
            if let Some(a) = access {
                body["access"] = json!(a);
            }
            if let Some(i) = id {
                body["id"] = json!(i);
            }
            if let Some(c) = viewer_cap {
                body["viewer_cap"] = json!(c);
            }
            if unlisted {
                body["listed"] = json!(false);
            }
            if let Some(u) = webhook_url {
                body["webhook_url"] = json!(u);
            }
            let (status, v) = call(&origin, Method::POST, "/api/v1/events", Some(body)).await?;
            let v = expect(status, v, 201)?;
            print_event(&v);
            println!("stream key: {}", v["stream_key"].as_str().unwrap_or(""));
            println!("(the stream key is shown once: store it now)");
        }
        EventCommand::List { origin } => {
            let (status, v) = call(&origin, Method::GET, "/api/v1/events", None).await?;
            let v = expect(status, v, 200)?;
            let events = v["events"].as_array().cloned().unwrap_or_default();
            println!(
                "{:<28} {:<12} {:<22} {:>5}  title",
                "id", "state", "start", "mins"
            );
            for e in &events {
                println!(
                    "{:<28} {:<12} {:<22} {:>5}  {}",
                    e["id"].as_str().unwrap_or(""),
                    e["state"].as_str().unwrap_or(""),
                    e["start"].as_str().unwrap_or(""),
                    e["duration_mins"],
                    e["title"].as_str().unwrap_or(""),
                );
            }
            println!("{} event(s)", events.len());
        }
        EventCommand::Show { origin, id } => {
            let (status, v) = call(&origin, Method::GET, &format!("/api/v1/events/{id}"), None).await?;
            print_event(&expect(status, v, 200)?);
        }
        EventCommand::End { origin, id } => {
            let (status, v) = call(&origin, Method::POST, &format!("/api/v1/events/{id}/end"), None).await?;
            let v = expect(status, v, 200)?;
            println!(
                "{}: {}",
                v["id"].as_str().unwrap_or(""),
                v["state"].as_str().unwrap_or("")
            );
        }
        EventCommand::Kick { origin, id } => {
            let (status, v) = call(&origin, Method::POST, &format!("/api/v1/events/{id}/kick"), None).await?;
            let v = expect(status, v, 200)?;
            println!(
                "{}: {}; stream key revoked (make a new one with `popcast event stream-key {id}`)",
                id,
                if v["kicked"] == true {
                    "publisher kicked"
                } else {
                    "no publisher was connected"
                }
            );
        }
        EventCommand::StreamKey { origin, id } => {
            let (status, v) = call(
                &origin,
                Method::POST,
                &format!("/api/v1/events/{id}/stream-key"),
                None,
            )
            .await?;
            let v = expect(status, v, 200)?;
            println!("stream key: {}", v["stream_key"].as_str().unwrap_or(""));
            println!("(shown once: only its hash is kept)");
        }
        EventCommand::RotateKey {
            origin,
            id,
            revoke_previous,
        } => {
            let (status, v) = call(
                &origin,
                Method::POST,
                &format!("/api/v1/events/{id}/keys"),
                Some(json!({ "revoke_previous": revoke_previous })),
            )
            .await?;
            let v = expect(status, v, 201)?;
            println!("new key: {}", v["kid"].as_str().unwrap_or(""));
            println!(
                "keys held: {}",
                v["keys"].as_array().map_or(String::new(), |k| k
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "))
            );
            println!("dropped: {}", v["dropped"]);
        }
        EventCommand::Token {
            origin,
            id,
            ttl,
            session,
        } => {
            let mut body = json!({});
            if let Some(t) = ttl {
                body["ttl_secs"] = json!(t);
            }
            if let Some(s) = session {
                body["session"] = json!(s);
            }
            let (status, v) = call(
                &origin,
                Method::POST,
                &format!("/api/v1/events/{id}/tokens"),
                Some(body),
            )
            .await?;
            let v = expect(status, v, 201)?;
            println!("token: {}", v["token"].as_str().unwrap_or(""));
            println!("expires: {}", v["expires"].as_str().unwrap_or(""));
            println!("play: {}", v["play_url"].as_str().unwrap_or(""));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn relative_starts() {
        assert_eq!(super::relative_secs("90s").unwrap(), 90);
        assert_eq!(super::relative_secs("10m").unwrap(), 600);
        assert_eq!(super::relative_secs("2h").unwrap(), 7200);
        assert_eq!(super::relative_secs("45").unwrap(), 45);
        for bad in ["", "m", "10d", "1.5h", "99999999999999h"] {
            assert!(super::relative_secs(bad).is_err(), "{bad}");
        }
    }
}
