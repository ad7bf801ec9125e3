//! The one store seam of sessiond: [`Backend`], an enum over the stores a
//! config can name, chosen at run time.
//!
//! [`SessionStore`] returns `impl Future`, so it cannot be a trait object.
//! Instead of compiling the router once per store type, sessiond serves a
//! `SessionManager<Backend>`: `Backend` implements [`SessionStore`] by
//! delegating each method to its variant with one `match` (no boxing, no
//! allocation on the hot path: the future is the variant's own future,
//! inside the `async fn`'s state). A new store (Redis, PostgreSQL) is a new
//! variant, an arm in the `delegate!` macro below, a [`StoreKind`] value and
//! its arm in [`Backend::open`].
//!
//! Besides the trait, `Backend` answers what differs per store at the
//! edges of the server's life: its [`kind`](Backend::kind) (for stats and
//! logs), whether it can make writes durable right now
//! ([`writes_healthy`](Backend::writes_healthy), for `/readyz`), and a final
//! [`close`](Backend::close) (drain and flush, on shutdown).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use sessiond::backend::Backend;
//! use sessionkit::{EngineKeys, SessionManager};
//! use sessionkit_memory::MemoryStore;
//!
//! let backend = Backend::Memory(MemoryStore::new());
//! assert_eq!(backend.kind(), "memory");
//! let engine = SessionManager::builder(backend.clone(), EngineKeys::generate().unwrap())
//!     .build()
//!     .await
//!     .unwrap();
//! # let _ = engine;
//! backend.close();
//! # });
//! ```

use std::path::Path;

use sessionkit_core::store::{
    Change, Counts, CreateOutcome, GrantSwap, GrantSwapRequest, Limits, ListCursor, Purged,
    RefreshOutcome, RefreshRequest, RetireOutcome, RetireRequest, RevokeOutcome,
    RevokeSubjectOutcome, UpdateOutcome,
};
use sessionkit_core::{
    Millis, RevokeReason, SessionId, SessionRecord, SessionStore, StoreAdmin, StoreResult, Subject,
    TenantId, TokenHash,
};
use sessionkit_memory::MemoryStore;
use sessionkit_postgres::PostgresStore;
use sessionkit_redb::{OpenError, RedbStore, WriterStats};
use sessionkit_redis::RedisStore;

use crate::config::StoreKind;
use crate::server::STORE_DIR;

/// What [`Backend::open`] needs of the config.
#[derive(Debug, Clone, Copy)]
pub struct StoreConfig<'a> {
    /// Which store.
    pub kind: StoreKind,
    /// Its URL (remote stores).
    pub url: Option<&'a str>,
    /// The prefix of every key (Redis), so that several deployments can
    /// share one server.
    pub prefix: &'a str,
    /// The schema (PostgreSQL), for the same reason.
    pub schema: &'a str,
    /// The remote store's near-cache (`None`: off).
    pub near_cache: Option<sessionkit_core::NearCacheConfig>,
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The embedded store.
    #[error(transparent)]
    Embedded(#[from] OpenError),
    /// A remote store needs `store_url`.
    #[error(
        "store_url is required for this store (e.g. redis://127.0.0.1:6379/0, postgres://postgres@127.0.0.1:5432/app)"
    )]
    NoUrl,
    /// The remote store cannot be reached (the URL is not repeated: it may
    /// hold a password).
    #[error("cannot reach the store: {0}")]
    Unreachable(String),
}

/// `e` and its causes, `: `-joined (a schema refusal is the cause of an
/// unavailable store). Never holds the URL: the stores do not repeat it.
fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

/// What the router and its handlers need of a store: the one bound they
/// name. In production it is always [`Backend`] (the router is compiled
/// once, for `SessionManager<Backend>`); tests also serve a store that
/// can be switched off (`OutageStore`) through the same router.
pub trait ServedStore: SessionStore + StoreAdmin {}

impl<S: SessionStore + StoreAdmin> ServedStore for S {}

