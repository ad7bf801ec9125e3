//! Metrics and request logs.
//!
//! Per operation: `sessiond_requests_total{operation, outcome}` (outcome is
//! `ok` or the error code) and `sessiond_request_duration_seconds{operation}`
//! (a histogram). Both label sets come from the types they name: the
//! operations from the route table ([`Operation::ALL`]), the outcomes from
//! [`ErrorCode::ALL`]; no label is typed twice. Also
//! `sessiond_live_sessions` (gauge, per tenant) and
//! `sessiond_revocations_total{reason}`, fed from the engine's events. No
//! label ever holds a secret, a subject or a session id.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::{ErrorCode, OutcomeCode};
use crate::http::limits::{self, HttpLimits};
use crate::routes::table::{Operation, operation};

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

/// Number of outcome labels: `ok` and each error code.
const OUTCOMES: usize = ErrorCode::ALL.len() + 1;

/// The outcome label at `i`: `ok` at 0, then [`ErrorCode::ALL`] in order.
const fn outcome_label(i: usize) -> &'static str {
    match i.checked_sub(1) {
        None => "ok",
        Some(c) => ErrorCode::ALL[c].as_str(),
    }
}

/// The outcome index of a response: 0 (`ok`), or 1 + its error code's.
fn outcome_index(outcome: Option<ErrorCode>) -> usize {
    outcome.map_or(0, |c| c.index() + 1)
}

type RequestCounters = [[OnceLock<Counter>; OUTCOMES]; Operation::ALL.len()];

/// Metric handles, registered on first use: building a labelled key and
/// looking it up in the registry on every request would cost more than
/// the rest of a validate.
fn count(op: Operation, outcome: Option<ErrorCode>, secs: f64) {
    static REQUESTS: RequestCounters =
        [const { [const { OnceLock::new() }; OUTCOMES] }; Operation::ALL.len()];
    static LATENCY: [OnceLock<Histogram>; Operation::ALL.len()] =
        [const { OnceLock::new() }; Operation::ALL.len()];
    let (oi, ci) = (op.index(), outcome_index(outcome));
    let (op, outcome) = (op.as_str(), outcome_label(ci));
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
/// and declared bodies over the limit ([`limits::check`]), then records the
/// counter and the latency of the request, logs it at debug level (method,
/// route template, status: never the path's values, the query or the
/// body), and marks `/v1` responses `no-store`.
pub async fn edge(State(limits): State<HttpLimits>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let op = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(Operation::Other, |p| operation(req.method(), p.as_str()));
    let mut res = match limits::check(&limits, &req) {
        Some(e) => e.into_response(),
        None => next.run(req).await,
    };
    let outcome = res.extensions().get::<OutcomeCode>().map(|c| c.0);
    let elapsed = start.elapsed();
    if op.is_metered() {
        res.headers_mut()
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
        count(op, outcome, elapsed.as_secs_f64());
    }
    tracing::debug!(
        operation = op.as_str(),
        status = res.status().as_u16(),
        outcome = outcome_label(outcome_index(outcome)),
        micros = elapsed.as_micros() as u64,
        "request"
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_is_an_outcome_label() {
        assert_eq!(outcome_label(outcome_index(None)), "ok");
        for c in ErrorCode::ALL {
            assert_eq!(outcome_label(outcome_index(Some(*c))), c.as_str());
        }
        assert_eq!(
            outcome_label(outcome_index(Some(ErrorCode::RequestTimeout))),
            "request_timeout"
        );
        let labels: std::collections::HashSet<&str> = (0..OUTCOMES).map(outcome_label).collect();
        assert_eq!(labels.len(), OUTCOMES);
    }
}
