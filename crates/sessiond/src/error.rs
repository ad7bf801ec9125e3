//! Every HTTP failure of sessiond, mapped once to its status and stable
//! error code (docs/api.md). Each variant has a fixed status; handlers
//! return [`ApiError`] and never build error responses by hand.
//!
//! The body is always `{"error": code, "message": text}`. Messages never
//! carry a secret (token, API key, CSRF token): they name fields, not
//! values.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sessionkit::{EngineError, ErrorKind};
use sessionkit_core::AttributeError;

/// Defines [`ErrorCode`] from one table of (variant, status, code), so that
/// [`ErrorCode::ALL`], the statuses and the code strings cannot drift apart
/// (axum's `define_rejection!` in the same spirit).
macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident => ($status:ident, $code:literal), )*) => {
        /// The stable error codes of the v1 API, one per [`ApiError`]
        /// variant. Metric outcome labels and the error table of the docs
        /// come from [`ErrorCode::ALL`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in declaration order: `ALL[c.index()] == c`.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The code as it travels in the body's `error` field.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => $code, )*
                }
            }

            /// The fixed status of the code.
            #[must_use]
            pub const fn status(self) -> StatusCode {
                match self {
                    $( ErrorCode::$variant => StatusCode::$status, )*
                }
            }
        }
    };
}

error_codes! {
    /// 400: malformed body, field, query or path.
    InvalidRequest => (BAD_REQUEST, "invalid_request"),
    /// 401: the caller's API key is missing or wrong.
    Unauthenticated => (UNAUTHORIZED, "unauthenticated"),
    /// 401: the token in the body is not a live session's.
    InvalidToken => (UNAUTHORIZED, "invalid_token"),
    /// 401: the session passed a deadline.
    SessionExpired => (UNAUTHORIZED, "session_expired"),
    /// 401: the access JWT in the body is past its `exp`: refresh.
    TokenExpired => (UNAUTHORIZED, "token_expired"),
    /// 401: an old refresh token was reused; the session is revoked.
    RefreshTokenReused => (UNAUTHORIZED, "refresh_token_reused"),
    /// 401: the session is live, but its sign-in is older than the caller
    /// allows (`max_age_secs`): sign in again (step-up).
    ReauthenticationRequired => (UNAUTHORIZED, "reauthentication_required"),
    /// 403: the CSRF token is not this session's.
    CsrfFailed => (FORBIDDEN, "csrf_failed"),
    /// 403: the API key lacks the scope.
    InsufficientScope => (FORBIDDEN, "insufficient_scope"),
    /// 404.
    NotFound => (NOT_FOUND, "not_found"),
    /// 405.
    MethodNotAllowed => (METHOD_NOT_ALLOWED, "method_not_allowed"),
    /// 408: the body did not arrive in time.
    RequestTimeout => (REQUEST_TIMEOUT, "request_timeout"),
    /// 409.
    Conflict => (CONFLICT, "conflict"),
    /// 409: the subject is at its session cap.
    SessionLimitReached => (CONFLICT, "session_limit_reached"),
    /// 412: stale or malformed `If-Match`.
    PreconditionFailed => (PRECONDITION_FAILED, "precondition_failed"),
    /// 413.
    PayloadTooLarge => (PAYLOAD_TOO_LARGE, "payload_too_large"),
    /// 415.
    UnsupportedMediaType => (UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    /// 429, with `Retry-After`.
    RateLimited => (TOO_MANY_REQUESTS, "rate_limited"),
    /// 431.
    HeadersTooLarge => (REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large"),
    /// 500: a fault on our side.
    Internal => (INTERNAL_SERVER_ERROR, "internal_error"),
    /// 503, with `Retry-After`.
    StoreUnavailable => (SERVICE_UNAVAILABLE, "store_unavailable"),
    /// 503, with `Retry-After`: the upstream provider cannot refresh the
    /// grant now and no valid token is left.
    UpstreamUnavailable => (SERVICE_UNAVAILABLE, "upstream_unavailable"),
    /// 507: the store is out of room; retrying will not help.
    InsufficientStorage => (INSUFFICIENT_STORAGE, "insufficient_storage"),
}

impl ErrorCode {
    /// The position of this code in [`ErrorCode::ALL`].
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// The outcome of an error response, kept in its extensions for metrics.
#[derive(Debug, Clone, Copy)]
pub struct OutcomeCode(pub ErrorCode);

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
    /// 401 `token_expired`: the access token expired; refresh it.
    #[error("the access token has expired; refresh it")]
    TokenExpired,
    /// 401 `refresh_token_reused`: an old refresh token was presented again;
    /// the session is revoked (sign in again).
    #[error("the refresh token was already used; the session is revoked")]
    RefreshTokenReused,
    /// 401 `reauthentication_required`: the session's sign-in is older than
    /// the caller's `max_age_secs` or below its `min_aal` (or it has none:
    /// anonymous), or its upstream grant is dead.
    #[error("the user must sign in again")]
    ReauthenticationRequired,
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
    /// 503 `upstream_unavailable`, with `Retry-After`: the provider cannot
    /// refresh the grant now and no valid token is left.
    #[error("the upstream provider is unavailable; retry later")]
    UpstreamUnavailable {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// 507 `insufficient_storage`: the store is out of room. Not retryable:
    /// an operator must make room (or raise the store's limit).
    #[error("the session store is out of room")]
    InsufficientStorage,
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

    /// The stable error code of this error: every variant has its own.
    #[must_use]
    pub const fn error_code(&self) -> ErrorCode {
        match self {
            ApiError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            ApiError::Unauthenticated => ErrorCode::Unauthenticated,
            ApiError::InvalidToken => ErrorCode::InvalidToken,
            ApiError::SessionExpired => ErrorCode::SessionExpired,
            ApiError::TokenExpired => ErrorCode::TokenExpired,
            ApiError::ReauthenticationRequired => ErrorCode::ReauthenticationRequired,
            ApiError::RefreshTokenReused => ErrorCode::RefreshTokenReused,
            ApiError::CsrfFailed => ErrorCode::CsrfFailed,
            ApiError::InsufficientScope(_) => ErrorCode::InsufficientScope,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::SessionLimitReached => ErrorCode::SessionLimitReached,
            ApiError::PreconditionFailed(_) => ErrorCode::PreconditionFailed,
            ApiError::RequestTimeout => ErrorCode::RequestTimeout,
            ApiError::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::HeadersTooLarge => ErrorCode::HeadersTooLarge,
            ApiError::StoreUnavailable => ErrorCode::StoreUnavailable,
            ApiError::UpstreamUnavailable { .. } => ErrorCode::UpstreamUnavailable,
            ApiError::InsufficientStorage => ErrorCode::InsufficientStorage,
            ApiError::Internal => ErrorCode::Internal,
        }
    }

    /// The fixed status of this error.
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        self.error_code().status()
    }

    /// The stable error code of this error, as text.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        self.error_code().as_str()
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
        let code = self.error_code();
        let status = code.status();
        let body = ErrorBody {
            error: code.as_str(),
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
            ApiError::RateLimited { retry_after_secs }
            | ApiError::UpstreamUnavailable { retry_after_secs } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::StoreUnavailable => {
                h.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(sessionkit::error::STORE_RETRY_AFTER_SECS),
                );
            }
            _ => {}
        }
        res.extensions_mut().insert(OutcomeCode(code));
        res
    }
}

