//! The caller's identity: [`Authorized<R>`], from `Authorization: Bearer
//! <api key>` only (never a query string or a cookie), checked against the
//! API keys ([`crate::api_keys`]) before the body is touched, with the
//! scope a route requires as a type ([`scope`]).
//!
//! ```
//! use sessiond::http::auth::{Authorized, scope};
//! use sessiond::error::ApiError;
//!
//! // A handler that needs `sessions:read`: a key without it never gets here.
//! async fn handler(caller: Authorized<scope::Read>) -> Result<String, ApiError> {
//!     Ok(caller.tenant.as_str().to_owned())
//! }
//! ```
//!
//! [`MetricsAccess`] guards `/metrics`: open, or (with
//! `metrics_require_key`) the same check as `Authorized<scope::Admin>`.
//!
//! Deployment caveat: API keys travel in a header in clear; serve sessiond
//! on a private address, or behind TLS.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sessionkit_core::TenantId;

use crate::api_keys::{ApiKeyInfo, Scope};
use crate::app::AppState;
use crate::backend::ServedStore;
use crate::error::ApiError;

/// A scope a route requires, as a type, so that the check runs in the
/// extractor: before the body is read or parsed.
pub trait RequiredScope: Send + Sync + 'static {
    /// The scope.
    const SCOPE: Scope;
}

/// The scopes as types (see [`Authorized`]).
pub mod scope {
    use super::{RequiredScope, Scope};

    /// `sessions:validate`.
    #[derive(Debug)]
    pub struct Validate;
    /// `sessions:read`.
    #[derive(Debug)]
    pub struct Read;
    /// `sessions:write`.
    #[derive(Debug)]
    pub struct Write;
    /// `admin`.
    #[derive(Debug)]
    pub struct Admin;
    /// `upstream`.
    #[derive(Debug)]
    pub struct Upstream;

    impl RequiredScope for Validate {
        const SCOPE: Scope = Scope::Validate;
    }
    impl RequiredScope for Read {
        const SCOPE: Scope = Scope::Read;
    }
    impl RequiredScope for Write {
        const SCOPE: Scope = Scope::Write;
    }
    impl RequiredScope for Admin {
        const SCOPE: Scope = Scope::Admin;
    }
    impl RequiredScope for Upstream {
        const SCOPE: Scope = Scope::Upstream;
    }
}

/// The authenticated caller, whose API key grants `R`: 401
/// `unauthenticated` without a valid key, 403 `insufficient_scope` without
/// the scope — both before the request body is touched.
#[derive(Debug)]
pub struct Authorized<R> {
    /// The key's tenant: every record the request reaches is in it.
    pub tenant: TenantId,
    /// The key.
    pub key: Arc<ApiKeyInfo>,
    scope: std::marker::PhantomData<R>,
}

/// The key of `Authorization: Bearer <key>` (scheme case-insensitive).
/// A request with more than one `Authorization` header has none that
/// counts: which one "wins" would differ between proxies and servers, so
/// none does (fail closed).
fn bearer(parts: &Parts) -> Option<&str> {
    let mut all = parts.headers.get_all(AUTHORIZATION).iter();
    let v = all.next()?;
    if all.next().is_some() {
        return None;
    }
    let v = v.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|k| !k.is_empty())
}

impl<S: ServedStore, R: RequiredScope> FromRequestParts<AppState<S>> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, ApiError> {
        let limits = &state.options().rate_limits;
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        limits.check_ip(ip)?;
        let key = bearer(parts)
            .and_then(|presented| {
                state
                    .api_keys()
                    .authenticate(presented, state.engine().now())
            })
            .ok_or_else(|| limits.failed_auth(ip))?;
        if !key.scopes.allows(R::SCOPE) {
            return Err(ApiError::InsufficientScope(R::SCOPE.as_str()));
        }
        Ok(Authorized {
            tenant: key.tenant,
            key,
            scope: std::marker::PhantomData,
        })
    }
}

/// Access to `/metrics`: anyone, unless the app was built with
/// `metrics_require_key`, when it is exactly [`Authorized<scope::Admin>`]
/// (401 `unauthenticated`, 403 `insufficient_scope`).
#[derive(Debug)]
pub struct MetricsAccess;

impl<S: ServedStore> FromRequestParts<AppState<S>> for MetricsAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, ApiError> {
        if state.options().metrics_require_key {
            Authorized::<scope::Admin>::from_request_parts(parts, state).await?;
        }
        Ok(MetricsAccess)
    }
}
