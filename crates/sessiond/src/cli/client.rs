//! The operator commands: one HTTP call each to a running server.
//!
//! Revoking is idempotent, with one rule for sessions and API keys alike:
//! the command succeeds when the thing cannot be used afterwards. The
//! server revoked it (or it already was): `revoked …`; the server does not
//! know it (404 `not_found`: revoked and gone, or never existed):
//! `… already revoked or unknown: nothing to do`. Both exit 0; any other
//! refusal (a malformed id, a missing scope) fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{ApiKeyCmd, Cmd, KeysCmd, SessionCmd, SubjectCmd};

/// Percent-encodes a path segment (everything but RFC 3986 unreserved).
#[must_use]
pub(super) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where the operator commands go, and with which key.
#[derive(Debug)]
pub(super) struct Target {
    /// `--server`: `http://host:port`, or a bare `host:port`.
    pub(super) server: String,
    /// `--api-key`.
    pub(super) api_key: Option<String>,
    /// `--config`: its `data_dir` holds the default admin key.
    pub(super) config: Option<PathBuf>,
    /// `--ca-cert`: extra roots for `https://`.
    pub(super) ca_cert: Option<PathBuf>,
}

/// The base URL of `--server`: a bare `host:port` is taken as
/// `http://host:port`; `https://` is TLS (see `--ca-cert`); any other
/// scheme is refused with a message that says so.
pub(super) fn base_url(server: &str) -> Result<String, String> {
    let s = server.trim();
    if s.is_empty() {
        return Err("--server is empty: give host:port or http://host:port".into());
    }
    let full = if s.contains("://") {
        s.to_owned()
    } else {
        format!("http://{s}")
    };
    let url = reqwest::Url::parse(&full).map_err(|e| {
        format!("--server {s}: not a server address ({e}); give host:port or http://host:port")
    })?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "--server {s}: unsupported scheme {other}://; give host:port, http://host:port or https://host:port"
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "--server {s}: no host; give host:port or http://host:port"
        ));
    }
    Ok(full.trim_end_matches('/').to_owned())
}

/// The admin key in the data dir: the config's `data_dir` when a config
/// file is named (`--config` or `SESSIOND_CONFIG`), else
/// `SESSIOND_DATA_DIR`, else `./sessiond-data`.
fn default_key(config: Option<&Path>) -> Result<Option<String>, String> {
    let dir = if config.is_some() || std::env::var_os("SESSIOND_CONFIG").is_some() {
        crate::config::Config::from_process(config)
            .map_err(|e| format!("config: {e}"))?
            .data_dir
    } else {
        std::env::var_os("SESSIOND_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("./sessiond-data"))
    };
    let Ok(text) = std::fs::read_to_string(dir.join(crate::api_keys::ADMIN_KEY_FILE)) else {
        return Ok(None);
    };
    let k = text.trim().to_owned();
    Ok((!k.is_empty()).then_some(k))
}

/// A call that did not succeed.
#[derive(Debug)]
enum CallError {
    /// The server answered with an error status.
    Refused {
        /// The status.
        status: StatusCode,
        /// The error code of the body (`not_found`, …).
        code: String,
        /// Its message.
        message: String,
    },
    /// No answer, or one that could not be read.
    Failed(String),
}

impl CallError {
    /// A 404 `not_found`: the server does not know the thing.
    fn is_not_found(&self) -> bool {
        matches!(self, CallError::Refused { status, code, .. }
            if *status == StatusCode::NOT_FOUND && code == "not_found")
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Refused { status, code, .. }
                if *status == StatusCode::UNAUTHORIZED && code == "unauthenticated" =>
            {
                f.write_str("the server refused the API key (unauthenticated)")
            }
            CallError::Refused {
                status,
                code,
                message,
            } => write!(f, "{} {code}: {message}", status.as_u16()),
            CallError::Failed(why) => f.write_str(why),
        }
    }
}

