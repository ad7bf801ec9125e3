//! The reference model: a map of records scanned in full, one method per
//! store operation, written against the trait documentation.

use std::collections::BTreeMap;

use crate::support::{UpgradeOutcome, UpgradeRequest};
use serde_json::json;
use sessionkit_core::refresh::{RefreshState, RefreshVerdict, apply_rotation, judge};
use sessionkit_core::store::{
    Change, CreateOutcome, GrantSwap, GrantSwapRequest, Limits, ListCursor, Purged, RefreshOutcome,
    RefreshRequest, RevokeOutcome, RevokeSubjectOutcome, UpdateOutcome,
};
use sessionkit_core::upstream::{Grants, Lease, SealedGrant};
use sessionkit_core::{
    Assurance, ClientInfo, DurationMs, Liveness, Millis, OnSessionLimit, RevokeReason, SessionId,
    SessionRecord, SessionState, Subject, TenantId, TokenHash,
};

use super::{Op, START, id_of, subject_of, tenant, token_of};
use crate::support::attrs;

/// The reference model: every record, the engine's time, and the highest
/// `now` a write has carried.
#[derive(Debug, Clone)]
pub struct Model {
    pub(super) now: Millis,
    pub(super) records: BTreeMap<SessionId, SessionRecord>,
    pub(super) max_write: Millis,
    /// The successor each retired session was retired for (kept while the
    /// old record is): a retire for the same successor is `Retired` again.
    pub(super) successors: BTreeMap<SessionId, SessionId>,
}

pub(super) type Check<T> = Result<T, String>;

impl Model {
    pub(super) fn new() -> Self {
        Model {
            now: START,
            records: BTreeMap::new(),
            max_write: Millis::MIN,
            successors: BTreeMap::new(),
        }
    }

    pub(super) fn wrote(&mut self, now: Millis) {
        self.max_write = self.max_write.max(now);
    }

    pub(super) fn by_token(&self, tenant: TenantId, h: &TokenHash) -> Option<&SessionRecord> {
        self.records
            .values()
            .find(|r| r.tenant == tenant && r.token_hash == *h)
    }

    pub(super) fn by_id(&self, tenant: TenantId, id: SessionId) -> Option<&SessionRecord> {
        self.records.get(&id).filter(|r| r.tenant == tenant)
    }

    pub(super) fn exists(&self, rec: &SessionRecord) -> bool {
        self.records.contains_key(&rec.id)
            || self
                .records
                .values()
                .any(|r| r.token_hash == rec.token_hash)
    }

    pub(super) fn live_of(
        &self,
        tenant: TenantId,
        s: &Subject,
        now: Millis,
    ) -> Vec<&SessionRecord> {
        self.records
            .values()
            .filter(|r| r.tenant == tenant && r.subject.as_ref() == Some(s) && r.is_live(now))
            .collect()
    }

    /// Checks the caps for `rec` and returns the sessions to evict. When
    /// the store evicted, `chosen` is its choice: it must be as many of the
    /// least recently seen live sessions as the cap requires.
    pub(super) fn caps(
        &self,
        rec: &SessionRecord,
        limits: Limits,
        ignoring: Option<SessionId>,
        now: Millis,
        chosen: Option<&[SessionId]>,
    ) -> Check<Result<Vec<SessionId>, CreateOutcome>> {
        let Some(s) = &rec.subject else {
            if let Some(max) = limits.anonymous {
                let n = self
                    .records
                    .values()
                    .filter(|r| {
                        r.tenant == rec.tenant
                            && r.subject.is_none()
                            && r.state == SessionState::Active
                    })
                    .count() as u64;
                if n >= max {
                    return Ok(Err(CreateOutcome::AnonymousLimitReached));
                }
            }
            return Ok(Ok(Vec::new()));
        };
        let Some((max, on)) = limits.per_subject else {
            return Ok(Ok(Vec::new()));
        };
        let mut live = self.live_of(rec.tenant, s, now);
        live.retain(|r| Some(r.id) != ignoring);
        let max = max as usize;
        if live.len() < max {
            return Ok(Ok(Vec::new()));
        }
        if on == OnSessionLimit::Refuse {
            return Ok(Err(CreateOutcome::SubjectLimitReached));
        }
        let k = live.len() + 1 - max;
        live.sort_by_key(|r| (r.last_seen_at, r.id));
        let Some(chosen) = chosen else {
            return Ok(Ok(live.iter().take(k).map(|r| r.id).collect()));
        };
        let mut ids = chosen.to_vec();
        ids.sort();
        ids.dedup();
        if ids.len() != k || chosen.len() != k {
            return Err(format!(
                "evicted {chosen:?}, but exactly {k} distinct sessions had to go"
            ));
        }
        let seen = |id: &SessionId| live.iter().find(|r| r.id == *id).map(|r| r.last_seen_at);
        let mut newest_evicted = Millis::MIN;
        for id in &ids {
            let Some(t) = seen(id) else {
                return Err(format!(
                    "evicted {id:?}, which is not a live session of {s:?}"
                ));
            };
            newest_evicted = newest_evicted.max(t);
        }
        if let Some(kept) = live
            .iter()
            .filter(|r| !ids.contains(&r.id))
            .find(|r| r.last_seen_at < newest_evicted)
        {
            return Err(format!(
                "kept {:?} (last seen {:?}) but evicted a session seen at {newest_evicted:?}",
                kept.id, kept.last_seen_at
            ));
        }
        Ok(Ok(ids))
    }

