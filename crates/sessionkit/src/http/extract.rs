//! The axum side: [`Session`] as an extractor, and responses for
//! [`SessionError`].

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};

use super::{Session, SessionError};

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

/// The status of each failure: an engine error answers with the status of
/// its [`ErrorKind`](crate::ErrorKind), the one mapping sessiond uses too
/// (a store that is down is 503 with `Retry-After`, fail closed; corrupt
/// data or no randomness 500; the anonymous-session cap 429 with
/// `Retry-After`; a refused value 400, or 413 when too large; a subject at
/// its cap or a lost race 409). A request the layer does not track, or a
/// value that is not JSON, is 400; a session gone during the request 409;
/// a write on a safe method 403; a client over the layer's limit on new
/// anonymous sessions 429 with `Retry-After`.
///
/// The body is JSON, `{"error": "<code>"}`, with the code of
/// [`SessionError::code`]: never the error's text, which may hold details
/// for the log only.
impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        let status = match &self {
            SessionError::Untracked | SessionError::BearerSession => StatusCode::BAD_REQUEST,
            SessionError::NotJson(_) => StatusCode::BAD_REQUEST,
            SessionError::Gone => StatusCode::CONFLICT,
            SessionError::SafeMethod => StatusCode::FORBIDDEN,
            SessionError::ReauthenticationRequired => StatusCode::UNAUTHORIZED,
            SessionError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            SessionError::Engine(e) => e.kind().status(),
        };
        if status.is_server_error() {
            tracing::warn!(error = %self, "session write failed");
        }
        let body = serde_json::json!({ "error": self.code() }).to_string();
        let mut res = (status, body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let retry_after = match &self {
            SessionError::Engine(e) => e.retry_after_secs(),
            SessionError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        if let Some(secs) = retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EngineError, ErrorKind};
    use sessionkit_core::StoreError;
    use sessionkit_core::random::RandomUnavailable;

    fn answer(e: EngineError) -> Response {
        SessionError::Engine(e).into_response()
    }

    /// The layer answers an engine error with its kind's status, the
    /// mapping sessiond uses too.
    #[test]
    fn engine_errors_answer_with_their_kind() {
        let down = answer(EngineError::Store(StoreError::Unavailable("down".into())));
        assert_eq!(down.status(), ErrorKind::StoreUnavailable.status());
        assert_eq!(down.headers()[header::RETRY_AFTER], "1");
        let corrupt = answer(EngineError::Store(StoreError::Corrupt(
            sessionkit_core::store::Corruption {
                what: "subject",
                id: None,
            },
        )));
        assert_eq!(corrupt.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(corrupt.headers().get(header::RETRY_AFTER).is_none());
        let random = answer(EngineError::Random(RandomUnavailable));
        assert_eq!(random.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let anon = answer(EngineError::AnonymousLimitReached {
            retry_after_secs: 5,
        });
        assert_eq!(anon.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(anon.headers()[header::RETRY_AFTER], "5");
        assert_eq!(
            answer(EngineError::SessionLimitReached).status(),
            StatusCode::CONFLICT
        );
    }

    /// A write on a safe method is 403 with its code; every answer's body
    /// is JSON naming the code.
    #[tokio::test]
    async fn a_write_on_a_safe_method_is_403_with_a_reason() {
        use http_body_util::BodyExt;
        let res = SessionError::SafeMethod.into_response();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        let body = res.into_body().collect().await.map(|b| b.to_bytes());
        let body: serde_json::Value =
            serde_json::from_slice(&body.unwrap_or_default()).unwrap_or_default();
        assert_eq!(body["error"], "change_on_safe_method");
        let res = answer(EngineError::AnonymousLimitReached {
            retry_after_secs: 5,
        });
        let body = res.into_body().collect().await.map(|b| b.to_bytes());
        let body: serde_json::Value =
            serde_json::from_slice(&body.unwrap_or_default()).unwrap_or_default();
        assert_eq!(body["error"], "rate_limited");
    }
}
