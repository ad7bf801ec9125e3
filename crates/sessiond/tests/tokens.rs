//! The token endpoints through the router: `"issue": "pair"`, refresh with
//! rotation and reuse detection, access JWTs in validate / upgrade /
//! revoke, introspection, the JWKS and key rotation.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use serde_json::{Value, json};

use common::harness;

async fn post_refresh(h: &common::Harness, body: Value) -> common::Res {
    h.call("POST", "/v1/tokens/refresh", Some(&h.write), Some(body))
        .await
}

async fn post_introspect(h: &common::Harness, body: Value) -> common::Res {
    h.call(
        "POST",
        "/v1/tokens/introspect",
        Some(&h.validate),
        Some(body),
    )
    .await
}

async fn post_validate(h: &common::Harness, body: Value) -> common::Res {
    h.call(
        "POST",
        "/v1/sessions/validate",
        Some(&h.validate),
        Some(body),
    )
    .await
}

async fn pair(h: &common::Harness, subject: Option<&str>) -> Value {
    let r = h
        .call(
            "POST",
            "/v1/sessions",
            Some(&h.write),
            Some(json!({"subject": subject, "issue": "pair"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(r.header("location").starts_with("/v1/sessions/"));
    assert!(r.body.get("token").is_none(), "a pair has no session token");
    r.body
}

#[tokio::test]
async fn pair_refresh_reuse_and_validate_over_http() {
    let h = harness().await;
    let p = pair(&h, Some("alice")).await;
    for f in [
        "access_token",
        "access_expires_at",
        "refresh_token",
        "csrf_token",
    ] {
        assert!(p[f].is_string(), "{f}: {p}");
    }
    let access = p["access_token"].as_str().unwrap();
    let refresh = p["refresh_token"].as_str().unwrap();
    let r = post_validate(&h, json!({"token": access})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["session"]["subject"], "alice");
    // Refresh, then the same again inside the grace: the same pair.
    let body = json!({"refresh_token": refresh});
    let a = post_refresh(&h, body.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let b = post_refresh(&h, body.clone()).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text);
    assert_eq!(a.body["refresh_token"], b.body["refresh_token"]);
    assert_eq!(a.body["access_token"], b.body["access_token"]);
    // After the grace: reuse revokes the session.
    h.clock.advance_secs(31);
    let c = post_refresh(&h, body).await;
    assert_eq!(c.status, StatusCode::UNAUTHORIZED);
    assert_eq!(c.code(), "refresh_token_reused");
    let newer = json!({"refresh_token": a.body["refresh_token"]});
    let d = post_refresh(&h, newer).await;
    assert_eq!(d.code(), "invalid_token");
    let v = json!({"token": a.body["access_token"]});
    let e = post_validate(&h, v).await;
    assert_eq!(e.code(), "invalid_token");
    // A forged refresh token: invalid_token.
    let f = json!({"refresh_token": "rft_AAAA"});
    let g = post_refresh(&h, f).await;
    assert_eq!(g.code(), "invalid_token");
}

#[tokio::test]
async fn expired_access_token_is_token_expired() {
    let h = harness().await;
    let p = pair(&h, Some("bob")).await;
    // No leeway by default: the token ends at its exp exactly.
    h.clock.advance_secs(599);
    let v = json!({"token": p["access_token"]});
    let r = post_validate(&h, v).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    h.clock.advance_secs(1);
    let v = json!({"token": p["access_token"]});
    let r = post_validate(&h, v).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "token_expired");
    let body = json!({"refresh_token": p["refresh_token"]});
    let r = post_refresh(&h, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn upgrade_and_revoke_with_any_token_and_introspect() {
    let h = harness().await;
    let p = pair(&h, None).await;
    let up = json!({"token": p["refresh_token"], "subject": "carol", "issue": "pair"});
    let r = h
        .call("POST", "/v1/sessions/upgrade", Some(&h.write), Some(up))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["session"]["subject"], "carol");
    let access = r.body["access_token"].clone();
    let i = post_introspect(&h, json!({"token": access})).await;
    assert_eq!(i.body["active"], true, "{}", i.text);
    assert_eq!(i.body["sub"], "carol");
    assert_eq!(i.body["token_type"], "access_token");
    let r = h
        .call(
            "POST",
            "/v1/sessions/revoke",
            Some(&h.write),
            Some(json!({"token": access})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let i = post_introspect(&h, json!({"token": access})).await;
    assert_eq!(i.body, json!({"active": false}));
}

#[tokio::test]
async fn jwks_and_key_rotation() {
    let h = harness().await;
    let p = pair(&h, Some("dan")).await;
    let r = h.call("GET", "/.well-known/jwks.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("cache-control").contains("max-age="));
    assert_eq!(r.body["keys"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["keys"][0]["kty"], "OKP");
    assert!(r.body["keys"][0].get("d").is_none(), "no private part");
    // Only an admin of the default tenant rotates.
    let r = h
        .call("POST", "/v1/keys/rotate", Some(&h.write), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call("POST", "/v1/keys/rotate", Some(&h.other_tenant), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call("POST", "/v1/keys/rotate", Some(&h.admin), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let keys = r.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.iter().filter(|k| k["active"] == true).count(), 1);
    assert!(keys[0]["retires_at"].is_string());
    let r = h.call("GET", "/.well-known/jwks.json", None, None).await;
    assert_eq!(r.body["keys"].as_array().unwrap().len(), 2);
    // The old token still verifies; the next one has the new kid.
    let v = json!({"token": p["access_token"]});
    let r = post_validate(&h, v).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let body = json!({"refresh_token": p["refresh_token"]});
    let r = post_refresh(&h, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let kid_of = |t: &Value| {
        use base64::Engine as _;
        let head = t.as_str().unwrap().split('.').next().unwrap().to_owned();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(head)
            .unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap()["kid"].clone()
    };
    assert_ne!(kid_of(&r.body["access_token"]), kid_of(&p["access_token"]));
    // The rotation was written: the key file names both keys.
    let file = std::fs::read_to_string(h.keys_dir.path().join("signing.keys")).unwrap();
    assert_eq!(file.matches("\"kid\"").count(), 2);
    let r = h.call("GET", "/v1/keys", Some(&h.admin), None).await;
    assert_eq!(r.body["keys"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn issue_is_checked() {
    let h = harness().await;
    let r = h
        .call(
            "POST",
            "/v1/sessions",
            Some(&h.write),
            Some(json!({"issue": "both"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "invalid_request");
}
