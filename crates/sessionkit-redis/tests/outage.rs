//! A Redis that goes away mid-run: every call fails as `Unavailable`
//! (never a panic, never an "allow"), and the same store works again once
//! Redis is back, with no reconnect by hand and nothing acknowledged lost.
//! The Redis here is a throwaway `redis-server` on a free loopback port,
//! started and killed by the test itself (the shared one is never touched).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sessionkit_core::{SessionStore, StoreError};
use sessionkit_redis::{RedisOptions, RedisStore};
use sessionkit_store_tests::support::{at, put, session};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `redis-server` on `port`, with an append-only file fsync'd on every
/// write in `dir` (so a restart finds what it acknowledged).
fn start(port: u16, dir: &std::path::Path) -> Option<Child> {
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
        ])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but redis-server cannot be started"
        );
        eprintln!("NOTICE: no redis-server on the PATH; outage test skipped");
        return None;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child)
}

#[tokio::test]
async fn down_is_unavailable_and_back_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let Some(mut server) = start(port, dir.path()) else {
        return;
    };
    let url = format!("redis://127.0.0.1:{port}");
    let store = RedisStore::connect_with(
        &url,
        "outage",
        RedisOptions {
            timeout: Duration::from_secs(2),
            ..RedisOptions::default()
        },
    )
    .await
    .unwrap();
    let rec = session(Some("ann"), at(0));
    put(&store, &rec).await;

    server.kill().unwrap();
    server.wait().unwrap();
    for _ in 0..3 {
        let got = store.get_by_token(rec.tenant, &rec.token_hash).await;
        assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");
        let got = store
            .revoke(
                rec.tenant,
                rec.id,
                sessionkit_core::RevokeReason::Logout,
                at(1),
            )
            .await;
        assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");
    }

    // Back on the same port, with its append-only file: the acknowledged
    // session is there, and the same store object works again.
    let mut server = start(port, dir.path()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let found = loop {
        match store.get_by_token(rec.tenant, &rec.token_hash).await {
            Ok(found) => break found,
            Err(StoreError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no recovery: {e:?}"),
        }
    };
    assert_eq!(found.map(|r| r.id), Some(rec.id), "acknowledged, then kept");
    server.kill().unwrap();
    server.wait().unwrap();
}
