//! [`MemoryStore`]: the reference store, and the in-memory index that the
//! durable stores build on.
//!
//! Records live in 64 shards chosen by token hash; each shard packs its
//! records as runs of bytes in an arena and has its own token index, so a
//! validation takes one uncontended read lock, one index line and one
//! read of ~200 contiguous bytes (see `slab` and `arena`). Writes are
//! serialised by one writer lock that also guards the id index, the
//! per-subject index (a multimap) and the expiry wheel; each write is
//! atomic with respect to every reader of the shard it changes, who sees a
//! record before or after a write, never half of it. Purging visits only
//! the expiry buckets that are due, so it costs what expires, not what
//! lives.
//!
//! ```
//! use sessionkit_core::store::memory::MemoryStore;
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
mod slab;
mod subjects;

use hashbrown::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hashbrown::HashTable;

use self::expiry::ExpiryWheel;
use self::line_table::LineTable;
use self::slab::{Loc, Removed, SHARDS, Shard, Slot, shard_of};
use crate::ids::{SessionId, Subject, TenantId};
use crate::policy::OnSessionLimit;
use crate::record::{RevokeReason, SessionRecord, SessionState};
use crate::store::{
    Change, Counts, CreateOutcome, Limits, ListCursor, Purged, RevokeOutcome, RevokeSubjectOutcome,
    SessionStore, StoreResult, UpdateOutcome, UpgradeOutcome, UpgradeRequest,
};
use crate::time::Millis;
use crate::token::TokenHash;

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
    /// Every active session with a subject, by (tenant, subject): a
    /// multimap, one entry per session.
    subjects: HashTable<Loc>,
    /// Hashes ids and subjects for the two indexes; seeded per store
    /// (subjects come from users: no fixed hash).
    hasher: hashbrown::DefaultHashBuilder,
    expiry: ExpiryWheel,
    counts: HashMap<TenantId, TenantCounts>,
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
                    subjects: HashTable::new(),
                    hasher: hashbrown::DefaultHashBuilder::default(),
                    expiry: ExpiryWheel::default(),
                    counts: HashMap::default(),
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
    /// Returns `false` if the record could not be placed (its shard is full
    /// or names 65,535 tenants already): the caller must treat the index as
    /// incomplete.
    pub fn load(&self, rec: SessionRecord) -> bool {
        self.exclusive(|t| {
            t.remove_id(rec.id);
            t.insert(rec)
        })
    }

    /// Removes a record and its index entries (used by durable stores to
    /// roll back a batch that failed to persist). Returns whether it existed.
    pub fn remove(&self, id: SessionId) -> bool {
        self.exclusive(|t| t.remove_id(id).is_some())
    }

    /// Raises the persisted clock floor to at least `t`.
    pub fn raise_floor(&self, t: Millis) {
        self.inner.floor.fetch_max(t.as_millis(), Ordering::AcqRel);
    }

    /// Runs `f` under the writer lock, so that a durable store can decide,
    /// persist and apply one operation atomically with respect to every
    /// other write. Readers are not blocked.
    pub fn exclusive<R>(&self, f: impl FnOnce(&mut WriteTxn<'_>) -> R) -> R {
        let mut w = lock(&self.inner.writer);
        let mut txn = WriteTxn {
            shards: &self.inner.shards,
            floor: &self.inner.floor,
            w: &mut w,
        };
        f(&mut txn)
    }
}

