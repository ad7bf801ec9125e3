//! The axum side: [`Session`] as an extractor, and responses for
//! [`SessionError`].

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};

use super::{Session, SessionError};
use crate::EngineError;

/// The route has no [`SessionLayer`](super::SessionLayer) in front of it:
/// a wiring mistake, answered with 500.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no SessionLayer in front of this route")]
pub struct MissingSessionLayer;

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        tracing::error!("a handler asked for a Session on a route without SessionLayer");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}

impl<St: Send + Sync> FromRequestParts<St> for Session {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(MissingSessionLayer)
    }
}

/// The status of each failure: a store that is down is 503 (fail closed),
/// the anonymous-session cap 429 with `Retry-After`, a refused value 400,
/// a session gone or at its subject's cap 409.
impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        let status = match &self {
            SessionError::Untracked | SessionError::BearerSession => StatusCode::BAD_REQUEST,
            SessionError::NotJson(_) => StatusCode::BAD_REQUEST,
            SessionError::Gone => StatusCode::CONFLICT,
            SessionError::Engine(e) => match e {
                EngineError::Store(_) | EngineError::Random(_) => StatusCode::SERVICE_UNAVAILABLE,
                EngineError::InvalidInput { .. } | EngineError::Attributes(_) => {
                    StatusCode::BAD_REQUEST
                }
                EngineError::SessionLimitReached | EngineError::Conflict => StatusCode::CONFLICT,
                EngineError::AnonymousLimitReached { .. } => StatusCode::TOO_MANY_REQUESTS,
            },
        };
        if status.is_server_error() {
            tracing::warn!(error = %self, "session write failed");
        }
        let mut res = status.into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let SessionError::Engine(EngineError::AnonymousLimitReached { retry_after_secs }) = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}
