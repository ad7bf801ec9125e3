//! Shared helpers of the in-process router tests.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::Value;
use sessiond::api_keys::{ApiKeys, Scope, Scopes};
use sessiond::app::{AppOptions, AppState, router};
use sessiond::http::HttpLimits;
use sessionkit::{EngineKeys, SessionManager};
use sessionkit_core::{ManualClock, Millis, Policy, TenantId};
use tower::ServiceExt;

pub use sessionkit_store_tests::OutageStore;

pub struct Harness {
    pub app: Router,
    pub clock: ManualClock,
    pub store: OutageStore,
    pub admin: String,
    pub write: String,
    pub read: String,
    pub validate: String,
    pub other_tenant: String,
    pub state: AppState<OutageStore>,
    /// Holds the signing key file.
    pub keys_dir: std::sync::Arc<tempfile::TempDir>,
}

pub const START: i64 = 1_800_000_000_000;

pub async fn harness() -> Harness {
    harness_with(Policy::default()).await
}

pub async fn harness_with(policy: Policy) -> Harness {
    harness_full(policy, HttpLimits::default()).await
}

pub async fn harness_with_limits(limits: HttpLimits) -> Harness {
    harness_full(Policy::default(), limits).await
}

pub async fn harness_full(policy: Policy, limits: HttpLimits) -> Harness {
    let clock = ManualClock::new(Millis::from_millis(START));
    let store = OutageStore::default();
    let keys_dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let tokens = sessiond::config::TokensConfig::default();
    let (ring, signing_keys) =
        sessiond::signing_keys::load_or_create(keys_dir.path(), true, &tokens, START / 1000)
            .unwrap();
    let engine = SessionManager::builder(store.clone(), EngineKeys::generate().unwrap())
        .with_metrics_prefix("sessiond")
        .with_policy(policy)
        .with_clock(clock.clone())
        .with_access_tokens(ring, tokens.access_config().unwrap())
        .build()
        .await
        .unwrap();
    engine.describe_metrics();
    let keys = ApiKeys::in_memory();
    let now = Millis::from_millis(START);
    let mk = |t: TenantId, s: &[Scope]| {
        keys.create(t, Scopes::of(s), None, None, now)
            .unwrap()
            .secret
    };
    let admin = mk(TenantId::DEFAULT, &[Scope::Admin]);
    let write = mk(TenantId::DEFAULT, &[Scope::Write, Scope::Validate]);
    let read = mk(TenantId::DEFAULT, &[Scope::Read]);
    let validate = mk(TenantId::DEFAULT, &[Scope::Validate]);
    let other_tenant = mk(TenantId::new("acme").unwrap(), &[Scope::Admin]);
    let state = AppState::new(
        engine,
        keys,
        AppOptions {
            metrics: sessiond::telemetry::install_recorder(),
            limits,
            signing_keys: Some(signing_keys),
            ..AppOptions::default()
        },
    );
    Harness {
        app: router(state.clone()),
        clock,
        store,
        admin,
        write,
        read,
        validate,
        other_tenant,
        state,
        keys_dir,
    }
}

pub struct Res {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Res {
    pub fn code(&self) -> &str {
        self.body.get("error").and_then(Value::as_str).unwrap_or("")
    }
    pub fn header(&self, n: &str) -> &str {
        self.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl Harness {
    pub async fn raw(&self, req: Request<Body>) -> Res {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Res {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Res {
        let mut b = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri);
        if let Some(k) = key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.raw(req).await
    }

    pub async fn send_text(
        &self,
        method: &str,
        uri: &str,
        key: &str,
        ctype: &str,
        body: &str,
    ) -> Res {
        let req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri)
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", ctype)
            .body(Body::from(body.to_owned()))
            .unwrap();
        self.raw(req).await
    }

    /// Creates a session; returns (id, token, csrf).
    pub async fn create(&self, body: Value) -> (String, String, String) {
        let r = self
            .call("POST", "/v1/sessions", Some(&self.write), Some(body))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        (
            r.body["session"]["id"].as_str().unwrap().to_owned(),
            r.body["token"].as_str().unwrap().to_owned(),
            r.body["csrf_token"].as_str().unwrap().to_owned(),
        )
    }
}
