//! The store contract: [`SessionStore`], the small set of atomic operations
//! every backend provides, [`StoreAdmin`], the tenant-wide figures for
//! operators, and the request, outcome and error types they speak.
//!
//! Policy lives in the engine, not here. A store never reads a clock: every
//! operation that depends on time takes `now` from the engine, and the store
//! keeps the clock floor the engine hands it
//! ([`SessionStore::persist_clock_floor`]) so that the engine's clock never
//! goes backwards across restarts.
//!
//! Every state change is one atomic conditional write, which a remote store
//! keeps as one Lua script on one Redis Cluster slot or one SQL transaction
//! (`docs/store-contract.md` shows each): creates are conditional on the
//! token hash and id being new and the caps holding, updates on the
//! record's `version`, retires on the old session being live with the
//! expected version and token hash. An upgrade is two such writes: the
//! successor is created ([`Limits::replaces`]), then the old session is
//! retired for it ([`SessionStore::retire`]). Expected outcomes ("not
//! live", "version mismatch", "at the cap") are values of an outcome enum;
//! `Err` means the operation could not be carried out, and says why
//! ([`StoreError`]): unavailable (retry later), out of room (do not retry),
//! or corrupt data (never read as a default).
//!
//! A store answers only after the change is durable at its level — except
//! [`SessionStore::touch`] and [`SessionStore::persist_clock_floor`], which
//! are best-effort.

use std::error::Error as StdError;
use std::future::Future;

use crate::attributes::Attributes;
use crate::ids::{SessionId, Subject, TenantId};
use crate::policy::OnSessionLimit;
use crate::record::{ExpiryCause, RevokeReason, SessionRecord};
use crate::time::Millis;
use crate::token::TokenHash;
use crate::upstream::Grants;

/// A boxed error cause.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a store could not carry out an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend cannot be reached or cannot write now (down, disk full,
    /// read-only). Retrying later may succeed. sessiond answers 503
    /// `store_unavailable` with `Retry-After`.
    #[error("session store unavailable")]
    Unavailable(#[source] BoxError),
    /// The store has no room for this write (see [`Capacity`]). Retrying the
    /// same write will not help until an operator acts. sessiond answers 507
    /// `insufficient_storage`.
    #[error("session store is out of room: {0}")]
    Capacity(Capacity),
    /// Stored data could not be decoded (see [`Corruption`]). Retrying will
    /// not help; the record is never read as something else (fail closed).
    /// sessiond answers 500 `internal_error`.
    #[error("session store data is corrupt: {0}")]
    Corrupt(Corruption),
}

impl StoreError {
    /// Whether retrying the same operation later may succeed.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// What a store ran out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Capacity {
    /// No room for another record (a shard, an arena or a file is full).
    #[error("no room for another record")]
    Records,
    /// No room for another tenant (the memory store names at most 65,535
    /// tenants per shard).
    #[error("no room for another tenant")]
    Tenants,
    /// The session's version is at [`SessionStore::MAX_VERSION`]: it cannot
    /// change again.
    #[error("the session's version is at the store's maximum")]
    Version,
}

/// Which stored data failed to decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}{}", .id.map(|i| format!(" (session {i})")).unwrap_or_default())]
pub struct Corruption {
    /// The field or index that failed (`"subject"`, `"tenant index"`, …).
    pub what: &'static str,
    /// The session it belongs to, when known.
    pub id: Option<SessionId>,
}

impl Corruption {
    /// A field of session `id` that failed to decode.
    #[must_use]
    pub fn field(what: &'static str, id: SessionId) -> Self {
        Corruption { what, id: Some(id) }
    }
}

impl From<Corruption> for StoreError {
    fn from(c: Corruption) -> Self {
        StoreError::Corrupt(c)
    }
}

impl From<Capacity> for StoreError {
    fn from(c: Capacity) -> Self {
        StoreError::Capacity(c)
    }
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Caps a create or upgrade must respect, checked in the same atomic write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Most live sessions per subject, and what to do at the cap.
    pub per_subject: Option<(u32, OnSessionLimit)>,
    /// Most active anonymous sessions per tenant. Remote stores check it
    /// against a counter kept beside the records, which may overshoot by
    /// the number of creates in flight at once (see
    /// `docs/store-contract.md`).
    pub anonymous: Option<u64>,
    /// A session of the same subject that the caller retires right after
    /// this create (an upgrade that keeps the subject): it is neither
    /// counted against the cap nor evicted.
    pub replaces: Option<SessionId>,
}

