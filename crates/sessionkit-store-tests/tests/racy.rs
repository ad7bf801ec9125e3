//! The race cases must be able to fail: each runs here against a store
//! that makes one operation non-atomic (check, then a pause, then write),
//! and must catch it.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use sessionkit_core::refresh::{RefreshVerdict, apply_rotation, judge};
use sessionkit_core::store::{
    Change, Counts, CreateOutcome, GrantSwap, GrantSwapRequest, Limits, ListCursor, Purged,
    RefreshOutcome, RefreshRequest, RetireOutcome, RetireRequest, RevokeOutcome,
    RevokeSubjectOutcome, StoreResult, UpdateOutcome,
};
use sessionkit_core::{
    Millis, OnSessionLimit, RevokeReason, SessionId, SessionRecord, SessionStore, StoreAdmin,
    Subject, TenantId, TokenHash,
};
use sessionkit_memory::MemoryStore;

/// `MemoryStore` with read-check-pause-write versions of touch, update,
/// retire and capped create.
#[derive(Clone, Default)]
struct Racy(MemoryStore);

async fn pause() {
    tokio::time::sleep(Duration::from_millis(2)).await;
}

impl SessionStore for Racy {
    async fn create(
        &self,
        rec: SessionRecord,
        limits: Limits,
        now: Millis,
    ) -> StoreResult<CreateOutcome> {
        if let (Some(s), Some((max, on))) = (&rec.subject, limits.per_subject) {
            let live = self
                .0
                .list_subject(rec.tenant, s, now, None, usize::MAX)
                .await?;
            if live.len() >= max as usize {
                if on == OnSessionLimit::Refuse {
                    return Ok(CreateOutcome::SubjectLimitReached);
                }
                pause().await;
                let oldest = live
                    .iter()
                    .min_by_key(|r| (r.last_seen_at, r.id))
                    .map(|r| r.id);
                let mut evicted = Vec::new();
                if let Some(id) = oldest
                    && let RevokeOutcome::Revoked { .. } = self
                        .0
                        .revoke(rec.tenant, id, RevokeReason::Evicted, now)
                        .await?
                {
                    evicted.push(id);
                }
                self.0.create(rec, Limits::default(), now).await?;
                return Ok(CreateOutcome::Created { evicted });
            }
            pause().await;
            return self.0.create(rec, Limits::default(), now).await;
        }
        if let (None, Some(max)) = (&rec.subject, limits.anonymous) {
            if self.0.counts(rec.tenant).await?.anonymous >= max {
                return Ok(CreateOutcome::AnonymousLimitReached);
            }
            pause().await;
            return self.0.create(rec, Limits::default(), now).await;
        }
        self.0.create(rec, limits, now).await
    }

    async fn get_by_token(
        &self,
        tenant: TenantId,
        hash: &TokenHash,
    ) -> StoreResult<Option<SessionRecord>> {
        self.0.get_by_token(tenant, hash).await
    }

    async fn get_by_id(
        &self,
        tenant: TenantId,
        id: SessionId,
    ) -> StoreResult<Option<SessionRecord>> {
        self.0.get_by_id(tenant, id).await
    }

    async fn touch(&self, tenant: TenantId, id: SessionId, at: Millis) -> StoreResult<bool> {
        let Some(mut rec) = self.0.get_by_id(tenant, id).await? else {
            return Ok(false);
        };
        if !rec.is_live(at) || at <= rec.last_seen_at {
            return Ok(false);
        }
        pause().await;
        rec.last_seen_at = at;
        self.0.load(rec).unwrap();
        Ok(true)
    }

    async fn update(
        &self,
        tenant: TenantId,
        id: SessionId,
        expected: u64,
        change: Change,
        now: Millis,
    ) -> StoreResult<UpdateOutcome> {
        let Some(mut rec) = self.0.get_by_id(tenant, id).await? else {
            return Ok(UpdateOutcome::NotLive);
        };
        if !rec.is_live(now) {
            return Ok(UpdateOutcome::NotLive);
        }
        if rec.version != expected {
            return Ok(UpdateOutcome::VersionMismatch {
                current: rec.version,
            });
        }
        pause().await;
        let Change::Attributes(a) = change;
        rec.attributes = a;
        rec.version += 1;
        self.0.load(rec.clone()).unwrap();
        Ok(UpdateOutcome::Updated(Box::new(rec)))
    }

    async fn swap_grants(&self, req: GrantSwapRequest) -> StoreResult<GrantSwap> {
        let Some(mut rec) = self.0.get_by_id(req.tenant, req.id).await? else {
            return Ok(GrantSwap::NotLive);
        };
        if !rec.is_live(req.now) {
            return Ok(GrantSwap::NotLive);
        }
        if rec.grants != req.expected {
            return Ok(GrantSwap::Changed(Box::new(rec)));
        }
        pause().await;
        rec.grants = req.grants;
        self.0.load(rec.clone()).unwrap();
        Ok(GrantSwap::Swapped(Box::new(rec)))
    }

    async fn retire(&self, req: RetireRequest) -> StoreResult<RetireOutcome> {
        let Some(old) = self.0.get_by_id(req.tenant, req.old_id).await? else {
            return Ok(RetireOutcome::NotLive);
        };
        if old.token_hash != req.old_token_hash || !old.is_live(req.now) {
            return Ok(RetireOutcome::NotLive);
        }
        if old.version != req.expected_version {
            return Ok(RetireOutcome::VersionMismatch {
                current: old.version,
            });
        }
        pause().await;
        let mut tomb = old;
        tomb.make_tombstone(RevokeReason::Upgraded, req.now);
        self.0.load(tomb).unwrap();
        Ok(RetireOutcome::Retired)
    }

