//! Request limits ([`HttpLimits`]) and the checks made before any handler
//! runs ([`check`]): oversized headers (431) and a declared body over the
//! limit (413, answered without reading the body). The body itself is read
//! under the same limit and a read timeout (408) by the JSON extractors
//! ([`super::json`]). Header blocks too large even for hyper's read buffer
//! get hyper's own bare 431 (see `server.rs`).

use std::time::Duration;

use axum::extract::Request;
use axum::http::header::CONTENT_LENGTH;

use crate::error::ApiError;

/// Limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Largest request body, bytes (413 above).
    pub max_body_bytes: usize,
    /// Largest total of request header lines, bytes (431 above).
    pub max_header_bytes: usize,
    /// Longest a client may take to send a body (408 after); `None`: no
    /// limit.
    pub body_read_timeout: Option<Duration>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_body_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            body_read_timeout: Some(Duration::from_secs(30)),
        }
    }
}

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
