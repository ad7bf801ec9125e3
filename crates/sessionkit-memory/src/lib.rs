//! [`MemoryStore`]: the reference store, and the in-memory index that the
//! durable stores build on.
//!
//! Records live in 64 shards chosen by token hash; each shard packs its
//! records as runs of bytes in an arena and has its own token index, so a
//! validation takes one uncontended read lock, one index line and one
//! read of ~200 contiguous bytes (see `shard`, `record_codec` and `arena`). Writes are
//! serialised by one writer lock that also guards the id index, the
//! per-subject index (a multimap) and the expiry wheel; each write is
//! atomic with respect to every reader of the shard it changes, who sees a
//! record before or after a write, never half of it. Purging visits only
//! the expiry buckets that are due, so it costs what expires, not what
//! lives.
//!
//! ```
//! use sessionkit_memory::MemoryStore;
//! let store = MemoryStore::new();
//! assert_eq!(store.len(), 0);
//! ```

mod arena;
mod client_bytes;
mod expiry;
mod line_table;
#[cfg(test)]
mod model_tests;
mod ops;
mod record_codec;
mod shard;
mod subjects;

use hashbrown::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use self::expiry::ExpiryWheel;
use self::line_table::LineTable;
use self::record_codec::Slot;
use self::shard::{Loc, Removed, SHARDS, Shard, shard_of};
use sessionkit_core::ids::{SessionId, Subject, TenantId};
use sessionkit_core::policy::OnSessionLimit;
use sessionkit_core::record::{RevokeReason, SessionRecord, SessionState};
use sessionkit_core::store::{
    Capacity, Change, Counts, CreateOutcome, GrantSwap, GrantSwapRequest, Limits, ListCursor,
    Purged, RefreshOutcome, RefreshRequest, RetireOutcome, RetireRequest, RevokeOutcome,
    RevokeSubjectOutcome, SessionStore, StoreAdmin, StoreError, StoreResult, UpdateOutcome,
};
use sessionkit_core::time::Millis;
use sessionkit_core::token::TokenHash;

#[derive(Default, Clone, Copy)]
struct TenantCounts {
    active: u64,
    anonymous: u64,
    subjects: u64,
}

/// State only writers change, behind the one writer lock.
struct Writer {
    /// Every record by id.
    ids: LineTable<Loc>,
    /// Every active session with a subject, per tenant (so that one
    /// tenant's listing never walks another's), by (tenant, subject): a
    /// multimap, one entry per session.
    subjects: subjects::PerTenant,
    /// Hashes ids and subjects for the two indexes; seeded per store
    /// (subjects come from users: no fixed hash).
    hasher: hashbrown::DefaultHashBuilder,
    expiry: ExpiryWheel,
    counts: HashMap<TenantId, TenantCounts>,
    /// The successor each upgraded tombstone was retired for, so that a
    /// retry of the same retire finds it done. Dropped with the record.
    successors: HashMap<SessionId, SessionId>,
}

struct Inner {
    shards: Box<[RwLock<Shard>]>,
    writer: Mutex<Writer>,
    floor: AtomicI64,
}

/// The in-memory reference store. Clones share the same data.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("records", &self.len())
            .finish()
    }
}

