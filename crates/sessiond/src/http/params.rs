//! Path and query extractors that answer with our error codes (400
//! `invalid_request`) instead of axum's plain-text rejections.

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Path parameters; a malformed one (bad percent-encoding, not UTF-8) is
/// 400 `invalid_request`.
#[derive(Debug)]
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| PathParams(t))
            .map_err(|e| ApiError::InvalidRequest(format!("invalid path: {}", e.body_text())))
    }
}

/// Query parameters as name/value pairs (decoded).
#[derive(Debug)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// The single value of `name`; 400 if it is repeated; 400 if any name
    /// outside `allowed` is present.
    pub fn one(&self, name: &str, allowed: &[&str]) -> Result<Option<&str>, ApiError> {
        if let Some((n, _)) = self.0.iter().find(|(n, _)| !allowed.contains(&n.as_str())) {
            return Err(ApiError::InvalidRequest(format!(
                "unknown query parameter `{n}`"
            )));
        }
        let mut it = self.0.iter().filter(|(n, _)| n == name);
        let first = it.next().map(|(_, v)| v.as_str());
        if it.next().is_some() {
            return Err(ApiError::field(name, "given more than once"));
        }
        Ok(first)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| QueryPairs(q))
            .map_err(|_| ApiError::InvalidRequest("malformed query string".into()))
    }
}
