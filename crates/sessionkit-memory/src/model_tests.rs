//! The memory store against a plain model, at a size where the token, id
//! and subject indexes grow many times, with many token hashes sharing one
//! `LineTable` home (same first 8 bytes, same shard) so that overflow
//! chains are long and wrap.

use std::collections::HashMap;

use proptest::prelude::*;

use super::{MemoryStore, read};
use crate::shard::shard_of;
use sessionkit_core::attributes::Attributes;
use sessionkit_core::client::ClientInfo;
use sessionkit_core::ids::{SessionId, Subject, TenantId};
use sessionkit_core::record::{RevokeReason, SessionRecord, SessionState};
use sessionkit_core::store::{CreateOutcome, Limits, RetireOutcome, RetireRequest, RevokeOutcome};
use sessionkit_core::time::{DurationMs, Millis};
use sessionkit_core::token::TokenHash;

const T0: i64 = 1_767_323_045_000;

#[derive(Debug, Clone)]
enum Op {
    /// `n` new sessions; `collide`: token hashes all share their short hash
    /// and shard 0.
    Create {
        n: usize,
        subject: Option<u8>,
        collide: bool,
        life_s: i64,
    },
    Revoke(usize),
    Upgrade(usize),
    Remove(usize),
    /// New attributes of this many bytes (moves the record, makes garbage).
    Update(usize, usize),
    /// Clock forward by this many seconds, then purge everything due.
    Purge(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..300, proptest::option::of(0u8..3), any::<bool>(), 1i64..2000)
            .prop_map(|(n, subject, collide, life_s)| Op::Create { n, subject, collide, life_s }),
        3 => any::<usize>().prop_map(Op::Revoke),
        2 => any::<usize>().prop_map(Op::Upgrade),
        3 => any::<usize>().prop_map(Op::Remove),
        3 => (any::<usize>(), 0usize..6000).prop_map(|(i, n)| Op::Update(i, n)),
        1 => (1i64..600).prop_map(Op::Purge),
    ]
}

struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn token(&mut self, collide: bool) -> TokenHash {
        let mut b = [0u8; 32];
        for c in b.chunks_mut(8) {
            c.copy_from_slice(&self.next().to_le_bytes());
        }
        if collide {
            b[..8].copy_from_slice(&0x0123_4567_89ab_cdefu64.to_le_bytes());
            b[31] = 0;
        }
        TokenHash::from_bytes(b)
    }

    fn id(&mut self) -> SessionId {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next().to_le_bytes());
        b[8..].copy_from_slice(&self.next().to_le_bytes());
        SessionId::from_bytes(b)
    }
}

fn subject(s: u8) -> Subject {
    Subject::new(&format!("user-{s}")).expect("valid subject")
}