/// The store sessiond serves, chosen by the `store` setting.
#[derive(Clone)]
#[non_exhaustive]
pub enum Backend {
    /// `store = "memory"`: every session is lost when sessiond stops.
    Memory(MemoryStore),
    /// `store = "embedded"`: the durable embedded store in the data dir.
    Embedded(RedbStore),
    /// `store = "redis"`: a Redis shared by every node (`store_url`).
    Redis(RedisStore),
    /// `store = "postgres"`: a PostgreSQL shared by every node
    /// (`store_url`), in the schema named by `store_prefix`.
    Postgres(PostgresStore),
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Backend").field(&self.kind()).finish()
    }
}

/// Runs `$call` on the store inside `$self`, whichever variant it is, and
/// awaits it. The one place that lists the variants for the trait: a new
/// store adds an arm here.
macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Backend::Memory($store) => $call.await,
            Backend::Embedded($store) => $call.await,
            Backend::Redis($store) => $call.await,
            Backend::Postgres($store) => $call.await,
        }
    };
}

impl Backend {
    /// Opens the store the config names: the embedded store in
    /// `<data dir>/store`, a new memory store (with a warning: nothing
    /// survives a restart), or Redis at `store_url`. The one place a
    /// `store` value becomes a store.
    pub async fn open(cfg: &StoreConfig<'_>, data_dir: &Path) -> Result<Backend, BackendError> {
        match cfg.kind {
            StoreKind::Embedded => Ok(Backend::open_embedded(&data_dir.join(STORE_DIR))?),
            StoreKind::Memory => {
                tracing::warn!("store = \"memory\": every session is lost when sessiond stops");
                Ok(Backend::Memory(MemoryStore::new()))
            }
            StoreKind::Redis => {
                let url = cfg.url.ok_or(BackendError::NoUrl)?;
                let opts = sessionkit_redis::RedisOptions {
                    near_cache: cfg.near_cache,
                    ..sessionkit_redis::RedisOptions::default()
                };
                let store = RedisStore::connect_with(url, cfg.prefix, opts)
                    .await
                    .map_err(|e| BackendError::Unreachable(e.to_string()))?;
                tracing::info!(
                    prefix = cfg.prefix,
                    near_cache = cfg.near_cache.is_some(),
                    "connected to the Redis store"
                );
                Ok(Backend::Redis(store))
            }
            StoreKind::Postgres => {
                let url = cfg.url.ok_or(BackendError::NoUrl)?;
                let opts = sessionkit_postgres::PostgresOptions {
                    near_cache: cfg.near_cache,
                    ..sessionkit_postgres::PostgresOptions::default()
                };
                let store = PostgresStore::connect_with(url, cfg.schema, opts)
                    .await
                    .map_err(|e| BackendError::Unreachable(source_chain(&e)))?;
                tracing::info!(
                    schema = cfg.schema,
                    near_cache = cfg.near_cache.is_some(),
                    "connected to the PostgreSQL store"
                );
                Ok(Backend::Postgres(store))
            }
        }
    }

    /// Opens the embedded store in `dir` and logs what the open found.
    pub fn open_embedded(dir: &Path) -> Result<Backend, OpenError> {
        let store = RedbStore::open(dir)?;
        let report = store.open_report();
        tracing::info!(
            loaded = report.loaded,
            skipped = report.skipped.len(),
            took_ms = report.took.as_millis() as u64,
            "opened the embedded store"
        );
        Ok(Backend::Embedded(store))
    }

    /// The store's kind, as the config names it (`memory`, `embedded`).
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Backend::Memory(_) => "memory",
            Backend::Embedded(_) => "embedded",
            Backend::Redis(_) => "redis",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Whether the store can make writes durable right now (`/readyz`):
    /// always for the memory store; for the embedded store, `false` from a
    /// failed commit until the file is writable again, and after
    /// [`close`](Backend::close).
    #[must_use]
    pub fn writes_healthy(&self) -> bool {
        match self {
            // Remote stores: every write is its own answer; `/readyz`
            // asks them for a count.
            Backend::Memory(_) | Backend::Redis(_) | Backend::Postgres(_) => true,
            Backend::Embedded(s) => s.writes_healthy(),
        }
    }