/// What a create did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Stored; these sessions of the same subject were evicted for it.
    Created {
        /// Sessions revoked with reason `evicted`.
        evicted: Vec<SessionId>,
    },
    /// The subject is at its cap and the policy refuses.
    SubjectLimitReached,
    /// The tenant is at its anonymous-session cap.
    AnonymousLimitReached,
    /// A record with this token hash or id exists already; nothing written.
    Duplicate,
}

/// The second step of an upgrade: the caller has created the successor
/// (with [`Limits::replaces`] naming the old session) and now retires the
/// old session in favour of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetireRequest {
    /// The tenant of both sessions.
    pub tenant: TenantId,
    /// The session being replaced.
    pub old_id: SessionId,
    /// Its token hash (the caller proved possession of that token).
    pub old_token_hash: TokenHash,
    /// Its version when the caller read it.
    pub expected_version: u64,
    /// The session that replaces it, recorded in the tombstone so that a
    /// retry of this same retire (after a timeout) finds it done.
    pub successor: SessionId,
    /// The engine's time.
    pub now: Millis,
}

/// What a retire did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetireOutcome {
    /// The old session is a tombstone (reason `upgraded`) naming the
    /// successor — now, or already by an earlier try of this same request.
    Retired,
    /// The old session is gone, revoked (for another successor, or for any
    /// other reason), expired, or has another token. Of racing upgrades of
    /// one token, exactly one gets [`RetireOutcome::Retired`].
    NotLive,
    /// The old session changed since it was read; nothing written.
    VersionMismatch {
        /// The version it has.
        current: u64,
    },
}

/// A refresh: the holder of a refresh token of session `id` asks for the
/// next one. One atomic write, conditional on the session's *current
/// refresh hash* (never on its version, which a refresh does not change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshRequest {
    /// The session's tenant.
    pub tenant: TenantId,
    /// The session named by the token.
    pub id: SessionId,
    /// Hash of the presented token.
    pub presented: TokenHash,
    /// Its generation (from the token).
    pub presented_generation: u32,
    /// Hash of its successor, which becomes current on a rotation.
    pub successor: TokenHash,
    /// The engine's time.
    pub now: Millis,
    /// Until when (exclusive) the presented token may be replayed after
    /// this rotation.
    pub grace_until: Millis,
}

/// What a refresh did. For a session live at `now` with refresh state:
/// - the presented hash and generation are the current ones: rotated;
/// - they are the previous ones, the current token is their successor
///   (generation + 1) and `now` is before the grace deadline: a replay,
///   nothing written;
/// - anything else is a reuse of an old token: the session is revoked
///   (reason `reuse_detected`) in the same write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The successor is current now (generation + 1, issued at `now`, the
    /// presented token replayable until the grace deadline); `last_seen_at`
    /// moved to `now`; version and deadlines unchanged. The record after.
    Rotated(Box<SessionRecord>),
    /// A retry of the parent inside the grace window: nothing written; the
    /// record as it is (its current token is the one the caller derives
    /// again from the presented one).
    Replayed(Box<SessionRecord>),
    /// An old token was reused: the session is a tombstone now.
    ReuseDetected {
        /// Its subject, for the event.
        subject: Option<Subject>,
    },
    /// No live session with that id and refresh state in that tenant.
    NotLive,
}

/// A compare-and-set of a session's upstream grants (see
/// [`SessionStore::swap_grants`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantSwapRequest {
    /// The session's tenant.
    pub tenant: TenantId,
    /// The session.
    pub id: SessionId,
    /// The grants the caller read (`None`: none).
    pub expected: Option<Box<Grants>>,
    /// The grants to keep instead (`None`: none).
    pub grants: Option<Box<Grants>>,
    /// The engine's time: the session must be live then.
    pub now: Millis,
}

/// What a grant swap did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantSwap {
    /// Written; the record as it now is.
    Swapped(Box<SessionRecord>),
    /// The grants are not the expected ones; nothing written. The record
    /// as it is.
    Changed(Box<SessionRecord>),
    /// No live session with that id in that tenant.
    NotLive,
}

/// A change to a live session, made conditional on its version. Each bumps
/// the version by one. Not `#[non_exhaustive]` on purpose: a store must
/// handle every change, so a new variant breaks every store's build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Replace the attributes.
    Attributes(Attributes),
}

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Written; the record as it now is.
    Updated(Box<SessionRecord>),
    /// The session's version is not the expected one; nothing written.
    VersionMismatch {
        /// The version it has.
        current: u64,
    },
    /// No live session with that id in that tenant.
    NotLive,
}

