//! In-process tests of every route and every error code of docs/api.md,
//! driving the router with `tower::ServiceExt::oneshot` on a memory store
//! and a manual clock.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Harness, harness, harness_with};
use serde_json::{Value, json};
use sessionkit_core::{OnSessionLimit, Policy};

fn is_rfc3339_ms(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 24
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && b[23] == b'Z'
        && b[20..23].iter().all(u8::is_ascii_digit)
}

#[tokio::test]
async fn create_returns_201_location_and_the_session() {
    let h = harness().await;
    let r = h
        .call(
            "POST",
            "/v1/sessions",
            Some(&h.write),
            Some(json!({"subject": "user-1", "attributes": {"cart": 2},
                "client": {"ip": "192.0.2.1", "user_agent": "ua/1", "device": "phone"},
                "idle_timeout_secs": 60, "absolute_timeout_secs": 3600})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let s = &r.body["session"];
    let id = s["id"].as_str().unwrap();
    assert_eq!(r.header("location"), format!("/v1/sessions/{id}"));
    assert_eq!(r.header("cache-control"), "no-store");
    assert!(r.body["token"].as_str().unwrap().starts_with("ses_"));
    assert!(!r.body["csrf_token"].as_str().unwrap().is_empty());
    assert_eq!(s["subject"], "user-1");
    assert_eq!(s["attributes"], json!({"cart": 2}));
    assert_eq!(
        s["client"],
        json!({"ip": "192.0.2.1", "user_agent": "ua/1", "device": "phone"})
    );
    assert_eq!(s["version"], 1);
    for f in [
        "created_at",
        "last_seen_at",
        "idle_expires_at",
        "expires_at",
        "auth_time",
    ] {
        assert!(is_rfc3339_ms(s[f].as_str().unwrap()), "{f}: {}", s[f]);
    }
    assert_eq!(s["created_at"], "2027-01-15T08:00:00.000Z");
    assert_eq!(s["idle_expires_at"], "2027-01-15T08:01:00.000Z");
    assert_eq!(s["expires_at"], "2027-01-15T09:00:00.000Z");
    // Anonymous: subject and auth_time are null.
    let r = h
        .call("POST", "/v1/sessions", Some(&h.write), Some(json!({})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["session"]["subject"], Value::Null);
    assert_eq!(r.body["session"]["auth_time"], Value::Null);
}

#[tokio::test]
async fn create_rejects_bad_input_naming_the_field() {
    let h = harness().await;
    let cases = [
        (json!({"subject": "u", "bogus": 1}), "bogus"),
        (json!({"subject": 5}), "subject"),
        (json!({"subject": ""}), "subject"),
        (json!({"subject": "a\u{0}b"}), "subject"),
        (json!({"subject": "a\nb"}), "subject"),
        (json!({"subject": "x".repeat(256)}), "subject"),
        (json!({"idle_timeout_secs": -1}), "idle_timeout_secs"),
        (json!({"idle_timeout_secs": 0}), "idle_timeout_secs"),
        (json!({"idle_timeout_secs": 1.5}), "idle_timeout_secs"),
        (json!({"idle_timeout_secs": "60"}), "idle_timeout_secs"),
        (json!({"idle_timeout_secs": 1e300}), "idle_timeout_secs"),
        (json!({"idle_timeout_secs": u64::MAX}), "idle_timeout_secs"),
        (json!({"idle_timeout_secs": i64::MIN}), "idle_timeout_secs"),
        (
            json!({"absolute_timeout_secs": 999_999_999_999u64}),
            "absolute_timeout_secs",
        ),
        (
            json!({"idle_timeout_secs": 100, "absolute_timeout_secs": 50}),
            "idle_timeout_secs",
        ),
        (json!({"attributes": [1]}), "attributes"),
        (json!({"attributes": "x"}), "attributes"),
        (json!({"client": {"ip": "nope"}}), "client.ip"),
        (json!({"client": {"user_agent": "a\u{1}"}}), "user_agent"),
        (json!({"client": {"extra": 1}}), "extra"),
    ];
    for (body, field) in cases {
        let r = h
            .call("POST", "/v1/sessions", Some(&h.write), Some(body.clone()))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert_eq!(r.code(), "invalid_request");
        assert!(
            r.body["message"].as_str().unwrap().contains(field),
            "{body}: {}",
            r.text
        );
    }
    // A huge integer literal beyond 64 bits.
    let r = h
        .send_text(
            "POST",
            "/v1/sessions",
            &h.write,
            "application/json",
            r#"{"idle_timeout_secs": 123456789012345678901234567890}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("idle_timeout_secs"));
    // Duplicate keys, at the top and nested.
    for body in [
        r#"{"subject":"a","subject":"b"}"#,
        r#"{"attributes":{"k":1,"k":2}}"#,
    ] {
        let r = h
            .send_text("POST", "/v1/sessions", &h.write, "application/json", body)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(r.text.contains("duplicate"), "{}", r.text);
    }
    // Duplicate fields in every other body type.
    for (path, body) in [
        ("/v1/sessions/validate", r#"{"token":"a","token":"b"}"#),
        (
            "/v1/sessions/upgrade",
            r#"{"token":"a","subject":"x","subject":"y"}"#,
        ),
        ("/v1/sessions/revoke", r#"{"token":"a","token":"a"}"#),
        ("/v1/sessions", r#"{"client":{"ip":"::1","ip":"::2"}}"#),
        ("/v1/api-keys", r#"{"scopes":["admin"],"scopes":["admin"]}"#),
    ] {
        let r = h
            .send_text("POST", path, &h.admin, "application/json", body)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} {body}");
        assert!(r.text.contains("duplicate"), "{}", r.text);
    }
    // Malformed JSON, trailing garbage, empty body.
    for body in ["{", "{} {}", "", "null", "[]"] {
        let r = h
            .send_text("POST", "/v1/sessions", &h.write, "application/json", body)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body:?}: {}", r.text);
        assert_eq!(r.code(), "invalid_request");
    }
    // Nothing was created by any of these.
    let stats = h.call("GET", "/v1/stats", Some(&h.admin), None).await;
    assert_eq!(stats.body["live"], 0);
}

#[tokio::test]
async fn create_attributes_are_checked_as_raw_text() {
    let policy = Policy::builder()
        .attribute_limits(sessionkit_core::AttributeLimits {
            max_bytes: 200,
            max_depth: 3,
        })
        .build()
        .unwrap();
    let h = harness_with(policy).await;
    let post = |body: String| {
        let h = &h;
        async move {
            h.send_text("POST", "/v1/sessions", &h.write, "application/json", &body)
                .await
        }
    };
    // Whitespace goes, key order stays; null is no attributes.
    let r = post(
        r#"{"attributes": { "z" : 1 ,
        "a" : [ true , { "b" : "\u00e9" } ] }}"#
            .into(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(
        r.text
            .contains(r#""attributes":{"z":1,"a":[true,{"b":"é"}]}"#),
        "{}",
        r.text
    );
    let r = post(r#"{"attributes":null}"#.into()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["session"]["attributes"], json!({}));
    // Not an object: 400 naming the field.
    for bad in ["[1]", "[]", r#""x""#, "3", "true", "[{}]"] {
        let r = post(format!(r#"{{"attributes":{bad}}}"#)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
        assert_eq!(r.code(), "invalid_request");
        let msg = r.body["message"].as_str().unwrap();
        assert!(
            msg.contains("attributes") && msg.contains("object"),
            "{msg}"
        );
    }
    // A repeated key, at the top, nested, spelt differently, in a big
    // object: 400 naming the field and the key.
    let many: Vec<String> = (0..20).map(|i| format!(r#""k{i}":{i}"#)).collect();
    for bad in [
        r#"{"k":1,"k":2}"#.to_string(),
        r#"{"a":[{"k":1,"k":2}]}"#.to_string(),
        r#"{"a":{"kA":1,"k\u0041":2}}"#.to_string(),
        format!(r#"{{{},"k3":0}}"#, many.join(",")),
    ] {
        let r = post(format!(r#"{{"attributes":{bad}}}"#)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
        assert_eq!(r.code(), "invalid_request");
        let msg = r.body["message"].as_str().unwrap();
        assert!(
            msg.contains("attributes") && msg.contains("duplicate"),
            "{msg}"
        );
    }
    // The same key in different objects is fine.
    let ok = r#"{"attributes":{"k":{"k":1},"j":{"k":2}}}"#;
    assert_eq!(post(ok.into()).await.status, StatusCode::CREATED);
    // Too deep: 400 naming the field; too large: 413.
    let r = post(r#"{"attributes":{"a":{"b":{"c":{}}}}}"#.into()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.code(), "invalid_request");
    assert!(r.text.contains("attributes"), "{}", r.text);
    let r = post(format!(r#"{{"attributes":{{"x":"{}"}}}}"#, "a".repeat(300))).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert_eq!(r.code(), "payload_too_large");
    // Another field's error still names that field when attributes are
    // present (the slow, path-naming parse handles raw attributes too).
    for (bad, field) in [
        (
            r#"{"attributes":{"a":1},"idle_timeout_secs":"60"}"#,
            "idle_timeout_secs",
        ),
        (r#"{"attributes":{"a":1},"nope":1}"#, "nope"),
        (
            r#"{"attributes":{"a":1},"attributes":{"b":1}}"#,
            "duplicate",
        ),
    ] {
        let r = post(bad.into()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
        assert!(r.text.contains(field), "{bad}: {}", r.text);
    }
    // Only the three good creates wrote anything.
    let stats = h.call("GET", "/v1/stats", Some(&h.admin), None).await;
    assert_eq!(stats.body["live"], 3);
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let h = harness().await;
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/merge-patch+json",
        "application/json; charset=utf-16",
        "application/json; charset=\"latin1\"",
        "application/json; charset",
    ] {
        let r = h
            .send_text("POST", "/v1/sessions", &h.write, ct, "{}")
            .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}");
        assert_eq!(r.code(), "unsupported_media_type");
    }
    let req = Request::post("/v1/sessions")
        .header("authorization", format!("Bearer {}", h.write))
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(h.raw(req).await.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A content-encoded body is refused, never parsed as text.
    for enc in ["gzip", "br", "deflate"] {
        let req = Request::post("/v1/sessions")
            .header("authorization", format!("Bearer {}", h.write))
            .header("content-type", "application/json")
            .header("content-encoding", enc)
            .body(Body::from("{}"))
            .unwrap();
        let r = h.raw(req).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{enc}");
        assert!(!r.text.contains(enc), "the message echoes no client value");
    }
    let r = h
        .send_text(
            "POST",
            "/v1/sessions",
            &h.write,
            "application/json; charset=\"UTF-8\"",
            "{}",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = h
        .send_text(
            "POST",
            "/v1/sessions",
            &h.write,
            "application/json; charset=utf-8",
            "{}",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_declared_or_streamed() {
    let h = harness().await;
    let big = format!("{{\"attributes\":{{\"x\":\"{}\"}}}}", "a".repeat(70 * 1024));
    let r = h
        .send_text("POST", "/v1/sessions", &h.write, "application/json", &big)
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.code(), "payload_too_large");
    // Streamed without a Content-Length: cut off while reading.
    let chunks: Vec<Result<String, std::io::Error>> =
        (0..100).map(|_| Ok("a".repeat(1024))).collect();
    let req = Request::post("/v1/sessions")
        .header("authorization", format!("Bearer {}", h.write))
        .header("content-type", "application/json")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    let r = h.raw(req).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    let r = h
        .send_text("POST", "/v1/sessions", &h.write, "application/json", "{}")
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

/// serde's derive would take a struct as an array of its fields: refused.
#[tokio::test]
async fn array_bodies_are_400() {
    let h = harness().await;
    let r = h
        .send_text(
            "POST",
            "/v1/sessions",
            &h.write,
            "application/json",
            r#"["arr-user",null,null,null,null]"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.code(), "invalid_request");
}

#[tokio::test]
async fn oversized_headers_are_431() {
    let h = harness().await;
    let req = Request::get("/v1/stats")
        .header("authorization", format!("Bearer {}", h.admin))
        .header("x-big", "a".repeat(20 * 1024))
        .body(Body::empty())
        .unwrap();
    let r = h.raw(req).await;
    assert_eq!(r.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(r.code(), "headers_too_large");
}

#[tokio::test]
async fn unknown_route_404_and_wrong_method_405_are_json() {
    let h = harness().await;
    let r = h.call("GET", "/v1/nope", Some(&h.admin), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");
    let r = h.call("PUT", "/v1/sessions", Some(&h.admin), None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.code(), "method_not_allowed");
    let r = h.call("POST", "/v1/stats", Some(&h.admin), None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn api_key_errors_never_mix_with_token_errors() {
    let h = harness().await;
    let (_, token, _) = h.create(json!({"subject": "u"})).await;
    let body = json!({"token": token});
    let r = h
        .call("POST", "/v1/sessions/validate", None, Some(body.clone()))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "unauthenticated");
    assert_eq!(r.header("www-authenticate"), "Bearer realm=\"sessiond\"");
    let r = h
        .call(
            "POST",
            "/v1/sessions/validate",
            Some("sdk_wrong"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.code(), "unauthenticated");
    // Never from a query string.
    let uri = format!("/v1/stats?api_key={}", h.admin);
    let r = h.call("GET", &uri, None, None).await;
    assert_eq!(r.code(), "unauthenticated");
    let req = Request::get("/v1/stats")
        .header("authorization", format!("Basic {}", h.admin))
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.raw(req).await.code(), "unauthenticated");
    // Two Authorization headers, one of them valid: neither counts.
    for (first, second) in [
        (h.admin.as_str(), "sdk_wrong"),
        ("sdk_wrong", h.admin.as_str()),
    ] {
        let req = Request::get("/v1/stats")
            .header("authorization", format!("Bearer {first}"))
            .header("authorization", format!("Bearer {second}"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(h.raw(req).await.code(), "unauthenticated");
    }
    let req = Request::get("/v1/stats")
        .header("authorization", format!("Bearer {}", h.admin))
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.raw(req).await.status, StatusCode::OK);
    // Scopes.
    let r = h
        .call("POST", "/v1/sessions", Some(&h.validate), Some(json!({})))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "insufficient_scope");
    let r = h
        .call(
            "POST",
            "/v1/sessions/validate",
            Some(&h.read),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.code(), "insufficient_scope");
    let r = h.call("GET", "/v1/stats", Some(&h.write), None).await;
    assert_eq!(r.code(), "insufficient_scope");
    let r = h
        .call(
            "POST",
            "/v1/sessions/validate",
            Some(&h.validate),
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn validate_csrf_expiry_and_garbage() {
    let h = harness().await;
    let (id, token, csrf) = h
        .create(json!({"subject": "u", "idle_timeout_secs": 600}))
        .await;
    let v = |b: Value| async {
        h.call("POST", "/v1/sessions/validate", Some(&h.validate), Some(b))
            .await
    };
    let r = v(json!({"token": token})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["session"]["id"], id.as_str());
    assert_eq!(r.body["csrf_token"], csrf.as_str());
    assert!(r.body.get("token").is_none());
    let r =
        v(json!({"token": token, "csrf_token": csrf, "client": {"ip": "::1", "user_agent": "x"}}))
            .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = v(json!({"token": token, "csrf_token": "nope"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "csrf_failed");
    // Garbage tokens: 401 invalid_token with no store I/O.
    let before = h.store.token_lookups.load(Ordering::SeqCst);
    for garbage in [
        "",
        "x",
        "ses_",
        "ses_!!!!",
        &format!("{token}="),
        &token.to_uppercase(),
        &"a".repeat(10_000),
    ] {
        let r = v(json!({"token": garbage})).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{garbage}");
        assert_eq!(r.code(), "invalid_token");
    }
    assert_eq!(h.store.token_lookups.load(Ordering::SeqCst), before);
    // Well-formed but unknown.
    let unknown = format!("ses_{}", "A".repeat(43));
    assert_eq!(v(json!({"token": unknown})).await.code(), "invalid_token");
    // Wrong types and missing fields.
    assert_eq!(v(json!({"token": 5})).await.code(), "invalid_request");
    assert_eq!(v(json!({})).await.code(), "invalid_request");
    assert_eq!(
        v(json!({"token": token, "x": 1})).await.code(),
        "invalid_request"
    );
    // Expiry: session_expired until purged, then invalid_token.
    h.clock.advance_secs(601);
    let r = v(json!({"token": token})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "session_expired");
    let r = h.call("POST", "/v1/purge", Some(&h.admin), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["purged"], 1);
    assert_eq!(v(json!({"token": token})).await.code(), "invalid_token");
}

#[tokio::test]
async fn other_tenants_see_nothing() {
    let h = harness().await;
    let (id, token, _) = h.create(json!({"subject": "u"})).await;
    let k = h.other_tenant.clone();
    let r = h
        .call(
            "POST",
            "/v1/sessions/validate",
            Some(&k),
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(r.code(), "invalid_token");
    let r = h
        .call("GET", &format!("/v1/sessions/{id}"), Some(&k), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call("DELETE", &format!("/v1/sessions/{id}"), Some(&k), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call("GET", "/v1/subjects/u/sessions", Some(&k), None)
        .await;
    assert_eq!(r.body["sessions"], json!([]));
    let r = h.call("GET", "/v1/stats", Some(&k), None).await;
    assert_eq!(r.body["live"], 0);
    // Still live for its own tenant.
    let r = h
        .call("GET", &format!("/v1/sessions/{id}"), Some(&h.read), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn upgrade_rotates_and_kills_the_old_token() {
    let h = harness().await;
    let (old_id, token, old_csrf) = h
        .create(json!({"attributes": {"cart": 3, "theme": "dark"}}))
        .await;
    let up = |b: Value| async {
        h.call("POST", "/v1/sessions/upgrade", Some(&h.write), Some(b))
            .await
    };
    let r = up(json!({"token": token, "subject": "alice", "keep_attributes": ["cart", "absent"]}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let new_token = r.body["token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, token);
    assert_ne!(r.body["session"]["id"], old_id.as_str());
    assert_ne!(r.body["csrf_token"], old_csrf.as_str());
    assert_eq!(r.body["session"]["subject"], "alice");
    assert_eq!(r.body["session"]["attributes"], json!({"cart": 3}));
    assert!(r.body["session"]["auth_time"].is_string());
    let r = h
        .call(
            "POST",
            "/v1/sessions/validate",
            Some(&h.validate),
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(r.code(), "invalid_token");
    assert_eq!(
        up(json!({"token": token, "subject": "alice"})).await.code(),
        "invalid_token"
    );
    assert_eq!(
        up(json!({"token": "garbage", "subject": "alice"}))
            .await
            .code(),
        "invalid_token"
    );
    let names: Vec<String> = (0..65).map(|i| format!("k{i}")).collect();
    let r = up(json!({"token": new_token, "subject": "alice", "keep_attributes": names})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("keep_attributes"));
    assert_eq!(
        up(json!({"token": new_token, "subject": ""})).await.code(),
        "invalid_request"
    );
    assert_eq!(
        up(json!({"token": new_token})).await.code(),
        "invalid_request"
    );
    // Expired sessions cannot be upgraded.
    h.clock.advance_secs(31 * 60);
    assert_eq!(
        up(json!({"token": new_token, "subject": "alice"}))
            .await
            .code(),
        "session_expired"
    );
}

#[tokio::test]
async fn logout_is_204_for_any_well_formed_token() {
    let h = harness().await;
    let (id, token, _) = h.create(json!({"subject": "u"})).await;
    let out = |b: Value| async {
        h.call("POST", "/v1/sessions/revoke", Some(&h.write), Some(b))
            .await
    };
    assert_eq!(
        out(json!({"token": token})).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        out(json!({"token": token})).await.status,
        StatusCode::NO_CONTENT
    );
    let unknown = format!("ses_{}A", "B".repeat(42));
    assert_eq!(
        out(json!({"token": unknown})).await.status,
        StatusCode::NO_CONTENT
    );
    let r = out(json!({"token": "nope"})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "invalid_token");
    let r = h
        .call(
            "POST",
            "/v1/sessions/validate",
            Some(&h.validate),
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(r.code(), "invalid_token");
    let r = h
        .call("GET", &format!("/v1/sessions/{id}"), Some(&h.read), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn get_patch_delete_by_id() {
    let h = harness().await;
    let (id, _, _) = h
        .create(json!({"subject": "u", "attributes": {"a": 1, "b": {"c": 2}}}))
        .await;
    let path = format!("/v1/sessions/{id}");
    let r = h.call("GET", &path, Some(&h.read), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("etag"), "\"1\"");
    assert_eq!(r.body["session"]["id"], id.as_str());
    let r = h
        .call("GET", "/v1/sessions/not-an-id", Some(&h.read), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h.call("GET", "/v1/sessions/%00", Some(&h.read), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let unknown = "0190a4a2-0000-7000-8000-000000000000";
    let r = h
        .call(
            "GET",
            &format!("/v1/sessions/{unknown}"),
            Some(&h.read),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");

    let attrs = format!("{path}/attributes");
    let patch = |ct: &'static str, body: &'static str, if_match: Option<&'static str>| {
        let mut b = Request::patch(&attrs)
            .header("authorization", format!("Bearer {}", h.write))
            .header("content-type", ct);
        if let Some(m) = if_match {
            b = b.header("if-match", m);
        }
        let req = b.body(Body::from(body)).unwrap();
        async { h.raw(req).await }
    };
    let r = patch(
        "application/merge-patch+json",
        r#"{"a":null,"b":{"d":3}}"#,
        Some("\"1\""),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("etag"), "\"2\"");
    assert_eq!(
        r.body["session"]["attributes"],
        json!({"b": {"c": 2, "d": 3}})
    );
    let r = patch("application/json", r#"{"z":1}"#, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("etag"), "\"3\"");
    // Stale and malformed If-Match: 412, nothing written.
    for m in [
        "\"1\"",
        "1",
        "W/\"3\"",
        "\"x\"",
        "\"99999999999999999999999\"",
    ] {
        let req = Request::patch(&attrs)
            .header("authorization", format!("Bearer {}", h.write))
            .header("content-type", "application/merge-patch+json")
            .header("if-match", m)
            .body(Body::from(r#"{"q":1}"#))
            .unwrap();
        let r = h.raw(req).await;
        assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{m}");
        assert_eq!(r.code(), "precondition_failed");
    }
    assert_eq!(
        patch("text/plain", "{}", None).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(
        patch("application/merge-patch+json", "[1]", None)
            .await
            .code(),
        "invalid_request"
    );
    assert_eq!(
        patch("application/merge-patch+json", r#"{"k":1,"k":2}"#, None)
            .await
            .code(),
        "invalid_request"
    );
    // Over the attribute cap: 413, old attributes unchanged.
    let big = format!("{{\"big\":\"{}\"}}", "x".repeat(20 * 1024));
    let req = Request::patch(&attrs)
        .header("authorization", format!("Bearer {}", h.write))
        .header("content-type", "application/merge-patch+json")
        .body(Body::from(big))
        .unwrap();
    let r = h.raw(req).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    let r = h.call("GET", &path, Some(&h.read), None).await;
    assert_eq!(r.header("etag"), "\"3\"");
    assert_eq!(
        r.body["session"]["attributes"],
        json!({"b": {"c": 2, "d": 3}, "z": 1})
    );
    let r = h
        .call(
            "PATCH",
            &format!("/v1/sessions/{unknown}/attributes"),
            Some(&h.write),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    assert_eq!(
        h.call("DELETE", &path, Some(&h.write), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.call("DELETE", &path, Some(&h.write), None).await.status,
        StatusCode::NO_CONTENT
    );
    let r = h
        .call(
            "DELETE",
            &format!("/v1/sessions/{unknown}"),
            Some(&h.write),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        h.call("GET", &path, Some(&h.read), None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn subject_lists_paginate_newest_first_with_encoded_subjects() {
    let h = harness().await;
    let subject = "tg:42/ü";
    let enc = "tg%3A42%2F%C3%BC";
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(h.create(json!({"subject": subject})).await.0);
        h.clock.advance_millis(1);
    }
    h.create(json!({"subject": "someone-else"})).await;
    let mut seen = Vec::new();
    let mut uri = format!("/v1/subjects/{enc}/sessions?limit=2");
    loop {
        let r = h.call("GET", &uri, Some(&h.read), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        for s in r.body["sessions"].as_array().unwrap() {
            assert_eq!(s["subject"], subject);
            seen.push(s["id"].as_str().unwrap().to_owned());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => uri = format!("/v1/subjects/{enc}/sessions?limit=2&cursor={c}"),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);
    let r = h
        .call(
            "GET",
            &format!("/v1/subjects/{enc}/sessions"),
            Some(&h.read),
            None,
        )
        .await;
    assert_eq!(r.body["sessions"].as_array().unwrap().len(), 5);
    assert_eq!(r.body["next_cursor"], Value::Null);
    for q in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "limit=-1",
        "limit=1.5",
        "cursor=zzz",
        "cursor=",
        "other=1",
        "limit=1&limit=2",
    ] {
        let r = h
            .call(
                "GET",
                &format!("/v1/subjects/{enc}/sessions?{q}"),
                Some(&h.read),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.text);
        assert_eq!(r.code(), "invalid_request");
    }
    let r = h
        .call("GET", "/v1/subjects/a%00b/sessions", Some(&h.read), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .call("GET", "/v1/subjects/%FF/sessions", Some(&h.read), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .call(
            "GET",
            "/v1/subjects/nobody/sessions?limit=1000",
            Some(&h.read),
            None,
        )
        .await;
    assert_eq!(r.body, json!({"sessions": [], "next_cursor": null}));
}

#[tokio::test]
async fn subject_scoped_get_and_delete_check_ownership() {
    let h = harness().await;
    let (mine, _, _) = h.create(json!({"subject": "a/b"})).await;
    let (theirs, _, _) = h.create(json!({"subject": "c"})).await;
    let r = h
        .call(
            "GET",
            &format!("/v1/subjects/a%2Fb/sessions/{mine}"),
            Some(&h.read),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("etag"), "\"1\"");
    let r = h
        .call(
            "GET",
            &format!("/v1/subjects/a%2Fb/sessions/{theirs}"),
            Some(&h.read),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(
            "DELETE",
            &format!("/v1/subjects/a%2Fb/sessions/{theirs}"),
            Some(&h.write),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(
            "GET",
            &format!("/v1/sessions/{theirs}"),
            Some(&h.read),
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the other subject's session survives"
    );
    let r = h
        .call(
            "DELETE",
            &format!("/v1/subjects/a%2Fb/sessions/{mine}"),
            Some(&h.write),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h
        .call(
            "GET",
            &format!("/v1/subjects/a%2Fb/sessions/{mine}"),
            Some(&h.read),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn revoke_subject_with_and_without_except() {
    let h = harness().await;
    let (keep, keep_token, _) = h.create(json!({"subject": "u"})).await;
    let (_, other_token, _) = h.create(json!({"subject": "u"})).await;
    h.create(json!({"subject": "u"})).await;
    let (foreign, _, _) = h.create(json!({"subject": "v"})).await;
    // `except` naming another subject's session: 404 and nothing revoked.
    let r = h
        .call(
            "DELETE",
            &format!("/v1/subjects/u/sessions?except={foreign}"),
            Some(&h.write),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call("GET", "/v1/subjects/u/sessions", Some(&h.read), None)
        .await;
    assert_eq!(r.body["sessions"].as_array().unwrap().len(), 3);
    let r = h
        .call(
            "DELETE",
            "/v1/subjects/u/sessions?except=bad",
            Some(&h.write),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .call(
            "DELETE",
            &format!("/v1/subjects/u/sessions?except={keep}"),
            Some(&h.write),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({"revoked": 2}));
    let h = &h;
    let v = |t: &str| {
        let t = t.to_owned();
        async move {
            h.call(
                "POST",
                "/v1/sessions/validate",
                Some(&h.validate),
                Some(json!({"token": t})),
            )
            .await
        }
    };
    assert_eq!(v(&keep_token).await.status, StatusCode::OK);
    assert_eq!(v(&other_token).await.code(), "invalid_token");
    let r = h
        .call("DELETE", "/v1/subjects/u/sessions", Some(&h.write), None)
        .await;
    assert_eq!(r.body, json!({"revoked": 1}));
    assert_eq!(v(&keep_token).await.code(), "invalid_token");
    let r = h
        .call("DELETE", "/v1/subjects/u/sessions", Some(&h.write), None)
        .await;
    assert_eq!(r.body, json!({"revoked": 0}));
}

#[tokio::test]
async fn stats_and_purge_need_admin() {
    let h = harness().await;
    h.create(json!({"subject": "a"})).await;
    h.create(json!({"subject": "a"})).await;
    h.create(json!({})).await;
    let r = h.call("GET", "/v1/stats", Some(&h.admin), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["live"], 3);
    assert_eq!(r.body["anonymous"], 1);
    assert_eq!(r.body["subjects"], 1);
    assert_eq!(r.body["store"]["approximate"], false);
    let r = h.call("POST", "/v1/purge", Some(&h.write), None).await;
    assert_eq!(r.code(), "insufficient_scope");
    let r = h.call("POST", "/v1/purge", Some(&h.admin), None).await;
    assert_eq!(r.body, json!({"purged": 0}));
}

#[tokio::test]
async fn caps_give_409_and_429_with_retry_after() {
    let policy = Policy::builder()
        .max_sessions_per_subject(Some(1), OnSessionLimit::Refuse)
        .max_anonymous_sessions(Some(1))
        .build()
        .unwrap();
    let h = harness_with(policy).await;
    h.create(json!({"subject": "u"})).await;
    let r = h
        .call(
            "POST",
            "/v1/sessions",
            Some(&h.write),
            Some(json!({"subject": "u"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "session_limit_reached");
    h.create(json!({})).await;
    let r = h
        .call("POST", "/v1/sessions", Some(&h.write), Some(json!({})))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "rate_limited");
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
}

/// At the per-subject cap with `evict_oldest` (the default), the create
/// that displaced the oldest session names it in `evicted`; the evicted
/// session is refused; a create that evicted nothing has no `evicted`.
#[tokio::test]
async fn a_create_at_the_cap_names_the_sessions_it_evicted() {
    let policy = Policy::builder()
        .max_sessions_per_subject(Some(2), OnSessionLimit::EvictOldest)
        .build()
        .unwrap();
    let h = harness_with(policy).await;
    let (first, first_token, _) = h.create(json!({"subject": "u"})).await;
    let r = h
        .call(
            "POST",
            "/v1/sessions",
            Some(&h.write),
            Some(json!({"subject": "u"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.body.get("evicted").is_none(), "{}", r.body);
    let r = h
        .call(
            "POST",
            "/v1/sessions",
            Some(&h.write),
            Some(json!({"subject": "u"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["evicted"], json!([first]), "the oldest was evicted");
    let r = h
        .call(
            "POST",
            "/v1/sessions/validate",
            Some(&h.validate),
            Some(json!({"token": first_token})),
        )
        .await;
    assert_eq!(r.code(), "invalid_token");
}

#[tokio::test]
async fn store_down_is_503_with_retry_after_never_allow() {
    let h = harness().await;
    let (id, token, _) = h.create(json!({"subject": "u"})).await;
    h.store.down.store(true, Ordering::SeqCst);
    let checks = [
        h.call(
            "POST",
            "/v1/sessions/validate",
            Some(&h.validate),
            Some(json!({"token": token})),
        )
        .await,
        h.call("POST", "/v1/sessions", Some(&h.write), Some(json!({})))
            .await,
        h.call("GET", &format!("/v1/sessions/{id}"), Some(&h.read), None)
            .await,
        h.call("GET", "/readyz", None, None).await,
    ];
    for r in checks {
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
        assert_eq!(r.code(), "store_unavailable");
        assert_eq!(r.header("retry-after"), "1");
    }
    assert_eq!(
        h.call("GET", "/healthz", None, None).await.status,
        StatusCode::OK
    );
    h.store.down.store(false, Ordering::SeqCst);
    let r = h
        .call(
            "POST",
            "/v1/sessions/validate",
            Some(&h.validate),
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn api_keys_are_managed_by_admins() {
    let h = harness().await;
    let r = h
        .call(
            "POST",
            "/v1/api-keys",
            Some(&h.admin),
            Some(json!({"scopes": ["sessions:read"], "name": "reporting"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["api_key"]["id"].as_str().unwrap().to_owned();
    let key = r.body["key"].as_str().unwrap().to_owned();
    assert_eq!(r.header("location"), format!("/v1/api-keys/{id}"));
    assert_eq!(r.body["api_key"]["scopes"], json!(["sessions:read"]));
    let r = h.call("GET", "/v1/api-keys", Some(&h.admin), None).await;
    assert!(!r.text.contains(&key));
    assert!(
        r.body["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == id.as_str())
    );
    let r = h
        .call("GET", &format!("/v1/api-keys/{id}"), Some(&h.admin), None)
        .await;
    assert_eq!(r.body["name"], "reporting");
    assert_eq!(
        h.call("GET", "/v1/subjects/x/sessions", Some(&key), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        h.call("GET", "/v1/api-keys", Some(&key), None).await.code(),
        "insufficient_scope"
    );
    for bad in [
        json!({"scopes": []}),
        json!({"scopes": ["root"]}),
        json!({"scopes": "admin"}),
        json!({"scopes": ["admin"], "tenant": "Not A Tenant"}),
        json!({"scopes": ["admin"], "owner": "x"}),
    ] {
        let r = h
            .call("POST", "/v1/api-keys", Some(&h.admin), Some(bad.clone()))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    // Another tenant's admin cannot see or revoke it.
    let r = h
        .call(
            "DELETE",
            &format!("/v1/api-keys/{id}"),
            Some(&h.other_tenant),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(
            "DELETE",
            &format!("/v1/api-keys/{id}"),
            Some(&h.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.call("GET", "/v1/subjects/x/sessions", Some(&key), None)
            .await
            .code(),
        "unauthenticated"
    );
    let r = h
        .call(
            "DELETE",
            &format!("/v1/api-keys/{id}"),
            Some(&h.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn operations_endpoints() {
    let h = harness().await;
    let r = h.call("GET", "/healthz", None, None).await;
    assert_eq!(r.body["status"], "ok");
    let r = h.call("GET", "/readyz", None, None).await;
    assert_eq!(r.body["status"], "ready");
    assert!(r.body["store_latency_ms"].is_number());
    let (_, token, _) = h.create(json!({"subject": "m"})).await;
    h.call(
        "POST",
        "/v1/sessions/validate",
        Some(&h.validate),
        Some(json!({"token": token})),
    )
    .await;
    h.call(
        "POST",
        "/v1/sessions/validate",
        Some(&h.validate),
        Some(json!({"token": "bad"})),
    )
    .await;
    h.call(
        "POST",
        "/v1/sessions/revoke",
        Some(&h.write),
        Some(json!({"token": token})),
    )
    .await;
    let mut r = h.call("GET", "/metrics", None, None).await;
    for _ in 0..100 {
        if r.text
            .contains("sessiond_revocations_total{reason=\"logout\"} 0")
            || !r.text.contains("reason=\"logout\"")
        {
            // The counter task runs behind the request: give it a moment.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            r = h.call("GET", "/metrics", None, None).await;
        } else {
            break;
        }
    }
    assert_eq!(r.status, StatusCode::OK);
    for needle in [
        "sessiond_requests_total{operation=\"validate\",outcome=\"ok\"}",
        "sessiond_requests_total{operation=\"validate\",outcome=\"invalid_token\"}",
        "sessiond_request_duration_seconds_bucket{operation=\"validate\"",
        "sessiond_live_sessions",
        "sessiond_revocations_total{reason=\"logout\"}",
    ] {
        assert!(r.text.contains(needle), "missing {needle}");
    }
    assert!(!r.text.contains(&token), "no secret in metrics");
    let r = h.call("GET", "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["paths"]["/v1/sessions/validate"]["post"].is_object());
}

/// Every operation the OpenAPI document names is routed (not the 404/405
/// fallback), and every other method on a documented path is 405: the
/// document and the router agree.
#[tokio::test]
async fn openapi_matches_the_router() {
    let h = harness().await;
    let doc: Value = serde_json::from_str(
        &<sessiond::openapi::ApiDoc as utoipa::OpenApi>::openapi()
            .to_json()
            .unwrap(),
    )
    .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    // Every route of the table is documented (and, below, every documented
    // method is routed).
    let routed: std::collections::BTreeSet<&str> = sessiond::routes::table::ROUTES
        .iter()
        .map(|r| r.path)
        .collect();
    let documented: std::collections::BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    assert_eq!(routed, documented);
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{id}", "0190a4a2-0000-7000-8000-000000000000")
            .replace("{subject}", "s")
            .replace("{provider}", "idp");
        for method in ["get", "post", "patch", "delete", "put"] {
            let r = h
                .call(&method.to_uppercase(), &concrete, Some(&h.admin), None)
                .await;
            let routed = !(r.code() == "method_not_allowed" || r.text.contains("no such route"));
            let documented = item.get(method).is_some();
            assert_eq!(routed, documented, "{method} {path}: {}", r.text);
            if documented && path.starts_with("/v1/") {
                for status in ["401", "403", "503"] {
                    assert!(
                        item[method]["responses"].get(status).is_some(),
                        "{method} {path} documents no {status}"
                    );
                }
                // Only writes can find the store out of room.
                assert_eq!(
                    item[method]["responses"].get("507").is_some(),
                    method != "get",
                    "{method} {path}: 507 insufficient_storage"
                );
            }
            operations += usize::from(documented);
        }
    }
    assert_eq!(operations, sessiond::routes::table::ROUTES.len());
}

/// Many clients upgrading one anonymous token at once: exactly one 200,
/// every other answer 401 invalid_token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_upgrades_of_one_token_have_one_winner() {
    for round in 0..20 {
        let h = std::sync::Arc::new(harness().await);
        let (_, token, _) = h.create(json!({"attributes": {"cart": 1}})).await;
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(16));
        let mut tasks = Vec::new();
        for i in 0..16 {
            let (h, b, t): (std::sync::Arc<Harness>, _, String) =
                (h.clone(), barrier.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                b.wait().await;
                let body = json!({"token": t, "subject": format!("user-{i}")});
                let r = h
                    .call("POST", "/v1/sessions/upgrade", Some(&h.write), Some(body))
                    .await;
                (r.status, r.code().to_owned())
            }));
        }
        let mut ok = 0;
        for t in tasks {
            let (status, code) = t.await.unwrap();
            if status == StatusCode::OK {
                ok += 1;
            } else {
                assert_eq!(
                    (status, code.as_str()),
                    (StatusCode::UNAUTHORIZED, "invalid_token"),
                    "round {round}"
                );
            }
        }
        assert_eq!(ok, 1, "round {round}");
    }
}

/// S5: a chat bot keyed by an external user id keeps per-session data.
#[tokio::test]
async fn bot_use_case_s5() {
    let h = harness().await;
    let chat_user = "telegram:123456789";
    let enc = "telegram%3A123456789";
    // Login: create a session for the chat user.
    let (id, token, _) = h
        .create(json!({"subject": chat_user, "client": {"device": "bot-7"}}))
        .await;
    // set_session_data / get_session_data.
    let attrs = format!("/v1/sessions/{id}/attributes");
    let r = h
        .send_text(
            "PATCH",
            &attrs,
            &h.write,
            "application/merge-patch+json",
            r#"{"lang":"de","step":"checkout"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h
        .call("GET", &format!("/v1/sessions/{id}"), Some(&h.read), None)
        .await;
    assert_eq!(
        r.body["session"]["attributes"],
        json!({"lang": "de", "step": "checkout"})
    );
    // Another bot process finds the session by the chat user id.
    let r = h
        .call(
            "GET",
            &format!("/v1/subjects/{enc}/sessions"),
            Some(&h.read),
            None,
        )
        .await;
    let sessions = r.body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], id.as_str());
    assert_eq!(sessions[0]["attributes"]["step"], "checkout");
    // is_logged_in.
    let r = h
        .call(
            "POST",
            "/v1/sessions/validate",
            Some(&h.validate),
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Logout.
    let r = h
        .call(
            "DELETE",
            &format!("/v1/subjects/{enc}/sessions"),
            Some(&h.write),
            None,
        )
        .await;
    assert_eq!(r.body["revoked"], 1);
    let r = h
        .call(
            "POST",
            "/v1/sessions/validate",
            Some(&h.validate),
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(r.code(), "invalid_token");
    let r = h
        .call(
            "GET",
            &format!("/v1/subjects/{enc}/sessions"),
            Some(&h.read),
            None,
        )
        .await;
    assert_eq!(r.body["sessions"], json!([]));
}

/// The operator (an admin key of the `default` tenant) provisions keys for
/// other tenants; a tenant's own admin cannot reach beyond its tenant.
#[tokio::test]
async fn operator_creates_keys_for_other_tenants() {
    let h = harness().await;
    let r = h
        .call(
            "POST",
            "/v1/api-keys",
            Some(&h.admin),
            Some(json!({"scopes": ["sessions:write", "sessions:read"], "tenant": "shop-2"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let key = r.body["key"].as_str().unwrap().to_owned();
    // The new key works, in its own tenant only.
    let r = h
        .call(
            "POST",
            "/v1/sessions",
            Some(&key),
            Some(json!({"subject": "u"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["session"]["id"].as_str().unwrap().to_owned();
    let r = h
        .call("GET", &format!("/v1/sessions/{id}"), Some(&key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h
        .call("GET", &format!("/v1/sessions/{id}"), Some(&h.admin), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Another tenant's admin may not provision elsewhere.
    let r = h
        .call(
            "POST",
            "/v1/api-keys",
            Some(&h.other_tenant),
            Some(json!({"scopes": ["admin"], "tenant": "default"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "insufficient_scope");
    // A malformed tenant names the field.
    let r = h
        .call(
            "POST",
            "/v1/api-keys",
            Some(&h.admin),
            Some(json!({"scopes": ["admin"], "tenant": "Not Valid"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("tenant"), "{}", r.text);
}

/// The scope is checked before the body: a key without it gets 403 even
/// for a body that would be 400.
#[tokio::test]
async fn scope_is_checked_before_the_body() {
    let h = harness().await;
    let r = h
        .send_text(
            "POST",
            "/v1/sessions",
            &h.read,
            "application/json",
            "{not json",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.code(), "insufficient_scope");
    let r = h
        .send_text("POST", "/v1/sessions", &h.validate, "text/plain", "x")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
}

/// S5 "list of active users": the subjects with a live session, paged.
#[tokio::test]
async fn who_is_logged_in() {
    let h = harness().await;
    for s in ["telegram:2", "telegram:1", "telegram:1", "discord/9"] {
        h.create(json!({"subject": s})).await;
    }
    h.create(json!({})).await; // anonymous: not a user
    let r = h
        .call("GET", "/v1/subjects?limit=2", Some(&h.read), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["subjects"],
        json!([{"subject": "discord/9", "sessions": 1}, {"subject": "telegram:1", "sessions": 2}])
    );
    let cursor = r.body["next_cursor"].as_str().unwrap().to_owned();
    let r = h
        .call(
            "GET",
            &format!("/v1/subjects?limit=2&cursor={cursor}"),
            Some(&h.read),
            None,
        )
        .await;
    assert_eq!(
        r.body["subjects"],
        json!([{"subject": "telegram:2", "sessions": 1}])
    );
    assert!(r.body["next_cursor"].is_null());
    // Another tenant sees none of them; bad input is 400.
    let r = h
        .call("GET", "/v1/subjects", Some(&h.other_tenant), None)
        .await;
    assert_eq!(r.body["subjects"], json!([]));
    for q in ["limit=0", "cursor=%21%21", "foo=1"] {
        let r = h
            .call("GET", &format!("/v1/subjects?{q}"), Some(&h.read), None)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
    }
    let r = h.call("GET", "/v1/subjects", Some(&h.validate), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

/// API key lifecycle over HTTP: a key with `expires_in_secs` is refused
/// from its expiry on; a rotation hands out a new key and the old one
/// works for the overlap only; `last_used_at` is listed.
#[tokio::test]
async fn api_keys_expire_and_rotate_with_an_overlap() {
    let h = harness().await;
    let r = h
        .call(
            "POST",
            "/v1/api-keys",
            Some(&h.admin),
            Some(json!({"scopes": ["sessions:read"], "name": "ci", "expires_in_secs": 60})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(r.body["api_key"]["expires_at"].is_string(), "{}", r.body);
    let short = r.body["key"].as_str().unwrap().to_owned();
    let r = h
        .call(
            "POST",
            "/v1/api-keys",
            Some(&h.admin),
            Some(json!({"scopes": ["sessions:read"], "expires_in_secs": 0})),
        )
        .await;
    assert_eq!(r.code(), "invalid_request");

    let r = h
        .call(
            "POST",
            "/v1/api-keys",
            Some(&h.admin),
            Some(json!({"scopes": ["sessions:read"], "name": "app"})),
        )
        .await;
    let old_id = r.body["api_key"]["id"].as_str().unwrap().to_owned();
    let old = r.body["key"].as_str().unwrap().to_owned();
    let stats = |k: &str| {
        let k = k.to_owned();
        let h = &h;
        async move { h.call("GET", "/v1/subjects", Some(&k), None).await.status }
    };
    assert_eq!(stats(&old).await, StatusCode::OK);
    let r = h
        .call(
            "GET",
            &format!("/v1/api-keys/{old_id}"),
            Some(&h.admin),
            None,
        )
        .await;
    assert!(r.body["last_used_at"].is_string(), "{}", r.body);

    let path = format!("/v1/api-keys/{old_id}/rotate");
    let r = h
        .call(
            "POST",
            &path,
            Some(&h.admin),
            Some(json!({"overlap_secs": 31 * 86_400})),
        )
        .await;
    assert_eq!(r.code(), "invalid_request");
    let r = h
        .call(
            "POST",
            &path,
            Some(&h.admin),
            Some(json!({"overlap_secs": 300})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["api_key"]["name"], "app");
    assert_eq!(r.body["api_key"]["scopes"], json!(["sessions:read"]));
    let new = r.body["key"].as_str().unwrap().to_owned();
    let r = h
        .call(
            "POST",
            "/v1/api-keys/0190a4a2-0000-7000-8000-000000000000/rotate",
            Some(&h.admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.code(), "not_found");

    h.clock.advance_secs(59);
    assert_eq!(stats(&short).await, StatusCode::OK);
    assert_eq!(stats(&old).await, StatusCode::OK, "in the overlap");
    h.clock.advance_secs(1);
    assert_eq!(stats(&short).await, StatusCode::UNAUTHORIZED, "expired");
    h.clock.advance_secs(240);
    assert_eq!(
        stats(&old).await,
        StatusCode::UNAUTHORIZED,
        "after the overlap"
    );
    assert_eq!(stats(&new).await, StatusCode::OK);
}