// A poisoned lock means a panic happened while it was held. Every write
// below leaves the structures consistent at each step that can fail, so we
// keep serving rather than turn one bug into an outage.
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}
fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
/// The hash of an index entry, recomputed from its record (`hash_of`)
/// when an index of `Loc`s grows. Read guards on every shard are taken on
/// the first call, once for all entries, and only if the index grows.
fn rehash<'s>(
    shards: &'s [RwLock<Shard>],
    hash_of: impl Fn(&Shard, &Slot<'_>) -> u64 + 's,
) -> impl Fn(Loc) -> u64 + 's {
    let all: std::cell::OnceCell<Vec<RwLockReadGuard<'s, Shard>>> = std::cell::OnceCell::new();
    move |l| {
        let shard = &all.get_or_init(|| shards.iter().map(read).collect())[l.shard()];
        shard.slot(l).map_or(0, |s| hash_of(shard, &s))
    }
}
fn lock<T>(l: &Mutex<T>) -> MutexGuard<'_, T> {
    l.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        MemoryStore {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
                writer: Mutex::new(Writer {
                    ids: LineTable::default(),
                    subjects: subjects::PerTenant::default(),
                    hasher: hashbrown::DefaultHashBuilder::default(),
                    expiry: ExpiryWheel::default(),
                    counts: HashMap::default(),
                    successors: HashMap::default(),
                }),
                floor: AtomicI64::new(i64::MIN),
            }),
        }
    }

    /// Number of records held (active and tombstones).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| read(s).len()).sum()
    }

    /// Whether the store holds no record.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Loads a record as it was persisted (used by durable stores to
    /// rebuild their index on open). Replaces any record with that id.
    ///
    /// # Errors
    /// [`Capacity`] if the record could not be placed (its shard is full or
    /// names 65,535 tenants already, or its version is past
    /// [`MemoryStore::MAX_VERSION`](SessionStore::MAX_VERSION)): the caller
    /// must treat the index as incomplete.
    pub fn load(&self, rec: SessionRecord) -> Result<(), Capacity> {
        // Refused before the record it replaces goes.
        if rec.version > shard::MAX_VERSION {
            return Err(Capacity::Version);
        }
        self.exclusive(|t| {
            // A reload (a rollback, or a reconcile with the file after a
            // failed commit that reached it) keeps the successor a retire
            // noted, so that the engine's retry of that retire finds it
            // done once the file's tombstone is back.
            let id = rec.id;
            let successor = t.w.successors.get(&id).copied();
            t.remove_id(id);
            t.insert(rec)?;
            if let Some(s) = successor {
                t.w.successors.insert(id, s);
            }
            Ok(())
        })
    }

    /// Removes a record and its index entries (used by durable stores to
    /// roll back a batch that failed to persist). Returns whether it existed.
    pub fn remove(&self, id: SessionId) -> bool {
        self.exclusive(|t| t.remove_id(id))
    }

    /// Raises the persisted clock floor to at least `t`.
    pub fn raise_floor(&self, t: Millis) {
        self.inner.floor.fetch_max(t.as_millis(), Ordering::AcqRel);
    }

    /// The clock floor: the highest time any write carried (or
    /// [`MemoryStore::raise_floor`] set).
    #[must_use]
    pub fn floor(&self) -> Millis {
        Millis::from_millis(self.inner.floor.load(Ordering::Acquire))
    }

    /// Runs `f` under the writer lock: one synchronous transaction, atomic
    /// with respect to every other write. Readers are not blocked.
    pub fn exclusive<R>(&self, f: impl FnOnce(&mut WriteTxn<'_>) -> R) -> R {
        self.run(false, f).0
    }

    /// Like [`MemoryStore::exclusive`], and also returns the [`Journal`]:
    /// each record the transaction changed, once, with its image before
    /// the transaction. A durable store persists the changed records and,
    /// if that fails, puts the images back.
    pub fn exclusive_journaled<R>(&self, f: impl FnOnce(&mut WriteTxn<'_>) -> R) -> (R, Journal) {
        self.run(true, f)
    }

    fn run<R>(&self, journaled: bool, f: impl FnOnce(&mut WriteTxn<'_>) -> R) -> (R, Journal) {
        let mut w = lock(&self.inner.writer);
        let mut txn = WriteTxn {
            shards: &self.inner.shards,
            floor: &self.inner.floor,
            w: &mut w,
            journal: journaled.then(Vec::new),
            journaled: hashbrown::HashSet::new(),
        };
        let out = f(&mut txn);
        (out, txn.journal.unwrap_or_default())
    }
}

/// What a record was before a transaction changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Before {
    /// It did not exist.
    Absent,
    /// It was this.
    Record(SessionRecord),
    /// It existed but did not decode (the durable store must reread it from
    /// its own copy).
    Unreadable,
}

/// The records a transaction changed, each once, in the order first
/// changed, with what each was before (see
/// [`MemoryStore::exclusive_journaled`]).
pub type Journal = Vec<(SessionId, Before)>;

/// Access to a [`MemoryStore`] under its writer lock (see
/// [`MemoryStore::exclusive`]): each method decides and applies one
/// operation exactly as the [`SessionStore`] method of the same name, so a
/// durable store can run it, persist the outcome, and only then answer.
pub struct WriteTxn<'a> {
    shards: &'a [RwLock<Shard>],
    floor: &'a AtomicI64,
    w: &'a mut Writer,
    journal: Option<Journal>,
    /// The ids in `journal`, so that noting one is O(1).
    journaled: hashbrown::HashSet<SessionId>,
}

