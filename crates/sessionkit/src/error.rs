//! The engine's error type: what could not be carried out. Expected outcomes
//! (an unknown token, an expired session, a stale version) are values of
//! the outcome enums in [`crate::manager`], never errors.
//!
//! [`EngineError::kind`] sorts every error into an [`ErrorKind`], the one
//! place that decides what a failure means to a caller: its HTTP status
//! and stable error code ([`ErrorKind::status`], [`ErrorKind::code`]),
//! whether a retry can help, and after how long. Both the in-process
//! layer ([`crate::http`]) and sessiond answer through it, so the same
//! failure never gets two statuses.
//!
//! ```
//! use sessionkit::error::{EngineError, ErrorKind};
//! use sessionkit_core::StoreError;
//!
//! let e = EngineError::Store(StoreError::Corrupt(sessionkit_core::store::Corruption { what: "subject", id: None }));
//! assert_eq!(e.kind(), ErrorKind::Internal);
//! assert_eq!(e.kind().code(), "internal_error");
//! assert_eq!(e.retry_after_secs(), None);
//! ```

use sessionkit_core::random::RandomUnavailable;
use sessionkit_core::{AttributeError, StoreError};

/// Seconds a caller should wait before retrying when the store is
/// unavailable (`Retry-After` of a 503).
pub const STORE_RETRY_AFTER_SECS: u64 = 1;

/// Why an engine operation could not be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The store failed (down, full, corrupt). Fail closed: never "allow".
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A request field is out of range or malformed; names the field.
    #[error("invalid {field}: {message}")]
    InvalidInput {
        /// The field, as the API names it.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Attributes were refused (not an object, not valid JSON, a repeated
    /// key, too deep, too large).
    #[error("invalid attributes: {0}")]
    Attributes(#[from] AttributeError),
    /// The subject is at its session cap and the policy refuses.
    #[error("the subject has reached its session limit")]
    SessionLimitReached,
    /// The tenant is at its anonymous-session cap; retry later.
    #[error("too many anonymous sessions; retry later")]
    AnonymousLimitReached {
        /// Seconds after which a retry may succeed.
        retry_after_secs: u64,
    },
    /// The operation kept losing races (another writer changed the session
    /// each time); nothing was written.
    #[error("the session changed concurrently; retry")]
    Conflict,
    /// The OS random source failed.
    #[error(transparent)]
    Random(#[from] RandomUnavailable),
}

/// What an [`EngineError`] means to the caller: one status and one stable
/// error code each (the codes of the sessiond API).
///
/// | kind | status | code |
/// |---|---|---|
/// | [`StoreUnavailable`](Self::StoreUnavailable) | 503 | `store_unavailable` (with `Retry-After`) |
/// | [`StoreCapacity`](Self::StoreCapacity) | 507 | `insufficient_storage` |
/// | [`Internal`](Self::Internal) | 500 | `internal_error` |
/// | [`InvalidInput`](Self::InvalidInput) | 400 | `invalid_request` |
/// | [`TooLarge`](Self::TooLarge) | 413 | `payload_too_large` |
/// | [`SessionLimitReached`](Self::SessionLimitReached) | 409 | `session_limit_reached` |
/// | [`AnonymousLimitReached`](Self::AnonymousLimitReached) | 429 | `rate_limited` (with `Retry-After`) |
/// | [`Conflict`](Self::Conflict) | 409 | `conflict` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The store cannot be reached or cannot write now; a retry later may
    /// succeed. Fail closed.
    StoreUnavailable,
    /// The store is out of room: retrying will not help until an operator
    /// acts.
    StoreCapacity,
    /// A fault on our side (corrupt stored data, no OS randomness): details
    /// belong in the log, not in the answer.
    Internal,
    /// A request value was refused (malformed, out of range).
    InvalidInput,
    /// A value is over its size cap.
    TooLarge,
    /// The subject is at its session cap and the policy refuses.
    SessionLimitReached,
    /// The tenant is at its anonymous-session cap; retry later.
    AnonymousLimitReached,
    /// The session kept changing under the write; retry.
    Conflict,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::StoreUnavailable,
        ErrorKind::StoreCapacity,
        ErrorKind::Internal,
        ErrorKind::InvalidInput,
        ErrorKind::TooLarge,
        ErrorKind::SessionLimitReached,
        ErrorKind::AnonymousLimitReached,
        ErrorKind::Conflict,
    ];

    /// The stable error code (the `error` field of a sessiond error body).
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            ErrorKind::StoreUnavailable => "store_unavailable",
            ErrorKind::StoreCapacity => "insufficient_storage",
            ErrorKind::Internal => "internal_error",
            ErrorKind::InvalidInput => "invalid_request",
            ErrorKind::TooLarge => "payload_too_large",
            ErrorKind::SessionLimitReached => "session_limit_reached",
            ErrorKind::AnonymousLimitReached => "rate_limited",
            ErrorKind::Conflict => "conflict",
        }
    }

    /// The HTTP status.
    #[cfg(feature = "http")]
    #[must_use]
    pub const fn status(self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            ErrorKind::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::StoreCapacity => StatusCode::INSUFFICIENT_STORAGE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::SessionLimitReached | ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::AnonymousLimitReached => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// Whether the same operation, retried later, may succeed.
    #[must_use]
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::StoreUnavailable | ErrorKind::AnonymousLimitReached | ErrorKind::Conflict
        )
    }
}

