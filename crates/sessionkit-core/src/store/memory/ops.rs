//! The store operations under the writer lock: each decides and applies
//! one [`SessionStore`](crate::store::SessionStore) operation atomically.

use super::WriteTxn;
use super::expiry::Verdict;
use crate::ids::{SessionId, Subject, TenantId};
use crate::record::{Liveness, RevokeReason, SessionRecord};
use crate::store::{
    Change, CreateOutcome, Limits, Purged, RevokeOutcome, RevokeSubjectOutcome, UpdateOutcome,
    UpgradeOutcome, UpgradeRequest,
};
use crate::time::Millis;

impl WriteTxn<'_> {
    /// See [`SessionStore::create`](crate::store::SessionStore::create).
    pub fn create(&mut self, rec: SessionRecord, limits: Limits, now: Millis) -> CreateOutcome {
        if self.exists(&rec) {
            return CreateOutcome::Duplicate;
        }
        let evict = match self.check_caps(&rec, limits, None, now) {
            Ok(e) => e,
            Err(refusal) => return refusal,
        };
        let evicted = self.ids_of(&evict);
        if !self.insert(rec) {
            return CreateOutcome::Duplicate;
        }
        self.note_now(now);
        for loc in evict {
            self.tombstone(loc, RevokeReason::Evicted, now);
        }
        CreateOutcome::Created { evicted }
    }

    /// See [`SessionStore::touch`](crate::store::SessionStore::touch).
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

    /// See [`SessionStore::update`](crate::store::SessionStore::update).
    pub fn update(
        &mut self,
        tenant: TenantId,
        id: SessionId,
        expected_version: u64,
        change: Change,
        now: Millis,
    ) -> UpdateOutcome {
        let Some(loc) = self.loc_of(id) else {
            return UpdateOutcome::NotLive;
        };
        if self.tenant_of(loc) != Some(tenant) {
            return UpdateOutcome::NotLive;
        }
        let applied = self.with_shard_mut(loc, |shard| {
            let s = shard.slot(loc)?;
            if !s.is_live(now) {
                return Some(Err(UpdateOutcome::NotLive));
            }
            let current = s.version();
            if current != expected_version {
                return Some(Err(UpdateOutcome::VersionMismatch { current }));
            }
            let ok = match &change {
                Change::Attributes(a) => shard.set_attributes(loc, a),
            };
            // A version that cannot grow (after 4 billion changes), or an
            // arena with no room, is a conflict the caller cannot win.
            Some(if ok {
                Ok(())
            } else {
                Err(UpdateOutcome::VersionMismatch { current })
            })
        });
        match applied {
            Some(Ok(())) => {
                self.note_now(now);
                match self.with(loc, |shard, s| shard.to_record(s)) {
                    Some(rec) => UpdateOutcome::Updated(Box::new(rec)),
                    None => UpdateOutcome::NotLive,
                }
            }
            Some(Err(out)) => out,
            None => UpdateOutcome::NotLive,
        }
    }

    /// See [`SessionStore::upgrade`](crate::store::SessionStore::upgrade).
    pub fn upgrade(&mut self, req: UpgradeRequest) -> UpgradeOutcome {
        let now = req.now;
        let Some(old) = self.loc_of(req.old_id) else {
            return UpgradeOutcome::NotLive;
        };
        let check = self.with(old, |shard, s| {
            let ok = shard.tenant_of(s) == req.new.tenant
                && s.token_hash() == req.old_token_hash
                && s.is_live(now);
            ok.then(|| s.version())
        });
        match check.flatten() {
            None => return UpgradeOutcome::NotLive,
            Some(v) if v != req.expected_version => return UpgradeOutcome::VersionMismatch,
            Some(_) => {}
        }
        if self.exists(&req.new) {
            return UpgradeOutcome::Duplicate;
        }
        let evict = match self.check_caps(&req.new, req.limits, Some(old), now) {
            Ok(e) => e,
            Err(_) => return UpgradeOutcome::SubjectLimitReached,
        };
        let evicted = self.ids_of(&evict);
        // Insert first: if the new record's shard is full nothing changed.
        if !self.insert(req.new) {
            return UpgradeOutcome::Duplicate;
        }
        self.note_now(now);
        self.tombstone(old, RevokeReason::Upgraded, now);
        for loc in evict {
            self.tombstone(loc, RevokeReason::Evicted, now);
        }
        UpgradeOutcome::Upgraded { evicted }
    }

    /// See [`SessionStore::revoke`](crate::store::SessionStore::revoke).
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
            Some((t, _)) if t != tenant => RevokeOutcome::NotFound,
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

    /// See [`SessionStore::revoke_subject`](crate::store::SessionStore::revoke_subject).
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
        let mut revoked = Vec::new();
        for loc in locs {
            if Some(loc) == keep {
                continue;
            }
            let id = self.with(loc, |_, s| s.id());
            if let (Some(id), Some(_)) = (id, self.tombstone(loc, reason, now)) {
                revoked.push(id);
            }
        }
        RevokeSubjectOutcome::Revoked(revoked)
    }

    /// See [`SessionStore::purge_expired`](crate::store::SessionStore::purge_expired).
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
            let Some((tenant, removed)) = self.remove_loc(loc) else {
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
