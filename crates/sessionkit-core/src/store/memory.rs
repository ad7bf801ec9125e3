//! [`MemoryStore`]: the reference store, and the in-memory index that the
//! durable stores build on.
//!
//! Records live in shards keyed by session id, with a sharded token-hash
//! index beside them, so that a validation takes two uncontended read locks
//! and two hash lookups. Writes are serialised by one writer lock that also
//! guards the per-subject index and the expiry index; each write is atomic
//! with respect to every reader (a reader sees a record before or after a
//! write, never half of it). The expiry index is ordered by each record's
//! purge time, so a purge costs what expires, not what lives.
//!
//! ```
//! use sessionkit_core::store::memory::MemoryStore;
//! let store = MemoryStore::new();
//! assert_eq!(store.len(), 0);
//! ```

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::attributes::Attributes;
use crate::client::ClientInfo;
use crate::ids::{SessionId, Subject, TenantId};
use crate::policy::OnSessionLimit;
use crate::record::{Liveness, RevokeReason, SessionRecord, SessionState};
use crate::store::{
    Change, Counts, CreateOutcome, Limits, ListCursor, Purged, RevokeOutcome, RevokeSubjectOutcome,
    SessionStore, StoreResult, UpdateOutcome, UpgradeOutcome, UpgradeRequest,
};
use crate::time::{DurationMs, Millis};
use crate::token::TokenHash;

const SHARDS: usize = 64;

/// Hashes keys that are already uniformly random (token hashes, the random
/// tail of a UUID v7) by taking their last 8 bytes: no hashing work at all.
#[derive(Default)]
struct RandomTailHasher(u64);

impl Hasher for RandomTailHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut tail = [0u8; 8];
        let n = bytes.len().min(8);
        tail[..n].copy_from_slice(&bytes[bytes.len() - n..]);
        self.0 = (self.0 ^ u64::from_le_bytes(tail)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_usize(&mut self, _len: usize) {}
}

type Fast = BuildHasherDefault<RandomTailHasher>;

fn shard_of_id(id: &SessionId) -> usize {
    usize::from(id.as_bytes()[15]) % SHARDS
}

fn shard_of_token(h: &TokenHash) -> usize {
    usize::from(h.as_bytes()[0]) % SHARDS
}

/// A record as the memory store keeps it: client info boxed (most sessions
/// carry little), the rest inline.
#[derive(Debug, Clone)]
struct Slot {
    tenant: TenantId,
    token_hash: TokenHash,
    subject: Option<Subject>,
    created_at: Millis,
    last_seen_at: Millis,
    idle_timeout: DurationMs,
    expires_at: Millis,
    auth_time: Option<Millis>,
    attributes: Attributes,
    client: Option<Box<ClientInfo>>,
    version: u64,
    state: SessionState,
}

impl Slot {
    fn from_record(r: SessionRecord) -> (SessionId, Slot) {
        let client = (!r.client.is_empty()).then(|| Box::new(r.client));
        (
            r.id,
            Slot {
                tenant: r.tenant,
                token_hash: r.token_hash,
                subject: r.subject,
                created_at: r.created_at,
                last_seen_at: r.last_seen_at,
                idle_timeout: r.idle_timeout,
                expires_at: r.expires_at,
                auth_time: r.auth_time,
                attributes: r.attributes,
                client,
                version: r.version,
                state: r.state,
            },
        )
    }

    fn to_record(&self, id: SessionId) -> SessionRecord {
        SessionRecord {
            tenant: self.tenant,
            id,
            token_hash: self.token_hash,
            subject: self.subject.clone(),
            created_at: self.created_at,
            last_seen_at: self.last_seen_at,
            idle_timeout: self.idle_timeout,
            expires_at: self.expires_at,
            auth_time: self.auth_time,
            attributes: self.attributes.clone(),
            client: self.client.as_deref().cloned().unwrap_or_default(),
            version: self.version,
            state: self.state,
        }
    }

    fn idle_expires_at(&self) -> Millis {
        self.last_seen_at
            .saturating_add(self.idle_timeout)
            .min(self.expires_at)
    }

    fn purge_at(&self) -> Millis {
        match self.state {
            SessionState::Active => self.idle_expires_at(),
            SessionState::Revoked { .. } => self.expires_at,
        }
    }

    fn is_live(&self, now: Millis) -> bool {
        self.state == SessionState::Active && now < self.expires_at && now < self.idle_expires_at()
    }

