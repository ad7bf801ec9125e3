//! The upstream token vault against a real OpenID provider
//! (node-oidc-provider on loopback, `tests/oidc/`), with real `sessiond`
//! processes: grants kept sealed with the session, refreshed before they
//! expire with the rotated refresh token saved, once across three nodes on
//! one Redis or one PostgreSQL, kept through a provider outage, dead when the provider
//! revokes them, gone with the session.
#![allow(missing_docs, clippy::unwrap_used)]

mod process;

use std::time::Duration;

use process::nodes::cluster;
use process::oidc::Provider;
use process::postgres::{drop_schema, pg_url};
use process::redis_keys::{delete_prefix, redis_url};
use process::{Server, client, post};
use serde_json::{Value, json};

/// Creates a session of `sub` on `s`: its token.
async fn session(c: &reqwest::Client, s: &Server, key: &str, sub: &str) -> String {
    let (st, b) = post(c, s, key, "/v1/sessions", json!({"subject": sub})).await;
    assert_eq!(st, 201, "{b}");
    b["token"].as_str().unwrap().to_owned()
}

async fn put_grant(c: &reqwest::Client, s: &Server, key: &str, token: &str, login: &Value) -> u16 {
    let r = c
        .put(s.url("/v1/upstream/idp"))
        .bearer_auth(key)
        .json(&json!({"token": token, "grant": {
            "access_token": login["access_token"], "refresh_token": login["refresh_token"],
            "expires_in": login["expires_in"], "scope": login["scope"], "id_token": login["id_token"]}}))
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

/// `POST /v1/upstream/idp/token`: status, body, `Retry-After`.
async fn upstream_token(
    c: &reqwest::Client,
    s: &Server,
    key: &str,
    token: &str,
) -> (u16, Value, Option<String>) {
    let r = c
        .post(s.url("/v1/upstream/idp/token"))
        .bearer_auth(key)
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (st, r.json().await.unwrap_or(Value::Null), retry)
}

fn sleep(secs: f64) -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_secs_f64(secs))
}