    /// Sets the store's own gauges (the Redis near-cache's hits, misses,
    /// invalidations, whether it serves, its channel's failures) before
    /// `/metrics` renders.
    pub fn export_metrics(&self) {
        let stats = match self {
            Backend::Redis(s) => s.near_cache_stats(),
            Backend::Postgres(s) => s.near_cache_stats(),
            Backend::Memory(_) | Backend::Embedded(_) => None,
        };
        let Some((c, ch)) = stats else {
            return;
        };
        let g = |name: &'static str, v: u64| metrics::gauge!(name).set(v as f64);
        g("sessiond_near_cache_hits", c.hits);
        g("sessiond_near_cache_misses", c.misses);
        g("sessiond_near_cache_invalidations", c.invalidations);
        g("sessiond_near_cache_entries", c.entries);
        g("sessiond_near_cache_usable", u64::from(c.usable));
        g("sessiond_near_cache_published", ch.published);
        g("sessiond_near_cache_ack_timeouts", ch.ack_timeouts);
        g("sessiond_near_cache_publish_failures", ch.publish_failures);
        g("sessiond_near_cache_subscriptions", ch.subscriptions);
    }

    /// The embedded store's writer counters (commits, operations, failed
    /// commits); `None` for a store without a writer.
    #[must_use]
    pub fn writer_stats(&self) -> Option<WriterStats> {
        match self {
            Backend::Memory(_) | Backend::Redis(_) | Backend::Postgres(_) => None,
            Backend::Embedded(s) => Some(s.stats()),
        }
    }

    /// Waits until every write sent before it, queued touches included, is
    /// durable (nothing to wait for in memory).
    pub async fn flush(&self) -> StoreResult<()> {
        match self {
            Backend::Memory(_) | Backend::Redis(_) | Backend::Postgres(_) => Ok(()),
            Backend::Embedded(s) => s.flush().await,
        }
    }

    /// The last step of a shutdown: drains every queued write, then closes
    /// the store (later writes on any clone fail as unavailable). Blocks
    /// until done; logs the outcome. Calling it again does nothing.
    pub fn close(&self) {
        match self {
            Backend::Memory(_) | Backend::Redis(_) | Backend::Postgres(_) => {}
            Backend::Embedded(s) => match s.flush_and_close() {
                Ok(()) => tracing::info!("store flushed and closed"),
                Err(e) => tracing::error!(error = %e, "final flush of the store failed"),
            },
        }
    }
}

impl SessionStore for Backend {
    /// The lowest of the stores': every one of them can then take it.
    const MAX_VERSION: u64 = if MemoryStore::MAX_VERSION < RedbStore::MAX_VERSION {
        MemoryStore::MAX_VERSION
    } else {
        RedbStore::MAX_VERSION
    };

    async fn create(
        &self,
        rec: SessionRecord,
        limits: Limits,
        now: Millis,
    ) -> StoreResult<CreateOutcome> {
        delegate!(self, s => s.create(rec, limits, now))
    }

    async fn get_by_token(
        &self,
        tenant: TenantId,
        hash: &TokenHash,
    ) -> StoreResult<Option<SessionRecord>> {
        delegate!(self, s => s.get_by_token(tenant, hash))
    }

    async fn get_by_token_uncached(
        &self,
        tenant: TenantId,
        hash: &TokenHash,
    ) -> StoreResult<Option<SessionRecord>> {
        delegate!(self, s => s.get_by_token_uncached(tenant, hash))
    }

    async fn get_by_id(
        &self,
        tenant: TenantId,
        id: SessionId,
    ) -> StoreResult<Option<SessionRecord>> {
        delegate!(self, s => s.get_by_id(tenant, id))
    }

    async fn touch(&self, tenant: TenantId, id: SessionId, at: Millis) -> StoreResult<bool> {
        delegate!(self, s => s.touch(tenant, id, at))
    }