impl WriteTxn<'_> {
    // ---- slot access (the writer holds no shard lock between calls) ----

    fn with<R>(&self, loc: Loc, f: impl FnOnce(&Shard, &Slot<'_>) -> R) -> Option<R> {
        let shard = read(&self.shards[loc.shard()]);
        let slot = shard.slot(loc)?;
        Some(f(&shard, &slot))
    }

    fn with_shard_mut<R>(&self, loc: Loc, f: impl FnOnce(&mut Shard) -> R) -> R {
        f(&mut write(&self.shards[loc.shard()]))
    }

    fn id_hash(&self, id: SessionId) -> u64 {
        self.w.hasher.hash_one(id)
    }

    fn loc_of(&self, id: SessionId) -> Option<Loc> {
        let shards = self.shards;
        self.w.ids.find(self.id_hash(id), |loc| {
            read(&shards[loc.shard()])
                .slot(loc)
                .is_some_and(|s| s.id() == id)
        })
    }

    /// The record with this id (any tenant), read under the writer lock.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if it does not decode.
    pub fn get(&self, id: SessionId) -> StoreResult<Option<SessionRecord>> {
        let Some(loc) = self.loc_of(id) else {
            return Ok(None);
        };
        self.record_at(loc)
    }

    fn record_at(&self, loc: Loc) -> StoreResult<Option<SessionRecord>> {
        self.with(loc, |shard, s| shard.to_record(s))
            .transpose()
            .map_err(StoreError::from)
    }

    /// The tenant of the record at `loc`; `None` if there is none or its
    /// tenant does not decode (it then matches no tenant).
    fn tenant_of(&self, loc: Loc) -> Option<TenantId> {
        self.with(loc, |shard, s| shard.tenant_of(s)).flatten()
    }

    /// Notes the image of the record at `loc` before its first change in a
    /// journaled transaction.
    fn journal_loc(&mut self, loc: Loc) {
        if self.journal.is_none() {
            return;
        }
        let Some((id, image)) = self.with(loc, |shard, s| {
            (
                s.id(),
                shard
                    .to_record(s)
                    .map_or(Before::Unreadable, Before::Record),
            )
        }) else {
            return;
        };
        self.journal_entry(id, image);
    }

    fn journal_entry(&mut self, id: SessionId, image: Before) {
        if let Some(j) = &mut self.journal
            && self.journaled.insert(id)
        {
            j.push((id, image));
        }
    }

    fn note_now(&self, now: Millis) {
        self.floor.fetch_max(now.as_millis(), Ordering::AcqRel);
    }

    // ---- insert / remove / tombstone ----

    /// Inserts a record whose id and token hash are new; nothing changes
    /// if its shard has no room.
    fn insert(&mut self, rec: SessionRecord) -> Result<(), Capacity> {
        let tenant = rec.tenant;
        let id = rec.id;
        let purge_at = rec.purge_at();
        let active = rec.state == SessionState::Active;
        let shard = shard_of(&rec.token_hash);
        let loc = write(&self.shards[shard]).insert(shard, &rec)?;
        self.journal_entry(id, Before::Absent);
        let h = self.id_hash(id);
        let w = &mut *self.w;
        let hasher = &w.hasher;
        w.ids
            .insert(h, loc, rehash(self.shards, |_, s| hasher.hash_one(s.id())));
        self.w.expiry.insert(purge_at, loc);
        if active {
            let c = self.counts(tenant);
            c.active += 1;
            match &rec.subject {
                Some(s) => self.link_subject(loc, tenant, s.as_str().as_bytes()),
                None => self.counts(tenant).anonymous += 1,
            }
        }
        Ok(())
    }

    fn forget_active(&mut self, loc: Loc, tenant: TenantId, anonymous: bool) {
        let c = self.counts(tenant);
        c.active = c.active.saturating_sub(1);
        if anonymous {
            c.anonymous = c.anonymous.saturating_sub(1);
        } else {
            self.unlink_subject(loc);
        }
    }

    /// Removes the record at `loc` and its index entries. Its tenant is
    /// `None` when it did not decode.
    fn remove_loc(&mut self, loc: Loc) -> Option<(Option<TenantId>, Removed)> {
        let (tenant, active, anonymous, id) = self.with(loc, |shard, s| {
            (
                shard.tenant_of(s),
                s.is_active(),
                s.subject_bytes().is_none(),
                s.id(),
            )
        })?;
        self.journal_loc(loc);
        match tenant {
            Some(tenant) if active => self.forget_active(loc, tenant, anonymous),
            // Its tenant does not decode, so its subject's entry cannot be
            // found by hash: walk the index once (corruption only).
            None if active && !anonymous => self.unlink_subject_anywhere(loc),
            _ => {}
        }
        let h = self.id_hash(id);
        self.w.ids.remove(h, loc);
        self.w.successors.remove(&id);
        let removed = write(&self.shards[loc.shard()]).remove(loc)?;
        Some((tenant, removed))
    }

    /// Removes the record with this id, if any; returns whether it existed.
    fn remove_id(&mut self, id: SessionId) -> bool {
        match self.loc_of(id) {
            Some(loc) => self.remove_loc(loc).is_some(),
            None => false,
        }
    }

    /// Tombstones an active record; returns its subject, or `None` if it is
    /// not active. A record that does not decode cannot be rewritten as a
    /// tombstone: it is removed instead (fail closed), and reported with no
    /// subject.
    fn tombstone(
        &mut self,
        loc: Loc,
        reason: RevokeReason,
        now: Millis,
    ) -> Option<Option<Subject>> {
        let (tenant, subject, anonymous) = self
            .with(loc, |shard, s| {
                s.is_active()
                    .then(|| (shard.tenant_of(s), s.subject(), s.subject_bytes().is_none()))
            })
            .flatten()?;
        let decodes = self.with(loc, |shard, s| shard.to_record(s).is_ok()) == Some(true);
        let (Some(tenant), Ok(subject), true) = (tenant, subject, decodes) else {
            // Removed while still active, so its counts and index entries
            // go exactly once.
            self.remove_loc(loc);
            return Some(None);
        };
        self.journal_loc(loc);
        // Unlink while the slot is still active and has its subject.
        self.forget_active(loc, tenant, anonymous);
        // Its purge time moves later (to the absolute deadline): the wheel
        // refiles the entry when the old time comes (see `expiry`).
        if !self.with_shard_mut(loc, |shard| shard.make_tombstone(loc, reason, now)) {
            self.remove_loc(loc);
            return Some(None);
        }
        Some(subject)
    }

    /// Whether `rec`'s id or token hash is taken. The create's other cache
    /// misses start first, together: the id's line in the id index and the
    /// subject's group in the subject index are read before the token
    /// lookup takes its shard's lock (a locked instruction, which waits for
    /// the reads before it), so at 1M sessions the three misses overlap
    /// instead of coming one after another.
    fn exists(&self, rec: &SessionRecord) -> bool {
        self.w.ids.warm(self.id_hash(rec.id));
        if let Some(s) = &rec.subject {
            self.warm_subject(rec.tenant, s.as_str().as_bytes());
        }
        read(&self.shards[shard_of(&rec.token_hash)])
            .find_token(&rec.token_hash)
            .is_some()
            || self.loc_of(rec.id).is_some()
    }

    /// Applies the caps for a new session of `rec`'s subject
    /// (`limits.replaces` is neither counted nor evicted). Returns the
    /// sessions to evict, or the refusal.
    fn check_caps(
        &self,
        rec: &SessionRecord,
        limits: Limits,
        now: Millis,
    ) -> Result<Vec<Loc>, CreateOutcome> {
        let ignoring = limits.replaces.and_then(|id| self.loc_of(id));
        match &rec.subject {
            None => {
                if let Some(max) = limits.anonymous {
                    let n = self.w.counts.get(&rec.tenant).map_or(0, |c| c.anonymous);
                    if n >= max {
                        return Err(CreateOutcome::AnonymousLimitReached);
                    }
                }
                Ok(Vec::new())
            }
            Some(subject) => {
                let Some((max, on_limit)) = limits.per_subject else {
                    return Ok(Vec::new());
                };
                let mut live: Vec<(Millis, SessionId, Loc)> = self
                    .subject_locs(rec.tenant, subject.as_str().as_bytes())
                    .into_iter()
                    .filter(|l| Some(*l) != ignoring)
                    .filter_map(|l| {
                        self.with(l, |_, s| {
                            s.is_live(now).then(|| (s.last_seen_at(), s.id(), l))
                        })
                        .flatten()
                    })
                    .collect();
                let max = usize::try_from(max).unwrap_or(usize::MAX);
                if live.len() < max {
                    return Ok(Vec::new());
                }
                if on_limit == OnSessionLimit::Refuse {
                    return Err(CreateOutcome::SubjectLimitReached);
                }
                live.sort_unstable();
                let excess = live.len() + 1 - max;
                Ok(live.into_iter().take(excess).map(|(_, _, l)| l).collect())
            }
        }
    }

    fn ids_of(&self, locs: &[Loc]) -> Vec<SessionId> {
        locs.iter()
            .filter_map(|l| self.with(*l, |_, s| s.id()))
            .collect()
    }
}

