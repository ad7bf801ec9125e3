//! The `/v1` handlers, one module per resource.

pub mod admin;
pub mod cursor;
pub mod sessions;
pub mod subjects;

use sessionkit_core::{SessionId, Subject};

use crate::error::ApiError;

/// Parses a session id from a path or query (400 when malformed).
pub fn parse_id(field: &str, s: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(s).map_err(|_| ApiError::field(field, "not a session id (a lowercase UUID)"))
}

/// Parses a subject (400 when empty, too long or with control characters).
pub fn parse_subject(field: &str, s: &str) -> Result<Subject, ApiError> {
    Subject::new(s).map_err(|e| ApiError::field(field, e))
}
