//! Black-box tests of the command line and of starting and stopping,
//! through the real binary: `--server` without a scheme, `--config` before
//! or after the subcommand, an empty config, revokes that succeed twice,
//! shell completions; a port in use leaves the data dir as it was and the
//! error is printed once; the drain logs what it waits for and a second
//! signal cuts it short; a non-loopback address is warned about and
//! `metrics_require_key` guards `/metrics`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod process;

use process::{BIN, Server, client, get, post};

/// The binary with `args`, a clean environment plus `env`.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SESSIOND_DATA_DIR", "/nonexistent")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn a_server_without_a_scheme_is_http_and_other_schemes_are_named() {
    let d = tempfile::tempdir().unwrap();
    let s = Server::start(d.path(), &[]);
    let key = s.admin_key();
    let o = run(&["--server", &s.addr, "--api-key", &key, "stats"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["live"], 0);
    let o = run(
        &["stats"],
        &[("SESSIOND_SERVER", &s.addr), ("SESSIOND_API_KEY", &key)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // https:// to a plain-HTTP server: a TLS failure, said as such (the
    // HTTPS case itself is in tests/tls.rs).
    let https = format!("https://{}", s.addr);
    let o = run(&["--server", &https, "--api-key", &key, "stats"], &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(!err.contains("builder error"), "{err}");
    let ftp = format!("ftp://{}", s.addr);
    let o = run(&["--server", &ftp, "--api-key", &key, "stats"], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unsupported scheme ftp://"),
        "{}",
        stderr(&o)
    );
    assert!(s.terminate().0.success());
}

#[test]
fn config_goes_before_or_after_the_subcommand_and_an_empty_one_is_all_defaults() {
    let d = tempfile::tempdir().unwrap();
    let good = d.path().join("good.toml");
    std::fs::write(&good, "listen = \"127.0.0.1:7701\"\n").unwrap();
    let bad = d.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[policy]\nidle_timeout_secs = 100\nabsolute_timeout_secs = 10\n",
    )
    .unwrap();
    let (good, bad) = (good.to_str().unwrap(), bad.to_str().unwrap());
    for args in [
        ["--config", good, "config", "check"],
        ["config", "--config", good, "check"],
        ["config", "check", "--config", good],
    ] {
        let o = run(&args, &[]);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).contains("listen 127.0.0.1:7701"), "{args:?}");
    }
    for args in [
        ["--config", bad, "config", "check"],
        ["config", "check", "--config", bad],
    ] {
        let o = run(&args, &[]);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains("policy.idle_timeout_secs"), "{args:?}");
    }
    // An empty file, or /dev/null: every default.
    let empty = d.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    for file in ["/dev/null", empty.to_str().unwrap()] {
        let o = run(&["config", "check"], &[("SESSIOND_CONFIG", file)]);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        assert!(stdout(&o).contains("listen 127.0.0.1:7700"), "{file}");
    }
    // A missing file is named.
    let missing = d.path().join("missing.toml");
    let o = run(
        &["config", "check"],
        &[("SESSIOND_CONFIG", missing.to_str().unwrap())],
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains(missing.to_str().unwrap()) && err.contains("does not exist"),
        "{err}"
    );
}

/// `--config` before `serve` runs the server on that config (here: the
/// memory store, which no environment variable names).
#[tokio::test]
async fn serve_takes_the_config_before_the_subcommand() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("c.toml");
    std::fs::write(&f, "store = \"memory\"\n").unwrap();
    let s = Server::start_args(d.path(), &["--config", f.to_str().unwrap(), "serve"], &[]);
    let (st, v) = get(&client(), &s, &s.admin_key(), "/v1/stats").await;
    assert_eq!(
        (st, v["store"]["kind"].as_str()),
        (200, Some("memory")),
        "{v}"
    );
    assert!(s.terminate().0.success());
}

/// One rule for both revokes: an id the server revoked, or already had
/// revoked, or does not know, succeeds and says which; a malformed one fails.
#[tokio::test]
async fn revoking_twice_or_an_unknown_id_succeeds_for_sessions_and_api_keys() {
    let d = tempfile::tempdir().unwrap();
    let s = Server::start(d.path(), &[]);
    let key = s.admin_key();
    let c = client();
    let cli = |args: &[&str]| {
        run(
            &[&["--server", &s.addr][..], args].concat(),
            &[("SESSIOND_API_KEY", &key)],
        )
    };

    let (_, v) = post(
        &c,
        &s,
        &key,
        "/v1/api-keys",
        json!({"scopes": ["sessions:read"]}),
    )
    .await;
    let api_key_id = v["api_key"]["id"].as_str().unwrap().to_owned();
    let o = cli(&["api-key", "revoke", &api_key_id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), format!("revoked API key {api_key_id}"));
    for id in [api_key_id.as_str(), "never-was"] {
        let o = cli(&["api-key", "revoke", id]);
        assert!(o.status.success(), "{id}: {}", stderr(&o));
        assert_eq!(
            stdout(&o).trim(),
            format!("API key {id} already revoked or unknown: nothing to do")
        );
    }

    let (_, v) = post(&c, &s, &key, "/v1/sessions", json!({"subject": "ann"})).await;
    let sid = v["session"]["id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let o = cli(&["session", "revoke", &sid]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o).trim(), format!("revoked session {sid}"));
    }
    let unknown = "01890a5d-ac96-774b-bcce-b302099a8057";
    let o = cli(&["session", "revoke", unknown]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).trim(),
        format!("session {unknown} already revoked or unknown: nothing to do")
    );
    let o = cli(&["session", "revoke", "not-an-id"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("invalid_request"), "{}", stderr(&o));
    assert!(s.terminate().0.success());
}

