//! sessiond over TLS: a self-signed certificate (made with `openssl`) is
//! served, a client that trusts it gets answers, plain HTTP on the TLS port
//! gets none, and `SIGHUP` swaps in a renewed certificate without a
//! restart; a broken file on reload keeps the old one.
#![allow(missing_docs, clippy::unwrap_used)]

mod process;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use process::Server;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A self-signed certificate for `localhost` and 127.0.0.1, written as
/// `<name>.pem` and `<name>.key` in `dir`.
fn self_signed(dir: &Path, name: &str) {
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(dir.join(format!("{name}.pem")))
        .output()
        .expect("openssl on the PATH")
        .status
        .success();
    assert!(ok, "openssl req");
}

/// GET `path` over TLS trusting only `ca`; the status line, or an error.
async fn get(addr: &str, ca: &Path, path: &str) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut s = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(
            ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
            tcp,
        )
        .await
        .map_err(|e| e.to_string())?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn https_with_a_certificate_reloaded_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    self_signed(d, "a");
    self_signed(d, "b");
    std::fs::copy(d.join("a.pem"), d.join("cert.pem")).unwrap();
    std::fs::copy(d.join("a.key"), d.join("key.pem")).unwrap();
    let data = tempfile::tempdir().unwrap();
    let cert = d.join("cert.pem");
    let key = d.join("key.pem");
    let s = Server::start(
        data.path(),
        &[
            ("SESSIOND_STORE", "memory"),
            ("SESSIOND_TLS_CERT", cert.to_str().unwrap()),
            ("SESSIOND_TLS_KEY", key.to_str().unwrap()),
        ],
    );
    assert_eq!(
        get(&s.addr, &d.join("a.pem"), "/healthz").await.unwrap(),
        "HTTP/1.1 200 OK"
    );
    // A client that trusts only the other certificate is refused.
    assert!(get(&s.addr, &d.join("b.pem"), "/healthz").await.is_err());
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", s.addr))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");

    // Renewed: b's files in place, then SIGHUP.
    std::fs::copy(d.join("b.pem"), &cert).unwrap();
    std::fs::copy(d.join("b.key"), &key).unwrap();
    let pid = s.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&s.addr, &d.join("b.pem"), "/healthz").await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate is served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(get(&s.addr, &d.join("a.pem"), "/healthz").await.is_err());

    // A broken file on reload: logged, and b stays in use.
    std::fs::write(&key, "not a key").unwrap();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.log_text().contains("TLS reload failed") {
        assert!(Instant::now() < deadline, "the failed reload is logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        get(&s.addr, &d.join("b.pem"), "/healthz").await.unwrap(),
        "HTTP/1.1 200 OK"
    );
    assert!(
        !s.log_text().contains("not a key"),
        "no key material in the log"
    );
}

#[test]
fn a_half_configured_or_broken_tls_setup_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(process::BIN)
        .args(["config", "check"])
        .env_clear()
        .env("SESSIOND_DATA_DIR", dir.path())
        .env("SESSIOND_TLS_CERT", "/nonexistent.pem")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls_key"));
    let out = Command::new(process::BIN)
        .arg("serve")
        .env_clear()
        .env("SESSIOND_DATA_DIR", dir.path())
        .env("SESSIOND_STORE", "memory")
        .env("SESSIOND_LISTEN", "127.0.0.1:0")
        .env("SESSIOND_TLS_CERT", "/nonexistent.pem")
        .env("SESSIOND_TLS_KEY", "/nonexistent.key")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent.pem"), "{err}");
}