    fn liveness(&self, now: Millis) -> Liveness {
        // One definition of liveness: the record's.
        let probe = SessionRecord {
            tenant: self.tenant,
            id: SessionId::from_bytes([0; 16]),
            token_hash: self.token_hash,
            subject: None,
            created_at: self.created_at,
            last_seen_at: self.last_seen_at,
            idle_timeout: self.idle_timeout,
            expires_at: self.expires_at,
            auth_time: None,
            attributes: Attributes::empty(),
            client: ClientInfo::default(),
            version: self.version,
            state: self.state,
        };
        probe.liveness(now)
    }
}

#[derive(Default)]
struct TenantCounts {
    active: u64,
    anonymous: u64,
}

/// State only writers touch, behind the one writer lock.
#[derive(Default)]
struct Writer {
    /// Active (not revoked) sessions of each subject.
    subjects: HashMap<(TenantId, Subject), Vec<SessionId>>,
    /// Every record by purge time.
    expiry: BTreeSet<(Millis, SessionId)>,
    counts: HashMap<TenantId, TenantCounts>,
}

struct Inner {
    records: Box<[RwLock<HashMap<SessionId, Slot, Fast>>]>,
    tokens: Box<[RwLock<HashMap<TokenHash, SessionId, Fast>>]>,
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

// A poisoned lock means a panic happened while it was held; the data it
// guards is still structurally sound (every write below is applied in an
// order that keeps the indexes consistent), so we keep serving.
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}
fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
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
                records: (0..SHARDS).map(|_| RwLock::default()).collect(),
                tokens: (0..SHARDS).map(|_| RwLock::default()).collect(),
                writer: Mutex::new(Writer::default()),
                floor: AtomicI64::new(i64::MIN),
            }),
        }
    }

    /// Number of records held (active and tombstones).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.records.iter().map(|s| read(s).len()).sum()
    }

    /// Whether the store holds no record.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Loads a record as it was persisted (used by durable stores to
    /// rebuild their index on open). Replaces any record with that id.
    pub fn load(&self, rec: SessionRecord) {
        let mut w = lock(&self.inner.writer);
        self.remove_locked(&mut w, rec.id);
        self.insert_locked(&mut w, rec);
    }

    /// Removes a record and its index entries (used by durable stores to
    /// roll back a batch that failed to persist). Returns whether it existed.
    pub fn remove(&self, id: SessionId) -> bool {
        let mut w = lock(&self.inner.writer);
        self.remove_locked(&mut w, id).is_some()
    }

    /// Raises the persisted clock floor to at least `t`.
    pub fn raise_floor(&self, t: Millis) {
        self.inner.floor.fetch_max(t.as_millis(), Ordering::AcqRel);
    }

    /// Runs `f` under the writer lock, so that a durable store can decide,
    /// persist and apply one operation atomically with respect to every
    /// other write. Readers are not blocked.
    pub fn exclusive<R>(&self, f: impl FnOnce(&WriteTxn<'_>) -> R) -> R {
        let mut w = lock(&self.inner.writer);
        let txn = WriteTxn {
            store: self,
            writer: std::cell::RefCell::new(&mut w),
        };
        f(&txn)
    }

    fn get_slot<R>(&self, id: &SessionId, f: impl FnOnce(&Slot) -> R) -> Option<R> {
        read(&self.inner.records[shard_of_id(id)]).get(id).map(f)
    }

    fn with_slot_mut<R>(&self, id: &SessionId, f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
        write(&self.inner.records[shard_of_id(id)])
            .get_mut(id)
            .map(f)
    }

    fn insert_locked(&self, w: &mut Writer, rec: SessionRecord) {
        let tenant = rec.tenant;
        let purge_at = rec.purge_at();
        let active = rec.state == SessionState::Active;
        let subject = rec.subject.clone();
        let (id, slot) = Slot::from_record(rec);
        write(&self.inner.tokens[shard_of_token(&slot.token_hash)]).insert(slot.token_hash, id);
        write(&self.inner.records[shard_of_id(&id)]).insert(id, slot);
        w.expiry.insert((purge_at, id));
        if active {
            let c = w.counts.entry(tenant).or_default();
            c.active += 1;
            match subject {
                Some(s) => w.subjects.entry((tenant, s)).or_default().push(id),
                None => c.anonymous += 1,
            }
        }
    }

    fn remove_locked(&self, w: &mut Writer, id: SessionId) -> Option<Slot> {
        let slot = write(&self.inner.records[shard_of_id(&id)]).remove(&id)?;
        let mut tokens = write(&self.inner.tokens[shard_of_token(&slot.token_hash)]);
        if tokens.get(&slot.token_hash) == Some(&id) {
            tokens.remove(&slot.token_hash);
        }
        drop(tokens);
        w.expiry.remove(&(slot.purge_at(), id));
        if slot.state == SessionState::Active {
            Self::forget_active(w, slot.tenant, slot.subject.as_ref(), id);
        }
        Some(slot)
    }

    fn forget_active(w: &mut Writer, tenant: TenantId, subject: Option<&Subject>, id: SessionId) {
        if let Some(c) = w.counts.get_mut(&tenant) {
            c.active = c.active.saturating_sub(1);
            if subject.is_none() {
                c.anonymous = c.anonymous.saturating_sub(1);
            }
        }
        if let Some(s) = subject {
            let key = (tenant, s.clone());
            if let Some(v) = w.subjects.get_mut(&key) {
                v.retain(|x| *x != id);
                if v.is_empty() {
                    w.subjects.remove(&key);
                }
            }
        }
    }

    /// Tombstones an active record. Returns its subject, or `None` if it is
    /// not active.
    fn tombstone_locked(
        &self,
        w: &mut Writer,
        id: SessionId,
        reason: RevokeReason,
        now: Millis,
    ) -> Option<(TenantId, Option<Subject>)> {
        let (old_purge, new_purge, tenant, subject) = self.with_slot_mut(&id, |s| {
            if s.state != SessionState::Active {
                return None;
            }
            let old = s.purge_at();
            s.state = SessionState::Revoked { reason, at: now };
            s.attributes = Attributes::empty();
            s.client = None;
            Some((old, s.purge_at(), s.tenant, s.subject.clone()))
        })??;
        w.expiry.remove(&(old_purge, id));
        w.expiry.insert((new_purge, id));
        Self::forget_active(w, tenant, subject.as_ref(), id);
        Some((tenant, subject))
    }

    fn live_of_subject(
        &self,
        w: &Writer,
        tenant: TenantId,
        subject: &Subject,
        now: Millis,
    ) -> Vec<(SessionId, Millis)> {
        let Some(ids) = w.subjects.get(&(tenant, subject.clone())) else {
            return Vec::new();
        };
        ids.iter()
            .filter_map(|id| {
                self.get_slot(id, |s| s.is_live(now).then_some((*id, s.last_seen_at)))
                    .flatten()
            })
            .collect()
    }

    fn exists(&self, rec: &SessionRecord) -> bool {
        self.get_slot(&rec.id, |_| ()).is_some()
            || read(&self.inner.tokens[shard_of_token(&rec.token_hash)])
                .contains_key(&rec.token_hash)
    }

    /// Applies the caps for a new session of `rec`'s subject. `ignoring` is
    /// a session that the same write revokes (upgrade). Returns the ids to
    /// evict, or `Err` with the refusal.
    fn check_caps(
        &self,
        w: &Writer,
        rec: &SessionRecord,
        limits: Limits,
        ignoring: Option<SessionId>,
        now: Millis,
    ) -> Result<Vec<SessionId>, CreateOutcome> {
        match &rec.subject {
            None => {
                if let Some(max) = limits.anonymous {
                    let n = w.counts.get(&rec.tenant).map_or(0, |c| c.anonymous);
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
                let mut live = self.live_of_subject(w, rec.tenant, subject, now);
                live.retain(|(id, _)| Some(*id) != ignoring);
                let max = usize::try_from(max).unwrap_or(usize::MAX);
                if live.len() < max {
                    return Ok(Vec::new());
                }
                if on_limit == OnSessionLimit::Refuse {
                    return Err(CreateOutcome::SubjectLimitReached);
                }
                live.sort_by_key(|(id, seen)| (*seen, *id));
                let excess = live.len() + 1 - max;
                Ok(live.into_iter().take(excess).map(|(id, _)| id).collect())
            }
        }
    }

    fn note_now(&self, now: Millis) {
        self.raise_floor(now);
    }
}

/// Access to a [`MemoryStore`] under its writer lock (see
/// [`MemoryStore::exclusive`]): each method decides and applies one
/// operation exactly as the [`SessionStore`] method of the same name, so a
/// durable store can run it, persist the outcome, and only then answer.
pub struct WriteTxn<'a> {
    store: &'a MemoryStore,
    writer: std::cell::RefCell<&'a mut Writer>,
}

