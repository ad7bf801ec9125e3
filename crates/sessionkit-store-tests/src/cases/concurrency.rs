//! Races: tasks started together behind a barrier, many rounds, each with
//! an invariant that holds for every interleaving of atomic operations.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use crate::support::UpgradeOutcome;
use serde_json::json;
use sessionkit_core::store::{Change, CreateOutcome, Limits, RevokeOutcome, UpdateOutcome};
use sessionkit_core::{Liveness, OnSessionLimit, RevokeReason, SessionState, StoreAdmin};
use tokio::sync::Barrier;

use crate::support::*;

/// Rounds per race.
pub const ROUNDS: usize = 50;
/// Tasks per race.
pub const TASKS: usize = 16;

/// Runs `f(i)` for `i in 0..n` as `n` tasks released together by a barrier;
/// returns their results in index order.
pub async fn race<T, F, Fut>(n: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let fut = f(i);
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(join(h).await);
    }
    out
}

/// Awaits a task; a panic in it is raised again here with its own message.
async fn join<T>(h: tokio::task::JoinHandle<T>) -> T {
    match h.await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("a racing task was cancelled: {e}"),
    }
}

/// N concurrent upgrades of one session: exactly one `Upgraded`, the rest
/// `NotLive` or `VersionMismatch`, and exactly one live successor.
pub async fn concurrent_upgrades_one_winner<S: StoreAdmin>(store: S) {
    let store = Arc::new(store);
    for round in 0..ROUNDS {
        let who = format!("upgrade-{round}");
        let old = session(None, at(0));
        put(&*store, &old).await;
        let news: Vec<_> = (0..TASKS).map(|_| session(Some(&who), at(10))).collect();
        let outs = race(TASKS, |i| {
            let (store, req) = (
                Arc::clone(&store),
                upgrade_req(&old, &news[i], Limits::default(), at(10)),
            );
            async move { ok(crate::support::upgrade(&*store, req)).await }
        })
        .await;
        let winners: Vec<usize> = (0..TASKS)
            .filter(|&i| outs[i] == UpgradeOutcome::Upgraded { evicted: vec![] })
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one upgrade wins: {outs:?}"
        );
        for o in &outs {
            assert!(
                matches!(
                    o,
                    UpgradeOutcome::Upgraded { .. }
                        | UpgradeOutcome::NotLive
                        | UpgradeOutcome::VersionMismatch
                ),
                "round {round}: a losing upgrade is NotLive or VersionMismatch: {o:?}"
            );
        }
        assert_stored(
            &*store,
            &tombstone_of(&old, RevokeReason::Upgraded, at(10)),
            "old session",
        )
        .await;
        for (i, n) in news.iter().enumerate() {
            if i == winners[0] {
                assert_stored(&*store, n, "the successor").await;
            } else {
                assert_unusable_successor(&*store, n, "a losing upgrade").await;
            }
        }
        let live = ok(store.list_subject(tenant_a(), &subject(&who), at(11), None, 100)).await;
        assert_eq!(live.len(), 1, "round {round}: exactly one live successor");
    }
}

