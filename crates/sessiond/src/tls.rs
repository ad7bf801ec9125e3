//! TLS for the listener (rustls with aws-lc-rs): `tls_cert` (a PEM chain,
//! leaf first) and `tls_key` (a PEM private key: PKCS#8, PKCS#1 or SEC1),
//! read at start and again on `SIGHUP`, so a renewed certificate is served
//! without a restart. A reload that fails (a missing or bad file) is logged
//! and the certificate in use stays. HTTP/1.1 only (ALPN `http/1.1`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {why}")]
pub struct TlsError {
    /// The file (or both, for a mismatch).
    pub path: String,
    /// What is wrong (never the key's bytes).
    pub why: String,
}

/// The served TLS configuration, replaceable while connections come in.
#[derive(Clone)]
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

fn load(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let bad = |p: &Path, why: String| TlsError {
        path: p.display().to_string(),
        why,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| bad(cert, format!("cannot read the certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(bad(cert, "no certificate in the file".into()));
    }
    // The key's own error text may quote nothing of the key; still, say
    // only what kind of failure it was.
    let private = PrivateKeyDer::from_pem_file(key).map_err(|_| {
        bad(
            key,
            "cannot read a PEM private key (PKCS#8, PKCS#1 or SEC1)".into(),
        )
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            bad(
                cert,
                format!("the certificate and the key do not go together: {e}"),
            )
        })?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

impl Tls {
    /// Reads `cert` and `key`.
    ///
    /// # Errors
    /// A file is missing or unreadable, holds no certificate or key, or
    /// the two do not match.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let cfg = load(cert, key)?;
        Ok(Tls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: Arc::new(RwLock::new(Arc::new(cfg))),
        })
    }

    /// Reads the files again and serves them to new connections; on
    /// failure the configuration in use stays.
    ///
    /// # Errors
    /// As [`Tls::load`].
    pub fn reload(&self) -> Result<(), TlsError> {
        let cfg = Arc::new(load(&self.cert, &self.key)?);
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = cfg;
        Ok(())
    }

    /// The acceptor for a new connection (with the latest certificate).
    #[must_use]
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let cfg = Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        tokio_rustls::TlsAcceptor::from(cfg)
    }
}

/// Handles `SIGHUP` until the task is aborted: re-reads the certificate and
/// key when TLS is on; otherwise only logs that there is nothing to reload
/// (so a stray `SIGHUP` never ends the process).
pub fn spawn_sighup_handler(tls: Option<Tls>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP: the certificate is never reloaded");
            return;
        };
        while hup.recv().await.is_some() {
            let Some(tls) = &tls else {
                tracing::info!("SIGHUP: nothing to reload (TLS is off)");
                continue;
            };
            match tls.reload() {
                Ok(()) => tracing::info!(cert = %tls.cert.display(), "TLS certificate reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "TLS reload failed; the certificate in use stays");
                }
            }
        }
    })
}
