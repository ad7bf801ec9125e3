//! # sessionkit-postgres
//!
//! A [`SessionStore`] and [`StoreAdmin`] on PostgreSQL 15 or later. Every
//! write method is one call of a plpgsql function defined by the embedded
//! migrations: one statement, one round trip, one transaction, whose
//! decision reads only rows it has locked (subject row, then session rows,
//! then one counter row, then one clock row). `revoke_subject` bumps the
//! subject's epoch, so it costs the same for two sessions or a million.
//!
//! Each store works in its own PostgreSQL schema (`search_path` is set on
//! every pooled connection), created and migrated by
//! [`PostgresStore::connect`] in one transaction under an advisory lock.
//! The store never reads a clock, keeps token hashes only, answers every
//! call within its timeout (else [`StoreError::Unavailable`]) and fails
//! closed on anything that does not decode ([`StoreError::Corrupt`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), sessionkit_core::StoreError> {
//! use sessionkit_postgres::{PostgresOptions, PostgresStore};
//!
//! let store = PostgresStore::connect("postgres://app@127.0.0.1:5432/app", "sessions").await?;
//!
//! // Or with a larger pool and a longer per-call timeout:
//! let opts = PostgresOptions {
//!     max_connections: 32,
//!     timeout: std::time::Duration::from_secs(5),
//!     ..PostgresOptions::default()
//! };
//! let store = PostgresStore::connect_with("postgres://app@db/app", "sessions", opts).await?;
//! # Ok(()) }
//! ```

mod codec;
/// The client-info codec, public for the fuzz targets only (not part of
/// the API).
#[doc(hidden)]
pub mod fuzzing;
mod invalidation;
mod migrate;
mod sql;
mod store;

pub use migrate::{SCHEMA_VERSION, SchemaError, check_schema_name};
pub use sessionkit_core::near_cache::{NearCacheConfig, NearCacheStats};
pub use sessionkit_core::near_cache_channel::ChannelStats;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use sessionkit_core::near_cache::{Invalidation, NearCache};
use sessionkit_core::store::{StoreError, StoreResult};
use sessionkit_core::{SessionId, SessionStore, StoreAdmin};
use tokio::time::Instant;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

/// How long one call may take, waiting for a pooled connection included,
/// before it is [`StoreError::Unavailable`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// How a [`PostgresStore`] connects.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Every call — waiting for a connection, connecting, the statement —
    /// within this; else [`StoreError::Unavailable`]. Also sent as the
    /// connections' `statement_timeout`, so the server gives up too.
    pub timeout: Duration,
    /// Most pooled connections.
    pub max_connections: usize,
    /// Longest wait for a free pooled connection.
    pub wait_timeout: Duration,
    /// Longest time to open a new connection.
    pub create_timeout: Duration,
    /// Longest time to check a pooled connection before reuse.
    pub recycle_timeout: Duration,
    /// A local cache of validated records, invalidated across every node
    /// on the same database and schema through `LISTEN/NOTIFY` before a
    /// change returns (see [`PostgresStore::near_cache_stats`]). `None`
    /// (the default): every read goes to PostgreSQL.
    pub near_cache: Option<NearCacheConfig>,
    /// How long a change waits for every node to acknowledge its
    /// invalidation.
    pub ack_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            timeout: DEFAULT_TIMEOUT,
            max_connections: 16,
            wait_timeout: DEFAULT_TIMEOUT,
            create_timeout: DEFAULT_TIMEOUT,
            recycle_timeout: DEFAULT_TIMEOUT,
            near_cache: None,
            ack_timeout: Duration::from_millis(250),
        }
    }
}

/// The PostgreSQL session store. Cheap to clone (a pool of connections).
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    schema: String,
    timeout: Duration,
    near: Option<Arc<invalidation::Bus>>,
    _listener: Option<Arc<invalidation::Listener>>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .field("timeout", &self.timeout)
            .field("near_cache", &self.near.is_some())
            .finish_non_exhaustive()
    }
}

/// A call that did not finish within the store's timeout.
#[derive(Debug)]
struct Timeout(&'static str);

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "postgres {} timed out", self.0)
    }
}

impl std::error::Error for Timeout {}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

