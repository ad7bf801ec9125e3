//! Step-up over HTTP: `max_age_secs` and `min_aal` on validate answer 401
//! `reauthentication_required`; a login states `aal` and `amr`; a step-up
//! is an upgrade of the same subject to a higher level (new token).
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::harness;
use serde_json::{Value, json};

#[tokio::test]
async fn levels_methods_and_recent_sign_in() {
    let h = harness().await;
    let validate = |b: Value| async {
        h.call("POST", "/v1/sessions/validate", Some(&h.validate), Some(b))
            .await
    };
    let up = |b: Value| async {
        h.call("POST", "/v1/sessions/upgrade", Some(&h.write), Some(b))
            .await
    };

    // A login that states nothing: level 1, no methods.
    let r = h
        .call(
            "POST",
            "/v1/sessions",
            Some(&h.write),
            Some(json!({"subject": "ann", "attributes": {"cart": 1, "tmp": 2}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["session"]["aal"], 1);
    assert_eq!(r.body["session"]["amr"], json!([]));
    let token = r.body["token"].as_str().unwrap().to_owned();
    let r = validate(json!({"token": token, "min_aal": 1})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = validate(json!({"token": token, "min_aal": 2})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "reauthentication_required");
    assert!(
        r.headers.get("www-authenticate").is_none(),
        "about the token, not the key"
    );

    // Step-up: the same subject at level 2 with its methods; a new token.
    let r = up(
        json!({"token": token, "subject": "ann", "aal": 2, "amr": ["pwd", "otp"],
        "keep_attributes": ["cart"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["session"]["subject"], "ann");
    assert_eq!(r.body["session"]["aal"], 2);
    assert_eq!(r.body["session"]["amr"], json!(["pwd", "otp"]));
    assert_eq!(r.body["session"]["attributes"], json!({"cart": 1}));
    let strong = r.body["token"].as_str().unwrap().to_owned();
    let id = r.body["session"]["id"].as_str().unwrap().to_owned();
    assert_ne!(strong, token);
    let r = validate(json!({"token": strong, "min_aal": 2, "max_age_secs": 60})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["session"]["amr"], json!(["pwd", "otp"]));
    assert_eq!(
        validate(json!({"token": token})).await.code(),
        "invalid_token",
        "the old token died with the privilege change"
    );
    let r = h
        .call("GET", &format!("/v1/sessions/{id}"), Some(&h.read), None)
        .await;
    assert_eq!(r.body["session"]["aal"], 2);

    // A sign-in too long ago.
    h.clock.advance_secs(61);
    let r = validate(json!({"token": strong, "max_age_secs": 60})).await;
    assert_eq!(r.code(), "reauthentication_required");
    let r = validate(json!({"token": strong, "min_aal": 3})).await;
    assert_eq!(r.code(), "reauthentication_required");
    assert_eq!(
        validate(json!({"token": strong})).await.status,
        StatusCode::OK
    );

    // Anonymous: level 0; it cannot state one.
    let (_, anon, _) = h.create(json!({})).await;
    let r = validate(json!({"token": anon, "min_aal": 1})).await;
    assert_eq!(r.code(), "reauthentication_required");
    let r = validate(json!({"token": anon, "min_aal": 0})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["session"]["aal"], 0);
    let r = h
        .call(
            "POST",
            "/v1/sessions",
            Some(&h.write),
            Some(json!({"aal": 2})),
        )
        .await;
    assert_eq!(r.code(), "invalid_request");
    assert!(r.text.contains("aal"), "{}", r.text);
}

#[tokio::test]
async fn bad_levels_and_methods_are_400_naming_the_field() {
    let h = harness().await;
    let create = |b: Value| async {
        h.call("POST", "/v1/sessions", Some(&h.write), Some(b))
            .await
    };
    for (body, field) in [
        (json!({"subject": "a", "aal": 0}), "aal"),
        (json!({"subject": "a", "aal": 4}), "aal"),
        (json!({"subject": "a", "aal": 70000}), "aal"),
        (json!({"subject": "a", "amr": ["pwd", "pwd"]}), "amr"),
        (json!({"subject": "a", "amr": ["p\u{202e}"]}), "amr"),
        (json!({"subject": "a", "amr": [""]}), "amr"),
        (
            json!({"subject": "a", "amr": ["a","b","c","d","e","f","g","h","i"]}),
            "amr",
        ),
    ] {
        let r = create(body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert_eq!(r.code(), "invalid_request");
        assert!(r.text.contains(field), "{body}: {}", r.text);
        assert!(!r.text.contains('\u{202e}'), "never echoes input");
    }
    let (_, token, _) = h.create(json!({"subject": "a"})).await;
    for bad in [json!(4), json!(-1), json!("2")] {
        let r = h
            .call(
                "POST",
                "/v1/sessions/validate",
                Some(&h.validate),
                Some(json!({"token": token, "min_aal": bad})),
            )
            .await;
        assert_eq!(r.code(), "invalid_request", "{bad}");
    }
    // A level and methods stated on create are kept.
    let r = create(json!({"subject": "b", "aal": 3, "amr": ["hwk"]})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["session"]["aal"], 3);
    assert_eq!(r.body["session"]["amr"], json!(["hwk"]));
}