/// Through [`EngineError::kind`], the mapping the in-process layer uses
/// too: the status and code of each [`ErrorKind`] are the ones its
/// [`ApiError`] answers with (a test holds them equal).
impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e.kind() {
            ErrorKind::StoreUnavailable => {
                tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "session store unavailable");
                ApiError::StoreUnavailable
            }
            ErrorKind::StoreCapacity => {
                tracing::error!(error = %e, "session store out of room");
                ApiError::InsufficientStorage
            }
            ErrorKind::InvalidInput => match e {
                EngineError::InvalidInput { field, message } => ApiError::field(field, message),
                EngineError::Attributes(a) => ApiError::field("attributes", a),
                other => ApiError::InvalidRequest(other.to_string()),
            },
            ErrorKind::TooLarge => match e {
                EngineError::Attributes(a) => ApiError::PayloadTooLarge(a.to_string()),
                other => ApiError::PayloadTooLarge(other.to_string()),
            },
            ErrorKind::SessionLimitReached => ApiError::SessionLimitReached,
            ErrorKind::AnonymousLimitReached => ApiError::RateLimited {
                retry_after_secs: e
                    .retry_after_secs()
                    .unwrap_or(sessionkit::error::STORE_RETRY_AFTER_SECS),
            },
            ErrorKind::Conflict => {
                ApiError::Conflict("the session changed concurrently; retry".into())
            }
            // `Internal`, and any kind added later: a fault on our side,
            // told to the log only.
            _ => {
                tracing::error!(error = %e, "engine failure");
                ApiError::Internal
            }
        }
    }
}

