//! Checks made before any handler runs: oversized headers (431) and a
//! declared body over the limit (413, answered without reading the body).
//! Header blocks too large even for hyper's read buffer get hyper's own
//! bare 431 (see `server.rs`).

use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::HttpLimits;
use crate::error::ApiError;

/// The middleware.
pub async fn check_request(State(limits): State<HttpLimits>, req: Request, next: Next) -> Response {
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + req.uri().path().len()
        + req.uri().query().map_or(0, str::len);
    if header_bytes > limits.max_header_bytes {
        return ApiError::HeadersTooLarge.into_response();
    }
    if let Some(len) = req.headers().get(CONTENT_LENGTH) {
        let declared = len.to_str().ok().and_then(|s| s.parse::<u64>().ok());
        match declared {
            Some(n) if n > limits.max_body_bytes as u64 => {
                return ApiError::PayloadTooLarge("the request body is over the limit".into())
                    .into_response();
            }
            Some(_) => {}
            None => {
                return ApiError::InvalidRequest("malformed Content-Length".into()).into_response();
            }
        }
    }
    next.run(req).await
}