/// What a revoke by id did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// It was active (live or expired) and is a tombstone now.
    Revoked {
        /// Its subject, for the event.
        subject: Option<Subject>,
    },
    /// It was a tombstone already.
    AlreadyRevoked,
    /// No such record in that tenant (never existed, or purged).
    NotFound,
}

/// What revoking a subject's sessions did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeSubjectOutcome {
    /// Every active session of the subject (but `except`) is dead now: a
    /// store may tombstone each, or bump the subject's revocation epoch so
    /// that every older record reads as revoked. `count` is how many were
    /// active; the ids are not listed (that would cost one write per
    /// session in one step, which a remote store cannot promise).
    Revoked {
        /// How many active sessions it revoked.
        count: u64,
    },
    /// `except` is not a live session of that subject; nothing written.
    ExceptNotLive,
}

/// Where a page of a subject's sessions starts: after this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListCursor {
    /// `created_at` of the last session of the previous page.
    pub created_at: Millis,
    /// Its id.
    pub id: SessionId,
}

impl ListCursor {
    /// The cursor that continues after `rec`.
    #[must_use]
    pub fn after(rec: &SessionRecord) -> Self {
        ListCursor {
            created_at: rec.created_at,
            id: rec.id,
        }
    }

    /// Whether `rec` comes after this cursor in newest-first order.
    #[must_use]
    pub fn precedes(&self, rec: &SessionRecord) -> bool {
        (rec.created_at, rec.id) < (self.created_at, self.id)
    }
}

/// A record a purge removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purged {
    /// Its tenant.
    pub tenant: TenantId,
    /// Its id.
    pub id: SessionId,
    /// Its subject.
    pub subject: Option<Subject>,
    /// `Some` when an active session expired (emit `expired`); `None` when a
    /// tombstone reached its absolute deadline (nothing to emit).
    pub expired: Option<ExpiryCause>,
}

/// A tenant's figures, for operators ([`StoreAdmin::counts`]).
///
/// "Active" means not revoked and not yet purged: a session that expired
/// counts until the purge removes it. When no write is in flight and none
/// has failed half-way, every store gives these figures exactly; a store
/// whose counters are kept apart from its records (remote stores) says
/// `approximate` and may drift from them by the writes in flight or lost
/// half-way (see `docs/store-contract.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Active sessions.
    pub active: u64,
    /// Of which anonymous.
    pub anonymous: u64,
    /// Subjects with at least one active session.
    pub subjects: u64,
    /// Whether the figures may drift from the records (see above).
    pub approximate: bool,
}

