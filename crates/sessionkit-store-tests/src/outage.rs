//! [`OutageStore`]: a [`MemoryStore`] that can be switched "down", for
//! tests of what the layers above a store do when it fails (fail closed:
//! see docs/architecture.md, invariants). Not a conformance case: the real stores'
//! outages are tested against the real servers and files.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sessionkit_core::store::*;
use sessionkit_core::{
    Millis, RevokeReason, SessionId, SessionRecord, SessionStore, StoreAdmin, StoreError,
    StoreResult, Subject, TenantId, TokenHash,
};
use sessionkit_memory::MemoryStore;

/// A `MemoryStore` that answers `StoreError::Unavailable` to every
/// operation but the clock floor while `down` is set, and counts token
/// lookups (to check that a malformed token reaches no store).
#[derive(Clone, Default)]
pub struct OutageStore {
    /// The store behind.
    pub inner: MemoryStore,
    /// While set, operations fail.
    pub down: Arc<AtomicBool>,
    /// `get_by_token` calls so far.
    pub token_lookups: Arc<AtomicUsize>,
}

impl OutageStore {
    /// Switches the outage on or off.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> StoreResult<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("test: store is down".into()))
        } else {
            Ok(())
        }
    }
}

impl SessionStore for OutageStore {
    async fn create(
        &self,
        rec: SessionRecord,
        l: Limits,
        now: Millis,
    ) -> StoreResult<CreateOutcome> {
        self.check()?;
        self.inner.create(rec, l, now).await
    }
    async fn get_by_token(&self, t: TenantId, h: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        self.token_lookups.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        self.inner.get_by_token(t, h).await
    }
    async fn get_by_id(&self, t: TenantId, id: SessionId) -> StoreResult<Option<SessionRecord>> {
        self.check()?;
        self.inner.get_by_id(t, id).await
    }
    async fn touch(&self, t: TenantId, id: SessionId, at: Millis) -> StoreResult<bool> {
        self.check()?;
        self.inner.touch(t, id, at).await
    }
    async fn update(
        &self,
        t: TenantId,
        id: SessionId,
        v: u64,
        c: Change,
        now: Millis,
    ) -> StoreResult<UpdateOutcome> {
        self.check()?;
        self.inner.update(t, id, v, c, now).await
    }
    async fn retire(&self, req: RetireRequest) -> StoreResult<RetireOutcome> {
        self.check()?;
        self.inner.retire(req).await
    }
    async fn refresh(&self, req: RefreshRequest) -> StoreResult<RefreshOutcome> {
        self.check()?;
        self.inner.refresh(req).await
    }
    async fn swap_grants(&self, req: GrantSwapRequest) -> StoreResult<GrantSwap> {
        self.check()?;
        self.inner.swap_grants(req).await
    }
    async fn revoke(
        &self,
        t: TenantId,
        id: SessionId,
        r: RevokeReason,
        now: Millis,
    ) -> StoreResult<RevokeOutcome> {
        self.check()?;
        self.inner.revoke(t, id, r, now).await
    }
    async fn revoke_subject(
        &self,
        t: TenantId,
        s: &Subject,
        e: Option<SessionId>,
        r: RevokeReason,
        now: Millis,
    ) -> StoreResult<RevokeSubjectOutcome> {
        self.check()?;
        self.inner.revoke_subject(t, s, e, r, now).await
    }
    async fn list_subject(
        &self,
        t: TenantId,
        s: &Subject,
        now: Millis,
        a: Option<ListCursor>,
        l: usize,
    ) -> StoreResult<Vec<SessionRecord>> {
        self.check()?;
        self.inner.list_subject(t, s, now, a, l).await
    }
    async fn purge_expired(&self, now: Millis, max: usize) -> StoreResult<Vec<Purged>> {
        self.check()?;
        self.inner.purge_expired(now, max).await
    }
    async fn clock_floor(&self) -> StoreResult<Millis> {
        self.inner.clock_floor().await
    }
    async fn persist_clock_floor(&self, at: Millis) -> StoreResult<()> {
        self.inner.persist_clock_floor(at).await
    }
}

impl StoreAdmin for OutageStore {
    async fn list_subjects(
        &self,
        t: TenantId,
        now: Millis,
        a: Option<&Subject>,
        l: usize,
    ) -> StoreResult<Vec<(Subject, u64)>> {
        self.check()?;
        self.inner.list_subjects(t, now, a, l).await
    }
    async fn counts(&self, t: TenantId) -> StoreResult<Counts> {
        self.check()?;
        self.inner.counts(t).await
    }
}
