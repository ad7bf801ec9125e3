//! # sessionkit-redis
//!
//! A [`SessionStore`] and [`StoreAdmin`](sessionkit_core::store::StoreAdmin)
//! on Redis 7.0 or later, standalone or Cluster (`redis+cluster://`). Every method is one Lua script, run by SHA
//! ([`redis::Script`] falls back to loading it on `NOSCRIPT`), that reads,
//! checks and then writes: no decision is taken outside the script, so no
//! read-then-write race exists. All keys live under a per-store prefix
//! and every key a script touches is passed in `KEYS` (see the README for
//! the layout).
//!
//! The store never reads a clock, keeps token hashes only, answers every
//! call within its timeout (else [`StoreError::Unavailable`]) and fails
//! closed on anything that does not decode ([`StoreError::Corrupt`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), sessionkit_core::StoreError> {
//! let store = sessionkit_redis::RedisStore::connect("redis://127.0.0.1:6379", "sessions").await?;
//! # Ok(()) }
//! ```

mod admin;
mod codec;
mod con;
/// The record codec, public for the fuzz targets only (not part of the API).
#[doc(hidden)]
pub mod fuzzing;
mod invalidation;
mod layout;
mod lua;
mod pointers;
mod reply;

pub use sessionkit_core::near_cache::{NearCacheConfig, NearCacheStats};
pub use sessionkit_core::near_cache_channel::ChannelStats;

use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use sessionkit_core::ids::{SessionId, Subject, TenantId};
use sessionkit_core::near_cache::{Invalidation, NearCache};
use sessionkit_core::policy::OnSessionLimit;
use sessionkit_core::record::{RevokeReason, SessionRecord};
use sessionkit_core::side_blob;
use sessionkit_core::store::{
    Capacity, Change, CreateOutcome, GrantSwap, GrantSwapRequest, Limits, ListCursor, Purged,
    RefreshOutcome, RefreshRequest, RetireOutcome, RetireRequest, RevokeOutcome,
    RevokeSubjectOutcome, SessionStore, StoreError, StoreResult, UpdateOutcome,
};
use sessionkit_core::time::Millis;
use sessionkit_core::token::TokenHash;

use codec::{hash_key, id_key, subject_key};
use con::Con;
use layout::Layout;
use reply::{array, bytes, corrupt, id_and_record, int, read_reply, record, subject_of, tagged};

/// How long one call may take, connection included, before it is
/// [`StoreError::Unavailable`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Highest version: Lua numbers are doubles, exact up to 2^53.
const MAX_VERSION: u64 = (1 << 53) - 1;

struct Scripts {
    create: redis::Script,
    read: redis::Script,
    touch: redis::Script,
    update: redis::Script,
    swap_grants: redis::Script,
    retire: redis::Script,
    refresh: redis::Script,
    revoke: redis::Script,
    revoke_subject: redis::Script,
    list_subject: redis::Script,
    list_subjects: redis::Script,
    purge: redis::Script,
    persist_floor: redis::Script,
    counts: redis::Script,
}

impl Scripts {
    fn new() -> Self {
        let w = |b: &str| redis::Script::new(&lua::write_script(b));
        let r = |b: &str| redis::Script::new(&lua::read_script(b));
        Scripts {
            create: w(lua::CREATE),
            read: r(lua::READ),
            touch: w(lua::TOUCH),
            update: w(lua::UPDATE),
            swap_grants: w(lua::SWAP_GRANTS),
            retire: w(lua::RETIRE),
            refresh: w(lua::REFRESH),
            revoke: w(lua::REVOKE),
            revoke_subject: w(lua::REVOKE_SUBJECT),
            list_subject: r(lua::LIST_SUBJECT),
            list_subjects: r(lua::LIST_SUBJECTS),
            purge: w(lua::PURGE),
            persist_floor: w(lua::PERSIST_FLOOR),
            counts: r(lua::COUNTS),
        }
    }
}

