//! Several `sessiond` nodes on one shared store (Redis, PostgreSQL): the
//! steps every multi-node test takes, whatever the store.

use std::path::Path;

use serde_json::{Value, json};

use super::{Server, client, get, post};

/// The files every node of a deployment shares (the first node creates
/// them; the others start from a copy).
const SHARED_FILES: [&str; 6] = [
    "vault.keys",
    "server.keys",
    "signing.keys",
    "api-keys.json",
    "admin.key",
    "initialized",
];

/// `n` nodes on the `store` (`redis`, `postgres`) at `url` under `prefix`, with `extra` settings; the first
/// creates the keys, the others get copies. The data dirs live as long as
/// the returned guard.
pub fn cluster(
    n: usize,
    store: &str,
    url: &str,
    prefix: &str,
    extra: &[(&str, &str)],
) -> (Vec<Server>, Vec<tempfile::TempDir>) {
    let mut env = vec![
        ("SESSIOND_STORE", store),
        ("SESSIOND_STORE_URL", url),
        ("SESSIOND_STORE_PREFIX", prefix),
    ];
    env.extend_from_slice(extra);
    let first = tempfile::tempdir().unwrap();
    let mut servers = vec![Server::start(first.path(), &env)];
    let mut dirs = vec![first];
    for _ in 1..n {
        let d = tempfile::tempdir().unwrap();
        copy_shared(dirs[0].path(), d.path());
        servers.push(Server::start(d.path(), &env));
        dirs.push(d);
    }
    (servers, dirs)
}

pub fn copy_shared(from: &Path, to: &Path) {
    for f in SHARED_FILES {
        if from.join(f).exists() {
            std::fs::copy(from.join(f), to.join(f)).unwrap();
        }
    }
}

pub async fn validate(c: &reqwest::Client, s: &Server, key: &str, token: &Value) -> (u16, Value) {
    post(c, s, key, "/v1/sessions/validate", json!({"token": token})).await
}

/// Two nodes on the `store` at `url`: a session created on A is valid on
/// B, its access token too; a refresh on B works; a revoke on B is refused
/// on A at its next request.
pub async fn share_sessions_and_revocations(store: &str, url: &str, prefix: &str) {
    let (nodes, _dirs) = cluster(2, store, url, prefix, &[]);
    let (a, b) = (&nodes[0], &nodes[1]);
    let key = a.admin_key();
    let c = client();
    let (st, s) = post(&c, a, &key, "/v1/sessions", json!({"subject": "ann"})).await;
    assert_eq!(st, 201, "{s}");
    let (st, p) = post(
        &c,
        a,
        &key,
        "/v1/sessions",
        json!({"subject": "ann", "issue": "pair"}),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    for token in [&s["token"], &p["access_token"]] {
        let (st, v) = validate(&c, b, &key, token).await;
        assert_eq!(st, 200, "valid on B: {v}");
    }
    let (st, r) = post(
        &c,
        b,
        &key,
        "/v1/tokens/refresh",
        json!({"refresh_token": p["refresh_token"]}),
    )
    .await;
    assert_eq!(st, 200, "refresh on B: {r}");
    let (st, _) = post(
        &c,
        b,
        &key,
        "/v1/sessions/revoke",
        json!({"token": s["token"]}),
    )
    .await;
    assert_eq!(st, 204);
    let (st, v) = validate(&c, a, &key, &s["token"]).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (401, Some("invalid_token")),
        "revoked on B, refused on A"
    );
    let (_, stats) = get(&c, a, &key, "/v1/stats").await;
    assert_eq!(stats["store"]["kind"], store);
    let (st, ready) = get(&c, b, &key, "/readyz").await;
    assert_eq!(st, 200, "{ready}");
    drop(nodes);
}

/// Three nodes on the `store` at `url`: `rounds` times create on A, cache on A and C,
/// revoke on B, refused on A and C; then log out other devices on A.
pub async fn revoke_loop(store: &str, url: &str, prefix: &str, rounds: usize) {
    let (nodes, _dirs) = cluster(3, store, url, prefix, &[]);
    let (a, b, cn) = (&nodes[0], &nodes[1], &nodes[2]);
    let key = a.admin_key();
    let c = client();
    for i in 0..rounds {
        let (st, s) = post(&c, a, &key, "/v1/sessions", json!({"subject": "loop"})).await;
        assert_eq!(st, 201, "{s}");
        for node in [a, cn, a, cn] {
            let (st, v) = validate(&c, node, &key, &s["token"]).await;
            assert_eq!(st, 200, "iteration {i}: {v}");
        }
        let (st, _) = post(
            &c,
            b,
            &key,
            "/v1/sessions/revoke",
            json!({"token": s["token"]}),
        )
        .await;
        assert_eq!(st, 204);
        for node in [a, cn] {
            let (st, v) = validate(&c, node, &key, &s["token"]).await;
            assert_eq!(
                (st, v["error"].as_str()),
                (401, Some("invalid_token")),
                "iteration {i}: revoked on B, refused at the next request"
            );
        }
    }
    // The caches did serve: most validations were hits.
    let metrics = c
        .get(a.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let hits = gauge(&metrics, "sessiond_near_cache_hits");
    assert!(
        hits >= rounds as f64,
        "near-cache hits on A: {hits}\n{metrics}"
    );
    assert_eq!(gauge(&metrics, "sessiond_near_cache_ack_timeouts"), 0.0);

    // Log out other devices, on A: seen on B and C.
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let (st, s) = post(&c, b, &key, "/v1/sessions", json!({"subject": "dev"})).await;
        assert_eq!(st, 201);
        tokens.push(s);
    }
    for node in [b, cn, b, cn] {
        for s in &tokens {
            assert_eq!(validate(&c, node, &key, &s["token"]).await.0, 200);
        }
    }
    let keep = tokens[0]["session"]["id"].as_str().unwrap();
    let r = c
        .delete(a.url(&format!("/v1/subjects/dev/sessions?except={keep}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    for node in [b, cn] {
        assert_eq!(validate(&c, node, &key, &tokens[0]["token"]).await.0, 200);
        for s in &tokens[1..] {
            let (st, v) = validate(&c, node, &key, &s["token"]).await;
            assert_eq!((st, v["error"].as_str()), (401, Some("invalid_token")));
        }
    }
    drop(nodes);
}

pub fn gauge(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(-1.0)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
