//! The near-cache across nodes: two stores on one database and schema
//! stand for two nodes. A change on one is seen by the other at its very
//! next read, although the other had the record cached; a node whose
//! listening connection is killed stops serving from its cache until it
//! is back, and then serves nothing it cached before.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use sessionkit_core::store::{Change, Limits, RevokeSubjectOutcome, UpdateOutcome};
use sessionkit_core::{RevokeReason, SessionState, SessionStore};
use sessionkit_postgres::{NearCacheConfig, PostgresOptions, PostgresStore};
use sessionkit_store_tests::support::{at, attrs, put, session};

use common::{DropSchema, reachable, schema, url, with_client};

fn cached() -> PostgresOptions {
    PostgresOptions {
        near_cache: Some(NearCacheConfig {
            capacity: 10_000,
            ttl: Duration::from_secs(60),
        }),
        ..PostgresOptions::default()
    }
}

/// Two nodes on a fresh schema (dropped by the guard).
async fn two_nodes() -> (PostgresStore, PostgresStore, DropSchema) {
    let schema = schema();
    let a = PostgresStore::connect_with(&url(), &schema, cached())
        .await
        .unwrap();
    let b = PostgresStore::connect_with(&url(), &schema, cached())
        .await
        .unwrap();
    (a, b, DropSchema(schema))
}

fn hits(s: &PostgresStore) -> u64 {
    s.near_cache_stats().unwrap().0.hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_node_is_seen_by_the_other_at_once() {
    if !reachable() {
        return;
    }
    let (a, b, _guard) = two_nodes().await;
    let before = hits(&a);
    for i in 0..600 {
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
    assert!(hits(&a) >= before + 600, "A's second reads were cache hits");
    let (_, chan) = b.near_cache_stats().unwrap();
    assert_eq!(chan.ack_timeouts, 0, "{chan:?}");
    assert_eq!(chan.publish_failures, 0, "{chan:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eviction_by_the_subject_cap_is_seen_by_the_other_node() {
    if !reachable() {
        return;
    }
    let (a, b, _guard) = two_nodes().await;
    let first = session(Some("capped"), at(0));
    put(&a, &first).await;
    for _ in 0..2 {
        assert!(
            a.get_by_token(first.tenant, &first.token_hash)
                .await
                .unwrap()
                .is_some()
        );
    }
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
}

/// The listening connections are killed from outside (as a failover or a
/// network cut would): the node stops serving from its cache at once,
/// reads still answer from PostgreSQL, a revoke made meanwhile is seen,
/// and the cache serves again once the listener is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listener_stops_the_cache_until_it_is_back() {
    if !reachable() {
        return;
    }
    let (a, b, _guard) = two_nodes().await;
    let rec = session(Some("ann"), at(0));
    put(&a, &rec).await;
    for _ in 0..2 {
        a.get_by_token(rec.tenant, &rec.token_hash).await.unwrap();
    }
    assert!(hits(&a) >= 1);
    let subscriptions = a.near_cache_stats().unwrap().1.subscriptions;

    // Kill both nodes' listening connections (this schema's only).
    let app = a.near_cache_application_name().unwrap().to_owned();
    assert_eq!(b.near_cache_application_name(), Some(app.as_str()));
    let killed = with_client(async move |c| {
        c.query_one(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity \
              WHERE application_name = $1",
            &[&app],
        )
        .await
        .map(|r| r.get::<_, i64>(0))
        .unwrap()
    })
    .unwrap();
    assert_eq!(killed, 2, "both listeners");
    // A notices (its cache stops serving, or it already listens anew,
    // its cache emptied); a revoke on B then, which A's old listener never
    // heard, must not leave A serving its cached copy.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (cache, chan) = a.near_cache_stats().unwrap();
        if !cache.usable || chan.subscriptions > subscriptions {
            break;
        }
        assert!(Instant::now() < deadline, "A noticed its listener was gone");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    b.revoke(rec.tenant, rec.id, RevokeReason::Admin, at(1))
        .await
        .unwrap();
    let got = a.get_by_token(rec.tenant, &rec.token_hash).await.unwrap();
    assert!(matches!(got.unwrap().state, SessionState::Revoked { .. }));

    let deadline = Instant::now() + Duration::from_secs(10);
    while a.near_cache_stats().unwrap().1.subscriptions == subscriptions
        || !a.near_cache_stats().unwrap().0.usable
    {
        assert!(Instant::now() < deadline, "the listener came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = a.get_by_token(rec.tenant, &rec.token_hash).await.unwrap();
    assert!(matches!(got.unwrap().state, SessionState::Revoked { .. }));
    // And the cache serves again.
    let fresh = session(Some("bob"), at(0));
    put(&b, &fresh).await;
    let before = hits(&a);
    for _ in 0..2 {
        a.get_by_token(fresh.tenant, &fresh.token_hash)
            .await
            .unwrap();
    }
    assert!(hits(&a) > before, "serving again");
}