#[test]
fn completions_are_printed_for_each_shell() {
    let o = run(&["completions", "bash"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("_sessiond"), "{}", stdout(&o));
    assert!(stdout(&o).contains("api-key"));
    let o = run(&["completions", "zsh"], &[]);
    assert!(o.status.success());
    assert!(stdout(&o).starts_with("#compdef sessiond"));
    for shell in ["fish", "elvish", "powershell"] {
        assert!(
            run(&["completions", shell], &[]).status.success(),
            "{shell}"
        );
    }
    assert!(!run(&["completions", "tcsh-ish"], &[]).status.success());
}

/// A port in use on a fresh data dir: nothing is created (no keys, no
/// admin key), and the error is printed once.
#[test]
fn a_port_in_use_leaves_the_data_dir_as_it_was() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let serve = || {
        run(
            &["serve"],
            &[
                ("SESSIOND_LISTEN", &addr),
                ("SESSIOND_DATA_DIR", data.to_str().unwrap()),
            ],
        )
    };
    let o = serve();
    assert!(!o.status.success());
    let err = stderr(&o);
    let line = format!("cannot listen on {addr}");
    assert_eq!(err.matches(&line).count(), 1, "{err}");
    assert!(!data.exists(), "the data dir was created");
    std::fs::create_dir(&data).unwrap();
    let o = serve();
    assert!(!o.status.success());
    assert_eq!(
        std::fs::read_dir(&data).unwrap().count(),
        0,
        "files created"
    );
}

/// Opens a connection that sends the headers of a POST and part of its
/// body, then stalls: the drain waits for it.
fn stalled_client(s: &Server) -> TcpStream {
    let key = s.admin_key();
    let mut t = TcpStream::connect(&s.addr).unwrap();
    let head = format!(
        "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{{\"sub"
    );
    t.write_all(head.as_bytes()).unwrap();
    t
}

fn signal(s: &Server, sig: &str) {
    let pid = s.child.id().to_string();
    assert!(
        Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success()
    );
}

fn wait_for_log(s: &Server, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !s.log_text().contains(text) {
        assert!(Instant::now() < deadline, "no {text:?} in {}", s.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A stalled client holds the drain until the grace period ends; the log
/// says how many connections it waits for, and how many it closes.
#[test]
fn the_drain_says_what_it_waits_for() {
    let d = tempfile::tempdir().unwrap();
    let s = Server::start(
        d.path(),
        &[
            ("SESSIOND_SHUTDOWN_GRACE_SECS", "1"),
            ("SESSIOND_HEADER_READ_TIMEOUT_SECS", "0"),
        ],
    );
    let _stalled = stalled_client(&s);
    std::thread::sleep(Duration::from_millis(300));
    let log = s.log.clone();
    assert!(s.terminate().0.success());
    let log = log.lock().unwrap().join("\n");
    assert!(log.contains("draining: 1 connection(s) open"), "{log}");
    assert!(
        log.contains("grace period of 1 s over: closing 1 connection(s) still open"),
        "{log}"
    );
}

/// A second SIGINT during the drain exits at once (a long grace period
/// notwithstanding), and says so; the store is still flushed.
#[test]
fn a_second_signal_during_the_drain_exits_at_once() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Server::start(
        d.path(),
        &[
            ("SESSIOND_SHUTDOWN_GRACE_SECS", "120"),
            ("SESSIOND_HEADER_READ_TIMEOUT_SECS", "0"),
        ],
    );
    let _stalled = stalled_client(&s);
    std::thread::sleep(Duration::from_millis(300));
    signal(&s, "-INT");
    wait_for_log(&s, "draining: 1 connection(s) open");
    let sent = Instant::now();
    signal(&s, "-INT");
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(sent.elapsed() < Duration::from_secs(10), "still draining");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    std::thread::sleep(Duration::from_millis(100));
    let log = s.log_text();
    assert!(log.contains("SIGINT again: exiting now"), "{log}");
    assert!(
        log.contains("drain cut short: closing 1 connection(s)"),
        "{log}"
    );
    assert!(log.contains("store flushed and closed"), "{log}");
}

/// On a non-loopback address sessiond warns that the operations
/// endpoints need no key; `metrics_require_key` makes `/metrics` take an
/// admin key only.
#[tokio::test]
async fn a_public_address_is_warned_about_and_metrics_can_require_an_admin_key() {
    let d = tempfile::tempdir().unwrap();
    let s = Server::start(d.path(), &[]);
    let r = client().get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "open by default");
    assert!(!s.log_text().contains("non-loopback"), "{}", s.log_text());
    assert!(s.terminate().0.success());

    let s = Server::start(d.path(), &[("SESSIOND_LISTEN", "0.0.0.0:0")]);
    let log = s.log_text();
    assert!(
        log.contains("non-loopback") && log.contains("metrics_require_key"),
        "{log}"
    );
    assert!(s.terminate().0.success());

    let s = Server::start(
        d.path(),
        &[
            ("SESSIOND_LISTEN", "0.0.0.0:0"),
            ("SESSIOND_METRICS_REQUIRE_KEY", "true"),
        ],
    );
    assert!(
        s.log_text().contains("/metrics needs an admin key"),
        "{}",
        s.log_text()
    );
    let port = s.addr.rsplit(':').next().unwrap();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let c = client();
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let key = s.admin_key();
    let (_, v) = post(
        &c,
        &s,
        &key,
        "/v1/api-keys",
        json!({"scopes": ["sessions:read"]}),
    )
    .await;
    let reader = v["key"].as_str().unwrap().to_owned();
    let r = c.get(&url).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = c.get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("sessiond_"));
    let (st, _) = get(&c, &s, "", "/healthz").await;
    assert_eq!(st, 200);
    assert!(s.terminate().0.success());
}