/// A PostgreSQL error as the trait reports it: data that the functions
/// found damaged (`XX001`) is corruption; anything else means the store
/// could not carry out the call now.
fn pg_err(e: tokio_postgres::Error, id: Option<SessionId>) -> StoreError {
    if let Some(db) = e.as_db_error()
        && *db.code() == SqlState::DATA_CORRUPTED
    {
        let what = match db.message().strip_prefix("sessionkit corrupt: ") {
            Some("subject epoch") => "subject epoch",
            _ => "record",
        };
        return codec::corrupt(what, id);
    }
    unavailable(e)
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db?…`, or key=value
    /// form) with the default [`PostgresOptions`], and creates or migrates
    /// `schema`, in which this store keeps all its tables.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if PostgreSQL cannot be reached in time,
    /// if the URL does not parse, or if the schema is refused (its cause is
    /// then a [`SchemaError`]: an invalid name, or a schema migrated by a
    /// newer build).
    pub async fn connect(url: &str, schema: &str) -> StoreResult<Self> {
        Self::connect_with(url, schema, PostgresOptions::default()).await
    }

    /// [`PostgresStore::connect`] with `opts`.
    ///
    /// # Errors
    /// As [`PostgresStore::connect`].
    pub async fn connect_with(url: &str, schema: &str, opts: PostgresOptions) -> StoreResult<Self> {
        check_schema_name(schema).map_err(unavailable)?;
        let mut cfg: tokio_postgres::Config = url.parse().map_err(unavailable)?;
        let ms = opts.timeout.as_millis().max(1);
        // The name was checked: only [a-z0-9_], so it needs no quoting.
        let mine = format!("-c search_path={schema} -c statement_timeout={ms}");
        let options = match cfg.get_options() {
            Some(o) if !o.is_empty() => format!("{o} {mine}"),
            _ => mine,
        };
        cfg.options(options);
        if cfg.get_application_name().is_none() {
            cfg.application_name("sessionkit-postgres");
        }
        cfg.connect_timeout(opts.create_timeout);
        let listen_cfg = cfg.clone();
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(opts.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(opts.wait_timeout))
            .create_timeout(Some(opts.create_timeout))
            .recycle_timeout(Some(opts.recycle_timeout))
            .build()
            .map_err(unavailable)?;
        let mut store = PostgresStore {
            pool,
            schema: schema.to_owned(),
            timeout: opts.timeout,
            near: None,
            _listener: None,
        };
        store.migrate().await?;
        if let Some(nc) = opts.near_cache {
            let cache = Arc::new(NearCache::new(nc));
            let (bus, listener) =
                invalidation::Bus::start(listen_cfg, schema, cache, opts.ack_timeout);
            // Serve from the cache from the start if the channel comes up
            // in time; else it starts serving when it does.
            let _ = tokio::time::timeout(opts.timeout, async {
                while !bus.cache.is_usable() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
            store.near = Some(bus);
            store._listener = Some(Arc::new(listener));
        }
        Ok(store)
    }

    /// The near-cache's counters and its channel's; `None` without one.
    #[must_use]
    pub fn near_cache_stats(&self) -> Option<(NearCacheStats, ChannelStats)> {
        self.near.as_ref().map(|b| (b.cache.stats(), b.stats()))
    }

    /// The `application_name` under which this store's near-cache listens
    /// (one connection per node, shared by every node on the schema);
    /// `None` without a near-cache.
    #[must_use]
    pub fn near_cache_application_name(&self) -> Option<&str> {
        self.near.as_ref().map(|b| b.application_name())
    }

    /// After a change: every node's near-cache forgets `inv` before this
    /// returns (bounded by the ack timeout). Nothing without a near-cache.
    async fn announce(&self, inv: Invalidation) {
        if let Some(bus) = &self.near {
            bus.announce(self, inv).await;
        }
    }

    /// A change only this node's cache must forget (a touch, a purge:
    /// other nodes' copies are older or read as expired, and the engine
    /// rereads the store before it reports an idle expiry).
    fn forget_here(&self, id: SessionId) {
        if let Some(bus) = &self.near {
            bus.cache.invalidate(&Invalidation::Session(id));
        }
    }

    /// The schema this store works in.
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Creates or migrates the schema (see [`SCHEMA_VERSION`]); `connect`
    /// does it, and a second run finds nothing to do.
    async fn migrate(&self) -> StoreResult<()> {
        let deadline = Instant::now() + self.timeout.max(Duration::from_secs(10));
        let mut client = self.client(deadline).await?;
        let res =
            tokio::time::timeout_at(deadline, migrate::migrate(&mut client, &self.schema)).await;
        match res {
            Err(_) => {
                drop(Object::take(client));
                Err(unavailable(Timeout("migration")))
            }
            Ok(Err(migrate::MigrateError::Schema(e))) => Err(unavailable(e)),
            Ok(Err(migrate::MigrateError::Db(e))) => Err(unavailable(e)),
            Ok(Ok(found)) => {
                if found < SCHEMA_VERSION {
                    tracing::info!(
                        schema = %self.schema,
                        from = found,
                        to = SCHEMA_VERSION,
                        "sessionkit-postgres schema migrated"
                    );
                }
                Ok(())
            }
        }
    }

    /// A pooled connection, by `deadline`.
    async fn client(&self, deadline: Instant) -> StoreResult<Object> {
        match tokio::time::timeout_at(deadline, self.pool.get()).await {
            Err(_) => Err(unavailable(Timeout("connection"))),
            Ok(Err(e)) => Err(unavailable(e)),
            Ok(Ok(c)) => Ok(c),
        }
    }

    /// Runs one prepared statement within the store's timeout; its rows.
    /// A connection whose statement timed out is dropped, not reused.
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        id: Option<SessionId>,
    ) -> StoreResult<Vec<Row>> {
        let deadline = Instant::now() + self.timeout;
        let client = self.client(deadline).await?;
        let res = tokio::time::timeout_at(deadline, async {
            let st = client.prepare_cached(sql).await?;
            client.query(&st, params).await
        })
        .await;
        match res {
            Err(_) => {
                drop(Object::take(client));
                Err(unavailable(Timeout("statement")))
            }
            Ok(Err(e)) => Err(pg_err(e, id)),
            Ok(Ok(rows)) => Ok(rows),
        }
    }

    /// [`PostgresStore::query`] for a statement that answers one row.
    async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        id: Option<SessionId>,
        what: &'static str,
    ) -> StoreResult<Row> {
        let mut rows = self.query(sql, params, id).await?;
        match (rows.pop(), rows.is_empty()) {
            (Some(r), true) => Ok(r),
            _ => Err(codec::corrupt(what, id)),
        }
    }
}

// The trait impls live in `store.rs`; these assertions keep the public type
// honest about what it implements.
const _: fn() = || {
    fn is_store<S: SessionStore + StoreAdmin>() {}
    is_store::<PostgresStore>();
};
