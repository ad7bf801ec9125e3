//! The model test: a proptest state machine that drives a store and a
//! plain reference model of the documented semantics with the same random
//! sequence of operations, and compares every answer.
//!
//! The reference model is deliberately naive (a map of records scanned in
//! full) so that it can be read against the trait documentation. Where the
//! contract leaves a choice to the store — which of several equally old
//! sessions to evict, which due records a purge bounded by `max` removes —
//! the model checks that the store's choice is one the contract allows and
//! then follows it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use proptest_state_machine::ReferenceStateMachine;
use serde_json::json;
use sessionkit_core::store::{
    Change, Counts, CreateOutcome, Limits, ListCursor, Purged, RevokeOutcome, RevokeSubjectOutcome,
    UpdateOutcome, UpgradeOutcome, UpgradeRequest,
};
use sessionkit_core::{
    ClientInfo, DurationMs, Liveness, Millis, OnSessionLimit, RevokeReason, SessionId,
    SessionRecord, SessionState, SessionStore, Subject, TenantId, TokenHash,
};

use crate::IntoFixture;
use crate::support::{attrs, subject, tenant_a, tenant_b};

/// Size of the id pool and of the token pool. Even indexes are used by the
/// first tenant's creates, odd ones by the second's, so that two tenants
/// never hold the same key (the trait does not say whether keys are unique
/// per tenant or globally) while lookups still cross tenants.
const POOL: u8 = 64;
const SUBJECTS: [&str; 3] = ["alice", "bob", "carol"];
const START: Millis = Millis::from_millis(1_767_323_045_000);

fn tenant(i: u8) -> TenantId {
    if i == 0 { tenant_a() } else { tenant_b() }
}

fn tenant_index(t: TenantId) -> u8 {
    u8::from(t != tenant_a())
}

fn id_of(i: u8) -> SessionId {
    let mut b = [0u8; 16];
    b[0] = 0x01;
    b[6] = 0x70;
    b[8] = 0x80;
    b[15] = i;
    SessionId::from_bytes(b)
}

fn id_index(id: SessionId) -> u8 {
    id.as_bytes()[15]
}

fn token_of(i: u8) -> TokenHash {
    let mut b = [0xA5u8; 32];
    b[0] = i;
    TokenHash::from_bytes(b)
}

fn token_index(h: &TokenHash) -> u8 {
    h.as_bytes()[0]
}

fn subject_of(i: u8) -> Subject {
    subject(SUBJECTS[usize::from(i) % SUBJECTS.len()])
}

/// Caps as generated: a per-subject cap and an anonymous cap.
#[derive(Debug, Clone, Copy)]
pub struct GenLimits {
    per_subject: Option<(u32, bool)>,
    anonymous: Option<u64>,
}

impl GenLimits {
    fn limits(self) -> Limits {
        Limits {
            per_subject: self.per_subject.map(|(n, evict)| {
                (
                    n,
                    if evict {
                        OnSessionLimit::EvictOldest
                    } else {
                        OnSessionLimit::Refuse
                    },
                )
            }),
            anonymous: self.anonymous,
        }
    }
}

/// One operation of the model test.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub enum Op {
    Create {
        tenant: u8,
        id: u8,
        token: u8,
        subject: Option<u8>,
        idle: i64,
        absolute: i64,
        limits: GenLimits,
        tag: u8,
    },
    GetByToken {
        tenant: u8,
        token: u8,
    },
    GetById {
        tenant: u8,
        id: u8,
    },
    Touch {
        tenant: u8,
        id: u8,
    },
    Update {
        tenant: u8,
        id: u8,
        expected: u64,
        tag: u8,
    },
    Upgrade {
        tenant: u8,
        old_id: u8,
        old_token: u8,
        expected: u64,
        id: u8,
        token: u8,
        subject: u8,
        idle: i64,
        absolute: i64,
        limits: GenLimits,
    },
    Revoke {
        tenant: u8,
        id: u8,
        reason: u8,
    },
    RevokeSubject {
        tenant: u8,
        subject: u8,
        except: Option<u8>,
    },
    List {
        tenant: u8,
        subject: u8,
        limit: usize,
    },
    Purge {
        max: usize,
    },
    Counts {
        tenant: u8,
    },
}