    async fn refresh(&self, req: RefreshRequest) -> StoreResult<RefreshOutcome> {
        let Some(mut rec) = self.0.get_by_id(req.tenant, req.id).await? else {
            return Ok(RefreshOutcome::NotLive);
        };
        match judge(&rec, &req) {
            RefreshVerdict::NotLive => Ok(RefreshOutcome::NotLive),
            RefreshVerdict::Replay => Ok(RefreshOutcome::Replayed(Box::new(rec))),
            RefreshVerdict::Reuse => {
                let subject = rec.subject.clone();
                rec.make_tombstone(RevokeReason::ReuseDetected, req.now);
                self.0.load(rec).unwrap();
                Ok(RefreshOutcome::ReuseDetected { subject })
            }
            RefreshVerdict::Rotate => {
                pause().await;
                apply_rotation(&mut rec, &req);
                self.0.load(rec.clone()).unwrap();
                Ok(RefreshOutcome::Rotated(Box::new(rec)))
            }
        }
    }

    async fn revoke(
        &self,
        tenant: TenantId,
        id: SessionId,
        reason: RevokeReason,
        now: Millis,
    ) -> StoreResult<RevokeOutcome> {
        self.0.revoke(tenant, id, reason, now).await
    }

    async fn revoke_subject(
        &self,
        tenant: TenantId,
        subject: &Subject,
        except: Option<SessionId>,
        reason: RevokeReason,
        now: Millis,
    ) -> StoreResult<RevokeSubjectOutcome> {
        self.0
            .revoke_subject(tenant, subject, except, reason, now)
            .await
    }

    async fn list_subject(
        &self,
        tenant: TenantId,
        subject: &Subject,
        now: Millis,
        after: Option<ListCursor>,
        limit: usize,
    ) -> StoreResult<Vec<SessionRecord>> {
        self.0
            .list_subject(tenant, subject, now, after, limit)
            .await
    }

    async fn purge_expired(&self, now: Millis, max: usize) -> StoreResult<Vec<Purged>> {
        self.0.purge_expired(now, max).await
    }

    async fn clock_floor(&self) -> StoreResult<Millis> {
        self.0.clock_floor().await
    }

    async fn persist_clock_floor(&self, at: Millis) -> StoreResult<()> {
        self.0.persist_clock_floor(at).await
    }
}

impl StoreAdmin for Racy {
    async fn list_subjects(
        &self,
        tenant: TenantId,
        now: Millis,
        after: Option<&Subject>,
        limit: usize,
    ) -> StoreResult<Vec<(Subject, u64)>> {
        self.0.list_subjects(tenant, now, after, limit).await
    }

    async fn counts(&self, tenant: TenantId) -> StoreResult<Counts> {
        self.0.counts(tenant).await
    }
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
#[should_panic(expected = "exactly one upgrade wins")]
fn catches_non_atomic_upgrade() {
    run(sessionkit_store_tests::concurrent_upgrades_one_winner(
        Racy::default(),
    ));
}

#[test]
#[should_panic(expected = "round")]
fn catches_touch_reviving_a_revoked_session() {
    run(sessionkit_store_tests::touch_racing_revoke_never_revives(
        Racy::default(),
    ));
}

#[test]
#[should_panic(expected = "round")]
fn catches_update_reviving_a_revoked_session() {
    run(sessionkit_store_tests::update_racing_revoke_never_revives(
        Racy::default(),
    ));
}

#[test]
#[should_panic(expected = "exactly one update wins")]
fn catches_non_atomic_update() {
    run(sessionkit_store_tests::concurrent_updates_one_winner(
        Racy::default(),
    ));
}

#[test]
#[should_panic(expected = "exactly K")]
fn catches_non_atomic_cap_with_eviction() {
    run(sessionkit_store_tests::concurrent_creates_respect_cap_evict(Racy::default()));
}

#[test]
#[should_panic(expected = "exactly K creates succeed")]
fn catches_non_atomic_cap_with_refusal() {
    run(sessionkit_store_tests::concurrent_creates_respect_cap_refuse(Racy::default()));
}

#[test]
#[should_panic(expected = "exactly K anonymous creates succeed")]
fn catches_non_atomic_anonymous_cap() {
    run(sessionkit_store_tests::concurrent_anonymous_creates_respect_cap(Racy::default()));
}

#[test]
#[should_panic(expected = "inconsistent outcomes")]
fn catches_upgrade_racing_revoke() {
    run(sessionkit_store_tests::upgrade_racing_revoke(
        Racy::default(),
    ));
}

#[test]
#[should_panic(expected = "exactly one rotation")]
fn catches_non_atomic_refresh() {
    run(sessionkit_store_tests::concurrent_refreshes_one_successor(
        Racy::default(),
    ));
}

#[test]
#[should_panic(expected = "revived the session")]
fn catches_refresh_reviving_a_revoked_session() {
    run(sessionkit_store_tests::refresh_racing_revoke_never_revives(
        Racy::default(),
    ));
}

/// The non-racing cases still pass against it: the pauses change timing,
/// not sequential behaviour.
#[test]
fn sequential_cases_pass() {
    run(sessionkit_store_tests::upgrade_replaces_session(
        Racy::default(),
    ));
    run(sessionkit_store_tests::update_compare_and_set(
        Racy::default(),
    ));
    run(sessionkit_store_tests::refresh_rotates(Racy::default()));
    run(sessionkit_store_tests::refresh_replay_in_grace(
        Racy::default(),
    ));
    run(sessionkit_store_tests::refresh_reuse_of_grandparent_revokes(Racy::default()));
}

#[test]
#[should_panic(expected = "one winner")]
fn catches_racing_grant_swaps() {
    run(sessionkit_store_tests::concurrent_grant_swaps_one_winner(
        Racy::default(),
    ));
}
