//! The store on a real Redis Cluster at `REDIS_CLUSTER_URL`
//! (`redis+cluster://host:port,…`; `scripts/redis-cluster.sh start` starts
//! a 3-master one on loopback and prints it): the whole conformance suite
//! (with and without the near-cache), then the cases only a Cluster has —
//! subjects spread over every master, listed, counted, revoked and purged
//! completely; an anonymous session upgraded across slots; subjects no key
//! could hold as they are.
//!
//! Each case runs under a random key prefix that its guard deletes on every
//! master (SCAN + UNLINK). No `REDIS_CLUSTER_URL`: a notice and a skip,
//! unless `CI=true`, where it fails.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::HashSet;
use std::io::Write as _;
use std::sync::OnceLock;

use sessionkit_core::store::{CreateOutcome, Limits, RevokeSubjectOutcome};
use sessionkit_core::{RevokeReason, SessionStore, StoreAdmin, Subject};
use sessionkit_redis::RedisStore;
use sessionkit_store_tests::Fixture;
use sessionkit_store_tests::support::{
    UpgradeOutcome, at, fresh_token_hash, put, session, session_with, tenant_a, upgrade,
    upgrade_req,
};

fn cluster_url() -> Option<String> {
    std::env::var("REDIS_CLUSTER_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// The cluster's node URLs, `redis://host:port` each.
fn nodes() -> Vec<String> {
    let url = cluster_url().expect("REDIS_CLUSTER_URL");
    let hosts = url
        .strip_prefix("redis+cluster://")
        .expect("a redis+cluster:// URL");
    hosts
        .split(['/', '?'])
        .next()
        .unwrap_or_default()
        .split(',')
        .map(|h| format!("redis://{h}"))
        .collect()
}

/// Whether a Cluster is configured (checked once per test binary).
fn reachable() -> bool {
    static UP: OnceLock<bool> = OnceLock::new();
    *UP.get_or_init(|| {
        if cluster_url().is_some() {
            return true;
        }
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but REDIS_CLUSTER_URL is not set (scripts/redis-cluster.sh start prints one)"
        );
        let _ = writeln!(
            std::io::stderr(),
            "NOTICE: REDIS_CLUSTER_URL not set (scripts/redis-cluster.sh start); Redis Cluster tests skipped"
        );
        false
    })
}

/// Every key under `prefix`, on every master.
fn keys_under(prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for node in nodes() {
        let mut con = redis::Client::open(node.as_str())
            .and_then(|c| c.get_connection())
            .expect("a cluster node");
        let keys: Vec<String> = redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .clone()
            .iter::<String>(&mut con)
            .expect("scan")
            .filter_map(Result::ok)
            .collect();
        out.extend(keys.into_iter().map(|k| (node.clone(), k)));
    }
    out
}

/// Deletes every key under its prefix, on every master, when dropped.
struct Cleanup {
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for (node, key) in keys_under(&self.prefix) {
            if let Ok(mut con) = redis::Client::open(node.as_str()).and_then(|c| c.get_connection())
            {
                let _ = redis::cmd("UNLINK").arg(&key).query::<i64>(&mut con);
            }
        }
    }
}

fn prefix() -> String {
    format!("sk-test-{:032x}", rand::random::<u128>())
}

async fn fresh() -> Fixture<RedisStore> {
    let prefix = prefix();
    let url = cluster_url().expect("REDIS_CLUSTER_URL");
    let store = RedisStore::connect(&url, &prefix)
        .await
        .expect("connect to the Redis Cluster");
    Fixture::with_guard(store, Cleanup { prefix })
}

sessionkit_store_tests::conformance_tests!(fresh, run_if = reachable());

/// The same suite with the near-cache on.
mod near_cached {
    use sessionkit_redis::{NearCacheConfig, RedisOptions, RedisStore};
    use sessionkit_store_tests::Fixture;

    use super::{Cleanup, cluster_url, prefix, reachable};

    async fn fresh() -> Fixture<RedisStore> {
        let prefix = prefix();
        let opts = RedisOptions {
            near_cache: Some(NearCacheConfig::default()),
            ..RedisOptions::default()
        };
        let url = cluster_url().expect("REDIS_CLUSTER_URL");
        let store = RedisStore::connect_with(&url, &prefix, opts)
            .await
            .expect("connect to the Redis Cluster");
        assert!(
            store.near_cache_stats().is_some_and(|(c, _)| c.usable),
            "the near-cache channel came up"
        );
        Fixture::with_guard(store, Cleanup { prefix })
    }

    sessionkit_store_tests::conformance_tests!(fresh, run_if = reachable());
}

/// A store on a fresh prefix, and the guard that deletes it.
async fn store_and_prefix() -> (RedisStore, Cleanup, String) {
    let prefix = prefix();
    let url = cluster_url().expect("REDIS_CLUSTER_URL");
    let store = RedisStore::connect(&url, &prefix)
        .await
        .expect("connect to the Redis Cluster");
    (
        store,
        Cleanup {
            prefix: prefix.clone(),
        },
        prefix,
    )
}