/// How a [`RedisStore`] connects and whether it keeps a near-cache.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// Every call, connection included, within this; else
    /// [`StoreError::Unavailable`].
    pub timeout: Duration,
    /// A local cache of validated records, invalidated across every node
    /// on the same Redis and prefix before a change returns (see
    /// [`RedisStore::near_cache_stats`]). `None` (the default): every read
    /// goes to Redis.
    pub near_cache: Option<NearCacheConfig>,
    /// How long a change waits for every node to acknowledge its
    /// invalidation.
    pub ack_timeout: Duration,
    /// On Cluster, how many shards (groups of keys sharing a slot) the
    /// sessions are spread over; ignored on a standalone Redis. Fixed for
    /// the life of the data: every process on one prefix must use the same
    /// number (see the crate README).
    pub shards: u16,
}

/// The default [`RedisOptions::shards`].
pub const DEFAULT_SHARDS: u16 = 64;

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            timeout: DEFAULT_TIMEOUT,
            near_cache: None,
            ack_timeout: Duration::from_millis(250),
            shards: DEFAULT_SHARDS,
        }
    }
}

/// The Redis session store. Cheap to clone (one multiplexed connection,
/// reconnected on failure).
#[derive(Clone)]
pub struct RedisStore {
    con: Con,
    layout: Arc<Layout>,
    scripts: Arc<Scripts>,
    timeout: Duration,
    /// Where the next purge starts (Cluster: shards take turns).
    purge_from: Arc<std::sync::atomic::AtomicUsize>,
    near: Option<Arc<invalidation::Bus>>,
    _subscriber: Option<Arc<invalidation::Subscriber>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("layout", &self.layout)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

#[derive(Debug)]
struct Timeout;

impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("redis call timed out")
    }
}

impl std::error::Error for Timeout {}

/// A setting that makes the store unusable (reported as `Unavailable`,
/// since [`StoreError`] has no configuration variant).
#[derive(Debug)]
struct BadSetting(&'static str);

impl std::fmt::Display for BadSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BadSetting {}

fn map_err(e: redis::RedisError, id: Option<SessionId>) -> StoreError {
    if e.code() == Some("CORRUPT") || e.to_string().contains("CORRUPT") {
        corrupt("record", id)
    } else {
        unavailable(e)
    }
}

pub(crate) fn ms(m: Millis) -> String {
    m.as_millis().to_string()
}

/// Bounds `fut` by `timeout`; a timeout or a Redis error is `Unavailable`
/// (or `Corrupt` when a script said so).
async fn bounded<T>(
    timeout: Duration,
    fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    id: Option<SessionId>,
) -> StoreResult<T> {
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Err(unavailable(Timeout)),
        Ok(Err(e)) => Err(map_err(e, id)),
        Ok(Ok(v)) => Ok(v),
    }
}

/// Builds an argument list from anything string-like.
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$(Vec::<u8>::from($a)),*] };
}
pub(crate) use args;

impl RedisStore {
    /// Connects to `url` with the default [`RedisOptions`] (no
    /// near-cache); every key of this store starts with `prefix` and `:`.
    /// `redis://…`, `rediss://…` or `unix://…` name a standalone Redis;
    /// `redis+cluster://host:port,host:port,…` a Redis Cluster (any of its
    /// masters; the rest are discovered).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if Redis cannot be reached in time, or
    /// if a Cluster `prefix` holds `{` or `}` (it would move every key
    /// into one slot).
    pub async fn connect(url: &str, prefix: &str) -> StoreResult<Self> {
        Self::connect_with(url, prefix, RedisOptions::default()).await
    }

