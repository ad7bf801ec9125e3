//! Generation of operation sequences: random operations, operations aimed
//! at stored records, and clock moves that land exactly on deadlines.

use proptest::prelude::*;
use proptest::sample::select;
use proptest_state_machine::ReferenceStateMachine;

use super::{
    GenLimits, Model, Op, POOL, SUBJECTS, Step, apply_model, id_index, tenant_index, token_index,
};

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
        2 => (tenant(), any_key()).prop_map(|(tenant, id)| Op::Touch { tenant, id, back: 0 }),
        1 => (tenant(), any_key(), 1u64..=3, any::<u8>()).prop_map(|(tenant, id, expected, tag)| Op::Update { tenant, id, expected, tag }),
        1 => (tenant(), any_key(), proptest::option::of(0u8..3), proptest::option::of(1u8..4)).prop_map(|(tenant, id, expected, new)| Op::SwapGrants { tenant, id, expected, new }),
        1 => (tenant(), any_key(), 0u8..8).prop_map(|(tenant, id, reason)| Op::Revoke { tenant, id, reason }),
        2 => (tenant(), subject_strategy(), proptest::option::weighted(0.3, any_key())).prop_map(|(tenant, subject, except)| Op::RevokeSubject { tenant, subject, except }),
        3 => (tenant(), subject_strategy(), 1usize..=4).prop_map(|(tenant, subject, limit)| Op::List { tenant, subject, limit }),
        2 => (1usize..=4).prop_map(|max| Op::Purge { max }),
        1 => tenant().prop_map(|tenant| Op::Counts { tenant }),
        1 => (0i64..=20).prop_map(|back| Op::PersistFloor { back }),
        2 => (tenant(), any_key(), 0u32..3, 0i64..=40).prop_map(|(tenant, id, generation, grace)| Op::Refresh { tenant, id, generation, grace }),
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
        0u8..12,
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
                        // Mostly now; sometimes a little earlier (a late
                        // touch), which must not move last_seen_at back.
                        back: if tag % 4 == 0 { i64::from(tag % 3) } else { 0 },
                    },
                    1 => Op::Update {
                        tenant: k.tenant,
                        id: k.id,
                        expected: k.version,
                        tag,
                    },
                    2 if tag % 3 == 0 => Op::SwapGrants {
                        tenant: k.tenant,
                        id: k.id,
                        expected: (tag % 5 != 0).then_some(tag % 3),
                        new: (tag % 7 != 0).then_some(tag % 4),
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
                    10 | 11 => Op::Refresh {
                        tenant: if tag % 11 == 0 { other } else { k.tenant },
                        id: k.id,
                        generation: u32::from(tag % 3),
                        grace: i64::from(tag % 41),
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
