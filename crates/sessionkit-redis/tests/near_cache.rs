//! The near-cache across nodes: two stores on one Redis and prefix stand
//! for two nodes. A change on one is seen by the other at its very next
//! read, although the other had the record cached; a node whose channel
//! is lost stops serving from its cache; a Redis restarted empty leaves no
//! cached session alive.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sessionkit_core::store::{Change, Limits, RevokeSubjectOutcome, UpdateOutcome};
use sessionkit_core::{RevokeReason, SessionState, SessionStore, StoreError};
use sessionkit_redis::{NearCacheConfig, RedisOptions, RedisStore};
use sessionkit_store_tests::support::{at, attrs, put, session};

fn url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn cached() -> RedisOptions {
    RedisOptions {
        near_cache: Some(NearCacheConfig {
            capacity: 10_000,
            ttl: Duration::from_secs(60),
        }),
        ..RedisOptions::default()
    }
}

/// Two nodes on a fresh prefix; `None` (with a notice) when no Redis
/// answers and `CI` is not `true`.
async fn two_nodes() -> Option<(RedisStore, RedisStore, String)> {
    let prefix = format!("sk-test:{:032x}", rand::random::<u128>());
    let a = match RedisStore::connect_with(&url(), &prefix, cached()).await {
        Ok(a) => a,
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but no Redis at {}: {e}",
                url()
            );
            eprintln!("NOTICE: no Redis at {}; near-cache test skipped", url());
            return None;
        }
    };
    let b = RedisStore::connect_with(&url(), &prefix, cached())
        .await
        .unwrap();
    Some((a, b, prefix))
}

fn cleanup(prefix: &str) {
    let mut con = redis::Client::open(url())
        .unwrap()
        .get_connection()
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query(&mut con)
        .unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut con).unwrap();
    }
}

fn hits(s: &RedisStore) -> u64 {
    s.near_cache_stats().unwrap().0.hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_node_is_seen_by_the_other_at_once() {
    let Some((a, b, prefix)) = two_nodes().await else {
        return;
    };
    let before = hits(&a);
    for i in 0..1000 {
        let rec = session(Some(&format!("user-{}", i % 7)), at(0));
        put(&b, &rec).await;
        // A reads it twice: the second read is served from A's cache.
        for _ in 0..2 {
            let got = a.get_by_token(rec.tenant, &rec.token_hash).await.unwrap();
            assert_eq!(got.unwrap().state, SessionState::Active);
        }
        match i % 3 {
            // Revoked on B: A refuses it at its very next read.
            0 => {
                b.revoke(rec.tenant, rec.id, RevokeReason::Logout, at(1))
                    .await
                    .unwrap();
                let got = a.get_by_token(rec.tenant, &rec.token_hash).await.unwrap();
                assert!(
                    matches!(got.unwrap().state, SessionState::Revoked { .. }),
                    "iteration {i}: a revoke on B is seen on A"
                );
            }
            // Attributes changed on B: A reads the new ones.
            1 => {
                let out = b
                    .update(
                        rec.tenant,
                        rec.id,
                        1,
                        Change::Attributes(attrs(serde_json::json!({"n": i}))),
                        at(1),
                    )
                    .await
                    .unwrap();
                assert!(matches!(out, UpdateOutcome::Updated(_)));
                let got = a.get_by_token(rec.tenant, &rec.token_hash).await.unwrap();
                assert_eq!(got.unwrap().version, 2, "iteration {i}");
            }
            // Every session of the subject revoked on B.
            _ => {
                let out = b
                    .revoke_subject(
                        rec.tenant,
                        rec.subject.as_ref().unwrap(),
                        None,
                        RevokeReason::Admin,
                        at(1),
                    )
                    .await
                    .unwrap();
                assert!(matches!(out, RevokeSubjectOutcome::Revoked { .. }));
                let got = a.get_by_token(rec.tenant, &rec.token_hash).await.unwrap();
                assert!(
                    matches!(got.unwrap().state, SessionState::Revoked { .. }),
                    "iteration {i}: a subject revoke on B is seen on A"
                );
            }
        }
    }
    assert!(
        hits(&a) >= before + 1000,
        "A's second reads were cache hits"
    );
    let (_, chan) = b.near_cache_stats().unwrap();
    assert_eq!(chan.ack_timeouts, 0, "{chan:?}");
    cleanup(&prefix);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eviction_by_the_subject_cap_is_seen_by_the_other_node() {
    let Some((a, b, prefix)) = two_nodes().await else {
        return;
    };
    let first = session(Some("capped"), at(0));
    put(&a, &first).await;
    assert!(
        a.get_by_token(first.tenant, &first.token_hash)
            .await
            .unwrap()
            .is_some()
    );
    let second = session(Some("capped"), at(5));
    let limits = Limits {
        per_subject: Some((1, sessionkit_core::OnSessionLimit::EvictOldest)),
        ..Limits::default()
    };
    b.create(second, limits, at(5)).await.unwrap();
    let got = a
        .get_by_token(first.tenant, &first.token_hash)
        .await
        .unwrap();
    assert!(matches!(got.unwrap().state, SessionState::Revoked { .. }));
    cleanup(&prefix);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A throwaway `redis-server` with no persistence: a restart is empty.
fn start(port: u16) -> Option<Child> {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but redis-server cannot be started"
        );
        eprintln!("NOTICE: no redis-server on the PATH; near-cache outage test skipped");
        return None;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_channel_stops_the_cache_and_a_restart_empty_refuses_everything() {
    let port = free_port();
    let Some(mut server) = start(port) else {
        return;
    };
    let url = format!("redis://127.0.0.1:{port}");
    let opts = RedisOptions {
        timeout: Duration::from_secs(2),
        ..cached()
    };
    let store = RedisStore::connect_with(&url, "nc", opts).await.unwrap();
    let rec = session(Some("ann"), at(0));
    put(&store, &rec).await;
    for _ in 0..2 {
        store
            .get_by_token(rec.tenant, &rec.token_hash)
            .await
            .unwrap();
    }
    assert!(hits(&store) >= 1);

    server.kill().unwrap();
    server.wait().unwrap();
    // The channel is lost: no read is answered from the cache any more.
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.near_cache_stats().unwrap().0.usable {
        assert!(Instant::now() < deadline, "the cache stopped serving");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = store.get_by_token(rec.tenant, &rec.token_hash).await;
    assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");

    // Restarted empty: the old token is unknown, cached or not.
    let mut server = start(port).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match store.get_by_token(rec.tenant, &rec.token_hash).await {
            Ok(found) => {
                assert!(found.is_none(), "a session Redis lost is refused");
                break;
            }
            Err(StoreError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no recovery: {e:?}"),
        }
    }
    // And once the channel is back, the cache serves again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !store.near_cache_stats().unwrap().0.usable {
        assert!(Instant::now() < deadline, "the cache came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        store
            .get_by_token(rec.tenant, &rec.token_hash)
            .await
            .unwrap()
            .is_none()
    );
    server.kill().unwrap();
    server.wait().unwrap();
}