impl EngineError {
    /// What this error means to the caller (see [`ErrorKind`]).
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Store(e) => store_kind(e),
            EngineError::InvalidInput { .. } => ErrorKind::InvalidInput,
            EngineError::Attributes(AttributeError::TooLarge { .. }) => ErrorKind::TooLarge,
            EngineError::Attributes(AttributeError::Corrupt) => ErrorKind::Internal,
            EngineError::Attributes(_) => ErrorKind::InvalidInput,
            EngineError::SessionLimitReached => ErrorKind::SessionLimitReached,
            EngineError::AnonymousLimitReached { .. } => ErrorKind::AnonymousLimitReached,
            EngineError::Conflict => ErrorKind::Conflict,
            EngineError::Random(_) => ErrorKind::Internal,
        }
    }

    /// Whether retrying later may succeed.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }

    /// Seconds a caller should wait before a retry (`Retry-After`), when
    /// waiting is what helps: the anonymous-session cap's own figure, or
    /// [`STORE_RETRY_AFTER_SECS`] for a store that is unavailable.
    #[must_use]
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            EngineError::AnonymousLimitReached { retry_after_secs } => Some(*retry_after_secs),
            _ if self.kind() == ErrorKind::StoreUnavailable => Some(STORE_RETRY_AFTER_SECS),
            _ => None,
        }
    }
}

/// The kind of a store failure. Running out of room is not an outage: a
/// retry loop must only retry what can succeed.
fn store_kind(e: &StoreError) -> ErrorKind {
    match e {
        StoreError::Unavailable(_) => ErrorKind::StoreUnavailable,
        StoreError::Capacity(_) => ErrorKind::StoreCapacity,
        StoreError::Corrupt(_) => ErrorKind::Internal,
        // `StoreError` is non-exhaustive: a failure we cannot name is ours.
        _ => ErrorKind::Internal,
    }
}

pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> EngineError {
    EngineError::InvalidInput {
        field,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_distinct_codes() {
        let mut codes: Vec<_> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
    }

    #[cfg(feature = "http")]
    #[test]
    fn every_kind_is_an_error_status() {
        for k in ErrorKind::ALL {
            let s = k.status();
            assert!(s.is_client_error() || s.is_server_error(), "{k:?}: {s}");
            // Retryable kinds are the ones a client may repeat as is.
            if k.is_retryable() {
                assert!(matches!(s.as_u16(), 409 | 429 | 503), "{k:?}");
            }
        }
    }

    #[test]
    fn store_failures_are_told_apart() {
        let down = EngineError::Store(StoreError::Unavailable("down".into()));
        assert_eq!(down.kind(), ErrorKind::StoreUnavailable);
        assert!(down.is_retryable());
        assert_eq!(down.retry_after_secs(), Some(STORE_RETRY_AFTER_SECS));
        let corrupt = EngineError::Store(StoreError::Corrupt(sessionkit_core::store::Corruption {
            what: "subject",
            id: None,
        }));
        assert_eq!(corrupt.kind(), ErrorKind::Internal);
        assert!(!corrupt.is_retryable());
        assert_eq!(corrupt.retry_after_secs(), None);
        let random = EngineError::Random(RandomUnavailable);
        assert_eq!(random.kind(), ErrorKind::Internal);
        let anon = EngineError::AnonymousLimitReached {
            retry_after_secs: 7,
        };
        assert_eq!(anon.kind(), ErrorKind::AnonymousLimitReached);
        assert_eq!(anon.retry_after_secs(), Some(7));
        let big = EngineError::Attributes(AttributeError::TooLarge { size: 9, max: 8 });
        assert_eq!(big.kind(), ErrorKind::TooLarge);
        assert_eq!(
            EngineError::Attributes(AttributeError::Corrupt).kind(),
            ErrorKind::Internal
        );
        assert_eq!(
            EngineError::Attributes(AttributeError::NotAnObject).kind(),
            ErrorKind::InvalidInput
        );
    }
}