/// Subjects no key could hold as they are: braces (a hash tag), glob
/// characters, 255 bytes, non-ASCII.
fn odd_subjects() -> Vec<String> {
    vec![
        "{user}".to_owned(),
        "}{".to_owned(),
        "a{b}c*?[x]".to_owned(),
        "*".to_owned(),
        "x".repeat(255),
        format!("{}é", "{".repeat(253)),
        "user:1|s|{t}".to_owned(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subjects_spread_over_every_master_and_are_revoked_and_purged_completely() {
    if !reachable() {
        return;
    }
    let (store, _guard, prefix) = store_and_prefix().await;
    let store = &store;
    let t0 = at(0);

    // 60 subjects with 3 sessions each, plus anonymous sessions, plus the
    // odd subjects.
    let mut subjects: Vec<String> = (0..60).map(|i| format!("user-{i}")).collect();
    subjects.extend(odd_subjects());
    let mut recs = Vec::new();
    for s in &subjects {
        for _ in 0..3 {
            let r = session_with(Some(s), t0, 3_600_000, 7_200_000);
            put(store, &r).await;
            recs.push(r);
        }
    }
    for _ in 0..20 {
        let r = session_with(None, t0, 3_600_000, 7_200_000);
        put(store, &r).await;
        recs.push(r);
    }

    // The records landed on every master.
    let masters: HashSet<String> = keys_under(&prefix)
        .into_iter()
        .filter(|(_, k)| k.ends_with(":r"))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(masters.len(), nodes().len(), "records on every master");

    // Every one reads back by token and by id.
    for r in &recs {
        let got = store
            .get_by_token(r.tenant, &r.token_hash)
            .await
            .unwrap()
            .expect("found by token");
        assert_eq!(got.id, r.id);
        assert!(store.get_by_id(r.tenant, r.id).await.unwrap().is_some());
    }

    // Listed and counted across every shard.
    let listed = store
        .list_subjects(tenant_a(), t0, None, 10_000)
        .await
        .unwrap();
    assert_eq!(listed.len(), subjects.len());
    assert!(listed.iter().all(|(_, n)| *n == 3));
    let mut want: Vec<&str> = subjects.iter().map(String::as_str).collect();
    want.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let got: Vec<&str> = listed.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(got, want, "in byte order");
    let c = store.counts(tenant_a()).await.unwrap();
    assert_eq!(
        (c.active, c.anonymous, c.subjects),
        (recs.len() as u64, 20, subjects.len() as u64)
    );

    // Each subject revoked completely, wherever its shard is.
    for s in &subjects {
        let subj = Subject::new(s).unwrap();
        assert_eq!(
            store
                .revoke_subject(tenant_a(), &subj, None, RevokeReason::SubjectRevoked, at(1))
                .await
                .unwrap(),
            RevokeSubjectOutcome::Revoked { count: 3 }
        );
        assert!(
            store
                .list_subject(tenant_a(), &subj, at(1), None, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
    for r in recs.iter().filter(|r| r.subject.is_some()) {
        let got = store
            .get_by_token(r.tenant, &r.token_hash)
            .await
            .unwrap()
            .unwrap();
        assert!(!got.is_live(at(2)), "revoked");
    }

    // Purge after every deadline removes every record and every pointer.
    let mut purged = 0;
    loop {
        let n = store.purge_expired(at(8_000_000), 50).await.unwrap().len();
        purged += n;
        if n == 0 {
            break;
        }
    }
    assert_eq!(purged, recs.len());
    let left: Vec<String> = keys_under(&prefix)
        .into_iter()
        .map(|(_, k)| k)
        .filter(|k| {
            k.contains(":t:") || k.contains(":i:") || k.ends_with(":r") || k.ends_with(":sa")
        })
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_session_is_upgraded_across_slots() {
    if !reachable() {
        return;
    }
    let (store, _guard, _) = store_and_prefix().await;
    let store = &store;
    let anon = session(None, at(0));
    put(store, &anon).await;
    for i in 0..20 {
        // Logins of many subjects: most land in another shard than the
        // tenant's anonymous sessions.
        let old = if i == 0 {
            anon.clone()
        } else {
            let a = session(None, at(0));
            put(store, &a).await;
            a
        };
        let new = session(Some(&format!("login-{i}")), at(1));
        let out = upgrade(store, upgrade_req(&old, &new, Limits::default(), at(1)))
            .await
            .unwrap();
        assert!(matches!(out, UpgradeOutcome::Upgraded { .. }), "{out:?}");
        let was = store
            .get_by_token(old.tenant, &old.token_hash)
            .await
            .unwrap()
            .unwrap();
        assert!(!was.is_live(at(1)));
        let now = store
            .get_by_token(new.tenant, &new.token_hash)
            .await
            .unwrap()
            .unwrap();
        assert!(now.is_live(at(1)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_token_or_id_is_refused_across_shards() {
    if !reachable() {
        return;
    }
    let (store, _guard, _) = store_and_prefix().await;
    let store = &store;
    let a = session(Some("alice"), at(0));
    put(store, &a).await;
    // Same token, another subject (another shard): still a duplicate.
    let mut b = session(Some("bob"), at(0));
    b.token_hash = a.token_hash;
    assert_eq!(
        store
            .create(b.clone(), Limits::default(), at(0))
            .await
            .unwrap(),
        CreateOutcome::Duplicate
    );
    // Same id, anonymous (the tenant's anonymous shard).
    let mut c = session(None, at(0));
    c.id = a.id;
    assert_eq!(
        store.create(c, Limits::default(), at(0)).await.unwrap(),
        CreateOutcome::Duplicate
    );
    // The refused creates left no pointer behind: bob's id is free.
    let d = sessionkit_core::SessionRecord {
        id: b.id,
        token_hash: fresh_token_hash(),
        ..b
    };
    put(store, &d).await;
}
