//! The store operations under the writer lock: each decides and applies
//! one [`SessionStore`](sessionkit_core::store::SessionStore) operation atomically.

use super::WriteTxn;
use super::expiry::Verdict;
use sessionkit_core::ids::{SessionId, Subject, TenantId};
use sessionkit_core::record::{Liveness, RevokeReason, SessionRecord};
use sessionkit_core::refresh::{RefreshVerdict, judge};
use sessionkit_core::store::{
    Change, Counts, CreateOutcome, GrantSwap, GrantSwapRequest, Limits, ListCursor, Purged,
    RefreshOutcome, RefreshRequest, RetireOutcome, RetireRequest, RevokeOutcome,
    RevokeSubjectOutcome, StoreResult, UpdateOutcome,
};
use sessionkit_core::time::Millis;

impl WriteTxn<'_> {
    /// See [`SessionStore::create`](sessionkit_core::store::SessionStore::create).
    ///
    /// # Errors
    /// [`StoreError::Capacity`](sessionkit_core::StoreError::Capacity) if
    /// the record's shard has no room; nothing changes then.
    pub fn create(
        &mut self,
        rec: SessionRecord,
        limits: Limits,
        now: Millis,
    ) -> StoreResult<CreateOutcome> {
        if self.exists(&rec) {
            return Ok(CreateOutcome::Duplicate);
        }
        let evict = match self.check_caps(&rec, limits, now) {
            Ok(e) => e,
            Err(refusal) => return Ok(refusal),
        };
        let evicted = self.ids_of(&evict);
        self.insert(rec)?;
        self.note_now(now);
        for loc in evict {
            self.tombstone(loc, RevokeReason::Evicted, now);
        }
        Ok(CreateOutcome::Created { evicted })
    }

    /// See [`SessionStore::touch`](sessionkit_core::store::SessionStore::touch).
    pub fn touch(&mut self, tenant: TenantId, id: SessionId, at: Millis) -> bool {
        let Some(loc) = self.loc_of(id) else {
            return false;
        };
        if self.tenant_of(loc) != Some(tenant) {
            return false;
        }
        let moved = self.with_shard_mut(loc, |shard| {
            let due = shard
                .slot(loc)
                .is_some_and(|s| s.is_live(at) && at > s.last_seen_at());
            // The purge time moves later; the wheel refiles the entry when
            // the old time comes (see `expiry`).
            if due {
                shard.set_last_seen(loc, at);
            }
            due
        });
        if moved {
            self.note_now(at);
        }
        moved
    }

    /// See [`SessionStore::update`](sessionkit_core::store::SessionStore::update).
    ///
    /// # Errors
    /// [`StoreError::Capacity`](sessionkit_core::StoreError::Capacity) if
    /// the version is at its maximum or the new record has no room, and
    /// [`StoreError::Corrupt`](sessionkit_core::StoreError::Corrupt) if the
    /// record does not decode; nothing changes then.
    pub fn update(
        &mut self,
        tenant: TenantId,
        id: SessionId,
        expected_version: u64,
        change: Change,
        now: Millis,
    ) -> StoreResult<UpdateOutcome> {
        let Some(loc) = self.loc_of(id) else {
            return Ok(UpdateOutcome::NotLive);
        };
        if self.tenant_of(loc) != Some(tenant) {
            return Ok(UpdateOutcome::NotLive);
        }
        let check = self.with(loc, |_, s| (s.is_live(now), s.version()));
        match check {
            Some((true, current)) if current == expected_version => {}
            Some((true, current)) => return Ok(UpdateOutcome::VersionMismatch { current }),
            _ => return Ok(UpdateOutcome::NotLive),
        }
        self.journal_loc(loc);
        self.with_shard_mut(loc, |shard| match &change {
            Change::Attributes(a) => shard.set_attributes(loc, a),
        })?;
        self.note_now(now);
        Ok(match self.record_at(loc)? {
            Some(rec) => UpdateOutcome::Updated(Box::new(rec)),
            None => UpdateOutcome::NotLive,
        })
    }

    /// See [`SessionStore::swap_grants`](sessionkit_core::store::SessionStore::swap_grants).
    ///
    /// # Errors
    /// As [`Self::update`].
    pub fn swap_grants(&mut self, req: GrantSwapRequest) -> StoreResult<GrantSwap> {
        let Some(loc) = self.loc_of(req.id) else {
            return Ok(GrantSwap::NotLive);
        };
        if self.tenant_of(loc) != Some(req.tenant) {
            return Ok(GrantSwap::NotLive);
        }
        let Some(rec) = self.record_at(loc)? else {
            return Ok(GrantSwap::NotLive);
        };
        if !rec.is_live(req.now) {
            return Ok(GrantSwap::NotLive);
        }
        if rec.grants != req.expected {
            return Ok(GrantSwap::Changed(Box::new(rec)));
        }
        self.journal_loc(loc);
        self.with_shard_mut(loc, |shard| shard.set_grants(loc, req.grants))?;
        self.note_now(req.now);
        Ok(match self.record_at(loc)? {
            Some(rec) => GrantSwap::Swapped(Box::new(rec)),
            None => GrantSwap::NotLive,
        })
    }

    /// See [`SessionStore::retire`](sessionkit_core::store::SessionStore::retire).
    pub fn retire(&mut self, req: RetireRequest) -> RetireOutcome {
        let now = req.now;
        let Some(old) = self.loc_of(req.old_id) else {
            return RetireOutcome::NotLive;
        };
        let check = self.with(old, |shard, s| {
            (shard.tenant_of(s) == Some(req.tenant) && s.token_hash() == req.old_token_hash)
                .then(|| (s.is_live(now), s.version()))
        });
        match check.flatten() {
            None => RetireOutcome::NotLive,
            Some((false, _)) => {
                if self.w.successors.get(&req.old_id) == Some(&req.successor) {
                    RetireOutcome::Retired
                } else {
                    RetireOutcome::NotLive
                }
            }
            Some((true, current)) if current != req.expected_version => {
                RetireOutcome::VersionMismatch { current }
            }
            Some((true, _)) => {
                self.note_now(now);
                self.tombstone(old, RevokeReason::Upgraded, now);
                // Unless the record did not decode and went instead.
                if self.loc_of(req.old_id).is_some() {
                    self.w.successors.insert(req.old_id, req.successor);
                }
                RetireOutcome::Retired
            }
        }
    }

    /// See [`SessionStore::refresh`](sessionkit_core::store::SessionStore::refresh).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`](sessionkit_core::StoreError::Corrupt) if the
    /// record does not decode (it is removed: fail closed).
    pub fn refresh(&mut self, req: RefreshRequest) -> StoreResult<RefreshOutcome> {
        let Some(loc) = self.loc_of(req.id) else {
            return Ok(RefreshOutcome::NotLive);
        };
        if self.tenant_of(loc) != Some(req.tenant) {
            return Ok(RefreshOutcome::NotLive);
        }
        let Some(rec) = self.record_at(loc)? else {
            return Ok(RefreshOutcome::NotLive);
        };
        match judge(&rec, &req) {
            RefreshVerdict::NotLive => Ok(RefreshOutcome::NotLive),
            RefreshVerdict::Replay => Ok(RefreshOutcome::Replayed(Box::new(rec))),
            RefreshVerdict::Reuse => {
                self.note_now(req.now);
                let subject = self
                    .tombstone(loc, RevokeReason::ReuseDetected, req.now)
                    .flatten();
                Ok(RefreshOutcome::ReuseDetected { subject })
            }
            RefreshVerdict::Rotate => {
                self.journal_loc(loc);
                self.note_now(req.now);
                // The purge time may move later (last seen moves): the
                // wheel refiles the entry when the old time comes.
                if !self.with_shard_mut(loc, |shard| shard.rotate_refresh(loc, &req)) {
                    self.remove_loc(loc);
                    return Ok(RefreshOutcome::NotLive);
                }
                Ok(match self.record_at(loc)? {
                    Some(rec) => RefreshOutcome::Rotated(Box::new(rec)),
                    None => RefreshOutcome::NotLive,
                })
            }
        }
    }

    /// See [`SessionStore::revoke`](sessionkit_core::store::SessionStore::revoke).
    pub fn revoke(
        &mut self,
        tenant: TenantId,
        id: SessionId,
        reason: RevokeReason,
        now: Millis,
    ) -> RevokeOutcome {
        let Some(loc) = self.loc_of(id) else {
            return RevokeOutcome::NotFound;
        };
        match self.with(loc, |shard, s| (shard.tenant_of(s), s.is_active())) {
            Some((t, _)) if t != Some(tenant) => RevokeOutcome::NotFound,
            None => RevokeOutcome::NotFound,
            Some((_, false)) => RevokeOutcome::AlreadyRevoked,
            Some((_, true)) => {
                self.note_now(now);
                match self.tombstone(loc, reason, now) {
                    Some(subject) => RevokeOutcome::Revoked { subject },
                    None => RevokeOutcome::AlreadyRevoked,
                }
            }
        }
    }

    /// See [`SessionStore::revoke_subject`](sessionkit_core::store::SessionStore::revoke_subject).
    pub fn revoke_subject(
        &mut self,
        tenant: TenantId,
        subject: &Subject,
        except: Option<SessionId>,
        reason: RevokeReason,
        now: Millis,
    ) -> RevokeSubjectOutcome {
        let locs = self.subject_locs(tenant, subject.as_str().as_bytes());
        let keep = match except {
            None => None,
            Some(keep) => {
                let found = locs
                    .iter()
                    .copied()
                    .find(|l| self.with(*l, |_, s| s.id() == keep && s.is_live(now)) == Some(true));
                match found {
                    Some(l) => Some(l),
                    None => return RevokeSubjectOutcome::ExceptNotLive,
                }
            }
        };
        self.note_now(now);
        let mut count = 0;
        for loc in locs {
            if Some(loc) != keep && self.tombstone(loc, reason, now).is_some() {
                count += 1;
            }
        }
        RevokeSubjectOutcome::Revoked { count }
    }

    /// See [`SessionStore::list_subject`](sessionkit_core::store::SessionStore::list_subject).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`](sessionkit_core::StoreError::Corrupt) if a
    /// record does not decode.
    pub fn list_subject(
        &self,
        tenant: TenantId,
        subject: &Subject,
        now: Millis,
        after: Option<ListCursor>,
        limit: usize,
    ) -> StoreResult<Vec<SessionRecord>> {
        let mut recs = Vec::new();
        for l in self.subject_locs(tenant, subject.as_str().as_bytes()) {
            if self.with(l, |_, s| s.is_live(now)) == Some(true)
                && let Some(rec) = self.record_at(l)?
                && after.is_none_or(|c| c.precedes(&rec))
            {
                recs.push(rec);
            }
        }
        recs.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        recs.truncate(limit);
        Ok(recs)
    }

    /// See [`StoreAdmin::list_subjects`](sessionkit_core::store::StoreAdmin::list_subjects).
    pub fn list_subjects(
        &self,
        tenant: TenantId,
        now: Millis,
        after: Option<&Subject>,
        limit: usize,
    ) -> Vec<(Subject, u64)> {
        self.subjects_page(tenant, now, after, limit)
    }

    /// See [`StoreAdmin::counts`](sessionkit_core::store::StoreAdmin::counts).
    #[must_use]
    pub fn counts_of(&self, tenant: TenantId) -> Counts {
        let c = self.w.counts.get(&tenant).copied().unwrap_or_default();
        Counts {
            active: c.active,
            anonymous: c.anonymous,
            subjects: c.subjects,
            approximate: false,
        }
    }

    /// See [`SessionStore::purge_expired`](sessionkit_core::store::SessionStore::purge_expired).
    pub fn purge_expired(&mut self, now: Millis, max: usize) -> Vec<Purged> {
        let mut out = Vec::new();
        let mut wheel = std::mem::take(&mut self.w.expiry);
        wheel.drain_due(now, max, |loc| {
            let Some((purge_at, liveness)) = self.with(loc, |_, s| (s.purge_at(), s.liveness(now)))
            else {
                return Verdict::Stale;
            };
            if purge_at > now {
                return Verdict::Refile(purge_at);
            }
            let Some((Some(tenant), removed)) = self.remove_loc(loc) else {
                // Gone, or removed though its tenant did not decode.
                return Verdict::Stale;
            };
            out.push(Purged {
                tenant,
                id: removed.id,
                subject: removed.subject,
                expired: match liveness {
                    Liveness::Expired(c) => Some(c),
                    _ => None,
                },
            });
            Verdict::Purged
        });
        // Nothing files entries while the wheel is taken out: a purge only
        // removes records.
        self.w.expiry = wheel;
        if !out.is_empty() {
            self.note_now(now);
        }
        out
    }
}