    pub(super) fn tombstone(&mut self, id: SessionId, reason: RevokeReason, now: Millis) {
        if let Some(r) = self.records.get_mut(&id) {
            r.make_tombstone(reason, now);
        }
    }

    pub(super) fn create(
        &mut self,
        rec: SessionRecord,
        limits: Limits,
        now: Millis,
        chosen: Option<&[SessionId]>,
    ) -> Check<CreateOutcome> {
        if self.exists(&rec) {
            return Ok(CreateOutcome::Duplicate);
        }
        let evict = match self.caps(&rec, limits, None, now, chosen)? {
            Ok(e) => e,
            Err(refusal) => return Ok(refusal),
        };
        for id in &evict {
            self.tombstone(*id, RevokeReason::Evicted, now);
        }
        self.records.insert(rec.id, rec);
        self.wrote(now);
        Ok(CreateOutcome::Created { evicted: evict })
    }

    pub(super) fn touch(&mut self, tenant: TenantId, id: SessionId, at: Millis) -> bool {
        let Some(r) = self.records.get_mut(&id) else {
            return false;
        };
        if r.tenant != tenant || !r.is_live(at) || at <= r.last_seen_at {
            return false;
        }
        r.last_seen_at = at;
        self.wrote(at);
        true
    }

    pub(super) fn update(
        &mut self,
        tenant: TenantId,
        id: SessionId,
        expected: u64,
        change: Change,
        now: Millis,
    ) -> UpdateOutcome {
        let Some(r) = self.records.get_mut(&id) else {
            return UpdateOutcome::NotLive;
        };
        if r.tenant != tenant || !r.is_live(now) {
            return UpdateOutcome::NotLive;
        }
        if r.version != expected {
            return UpdateOutcome::VersionMismatch { current: r.version };
        }
        match change {
            Change::Attributes(a) => r.attributes = a,
        }
        r.version += 1;
        let out = UpdateOutcome::Updated(Box::new(r.clone()));
        self.wrote(now);
        out
    }

    pub(super) fn swap_grants(&mut self, req: GrantSwapRequest) -> GrantSwap {
        let Some(r) = self.records.get_mut(&req.id) else {
            return GrantSwap::NotLive;
        };
        if r.tenant != req.tenant || !r.is_live(req.now) {
            return GrantSwap::NotLive;
        }
        if r.grants != req.expected {
            return GrantSwap::Changed(Box::new(r.clone()));
        }
        r.grants = req.grants;
        let out = GrantSwap::Swapped(Box::new(r.clone()));
        self.wrote(req.now);
        out
    }

    /// The two steps of an upgrade, as the engine makes them: create the
    /// successor (the old session neither counted nor evicted), then retire
    /// the old session; a successor whose retire lost is revoked.
    pub(super) fn upgrade(
        &mut self,
        req: UpgradeRequest,
        chosen: Option<&[SessionId]>,
    ) -> Check<UpgradeOutcome> {
        let now = req.now;
        if self.exists(&req.new) {
            return Ok(UpgradeOutcome::Duplicate);
        }
        let evict = match self.caps(&req.new, req.limits, Some(req.old_id), now, chosen)? {
            Ok(e) => e,
            Err(_) => return Ok(UpgradeOutcome::SubjectLimitReached),
        };
        for id in &evict {
            self.tombstone(*id, RevokeReason::Evicted, now);
        }
        let new_id = req.new.id;
        let tenant = req.new.tenant;
        self.records.insert(new_id, req.new);
        self.wrote(now);
        let retired_for = self.successors.get(&req.old_id).copied();
        let lost = match self.records.get(&req.old_id) {
            Some(old) if old.tenant == tenant && old.token_hash == req.old_token_hash => {
                if old.is_live(now) {
                    (old.version != req.expected_version).then_some(UpgradeOutcome::VersionMismatch)
                } else if retired_for == Some(new_id) {
                    // Already retired for this very successor (the ids of
                    // the model repeat; the engine's never do).
                    return Ok(UpgradeOutcome::Upgraded { evicted: evict });
                } else {
                    Some(UpgradeOutcome::NotLive)
                }
            }
            _ => Some(UpgradeOutcome::NotLive),
        };
        if let Some(lost) = lost {
            self.tombstone(new_id, RevokeReason::Upgraded, now);
            return Ok(lost);
        }
        self.tombstone(req.old_id, RevokeReason::Upgraded, now);
        self.successors.insert(req.old_id, new_id);
        Ok(UpgradeOutcome::Upgraded { evicted: evict })
    }