#[tokio::test]
async fn a_grant_is_refreshed_before_it_expires_kept_through_an_outage_and_dies_when_revoked() {
    // Access tokens live 6 s; sessiond refreshes within 3 s of expiry.
    let Some(idp) = Provider::start(6) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = idp.env(3);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = Server::start(dir.path(), &env);
    let c = client();
    let admin = s.admin_key();

    // Only the `upstream` scope (or admin) may touch grants.
    let (_, k) = post(
        &c,
        &s,
        &admin,
        "/v1/api-keys",
        json!({"name": "reader", "scopes": ["sessions:read"]}),
    )
    .await;
    let reader = k["key"].as_str().unwrap().to_owned();
    let (_, k) = post(
        &c,
        &s,
        &admin,
        "/v1/api-keys",
        json!({"name": "bff", "scopes": ["upstream", "sessions:write"]}),
    )
    .await;
    let key = k["key"].as_str().unwrap().to_owned();

    let token = session(&c, &s, &key, "user-1").await;
    let login = idp.login("user-1").await;
    assert_eq!(put_grant(&c, &s, &reader, &token, &login).await, 403);
    assert_eq!(put_grant(&c, &s, &key, &token, &login).await, 204);
    idp.reset_calls().await;

    // Fresh: the stored token, no provider call.
    let (st, b, _) = upstream_token(&c, &s, &key, &token).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["access_token"], login["access_token"]);
    assert!(b["expires_at"].is_string());
    assert_eq!(idp.refresh_calls().await, 0);
    let (st, _, _) = upstream_token(&c, &s, &reader, &token).await;
    assert_eq!(st, 403);

    // Within the buffer: refreshed once, then served from the store.
    sleep(3.5).await;
    let (st, b, _) = upstream_token(&c, &s, &key, &token).await;
    assert_eq!(st, 200, "{b}");
    let second = b["access_token"].as_str().unwrap().to_owned();
    assert_ne!(second, login["access_token"].as_str().unwrap());
    let (_, again, _) = upstream_token(&c, &s, &key, &token).await;
    assert_eq!(again["access_token"], second.as_str());
    assert_eq!(idp.refresh_calls().await, 1);

    // Again: the provider accepts the rotated refresh token sessiond kept
    // (it would refuse the old one and revoke the whole grant).
    sleep(3.5).await;
    let (st, b, _) = upstream_token(&c, &s, &key, &token).await;
    assert_eq!(st, 200, "{b}");
    let third = b["access_token"].as_str().unwrap().to_owned();
    assert_ne!(third, second);
    assert_eq!(idp.refresh_calls().await, 2);

    let metrics = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sessiond_upstream_refreshes_total{")
                && l.contains("outcome=\"refreshed\"")
                && l.ends_with(" 2")),
        "{metrics}"
    );

    // The provider fails: the old token while it is valid, no call storm,
    // then 503 upstream_unavailable with Retry-After.
    idp.fail(503, -1).await;
    sleep(3.5).await;
    let (st, b, _) = upstream_token(&c, &s, &key, &token).await;
    assert_eq!(
        (st, b["access_token"].as_str()),
        (200, Some(third.as_str()))
    );
    let calls = idp.refresh_calls().await;
    assert_eq!(calls, 3, "one failed call");
    for _ in 0..5 {
        let (st, _, _) = upstream_token(&c, &s, &key, &token).await;
        assert_eq!(st, 200);
    }
    assert_eq!(idp.refresh_calls().await, calls, "backing off: no new call");
    sleep(3.0).await; // past the old token's expiry
    let mut unavailable = None;
    for _ in 0..40 {
        let (st, b, retry) = upstream_token(&c, &s, &key, &token).await;
        if st == 503 {
            assert_eq!(b["error"], "upstream_unavailable");
            unavailable = retry;
            break;
        }
        assert_eq!(st, 200, "{b}");
        sleep(0.2).await;
    }
    let retry: u64 = unavailable
        .expect("503 once the old token expired")
        .parse()
        .unwrap();
    assert!(retry >= 1);
    // The provider is back: sessiond recovers after its back-off.
    idp.fail(503, 0).await;
    let mut recovered = None;
    for _ in 0..60 {
        let (st, b, _) = upstream_token(&c, &s, &key, &token).await;
        if st == 200 {
            recovered = Some(b["access_token"].as_str().unwrap().to_owned());
            break;
        }
        assert_eq!(st, 503, "{b}");
        sleep(0.25).await;
    }
    let fourth = recovered.expect("recovered once the provider is back");
    assert_ne!(fourth, third);

    // Revoked at the provider: the grant dies; no retry storm after.
    idp.revoke("user-1").await;
    sleep(3.5).await;
    let (st, b, _) = upstream_token(&c, &s, &key, &token).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (401, Some("reauthentication_required")),
        "{b}"
    );
    let calls = idp.refresh_calls().await;
    for _ in 0..5 {
        let (st, b, _) = upstream_token(&c, &s, &key, &token).await;
        assert_eq!(
            (st, b["error"].as_str()),
            (401, Some("reauthentication_required"))
        );
    }
    assert_eq!(
        idp.refresh_calls().await,
        calls,
        "a dead grant is never tried again"
    );

    // A new login replaces the dead grant; DELETE forgets it.
    let login = idp.login("user-1").await;
    assert_eq!(put_grant(&c, &s, &key, &token, &login).await, 204);
    let (st, _, _) = upstream_token(&c, &s, &key, &token).await;
    assert_eq!(st, 200);
    let r = c
        .delete(s.url("/v1/upstream/idp"))
        .bearer_auth(&key)
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (st, b, _) = upstream_token(&c, &s, &key, &token).await;
    assert_eq!((st, b["error"].as_str()), (404, Some("not_found")));

    // A pair session names itself by its refresh token (or access JWT) too.
    let (st, pair) = post(
        &c,
        &s,
        &key,
        "/v1/sessions",
        json!({"subject": "user-1", "issue": "pair"}),
    )
    .await;
    assert_eq!(st, 201, "{pair}");
    let rt = pair["refresh_token"].as_str().unwrap();
    let at = pair["access_token"].as_str().unwrap();
    assert_eq!(put_grant(&c, &s, &key, rt, &login).await, 204);
    let (st, b, _) = upstream_token(&c, &s, &key, at).await;
    assert_eq!(st, 200, "{b}");

    // Unknown provider; a logged-out session takes its grants with it.
    let r = c
        .post(s.url("/v1/upstream/nope/token"))
        .bearer_auth(&key)
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(put_grant(&c, &s, &key, &token, &login).await, 204);
    let (st, _) = post(&c, &s, &key, "/v1/sessions/revoke", json!({"token": token})).await;
    assert_eq!(st, 204);
    let (st, b, _) = upstream_token(&c, &s, &key, &token).await;
    assert_eq!((st, b["error"].as_str()), (401, Some("invalid_token")));

    // No upstream token in sessiond's log.
    let log = s.log_text();
    for t in [&second, &third, &fourth] {
        assert!(
            !log.contains(t.as_str()),
            "an upstream token reached the log"
        );
    }
    assert!(!log.contains(login["refresh_token"].as_str().unwrap()));
}

