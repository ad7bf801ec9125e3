//! The loopback OpenID provider of `tests/oidc/` (node-oidc-provider) as a
//! child process, with its control API: real logins, counted token-endpoint
//! calls, injected failures and revocations.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

pub struct Provider {
    child: Child,
    pub issuer: String,
    http: reqwest::Client,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

impl Provider {
    /// Starts the provider with access tokens living `access_ttl` seconds;
    /// `None` (with a notice) when Node.js or the provider's packages are
    /// missing, which fails under `CI=true`.
    pub fn start(access_ttl: u64) -> Option<Provider> {
        Self::start_args(access_ttl, &[])
    }

    /// [`Provider::start`] with a `private_key_jwt` client too,
    /// `sessiond-pkjwt`, whose ES256 private key the provider writes to
    /// `key_out`.
    pub fn start_with_pkjwt(access_ttl: u64, key_out: &std::path::Path) -> Option<Provider> {
        Self::start_args(access_ttl, &["--pkjwt-key-out", key_out.to_str().unwrap()])
    }

    fn start_args(access_ttl: u64, extra: &[&str]) -> Option<Provider> {
        let ready = dir().join("node_modules/oidc-provider").exists()
            && Command::new("node").arg("--version").output().is_ok();
        if !ready {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but the OpenID provider cannot run (node and `npm ci` in crates/sessiond/tests/oidc)"
            );
            eprintln!(
                "NOTICE: no OpenID provider (run `npm ci` in crates/sessiond/tests/oidc); upstream test skipped"
            );
            return None;
        }
        let mut child = Command::new("node")
            .current_dir(dir())
            .args([
                "provider.mjs",
                "--port",
                "0",
                "--access-ttl",
                &access_ttl.to_string(),
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line.strip_prefix("READY ") {
                    let _ = tx.send(port.trim().to_owned());
                }
            }
        });
        let Ok(port) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("the OpenID provider did not start");
        };
        Some(Provider {
            child,
            issuer: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        })
    }

    /// sessiond's settings for this provider as `idp`, refreshing when the
    /// access token expires within `buffer` seconds.
    pub fn env(&self, buffer: u64) -> Vec<(String, String)> {
        vec![
            (
                "SESSIOND_UPSTREAM__PROVIDERS__IDP__ISSUER".into(),
                self.issuer.clone(),
            ),
            (
                "SESSIOND_UPSTREAM__PROVIDERS__IDP__CLIENT_ID".into(),
                "sessiond-test".into(),
            ),
            (
                "SESSIOND_UPSTREAM__PROVIDERS__IDP__CLIENT_SECRET".into(),
                "sessiond-test-secret".into(),
            ),
            (
                "SESSIOND_UPSTREAM__PROVIDERS__IDP__REFRESH_BUFFER_SECS".into(),
                buffer.to_string(),
            ),
        ]
    }

    async fn call(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.issuer))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }

    /// A real login of `sub` (authorization code flow): the token answer.
    pub async fn login(&self, sub: &str) -> Value {
        self.login_as(sub, "sessiond-test").await
    }

    /// [`Provider::login`] through the client `client_id`.
    pub async fn login_as(&self, sub: &str, client_id: &str) -> Value {
        self.call(
            "/test/login",
            json!({"sub": sub, "scope": "openid offline_access", "client_id": client_id}),
        )
        .await
    }

    /// Refresh calls at the token endpoint since the last reset.
    pub async fn refresh_calls(&self) -> u64 {
        let r = self
            .http
            .get(format!("{}/test/calls", self.issuer))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        v["token_refresh"].as_u64().unwrap()
    }

    pub async fn reset_calls(&self) {
        self.call("/test/reset-calls", json!({})).await;
    }

    /// Every later token request waits `ms` first.
    pub async fn delay(&self, ms: u64) {
        self.call("/test/delay", json!({"ms": ms})).await;
    }

    /// The next `count` token requests (-1: all, 0: none) answer `status`.
    pub async fn fail(&self, status: u16, count: i64) {
        self.call("/test/fail", json!({"status": status, "count": count}))
            .await;
    }

    /// Revokes every grant of `sub`.
    pub async fn revoke(&self, sub: &str) {
        self.call("/test/revoke", json!({"sub": sub})).await;
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
