//! HTTP/3 on an edge, checked with a real third-party client: curl_cffi's `curl-cffi` CLI
//! (libcurl with ngtcp2/nghttp3, from PyPI; `make deps-h3client`, part of `make test`,
//! installs it) verifying the edge's certificate against a test CA, and Debian's curl over
//! HTTPS/HTTP/2 for the `Alt-Svc` header that points browsers at it.

#[path = "../../tests/common/tls.rs"]
mod tls;

use popcast_config::{Config, Secret};
use popcast_edge::Edge;
use std::path::Path;
use std::process::Command;
use std::time::Instant;
use tls::{h3_get, test_pki};

/// The response head of a GET over HTTPS with HTTP/2, from Debian's curl.
fn curl_h2_head(url: &str, ca_pem: &Path) -> String {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-m",
            "10",
            "--http2",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "--cacert",
        ])
        .arg(ca_pem)
        .arg(url)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_over_http3_from_a_real_client_and_alt_svc_over_http2() {
    let dir = std::env::temp_dir().join(format!("popcast-edge-h3-{}", std::process::id()));
    let (ca, leaf) = test_pki(&dir);
    // The origin is a UDP socket that never answers: the upstream link keeps retrying.
    let silent_origin = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut c = Config::default();
    c.edge.http_listen = "127.0.0.1:0".parse().unwrap();
    c.edge.tls = Some(leaf);
    c.edge.origin_ca_path = Some(ca.clone());
    c.edge.node_secret = Some(Secret::new("h3-test-secret"));
    c.edge.origin_relay = silent_origin.local_addr().unwrap().to_string();
    let edge = Edge::start(&c).await.expect("edge starts");
    let h3 = edge.h3_addr.expect("TLS is set, so HTTP/3 is on");
    assert_eq!(
        h3.port(),
        edge.http_addr.port(),
        "HTTP/3 on the TCP listener's port"
    );
    let alt_svc = format!("h3=\":{}\"; ma=86400", h3.port());

    // HTTP/3, the certificate checked against the test CA (by name and by address).
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{}/healthz", h3.port());
        let t = Instant::now();
        let got = tokio::task::spawn_blocking({
            let (url, ca, dir) = (url.clone(), ca.clone(), dir.clone());
            move || h3_get(&url, &ca, &dir)
        })
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
        eprintln!(
            "GET {url} over HTTP/3: {} in {:?} (CLI start included)",
            got.status,
            t.elapsed()
        );
        assert_eq!(got.status, 200, "{got:?}");
        let health: serde_json::Value = serde_json::from_slice(&got.body).expect("JSON body");
        assert_eq!(health["node_id"], "edge-local", "{health}");
        assert_eq!(health["upstream"]["connected"], false, "{health}");
        assert_eq!(got.header("content-type"), Some("application/json"));
        assert_eq!(
            got.header("content-length"),
            Some(got.body.len().to_string().as_str())
        );
        assert!(got.header("date").is_some(), "{got:?}");
        assert_eq!(got.header("alt-svc"), Some(alt_svc.as_str()));
    }

    // HTTPS over TCP advertises it.
    let head = curl_h2_head(&format!("https://localhost:{}/healthz", h3.port()), &ca);
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    assert!(
        head.lines()
            .any(|l| l.eq_ignore_ascii_case(&format!("alt-svc: {alt_svc}"))),
        "{head}"
    );

    drop(edge);
    drop(silent_origin);
    let _ = std::fs::remove_dir_all(&dir);
}
