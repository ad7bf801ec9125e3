//! The engine's error type: what could not be carried out. Expected outcomes
//! (an unknown token, an expired session, a stale version) are values of
//! the outcome enums in [`crate::manager`], never errors.

use sessionkit_core::random::RandomUnavailable;
use sessionkit_core::{AttributeError, StoreError};

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

impl EngineError {
    /// Whether retrying later may succeed.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::Store(e) => e.is_retryable(),
            EngineError::AnonymousLimitReached { .. } | EngineError::Conflict => true,
            _ => false,
        }
    }
}

pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> EngineError {
    EngineError::InvalidInput {
        field,
        message: message.into(),
    }
}