fn record(
    g: &mut Gen,
    subject_ix: Option<u8>,
    collide: bool,
    now: i64,
    life_s: i64,
) -> SessionRecord {
    let created = Millis::from_millis(now);
    SessionRecord {
        tenant: TenantId::DEFAULT,
        id: g.id(),
        token_hash: g.token(collide),
        subject: subject_ix.map(subject),
        created_at: created,
        last_seen_at: created,
        // Longer than any absolute lifetime: the purge time is `expires_at`.
        idle_timeout: DurationMs::from_secs(7200),
        expires_at: created.saturating_add(DurationMs::from_millis(life_s * 1000)),
        auth_time: subject_ix.map(|_| created),
        attributes: Attributes::from_trusted_json(r#"{"a":1}"#),
        client: ClientInfo::default(),
        version: 1,
        state: SessionState::Active,
        refresh: None,
        assurance: None,
        grants: None,
    }
}

fn by_token(store: &MemoryStore, h: &TokenHash) -> Option<SessionRecord> {
    let shard = read(&store.inner.shards[shard_of(h)]);
    shard
        .find_token(h)
        .map(|s| shard.to_record(&s).expect("decodes"))
}

/// Every model record is found by token and by id, with its state; the
/// subject index holds exactly the active sessions; nothing else is held.
fn check(store: &MemoryStore, model: &HashMap<SessionId, SessionRecord>) {
    assert_eq!(store.len(), model.len());
    for (id, want) in model {
        let got = by_token(store, &want.token_hash)
            .unwrap_or_else(|| panic!("{id:?} lost from the token index"));
        assert_eq!(got.id, *id);
        assert_eq!(got.state, want.state);
        let got = store
            .exclusive(|t| t.get(*id).expect("decodes"))
            .unwrap_or_else(|| panic!("{id:?} lost from the id index"));
        assert_eq!(got.token_hash, want.token_hash);
        assert_eq!(got.version, want.version);
    }
    store.exclusive(|t| {
        assert_eq!(t.w.ids.len(), model.len(), "stale id index entries");
        assert_eq!(
            t.subject_entry_count(),
            model
                .values()
                .filter(|r| r.state == SessionState::Active && r.subject.is_some())
                .count(),
            "stale subject index entries"
        );
        for s in 0..3u8 {
            let subj = subject(s);
            let mut got: Vec<SessionId> = t
                .subject_locs(TenantId::DEFAULT, subj.as_str().as_bytes())
                .into_iter()
                .filter_map(|l| t.with(l, |_, s| s.id()))
                .collect();
            let mut want: Vec<SessionId> = model
                .values()
                .filter(|r| r.state == SessionState::Active && r.subject.as_ref() == Some(&subj))
                .map(|r| r.id)
                .collect();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "subject {s}");
        }
        assert!(
            !t.w.subjects.keeps_empty_tables(),
            "no empty tenant table is kept"
        );
    });
    let shard_total: usize = store
        .inner
        .shards
        .iter()
        .map(|s| read(s).by_token_len())
        .sum();
    assert_eq!(shard_total, model.len(), "stale token index entries");
}

fn pick(model: &HashMap<SessionId, SessionRecord>, i: usize) -> Option<SessionRecord> {
    if model.is_empty() {
        return None;
    }
    let mut ids: Vec<&SessionId> = model.keys().collect();
    ids.sort_unstable();
    Some(model[ids[i % ids.len()]].clone())
}

