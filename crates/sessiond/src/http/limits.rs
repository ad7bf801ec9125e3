//! Checks made before any handler runs: oversized headers (431) and a
//! declared body over the limit (413, answered without reading the body).
//! Header blocks too large even for hyper's read buffer get hyper's own
//! bare 431 (see `server.rs`).

use axum::extract::Request;
use axum::http::header::CONTENT_LENGTH;

use crate::app::HttpLimits;
use crate::error::ApiError;

/// The error to answer instead of routing `req`, if any.
pub fn check(limits: &HttpLimits, req: &Request) -> Option<ApiError> {
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + req.uri().path().len()
        + req.uri().query().map_or(0, str::len);
    if header_bytes > limits.max_header_bytes {
        return Some(ApiError::HeadersTooLarge);
    }
    let len = req.headers().get(CONTENT_LENGTH)?;
    match len.to_str().ok().and_then(|s| s.parse::<u64>().ok()) {
        Some(n) if n > limits.max_body_bytes as u64 => Some(ApiError::PayloadTooLarge(
            "the request body is over the limit".into(),
        )),
        Some(_) => None,
        None => Some(ApiError::InvalidRequest("malformed Content-Length".into())),
    }
}