/// Touches racing a revoke never revive the session: afterwards it is a
/// tombstone (no attributes, no client info) whatever the interleaving.
pub async fn touch_racing_revoke_never_revives<S: StoreAdmin>(store: S) {
    let store = Arc::new(store);
    for round in 0..ROUNDS {
        let rec = session(Some("alice"), at(0));
        put(&*store, &rec).await;
        let revoker = round % TASKS;
        let outs = race(TASKS, |i| {
            let (store, rec) = (Arc::clone(&store), rec.clone());
            async move {
                if i == revoker {
                    let o =
                        ok(store.revoke(rec.tenant, rec.id, RevokeReason::Logout, at(50))).await;
                    assert_eq!(
                        o,
                        RevokeOutcome::Revoked {
                            subject: rec.subject.clone()
                        },
                        "round {round}: the revoke finds the session active"
                    );
                } else {
                    ok(store.touch(rec.tenant, rec.id, at(1 + i as i64 * 7))).await;
                }
            }
        })
        .await;
        drop(outs);
        let got = by_id(&*store, rec.tenant, rec.id)
            .await
            .expect("the tombstone is kept");
        assert_eq!(
            got.state,
            SessionState::Revoked {
                reason: RevokeReason::Logout,
                at: at(50)
            },
            "round {round}"
        );
        assert_eq!(
            got.liveness(at(60)),
            Liveness::Revoked(RevokeReason::Logout)
        );
        assert!(
            got.attributes.is_empty() && got.client.is_empty(),
            "round {round}: a tombstone stays empty"
        );
        assert_eq!(
            got.version, 1,
            "round {round}: a touch never changes the version"
        );
        assert!(
            !ok(store.touch(rec.tenant, rec.id, at(1000))).await,
            "round {round}: touch after revoke"
        );
        let by_tok = by_token(&*store, rec.tenant, &rec.token_hash)
            .await
            .expect("kept");
        assert_eq!(by_tok, got, "round {round}: both lookups agree");
    }
}

/// Updates racing a revoke never revive the session, and no acknowledged
/// update is lost: the final version is 1 + the number of `Updated`.
pub async fn update_racing_revoke_never_revives<S: StoreAdmin>(store: S) {
    let store = Arc::new(store);
    for round in 0..ROUNDS {
        let rec = session(Some("alice"), at(0));
        put(&*store, &rec).await;
        let revoker = round % TASKS;
        let outs = race(TASKS, |i| {
            let (store, rec) = (Arc::clone(&store), rec.clone());
            async move {
                if i == revoker {
                    ok(store.revoke(rec.tenant, rec.id, RevokeReason::Admin, at(50))).await;
                    return 0usize;
                }
                // Read-modify-write until the session is gone.
                let mut expected = 1;
                let mut won = 0usize;
                for n in 0..32 {
                    let change = Change::Attributes(attrs(json!({"writer": i, "n": n})));
                    match ok(store.update(rec.tenant, rec.id, expected, change, at(10))).await {
                        UpdateOutcome::Updated(r) => {
                            assert_eq!(
                                r.version,
                                expected + 1,
                                "round {round}: a version bumps by exactly 1"
                            );
                            expected = r.version;
                            won += 1;
                        }
                        UpdateOutcome::VersionMismatch { current } => {
                            assert!(current > expected, "round {round}: versions only grow");
                            expected = current;
                        }
                        UpdateOutcome::NotLive => break,
                    }
                }
                won
            }
        })
        .await;
        let updated: usize = outs.iter().sum();
        let got = by_id(&*store, rec.tenant, rec.id)
            .await
            .expect("the tombstone is kept");
        assert_eq!(
            got.state,
            SessionState::Revoked {
                reason: RevokeReason::Admin,
                at: at(50)
            },
            "round {round}"
        );
        assert!(
            got.attributes.is_empty(),
            "round {round}: a tombstone has no attributes"
        );
        assert_eq!(
            got.version,
            1 + updated as u64,
            "round {round}: every acknowledged update counted once"
        );
        let out = ok(store.update(
            rec.tenant,
            rec.id,
            got.version,
            Change::Attributes(attrs(json!({}))),
            at(60),
        ))
        .await;
        assert_eq!(
            out,
            UpdateOutcome::NotLive,
            "round {round}: update after revoke"
        );
    }
}