/// Access to a [`MemoryStore`] under its writer lock (see
/// [`MemoryStore::exclusive`]): each method decides and applies one
/// operation exactly as the [`SessionStore`] method of the same name, so a
/// durable store can run it, persist the outcome, and only then answer.
pub struct WriteTxn<'a> {
    shards: &'a [RwLock<Shard>],
    floor: &'a AtomicI64,
    w: &'a mut Writer,
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
    #[must_use]
    pub fn get(&self, id: SessionId) -> Option<SessionRecord> {
        let loc = self.loc_of(id)?;
        self.with(loc, |shard, s| shard.to_record(s))
    }

    fn tenant_of(&self, loc: Loc) -> Option<TenantId> {
        self.with(loc, |shard, s| shard.tenant_of(s))
    }

    fn note_now(&self, now: Millis) {
        self.floor.fetch_max(now.as_millis(), Ordering::AcqRel);
    }

    // ---- insert / remove / tombstone ----

    /// Inserts a record whose id and token hash are new. `false` if its
    /// shard is full (the caller reports a duplicate, and the engine draws
    /// another token).
    fn insert(&mut self, rec: SessionRecord) -> bool {
        let tenant = rec.tenant;
        let id = rec.id;
        let purge_at = rec.purge_at();
        let active = rec.state == SessionState::Active;
        let shard = shard_of(&rec.token_hash);
        let Some(loc) = write(&self.shards[shard]).insert(shard, &rec) else {
            return false;
        };
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
        true
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

    fn remove_loc(&mut self, loc: Loc) -> Option<(TenantId, Removed)> {
        let (tenant, active, anonymous, id) = self.with(loc, |shard, s| {
            (
                shard.tenant_of(s),
                s.is_active(),
                s.subject_bytes().is_none(),
                s.id(),
            )
        })?;
        if active {
            self.forget_active(loc, tenant, anonymous);
        }
        let h = self.id_hash(id);
        self.w.ids.remove(h, loc);
        let removed = write(&self.shards[loc.shard()]).remove(loc)?;
        Some((tenant, removed))
    }

    fn remove_id(&mut self, id: SessionId) -> Option<SessionRecord> {
        let loc = self.loc_of(id)?;
        let rec = self.with(loc, |shard, s| shard.to_record(s))?;
        self.remove_loc(loc);
        Some(rec)
    }

    /// Tombstones an active record; returns its subject, or `None` if it is
    /// not active.
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
        // Unlink while the slot is still active and has its subject.
        self.forget_active(loc, tenant, anonymous);
        // Its purge time moves later (to the absolute deadline): the wheel
        // refiles the entry when the old time comes (see `expiry`).
        self.with_shard_mut(loc, |shard| shard.make_tombstone(loc, reason, now));
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

    /// Applies the caps for a new session of `rec`'s subject. `ignoring` is
    /// a session the same write revokes (upgrade). Returns the sessions to
    /// evict, or the refusal.
    fn check_caps(
        &self,
        rec: &SessionRecord,
        limits: Limits,
        ignoring: Option<Loc>,
        now: Millis,
    ) -> Result<Vec<Loc>, CreateOutcome> {
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
    async fn create(
        &self,
        rec: SessionRecord,
        limits: Limits,
        now: Millis,
    ) -> StoreResult<CreateOutcome> {
        Ok(self.exclusive(|t| t.create(rec, limits, now)))
    }

    async fn get_by_token(
        &self,
        tenant: TenantId,
        hash: &TokenHash,
    ) -> StoreResult<Option<SessionRecord>> {
        let shard_ix = shard_of(hash);
        let shard = read(&self.inner.shards[shard_ix]);
        Ok(shard
            .find_token(hash)
            .filter(|s| shard.tenant_of(s) == tenant)
            .map(|s| shard.to_record(&s)))
    }

    async fn get_by_id(
        &self,
        tenant: TenantId,
        id: SessionId,
    ) -> StoreResult<Option<SessionRecord>> {
        Ok(self.exclusive(|t| t.get(id)).filter(|r| r.tenant == tenant))
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
        Ok(self.exclusive(|t| t.update(tenant, id, expected_version, change, now)))
    }

    async fn upgrade(&self, req: UpgradeRequest) -> StoreResult<UpgradeOutcome> {
        Ok(self.exclusive(|t| t.upgrade(req)))
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
        let mut recs: Vec<SessionRecord> = self.exclusive(|t| {
            t.subject_locs(tenant, subject.as_str().as_bytes())
                .into_iter()
                .filter_map(|l| {
                    t.with(l, |shard, s| s.is_live(now).then(|| shard.to_record(s)))
                        .flatten()
                })
                .collect()
        });
        recs.retain(|r| after.is_none_or(|c| c.precedes(r)));
        recs.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        recs.truncate(limit);
        Ok(recs)
    }

    /// Visits every subject of every tenant: a page costs the number of
    /// subjects, not the page size (an operator's view, not a hot path).
    async fn list_subjects(
        &self,
        tenant: TenantId,
        now: Millis,
        after: Option<&Subject>,
        limit: usize,
    ) -> StoreResult<Vec<(Subject, u64)>> {
        let mut out = self.exclusive(|t| t.subjects_with_live(tenant, now, after));
        out.sort_unstable_by(|a, b| a.0.as_str().as_bytes().cmp(b.0.as_str().as_bytes()));
        out.truncate(limit);
        Ok(out)
    }

    async fn purge_expired(&self, now: Millis, max: usize) -> StoreResult<Vec<Purged>> {
        Ok(self.exclusive(|t| t.purge_expired(now, max)))
    }

    async fn counts(&self, tenant: TenantId) -> StoreResult<Counts> {
        let c = self.exclusive(|t| t.w.counts.get(&tenant).copied().unwrap_or_default());
        Ok(Counts {
            active: c.active,
            anonymous: c.anonymous,
            subjects: c.subjects,
            approximate: false,
        })
    }

    async fn clock_floor(&self) -> StoreResult<Millis> {
        Ok(Millis::from_millis(
            self.inner.floor.load(Ordering::Acquire),
        ))
    }

    async fn persist_clock_floor(&self, at: Millis) -> StoreResult<()> {
        self.raise_floor(at);
        Ok(())
    }
}