/// The storage contract. Every method is one atomic operation, but for
/// [`SessionStore::purge_expired`], which is atomic per record it removes.
pub trait SessionStore: Send + Sync + 'static {
    /// The highest version a session can reach in this store. An update of
    /// a session at this version fails with [`Capacity::Version`]; it is
    /// never reported as a version mismatch.
    const MAX_VERSION: u64 = u64::MAX;

    /// Stores a new active session, enforcing `limits` in the same atomic
    /// write (evicting the live session of that subject with the oldest
    /// `last_seen_at`, or refusing). `rec.version` must be 1.
    fn create(
        &self,
        rec: SessionRecord,
        limits: Limits,
        now: Millis,
    ) -> impl Future<Output = StoreResult<CreateOutcome>> + Send;

    /// The record (active or tombstone) with this token hash in `tenant`.
    fn get_by_token(
        &self,
        tenant: TenantId,
        hash: &TokenHash,
    ) -> impl Future<Output = StoreResult<Option<SessionRecord>>> + Send;

    /// [`SessionStore::get_by_token`] from the store itself, past any
    /// near-cache in front of it. The engine calls it before it reports an
    /// idle expiry, since a cached `last_seen_at` may be older than the
    /// store's (another node touched the session). Stores without a cache
    /// keep the default.
    fn get_by_token_uncached(
        &self,
        tenant: TenantId,
        hash: &TokenHash,
    ) -> impl Future<Output = StoreResult<Option<SessionRecord>>> + Send {
        self.get_by_token(tenant, hash)
    }

    /// The record (active or tombstone) with this id in `tenant`.
    fn get_by_id(
        &self,
        tenant: TenantId,
        id: SessionId,
    ) -> impl Future<Output = StoreResult<Option<SessionRecord>>> + Send;

    /// Best-effort: sets `last_seen_at = at` if the session is live at `at`
    /// and `at` is later than its `last_seen_at`. Never changes the version
    /// and never revives a revoked or expired session. Returns whether a
    /// write was made (or queued, for stores that write touches behind).
    fn touch(
        &self,
        tenant: TenantId,
        id: SessionId,
        at: Millis,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Applies `change` if the session is live at `now` and its version is
    /// `expected_version`; bumps the version.
    fn update(
        &self,
        tenant: TenantId,
        id: SessionId,
        expected_version: u64,
        change: Change,
        now: Millis,
    ) -> impl Future<Output = StoreResult<UpdateOutcome>> + Send;

    /// Retires a live session in favour of its successor, the second step
    /// of an upgrade (see [`RetireRequest`]): conditional on the old
    /// session being live at `now` with the expected version and token
    /// hash; idempotent for the same successor.
    fn retire(&self, req: RetireRequest)
    -> impl Future<Output = StoreResult<RetireOutcome>> + Send;

    /// Rotates a session's refresh token, or recognises a replay or a
    /// reuse (see [`RefreshOutcome`]); one atomic write conditional on the
    /// current refresh hash.
    fn refresh(
        &self,
        req: RefreshRequest,
    ) -> impl Future<Output = StoreResult<RefreshOutcome>> + Send;

    /// Replaces a live session's upstream grants if they are still
    /// `req.expected` (compared whole: the compare-and-set that makes an
    /// upstream refresh happen once across nodes). Never changes the
    /// version, the deadlines or anything else of the record.
    fn swap_grants(
        &self,
        req: GrantSwapRequest,
    ) -> impl Future<Output = StoreResult<GrantSwap>> + Send;

    /// Turns an active session (live or expired) into a tombstone.
    fn revoke(
        &self,
        tenant: TenantId,
        id: SessionId,
        reason: RevokeReason,
        now: Millis,
    ) -> impl Future<Output = StoreResult<RevokeOutcome>> + Send;

    /// Revokes every active session of `subject`, except `except` which must
    /// then be live; all in one atomic write (see [`RevokeSubjectOutcome`]).
    fn revoke_subject(
        &self,
        tenant: TenantId,
        subject: &Subject,
        except: Option<SessionId>,
        reason: RevokeReason,
        now: Millis,
    ) -> impl Future<Output = StoreResult<RevokeSubjectOutcome>> + Send;

    /// Up to `limit` live sessions of `subject`, newest first (by
    /// `created_at`, then id), starting after `after`.
    fn list_subject(
        &self,
        tenant: TenantId,
        subject: &Subject,
        now: Millis,
        after: Option<ListCursor>,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<SessionRecord>>> + Send;

    /// Removes up to `max` records whose purge time ([`SessionRecord::purge_at`])
    /// is at or before `now`, in every tenant. Costs what expires, not what
    /// lives.
    fn purge_expired(
        &self,
        now: Millis,
        max: usize,
    ) -> impl Future<Output = StoreResult<Vec<Purged>>> + Send;

    /// The clock floor: the highest time [`SessionStore::persist_clock_floor`]
    /// has recorded (a store may also raise it on other writes), so the
    /// engine's clock never goes backwards across restarts by more than the
    /// interval between two persists.
    fn clock_floor(&self) -> impl Future<Output = StoreResult<Millis>> + Send;

    /// Best-effort, like [`SessionStore::touch`]: records that the engine's
    /// time has reached `at`, so that after a restart with a clock set back
    /// no session the engine already saw expire looks live again. The engine
    /// calls it about once a second while it writes, and at shutdown; a
    /// store may write it behind without waiting for a flush. Stores are
    /// not required to persist the floor on every write.
    fn persist_clock_floor(&self, at: Millis) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Tenant-wide figures for operators: "who is logged in" and counts. Kept
/// apart from [`SessionStore`] because a remote store cannot give them
/// exactly in the same atomic step as each write (a tenant-wide key or row
/// written by every write would be a hot spot, and on Redis Cluster in
/// another slot); see [`Counts`] for the bound.
pub trait StoreAdmin: SessionStore {
    /// Up to `limit` subjects of `tenant` with at least one active session,
    /// in byte order of the subject, starting after `after`, each with its
    /// number of active sessions. Like [`Counts`], "active" includes
    /// sessions that expired and are not yet purged; a store may leave out
    /// subjects whose sessions are all past their deadlines at `now`.
    fn list_subjects(
        &self,
        tenant: TenantId,
        now: Millis,
        after: Option<&Subject>,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<(Subject, u64)>>> + Send;

    /// The figures for `tenant` (see [`Counts`]).
    fn counts(&self, tenant: TenantId) -> impl Future<Output = StoreResult<Counts>> + Send;
}
