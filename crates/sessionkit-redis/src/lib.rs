//! # sessionkit-redis
//!
//! A [`SessionStore`] and [`StoreAdmin`] on Redis (standalone, 7.0 or
//! later). Every method is one Lua script, run by SHA
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

mod codec;
mod invalidation;
mod lua;

pub use invalidation::ChannelStats;
pub use sessionkit_core::near_cache::{NearCacheConfig, NearCacheStats};

use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sessionkit_core::ids::{SessionId, Subject, TenantId};
use sessionkit_core::near_cache::{Invalidation, NearCache};
use sessionkit_core::policy::OnSessionLimit;
use sessionkit_core::record::{ExpiryCause, RevokeReason, SessionRecord};
use sessionkit_core::store::{
    Capacity, Change, Corruption, Counts, CreateOutcome, Limits, ListCursor, Purged,
    RefreshOutcome, RefreshRequest, RetireOutcome, RetireRequest, RevokeOutcome,
    RevokeSubjectOutcome, SessionStore, StoreAdmin, StoreError, StoreResult, UpdateOutcome,
};
use sessionkit_core::time::Millis;
use sessionkit_core::token::TokenHash;

use codec::{hash_key, id_key, subject_key};

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
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            timeout: DEFAULT_TIMEOUT,
            near_cache: None,
            ack_timeout: Duration::from_millis(250),
        }
    }
}

/// The Redis session store. Cheap to clone (one multiplexed connection,
/// reconnected on failure).
#[derive(Clone)]
pub struct RedisStore {
    con: ConnectionManager,
    keys: Arc<[String; 6]>,
    scripts: Arc<Scripts>,
    timeout: Duration,
    near: Option<Arc<invalidation::Bus>>,
    _subscriber: Option<Arc<invalidation::Subscriber>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("records", &self.keys[0])
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

fn corrupt(what: &'static str, id: Option<SessionId>) -> StoreError {
    StoreError::Corrupt(Corruption { what, id })
}

fn map_err(e: redis::RedisError, id: Option<SessionId>) -> StoreError {
    if e.code() == Some("CORRUPT") || e.to_string().contains("CORRUPT") {
        corrupt("record", id)
    } else {
        unavailable(e)
    }
}

/// The bytes of a bulk or simple string, `None` for nil.
fn bytes(v: &Value) -> Option<Option<Vec<u8>>> {
    match v {
        Value::Nil => Some(None),
        Value::BulkString(b) => Some(Some(b.clone())),
        Value::SimpleString(s) => Some(Some(s.clone().into_bytes())),
        Value::Int(i) => Some(Some(i.to_string().into_bytes())),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    String::from_utf8(bytes(v)??).ok()
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}

fn array(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) => Some(a),
        _ => None,
    }
}

/// A reply `{tag, …}`: the tag and the rest.
fn tagged(v: &Value) -> Option<(String, &[Value])> {
    let a = array(v)?;
    let (t, rest) = a.split_first()?;
    Some((text(t)?, rest))
}

/// Decodes a `fetch(id)` reply (the stored record) for `id`.
fn record(id: SessionId, v: &Value) -> StoreResult<SessionRecord> {
    let blob = bytes(v)
        .flatten()
        .ok_or_else(|| corrupt("record", Some(id)))?;
    codec::decode_blob(id, &blob).map_err(StoreError::Corrupt)
}

/// Decodes an `{id, fetch(id)}` pair.
fn id_and_record(v: &Value) -> StoreResult<SessionRecord> {
    let pair = array(v).ok_or_else(|| corrupt("record", None))?;
    let [idv, rec] = pair else {
        return Err(corrupt("record", None));
    };
    let id = bytes(idv)
        .flatten()
        .and_then(|b| codec::parse_id(&b))
        .ok_or_else(|| corrupt("id index", None))?;
    record(id, rec)
}

