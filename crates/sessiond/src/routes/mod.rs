//! The `/v1` handlers, one module per resource, and the route table
//! ([`table`]) that names every route's operation.

pub mod admin;
pub mod cursor;
pub mod sessions;
pub mod subjects;
pub mod table;
pub mod tokens;
pub mod upstream;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sessionkit_core::{SessionId, Subject};

use crate::error::ApiError;

/// A 200 JSON response, serialised into one buffer sized for a session
/// (axum's `Json` starts at 128 bytes and grows several times).
pub fn json_response<T: Serialize>(v: &T) -> Response {
    let mut buf = Vec::with_capacity(640);
    match serde_json::to_writer(&mut buf, v) {
        Ok(()) => {
            let mut res = Response::new(Body::from(buf));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise a response");
            ApiError::Internal.into_response()
        }
    }
}

/// Parses a session id from a path or query (400 when malformed).
pub fn parse_id(field: &str, s: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(s).map_err(|_| ApiError::field(field, "not a session id (a lowercase UUID)"))
}

/// Parses a subject (400 when empty, too long or with control characters).
pub fn parse_subject(field: &str, s: &str) -> Result<Subject, ApiError> {
    Subject::new(s).map_err(|e| ApiError::field(field, e))
}