    pub(super) fn refresh(&mut self, req: RefreshRequest) -> RefreshOutcome {
        let Some(r) = self
            .records
            .get_mut(&req.id)
            .filter(|r| r.tenant == req.tenant)
        else {
            return RefreshOutcome::NotLive;
        };
        match judge(r, &req) {
            RefreshVerdict::NotLive => RefreshOutcome::NotLive,
            RefreshVerdict::Replay => RefreshOutcome::Replayed(Box::new(r.clone())),
            RefreshVerdict::Rotate => {
                apply_rotation(r, &req);
                let out = RefreshOutcome::Rotated(Box::new(r.clone()));
                self.wrote(req.now);
                out
            }
            RefreshVerdict::Reuse => {
                let subject = r.subject.clone();
                self.tombstone(req.id, RevokeReason::ReuseDetected, req.now);
                self.wrote(req.now);
                RefreshOutcome::ReuseDetected { subject }
            }
        }
    }

    pub(super) fn revoke(
        &mut self,
        tenant: TenantId,
        id: SessionId,
        reason: RevokeReason,
        now: Millis,
    ) -> RevokeOutcome {
        match self.by_id(tenant, id) {
            None => RevokeOutcome::NotFound,
            Some(r) if r.state != SessionState::Active => RevokeOutcome::AlreadyRevoked,
            Some(r) => {
                let subject = r.subject.clone();
                self.tombstone(id, reason, now);
                self.wrote(now);
                RevokeOutcome::Revoked { subject }
            }
        }
    }

    pub(super) fn revoke_subject(
        &mut self,
        tenant: TenantId,
        s: &Subject,
        except: Option<SessionId>,
        now: Millis,
    ) -> RevokeSubjectOutcome {
        if let Some(keep) = except {
            let ok = self
                .by_id(tenant, keep)
                .is_some_and(|r| r.subject.as_ref() == Some(s) && r.is_live(now));
            if !ok {
                return RevokeSubjectOutcome::ExceptNotLive;
            }
        }
        let reason = if except.is_some() {
            RevokeReason::OthersRevoked
        } else {
            RevokeReason::SubjectRevoked
        };
        let ids: Vec<SessionId> = self
            .records
            .values()
            .filter(|r| {
                r.tenant == tenant
                    && r.subject.as_ref() == Some(s)
                    && r.state == SessionState::Active
                    && Some(r.id) != except
            })
            .map(|r| r.id)
            .collect();
        for id in &ids {
            self.tombstone(*id, reason, now);
        }
        if !ids.is_empty() {
            self.wrote(now);
        }
        RevokeSubjectOutcome::Revoked {
            count: ids.len() as u64,
        }
    }

    pub(super) fn list(
        &self,
        tenant: TenantId,
        s: &Subject,
        now: Millis,
        after: Option<ListCursor>,
        limit: usize,
    ) -> Vec<SessionRecord> {
        let mut v: Vec<SessionRecord> = self
            .live_of(tenant, s, now)
            .into_iter()
            .filter(|r| after.is_none_or(|c| c.precedes(r)))
            .cloned()
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        v.truncate(limit);
        v
    }

    /// The purge the store made (`chosen`, in its order) must remove
    /// `min(max, due)` distinct due records.
    pub(super) fn purge(
        &mut self,
        now: Millis,
        max: usize,
        chosen: Option<&[SessionId]>,
    ) -> Check<Vec<Purged>> {
        let due: Vec<SessionId> = self
            .records
            .values()
            .filter(|r| r.purge_at() <= now)
            .map(|r| r.id)
            .collect();
        let n = due.len().min(max);
        let ids: Vec<SessionId> = match chosen {
            None => due.iter().copied().take(n).collect(),
            Some(c) => {
                let mut d = c.to_vec();
                d.sort();
                d.dedup();
                if d.len() != c.len() || c.len() != n {
                    return Err(format!(
                        "purge(max {max}) removed {c:?}; {n} distinct of the due {due:?} expected"
                    ));
                }
                if let Some(bad) = c.iter().find(|id| !due.contains(id)) {
                    return Err(format!("purge removed {bad:?}, which is not due"));
                }
                c.to_vec()
            }
        };
        let mut out = Vec::new();
        for id in ids {
            let r = self.records.remove(&id).ok_or("purged twice")?;
            self.successors.remove(&id);
            let expired = match (r.state, r.liveness(now)) {
                (SessionState::Active, Liveness::Expired(cause)) => Some(cause),
                _ => None,
            };
            out.push(Purged {
                tenant: r.tenant,
                id,
                subject: r.subject,
                expired,
            });
        }
        if !out.is_empty() {
            self.wrote(now);
        }
        Ok(out)
    }

