//! Several `sessiond` processes on one PostgreSQL: sessions and revocations
//! are shared, the near-cache (on by default, invalidated through
//! `LISTEN/NOTIFY`) never serves a revoked session, and a PostgreSQL that
//! is stopped under load answers 503, never "allow", and is recovered from
//! without a restart.
#![allow(missing_docs, clippy::unwrap_used)]

mod process;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use process::nodes::{cluster, free_port, revoke_loop, share_sessions_and_revocations, validate};
use process::postgres::{Instance, drop_schema, pg_url};
use process::{client, get, post};
use serde_json::{Value, json};

/// A fresh `store_prefix`, which sessiond turns into the schema it uses.
fn fresh_schema() -> String {
    format!("sessiond_test_{:032x}", rand_u128())
}

fn rand_u128() -> u128 {
    let id = sessionkit_core::SessionId::generate();
    u128::from_be_bytes(*id.as_bytes())
}

/// Two sessiond nodes on one PostgreSQL: created on A, valid on B (its
/// access token too); refreshed on B; revoked on B, refused on A.
#[tokio::test]
async fn two_nodes_on_one_postgres_share_sessions_and_revocations() {
    let Some(url) = pg_url() else { return };
    let schema = fresh_schema();
    share_sessions_and_revocations("postgres", &url, &schema).await;
    drop_schema(&url, &schema);
}

/// Three nodes with the near-cache on: 500 times, created on A, cached on A
/// and C, revoked on B, refused on A and C at their very next request;
/// then "log out other devices" on A is seen on B and C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_on_one_node_is_refused_by_every_cache_at_the_next_request() {
    let Some(url) = pg_url() else { return };
    let schema = fresh_schema();
    revoke_loop("postgres", &url, &schema, 500).await;
    drop_schema(&url, &schema);
}

/// What the load saw while PostgreSQL went away and came back.
#[derive(Default)]
struct Seen {
    ok: AtomicU64,
    unavailable: AtomicU64,
}

/// A PostgreSQL of the test's own is stopped (`pg_ctl stop -m fast`) while
/// two nodes serve a load of validations and creates: every answer is a
/// success or a 503 `store_unavailable` with `Retry-After` — never a 200
/// for the revoked token, never a 500 — and `/readyz` is 503. Started
/// again, both nodes recover without a restart, and what was written
/// before the stop is all there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load_is_503_and_recovered_without_restart() {
    if pg_url().is_none() {
        return; // no PostgreSQL at all on this machine (and not CI)
    }
    let Some(pg) = Instance::create(free_port()) else {
        return;
    };
    let url = pg.url();
    let (nodes, _dirs) = cluster(2, "postgres", &url, "fault", &[]);
    let nodes = Arc::new(nodes);
    let key = nodes[0].admin_key();
    let c = client();
    let (_, live) = post(
        &c,
        &nodes[0],
        &key,
        "/v1/sessions",
        json!({"subject": "ann"}),
    )
    .await;
    let (_, dead) = post(
        &c,
        &nodes[0],
        &key,
        "/v1/sessions",
        json!({"subject": "bob"}),
    )
    .await;
    for i in [0, 1, 0, 1] {
        assert_eq!(validate(&c, &nodes[i], &key, &live["token"]).await.0, 200);
        assert_eq!(validate(&c, &nodes[i], &key, &dead["token"]).await.0, 200);
    }
    let (st, _) = post(
        &c,
        &nodes[1],
        &key,
        "/v1/sessions/revoke",
        json!({"token": dead["token"]}),
    )
    .await;
    assert_eq!(st, 204);

    // The load: 4 clients, validating the revoked token and creating
    // sessions on both nodes, until told to stop.
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for w in 0..4usize {
        let (nodes, key, dead) = (Arc::clone(&nodes), key.clone(), dead["token"].clone());
        let (seen, stop, c) = (Arc::clone(&seen), Arc::clone(&stop), c.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let node = &nodes[(w + n) % 2];
                n += 1;
                let (path, body) = if n.is_multiple_of(2) {
                    ("/v1/sessions/validate", json!({"token": dead}))
                } else {
                    ("/v1/sessions", json!({"subject": format!("load-{w}")}))
                };
                let r = c
                    .post(node.url(path))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let st = r.status().as_u16();
                let retry_after = r.headers().contains_key("retry-after");
                let v: Value = r.json().await.unwrap_or(Value::Null);
                match st {
                    503 => {
                        assert!(retry_after, "503 without Retry-After");
                        assert_eq!(v["error"], "store_unavailable");
                        seen.unavailable.fetch_add(1, Ordering::Relaxed);
                    }
                    401 if path.ends_with("validate") => {
                        assert_eq!(v["error"], "invalid_token");
                        seen.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    201 if !path.ends_with("validate") => {
                        seen.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => panic!("{path} answered {st}: {v}"),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = seen.ok.load(Ordering::Relaxed);
    assert!(before > 0, "the load runs");

    pg.stop();
    let deadline = Instant::now() + Duration::from_secs(15);
    while seen.unavailable.load(Ordering::Relaxed) < 20 {
        assert!(Instant::now() < deadline, "PostgreSQL down answers 503");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for node in nodes.iter() {
        let (st, ready) = get(&c, node, &key, "/readyz").await;
        assert_eq!(st, 503, "{ready}");
    }

    // Back: both nodes recover without a restart, under the same load.
    pg.start();
    let ok_at_restart = seen.ok.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    for node in nodes.iter() {
        loop {
            let (st, _) = validate(&c, node, &key, &live["token"]).await;
            if st == 200 {
                break;
            }
            assert_eq!(st, 503, "a live session is valid or unavailable");
            assert!(Instant::now() < deadline, "no recovery");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (st, _) = validate(&c, node, &key, &dead["token"]).await;
        assert_eq!(st, 401, "still revoked after the restart");
        let (st, ready) = get(&c, node, &key, "/readyz").await;
        assert_eq!(st, 200, "{ready}");
    }
    while seen.ok.load(Ordering::Relaxed) < ok_at_restart + 50 {
        assert!(Instant::now() < deadline, "the load succeeds again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    eprintln!(
        "load: {} answered, {} unavailable (503) while PostgreSQL was down",
        seen.ok.load(Ordering::Relaxed),
        seen.unavailable.load(Ordering::Relaxed)
    );
    // A session created on one node after the restart is valid on the other.
    let (st, s) = post(
        &c,
        &nodes[1],
        &key,
        "/v1/sessions",
        json!({"subject": "new"}),
    )
    .await;
    assert_eq!(st, 201, "{s}");
    assert_eq!(validate(&c, &nodes[0], &key, &s["token"]).await.0, 200);
    let (_, stats) = get(&c, &nodes[0], &key, "/v1/stats").await;
    assert_eq!(stats["store"]["kind"], "postgres");
    drop(nodes);
    drop(pg);
}