/// A step: move the engine's clock forward by `advance` ms, then run `op`.
#[derive(Debug, Clone)]
pub struct Step {
    advance: i64,
    op: Op,
}

/// The reference model: every record, the engine's time, and the highest
/// `now` a write has carried.
#[derive(Debug, Clone)]
pub struct Model {
    now: Millis,
    records: BTreeMap<SessionId, SessionRecord>,
    max_write: Millis,
}

type Check<T> = Result<T, String>;

impl Model {
    fn new() -> Self {
        Model {
            now: START,
            records: BTreeMap::new(),
            max_write: Millis::MIN,
        }
    }

    fn wrote(&mut self, now: Millis) {
        self.max_write = self.max_write.max(now);
    }

    fn by_token(&self, tenant: TenantId, h: &TokenHash) -> Option<&SessionRecord> {
        self.records
            .values()
            .find(|r| r.tenant == tenant && r.token_hash == *h)
    }

    fn by_id(&self, tenant: TenantId, id: SessionId) -> Option<&SessionRecord> {
        self.records.get(&id).filter(|r| r.tenant == tenant)
    }

    fn exists(&self, rec: &SessionRecord) -> bool {
        self.records.contains_key(&rec.id)
            || self
                .records
                .values()
                .any(|r| r.token_hash == rec.token_hash)
    }

    fn live_of(&self, tenant: TenantId, s: &Subject, now: Millis) -> Vec<&SessionRecord> {
        self.records
            .values()
            .filter(|r| r.tenant == tenant && r.subject.as_ref() == Some(s) && r.is_live(now))
            .collect()
    }