    pub(super) fn counts(&self, tenant: TenantId) -> (u64, u64, u64) {
        let active: Vec<&SessionRecord> = self
            .records
            .values()
            .filter(|r| r.tenant == tenant && r.state == SessionState::Active)
            .collect();
        let anonymous = active.iter().filter(|r| r.subject.is_none()).count() as u64;
        let mut subjects: Vec<&Subject> =
            active.iter().filter_map(|r| r.subject.as_ref()).collect();
        subjects.sort();
        subjects.dedup();
        (active.len() as u64, anonymous, subjects.len() as u64)
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn new_record(
    tenant: u8,
    id: u8,
    token: u8,
    subject: Option<u8>,
    idle: i64,
    absolute: i64,
    now: Millis,
    tag: u8,
) -> SessionRecord {
    let subject = subject.map(subject_of);
    let subject_set = subject.as_ref().map(|_| ());
    SessionRecord {
        tenant: self::tenant(tenant),
        id: id_of(id),
        token_hash: token_of(token),
        auth_time: subject.as_ref().map(|_| now),
        subject,
        created_at: now,
        last_seen_at: now,
        idle_timeout: DurationMs::from_millis(idle),
        expires_at: now.saturating_add(DurationMs::from_millis(absolute)),
        attributes: attrs(json!({"tag": tag})),
        client: ClientInfo {
            user_agent: Some(format!("model/{tag}")),
            ..ClientInfo::default()
        },
        version: 1,
        state: SessionState::Active,
        // Every other session is a pair session.
        refresh: tag.is_multiple_of(2).then(|| {
            Box::new(RefreshState {
                current: refresh_of(id, 0),
                previous: None,
                generation: 0,
                issued_at: now,
                grace_until: now,
            })
        }),
        // Every third session of a subject stated its login's assurance.
        assurance: subject_set.filter(|_| tag.is_multiple_of(3)).map(|()| {
            let amr = vec!["pwd".to_owned(), format!("otp{tag}")];
            Box::new(Assurance::new(2, amr).expect("a valid assurance"))
        }),
        // Every fifth holds an upstream grant.
        grants: tag.is_multiple_of(5).then(|| grants_of(0)),
    }
}

/// Grants of one provider, told apart by `n`.
pub(super) fn grants_of(n: u8) -> Box<Grants> {
    Box::new(Grants(vec![SealedGrant {
        provider: format!("idp{}", n % 2),
        key_id: u32::from(n),
        sealed: vec![n, 1, 2, 3],
        lease: (n % 2 == 1).then_some(Lease {
            holder: u64::from(n),
            until: Millis::from_millis(i64::from(n) * 1000),
        }),
        not_before: Millis::from_millis(0),
        dead: n > 6,
    }]))
}

/// The refresh-token hash of generation `generation` of session `id`.
pub(super) fn refresh_of(id: u8, generation: u32) -> TokenHash {
    let mut b = [0x5Au8; 32];
    b[0] = id;
    b[1..5].copy_from_slice(&generation.to_be_bytes());
    TokenHash::from_bytes(b)
}

/// The refresh request of the model: present generation `generation` of
/// session `id`'s chain at `now`.
pub(super) fn refresh_request(
    tenant: u8,
    id: u8,
    generation: u32,
    grace: i64,
    now: Millis,
) -> RefreshRequest {
    RefreshRequest {
        tenant: self::tenant(tenant),
        id: id_of(id),
        presented: refresh_of(id, generation),
        presented_generation: generation,
        successor: refresh_of(id, generation + 1),
        now,
        grace_until: now.saturating_add(DurationMs::from_millis(grace)),
    }
}

pub(super) fn reason_of(i: u8) -> RevokeReason {
    RevokeReason::ALL[usize::from(i) % RevokeReason::ALL.len()]
}

pub(super) fn upgrade_request(now: Millis, op: &Op) -> Option<UpgradeRequest> {
    let Op::Upgrade {
        tenant,
        old_id,
        old_token,
        expected,
        id,
        token,
        subject,
        idle,
        absolute,
        limits,
    } = *op
    else {
        return None;
    };
    Some(UpgradeRequest {
        old_id: id_of(old_id),
        old_token_hash: token_of(old_token),
        expected_version: expected,
        new: new_record(tenant, id, token, Some(subject), idle, absolute, now, 0),
        limits: limits.limits(),
        now,
    })
}
