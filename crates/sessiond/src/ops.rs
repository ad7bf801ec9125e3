//! Operations endpoints: `/healthz` (the process answers), `/readyz` (the
//! store answers, with its latency), `/metrics` (Prometheus text) and
//! `/openapi.json`. None needs an API key, except `/metrics` when
//! `metrics_require_key` is set (then an `admin` key); bind sessiond to a
//! private address (the default is loopback: sessiond warns at start when
//! it is not).

use std::sync::OnceLock;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sessionkit_core::TenantId;
use utoipa::OpenApi;

use crate::app::AppState;
use crate::backend::ServedStore;
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::MetricsAccess;
use crate::openapi::ApiDoc;
use crate::wire::Health;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        store_latency_ms: None,
    })
}

/// Readiness: the store answers a count; reports its latency.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready", body = Health),
              (status = 503, description = "store_unavailable", body = ErrorBody)))]
pub async fn readyz<S: ServedStore>(
    State(st): State<AppState<S>>,
) -> Result<Json<Health>, ApiError> {
    let start = Instant::now();
    st.engine().counts(TenantId::DEFAULT).await?;
    if let Some(probe) = &st.options().writes_healthy
        && !probe()
    {
        return Err(ApiError::StoreUnavailable);
    }
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    metrics::gauge!("sessiond_store_latency_seconds").set(ms / 1000.0);
    Ok(Json(Health {
        status: "ready",
        store_latency_ms: Some((ms * 1000.0).round() / 1000.0),
    }))
}

/// Prometheus metrics; with `metrics_require_key`, only for an API key with
/// the `admin` scope.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
              (status = 401, description = "unauthenticated (metrics_require_key only)", body = ErrorBody),
              (status = 403, description = "insufficient_scope (metrics_require_key only)", body = ErrorBody)))]
pub async fn metrics<S: ServedStore>(
    State(st): State<AppState<S>>,
    _access: MetricsAccess,
) -> Response {
    if let Ok(c) = st.engine().counts(TenantId::DEFAULT).await {
        metrics::gauge!("sessiond_live_sessions", "tenant" => TenantId::DEFAULT.as_str())
            .set(c.active as f64);
    }
    if let Some(export) = &st.options().store_metrics {
        export();
    }
    let text = st
        .options()
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    let mut res = text.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    res
}

/// The OpenAPI document of this server, generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn openapi() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    let text = DOC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default());
    let mut res = text.clone().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}