impl SessionStore for MemoryStore {
    /// Versions are kept in 32 bits.
    const MAX_VERSION: u64 = shard::MAX_VERSION;

    async fn create(
        &self,
        rec: SessionRecord,
        limits: Limits,
        now: Millis,
    ) -> StoreResult<CreateOutcome> {
        self.exclusive(|t| t.create(rec, limits, now))
    }

    async fn get_by_token(
        &self,
        tenant: TenantId,
        hash: &TokenHash,
    ) -> StoreResult<Option<SessionRecord>> {
        let shard_ix = shard_of(hash);
        let shard = read(&self.inner.shards[shard_ix]);
        shard
            .find_token(hash)
            .filter(|s| shard.tenant_of(s) == Some(tenant))
            .map(|s| shard.to_record(&s))
            .transpose()
            .map_err(StoreError::from)
    }

    async fn get_by_id(
        &self,
        tenant: TenantId,
        id: SessionId,
    ) -> StoreResult<Option<SessionRecord>> {
        Ok(self
            .exclusive(|t| t.get(id))?
            .filter(|r| r.tenant == tenant))
    }

    async fn touch(&self, tenant: TenantId, id: SessionId, at: Millis) -> StoreResult<bool> {
        Ok(self.exclusive(|t| t.touch(tenant, id, at)))
    }