impl From<AttributeError> for ApiError {
    fn from(a: AttributeError) -> Self {
        EngineError::Attributes(a).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessionkit_core::StoreError;
    use sessionkit_core::random::RandomUnavailable;

    /// One value of every variant. The match below stops compiling when a
    /// variant is added, as a reminder to list it here.
    fn every_variant() -> Vec<ApiError> {
        let all = vec![
            ApiError::InvalidRequest(String::new()),
            ApiError::Unauthenticated,
            ApiError::InvalidToken,
            ApiError::SessionExpired,
            ApiError::TokenExpired,
            ApiError::ReauthenticationRequired,
            ApiError::RefreshTokenReused,
            ApiError::CsrfFailed,
            ApiError::InsufficientScope("admin"),
            ApiError::NotFound(String::new()),
            ApiError::MethodNotAllowed,
            ApiError::Conflict(String::new()),
            ApiError::SessionLimitReached,
            ApiError::PreconditionFailed(String::new()),
            ApiError::PayloadTooLarge(String::new()),
            ApiError::RequestTimeout,
            ApiError::UnsupportedMediaType(String::new()),
            ApiError::RateLimited {
                retry_after_secs: 1,
            },
            ApiError::HeadersTooLarge,
            ApiError::StoreUnavailable,
            ApiError::UpstreamUnavailable {
                retry_after_secs: 2,
            },
            ApiError::InsufficientStorage,
            ApiError::Internal,
        ];
        for e in &all {
            match e {
                ApiError::InvalidRequest(_)
                | ApiError::Unauthenticated
                | ApiError::InvalidToken
                | ApiError::SessionExpired
                | ApiError::TokenExpired
                | ApiError::ReauthenticationRequired
                | ApiError::RefreshTokenReused
                | ApiError::CsrfFailed
                | ApiError::InsufficientScope(_)
                | ApiError::NotFound(_)
                | ApiError::MethodNotAllowed
                | ApiError::Conflict(_)
                | ApiError::SessionLimitReached
                | ApiError::PreconditionFailed(_)
                | ApiError::PayloadTooLarge(_)
                | ApiError::RequestTimeout
                | ApiError::UnsupportedMediaType(_)
                | ApiError::RateLimited { .. }
                | ApiError::HeadersTooLarge
                | ApiError::StoreUnavailable
                | ApiError::UpstreamUnavailable { .. }
                | ApiError::InsufficientStorage
                | ApiError::Internal => {}
            }
        }
        all
    }

    #[test]
    fn every_variant_has_its_own_code_and_an_error_status() {
        let all = every_variant();
        let codes: std::collections::HashSet<ErrorCode> =
            all.iter().map(ApiError::error_code).collect();
        assert_eq!(codes.len(), all.len(), "two variants share a code");
        assert_eq!(codes.len(), ErrorCode::ALL.len(), "a code no variant has");
        let texts: std::collections::HashSet<&str> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(texts.len(), ErrorCode::ALL.len(), "two codes spell alike");
        for e in &all {
            let s = e.status();
            assert!(s.is_client_error() || s.is_server_error(), "{e:?}: {s}");
            assert_eq!(e.clone().into_response().status(), s);
        }
        for (i, c) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
    }

    /// Samples of every engine error kind: sessiond answers each with the
    /// status and code of its kind, as the in-process layer does.
    #[test]
    fn engine_errors_answer_with_their_kind() {
        let samples = [
            EngineError::Store(StoreError::Unavailable("down".into())),
            EngineError::Store(StoreError::Capacity(
                sessionkit_core::store::Capacity::Records,
            )),
            EngineError::Store(StoreError::Corrupt(sessionkit_core::store::Corruption {
                what: "subject",
                id: None,
            })),
            EngineError::InvalidInput {
                field: "subject",
                message: "empty".into(),
            },
            EngineError::Attributes(AttributeError::NotAnObject),
            EngineError::Attributes(AttributeError::TooLarge { size: 9, max: 8 }),
            EngineError::Attributes(AttributeError::Corrupt),
            EngineError::SessionLimitReached,
            EngineError::AnonymousLimitReached {
                retry_after_secs: 3,
            },
            EngineError::Conflict,
            EngineError::Random(RandomUnavailable),
        ];
        let mut kinds = std::collections::HashSet::new();
        for e in samples {
            let kind = e.kind();
            kinds.insert(kind);
            let api = ApiError::from(e);
            assert_eq!(api.status(), kind.status(), "{kind:?}");
            assert_eq!(api.code(), kind.code(), "{kind:?}");
        }
        assert_eq!(kinds.len(), ErrorKind::ALL.len(), "a sample of every kind");
        assert_eq!(
            ApiError::InsufficientStorage.status(),
            ErrorKind::StoreCapacity.status()
        );
        assert_eq!(
            ApiError::InsufficientStorage.code(),
            ErrorKind::StoreCapacity.code()
        );
    }

    #[test]
    fn store_failures_keep_their_meaning() {
        let down = ApiError::from(EngineError::Store(StoreError::Unavailable("x".into())));
        assert_eq!(down, ApiError::StoreUnavailable);
        let res = down.into_response();
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
        let corrupt = ApiError::from(EngineError::Store(StoreError::Corrupt(
            sessionkit_core::store::Corruption {
                what: "subject",
                id: None,
            },
        )));
        assert_eq!(corrupt, ApiError::Internal);
        let random = ApiError::from(EngineError::Random(RandomUnavailable));
        assert_eq!(random, ApiError::Internal);
        assert_eq!(
            ApiError::from(EngineError::AnonymousLimitReached {
                retry_after_secs: 9
            }),
            ApiError::RateLimited {
                retry_after_secs: 9
            }
        );
    }
}