fn run(ops: &[Op], seed: u64) {
    let store = MemoryStore::new();
    let mut model: HashMap<SessionId, SessionRecord> = HashMap::new();
    let mut g = Gen(seed);
    let mut now = T0;
    let stride = 1 + ops.len() / 60;
    for (k, op) in ops.iter().enumerate() {
        match *op {
            Op::Create {
                n,
                subject,
                collide,
                life_s,
            } => {
                for _ in 0..n {
                    let rec = record(&mut g, subject, collide, now, life_s);
                    let out = store
                        .exclusive(|t| {
                            t.create(rec.clone(), Limits::default(), Millis::from_millis(now))
                        })
                        .expect("room");
                    assert!(matches!(out, CreateOutcome::Created { .. }), "{out:?}");
                    model.insert(rec.id, rec);
                }
            }
            Op::Revoke(i) => {
                let Some(rec) = pick(&model, i) else { continue };
                let out = store.exclusive(|t| {
                    t.revoke(
                        TenantId::DEFAULT,
                        rec.id,
                        RevokeReason::Admin,
                        Millis::from_millis(now),
                    )
                });
                let m = model.get_mut(&rec.id).expect("in the model");
                if m.state == SessionState::Active {
                    assert!(matches!(out, RevokeOutcome::Revoked { .. }), "{out:?}");
                    m.make_tombstone(RevokeReason::Admin, Millis::from_millis(now));
                    m.version = store
                        .exclusive(|t| t.get(rec.id))
                        .expect("decodes")
                        .expect("kept")
                        .version;
                } else {
                    assert_eq!(out, RevokeOutcome::AlreadyRevoked);
                }
            }
            Op::Upgrade(i) => {
                let Some(old) = pick(&model, i) else { continue };
                let live = old.state == SessionState::Active && now < old.expires_at.as_millis();
                let new = record(&mut g, old.subject.as_ref().map(|_| 1), false, now, 1000);
                let retire = RetireRequest {
                    tenant: TenantId::DEFAULT,
                    old_id: old.id,
                    old_token_hash: old.token_hash,
                    expected_version: old.version,
                    successor: new.id,
                    now: Millis::from_millis(now),
                };
                let out = store.exclusive(|t| {
                    if live {
                        let limits = Limits {
                            replaces: Some(old.id),
                            ..Limits::default()
                        };
                        let made = t.create(new.clone(), limits, Millis::from_millis(now));
                        assert!(matches!(made, Ok(CreateOutcome::Created { .. })));
                    }
                    t.retire(retire)
                });
                if live {
                    assert_eq!(out, RetireOutcome::Retired);
                    // A retry of the same retire finds it done.
                    assert_eq!(
                        store.exclusive(|t| t.retire(retire)),
                        RetireOutcome::Retired
                    );
                    let m = model.get_mut(&old.id).expect("in the model");
                    m.make_tombstone(RevokeReason::Upgraded, Millis::from_millis(now));
                    model.insert(new.id, new);
                } else {
                    assert_eq!(out, RetireOutcome::NotLive);
                }
            }
            Op::Remove(i) => {
                let Some(rec) = pick(&model, i) else { continue };
                assert!(store.remove(rec.id));
                model.remove(&rec.id);
            }
            Op::Update(i, len) => {
                let Some(rec) = pick(&model, i) else { continue };
                let m = model.get_mut(&rec.id).expect("in the model");
                if m.state != SessionState::Active {
                    continue;
                }
                let text = format!(r#"{{"p":"{}"}}"#, "x".repeat(len));
                let moved = store.exclusive(|t| {
                    let loc = t.loc_of(rec.id).expect("indexed");
                    t.with_shard_mut(loc, |s| {
                        s.set_attributes(loc, &Attributes::from_trusted_json(&text))
                    })
                });
                if moved.is_ok() {
                    m.version += 1;
                }
            }
            Op::Purge(s) => {
                now += s * 1000;
                let purged =
                    store.exclusive(|t| t.purge_expired(Millis::from_millis(now), usize::MAX));
                let due: Vec<SessionId> = model
                    .values()
                    .filter(|r| r.expires_at.as_millis() <= now)
                    .map(|r| r.id)
                    .collect();
                assert_eq!(purged.len(), due.len());
                for id in due {
                    model.remove(&id);
                }
            }
        }
        if k % stride == 0 || k + 1 == ops.len() {
            check(&store, &model);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn memory_store_agrees_with_a_model_while_indexes_grow(
        ops in proptest::collection::vec(op(), 1..120),
        seed in any::<u64>(),
    ) {
        run(&ops, seed);
    }
}

/// Thousands of records whose token hashes share one index home in shard
/// 0, interleaved with removals, attribute growth (records move, arena
/// compacts and promotes) and purges.
#[test]
fn one_home_for_thousands_of_tokens() {
    let mut ops = Vec::new();
    for round in 0..12 {
        ops.push(Op::Create {
            n: 400,
            subject: Some(round % 3),
            collide: true,
            life_s: 100 + 50 * i64::from(round),
        });
        for i in 0..60 {
            ops.push(Op::Update(i * 7 + round as usize, 2000 + i * 50));
            ops.push(Op::Remove(i * 13 + round as usize));
        }
        ops.push(Op::Revoke(round as usize));
        ops.push(Op::Upgrade(round as usize * 3));
        if round % 4 == 3 {
            ops.push(Op::Purge(120));
        }
    }
    run(&ops, 7);
}

/// One tenant's sessions never sit in another tenant's subject table, so a
/// listing in an empty (or small) tenant walks nothing of the big one.
#[test]
fn each_tenant_has_its_own_subject_table() {
    let store = MemoryStore::new();
    let big = TenantId::new("big").unwrap();
    let empty = TenantId::new("empty").unwrap();
    let mut g = Gen(7);
    store.exclusive(|t| {
        for i in 0..2_000u32 {
            let mut r = record(&mut g, Some((i % 3) as u8), false, 0, 3600);
            r.tenant = big;
            t.insert(r).unwrap();
        }
        assert_eq!(t.subject_entry_count(), 2_000);
        assert!(t.w.subjects.has(&big));
        assert!(!t.w.subjects.has(&empty));
        assert!(
            t.subjects_page(empty, Millis::from_millis(0), None, 100)
                .is_empty()
        );
        assert_eq!(
            t.subjects_page(big, Millis::from_millis(0), None, 2).len(),
            2
        );
    });
}