    /// Checks the caps for `rec` and returns the sessions to evict. When
    /// the store evicted, `chosen` is its choice: it must be as many of the
    /// least recently seen live sessions as the cap requires.
    fn caps(
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

    fn tombstone(&mut self, id: SessionId, reason: RevokeReason, now: Millis) {
        if let Some(r) = self.records.get_mut(&id) {
            r.make_tombstone(reason, now);
        }
    }

    fn create(
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

    fn touch(&mut self, tenant: TenantId, id: SessionId, at: Millis) -> bool {
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

    fn update(
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
            _ => unreachable!("the model generates attribute changes only"),
        }
        r.version += 1;
        let out = UpdateOutcome::Updated(Box::new(r.clone()));
        self.wrote(now);
        out
    }

    fn upgrade(
        &mut self,
        req: UpgradeRequest,
        chosen: Option<&[SessionId]>,
    ) -> Check<UpgradeOutcome> {
        let now = req.now;
        let Some(old) = self.records.get(&req.old_id) else {
            return Ok(UpgradeOutcome::NotLive);
        };
        if old.tenant != req.new.tenant || old.token_hash != req.old_token_hash || !old.is_live(now)
        {
            return Ok(UpgradeOutcome::NotLive);
        }
        if old.version != req.expected_version {
            return Ok(UpgradeOutcome::VersionMismatch);
        }
        if self.exists(&req.new) {
            return Ok(UpgradeOutcome::Duplicate);
        }
        let evict = match self.caps(&req.new, req.limits, Some(req.old_id), now, chosen)? {
            Ok(e) => e,
            Err(_) => return Ok(UpgradeOutcome::SubjectLimitReached),
        };
        self.tombstone(req.old_id, RevokeReason::Upgraded, now);
        for id in &evict {
            self.tombstone(*id, RevokeReason::Evicted, now);
        }
        self.records.insert(req.new.id, req.new);
        self.wrote(now);
        Ok(UpgradeOutcome::Upgraded { evicted: evict })
    }

    fn revoke(
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

    fn revoke_subject(
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
        RevokeSubjectOutcome::Revoked(ids)
    }

    fn list(
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
    fn purge(
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

    fn counts(&self, tenant: TenantId) -> (u64, u64, u64) {
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
fn new_record(
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
    }
}

fn reason_of(i: u8) -> RevokeReason {
    RevokeReason::ALL[usize::from(i) % RevokeReason::ALL.len()]
}

fn upgrade_request(now: Millis, op: &Op) -> Option<UpgradeRequest> {
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

// ---------------------------------------------------------------------------
// Generation.

/// Idle timeouts and absolute lifetimes generated, in ms: long enough that
/// several sessions of a subject are live at once, short enough that they
/// expire within a sequence.
const IDLE: std::ops::RangeInclusive<i64> = 30..=300;
const ABSOLUTE: std::ops::RangeInclusive<i64> = 60..=600;

fn subject_strategy() -> impl Strategy<Value = u8> {
    prop_oneof![3 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8)]
}

fn limits_strategy() -> impl Strategy<Value = GenLimits> {
    (
        proptest::option::weighted(0.8, (1u32..=3, any::<bool>())),
        proptest::option::weighted(0.3, 1u64..=4),
    )
        .prop_map(|(per_subject, anonymous)| GenLimits {
            per_subject,
            anonymous,
        })
}

/// A pool index for a key that `tenant` creates.
fn key_for(tenant: u8) -> impl Strategy<Value = u8> {
    (0..POOL / 2).prop_map(move |k| k * 2 + tenant)
}

fn tenant_strategy() -> impl Strategy<Value = u8> {
    prop_oneof![4 => Just(0u8), 1 => Just(1u8)]
}

fn create_op() -> BoxedStrategy<Op> {
    let tenant = tenant_strategy;
    (
        tenant(),
        proptest::option::weighted(0.75, subject_strategy()),
        IDLE,
        ABSOLUTE,
        limits_strategy(),
        any::<u8>(),
    )
        .prop_flat_map(move |(t, subject, idle, absolute, limits, tag)| {
            (key_for(t), key_for(t)).prop_map(move |(id, token)| Op::Create {
                tenant: t,
                id,
                token,
                subject,
                idle,
                absolute,
                limits,
                tag,
            })
        })
        .boxed()
}

fn random_op() -> BoxedStrategy<Op> {
    let tenant = tenant_strategy;
    let any_key = || 0..POOL;
    prop_oneof![
        2 => create_op(),
        2 => (tenant(), any_key()).prop_map(|(tenant, token)| Op::GetByToken { tenant, token }),
        2 => (tenant(), any_key()).prop_map(|(tenant, id)| Op::GetById { tenant, id }),
        2 => (tenant(), any_key()).prop_map(|(tenant, id)| Op::Touch { tenant, id }),
        1 => (tenant(), any_key(), 1u64..=3, any::<u8>()).prop_map(|(tenant, id, expected, tag)| Op::Update { tenant, id, expected, tag }),
        1 => (tenant(), any_key(), 0u8..8).prop_map(|(tenant, id, reason)| Op::Revoke { tenant, id, reason }),
        2 => (tenant(), subject_strategy(), proptest::option::weighted(0.3, any_key())).prop_map(|(tenant, subject, except)| Op::RevokeSubject { tenant, subject, except }),
        3 => (tenant(), subject_strategy(), 1usize..=4).prop_map(|(tenant, subject, limit)| Op::List { tenant, subject, limit }),
        2 => (1usize..=4).prop_map(|max| Op::Purge { max }),
        1 => tenant().prop_map(|tenant| Op::Counts { tenant }),
    ]
    .boxed()
}

/// What the generator knows of a stored record, to aim operations at it.
#[derive(Debug, Clone, Copy)]
struct Known {
    tenant: u8,
    id: u8,
    token: u8,
    version: u64,
    subject: Option<u8>,
}

fn targeted_op(known: Vec<Known>) -> BoxedStrategy<Op> {
    let pick = select(known);
    (
        pick,
        0u8..10,
        any::<u8>(),
        (subject_strategy(), IDLE, ABSOLUTE, limits_strategy()),
        0..POOL / 2,
        0..POOL / 2,
    )
        .prop_map(
            |(k, what, tag, (s, idle, absolute, limits), new_id, new_token)| {
                let other = 1 - k.tenant;
                match what {
                    0 => Op::Touch {
                        tenant: k.tenant,
                        id: k.id,
                    },
                    1 => Op::Update {
                        tenant: k.tenant,
                        id: k.id,
                        expected: k.version,
                        tag,
                    },
                    2 => Op::Update {
                        tenant: k.tenant,
                        id: k.id,
                        expected: k.version + u64::from(tag % 2),
                        tag,
                    },
                    3 | 4 => Op::Upgrade {
                        tenant: if tag % 8 == 0 { other } else { k.tenant },
                        old_id: k.id,
                        old_token: if tag % 7 == 0 {
                            (k.token + 2) % POOL
                        } else {
                            k.token
                        },
                        expected: if tag % 5 == 0 {
                            k.version + 1
                        } else {
                            k.version
                        },
                        id: new_id * 2 + k.tenant,
                        token: new_token * 2 + k.tenant,
                        subject: if tag % 2 == 0 {
                            k.subject.unwrap_or(s)
                        } else {
                            s
                        },
                        idle,
                        absolute,
                        limits,
                    },
                    5 => Op::Revoke {
                        tenant: if tag % 4 == 0 { other } else { k.tenant },
                        id: k.id,
                        reason: tag % 8,
                    },
                    6 => Op::RevokeSubject {
                        tenant: k.tenant,
                        subject: k.subject.unwrap_or(s),
                        except: Some(k.id),
                    },
                    7 => Op::GetByToken {
                        tenant: if tag % 3 == 0 { other } else { k.tenant },
                        token: k.token,
                    },
                    8 => Op::GetById {
                        tenant: if tag % 3 == 0 { other } else { k.tenant },
                        id: k.id,
                    },
                    _ => Op::List {
                        tenant: k.tenant,
                        subject: k.subject.unwrap_or(s),
                        limit: 1 + usize::from(tag % 3),
                    },
                }
            },
        )
        .boxed()
}

/// The reference state machine that generates the operations.
#[derive(Debug)]
pub struct Reference;

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::new()).boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Step> {
        // Time moves by small steps, by large jumps, and exactly onto (or
        // 1 ms before) the next deadline of some record, so that every
        // boundary is hit.
        let mut to_deadline: Vec<i64> = state
            .records
            .values()
            .flat_map(|r| [r.purge_at(), r.idle_expires_at(), r.expires_at])
            .map(|d| d.saturating_since(state.now).as_millis())
            .filter(|d| *d > 0)
            .flat_map(|d| [d, d - 1])
            .collect();
        to_deadline.sort_unstable();
        // Only the next one: jumping to a far deadline would expire everything.
        to_deadline.truncate(2);
        let advance = if to_deadline.is_empty() {
            prop_oneof![3 => Just(0i64), 6 => 1i64..=5, 1 => 50i64..=200].boxed()
        } else {
            prop_oneof![3 => Just(0i64), 6 => 1i64..=5, 1 => select(to_deadline.clone()), 1 => 50i64..=200]
                .boxed()
        };
        let known: Vec<Known> = state
            .records
            .values()
            .map(|r| Known {
                tenant: tenant_index(r.tenant),
                id: id_index(r.id),
                token: token_index(&r.token_hash),
                version: r.version,
                subject: r
                    .subject
                    .as_ref()
                    .and_then(|s| SUBJECTS.iter().position(|x| *x == s.as_str()))
                    .map(|p| p as u8),
            })
            .collect();
        let live = state
            .records
            .values()
            .filter(|r| r.is_live(state.now))
            .count();
        let creates = if live < 6 { 3 } else { 1 };
        let op = if known.is_empty() {
            prop_oneof![creates => create_op(), 1 => random_op()].boxed()
        } else {
            prop_oneof![creates => create_op(), 2 => random_op(), 3 => targeted_op(known)].boxed()
        };
        let step = (advance, op).prop_map(|(advance, op)| Step { advance, op });
        if to_deadline.is_empty() {
            return step.boxed();
        }
        // A purge exactly at (or 1 ms before) the next purge time.
        let purge_at_deadline = (select(to_deadline), 1usize..=4).prop_map(|(advance, max)| Step {
            advance,
            op: Op::Purge { max },
        });
        prop_oneof![12 => step, 1 => purge_at_deadline].boxed()
    }

    fn apply(mut state: Model, step: &Step) -> Model {
        // Generation only needs the model's own choices; failures are found
        // when the steps run against the store.
        let _ = apply_model(&mut state, step, None);
        state
    }
}

/// What the store answered, when the model needs the store's choice.
enum Choice<'a> {
    Evicted(&'a [SessionId]),
    Purged(&'a [SessionId]),
}

/// Applies a step to the model; returns its expected answer as a string
/// (compared against the store's, normalised the same way).
fn apply_model(m: &mut Model, step: &Step, choice: Option<Choice<'_>>) -> Check<String> {
    m.now = m.now.saturating_add(DurationMs::from_millis(step.advance));
    let now = m.now;
    let evicted = match choice {
        Some(Choice::Evicted(e)) => Some(e),
        _ => None,
    };
    Ok(match &step.op {
        Op::Create {
            tenant,
            id,
            token,
            subject,
            idle,
            absolute,
            limits,
            tag,
        } => {
            let rec = new_record(*tenant, *id, *token, *subject, *idle, *absolute, now, *tag);
            norm_create(m.create(rec, limits.limits(), now, evicted)?)
        }
        Op::GetByToken { tenant, token } => {
            format!("{:?}", m.by_token(self::tenant(*tenant), &token_of(*token)))
        }
        Op::GetById { tenant, id } => format!("{:?}", m.by_id(self::tenant(*tenant), id_of(*id))),
        Op::Touch { tenant, id } => {
            format!("{:?}", m.touch(self::tenant(*tenant), id_of(*id), now))
        }
        Op::Update {
            tenant,
            id,
            expected,
            tag,
        } => {
            let change = Change::Attributes(attrs(json!({"updated": tag})));
            format!(
                "{:?}",
                m.update(self::tenant(*tenant), id_of(*id), *expected, change, now)
            )
        }
        op @ Op::Upgrade { .. } => {
            let req = upgrade_request(now, op).ok_or("not an upgrade")?;
            norm_upgrade(m.upgrade(req, evicted)?)
        }
        Op::Revoke { tenant, id, reason } => format!(
            "{:?}",
            m.revoke(self::tenant(*tenant), id_of(*id), reason_of(*reason), now)
        ),
        Op::RevokeSubject {
            tenant,
            subject,
            except,
        } => norm_revoke_subject(m.revoke_subject(
            self::tenant(*tenant),
            &subject_of(*subject),
            except.map(id_of),
            now,
        )),
        Op::List {
            tenant,
            subject,
            limit,
        } => {
            let (t, s) = (self::tenant(*tenant), subject_of(*subject));
            let mut pages = Vec::new();
            let mut after = None;
            loop {
                let page = m.list(t, &s, now, after, *limit);
                after = page.last().map(ListCursor::after);
                let more = page.len() == *limit;
                pages.push(page);
                if !more {
                    break;
                }
            }
            format!("{pages:?}")
        }
        Op::Purge { max } => {
            let chosen = match choice {
                Some(Choice::Purged(c)) => Some(c),
                _ => None,
            };
            format!("{:?}", m.purge(now, *max, chosen)?)
        }
        Op::Counts { tenant } => format!("{:?}", m.counts(self::tenant(*tenant))),
    })
}

fn norm_create(o: CreateOutcome) -> String {
    match o {
        CreateOutcome::Created { mut evicted } => {
            evicted.sort();
            format!("Created {{ evicted: {evicted:?} }}")
        }
        o => format!("{o:?}"),
    }
}

fn norm_upgrade(o: UpgradeOutcome) -> String {
    match o {
        UpgradeOutcome::Upgraded { mut evicted } => {
            evicted.sort();
            format!("Upgraded {{ evicted: {evicted:?} }}")
        }
        o => format!("{o:?}"),
    }
}

fn norm_revoke_subject(o: RevokeSubjectOutcome) -> String {
    match o {
        RevokeSubjectOutcome::Revoked(mut ids) => {
            ids.sort();
            format!("Revoked({ids:?})")
        }
        o => format!("{o:?}"),
    }
}

fn store_err(e: impl std::fmt::Debug) -> String {
    format!("store error: {e:?}")
}

/// Runs a step against the store; returns its normalised answer and the
/// choice it made, if the model needs it.
async fn apply_store<S: SessionStore>(
    s: &S,
    m: &Model,
    step: &Step,
) -> Check<(String, Option<Vec<SessionId>>, bool)> {
    let now = m.now.saturating_add(DurationMs::from_millis(step.advance));
    Ok(match &step.op {
        Op::Create {
            tenant,
            id,
            token,
            subject,
            idle,
            absolute,
            limits,
            tag,
        } => {
            let rec = new_record(*tenant, *id, *token, *subject, *idle, *absolute, now, *tag);
            let o = s
                .create(rec, limits.limits(), now)
                .await
                .map_err(store_err)?;
            let chosen = match &o {
                CreateOutcome::Created { evicted } => Some(evicted.clone()),
                _ => None,
            };
            (norm_create(o), chosen, false)
        }
        Op::GetByToken { tenant, token } => {
            let r = s
                .get_by_token(tenant_of(*tenant), &token_of(*token))
                .await
                .map_err(store_err)?;
            (format!("{:?}", r.as_ref()), None, false)
        }
        Op::GetById { tenant, id } => {
            let r = s
                .get_by_id(tenant_of(*tenant), id_of(*id))
                .await
                .map_err(store_err)?;
            (format!("{:?}", r.as_ref()), None, false)
        }
        Op::Touch { tenant, id } => {
            let r = s
                .touch(tenant_of(*tenant), id_of(*id), now)
                .await
                .map_err(store_err)?;
            (format!("{r:?}"), None, false)
        }
        Op::Update {
            tenant,
            id,
            expected,
            tag,
        } => {
            let change = Change::Attributes(attrs(json!({"updated": tag})));
            let r = s
                .update(tenant_of(*tenant), id_of(*id), *expected, change, now)
                .await
                .map_err(store_err)?;
            (format!("{r:?}"), None, false)
        }
        op @ Op::Upgrade { .. } => {
            let req = upgrade_request(now, op).ok_or("not an upgrade")?;
            let o = s.upgrade(req).await.map_err(store_err)?;
            let chosen = match &o {
                UpgradeOutcome::Upgraded { evicted } => Some(evicted.clone()),
                _ => None,
            };
            (norm_upgrade(o), chosen, false)
        }
        Op::Revoke { tenant, id, reason } => {
            let r = s
                .revoke(tenant_of(*tenant), id_of(*id), reason_of(*reason), now)
                .await
                .map_err(store_err)?;
            (format!("{r:?}"), None, false)
        }
        Op::RevokeSubject {
            tenant,
            subject,
            except,
        } => {
            let reason = if except.is_some() {
                RevokeReason::OthersRevoked
            } else {
                RevokeReason::SubjectRevoked
            };
            let r = s
                .revoke_subject(
                    tenant_of(*tenant),
                    &subject_of(*subject),
                    except.map(id_of),
                    reason,
                    now,
                )
                .await
                .map_err(store_err)?;
            (norm_revoke_subject(r), None, false)
        }
        Op::List {
            tenant,
            subject,
            limit,
        } => {
            let (t, sub) = (tenant_of(*tenant), subject_of(*subject));
            let mut pages = Vec::new();
            let mut after = None;
            for _ in 0..=POOL {
                let page = s
                    .list_subject(t, &sub, now, after, *limit)
                    .await
                    .map_err(store_err)?;
                if page.len() > *limit {
                    return Err(format!(
                        "list returned {} records for limit {limit}",
                        page.len()
                    ));
                }
                after = page.last().map(ListCursor::after);
                let more = page.len() == *limit;
                pages.push(page);
                if !more {
                    break;
                }
            }
            (format!("{pages:?}"), None, false)
        }
        Op::Purge { max } => {
            let r = s.purge_expired(now, *max).await.map_err(store_err)?;
            let chosen: Vec<SessionId> = r.iter().map(|p| p.id).collect();
            (format!("{r:?}"), Some(chosen), true)
        }
        Op::Counts { tenant } => {
            let c: Counts = s.counts(tenant_of(*tenant)).await.map_err(store_err)?;
            if c.approximate {
                // An approximate count cannot be compared; skip it.
                return Ok((String::from("approximate"), None, false));
            }
            (
                format!("{:?}", (c.active, c.anonymous, c.subjects)),
                None,
                false,
            )
        }
    })
}

fn tenant_of(i: u8) -> TenantId {
    tenant(i)
}

/// Runs one generated sequence against a fresh store.
async fn run_case<S: SessionStore>(
    store: &S,
    steps: &[Step],
    seen: Option<&Arc<AtomicUsize>>,
) -> Check<()> {
    let mut model = Model::new();
    for (i, step) in steps.iter().enumerate() {
        if let Some(seen) = seen {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        let (got, chosen, is_purge) = apply_store(store, &model, step).await?;
        let choice = chosen.as_deref().map(|c| {
            if is_purge {
                Choice::Purged(c)
            } else {
                Choice::Evicted(c)
            }
        });
        let want =
            apply_model(&mut model, step, choice).map_err(|e| format!("step {i} {step:?}: {e}"))?;
        if matches!(step.op, Op::Counts { .. }) && got == "approximate" {
            // nothing to compare
        } else if got != want {
            return Err(format!(
                "step {i} {step:?}:\n  store: {got}\n  model: {want}"
            ));
        }
        let floor = store.clock_floor().await.map_err(store_err)?;
        if floor < model.max_write {
            return Err(format!(
                "step {i} {step:?}: clock_floor {floor:?} is below the latest write's now {:?}",
                model.max_write
            ));
        }
    }
    // Every key, in both tenants, finds exactly what the model holds.
    for t in [0u8, 1] {
        for k in 0..POOL {
            let want = model.by_id(tenant(t), id_of(k)).cloned();
            let got = store
                .get_by_id(tenant(t), id_of(k))
                .await
                .map_err(store_err)?;
            if got != want {
                return Err(format!(
                    "final get_by_id({t}, {k}):\n  store: {got:?}\n  model: {want:?}"
                ));
            }
            let want = model.by_token(tenant(t), &token_of(k)).cloned();
            let got = store
                .get_by_token(tenant(t), &token_of(k))
                .await
                .map_err(store_err)?;
            if got != want {
                return Err(format!(
                    "final get_by_token({t}, {k}):\n  store: {got:?}\n  model: {want:?}"
                ));
            }
        }
    }
    Ok(())
}

/// Number of generated sequences: `PROPTEST_CASES` if set, else 64.
#[must_use]
pub fn model_cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// Longest generated sequence.
pub const MAX_STEPS: usize = 40;

/// The model test: random sequences of up to [`MAX_STEPS`] operations
/// (creates with caps, lookups across tenants, touches, updates, upgrades,
/// revokes, listings, purges, counts, with the clock moving forward) run
/// against a fresh store from `make` and against the reference model; every
/// answer must match, `clock_floor` must keep up with the writes, and at
/// the end every key must find what the model holds. Runs
/// [`model_cases`] sequences; a failure is shrunk to a minimal sequence
/// and reported in the panic message.
///
/// Call it from a plain `#[test]` (it starts its own runtime):
///
/// ```
/// # use sessionkit_core::MemoryStore;
/// # fn main() {
/// sessionkit_store_tests::model_test(|| async { MemoryStore::new() });
/// # }
/// ```
pub fn model_test<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future,
    Fut::Output: IntoFixture,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let config = Config {
        cases: model_cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let strategy = Reference::sequential_strategy(5..=MAX_STEPS);
    let result = runner.run(&strategy, |(_init, steps, seen)| {
        rt.block_on(async {
            let (store, guard) = make().await.into_fixture().into_parts();
            let out = run_case(&store, &steps, seen.as_ref()).await;
            drop(store);
            drop(guard);
            out
        })
        .map_err(TestCaseError::fail)
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, (_, steps, _))) => {
            panic!(
                "model test failed: {why}\nminimal sequence ({} steps):\n{steps:#?}",
                steps.len()
            )
        }
        Err(e) => panic!("model test aborted: {e}"),
    }
}