/// Concurrent updates with the same expected version: exactly one
/// `Updated`, every other one `VersionMismatch{current: 2}`, and the stored
/// attributes are the winner's.
pub async fn concurrent_updates_one_winner<S: StoreAdmin>(store: S) {
    let store = Arc::new(store);
    for round in 0..ROUNDS {
        let rec = session(Some("alice"), at(0));
        put(&*store, &rec).await;
        let outs = race(TASKS, |i| {
            let (store, rec) = (Arc::clone(&store), rec.clone());
            async move {
                let change = Change::Attributes(attrs(json!({"writer": i})));
                ok(store.update(rec.tenant, rec.id, 1, change, at(10))).await
            }
        })
        .await;
        let winners: Vec<usize> = (0..TASKS)
            .filter(|&i| matches!(outs[i], UpdateOutcome::Updated(_)))
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one update wins: {outs:?}"
        );
        for o in &outs {
            assert!(
                matches!(
                    o,
                    UpdateOutcome::Updated(_) | UpdateOutcome::VersionMismatch { current: 2 }
                ),
                "round {round}: {o:?}"
            );
        }
        let got = by_id(&*store, rec.tenant, rec.id).await.expect("stored");
        assert_eq!(got.version, 2);
        assert_eq!(
            got.attributes,
            attrs(json!({"writer": winners[0]})),
            "round {round}: the winner's write"
        );
    }
}

/// N concurrent creates for one subject at cap K with `EvictOldest`: all
/// succeed, exactly K stay live, and every other one was evicted exactly
/// once.
pub async fn concurrent_creates_respect_cap_evict<S: StoreAdmin>(store: S) {
    const K: u32 = 3;
    let store = Arc::new(store);
    let lim = per_subject(K, OnSessionLimit::EvictOldest);
    for round in 0..ROUNDS {
        let who = format!("evict-{round}");
        let recs: Vec<_> = (0..TASKS)
            .map(|i| session(Some(&who), at(i as i64)))
            .collect();
        let outs = race(TASKS, |i| {
            let (store, rec) = (Arc::clone(&store), recs[i].clone());
            async move { ok(store.create(rec.clone(), lim, rec.created_at)).await }
        })
        .await;
        let mut evicted = Vec::new();
        for o in outs {
            let CreateOutcome::Created { evicted: e } = o else {
                panic!("round {round}: a create with EvictOldest succeeds: {o:?}");
            };
            evicted.extend(e);
        }
        let live = ok(store.list_subject(tenant_a(), &subject(&who), at(100), None, 100)).await;
        assert_eq!(
            live.len(),
            K as usize,
            "round {round}: exactly K live sessions"
        );
        let ev: HashSet<_> = evicted.iter().copied().collect();
        assert_eq!(
            ev.len(),
            evicted.len(),
            "round {round}: each session evicted once"
        );
        assert_eq!(
            ev.len() + live.len(),
            TASKS,
            "round {round}: every session is live or evicted"
        );
        for r in &live {
            assert!(
                !ev.contains(&r.id),
                "round {round}: an evicted session is not live"
            );
        }
        for id in &ev {
            let got = by_id(&*store, tenant_a(), *id)
                .await
                .expect("kept as a tombstone");
            assert!(
                matches!(
                    got.state,
                    SessionState::Revoked {
                        reason: RevokeReason::Evicted,
                        ..
                    }
                ),
                "round {round}"
            );
        }
    }
}

/// N concurrent creates for one subject at cap K with `Refuse`: exactly K
/// succeed, and exactly those are live.
pub async fn concurrent_creates_respect_cap_refuse<S: StoreAdmin>(store: S) {
    const K: u32 = 3;
    let store = Arc::new(store);
    let lim = per_subject(K, OnSessionLimit::Refuse);
    for round in 0..ROUNDS {
        let who = format!("refuse-{round}");
        let recs: Vec<_> = (0..TASKS)
            .map(|i| session(Some(&who), at(i as i64)))
            .collect();
        let outs = race(TASKS, |i| {
            let (store, rec) = (Arc::clone(&store), recs[i].clone());
            async move { ok(store.create(rec.clone(), lim, rec.created_at)).await }
        })
        .await;
        let mut created = HashSet::new();
        for (i, o) in outs.iter().enumerate() {
            match o {
                CreateOutcome::Created { evicted } => {
                    assert!(evicted.is_empty(), "round {round}: Refuse never evicts");
                    created.insert(recs[i].id);
                }
                CreateOutcome::SubjectLimitReached => {}
                o => panic!("round {round}: unexpected {o:?}"),
            }
        }
        assert_eq!(
            created.len(),
            K as usize,
            "round {round}: exactly K creates succeed"
        );
        let live = ok(store.list_subject(tenant_a(), &subject(&who), at(100), None, 100)).await;
        let live: HashSet<_> = live.iter().map(|r| r.id).collect();
        assert_eq!(
            live, created,
            "round {round}: the created sessions are the live ones"
        );
    }
}

