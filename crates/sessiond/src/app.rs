//! The application: shared state ([`AppState`]) and [`router`], which
//! registers every row of [`ROUTES`] with its handler.
//!
//! Production serves one type, `AppState<Backend>` ([`crate::backend`]),
//! whichever store the config names. The router is generic over the store
//! only so that tests can also drive it over a store they can switch off:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use sessiond::app::{AppState, AppOptions, router};
//! use sessiond::api_keys::ApiKeys;
//! use sessiond::backend::Backend;
//! use sessionkit::{SessionManager, EngineKeys};
//! use sessionkit_memory::MemoryStore;
//! let backend = Backend::Memory(MemoryStore::new());
//! let engine = SessionManager::builder(backend.clone(), EngineKeys::generate().unwrap())
//!     .build().await.unwrap();
//! let app = router(AppState::new(engine, ApiKeys::in_memory(), AppOptions::for_backend(&backend)));
//! # let _ = app;
//! # });
//! ```

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodRouter, on};
use metrics_exporter_prometheus::PrometheusHandle;
use sessionkit::SessionManager;

use crate::api_keys::ApiKeys;
use crate::backend::{Backend, ServedStore};
use crate::error::ApiError;
use crate::http::HttpLimits;
use crate::routes::table::{Operation, ROUTES, Route};
use crate::routes::{admin, sessions, subjects, tokens, upstream};
use crate::{ops, telemetry};

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
    /// Sets the store's own gauges before `/metrics` renders.
    pub store_metrics: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Where the signing keys live and how they rotate (none: access
    /// tokens are not configured, or come from the configuration).
    pub signing_keys: Option<crate::signing_keys::SigningKeys>,
    /// Rate limits (default: none).
    pub rate_limits: Arc<crate::http::RateLimits>,
    /// `/metrics` needs an API key with the `admin` scope (default: no).
    pub metrics_require_key: bool,
    /// The upstream token vault (none: no providers configured).
    pub upstream: Option<Arc<sessionkit::upstream::UpstreamVault>>,
}

impl AppOptions {
    /// Default options for serving `backend`: its kind, and its write-health
    /// probe for `/readyz`.
    #[must_use]
    pub fn for_backend(backend: &Backend) -> Self {
        let probe = backend.clone();
        let gauges = backend.clone();
        AppOptions {
            store_kind: backend.kind(),
            writes_healthy: Some(Arc::new(move || probe.writes_healthy())),
            store_metrics: Some(Arc::new(move || gauges.export_metrics())),
            ..AppOptions::default()
        }
    }
}

impl std::fmt::Debug for AppOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppOptions")
            .field("limits", &self.limits)
            .field("store_kind", &self.store_kind)
            .field("metrics_require_key", &self.metrics_require_key)
            .finish_non_exhaustive()
    }
}

struct Shared<S> {
    engine: SessionManager<S>,
    api_keys: ApiKeys,
    opts: AppOptions,
}

/// What every handler shares: the engine, the API keys, the options.
pub struct AppState<S = Backend> {
    inner: Arc<Shared<S>>,
}

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        AppState {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: ServedStore> AppState<S> {
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

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The handler of a route, by its operation: the match is exhaustive, so
/// an operation added to the table without a handler does not compile.
fn endpoint<S: ServedStore>(route: &Route) -> MethodRouter<AppState<S>> {
    let m = route.verb.filter();
    match route.operation {
        Operation::Create => on(m, sessions::create::<S>),
        Operation::Validate => on(m, sessions::validate::<S>),
        Operation::Upgrade => on(m, sessions::upgrade::<S>),
        Operation::Logout => on(m, sessions::revoke_token::<S>),
        Operation::Get => on(m, sessions::get_session::<S>),
        Operation::Delete => on(m, sessions::delete_session::<S>),
        Operation::PatchAttributes => on(m, sessions::patch_attributes::<S>),
        Operation::ListSubjects => on(m, subjects::list_subjects::<S>),
        Operation::ListSubject => on(m, subjects::list::<S>),
        Operation::RevokeSubject => on(m, subjects::revoke_all::<S>),
        Operation::GetForSubject => on(m, subjects::get_one::<S>),
        Operation::DeleteForSubject => on(m, subjects::revoke_one::<S>),
        Operation::Stats => on(m, admin::stats::<S>),
        Operation::Purge => on(m, admin::purge::<S>),
        Operation::ListApiKeys => on(m, admin::list_keys::<S>),
        Operation::CreateApiKey => on(m, admin::create_key::<S>),
        Operation::GetApiKey => on(m, admin::get_key::<S>),
        Operation::RevokeApiKey => on(m, admin::revoke_key::<S>),
        Operation::RotateApiKey => on(m, admin::rotate_key::<S>),
        Operation::Refresh => on(m, tokens::refresh::<S>),
        Operation::Introspect => on(m, tokens::introspect::<S>),
        Operation::Jwks => on(m, tokens::jwks::<S>),
        Operation::ListSigningKeys => on(m, tokens::list_keys::<S>),
        Operation::RotateSigningKeys => on(m, tokens::rotate_keys::<S>),
        Operation::PutGrant => on(m, upstream::put_grant::<S>),
        Operation::UpstreamToken => on(m, upstream::token::<S>),
        Operation::DeleteGrant => on(m, upstream::delete_grant::<S>),
        Operation::Healthz => on(m, ops::healthz),
        Operation::Readyz => on(m, ops::readyz::<S>),
        Operation::Metrics => on(m, ops::metrics::<S>),
        Operation::OpenApi => on(m, ops::openapi),
        Operation::Other => on(m, not_found),
    }
}

/// Every route of the server: the rows of [`ROUTES`], behind the one
/// middleware ([`telemetry::edge`]) that checks limits and records metrics.
pub fn router<S: ServedStore>(state: AppState<S>) -> Router {
    let limits = state.options().limits;
    ROUTES
        .iter()
        .fold(Router::new(), |app, r| app.route(r.path, endpoint::<S>(r)))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(limits, telemetry::edge))
        .with_state(state)
}
