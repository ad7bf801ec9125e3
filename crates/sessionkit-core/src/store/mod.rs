//! The [`SessionStore`] trait: the small set of atomic operations every
//! backend provides (DESIGN.md §5), and the request and outcome types they
//! speak.
//!
//! Policy lives in the engine, not here. A store never reads a clock: every
//! operation that depends on time takes `now` from the engine, and the store
//! persists the highest `now` it has seen ([`SessionStore::clock_floor`]) so
//! that the engine's clock never goes backwards across restarts.
//!
//! Every state change is one atomic conditional write (invariant 2):
//! creates are conditional on the token hash and id being new and the caps
//! holding, updates on the record's `version`, upgrades on the old session
//! being live with the expected version and token hash. Expected outcomes
//! ("not live", "version mismatch", "at the cap") are values of an outcome
//! enum; `Err` means the operation could not be carried out.
//!
//! A store answers only after the change is durable at its level
//! (invariant 4) — except [`SessionStore::touch`], which is best-effort.

use std::error::Error as StdError;
use std::future::Future;

use crate::attributes::Attributes;
use crate::ids::{SessionId, Subject, TenantId};
use crate::policy::OnSessionLimit;
use crate::record::{ExpiryCause, RevokeReason, SessionRecord};
use crate::time::Millis;
use crate::token::TokenHash;

pub mod memory;

/// A boxed error cause.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a store could not carry out an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend cannot be reached or cannot write now (down, disk full,
    /// read-only). Retrying later may succeed. Maps to 503.
    #[error("session store unavailable")]
    Unavailable(#[source] BoxError),
    /// Stored data could not be decoded. Retrying will not help.
    #[error("session store data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether retrying the same operation later may succeed.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Caps a create or upgrade must respect, checked in the same atomic write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Most live sessions per subject, and what to do at the cap.
    pub per_subject: Option<(u32, OnSessionLimit)>,
    /// Most active anonymous sessions per tenant.
    pub anonymous: Option<u64>,
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

/// An upgrade: replace a live session by a new one in one atomic write.
#[derive(Debug, Clone)]
pub struct UpgradeRequest {
    /// The session being replaced.
    pub old_id: SessionId,
    /// Its token hash (the caller proved possession of that token).
    pub old_token_hash: TokenHash,
    /// Its version when the caller read it.
    pub expected_version: u64,
    /// The new session (new id and token hash, same tenant).
    pub new: SessionRecord,
    /// Caps for the new session's subject.
    pub limits: Limits,
    /// The engine's time.
    pub now: Millis,
}

/// What an upgrade did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeOutcome {
    /// The old session is a tombstone (`upgraded`), the new one is stored.
    Upgraded {
        /// Sessions of the new subject evicted for it.
        evicted: Vec<SessionId>,
    },
    /// The old session is gone, revoked, expired, or has another token.
    NotLive,
    /// The old session changed since it was read; read again and retry.
    VersionMismatch,
    /// The new subject is at its cap and the policy refuses.
    SubjectLimitReached,
    /// The new token hash or id exists already; nothing written.
    Duplicate,
}

/// A change to a live session, made conditional on its version. Each bumps
/// the version by one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeSubjectOutcome {
    /// These sessions are tombstones now.
    Revoked(Vec<SessionId>),
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

/// Counts for stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Active (not revoked, not yet purged) sessions.
    pub active: u64,
    /// Of which anonymous.
    pub anonymous: u64,
    /// Subjects with at least one active session.
    pub subjects: u64,
    /// Whether the figures are approximate (multi-node stores).
    pub approximate: bool,
}

/// The storage contract. Every method is one atomic operation.
pub trait SessionStore: Send + Sync + 'static {
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

    /// Replaces a live session by a new one (see [`UpgradeRequest`]).
    fn upgrade(
        &self,
        req: UpgradeRequest,
    ) -> impl Future<Output = StoreResult<UpgradeOutcome>> + Send;

    /// Turns an active session (live or expired) into a tombstone.
    fn revoke(
        &self,
        tenant: TenantId,
        id: SessionId,
        reason: RevokeReason,
        now: Millis,
    ) -> impl Future<Output = StoreResult<RevokeOutcome>> + Send;

    /// Revokes every active session of `subject`, except `except` which must
    /// then be live; all in one atomic write.
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

    /// Up to `limit` subjects of `tenant` with at least one live session at
    /// `now`, in byte order of the subject, starting after `after`, each with
    /// its number of live sessions ("who is logged in").
    fn list_subjects(
        &self,
        tenant: TenantId,
        now: Millis,
        after: Option<&Subject>,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<(Subject, u64)>>> + Send;

    /// Removes up to `max` records whose purge time ([`SessionRecord::purge_at`])
    /// is at or before `now`, in every tenant. Costs what expires, not what
    /// lives.
    fn purge_expired(
        &self,
        now: Millis,
        max: usize,
    ) -> impl Future<Output = StoreResult<Vec<Purged>>> + Send;

    /// Counts for `tenant`.
    fn counts(&self, tenant: TenantId) -> impl Future<Output = StoreResult<Counts>> + Send;

    /// The highest `now` any write (or [`SessionStore::persist_clock_floor`])
    /// has carried, persisted, so the engine's clock never goes backwards
    /// across restarts.
    fn clock_floor(&self) -> impl Future<Output = StoreResult<Millis>> + Send;

    /// Best-effort, like [`SessionStore::touch`]: records that the engine's
    /// time has reached `at`, so that after a restart with a clock set back
    /// no session the engine already saw expire looks live again. The engine
    /// calls it at most about once a second; a store may write it behind
    /// without waiting for a flush.
    fn persist_clock_floor(&self, at: Millis) -> impl Future<Output = StoreResult<()>> + Send;
}
