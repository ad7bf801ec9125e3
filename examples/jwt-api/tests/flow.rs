//! The API driven in process (`tower::ServiceExt::oneshot`), on a
//! `ManualClock` so that the refresh grace and the access token's
//! lifetime can be stepped over: login, `/me`, refresh with rotation,
//! reuse detection, logout, expiry, and an access token verified offline
//! with `jsonwebtoken` and the published JWKS, as a downstream service
//! would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Value, json};
use sessionkit_core::{ManualClock, Millis};
use tower::ServiceExt;

struct Answer {
    status: StatusCode,
    www_authenticate: Option<String>,
    body: Value,
}

/// An app on a manual clock set to the real time (so that `jsonwebtoken`,
/// which reads the system clock, agrees on `exp`).
async fn app() -> (Router, ManualClock) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let clock = ManualClock::new(Millis::from_millis(i64::try_from(now.as_millis()).unwrap()));
    let engine = jwt_api::engine(clock.clone()).await.unwrap();
    (jwt_api::app(Arc::new(engine)), clock)
}

async fn call(app: &Router, method: &str, path: &str, bearer: Option<&str>, body: Value) -> Answer {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = bearer {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = if body.is_null() {
        req.body(Body::empty())
    } else {
        req.header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
    }
    .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let www_authenticate = res
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    Answer {
        status,
        www_authenticate,
        body,
    }
}

/// A pair's `(access_token, refresh_token)`.
fn pair(a: &Answer) -> (String, String) {
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body["access_expires_at"].is_string(), "{}", a.body);
    (
        a.body["access_token"].as_str().unwrap().to_owned(),
        a.body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn login(app: &Router, username: &str, password: &str) -> Answer {
    let body = json!({"username": username, "password": password});
    call(app, "POST", "/login", None, body).await
}

async fn refresh(app: &Router, refresh_token: &str) -> Answer {
    let body = json!({ "refresh_token": refresh_token });
    call(app, "POST", "/refresh", None, body).await
}

async fn me(app: &Router, access: &str) -> Answer {
    call(app, "GET", "/me", Some(access), Value::Null).await
}

const INVALID: &str = r#"Bearer error="invalid_token""#;

#[tokio::test]
async fn login_refresh_reuse_revokes_the_session() {
    let (app, clock) = app().await;

    let (access1, refresh1) = pair(&login(&app, "ada", "lovelace-1815").await);
    let who = me(&app, &access1).await;
    assert_eq!(who.status, StatusCode::OK);
    assert_eq!(who.body["subject"], "ada");
    let sid = who.body["session_id"].as_str().unwrap().to_owned();

    // Rotation: a new pair for the same session.
    let (access2, refresh2) = pair(&refresh(&app, &refresh1).await);
    assert_ne!(refresh2, refresh1);
    let who = me(&app, &access2).await;
    assert_eq!(who.status, StatusCode::OK);
    assert_eq!(who.body["session_id"], sid.as_str());

    // The old refresh token again, after the 30 s grace: theft suspected,
    // the session is revoked.
    clock.advance_secs(31);
    let reused = refresh(&app, &refresh1).await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reused.body, json!({"error": "refresh_token_reused"}));

    // So the newest access token, still within its `exp`, is dead at once.
    let after = me(&app, &access2).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.www_authenticate.as_deref(), Some(INVALID));
    assert_eq!(after.body["error"], "invalid_token");
    // And so is the newest refresh token.
    assert_eq!(
        refresh(&app, &refresh2).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_retry_inside_the_grace_gets_the_same_pair() {
    let (app, clock) = app().await;
    let (_, refresh1) = pair(&login(&app, "grace", "hopper-1906").await);
    let first = pair(&refresh(&app, &refresh1).await);
    clock.advance_secs(5);
    let retry = pair(&refresh(&app, &refresh1).await);
    assert_eq!(retry, first, "a lost response's retry is not a theft");
    assert_eq!(me(&app, &first.0).await.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_credentials_and_bad_tokens_are_401() {
    let (app, _) = app().await;
    for (user, pass) in [("ada", "wrong"), ("ada", ""), ("nobody", "lovelace-1815")] {
        let a = login(&app, user, pass).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{user}/{pass}");
        assert_eq!(a.body, json!({"error": "invalid_credentials"}));
        assert!(a.body.get("access_token").is_none());
    }

    let none = call(&app, "GET", "/me", None, Value::Null).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.www_authenticate.as_deref(), Some("Bearer"));

    let (access, refresh_token) = pair(&login(&app, "ada", "lovelace-1815").await);
    // One character in the middle of the signature changed.
    let mut tampered = access.clone().into_bytes();
    let at = access.len() - 20;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [
        "nonsense",
        "a.b.c",
        tampered.as_str(),
        refresh_token.as_str(),
    ] {
        let a = me(&app, bad).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(a.www_authenticate.as_deref(), Some(INVALID), "{bad}");
    }
    let a = refresh(&app, "nonsense").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.body, json!({"error": "invalid_token"}));
}

#[tokio::test]
async fn logout_kills_the_access_token() {
    let (app, _) = app().await;
    let (access, refresh_token) = pair(&login(&app, "ada", "lovelace-1815").await);
    assert_eq!(me(&app, &access).await.status, StatusCode::OK);
    let out = call(&app, "POST", "/logout", Some(&access), Value::Null).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let after = me(&app, &access).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.www_authenticate.as_deref(), Some(INVALID));
    assert_eq!(
        refresh(&app, &refresh_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Idempotent.
    let again = call(&app, "POST", "/logout", Some(&access), Value::Null).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    let anonymous = call(&app, "POST", "/logout", None, Value::Null).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_expired_access_token_says_so_and_a_refresh_fixes_it() {
    let (app, clock) = app().await;
    let (access, refresh_token) = pair(&login(&app, "ada", "lovelace-1815").await);
    // 10 minutes of life, 30 s of leeway.
    clock.advance_secs(600 + 30 + 1);
    let a = me(&app, &access).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.www_authenticate.as_deref(),
        Some(r#"Bearer error="invalid_token", error_description="expired""#)
    );
    assert_eq!(a.body["error"], "token_expired");
    let (fresh, _) = pair(&refresh(&app, &refresh_token).await);
    assert_eq!(me(&app, &fresh).await.status, StatusCode::OK);
}

/// What a downstream service does: fetch the JWKS, pick the key of the
/// token's `kid`, verify signature, algorithm, `iss`, `aud` and `exp` —
/// no call to this API per request.
#[tokio::test]
async fn an_access_token_verifies_offline_with_the_published_jwk() {
    let (app, _) = app().await;
    let (access, _) = pair(&login(&app, "grace", "hopper-1906").await);
    let sid = me(&app, &access).await.body["session_id"].clone();

    let set = call(&app, "GET", "/.well-known/jwks.json", None, Value::Null).await;
    assert_eq!(set.status, StatusCode::OK);
    let set: JwkSet = serde_json::from_value(set.body).unwrap();
    let header = jsonwebtoken::decode_header(&access).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = set
        .find(header.kid.as_deref().expect("a kid"))
        .expect("the token's key is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();

    // The algorithm is the verifier's choice, never the token's.
    let mut v = jsonwebtoken::Validation::new(Algorithm::EdDSA);
    v.set_issuer(&[jwt_api::ISSUER]);
    v.set_audience(&[jwt_api::AUDIENCE]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(&access, &key, &v).unwrap();
    assert_eq!(data.claims["sub"], "grace");
    assert_eq!(data.claims["sid"], sid);

    // Another audience's verifier refuses it.
    let mut other = v.clone();
    other.set_audience(&["billing"]);
    assert!(jsonwebtoken::decode::<Value>(&access, &key, &other).is_err());
}