fn subject_of(v: &Value, id: Option<SessionId>) -> StoreResult<Option<Subject>> {
    let b = bytes(v).flatten().ok_or_else(|| corrupt("subject", id))?;
    if b.is_empty() {
        return Ok(None);
    }
    codec::parse_subject(&b)
        .map(Some)
        .ok_or_else(|| corrupt("subject", id))
}

fn ms(m: Millis) -> String {
    m.as_millis().to_string()
}

impl RedisStore {
    /// Connects to `url` (`redis://…`, `rediss://…`) with the default
    /// [`RedisOptions`] (no near-cache); every key of this store starts
    /// with `prefix` and `:`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if Redis cannot be reached in time.
    pub async fn connect(url: &str, prefix: &str) -> StoreResult<Self> {
        Self::connect_with(url, prefix, RedisOptions::default()).await
    }

    /// [`RedisStore::connect`] with `opts`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if Redis cannot be reached in time.
    pub async fn connect_with(url: &str, prefix: &str, opts: RedisOptions) -> StoreResult<Self> {
        let timeout = opts.timeout;
        let client = redis::Client::open(url).map_err(unavailable)?;
        // Fail fast while Redis is down (one retry, then `Unavailable`);
        // the next call reconnects.
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let con = tokio::time::timeout(timeout, client.get_connection_manager_with_config(cfg))
            .await
            .map_err(|_| unavailable(Timeout))?
            .map_err(unavailable)?;
        let (near, subscriber) = match opts.near_cache {
            Some(nc) => {
                let cache = Arc::new(NearCache::new(nc));
                let (bus, sub) =
                    invalidation::Bus::start(client, con.clone(), prefix, cache, opts.ack_timeout);
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
        let k = |s: &str| format!("{prefix}:{s}");
        Ok(RedisStore {
            con,
            keys: Arc::new([k("r"), k("t"), k("p"), k("f"), k("sa"), k("c")]),
            scripts: Arc::new(Scripts::new()),
            timeout,
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

    /// Runs `script` with the store's keys and `args`; the raw reply.
    async fn run(
        &self,
        script: &redis::Script,
        args: Vec<Vec<u8>>,
        id: Option<SessionId>,
    ) -> StoreResult<Value> {
        let mut inv = script.prepare_invoke();
        for k in self.keys.iter() {
            inv.key(k);
        }
        for a in &args {
            inv.arg(a.as_slice());
        }
        let mut con = self.con.clone();
        match tokio::time::timeout(self.timeout, inv.invoke_async::<Value>(&mut con)).await {
            Err(_) => Err(unavailable(Timeout)),
            Ok(Err(e)) => Err(map_err(e, id)),
            Ok(Ok(v)) => Ok(v),
        }
    }
}

/// Builds an argument list from anything string-like.
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$(Vec::<u8>::from($a)),*] };
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
        let v = self.run(&self.scripts.create, args, Some(rec.id)).await?;
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
        let v = self
            .run(&self.scripts.read, args!["tok", hash_key(hash)], None)
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
        let v = self
            .run(&self.scripts.read, args!["id", id_key(id)], Some(id))
            .await?;
        read_reply(tenant, &v)
    }

    async fn touch(&self, tenant: TenantId, id: SessionId, at: Millis) -> StoreResult<bool> {
        let v = self
            .run(
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
        let v = self
            .run(
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

    async fn retire(&self, req: RetireRequest) -> StoreResult<RetireOutcome> {
        let id = req.old_id;
        let v = self
            .run(
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
        let v = self
            .run(
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
        let v = self
            .run(
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
        let v = self
            .run(&self.scripts.purge, args![ms(now), max.to_string()], None)
            .await?;
        let bad = |id| corrupt("purge reply", id);
        let items = array(&v).ok_or_else(|| bad(None))?;
        let mut out = Vec::with_capacity(items.len());
        for it in items {
            let [t, i, s, c] = array(it).ok_or_else(|| bad(None))? else {
                return Err(bad(None));
            };
            let id = bytes(i)
                .flatten()
                .and_then(|b| codec::parse_id(&b))
                .ok_or_else(|| bad(None))?;
            let tenant = text(t)
                .and_then(|t| TenantId::new(&t).ok())
                .ok_or_else(|| corrupt("tenant", Some(id)))?;
            let expired = match text(c).ok_or_else(|| bad(Some(id)))?.as_str() {
                "" => None,
                "idle" => Some(ExpiryCause::Idle),
                "absolute" => Some(ExpiryCause::Absolute),
                _ => return Err(bad(Some(id))),
            };
            // Other nodes' copies read as expired, or are reread (idle).
            self.forget_here(id);
            out.push(Purged {
                tenant,
                id,
                subject: subject_of(s, Some(id))?,
                expired,
            });
        }
        Ok(out)
    }

    async fn clock_floor(&self) -> StoreResult<Millis> {
        let mut con = self.con.clone();
        let mut cmd = redis::cmd("GET");
        cmd.arg(&self.keys[3]);
        let v = match tokio::time::timeout(self.timeout, cmd.query_async::<Value>(&mut con)).await {
            Err(_) => return Err(unavailable(Timeout)),
            Ok(r) => r.map_err(|e| map_err(e, None))?,
        };
        match v {
            Value::Nil => Ok(Millis::MIN),
            other => int(&other)
                .map(Millis::from_millis)
                .ok_or_else(|| corrupt("clock floor", None)),
        }
    }

    async fn persist_clock_floor(&self, at: Millis) -> StoreResult<()> {
        self.run(&self.scripts.persist_floor, args![ms(at)], None)
            .await?;
        Ok(())
    }
}

fn read_reply(tenant: TenantId, v: &Value) -> StoreResult<Option<SessionRecord>> {
    if matches!(v, Value::Nil) {
        return Ok(None);
    }
    let pair = array(v).ok_or_else(|| corrupt("record", None))?;
    // A dangling pointer (its record purged in between): no session.
    if let [_, Value::Nil] | [_] = pair {
        return Ok(None);
    }
    let rec = id_and_record(v)?;
    Ok((rec.tenant == tenant).then_some(rec))
}

impl StoreAdmin for RedisStore {
    async fn list_subjects(
        &self,
        tenant: TenantId,
        now: Millis,
        after: Option<&Subject>,
        limit: usize,
    ) -> StoreResult<Vec<(Subject, u64)>> {
        let v = self
            .run(
                &self.scripts.list_subjects,
                args![tenant.as_str(), ms(now)],
                None,
            )
            .await?;
        let bad = || corrupt("subject index", None);
        let items = array(&v).ok_or_else(bad)?;
        let mut out = Vec::with_capacity(items.len());
        for it in items {
            let [s, n] = array(it).ok_or_else(bad)? else {
                return Err(bad());
            };
            let s = subject_of(s, None)?.ok_or_else(bad)?;
            let n = u64::try_from(int(n).ok_or_else(bad)?).map_err(|_| bad())?;
            if after.is_none_or(|a| s.as_str().as_bytes() > a.as_str().as_bytes()) {
                out.push((s, n));
            }
        }
        out.sort_unstable_by(|a, b| a.0.as_str().as_bytes().cmp(b.0.as_str().as_bytes()));
        out.truncate(limit);
        Ok(out)
    }

    /// Exact: the counters change in the same script as the records.
    async fn counts(&self, tenant: TenantId) -> StoreResult<Counts> {
        let v = self
            .run(&self.scripts.counts, args![tenant.as_str()], None)
            .await?;
        let bad = || corrupt("counters", None);
        let a = array(&v).ok_or_else(bad)?;
        let get = |i: usize| -> StoreResult<u64> {
            match a.get(i) {
                Some(Value::Nil) => Ok(0),
                Some(x) => u64::try_from(int(x).ok_or_else(bad)?).map_err(|_| bad()),
                None => Err(bad()),
            }
        };
        Ok(Counts {
            active: get(0)?,
            anonymous: get(1)?,
            subjects: get(2)?,
            approximate: false,
        })
    }
}