    async fn update(
        &self,
        tenant: TenantId,
        id: SessionId,
        expected_version: u64,
        change: Change,
        now: Millis,
    ) -> StoreResult<UpdateOutcome> {
        self.exclusive(|t| t.update(tenant, id, expected_version, change, now))
    }

    async fn retire(&self, req: RetireRequest) -> StoreResult<RetireOutcome> {
        Ok(self.exclusive(|t| t.retire(req)))
    }

    async fn refresh(&self, req: RefreshRequest) -> StoreResult<RefreshOutcome> {
        self.exclusive(|t| t.refresh(req))
    }

    async fn swap_grants(&self, req: GrantSwapRequest) -> StoreResult<GrantSwap> {
        self.exclusive(|t| t.swap_grants(req))
    }

    async fn revoke(
        &self,
        tenant: TenantId,
        id: SessionId,
        reason: RevokeReason,
        now: Millis,
    ) -> StoreResult<RevokeOutcome> {
        Ok(self.exclusive(|t| t.revoke(tenant, id, reason, now)))
    }

    async fn revoke_subject(
        &self,
        tenant: TenantId,
        subject: &Subject,
        except: Option<SessionId>,
        reason: RevokeReason,
        now: Millis,
    ) -> StoreResult<RevokeSubjectOutcome> {
        Ok(self.exclusive(|t| t.revoke_subject(tenant, subject, except, reason, now)))
    }