    async fn update(
        &self,
        tenant: TenantId,
        id: SessionId,
        expected_version: u64,
        change: Change,
        now: Millis,
    ) -> StoreResult<UpdateOutcome> {
        delegate!(self, s => s.update(tenant, id, expected_version, change, now))
    }

    async fn retire(&self, req: RetireRequest) -> StoreResult<RetireOutcome> {
        delegate!(self, s => s.retire(req))
    }

    async fn refresh(&self, req: RefreshRequest) -> StoreResult<RefreshOutcome> {
        delegate!(self, s => s.refresh(req))
    }

    async fn swap_grants(&self, req: GrantSwapRequest) -> StoreResult<GrantSwap> {
        delegate!(self, s => s.swap_grants(req))
    }

    async fn revoke(
        &self,
        tenant: TenantId,
        id: SessionId,
        reason: RevokeReason,
        now: Millis,
    ) -> StoreResult<RevokeOutcome> {
        delegate!(self, s => s.revoke(tenant, id, reason, now))
    }

    async fn revoke_subject(
        &self,
        tenant: TenantId,
        subject: &Subject,
        except: Option<SessionId>,
        reason: RevokeReason,
        now: Millis,
    ) -> StoreResult<RevokeSubjectOutcome> {
        delegate!(self, s => s.revoke_subject(tenant, subject, except, reason, now))
    }

    async fn list_subject(
        &self,
        tenant: TenantId,
        subject: &Subject,
        now: Millis,
        after: Option<ListCursor>,
        limit: usize,
    ) -> StoreResult<Vec<SessionRecord>> {
        delegate!(self, s => s.list_subject(tenant, subject, now, after, limit))
    }

    async fn purge_expired(&self, now: Millis, max: usize) -> StoreResult<Vec<Purged>> {
        delegate!(self, s => s.purge_expired(now, max))
    }

    async fn clock_floor(&self) -> StoreResult<Millis> {
        delegate!(self, s => s.clock_floor())
    }

    async fn persist_clock_floor(&self, at: Millis) -> StoreResult<()> {
        delegate!(self, s => s.persist_clock_floor(at))
    }
}

impl StoreAdmin for Backend {
    async fn list_subjects(
        &self,
        tenant: TenantId,
        now: Millis,
        after: Option<&Subject>,
        limit: usize,
    ) -> StoreResult<Vec<(Subject, u64)>> {
        delegate!(self, s => s.list_subjects(tenant, now, after, limit))
    }

    async fn counts(&self, tenant: TenantId) -> StoreResult<Counts> {
        delegate!(self, s => s.counts(tenant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessionkit::{EngineKeys, NewSession, SessionManager, ValidateRequest, Validation};

    async fn round_trip(backend: Backend) {
        let engine = SessionManager::builder(backend.clone(), EngineKeys::generate().unwrap())
            .build()
            .await
            .unwrap();
        let created = engine
            .create(TenantId::DEFAULT, NewSession::default())
            .await
            .unwrap();
        let v = engine
            .validate(
                TenantId::DEFAULT,
                &created.token.expose_secret(),
                &ValidateRequest::default(),
            )
            .await
            .unwrap();
        assert!(matches!(v, Validation::Valid { .. }), "{v:?}");
        assert_eq!(engine.counts(TenantId::DEFAULT).await.unwrap().active, 1);
        backend.flush().await.unwrap();
        assert!(backend.writes_healthy());
        backend.close();
    }

    #[tokio::test]
    async fn memory_delegates() {
        let b = Backend::Memory(MemoryStore::new());
        assert_eq!(b.kind(), "memory");
        assert!(b.writer_stats().is_none());
        round_trip(b).await;
    }

    #[tokio::test]
    async fn embedded_delegates_and_closes() {
        let dir = tempfile::tempdir().unwrap();
        let b = Backend::open_embedded(dir.path()).unwrap();
        assert_eq!(b.kind(), "embedded");
        round_trip(b.clone()).await;
        assert!(b.writer_stats().is_some_and(|s| s.commits > 0));
        assert!(!b.writes_healthy(), "closed");
    }
}