    /// [`RedisStore::connect`] with `opts`.
    ///
    /// # Errors
    /// As [`RedisStore::connect`].
    pub async fn connect_with(url: &str, prefix: &str, opts: RedisOptions) -> StoreResult<Self> {
        let timeout = opts.timeout;
        let (con, layout, bus_url) = match con::cluster_nodes(url) {
            Some(nodes) => {
                if prefix.contains(['{', '}']) {
                    return Err(unavailable(BadSetting(
                        "a Redis Cluster key prefix must not contain '{' or '}'",
                    )));
                }
                let first = nodes.first().cloned().ok_or_else(|| {
                    unavailable(BadSetting("a redis+cluster:// URL names no node"))
                })?;
                let c = bounded(timeout, con::cluster(&nodes, timeout), None).await?;
                (Con::Cluster(c), Layout::cluster(prefix, opts.shards), first)
            }
            None => {
                let client = redis::Client::open(url).map_err(unavailable)?;
                let c = bounded(timeout, con::single(&client, timeout), None).await?;
                (Con::Single(c), Layout::standalone(prefix), url.to_owned())
            }
        };
        let (near, subscriber) = match opts.near_cache {
            Some(nc) => {
                // On Cluster every process publishes and subscribes through
                // the first node of the URL, so PUBLISH counts every
                // subscriber (see the README).
                let client = redis::Client::open(bus_url.as_str()).map_err(unavailable)?;
                let bus_con = match &con {
                    Con::Single(c) => c.clone(),
                    Con::Cluster(_) => {
                        bounded(timeout, con::single(&client, timeout), None).await?
                    }
                };
                let cache = Arc::new(NearCache::new(nc));
                let (bus, sub) =
                    invalidation::Bus::start(client, bus_con, prefix, cache, opts.ack_timeout);
                // Serve from the cache from the start if the channel comes
                // up in time; else it starts serving when it does.
                let _ = tokio::time::timeout(timeout, async {
                    while !bus.cache.is_usable() {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
                .await;
                (Some(bus), Some(Arc::new(sub)))
            }
            None => (None, None),
        };
        Ok(RedisStore {
            con,
            layout: Arc::new(layout),
            scripts: Arc::new(Scripts::new()),
            timeout,
            purge_from: Arc::default(),
            near,
            _subscriber: subscriber,
        })
    }

    /// The near-cache's counters; `None` without one.
    #[must_use]
    pub fn near_cache_stats(&self) -> Option<(NearCacheStats, ChannelStats)> {
        self.near.as_ref().map(|b| (b.cache.stats(), b.stats()))
    }

    /// After a change: every node's near-cache forgets `inv` before this
    /// returns (bounded by the ack timeout). Nothing without a near-cache.
    async fn announce(&self, inv: Invalidation) {
        if let Some(bus) = &self.near {
            bus.announce(inv).await;
        }
    }

    /// A change only this node's cache must forget (a touch: other nodes'
    /// older `last_seen_at` is harmless, see [`SessionStore::get_by_token_uncached`]).
    fn forget_here(&self, id: SessionId) {
        if let Some(bus) = &self.near {
            bus.cache.invalidate(&Invalidation::Session(id));
        }
    }

    /// Runs `script` on shard `shard`'s keys with `args`; the raw reply.
    pub(crate) async fn run(
        &self,
        shard: usize,
        script: &redis::Script,
        args: Vec<Vec<u8>>,
        id: Option<SessionId>,
    ) -> StoreResult<Value> {
        let keys = self
            .layout
            .shard(shard)
            .ok_or_else(|| corrupt("shard pointer", id))?;
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(k);
        }
        for a in &args {
            inv.arg(a.as_slice());
        }
        let mut con = self.con.clone();
        bounded(self.timeout, inv.invoke_async::<Value>(&mut con), id).await
    }

    /// Runs `script` with `args` on every shard at once; the replies in
    /// shard order.
    pub(crate) async fn on_every_shard(
        &self,
        script: &redis::Script,
        args: Vec<Vec<u8>>,
    ) -> StoreResult<Vec<Value>> {
        let calls =
            (0..self.layout.shards().len()).map(|i| self.run(i, script, args.clone(), None));
        futures_util::future::join_all(calls)
            .await
            .into_iter()
            .collect()
    }

    /// Runs one plain command.
    pub(crate) async fn cmd(&self, cmd: &redis::Cmd, id: Option<SessionId>) -> StoreResult<Value> {
        let mut con = self.con.clone();
        bounded(self.timeout, cmd.query_async::<Value>(&mut con), id).await
    }

    /// Runs `cmds` concurrently, each to its own key's master (an async
    /// Cluster pipeline may not cross slots); their replies in order.
    pub(crate) async fn each(
        &self,
        cmds: &[redis::Cmd],
        id: Option<SessionId>,
    ) -> StoreResult<Vec<Value>> {
        let calls = cmds.iter().map(|c| self.cmd(c, id));
        futures_util::future::join_all(calls)
            .await
            .into_iter()
            .collect()
    }
}

impl SessionStore for RedisStore {
    const MAX_VERSION: u64 = MAX_VERSION;

    async fn create(
        &self,
        rec: SessionRecord,
        limits: Limits,
        now: Millis,
    ) -> StoreResult<CreateOutcome> {
        let (cap, refuse) = match limits.per_subject {
            Some((n, on)) => (n.to_string(), u8::from(on == OnSessionLimit::Refuse)),
            None => (String::new(), 0),
        };
        let mut args = args![
            id_key(rec.id),
            hash_key(&rec.token_hash),
            rec.tenant.as_str(),
            rec.subject.as_ref().map(subject_key).unwrap_or_default(),
            ms(now),
            cap,
            refuse.to_string(),
            limits.replaces.map(id_key).unwrap_or_default(),
            limits.anonymous.map(|n| n.to_string()).unwrap_or_default(),
            ms(rec.purge_at()),
        ];
        args.push(codec::encode(&rec));
        args.push(Vec::from(ms(rec.expires_at)));
        let shard = self.layout.home(rec.tenant, rec.subject.as_ref());
        if self.layout.pointers() && !self.claim_pointers(&rec, shard, now).await? {
            return Ok(CreateOutcome::Duplicate);
        }
        // On an error the outcome is unknown: the pointers stay (their TTL
        // ends them if the record never came to be).
        let v = self
            .run(shard, &self.scripts.create, args, Some(rec.id))
            .await?;
        let bad = || corrupt("create reply", Some(rec.id));
        let (tag, rest) = tagged(&v).ok_or_else(bad)?;
        let out = match tag.as_str() {
            "duplicate" => CreateOutcome::Duplicate,
            "anonymous_limit" => CreateOutcome::AnonymousLimitReached,
            "subject_limit" => CreateOutcome::SubjectLimitReached,
            "created" => {
                let ids = rest.first().and_then(array).ok_or_else(bad)?;
                let evicted = ids
                    .iter()
                    .map(|i| bytes(i).flatten().and_then(|b| codec::parse_id(&b)))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(bad)?;
                CreateOutcome::Created { evicted }
            }
            _ => return Err(bad()),
        };
        if !matches!(out, CreateOutcome::Created { .. }) {
            self.release_pointers(&[(rec.id, rec.token_hash)]).await;
        }
        if let CreateOutcome::Created { evicted } = &out {
            for id in evicted {
                self.announce(Invalidation::Session(*id)).await;
            }
        }
        Ok(out)
    }

    async fn get_by_token(
        &self,
        tenant: TenantId,
        hash: &TokenHash,
    ) -> StoreResult<Option<SessionRecord>> {
        if let Some(bus) = &self.near
            && let Some(rec) = bus.cache.get(tenant, hash)
        {
            return Ok(Some(rec));
        }
        self.get_by_token_uncached(tenant, hash).await
    }

    async fn get_by_token_uncached(
        &self,
        tenant: TenantId,
        hash: &TokenHash,
    ) -> StoreResult<Option<SessionRecord>> {
        let ticket = self.near.as_ref().and_then(|b| b.cache.ticket());
        let Some(shard) = self.locate(|l| l.token_pointer(hash), None).await? else {
            return Ok(None);
        };
        let v = self
            .run(
                shard,
                &self.scripts.read,
                args!["tok", hash_key(hash)],
                None,
            )
            .await?;
        let found = read_reply(tenant, &v)?;
        if let (Some(bus), Some(t), Some(r)) = (&self.near, ticket, &found) {
            bus.cache.fill(t, r);
        }
        Ok(found)
    }

    async fn get_by_id(
        &self,
        tenant: TenantId,
        id: SessionId,
    ) -> StoreResult<Option<SessionRecord>> {
        let Some(shard) = self.shard_of_id(id).await? else {
            return Ok(None);
        };
        let v = self
            .run(shard, &self.scripts.read, args!["id", id_key(id)], Some(id))
            .await?;
        read_reply(tenant, &v)
    }

    async fn touch(&self, tenant: TenantId, id: SessionId, at: Millis) -> StoreResult<bool> {
        let Some(shard) = self.shard_of_id(id).await? else {
            return Ok(false);
        };
        let v = self
            .run(
                shard,
                &self.scripts.touch,
                args![tenant.as_str(), id_key(id), ms(at)],
                Some(id),
            )
            .await?;
        self.forget_here(id);
        Ok(int(&v).ok_or_else(|| corrupt("touch reply", Some(id)))? == 1)
    }

    async fn update(
        &self,
        tenant: TenantId,
        id: SessionId,
        expected_version: u64,
        change: Change,
        now: Millis,
    ) -> StoreResult<UpdateOutcome> {
        let Change::Attributes(attrs) = change;
        let Some(shard) = self.shard_of_id(id).await? else {
            return Ok(UpdateOutcome::NotLive);
        };
        let v = self
            .run(
                shard,
                &self.scripts.update,
                args![
                    tenant.as_str(),
                    id_key(id),
                    expected_version.to_string(),
                    attrs.as_json(),
                    ms(now),
                    MAX_VERSION.to_string(),
                ],
                Some(id),
            )
            .await?;
        let bad = || corrupt("update reply", Some(id));
        let (tag, rest) = tagged(&v).ok_or_else(bad)?;
        match tag.as_str() {
            "not_live" => Ok(UpdateOutcome::NotLive),
            "capacity" => Err(StoreError::Capacity(Capacity::Version)),
            "mismatch" => {
                let current = rest.first().and_then(int).ok_or_else(bad)?;
                Ok(UpdateOutcome::VersionMismatch {
                    current: u64::try_from(current).map_err(|_| bad())?,
                })
            }
            "updated" => {
                let r = record(id, rest.first().ok_or_else(bad)?)?;
                self.announce(Invalidation::Session(id)).await;
                Ok(UpdateOutcome::Updated(Box::new(r)))
            }
            _ => Err(bad()),
        }
    }

    async fn swap_grants(&self, req: GrantSwapRequest) -> StoreResult<GrantSwap> {
        let id = req.id;
        let Some(rec) = self.get_by_id(req.tenant, id).await? else {
            return Ok(GrantSwap::NotLive);
        };
        let (tenant, now) = (req.tenant, req.now);
        let (expected, new) = match side_blob::grant_swap_blobs(rec, req) {
            Ok(blobs) => blobs,
            Err(answer) => return Ok(answer),
        };
        let Some(shard) = self.shard_of_id(id).await? else {
            return Ok(GrantSwap::NotLive);
        };
        let v = self
            .run(
                shard,
                &self.scripts.swap_grants,
                args![tenant.as_str(), id_key(id), expected, new, ms(now)],
                Some(id),
            )
            .await?;
        let bad = || corrupt("swap reply", Some(id));
        let (tag, rest) = tagged(&v).ok_or_else(bad)?;
        match tag.as_str() {
            "not_live" => Ok(GrantSwap::NotLive),
            "changed" => Ok(GrantSwap::Changed(Box::new(record(
                id,
                rest.first().ok_or_else(bad)?,
            )?))),
            "swapped" => {
                let r = record(id, rest.first().ok_or_else(bad)?)?;
                self.announce(Invalidation::Session(id)).await;
                Ok(GrantSwap::Swapped(Box::new(r)))
            }
            _ => Err(bad()),
        }
    }

    async fn retire(&self, req: RetireRequest) -> StoreResult<RetireOutcome> {
        let id = req.old_id;
        let Some(shard) = self.shard_of_id(id).await? else {
            return Ok(RetireOutcome::NotLive);
        };
        let v = self
            .run(
                shard,
                &self.scripts.retire,
                args![
                    req.tenant.as_str(),
                    id_key(id),
                    hash_key(&req.old_token_hash),
                    req.expected_version.to_string(),
                    id_key(req.successor),
                    ms(req.now),
                ],
                Some(id),
            )
            .await?;
        let bad = || corrupt("retire reply", Some(id));
        let (tag, rest) = tagged(&v).ok_or_else(bad)?;
        match tag.as_str() {
            "not_live" => Ok(RetireOutcome::NotLive),
            "retired" => {
                self.announce(Invalidation::Session(id)).await;
                Ok(RetireOutcome::Retired)
            }
            "mismatch" => {
                let current = rest.first().and_then(int).ok_or_else(bad)?;
                Ok(RetireOutcome::VersionMismatch {
                    current: u64::try_from(current).map_err(|_| bad())?,
                })
            }
            _ => Err(bad()),
        }
    }

    async fn refresh(&self, req: RefreshRequest) -> StoreResult<RefreshOutcome> {
        let id = req.id;
        let Some(shard) = self.shard_of_id(id).await? else {
            return Ok(RefreshOutcome::NotLive);
        };
        let v = self
            .run(
                shard,
                &self.scripts.refresh,
                args![
                    req.tenant.as_str(),
                    id_key(id),
                    hash_key(&req.presented),
                    req.presented_generation.to_string(),
                    hash_key(&req.successor),
                    ms(req.now),
                    ms(req.grace_until),
                ],
                Some(id),
            )
            .await?;
        let bad = || corrupt("refresh reply", Some(id));
        let (tag, rest) = tagged(&v).ok_or_else(bad)?;
        if matches!(tag.as_str(), "rotated" | "reuse") {
            self.announce(Invalidation::Session(id)).await;
        }
        match tag.as_str() {
            "not_live" => Ok(RefreshOutcome::NotLive),
            "rotated" => Ok(RefreshOutcome::Rotated(Box::new(record(
                id,
                rest.first().ok_or_else(bad)?,
            )?))),
            "replayed" => Ok(RefreshOutcome::Replayed(Box::new(record(
                id,
                rest.first().ok_or_else(bad)?,
            )?))),
            "reuse" => Ok(RefreshOutcome::ReuseDetected {
                subject: subject_of(rest.first().ok_or_else(bad)?, Some(id))?,
            }),
            _ => Err(bad()),
        }
    }

    async fn revoke(
        &self,
        tenant: TenantId,
        id: SessionId,
        reason: RevokeReason,
        now: Millis,
    ) -> StoreResult<RevokeOutcome> {
        let Some(shard) = self.shard_of_id(id).await? else {
            return Ok(RevokeOutcome::NotFound);
        };
        let v = self
            .run(
                shard,
                &self.scripts.revoke,
                args![
                    tenant.as_str(),
                    id_key(id),
                    reason.code().to_string(),
                    ms(now)
                ],
                Some(id),
            )
            .await?;
        let bad = || corrupt("revoke reply", Some(id));
        let (tag, rest) = tagged(&v).ok_or_else(bad)?;
        // Also when already revoked: a retry repairs a lost announcement.
        if matches!(tag.as_str(), "revoked" | "already") {
            self.announce(Invalidation::Session(id)).await;
        }
        match tag.as_str() {
            "not_found" => Ok(RevokeOutcome::NotFound),
            "already" => Ok(RevokeOutcome::AlreadyRevoked),
            "revoked" => Ok(RevokeOutcome::Revoked {
                subject: subject_of(rest.first().ok_or_else(bad)?, Some(id))?,
            }),
            _ => Err(bad()),
        }
    }

    async fn revoke_subject(
        &self,
        tenant: TenantId,
        subject: &Subject,
        except: Option<SessionId>,
        reason: RevokeReason,
        now: Millis,
    ) -> StoreResult<RevokeSubjectOutcome> {
        let v = self
            .run(
                self.layout.subject_shard(tenant, subject),
                &self.scripts.revoke_subject,
                args![
                    tenant.as_str(),
                    subject_key(subject),
                    except.map(id_key).unwrap_or_default(),
                    reason.code().to_string(),
                    ms(now),
                ],
                except,
            )
            .await?;
        let bad = || corrupt("revoke_subject reply", None);
        let (tag, rest) = tagged(&v).ok_or_else(bad)?;
        match tag.as_str() {
            "except_not_live" => Ok(RevokeSubjectOutcome::ExceptNotLive),
            "revoked" => {
                let count = rest.first().and_then(int).ok_or_else(bad)?;
                if count > 0 {
                    self.announce(Invalidation::Subject(tenant, subject.clone()))
                        .await;
                }
                Ok(RevokeSubjectOutcome::Revoked {
                    count: u64::try_from(count).map_err(|_| bad())?,
                })
            }
            _ => Err(bad()),
        }
    }

    async fn list_subject(
        &self,
        tenant: TenantId,
        subject: &Subject,
        now: Millis,
        after: Option<ListCursor>,
        limit: usize,
    ) -> StoreResult<Vec<SessionRecord>> {
        let v = self
            .run(
                self.layout.subject_shard(tenant, subject),
                &self.scripts.list_subject,
                args![tenant.as_str(), subject_key(subject), ms(now)],
                None,
            )
            .await?;
        let items = array(&v).ok_or_else(|| corrupt("list reply", None))?;
        let mut recs = Vec::with_capacity(items.len());
        for it in items {
            let r = id_and_record(it)?;
            if r.tenant != tenant || r.subject.as_ref() != Some(subject) {
                return Err(corrupt("subject index", Some(r.id)));
            }
            if after.is_none_or(|c| c.precedes(&r)) {
                recs.push(r);
            }
        }
        recs.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        recs.truncate(limit);
        Ok(recs)
    }

    async fn purge_expired(&self, now: Millis, max: usize) -> StoreResult<Vec<Purged>> {
        // Shards take turns being first, so one busy shard starves no other.
        let n = self.layout.shards().len();
        let first = self
            .purge_from
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % n;
        // On Cluster, ask every shard at once whether anything is due, and
        // visit only those.
        let due: Vec<bool> = if n == 1 {
            vec![true]
        } else {
            let peeks: Vec<redis::Cmd> = self
                .layout
                .shards()
                .iter()
                .map(|keys| {
                    redis::cmd("ZRANGEBYSCORE")
                        .arg(&keys[2])
                        .arg("-inf")
                        .arg(now.as_millis())
                        .arg("LIMIT")
                        .arg(0)
                        .arg(1)
                        .clone()
                })
                .collect();
            self.each(&peeks, None)
                .await?
                .iter()
                .map(|v| array(v).is_some_and(|a| !a.is_empty()))
                .collect()
        };
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for shard in (first..n).chain(0..first) {
            if !due.get(shard).copied().unwrap_or(true) {
                continue;
            }
            if out.len() >= max {
                break;
            }
            let v = self
                .run(
                    shard,
                    &self.scripts.purge,
                    args![ms(now), (max - out.len()).to_string()],
                    None,
                )
                .await?;
            for p in reply::purged(&v)? {
                // Other nodes' copies read as expired, or are reread (idle).
                self.forget_here(p.0.id);
                gone.push((p.0.id, p.1));
                out.push(p.0);
            }
        }
        self.release_pointers(&gone).await;
        Ok(out)
    }

    async fn clock_floor(&self) -> StoreResult<Millis> {
        let mut floor = Millis::MIN;
        let gets: Vec<redis::Cmd> = self
            .layout
            .shards()
            .iter()
            .map(|keys| redis::cmd("GET").arg(&keys[3]).clone())
            .collect();
        for v in self.each(&gets, None).await? {
            if !matches!(v, Value::Nil) {
                let f = int(&v)
                    .map(Millis::from_millis)
                    .ok_or_else(|| corrupt("clock floor", None))?;
                floor = floor.max(f);
            }
        }
        Ok(floor)
    }

    async fn persist_clock_floor(&self, at: Millis) -> StoreResult<()> {
        // The floor is the highest of the shards' (every write raises its
        // own shard's); persisting raises the first.
        self.run(0, &self.scripts.persist_floor, args![ms(at)], None)
            .await?;
        Ok(())
    }
}