    async fn list_subject(
        &self,
        tenant: TenantId,
        subject: &Subject,
        now: Millis,
        after: Option<ListCursor>,
        limit: usize,
    ) -> StoreResult<Vec<SessionRecord>> {
        self.exclusive(|t| t.list_subject(tenant, subject, now, after, limit))
    }

    async fn purge_expired(&self, now: Millis, max: usize) -> StoreResult<Vec<Purged>> {
        // In chunks, each under its own hold of the lock and with a yield
        // between them: a validate's touch never waits for a whole batch.
        let mut out = Vec::new();
        while out.len() < max {
            let want = (max - out.len()).min(PURGE_CHUNK);
            let got = self.exclusive(|t| t.purge_expired(now, want));
            let done = got.len() < want;
            out.extend(got);
            if done {
                break;
            }
            sessionkit_core::time::yield_now().await;
        }
        Ok(out)
    }

    async fn clock_floor(&self) -> StoreResult<Millis> {
        Ok(self.floor())
    }

    async fn persist_clock_floor(&self, at: Millis) -> StoreResult<()> {
        self.raise_floor(at);
        Ok(())
    }
}

/// Most records one hold of the store's lock purges (about a millisecond).
pub const PURGE_CHUNK: usize = 1_000;

impl StoreAdmin for MemoryStore {
    /// Walks the tenant's own sessions with a subject (never another
    /// tenant's: an empty tenant answers at once). Exact: only subjects
    /// with a session live at `now`.
    async fn list_subjects(
        &self,
        tenant: TenantId,
        now: Millis,
        after: Option<&Subject>,
        limit: usize,
    ) -> StoreResult<Vec<(Subject, u64)>> {
        Ok(self.exclusive(|t| t.list_subjects(tenant, now, after, limit)))
    }

    /// Exact.
    async fn counts(&self, tenant: TenantId) -> StoreResult<Counts> {
        Ok(self.exclusive(|t| t.counts_of(tenant)))
    }
}

#[cfg(test)]
mod purge_chunk_tests {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use sessionkit_core::time::DurationMs;
    use sessionkit_core::{Attributes, ClientInfo, SessionState, TokenHash};

    fn expired(i: u32) -> SessionRecord {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(&i.to_be_bytes());
        let at = Millis::from_millis(1_000);
        SessionRecord {
            tenant: TenantId::DEFAULT,
            id: SessionId::generate(),
            token_hash: TokenHash::from_bytes(h),
            subject: None,
            created_at: at,
            last_seen_at: at,
            idle_timeout: DurationMs::from_millis(10),
            expires_at: Millis::from_millis(1_000_000),
            auth_time: None,
            attributes: Attributes::empty(),
            client: ClientInfo::default(),
            version: 1,
            state: SessionState::Active,
            refresh: None,
            assurance: None,
            grants: None,
        }
    }

    /// A large purge lets other work in between its chunks: its first
    /// poll removes one chunk and yields, so a touch waiting on the same
    /// lock goes through before the purge has ended.
    #[test]
    fn a_large_purge_yields_between_chunks() {
        let store = MemoryStore::new();
        let n = u32::try_from(PURGE_CHUNK * 2 + 500).unwrap();
        for i in 0..n {
            store.load(expired(i)).unwrap();
        }
        let mut cx = Context::from_waker(Waker::noop());
        let now = Millis::from_millis(500_000);
        let mut purge = std::pin::pin!(store.purge_expired(now, usize::MAX));
        assert!(
            purge.as_mut().poll(&mut cx).is_pending(),
            "yields after one chunk"
        );
        let left = store.exclusive(|t| t.counts_of(TenantId::DEFAULT)).active;
        assert_eq!(left, u64::from(n) - PURGE_CHUNK as u64);
        let done = loop {
            if let Poll::Ready(r) = purge.as_mut().poll(&mut cx) {
                break r.unwrap();
            }
        };
        assert_eq!(done.len(), n as usize);
    }
}