/// N concurrent anonymous creates at an anonymous cap of K: exactly K
/// succeed.
pub async fn concurrent_anonymous_creates_respect_cap<S: StoreAdmin>(store: S) {
    const K: u64 = 4;
    let store = Arc::new(store);
    let lim = Limits {
        per_subject: None,
        anonymous: Some(K),
        replaces: None,
    };
    for round in 0..ROUNDS {
        let recs: Vec<_> = (0..TASKS).map(|_| session(None, at(0))).collect();
        let outs = race(TASKS, |i| {
            let (store, rec) = (Arc::clone(&store), recs[i].clone());
            async move { ok(store.create(rec, lim, at(0))).await }
        })
        .await;
        let mut created = Vec::new();
        for (i, o) in outs.iter().enumerate() {
            match o {
                CreateOutcome::Created { evicted } if evicted.is_empty() => created.push(&recs[i]),
                CreateOutcome::AnonymousLimitReached => {}
                o => panic!("round {round}: unexpected {o:?}"),
            }
        }
        assert_eq!(
            created.len() as u64,
            K,
            "round {round}: exactly K anonymous creates succeed"
        );
        // Make room for the next round.
        for r in created {
            revoke(&*store, r, RevokeReason::Logout, at(1)).await;
        }
    }
}

/// An upgrade racing a revoke of the same session: either the upgrade won
/// (old `Upgraded`, successor live, the revoke found a tombstone) or the
/// revoke won (old revoked by it, the upgrade `NotLive`, no successor).
pub async fn upgrade_racing_revoke<S: StoreAdmin>(store: S) {
    let store = Arc::new(store);
    for round in 0..ROUNDS {
        let old = session(Some("alice"), at(0));
        put(&*store, &old).await;
        let new = session(Some("alice"), at(10));
        let up = {
            let (store, req) = (
                Arc::clone(&store),
                upgrade_req(&old, &new, Limits::default(), at(10)),
            );
            async move { ok(crate::support::upgrade(&*store, req)).await }
        };
        let rv = {
            let (store, old) = (Arc::clone(&store), old.clone());
            async move {
                // Vary which side starts first from round to round.
                for _ in 0..round % 8 {
                    tokio::task::yield_now().await;
                }
                ok(store.revoke(old.tenant, old.id, RevokeReason::Logout, at(10))).await
            }
        };
        let barrier = Arc::new(Barrier::new(2));
        let (b1, b2) = (Arc::clone(&barrier), barrier);
        let hu = tokio::spawn(async move {
            b1.wait().await;
            up.await
        });
        let hr = tokio::spawn(async move {
            b2.wait().await;
            rv.await
        });
        let u = join(hu).await;
        let r = join(hr).await;
        match (&u, &r) {
            (UpgradeOutcome::Upgraded { .. }, RevokeOutcome::AlreadyRevoked) => {
                assert_stored(
                    &*store,
                    &tombstone_of(&old, RevokeReason::Upgraded, at(10)),
                    "upgrade won",
                )
                .await;
                assert_stored(&*store, &new, "successor").await;
            }
            (UpgradeOutcome::NotLive, RevokeOutcome::Revoked { .. }) => {
                assert_stored(
                    &*store,
                    &tombstone_of(&old, RevokeReason::Logout, at(10)),
                    "revoke won",
                )
                .await;
                assert_unusable_successor(&*store, &new, "no successor").await;
            }
            other => panic!("round {round}: inconsistent outcomes {other:?}"),
        }
    }
}
