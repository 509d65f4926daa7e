//! TLS server configurations (rustls, ring) from PEM certificate and key files, for HTTPS,
//! RTMPS and the QUIC relay.

use popcast_config::TlsConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// Why TLS could not be set up. Names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A server configuration offering `alpn` (e.g. `h2`, `http/1.1`; empty for RTMPS).
pub fn server_config(tls: &TlsConfig, alpn: &[&[u8]]) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let file_err = |p: &std::path::Path, reason: String| TlsError::File {
        path: p.display().to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert_path)
        .map_err(|e| file_err(&tls.cert_path, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(&tls.cert_path, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_err(&tls.cert_path, "no certificate in the file".into()));
    }
    let key =
        PrivateKeyDer::from_pem_file(&tls.key_path).map_err(|e| file_err(&tls.key_path, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The certificate and key in `dir` (`cert.pem`, `key.pem`), made self-signed for `names`
/// the first time and kept, so that peers pinning it keep trusting it across restarts.
pub fn self_signed(dir: &std::path::Path, names: &[&str]) -> Result<TlsConfig, TlsError> {
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    let file_err = |p: &std::path::Path, reason: String| TlsError::File {
        path: p.display().to_string(),
        reason,
    };
    if !cert_path.exists() || !key_path.exists() {
        std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e.to_string()))?;
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let made =
            rcgen::generate_simple_self_signed(names).map_err(|e| file_err(&cert_path, e.to_string()))?;
        // The key first, readable by the owner only; the certificate last, so a crash in
        // between leaves no certificate without its key.
        write_private(&key_path, made.key_pair.serialize_pem().as_bytes())
            .map_err(|e| file_err(&key_path, e.to_string()))?;
        std::fs::write(&cert_path, made.cert.pem()).map_err(|e| file_err(&cert_path, e.to_string()))?;
    }
    Ok(TlsConfig { cert_path, key_path })
}

fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(data)
}

/// A client configuration (TLS 1.3, ring) trusting only the certificates in the PEM file
/// `ca_path`, offering `alpn`.
pub fn client_config(ca_path: &std::path::Path, alpn: &[&[u8]]) -> Result<rustls::ClientConfig, TlsError> {
    let file_err = |reason: String| TlsError::File {
        path: ca_path.display().to_string(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_path).map_err(|e| file_err(e.to_string()))? {
        roots
            .add(cert.map_err(|e| file_err(e.to_string()))?)
            .map_err(|e| file_err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(file_err("no certificate in the file".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}
