//! The route table, the metric labels generated from the types, and the
//! store seam: every route is served and labelled, every error is counted
//! under its own code, and the one router serves every kind of store.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use common::{Harness, harness, harness_with_limits};
use serde_json::json;
use sessiond::api_keys::{ApiKeys, Scope, Scopes};
use sessiond::app::{AppOptions, AppState, router};
use sessiond::backend::Backend;
use sessiond::error::ErrorCode;
use sessiond::http::HttpLimits;
use sessiond::routes::table::{Operation, ROUTES};
use sessionkit::{EngineKeys, SessionManager};
use sessionkit_core::{Millis, TenantId};
use sessionkit_memory::MemoryStore;
use tower::ServiceExt;

fn concrete(path: &str) -> String {
    path.replace("{id}", "0190a4a2-0000-7000-8000-000000000000")
        .replace("{subject}", "s")
}

async fn metrics_text(h: &Harness) -> String {
    h.call("GET", "/metrics", None, None).await.text
}

/// Every row of the table reaches a handler: neither the 404 fallback nor
/// 405.
#[tokio::test]
async fn every_route_in_the_table_is_served() {
    let h = harness().await;
    for r in ROUTES {
        let method = r.verb.method();
        let res = h
            .call(method.as_str(), &concrete(r.path), Some(&h.admin), None)
            .await;
        assert_ne!(res.code(), "method_not_allowed", "{method} {}", r.path);
        assert!(
            !res.text.contains("no such route"),
            "{method} {}: {}",
            r.path,
            res.text
        );
    }
}

/// A body that stalls past the read timeout is 408, and the metrics count
/// it under `request_timeout` (it used to be counted as `ok`).
#[tokio::test(start_paused = true)]
async fn a_408_is_counted_under_request_timeout() {
    let h = harness_with_limits(HttpLimits {
        body_read_timeout: Some(Duration::from_millis(50)),
        ..HttpLimits::default()
    })
    .await;
    let stalled = futures_util::stream::pending::<Result<Bytes, std::io::Error>>();
    let req = Request::post("/v1/sessions")
        .header("authorization", format!("Bearer {}", h.write))
        .header("content-type", "application/json")
        .body(Body::from_stream(stalled))
        .unwrap();
    let r = h.raw(req).await;
    assert_eq!(r.status, StatusCode::REQUEST_TIMEOUT, "{}", r.text);
    assert_eq!(r.code(), ErrorCode::RequestTimeout.as_str());
    let text = metrics_text(&h).await;
    let needle = "sessiond_requests_total{operation=\"create\",outcome=\"request_timeout\"}";
    assert!(text.contains(needle), "missing {needle}");
}

/// `GET /v1/subjects` has its own operation label.
#[tokio::test]
async fn list_subjects_has_its_own_label() {
    let h = harness().await;
    let r = h.call("GET", "/v1/subjects", Some(&h.admin), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let text = metrics_text(&h).await;
    let needle = format!(
        "sessiond_requests_total{{operation=\"{}\",outcome=\"ok\"}}",
        Operation::ListSubjects.as_str()
    );
    assert!(text.contains(&needle), "missing {needle}");
}

/// One router type serves every kind of store the config can name: a
/// session round-trips, stats name the kind, `/readyz` follows the store's
/// write health (a closed embedded store is not ready).
#[tokio::test]
async fn the_router_serves_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let backends = [
        Backend::Memory(MemoryStore::new()),
        Backend::open_embedded(&dir.path().join("store")).unwrap(),
    ];
    for backend in backends {
        let kind = backend.kind();
        let engine = SessionManager::builder(backend.clone(), EngineKeys::generate().unwrap())
            .build()
            .await
            .unwrap();
        let keys = ApiKeys::in_memory();
        let admin = keys
            .create(
                TenantId::DEFAULT,
                Scopes::of(&[Scope::Admin]),
                None,
                None,
                Millis::from_millis(0),
            )
            .unwrap()
            .secret;
        let state: AppState = AppState::new(engine, keys, AppOptions::for_backend(&backend));
        let app = router(state);
        let call = |method: &str, uri: &str, body: Option<serde_json::Value>| {
            let mut b = Request::builder()
                .method(method)
                .uri(uri)
                .header("authorization", format!("Bearer {admin}"));
            let body = match body {
                Some(v) => {
                    b = b.header("content-type", "application/json");
                    Body::from(v.to_string())
                }
                None => Body::empty(),
            };
            app.clone().oneshot(b.body(body).unwrap())
        };
        let r = call("POST", "/v1/sessions", Some(json!({"subject": "u1"})))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{kind}");
        let r = call("GET", "/v1/stats", None).await.unwrap();
        let body = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(stats["store"]["kind"], kind);
        assert_eq!(stats["live"], 1, "{kind}");
        let r = call("GET", "/readyz", None).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{kind}");
        backend.flush().await.unwrap();
        backend.close();
        let r = call("GET", "/readyz", None).await.unwrap();
        let ready_after_close = r.status() == StatusCode::OK;
        assert_eq!(ready_after_close, kind == "memory", "{kind}");
    }
}

/// docs/api.md names every metric label and every error code the server
/// can answer with.
#[test]
fn the_api_docs_name_every_label_and_code() {
    let doc = include_str!("../../../docs/api.md");
    for op in Operation::ALL {
        if op.is_metered() {
            assert!(
                doc.contains(&format!("`{}`", op.as_str())),
                "docs/api.md does not name the operation {}",
                op.as_str()
            );
        }
    }
    for code in ErrorCode::ALL {
        let row = format!("| {} | `{}` |", code.status().as_u16(), code.as_str());
        assert!(doc.contains(&row), "docs/api.md has no row {row}");
    }
}
