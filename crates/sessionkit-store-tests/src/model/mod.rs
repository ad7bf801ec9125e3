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

mod generate;
mod reference;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::UpgradeOutcome;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use proptest_state_machine::ReferenceStateMachine;
use serde_json::json;
use sessionkit_core::store::{
    Change, Counts, CreateOutcome, GrantSwapRequest, Limits, ListCursor, RevokeSubjectOutcome,
};
use sessionkit_core::{
    DurationMs, Millis, OnSessionLimit, RevokeReason, SessionId, StoreAdmin, Subject, TenantId,
    TokenHash,
};

use crate::IntoFixture;
use crate::support::{attrs, subject, tenant_a, tenant_b};

pub use generate::Reference;
pub use reference::Model;
use reference::{Check, new_record, reason_of, refresh_request, upgrade_request};

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
            replaces: None,
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
    /// A touch at `now - back`.
    Touch {
        tenant: u8,
        id: u8,
        back: i64,
    },
    Update {
        tenant: u8,
        id: u8,
        expected: u64,
        tag: u8,
    },
    /// Grants `expected` (`grants_of(n)`, `None`: none) to `new`.
    SwapGrants {
        tenant: u8,
        id: u8,
        expected: Option<u8>,
        new: Option<u8>,
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
    /// Presents generation `generation` of session `id`'s refresh chain.
    Refresh {
        tenant: u8,
        id: u8,
        generation: u32,
        grace: i64,
    },
    /// `persist_clock_floor(now - back)`.
    PersistFloor {
        back: i64,
    },
}

/// A step: move the engine's clock forward by `advance` ms, then run `op`.
#[derive(Debug, Clone)]
pub struct Step {
    advance: i64,
    op: Op,
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
        Op::Touch { tenant, id, back } => {
            let at = Millis::from_millis(now.as_millis() - back);
            format!("{:?}", m.touch(self::tenant(*tenant), id_of(*id), at))
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
        Op::SwapGrants {
            tenant,
            id,
            expected,
            new,
        } => format!(
            "{:?}",
            m.swap_grants(swap_request(now, *tenant, *id, *expected, *new))
        ),
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
        Op::Refresh {
            tenant,
            id,
            generation,
            grace,
        } => format!(
            "{:?}",
            m.refresh(refresh_request(*tenant, *id, *generation, *grace, now))
        ),
        Op::PersistFloor { back } => {
            m.wrote(Millis::from_millis(now.as_millis() - back));
            String::from("()")
        }
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
    format!("{o:?}")
}

fn store_err(e: impl std::fmt::Debug) -> String {
    format!("store error: {e:?}")
}

/// Runs a step against the store; returns its normalised answer and the
/// choice it made, if the model needs it.
async fn apply_store<S: StoreAdmin>(
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
        Op::Touch { tenant, id, back } => {
            let at = Millis::from_millis(now.as_millis() - back);
            let r = s
                .touch(tenant_of(*tenant), id_of(*id), at)
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
        Op::SwapGrants {
            tenant,
            id,
            expected,
            new,
        } => {
            let r = s
                .swap_grants(swap_request(now, *tenant, *id, *expected, *new))
                .await
                .map_err(store_err)?;
            (format!("{r:?}"), None, false)
        }
        op @ Op::Upgrade { .. } => {
            let req = upgrade_request(now, op).ok_or("not an upgrade")?;
            let o = crate::support::upgrade(s, req).await.map_err(store_err)?;
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
        Op::Refresh {
            tenant,
            id,
            generation,
            grace,
        } => {
            let r = s
                .refresh(refresh_request(*tenant, *id, *generation, *grace, now))
                .await
                .map_err(store_err)?;
            (format!("{r:?}"), None, false)
        }
        Op::PersistFloor { back } => {
            let at = Millis::from_millis(now.as_millis() - back);
            s.persist_clock_floor(at).await.map_err(store_err)?;
            (String::from("()"), None, false)
        }
        Op::Counts { tenant } => {
            let c: Counts = s.counts(tenant_of(*tenant)).await.map_err(store_err)?;
            // The model test runs one step at a time: every store must give
            // exact figures when no write is in flight (see `Counts`).
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
async fn run_case<S: StoreAdmin>(
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
        if got != want {
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
/// # use sessionkit_memory::MemoryStore;
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

/// The swap an [`Op::SwapGrants`] asks for.
fn swap_request(
    now: Millis,
    tenant: u8,
    id: u8,
    expected: Option<u8>,
    new: Option<u8>,
) -> GrantSwapRequest {
    GrantSwapRequest {
        tenant: self::tenant(tenant),
        id: id_of(id),
        expected: expected.map(reference::grants_of),
        grants: new.map(reference::grants_of),
        now,
    }
}
