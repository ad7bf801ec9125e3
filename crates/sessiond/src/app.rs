//! The application: shared state ([`AppState`]), the caller's identity
//! ([`Authorized`], from `Authorization: Bearer <api key>` only), path and
//! query extractors that answer with our error codes, and [`router`], which
//! wires every route of DESIGN.md §7.
//!
//! The router is generic over the store, so it runs on the embedded store
//! in production and on `MemoryStore` in tests:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use sessiond::app::{AppState, AppOptions, router};
//! use sessiond::api_keys::ApiKeys;
//! use sessionkit::{SessionManager, EngineKeys};
//! use sessionkit_memory::MemoryStore;
//! let engine = SessionManager::builder(MemoryStore::new(), EngineKeys::generate().unwrap())
//!     .build().await.unwrap();
//! let app = router(AppState::new(engine, ApiKeys::in_memory(), AppOptions::default()));
//! # let _ = app;
//! # });
//! ```

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, patch, post};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::de::DeserializeOwned;
use sessionkit::SessionManager;
use sessionkit_core::{StoreAdmin, TenantId};

use crate::api_keys::{ApiKeyInfo, ApiKeys, Scope};
use crate::error::ApiError;
use crate::routes::{admin, sessions, subjects};
use crate::{ops, telemetry};

/// Limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Largest request body, bytes (413 above).
    pub max_body_bytes: usize,
    /// Largest total of request header lines, bytes (431 above).
    pub max_header_bytes: usize,
    /// Longest a client may take to send a body (408 after); `None`: no
    /// limit.
    pub body_read_timeout: Option<std::time::Duration>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_body_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            body_read_timeout: Some(std::time::Duration::from_secs(30)),
        }
    }
}

/// Whether the store can make writes durable right now (readiness).
pub type WritesHealthy = Arc<dyn Fn() -> bool + Send + Sync>;

/// Options of the application.
#[derive(Clone, Default)]
pub struct AppOptions {
    /// Request limits.
    pub limits: HttpLimits,
    /// The Prometheus handle rendering `/metrics` (none: empty page).
    pub metrics: Option<PrometheusHandle>,
    /// The store's kind, for stats (`embedded`, `memory`).
    pub store_kind: &'static str,
    /// A store-specific write-health probe for `/readyz`.
    pub writes_healthy: Option<WritesHealthy>,
}

impl std::fmt::Debug for AppOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppOptions")
            .field("limits", &self.limits)
            .field("store_kind", &self.store_kind)
            .finish_non_exhaustive()
    }
}

struct Shared<S> {
    engine: SessionManager<S>,
    api_keys: ApiKeys,
    opts: AppOptions,
}

/// What every handler shares: the engine, the API keys, the options.
pub struct AppState<S> {
    inner: Arc<Shared<S>>,
}

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        AppState {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: StoreAdmin> AppState<S> {
    /// Builds the state.
    pub fn new(engine: SessionManager<S>, api_keys: ApiKeys, mut opts: AppOptions) -> Self {
        if opts.store_kind.is_empty() {
            opts.store_kind = "memory";
        }
        AppState {
            inner: Arc::new(Shared {
                engine,
                api_keys,
                opts,
            }),
        }
    }

    /// The engine.
    #[must_use]
    pub fn engine(&self) -> &SessionManager<S> {
        &self.inner.engine
    }

    /// The API keys.
    #[must_use]
    pub fn api_keys(&self) -> &ApiKeys {
        &self.inner.api_keys
    }

    /// The options.
    #[must_use]
    pub fn options(&self) -> &AppOptions {
        &self.inner.opts
    }
}

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

fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|k| !k.is_empty())
}

impl<S: StoreAdmin, R: RequiredScope> FromRequestParts<AppState<S>> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, ApiError> {
        let presented = bearer(parts).ok_or(ApiError::Unauthenticated)?;
        let key = state
            .api_keys()
            .authenticate(presented)
            .ok_or(ApiError::Unauthenticated)?;
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

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Every route of the server.
pub fn router<S: StoreAdmin>(state: AppState<S>) -> Router {
    let limits = state.options().limits;
    Router::new()
        .route("/v1/sessions", post(sessions::create::<S>))
        .route("/v1/sessions/validate", post(sessions::validate::<S>))
        .route("/v1/sessions/upgrade", post(sessions::upgrade::<S>))
        .route("/v1/sessions/revoke", post(sessions::revoke_token::<S>))
        .route(
            "/v1/sessions/{id}",
            get(sessions::get_session::<S>).delete(sessions::delete_session::<S>),
        )
        .route(
            "/v1/sessions/{id}/attributes",
            patch(sessions::patch_attributes::<S>),
        )
        .route("/v1/subjects", get(subjects::list_subjects::<S>))
        .route(
            "/v1/subjects/{subject}/sessions",
            get(subjects::list::<S>).delete(subjects::revoke_all::<S>),
        )
        .route(
            "/v1/subjects/{subject}/sessions/{id}",
            get(subjects::get_one::<S>).delete(subjects::revoke_one::<S>),
        )
        .route("/v1/stats", get(admin::stats::<S>))
        .route("/v1/purge", post(admin::purge::<S>))
        .route(
            "/v1/api-keys",
            get(admin::list_keys::<S>).post(admin::create_key::<S>),
        )
        .route(
            "/v1/api-keys/{id}",
            get(admin::get_key::<S>).delete(admin::revoke_key::<S>),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz::<S>))
        .route("/metrics", get(ops::metrics::<S>))
        .route("/openapi.json", get(ops::openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(limits, telemetry::edge))
        .with_state(state)
}
