//! Test TLS and HTTP/3 clients shared by the edge's and the root crate's integration tests:
//! a test CA with a leaf from the openssl CLI, and a GET over HTTP/3 with curl_cffi's CLI.
#![allow(dead_code)]

use popcast_config::TlsConfig;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A test CA and a leaf for `localhost` and 127.0.0.1 signed by it (`CA:FALSE`), from the
/// openssl CLI. Returns the CA's PEM file and the leaf's certificate and key.
pub fn test_pki(dir: &Path) -> (PathBuf, TlsConfig) {
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

/// The base64 SHA-256 of a certificate's SubjectPublicKeyInfo, as Chromium's
/// `--ignore-certificate-errors-spki-list` takes it, from the openssl CLI.
pub fn spki_sha256(cert_pem: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(
            "openssl x509 -in \"$1\" -pubkey -noout | openssl pkey -pubin -outform der \
             | openssl dgst -sha256 -binary | base64",
        )
        .arg("sh")
        .arg(cert_pem)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "spki hash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