impl From<CallError> for String {
    fn from(e: CallError) -> String {
        e.to_string()
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Option<Value>, CallError> {
        let url = format!("{}{}", self.base.trim_end_matches('/'), path);
        let mut req = self.http.request(method, &url).bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.map_err(|e| {
            CallError::Failed(if e.is_connect() || e.is_timeout() {
                format!("cannot reach sessiond at {}: is it running?", self.base)
            } else {
                format!("request to {} failed: {e}", self.base)
            })
        })?;
        let status = res.status();
        let text = res
            .text()
            .await
            .map_err(|e| CallError::Failed(format!("reading the answer failed: {e}")))?;
        let v: Option<Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            return Ok(v);
        }
        let code = v
            .as_ref()
            .and_then(|v| v.get("error"))
            .and_then(Value::as_str)
            .unwrap_or("error")
            .to_owned();
        let msg = v
            .as_ref()
            .and_then(|v| v.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        Err(CallError::Refused {
            status,
            code,
            message: msg,
        })
    }

    /// `DELETE path`, idempotent (see the module docs): prints what
    /// happened to `what`.
    async fn revoke(&self, path: &str, what: &str) -> Result<(), String> {
        match self.call(Method::DELETE, path, None).await {
            Ok(_) => println!("revoked {what}"),
            Err(e) if e.is_not_found() => {
                println!("{what} already revoked or unknown: nothing to do");
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
}

fn print(v: Option<Value>) {
    if let Some(v) = v {
        println!(
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
        );
    }
}

/// One signing key as `/v1/keys` answers it.
#[derive(Debug, serde::Deserialize)]
struct KeyRow {
    kid: String,
    alg: String,
    created_at: String,
    retires_at: Option<String>,
    active: bool,
}

/// The keys of a `{keys: [...]}` answer.
fn key_rows(v: Option<&Value>) -> Result<Vec<KeyRow>, String> {
    let keys = v
        .and_then(|v| v.get("keys"))
        .cloned()
        .ok_or("unexpected answer from the server (no `keys`)")?;
    serde_json::from_value(keys).map_err(|e| format!("unexpected answer from the server: {e}"))
}

/// One key per line, `*` before the active one:
/// `* <kid>  <alg>  <created_at>  <retires_at or ->`.
fn key_lines(rows: &[KeyRow]) -> Vec<String> {
    let kid_w = rows.iter().map(|r| r.kid.len()).max().unwrap_or(0);
    let alg_w = rows.iter().map(|r| r.alg.len()).max().unwrap_or(0);
    rows.iter()
        .map(|r| {
            format!(
                "{} {:kid_w$}  {:alg_w$}  {}  {}",
                if r.active { '*' } else { ' ' },
                r.kid,
                r.alg,
                r.created_at,
                r.retires_at.as_deref().unwrap_or("-"),
            )
        })
        .collect()
}

fn print_keys(rows: &[KeyRow]) {
    if rows.is_empty() {
        println!("no signing keys (access tokens are not configured)");
    }
    for line in key_lines(rows) {
        println!("{line}");
    }
}

/// Runs one operator command.
pub(super) async fn run(target: Target, cmd: Cmd) -> Result<(), String> {
    let base = base_url(&target.server)?;
    let key = match target.api_key {
        Some(k) => k,
        None => default_key(target.config.as_deref())?
            .ok_or("no API key: pass --api-key or set SESSIOND_API_KEY")?,
    };
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5));
    if let Some(path) = &target.ca_cert {
        let pem = std::fs::read(path).map_err(|e| format!("--ca-cert {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("--ca-cert {}: not PEM certificates ({e})", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "--ca-cert {}: no certificate in it",
                path.display()
            ));
        }
        builder = builder.tls_certs_merge(certs);
    }
    let http = builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let c = Client { http, base, key };
    match cmd {
        Cmd::Session { cmd } => match cmd {
            SessionCmd::List {
                subject,
                limit,
                cursor,
            } => {
                let mut path = format!(
                    "/v1/subjects/{}/sessions?limit={limit}",
                    encode_segment(&subject)
                );
                if let Some(cur) = cursor {
                    path.push_str(&format!("&cursor={}", encode_segment(&cur)));
                }
                print(c.call(Method::GET, &path, None).await?);
            }
            SessionCmd::Show { id } => {
                let path = format!("/v1/sessions/{}", encode_segment(&id));
                print(c.call(Method::GET, &path, None).await?);
            }
            SessionCmd::Revoke { id } => {
                let path = format!("/v1/sessions/{}", encode_segment(&id));
                c.revoke(&path, &format!("session {id}")).await?;
            }
        },
        Cmd::Subject {
            cmd: SubjectCmd::List { limit, cursor },
        } => {
            let mut path = format!("/v1/subjects?limit={limit}");
            if let Some(cur) = cursor {
                path.push_str(&format!("&cursor={}", encode_segment(&cur)));
            }
            print(c.call(Method::GET, &path, None).await?);
        }
        Cmd::Subject {
            cmd: SubjectCmd::Revoke { subject, except },
        } => {
            let mut path = format!("/v1/subjects/{}/sessions", encode_segment(&subject));
            if let Some(e) = except {
                path.push_str(&format!("?except={}", encode_segment(&e)));
            }
            print(c.call(Method::DELETE, &path, None).await?);
        }
        Cmd::Stats => print(c.call(Method::GET, "/v1/stats", None).await?),
        Cmd::Purge => print(c.call(Method::POST, "/v1/purge", None).await?),
        Cmd::ApiKey { cmd } => match cmd {
            ApiKeyCmd::Create {
                scopes,
                name,
                tenant,
            } => {
                let body = json!({"scopes": scopes, "name": name, "tenant": tenant});
                print(c.call(Method::POST, "/v1/api-keys", Some(body)).await?);
            }
            ApiKeyCmd::List => print(c.call(Method::GET, "/v1/api-keys", None).await?),
            ApiKeyCmd::Revoke { id } => {
                let path = format!("/v1/api-keys/{}", encode_segment(&id));
                c.revoke(&path, &format!("API key {id}")).await?;
            }
        },
        Cmd::Keys {
            cmd: KeysCmd::List { json },
        } => {
            let v = c.call(Method::GET, "/v1/keys", None).await?;
            let rows = key_rows(v.as_ref())?;
            if json {
                print(v);
            } else {
                print_keys(&rows);
            }
        }
        Cmd::Keys {
            cmd: KeysCmd::Rotate { json, .. },
        } => {
            let v = c.call(Method::POST, "/v1/keys/rotate", None).await?;
            let rows = key_rows(v.as_ref())?;
            if json {
                print(v);
            } else {
                print_keys(&rows);
                match rows.iter().find(|r| r.active) {
                    Some(r) => println!("rotated: the active key is now {}", r.kid),
                    None => println!("rotated (no active key reported)"),
                }
            }
        }
        Cmd::Serve | Cmd::Config { .. } | Cmd::Completions { .. } => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{KeyRow, base_url, encode_segment, key_lines, key_rows};

    #[test]
    fn server_addresses_without_a_scheme_are_http() {
        assert_eq!(base_url("127.0.0.1:7700").unwrap(), "http://127.0.0.1:7700");
        assert_eq!(base_url("localhost:7700").unwrap(), "http://localhost:7700");
        assert_eq!(base_url("http://h:1/").unwrap(), "http://h:1");
        assert_eq!(base_url("[::1]:7700").unwrap(), "http://[::1]:7700");
        assert_eq!(base_url("https://h:1").unwrap(), "https://h:1");
        for (bad, says) in [
            ("ftp://h:1", "unsupported scheme ftp://"),
            ("", "empty"),
            ("http://", "host:port"),
        ] {
            let e = base_url(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(encode_segment("tg:123"), "tg%3A123");
        assert_eq!(encode_segment("ü"), "%C3%BC");
    }

    #[test]
    fn keys_are_one_per_line_with_the_active_marked() {
        let v = serde_json::json!({"keys": [
            {"kid": "k1", "alg": "EdDSA", "created_at": "2024-01-01T00:00:00Z",
             "retires_at": "2024-01-01T00:11:00Z", "active": false},
            {"kid": "key2", "alg": "EdDSA", "created_at": "2024-01-01T00:01:00Z",
             "retires_at": null, "active": true},
        ]});
        let rows: Vec<KeyRow> = key_rows(Some(&v)).unwrap();
        assert_eq!(
            key_lines(&rows),
            [
                "  k1    EdDSA  2024-01-01T00:00:00Z  2024-01-01T00:11:00Z",
                "* key2  EdDSA  2024-01-01T00:01:00Z  -",
            ]
        );
        assert!(key_rows(Some(&serde_json::json!({"nope": 1}))).is_err());
        assert!(key_rows(None).is_err());
    }
}
