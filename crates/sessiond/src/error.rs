//! Every HTTP failure of sessiond, mapped once to its status and stable
//! error code (DESIGN.md §7). Each variant has a fixed status; handlers
//! return [`ApiError`] and never build error responses by hand.
//!
//! The body is always `{"error": code, "message": text}`. Messages never
//! carry a secret (token, API key, CSRF token): they name fields, not
//! values.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sessionkit::EngineError;
use sessionkit_core::{AttributeError, StoreError};

/// Seconds a client should wait before retrying a 503.
const STORE_RETRY_AFTER_SECS: u64 = 1;

/// The outcome code of a response, kept in its extensions for metrics.
#[derive(Debug, Clone, Copy)]
pub struct OutcomeCode(pub &'static str);

/// A failed request: one variant per error code of the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 400 `invalid_request`: malformed body, field, query or path.
    #[error("{0}")]
    InvalidRequest(String),
    /// 401 `unauthenticated`: the caller's API key is missing or wrong.
    #[error("a valid API key is required (Authorization: Bearer <key>)")]
    Unauthenticated,
    /// 401 `invalid_token`: the token in the body is not a live session's.
    #[error("the token is not valid")]
    InvalidToken,
    /// 401 `session_expired`: the session passed a deadline.
    #[error("the session has expired")]
    SessionExpired,
    /// 403 `csrf_failed`: the CSRF token is not this session's.
    #[error("the CSRF token does not match the session")]
    CsrfFailed,
    /// 403 `insufficient_scope`: the API key lacks the scope.
    #[error("the API key lacks the `{0}` scope")]
    InsufficientScope(&'static str),
    /// 404 `not_found`.
    #[error("{0}")]
    NotFound(String),
    /// 405 `method_not_allowed`.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// 409 `conflict`.
    #[error("{0}")]
    Conflict(String),
    /// 409 `session_limit_reached`.
    #[error("the subject has reached its session limit")]
    SessionLimitReached,
    /// 412 `precondition_failed`: stale or malformed `If-Match`.
    #[error("{0}")]
    PreconditionFailed(String),
    /// 413 `payload_too_large`.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 408 `request_timeout`: the body did not arrive in time.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// 415 `unsupported_media_type`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429 `rate_limited`, with `Retry-After`.
    #[error("too many requests; retry later")]
    RateLimited {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// 431 `headers_too_large`.
    #[error("request headers are too large")]
    HeadersTooLarge,
    /// 503 `store_unavailable`, with `Retry-After`.
    #[error("the session store is unavailable; retry later")]
    StoreUnavailable,
    /// 500 `internal_error`: a fault on our side (corrupt data, no
    /// randomness). Details go to the log, not to the client.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// A 400 naming a field.
    pub fn field(field: &str, why: impl std::fmt::Display) -> Self {
        ApiError::InvalidRequest(format!("invalid `{field}`: {why}"))
    }

    /// The fixed status of this error.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated | ApiError::InvalidToken | ApiError::SessionExpired => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::CsrfFailed | ApiError::InsufficientScope(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) | ApiError::SessionLimitReached => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable error code of this error.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::InvalidToken => "invalid_token",
            ApiError::SessionExpired => "session_expired",
            ApiError::CsrfFailed => "csrf_failed",
            ApiError::InsufficientScope(_) => "insufficient_scope",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::SessionLimitReached => "session_limit_reached",
            ApiError::PreconditionFailed(_) => "precondition_failed",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::HeadersTooLarge => "headers_too_large",
            ApiError::StoreUnavailable => "store_unavailable",
            ApiError::Internal => "internal_error",
        }
    }

    /// A 404 for a session id.
    #[must_use]
    pub fn session_not_found() -> Self {
        ApiError::NotFound("no live session with this id".into())
    }
}

/// The error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable error code (`invalid_token`, `not_found`, …).
    pub error: &'static str,
    /// Human-readable text.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let body = ErrorBody {
            error: code,
            message: self.to_string(),
        };
        let mut res = (status, axum::Json(body)).into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            ApiError::Unauthenticated => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"sessiond\""),
                );
            }
            ApiError::RateLimited { retry_after_secs } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::StoreUnavailable => {
                h.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(STORE_RETRY_AFTER_SECS),
                );
            }
            _ => {}
        }
        res.extensions_mut().insert(OutcomeCode(code));
        res
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(StoreError::Unavailable(cause)) => {
                tracing::warn!(error = %cause, "session store unavailable");
                ApiError::StoreUnavailable
            }
            EngineError::Store(other) => {
                tracing::error!(error = %other, "session store failure");
                ApiError::Internal
            }
            EngineError::InvalidInput { field, message } => ApiError::field(field, message),
            EngineError::Attributes(a) => a.into(),
            EngineError::SessionLimitReached => ApiError::SessionLimitReached,
            EngineError::AnonymousLimitReached { retry_after_secs } => {
                ApiError::RateLimited { retry_after_secs }
            }
            EngineError::Conflict => {
                ApiError::Conflict("the session changed concurrently; retry".into())
            }
            other => {
                tracing::error!(error = %other, "engine failure");
                ApiError::Internal
            }
        }
    }
}

impl From<AttributeError> for ApiError {
    fn from(a: AttributeError) -> Self {
        match a {
            AttributeError::TooLarge { .. } => ApiError::PayloadTooLarge(format!("{a}")),
            AttributeError::Corrupt => {
                tracing::error!("stored attributes are corrupt");
                ApiError::Internal
            }
            other => ApiError::field("attributes", other),
        }
    }
}