/// 200 concurrent `…/token` requests spread over three nodes on `store` at
/// `url` (under `prefix`), at the grant's expiry, with a slow provider:
/// exactly one upstream refresh, and every request gets its token.
async fn one_refresh_for_three_nodes(idp: &Provider, store: &str, url: &str, prefix: &str) {
    let env = idp.env(2);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (nodes, _dirs) = cluster(3, store, url, prefix, &env);
    let c = client();
    let key = nodes[0].admin_key();
    let token = session(&c, &nodes[0], &key, "user-9").await;
    let login = idp.login("user-9").await;
    assert_eq!(put_grant(&c, &nodes[1], &key, &token, &login).await, 204);
    // Past expiry; the provider answers slowly so the requests overlap.
    sleep(4.2).await;
    idp.reset_calls().await;
    idp.delay(300).await;
    let nodes = std::sync::Arc::new(nodes);
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (c, nodes, key, token) = (c.clone(), nodes.clone(), key.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            upstream_token(&c, &nodes[i % 3], &key, &token).await
        }));
    }
    let mut got = std::collections::HashSet::new();
    for t in tasks {
        let (st, b, _) = t.await.unwrap();
        assert_eq!(st, 200, "{store}: {b}");
        got.insert(b["access_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        got.len(),
        1,
        "{store}: every request got the same new token"
    );
    assert!(!got.contains(login["access_token"].as_str().unwrap()));
    assert_eq!(
        idp.refresh_calls().await,
        1,
        "{store}: exactly one upstream refresh"
    );
    idp.delay(0).await;
}

#[tokio::test]
async fn two_hundred_requests_on_three_nodes_on_redis_make_one_refresh() {
    let Some(url) = redis_url() else { return };
    let Some(idp) = Provider::start(4) else {
        return;
    };
    let prefix = format!("sk-upstream-{}", std::process::id());
    delete_prefix(&url, &prefix);
    one_refresh_for_three_nodes(&idp, "redis", &url, &prefix).await;
    delete_prefix(&url, &prefix);
}

#[tokio::test]
async fn two_hundred_requests_on_three_nodes_on_postgres_make_one_refresh() {
    let Some(url) = pg_url() else { return };
    let Some(idp) = Provider::start(4) else {
        return;
    };
    let schema = format!("sessiond_upstream_{}", std::process::id());
    drop_schema(&url, &schema);
    one_refresh_for_three_nodes(&idp, "postgres", &url, &schema).await;
    drop_schema(&url, &schema);
}

/// The background refresher: a grant nobody asks for is refreshed before
/// it expires (every second here, within 5 s of expiry), without touching
/// the session; the next request gets the new token with no call.
#[tokio::test]
async fn the_background_refresher_keeps_a_grant_fresh_without_touching_the_session() {
    let Some(idp) = Provider::start(8) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut env = idp.env(1);
    env.push((
        "SESSIOND_UPSTREAM__REFRESH_INTERVAL_SECS".into(),
        "1".into(),
    ));
    env.push(("SESSIOND_UPSTREAM__REFRESH_HORIZON_SECS".into(), "5".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = Server::start(dir.path(), &env);
    let c = client();
    let key = s.admin_key();
    let token = session(&c, &s, &key, "user-3").await;
    let (_, b) = process::get(&c, &s, &key, "/v1/subjects/user-3/sessions").await;
    let seen = b["sessions"][0]["last_seen_at"].clone();
    let login = idp.login("user-3").await;
    assert_eq!(put_grant(&c, &s, &key, &token, &login).await, 204);
    idp.reset_calls().await;
    // 8 s tokens, refreshed once fewer than 5 s are left: one call by ~4 s.
    let mut calls = 0;
    for _ in 0..40 {
        sleep(0.25).await;
        calls = idp.refresh_calls().await;
        if calls > 0 {
            break;
        }
    }
    assert_eq!(calls, 1, "refreshed in the background");
    let (_, b) = process::get(&c, &s, &key, "/v1/subjects/user-3/sessions").await;
    assert_eq!(
        b["sessions"][0]["last_seen_at"], seen,
        "the session was not touched"
    );
    let (st, b, _) = upstream_token(&c, &s, &key, &token).await;
    assert_eq!(st, 200);
    assert_ne!(b["access_token"], login["access_token"]);
    assert_eq!(idp.refresh_calls().await, 1, "served from the store");
}

/// A provider whose client authenticates with `private_key_jwt` (ES256):
/// sessiond signs a fresh client assertion for each refresh.
#[tokio::test]
async fn a_private_key_jwt_client_refreshes() {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("client.pem");
    let Some(idp) = Provider::start_with_pkjwt(4, &key_file) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key_path = key_file.to_str().unwrap().to_owned();
    let env = [
        (
            "SESSIOND_UPSTREAM__PROVIDERS__IDP__ISSUER",
            idp.issuer.as_str(),
        ),
        (
            "SESSIOND_UPSTREAM__PROVIDERS__IDP__CLIENT_ID",
            "sessiond-pkjwt",
        ),
        (
            "SESSIOND_UPSTREAM__PROVIDERS__IDP__CLIENT_AUTH",
            "private_key_jwt",
        ),
        (
            "SESSIOND_UPSTREAM__PROVIDERS__IDP__PRIVATE_KEY_FILE",
            key_path.as_str(),
        ),
        (
            "SESSIOND_UPSTREAM__PROVIDERS__IDP__PRIVATE_KEY_KID",
            "pkjwt-1",
        ),
        (
            "SESSIOND_UPSTREAM__PROVIDERS__IDP__REFRESH_BUFFER_SECS",
            "2",
        ),
    ];
    let s = Server::start(dir.path(), &env);
    let c = client();
    let key = s.admin_key();
    let token = session(&c, &s, &key, "user-5").await;
    let login = idp.login_as("user-5", "sessiond-pkjwt").await;
    assert_eq!(put_grant(&c, &s, &key, &token, &login).await, 204);
    idp.reset_calls().await;
    sleep(2.5).await;
    let (st, b, _) = upstream_token(&c, &s, &key, &token).await;
    assert_eq!(st, 200, "{b}");
    assert_ne!(b["access_token"], login["access_token"]);
    assert_eq!(idp.refresh_calls().await, 1);
    // Twice: each assertion has its own jti (a replayed one is refused).
    sleep(2.5).await;
    let (st, b2, _) = upstream_token(&c, &s, &key, &token).await;
    assert_eq!(st, 200, "{b2}");
    assert_ne!(b2["access_token"], b["access_token"]);
    assert_eq!(idp.refresh_calls().await, 2);
}

/// A refresh whose new ID token names another subject than the grant's
/// first one is refused: the grant is dead, the new tokens are not served.
#[tokio::test]
async fn a_refresh_for_another_subject_kills_the_grant() {
    let Some(idp) = Provider::start(4) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = idp.env(2);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = Server::start(dir.path(), &env);
    let c = client();
    let key = s.admin_key();
    let token = session(&c, &s, &key, "user-6").await;
    let mine = idp.login("user-6").await;
    let other = idp.login("user-7").await;
    // The grant says user-6 (its ID token) but holds user-7's tokens.
    let mut mixed = other.clone();
    mixed["id_token"] = mine["id_token"].clone();
    assert_eq!(put_grant(&c, &s, &key, &token, &mixed).await, 204);
    sleep(2.5).await;
    let (st, b, _) = upstream_token(&c, &s, &key, &token).await;
    assert_eq!(
        (st, b["error"].as_str()),
        (401, Some("reauthentication_required")),
        "{b}"
    );
    let calls = idp.refresh_calls().await;
    let (st, _, _) = upstream_token(&c, &s, &key, &token).await;
    assert_eq!(st, 401);
    assert_eq!(idp.refresh_calls().await, calls, "dead: not tried again");
}