impl WriteTxn<'_> {
    /// The record with this id, read under the writer lock.
    #[must_use]
    pub fn get(&self, id: SessionId) -> Option<SessionRecord> {
        self.store.get_slot(&id, |s| s.to_record(id))
    }

    /// See [`SessionStore::create`].
    pub fn create(&self, rec: SessionRecord, limits: Limits, now: Millis) -> CreateOutcome {
        let s = self.store;
        let mut w = self.writer.borrow_mut();
        if s.exists(&rec) {
            return CreateOutcome::Duplicate;
        }
        let evict = match s.check_caps(&w, &rec, limits, None, now) {
            Ok(e) => e,
            Err(refusal) => return refusal,
        };
        s.note_now(now);
        for id in &evict {
            s.tombstone_locked(&mut w, *id, RevokeReason::Evicted, now);
        }
        s.insert_locked(&mut w, rec);
        CreateOutcome::Created { evicted: evict }
    }

    /// See [`SessionStore::touch`].
    pub fn touch(&self, tenant: TenantId, id: SessionId, at: Millis) -> bool {
        let s = self.store;
        let mut w = self.writer.borrow_mut();
        let moved = s.with_slot_mut(&id, |slot| {
            if slot.tenant != tenant || !slot.is_live(at) || at <= slot.last_seen_at {
                return None;
            }
            let old = slot.purge_at();
            slot.last_seen_at = at;
            Some((old, slot.purge_at()))
        });
        match moved.flatten() {
            Some((old, new)) => {
                s.note_now(at);
                w.expiry.remove(&(old, id));
                w.expiry.insert((new, id));
                true
            }
            None => false,
        }
    }

    /// See [`SessionStore::update`].
    pub fn update(
        &self,
        tenant: TenantId,
        id: SessionId,
        expected_version: u64,
        change: Change,
        now: Millis,
    ) -> UpdateOutcome {
        let s = self.store;
        let _w = self.writer.borrow_mut();
        let out = s.with_slot_mut(&id, |slot| {
            if slot.tenant != tenant || !slot.is_live(now) {
                return UpdateOutcome::NotLive;
            }
            if slot.version != expected_version {
                return UpdateOutcome::VersionMismatch {
                    current: slot.version,
                };
            }
            match change {
                Change::Attributes(a) => slot.attributes = a,
            }
            slot.version = slot.version.saturating_add(1);
            UpdateOutcome::Updated(Box::new(slot.to_record(id)))
        });
        if matches!(out, Some(UpdateOutcome::Updated(_))) {
            s.note_now(now);
        }
        out.unwrap_or(UpdateOutcome::NotLive)
    }

    /// See [`SessionStore::upgrade`].
    pub fn upgrade(&self, req: UpgradeRequest) -> UpgradeOutcome {
        let s = self.store;
        let mut w = self.writer.borrow_mut();
        let now = req.now;
        let old = s.get_slot(&req.old_id, |o| {
            if o.tenant != req.new.tenant || o.token_hash != req.old_token_hash || !o.is_live(now) {
                None
            } else {
                Some(o.version)
            }
        });
        match old.flatten() {
            None => return UpgradeOutcome::NotLive,
            Some(v) if v != req.expected_version => return UpgradeOutcome::VersionMismatch,
            Some(_) => {}
        }
        if s.exists(&req.new) {
            return UpgradeOutcome::Duplicate;
        }
        let evict = match s.check_caps(&w, &req.new, req.limits, Some(req.old_id), now) {
            Ok(e) => e,
            Err(_) => return UpgradeOutcome::SubjectLimitReached,
        };
        s.note_now(now);
        s.tombstone_locked(&mut w, req.old_id, RevokeReason::Upgraded, now);
        for id in &evict {
            s.tombstone_locked(&mut w, *id, RevokeReason::Evicted, now);
        }
        s.insert_locked(&mut w, req.new);
        UpgradeOutcome::Upgraded { evicted: evict }
    }

    /// See [`SessionStore::revoke`].
    pub fn revoke(
        &self,
        tenant: TenantId,
        id: SessionId,
        reason: RevokeReason,
        now: Millis,
    ) -> RevokeOutcome {
        let s = self.store;
        let mut w = self.writer.borrow_mut();
        match s.get_slot(&id, |sl| (sl.tenant, sl.state)) {
            Some((t, _)) if t != tenant => RevokeOutcome::NotFound,
            None => RevokeOutcome::NotFound,
            Some((_, SessionState::Revoked { .. })) => RevokeOutcome::AlreadyRevoked,
            Some((_, SessionState::Active)) => {
                s.note_now(now);
                match s.tombstone_locked(&mut w, id, reason, now) {
                    Some((_, subject)) => RevokeOutcome::Revoked { subject },
                    None => RevokeOutcome::AlreadyRevoked,
                }
            }
        }
    }

    /// See [`SessionStore::revoke_subject`].
    pub fn revoke_subject(
        &self,
        tenant: TenantId,
        subject: &Subject,
        except: Option<SessionId>,
        reason: RevokeReason,
        now: Millis,
    ) -> RevokeSubjectOutcome {
        let s = self.store;
        let mut w = self.writer.borrow_mut();
        let ids: Vec<SessionId> = w
            .subjects
            .get(&(tenant, subject.clone()))
            .cloned()
            .unwrap_or_default();
        if let Some(keep) = except {
            let keep_live =
                ids.contains(&keep) && s.get_slot(&keep, |sl| sl.is_live(now)) == Some(true);
            if !keep_live {
                return RevokeSubjectOutcome::ExceptNotLive;
            }
        }
        s.note_now(now);
        let mut revoked = Vec::new();
        for id in ids {
            if Some(id) == except {
                continue;
            }
            if s.tombstone_locked(&mut w, id, reason, now).is_some() {
                revoked.push(id);
            }
        }
        RevokeSubjectOutcome::Revoked(revoked)
    }

    /// See [`SessionStore::purge_expired`].
    pub fn purge_expired(&self, now: Millis, max: usize) -> Vec<Purged> {
        let s = self.store;
        let mut w = self.writer.borrow_mut();
        let mut out = Vec::new();
        while out.len() < max {
            let Some(&(at, id)) = w.expiry.first() else {
                break;
            };
            if at > now {
                break;
            }
            let Some(slot) = s.remove_locked(&mut w, id) else {
                w.expiry.remove(&(at, id));
                continue;
            };
            let expired = match slot.liveness(now) {
                Liveness::Expired(cause) => Some(cause),
                _ => None,
            };
            out.push(Purged {
                tenant: slot.tenant,
                id,
                subject: slot.subject,
                expired,
            });
        }
        if !out.is_empty() {
            s.note_now(now);
        }
        out
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
        let id = read(&self.inner.tokens[shard_of_token(hash)])
            .get(hash)
            .copied();
        Ok(id.and_then(|id| {
            self.get_slot(&id, |s| {
                (s.tenant == tenant && s.token_hash == *hash).then(|| s.to_record(id))
            })
            .flatten()
        }))
    }

    async fn get_by_id(
        &self,
        tenant: TenantId,
        id: SessionId,
    ) -> StoreResult<Option<SessionRecord>> {
        Ok(self
            .get_slot(&id, |s| (s.tenant == tenant).then(|| s.to_record(id)))
            .flatten())
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
        let ids: Vec<SessionId> = {
            let w = lock(&self.inner.writer);
            w.subjects
                .get(&(tenant, subject.clone()))
                .cloned()
                .unwrap_or_default()
        };
        let mut recs: Vec<SessionRecord> = ids
            .iter()
            .filter_map(|id| {
                self.get_slot(id, |s| s.is_live(now).then(|| s.to_record(*id)))
                    .flatten()
            })
            .filter(|r| after.is_none_or(|c| c.precedes(r)))
            .collect();
        recs.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        recs.truncate(limit);
        Ok(recs)
    }

    async fn purge_expired(&self, now: Millis, max: usize) -> StoreResult<Vec<Purged>> {
        Ok(self.exclusive(|t| t.purge_expired(now, max)))
    }

    async fn counts(&self, tenant: TenantId) -> StoreResult<Counts> {
        let w = lock(&self.inner.writer);
        let (active, anonymous) = w
            .counts
            .get(&tenant)
            .map_or((0, 0), |c| (c.active, c.anonymous));
        let subjects = w.subjects.keys().filter(|(t, _)| *t == tenant).count() as u64;
        Ok(Counts {
            active,
            anonymous,
            subjects,
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
