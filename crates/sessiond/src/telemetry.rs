//! Metrics and request logs.
//!
//! Per operation: `sessiond_requests_total{operation, outcome}` (outcome is
//! `ok` or the error code) and `sessiond_request_duration_seconds{operation}`
//! (a histogram). Also `sessiond_live_sessions` (gauge, per tenant) and
//! `sessiond_revocations_total{reason}`, fed from the engine's events. No
//! label ever holds a secret, a subject or a session id.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::app::HttpLimits;
use crate::error::OutcomeCode;

/// Histogram buckets for request latency, seconds.
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5,
];

/// Installs the process-wide Prometheus recorder once and returns its
/// handle (later calls return the same handle).
pub fn install_recorder() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let b = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("sessiond_request_duration_seconds".into()),
                    BUCKETS,
                )
                .ok()?;
            match b.install_recorder() {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot install the metrics recorder");
                    None
                }
            }
        })
        .clone()
}

/// The operation name of a route (a fixed set: never from the client).
fn operation(method: &Method, path: &str) -> &'static str {
    match (method.as_str(), path) {
        ("POST", "/v1/sessions") => "create",
        ("POST", "/v1/sessions/validate") => "validate",
        ("POST", "/v1/sessions/upgrade") => "upgrade",
        ("POST", "/v1/sessions/revoke") => "logout",
        ("GET", "/v1/sessions/{id}") => "get",
        ("DELETE", "/v1/sessions/{id}") => "delete",
        ("PATCH", "/v1/sessions/{id}/attributes") => "patch_attributes",
        ("GET", "/v1/subjects/{subject}/sessions") => "list_subject",
        ("DELETE", "/v1/subjects/{subject}/sessions") => "revoke_subject",
        ("GET", "/v1/subjects/{subject}/sessions/{id}") => "get_for_subject",
        ("DELETE", "/v1/subjects/{subject}/sessions/{id}") => "delete_for_subject",
        ("GET", "/v1/stats") => "stats",
        ("POST", "/v1/purge") => "purge",
        (_, p) if p.starts_with("/v1/api-keys") => "api_keys",
        (_, "/healthz" | "/readyz" | "/metrics" | "/openapi.json") => "ops",
        _ => "other",
    }
}

/// Every operation label, in a fixed order (see [`operation`]).
const OPERATIONS: [&str; 16] = [
    "create",
    "validate",
    "upgrade",
    "logout",
    "get",
    "delete",
    "patch_attributes",
    "list_subject",
    "revoke_subject",
    "get_for_subject",
    "delete_for_subject",
    "stats",
    "purge",
    "api_keys",
    "ops",
    "other",
];

/// Every outcome label: `ok` and each error code.
const OUTCOMES: [&str; 18] = [
    "ok",
    "invalid_request",
    "unauthenticated",
    "invalid_token",
    "session_expired",
    "csrf_failed",
    "insufficient_scope",
    "not_found",
    "method_not_allowed",
    "conflict",
    "session_limit_reached",
    "precondition_failed",
    "payload_too_large",
    "unsupported_media_type",
    "rate_limited",
    "headers_too_large",
    "store_unavailable",
    "internal_error",
];

type RequestCounters = [[OnceLock<Counter>; OUTCOMES.len()]; OPERATIONS.len()];

/// Metric handles, registered on first use: building a labelled key and
/// looking it up in the registry on every request would cost more than
/// the rest of a validate.
fn count(op: &'static str, outcome: &'static str, secs: f64) {
    static REQUESTS: RequestCounters =
        [const { [const { OnceLock::new() }; OUTCOMES.len()] }; OPERATIONS.len()];
    static LATENCY: [OnceLock<Histogram>; OPERATIONS.len()] =
        [const { OnceLock::new() }; OPERATIONS.len()];
    let oi = OPERATIONS
        .iter()
        .position(|o| *o == op)
        .unwrap_or(OPERATIONS.len() - 1);
    let ci = OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(0);
    let (op, outcome) = (OPERATIONS[oi], OUTCOMES[ci]);
    REQUESTS[oi][ci]
        .get_or_init(|| {
            metrics::counter!("sessiond_requests_total", "operation" => op, "outcome" => outcome)
        })
        .increment(1);
    LATENCY[oi]
        .get_or_init(|| metrics::histogram!("sessiond_request_duration_seconds", "operation" => op))
        .record(secs);
}

/// The one middleware in front of every route: refuses oversized headers
/// and declared bodies over the limit (`guard.rs`), then records the
/// counter and the latency of the request, logs it at debug level (method,
/// route template, status: never the path's values, the query or the
/// body), and marks `/v1` responses `no-store`.
pub async fn edge(State(limits): State<HttpLimits>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let op = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("other", |p| operation(req.method(), p.as_str()));
    let mut res = match crate::guard::check(&limits, &req) {
        Some(e) => e.into_response(),
        None => next.run(req).await,
    };
    let outcome = res.extensions().get::<OutcomeCode>().map_or("ok", |c| c.0);
    let elapsed = start.elapsed();
    if op != "ops" {
        res.headers_mut()
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
        count(op, outcome, elapsed.as_secs_f64());
    }
    tracing::debug!(
        operation = op,
        status = res.status().as_u16(),
        outcome,
        micros = elapsed.as_micros() as u64,
        "request"
    );
    res
}
