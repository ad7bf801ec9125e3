//! Black-box tests: the real `sessiond` binary on a free loopback port with
//! a temporary data dir — first start, restart after SIGTERM and after
//! `kill -9` (nothing acknowledged is lost), key files, the CLI, and
//! abuse at the socket level.
#![allow(missing_docs, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

mod process;

use process::{BIN, Server, client, get, post};

#[tokio::test]
async fn first_start_keys_then_graceful_restart_keeps_everything() {
    let d = tempfile::tempdir().unwrap();
    let s = Server::start(d.path(), &[]);
    for f in ["admin.key", "server.keys", "api-keys.json"] {
        let mode = std::fs::metadata(d.path().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let key = s.admin_key();
    assert!(key.starts_with("sdk_"));
    let first_log = s.log_text();
    assert!(
        first_log.contains("admin.key"),
        "the log names the key file"
    );
    assert!(!first_log.contains(&key), "never the key itself");
    let keys_before = std::fs::read(d.path().join("server.keys")).unwrap();
    let c = client();
    let (st, created) = post(
        &c,
        &s,
        &key,
        "/v1/sessions",
        json!({"subject": "alice", "attributes": {"a": 1}}),
    )
    .await;
    assert_eq!(st, 201);
    let token = created["token"].as_str().unwrap().to_owned();
    let csrf = created["csrf_token"].as_str().unwrap().to_owned();
    let (st, _) = post(
        &c,
        &s,
        &key,
        "/v1/sessions/validate",
        json!({"token": token}),
    )
    .await;
    assert_eq!(st, 200);
    let (st, ready) = get(&c, &s, &key, "/readyz").await;
    assert_eq!((st, ready["status"].as_str()), (200, Some("ready")));
    let (status, stdout) = s.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        !stdout.contains(&key),
        "the key is printed only to a terminal"
    );

    let s = Server::start(d.path(), &[]);
    let log = s.log_text();
    assert_eq!(
        std::fs::read(d.path().join("server.keys")).unwrap(),
        keys_before
    );
    assert_eq!(s.admin_key(), key);
    let (st, v) = post(
        &c,
        &s,
        &key,
        "/v1/sessions/validate",
        json!({"token": token, "csrf_token": csrf}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["session"]["attributes"], json!({"a": 1}));
    let (_, stats) = get(&c, &s, &key, "/v1/stats").await;
    assert_eq!(stats["store"]["kind"], "embedded");
    let (_, status) = (0, s.terminate().0);
    assert!(status.success());
    // No secret in the logs of either run.
    assert!(!log.contains(&key) && !log.contains(&token) && !log.contains(&csrf));
}

#[tokio::test]
async fn kill_9_loses_nothing_acknowledged() {
    let d = tempfile::tempdir().unwrap();
    let s = Server::start(d.path(), &[]);
    let key = s.admin_key();
    let c = client();
    let mut live = Vec::new();
    let mut revoked = Vec::new();
    let mut handles = Vec::new();
    for i in 0..40 {
        let (c, url, key) = (c.clone(), s.url("/v1/sessions"), key.clone());
        handles.push(tokio::spawn(async move {
            let r = c
                .post(url)
                .bearer_auth(&key)
                .json(&json!({"subject": format!("u{}", i % 5)}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 201);
            r.json::<Value>().await.unwrap()
        }));
    }
    for h in handles {
        let v = h.await.unwrap();
        live.push((
            v["session"]["id"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        ));
    }
    // Patch some, revoke some: all acknowledged before the kill.
    for (id, _) in live.iter().take(10) {
        let r = c
            .patch(s.url(&format!("/v1/sessions/{id}/attributes")))
            .bearer_auth(&key)
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"step":"paid"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    for _ in 0..5 {
        let (id, token) = live.pop().unwrap();
        let (st, _) = post(&c, &s, &key, "/v1/sessions/revoke", json!({"token": token})).await;
        assert_eq!(st, 204);
        revoked.push((id, token));
    }
    s.kill9();

    let s = Server::start(d.path(), &[]);
    for (i, (id, token)) in live.iter().enumerate() {
        let (st, v) = post(
            &c,
            &s,
            &key,
            "/v1/sessions/validate",
            json!({"token": token}),
        )
        .await;
        assert_eq!(st, 200, "session {id} lost: {v}");
        if i < 10 {
            assert_eq!(v["session"]["attributes"], json!({"step": "paid"}));
            assert_eq!(v["session"]["version"], 2);
        }
    }
    for (_, token) in &revoked {
        let (st, v) = post(
            &c,
            &s,
            &key,
            "/v1/sessions/validate",
            json!({"token": token}),
        )
        .await;
        assert_eq!((st, v["error"].as_str()), (401, Some("invalid_token")));
    }
    assert!(s.terminate().0.success());
}

#[test]
fn missing_or_corrupt_keys_on_a_later_start_are_errors() {
    let d = tempfile::tempdir().unwrap();
    drop(Server::start(d.path(), &[]));
    let run = || {
        Command::new(BIN)
            .arg("serve")
            .env("SESSIOND_LISTEN", "127.0.0.1:0")
            .env("SESSIOND_DATA_DIR", d.path())
            .output()
            .unwrap()
    };
    let keys = std::fs::read(d.path().join("server.keys")).unwrap();
    std::fs::write(d.path().join("server.keys"), b"{not json").unwrap();
    let out = run();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt"));
    std::fs::remove_file(d.path().join("server.keys")).unwrap();
    let out = run();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));
    assert!(
        !d.path().join("server.keys").exists(),
        "never silently regenerated"
    );
    std::fs::write(d.path().join("server.keys"), keys).unwrap();
    let s = Server::start(d.path(), &[]);
    drop(s);
}

/// A first start that stopped half-way (here: server keys written, the
/// store opened, no API keys yet) resumes on the next start instead of
/// leaving a data dir that can never start.
#[tokio::test]
async fn an_interrupted_first_start_resumes() {
    let d = tempfile::tempdir().unwrap();
    drop(Server::start(d.path(), &[]));
    let keys = std::fs::read(d.path().join("server.keys")).unwrap();
    for f in ["initialized", "api-keys.json", "admin.key"] {
        std::fs::remove_file(d.path().join(f)).unwrap();
    }
    let s = Server::start(d.path(), &[]);
    let (st, _) = get(&client(), &s, &s.admin_key(), "/v1/stats").await;
    assert_eq!(st, 200);
    assert_eq!(
        std::fs::read(d.path().join("server.keys")).unwrap(),
        keys,
        "keys kept"
    );
    assert!(d.path().join("initialized").exists());
    assert!(s.terminate().0.success());
}

#[tokio::test]
async fn env_admin_key_is_extra_and_never_stored() {
    let d = tempfile::tempdir().unwrap();
    let env_key = "e".repeat(40);
    let s = Server::start(d.path(), &[("SESSIOND_ADMIN_KEY", &env_key)]);
    let c = client();
    let (st, _) = get(&c, &s, &env_key, "/v1/stats").await;
    assert_eq!(st, 200);
    let (st, _) = get(&c, &s, &s.admin_key(), "/v1/stats").await;
    assert_eq!(st, 200);
    let stored = std::fs::read_to_string(d.path().join("api-keys.json")).unwrap();
    assert!(!stored.contains(&env_key));
    assert!(s.terminate().0.success());
    let s = Server::start(d.path(), &[]);
    let (st, v) = get(&c, &s, &env_key, "/v1/stats").await;
    assert_eq!((st, v["error"].as_str()), (401, Some("unauthenticated")));
    drop(s);
    let out = Command::new(BIN)
        .arg("serve")
        .env("SESSIOND_LISTEN", "127.0.0.1:0")
        .env("SESSIOND_DATA_DIR", d.path())
        .env("SESSIOND_ADMIN_KEY", "short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32"));
}

fn cli(s: &Server, key: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .args(["--server", &format!("http://{}", s.addr)]);
    if let Some(k) = key {
        cmd.env("SESSIOND_API_KEY", k);
    }
    cmd.env("SESSIOND_DATA_DIR", "/nonexistent");
    cmd.args(args).output().unwrap()
}

fn stdout_json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[tokio::test]
async fn operator_cli() {
    let d = tempfile::tempdir().unwrap();
    let s = Server::start(d.path(), &[]);
    let key = s.admin_key();
    let c = client();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (_, v) = post(
            &c,
            &s,
            &key,
            "/v1/sessions",
            json!({"subject": "team/alice"}),
        )
        .await;
        ids.push(v["session"]["id"].as_str().unwrap().to_owned());
    }
    let k = Some(key.as_str());
    let v = stdout_json(&cli(&s, k, &["stats"]));
    assert_eq!(v["live"], 3);
    let v = stdout_json(&cli(&s, k, &["session", "list", "--subject", "team/alice"]));
    assert_eq!(v["sessions"].as_array().unwrap().len(), 3);
    let v = stdout_json(&cli(&s, k, &["session", "show", &ids[0]]));
    assert_eq!(v["session"]["subject"], "team/alice");
    assert!(cli(&s, k, &["session", "revoke", &ids[0]]).status.success());
    let o = cli(&s, k, &["session", "show", &ids[0]]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not_found"));
    let v = stdout_json(&cli(
        &s,
        k,
        &["subject", "revoke", "team/alice", "--except", &ids[1]],
    ));
    assert_eq!(v["revoked"], 1);
    let v = stdout_json(&cli(&s, k, &["purge"]));
    assert!(v["purged"].is_number());
    let v = stdout_json(&cli(
        &s,
        k,
        &[
            "api-key",
            "create",
            "--scope",
            "sessions:read",
            "--name",
            "ro",
        ],
    ));
    let new_key = v["key"].as_str().unwrap().to_owned();
    let new_id = v["api_key"]["id"].as_str().unwrap().to_owned();
    let v = stdout_json(&cli(&s, k, &["api-key", "list"]));
    assert!(
        v["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == new_id.as_str())
    );
    assert!(!v.to_string().contains(&new_key));
    let v = stdout_json(&cli(
        &s,
        Some(&new_key),
        &["session", "list", "--subject", "team/alice"],
    ));
    assert_eq!(v["sessions"].as_array().unwrap().len(), 1);
    let o = cli(&s, Some(&new_key), &["stats"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("insufficient_scope"));
    assert!(cli(&s, k, &["api-key", "revoke", &new_id]).status.success());
    // Wrong key, no key, unreachable server: non-zero, one line.
    let o = cli(&s, Some(&new_key), &["stats"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("refused the API key"), "{err}");
    assert_eq!(err.trim().lines().count(), 1);
    let o = cli(&s, None, &["stats"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no API key"));
    let addr = s.addr.clone();
    assert!(s.terminate().0.success());
    let o = Command::new(BIN)
        .args([
            "--server",
            &format!("http://{addr}"),
            "--api-key",
            &key,
            "stats",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot reach sessiond"), "{err}");
    assert_eq!(err.trim().lines().count(), 1);
}

/// `(active, kid, retires_at)` of each line of `sessiond keys list`.
fn key_lines(o: &Output) -> Vec<(bool, String, String)> {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with("rotated"))
        .map(|l| {
            let active = l.starts_with('*');
            let f: Vec<&str> = l[1..].split_whitespace().collect();
            assert_eq!(f.len(), 4, "{l}");
            (active, f[0].to_owned(), f[3].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn operator_cli_lists_and_rotates_signing_keys() {
    let d = tempfile::tempdir().unwrap();
    let s = Server::start(d.path(), &[]);
    let key = s.admin_key();
    let k = Some(key.as_str());
    let before = key_lines(&cli(&s, k, &["keys", "list"]));
    assert_eq!(before.len(), 1, "{before:?}");
    assert!(before[0].0, "{before:?}");
    assert_eq!(before[0].2, "-");
    let old = before[0].1.clone();

    let o = cli(&s, k, &["keys", "rotate"]);
    let after = key_lines(&o);
    let new = after.iter().find(|x| x.0).unwrap().1.clone();
    assert_ne!(new, old);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("active key is now {new}")), "{out}");

    let listed = key_lines(&cli(&s, k, &["keys", "list"]));
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed.iter().filter(|x| x.0).count(), 1);
    let o_row = listed.iter().find(|x| x.1 == old).unwrap();
    assert!(!o_row.0 && o_row.2 != "-", "{o_row:?}");
    let n_row = listed.iter().find(|x| x.1 == new).unwrap();
    assert!(n_row.0 && n_row.2 == "-", "{n_row:?}");
    let v = stdout_json(&cli(&s, k, &["keys", "list", "--json"]));
    assert_eq!(v["keys"].as_array().unwrap().len(), 2);

    let r = client()
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let jwks: Value = r.json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|j| j["kid"].as_str())
        .collect();
    assert!(
        kids.contains(&old.as_str()) && kids.contains(&new.as_str()),
        "{jwks}"
    );

    // Not an admin key: the server's error, non-zero.
    let (_, v) = post(
        &client(),
        &s,
        &key,
        "/v1/api-keys",
        json!({"scopes": ["sessions:read"]}),
    )
    .await;
    let ro = v["key"].as_str().unwrap().to_owned();
    let o = cli(&s, Some(&ro), &["keys", "rotate"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("insufficient_scope"));
    assert_eq!(key_lines(&cli(&s, k, &["keys", "list"])).len(), 2);
}

#[test]
fn config_check_names_the_bad_field() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("c.toml");
    std::fs::write(
        &f,
        "listen = \"127.0.0.1:7701\"\n[policy]\nidle_timeout_secs = 900\n",
    )
    .unwrap();
    let ok = Command::new(BIN)
        .args(["config", "check", "--config"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    std::fs::write(
        &f,
        "[policy]\nidle_timeout_secs = 100\nabsolute_timeout_secs = 10\n",
    )
    .unwrap();
    let bad = Command::new(BIN)
        .args(["config", "check", "--config"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("policy.idle_timeout_secs"));
    let bad = Command::new(BIN)
        .args(["config", "check"])
        .env("SESSIOND_CONFIG", &f)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let bad = Command::new(BIN)
        .args(["config", "check"])
        .env("SESSIOND_POLICY__TOUCH_INTERVAL_SECS", "abc")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("touch_interval_secs"));
}

fn raw_request(addr: &str, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A short SESSIOND_ADMIN_KEY is a configuration error: `config check`
/// names it, and `serve` refuses before it writes anything.
#[test]
fn a_short_env_admin_key_is_refused_up_front() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let out = Command::new(BIN)
        .args(["config", "check"])
        .env("SESSIOND_ADMIN_KEY", "short")
        .env("SESSIOND_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SESSIOND_ADMIN_KEY"));
    let out = Command::new(BIN)
        .arg("serve")
        .env("SESSIOND_ADMIN_KEY", "short")
        .env("SESSIOND_DATA_DIR", &data)
        .env("SESSIOND_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!data.join("server.keys").exists(), "nothing written");
}

/// A client that sends its headers and then stalls in the body gets 408
/// once the read timeout passes, instead of holding the connection.
#[test]
fn a_stalled_body_is_408() {
    let d = tempfile::tempdir().unwrap();
    let s = Server::start(d.path(), &[("SESSIOND_HEADER_READ_TIMEOUT_SECS", "1")]);
    let key = s.admin_key();
    let head = format!(
        "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 50\r\nConnection: close\r\n\r\n{{\"sub"
    );
    let started = std::time::Instant::now();
    let r = raw_request(&s.addr, head.as_bytes());
    assert!(r.starts_with("HTTP/1.1 408"), "{r}");
    assert!(r.contains("request_timeout"), "{r}");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(s.terminate().0.success());
}

#[tokio::test]
async fn socket_level_abuse_never_stops_the_server() {
    let d = tempfile::tempdir().unwrap();
    let s = Server::start(d.path(), &[]);
    // A header block larger than hyper's buffer: 431 all the same.
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(300_000)
    );
    let r = raw_request(&s.addr, big.as_bytes());
    assert!(r.starts_with("HTTP/1.1 431"), "{}", &r[..r.len().min(200)]);
    // A declared body over the limit: 413 before it is sent.
    let key = s.admin_key();
    let head = format!(
        "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\nConnection: close\r\n\r\n"
    );
    let r = raw_request(&s.addr, head.as_bytes());
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");
    assert!(r.contains("payload_too_large"));
    // Garbage bytes.
    let r = raw_request(&s.addr, b"\x00\x01\x02 garbage\r\n\r\n");
    assert!(r.is_empty() || r.starts_with("HTTP/1.1 400"), "{r}");
    // Deeply nested JSON.
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let c = client();
    let r = c
        .post(s.url("/v1/sessions"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(nested)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    // A fresh client: the server may close the connection it answered
    // early (before reading the whole body), and a pooled connection could
    // be reused in that instant.
    let (st, _) = get(&client(), &s, &key, "/healthz").await;
    assert_eq!(st, 200);
    assert!(s.terminate().0.success());
}

#[tokio::test]
async fn racing_upgrades_over_http_have_one_winner() {
    let d = tempfile::tempdir().unwrap();
    let s = Server::start(d.path(), &[]);
    let key = s.admin_key();
    for _ in 0..5 {
        let c = client();
        let (_, v) = post(&c, &s, &key, "/v1/sessions", json!({})).await;
        let token = v["token"].as_str().unwrap().to_owned();
        let barrier = Arc::new(tokio::sync::Barrier::new(24));
        let mut tasks = Vec::new();
        for i in 0..24 {
            let (b, url, key, token) = (
                barrier.clone(),
                s.url("/v1/sessions/upgrade"),
                key.clone(),
                token.clone(),
            );
            let c = client();
            tasks.push(tokio::spawn(async move {
                b.wait().await;
                let r = c
                    .post(url)
                    .bearer_auth(&key)
                    .json(&json!({"token": token, "subject": format!("u{i}")}))
                    .send()
                    .await
                    .unwrap();
                let st = r.status().as_u16();
                (st, r.json::<Value>().await.unwrap_or(Value::Null))
            }));
        }
        let mut winners = 0;
        for t in tasks {
            let (st, v) = t.await.unwrap();
            match st {
                200 => winners += 1,
                _ => assert_eq!((st, v["error"].as_str()), (401, Some("invalid_token"))),
            }
        }
        assert_eq!(winners, 1);
    }
    assert!(s.terminate().0.success());
}

/// SIGTERM while creates are in flight: every create that got a 201
/// survives the restart (drain, then flush).
#[tokio::test]
async fn sigterm_drains_in_flight_requests_and_keeps_every_2xx() {
    let d = tempfile::tempdir().unwrap();
    let s = Server::start(d.path(), &[]);
    let key = s.admin_key();
    let url = s.url("/v1/sessions");
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (url, key) = (url.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i % 50)).await;
            let r = client()
                .post(url)
                .bearer_auth(&key)
                .json(&json!({"subject": format!("drain-{i}")}))
                .send()
                .await
                .ok()?;
            if r.status().as_u16() != 201 {
                return None;
            }
            let v: Value = r.json().await.ok()?;
            Some(v["token"].as_str()?.to_owned())
        }));
    }
    tokio::time::sleep(Duration::from_millis(25)).await;
    let (status, _) = tokio::task::spawn_blocking(move || s.terminate())
        .await
        .unwrap();
    assert!(status.success());
    let mut acknowledged = Vec::new();
    for t in tasks {
        if let Some(token) = t.await.unwrap() {
            acknowledged.push(token);
        }
    }
    let s = Server::start(d.path(), &[]);
    let c = client();
    for token in &acknowledged {
        let (st, v) = post(
            &c,
            &s,
            &key,
            "/v1/sessions/validate",
            json!({"token": token}),
        )
        .await;
        assert_eq!(st, 200, "an acknowledged session was lost: {v}");
    }
    assert!(s.terminate().0.success());
    eprintln!(
        "{} of 200 creates acknowledged before shutdown; all survived",
        acknowledged.len()
    );
}

/// Access tokens across a restart: the signing key ring is created once
/// (mode 0600) and kept, so a token minted before the restart still
/// verifies after it, and its refresh token still rotates; a missing key
/// ring on a later start refuses to start, naming the file.
#[tokio::test]
async fn access_tokens_survive_a_restart_and_the_key_ring_is_never_regenerated() {
    let d = tempfile::tempdir().unwrap();
    let s = Server::start(d.path(), &[]);
    let mode = std::fs::metadata(d.path().join("signing.keys"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let key = s.admin_key();
    let c = client();
    let (st, pair) = post(
        &c,
        &s,
        &key,
        "/v1/sessions",
        json!({"subject": "ann", "issue": "pair"}),
    )
    .await;
    assert_eq!(st, 201, "{pair}");
    let ring_before = std::fs::read(d.path().join("signing.keys")).unwrap();
    let (status, _) = s.terminate();
    assert!(status.success());

    let s = Server::start(d.path(), &[]);
    assert_eq!(
        std::fs::read(d.path().join("signing.keys")).unwrap(),
        ring_before
    );
    let (st, v) = post(
        &c,
        &s,
        &key,
        "/v1/sessions/validate",
        json!({"token": pair["access_token"]}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (st, next) = post(
        &c,
        &s,
        &key,
        "/v1/tokens/refresh",
        json!({"refresh_token": pair["refresh_token"]}),
    )
    .await;
    assert_eq!(st, 200, "{next}");
    let log = s.log_text();
    let (status, _) = s.terminate();
    assert!(status.success());
    for secret in [
        &pair["access_token"],
        &pair["refresh_token"],
        &next["refresh_token"],
    ] {
        assert!(
            !log.contains(secret.as_str().unwrap()),
            "a token in the log"
        );
    }

    std::fs::remove_file(d.path().join("signing.keys")).unwrap();
    let out = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("SESSIOND_DATA_DIR", d.path())
        .env("SESSIOND_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("signing.keys"), "{err}");
}
