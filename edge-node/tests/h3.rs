//! HTTP/3 on an edge, checked with a real third-party client: curl_cffi's `curl-cffi` CLI
//! (libcurl with ngtcp2/nghttp3, from PyPI; `make deps-h3client`, part of `make test`,
//! installs it) verifying the edge's certificate against a test CA, and Debian's curl over
//! HTTPS/HTTP/2 for the `Alt-Svc` header that points browsers at it.

use popcast_config::{Config, Secret, TlsConfig};
use popcast_edge::Edge;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

/// A test CA and a leaf for `localhost` and 127.0.0.1 signed by it (`CA:FALSE`), from the
/// openssl CLI. Returns the CA's PEM file and the leaf's certificate and key.
fn test_pki(dir: &Path) -> (PathBuf, TlsConfig) {
    std::fs::create_dir_all(dir).unwrap();
    let p = |name: &str| dir.join(name);
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    let (ca, ca_key, cert, key, csr, ext) = (
        p("ca.pem"),
        p("ca-key.pem"),
        p("cert.pem"),
        p("key.pem"),
        p("leaf.csr"),
        p("leaf.ext"),
    );
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-days", "2", "-subj", "/CN=Popcast test CA"],
            &["-addext", "basicConstraints=critical,CA:TRUE"],
            &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            &["-keyout", &s(&ca_key), "-out", &s(&ca)],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-new"][..],
            &ec,
            &["-subj", "/CN=localhost", "-keyout", &s(&key), "-out", &s(&csr)],
        ]
        .concat(),
    );
    std::fs::write(
        &ext,
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&ca),
        "-CAkey",
        &s(&ca_key),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &s(&ext),
        "-out",
        &s(&cert),
    ]);
    (
        ca,
        TlsConfig {
            cert_path: cert,
            key_path: key,
        },
    )
}

/// What an HTTP/3 GET returned.
#[derive(Debug)]
pub struct H3Response {
    pub status: u16,
    /// Names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body's bytes as received.
    pub body: Vec<u8>,
}

impl H3Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// GET `url` over HTTP/3 only (no fallback to TCP) with curl_cffi's CLI, verifying the
/// server against the CA in `ca_pem`. Runs, in `work_dir`:
///
/// `REQUESTS_CA_BUNDLE=<ca_pem> CURL_CA_BUNDLE=<ca_pem> curl-cffi get --http3-only
///  --timeout 10 --download --output <file> --print h <url>`
///
/// which prints the response head (`HTTP/3 200 …`, then `name: value` lines) and writes the
/// body's raw bytes to `<file>` (a bare name: the CLI drops directories). The CLI prefers
/// `REQUESTS_CA_BUNDLE` to `CURL_CA_BUNDLE`, and machines here set both to the system
/// bundle, so both are overridden. A failed exchange (TLS, QUIC, a reset stream) is an
/// `Err`; so is a status the CLI did not print.
pub fn h3_get(url: &str, ca_pem: &Path, work_dir: &Path) -> Result<H3Response, String> {
    static N: AtomicU32 = AtomicU32::new(0);
    let file = format!(
        "h3-body-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let out = Command::new("curl-cffi")
        .args([
            "get",
            "--http3-only",
            "--timeout",
            "10",
            "--download",
            "--output",
            &file,
        ])
        .args(["--print", "h", url])
        .env("REQUESTS_CA_BUNDLE", ca_pem)
        .env("CURL_CA_BUNDLE", ca_pem)
        .current_dir(work_dir)
        .output()
        .map_err(|e| {
            format!("cannot run curl-cffi (`make deps-h3client`, part of `make test`, installs it): {e}")
        })?;
    let body = std::fs::read(work_dir.join(&file));
    let _ = std::fs::remove_file(work_dir.join(&file));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let fail = || {
        format!(
            "curl-cffi get {url}: {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    };
    // The CLI exits 1 for statuses >= 400 too, after printing them.
    let mut lines = stdout.lines();
    let status_line = lines
        .next()
        .filter(|l| l.starts_with("HTTP/3 "))
        .ok_or_else(fail)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(fail)?;
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
        .collect();
    Ok(H3Response {
        status,
        headers,
        body: body.map_err(|e| format!("{}: no body file: {e}", fail()))?,
    })
}

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
