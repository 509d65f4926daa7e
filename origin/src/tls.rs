//! TLS for RTMPS and HTTPS: a rustls server configuration from PEM certificate and key files.

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
