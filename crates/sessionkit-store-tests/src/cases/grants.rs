//! Upstream grants: a compare-and-set of the whole list that changes
//! nothing else of the record, and that dies with the session.

use std::sync::Arc;

use sessionkit_core::store::{GrantSwap, GrantSwapRequest};
use sessionkit_core::upstream::{Grants, Lease, SealedGrant};
use sessionkit_core::{Millis, RevokeReason, SessionRecord, StoreAdmin};

use super::concurrency::{ROUNDS, TASKS, race};
use crate::support::*;

/// Grants of provider `idp` with sealed bytes told apart by `n`, leased
/// when `n` is odd.
#[must_use]
pub fn sample_grants(n: u8) -> Box<Grants> {
    Box::new(Grants(vec![SealedGrant {
        provider: "idp".into(),
        key_id: u32::from(n) + 1,
        sealed: vec![n; 48],
        lease: (n % 2 == 1).then_some(Lease {
            holder: u64::from(n),
            until: at(30),
        }),
        not_before: Millis::from_millis(0),
        dead: false,
    }]))
}

fn swap(rec: &SessionRecord, expected: Option<u8>, new: Option<u8>, now: i64) -> GrantSwapRequest {
    GrantSwapRequest {
        tenant: rec.tenant,
        id: rec.id,
        expected: expected.map(sample_grants),
        grants: new.map(sample_grants),
        now: at(now),
    }
}

/// A swap from the grants the session has writes the new ones and nothing
/// else (version, deadlines, attributes unchanged); from any other grants
/// it writes nothing and answers the record as it is; a session that is
/// not live (revoked, expired, unknown, other tenant) is `NotLive`.
/// Revoking the session drops its grants.
pub async fn grants_compare_and_set<S: StoreAdmin>(store: S) {
    let rec = session(Some("alice"), at(0));
    put(&store, &rec).await;
    let out = ok(store.swap_grants(swap(&rec, None, Some(1), 10))).await;
    let mut want = rec.clone();
    want.grants = Some(sample_grants(1));
    assert_eq!(
        out,
        GrantSwap::Swapped(Box::new(want.clone())),
        "first swap"
    );
    assert_stored(&store, &want, "after the first swap").await;

    for stale in [None, Some(0), Some(2)] {
        let out = ok(store.swap_grants(swap(&rec, stale, Some(3), 11))).await;
        assert_eq!(
            out,
            GrantSwap::Changed(Box::new(want.clone())),
            "stale {stale:?}"
        );
    }
    assert_stored(&store, &want, "stale swaps wrote nothing").await;

    let out = ok(store.swap_grants(swap(&rec, Some(1), Some(2), 12))).await;
    want.grants = Some(sample_grants(2));
    assert_eq!(out, GrantSwap::Swapped(Box::new(want.clone())));
    let out = ok(store.swap_grants(swap(&rec, Some(2), None, 13))).await;
    want.grants = None;
    assert_eq!(out, GrantSwap::Swapped(Box::new(want.clone())), "to none");
    assert_stored(&store, &want, "no grants").await;

    let mut other = swap(&rec, None, Some(4), 14);
    other.tenant = tenant_b();
    assert_eq!(ok(store.swap_grants(other)).await, GrantSwap::NotLive);
    let mut unknown = swap(&rec, None, Some(4), 14);
    unknown.id = sessionkit_core::SessionId::generate();
    assert_eq!(ok(store.swap_grants(unknown)).await, GrantSwap::NotLive);
    // Past the idle deadline (the sample's idle timeout is an hour).
    let late = swap(&rec, None, Some(4), 3_601_000);
    assert_eq!(ok(store.swap_grants(late)).await, GrantSwap::NotLive);

    // Revocation takes the grants with it.
    ok(store.swap_grants(swap(&rec, None, Some(5), 15))).await;
    ok(store.revoke(rec.tenant, rec.id, RevokeReason::Logout, at(16))).await;
    let got = by_id(&store, rec.tenant, rec.id)
        .await
        .expect("a tombstone");
    assert_eq!(got.grants, None, "a tombstone keeps no grants");
    assert_eq!(
        ok(store.swap_grants(swap(&rec, None, Some(6), 17))).await,
        GrantSwap::NotLive
    );
}

/// N concurrent swaps from the same grants: exactly one wins (the lease a
/// node takes before it calls the provider), the others see its grants.
pub async fn concurrent_grant_swaps_one_winner<S: StoreAdmin>(store: S) {
    let store = Arc::new(store);
    for round in 0..ROUNDS {
        let rec = session(Some("alice"), at(0));
        put(&*store, &rec).await;
        ok(store.swap_grants(swap(&rec, None, Some(0), 1))).await;
        let outs = race(TASKS, |i| {
            let (store, rec) = (Arc::clone(&store), rec.clone());
            let new = u8::try_from(i + 1).unwrap_or(u8::MAX);
            async move { ok(store.swap_grants(swap(&rec, Some(0), Some(new), 10))).await }
        })
        .await;
        let winners: Vec<usize> = (0..TASKS)
            .filter(|&i| matches!(outs[i], GrantSwap::Swapped(_)))
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: one winner: {outs:?}");
        let won = sample_grants(u8::try_from(winners[0] + 1).unwrap_or(u8::MAX));
        for o in &outs {
            match o {
                GrantSwap::Swapped(r) | GrantSwap::Changed(r) => {
                    assert_eq!(r.grants.as_ref(), Some(&won), "round {round}");
                    assert_eq!(r.version, rec.version, "a swap never bumps the version");
                }
                GrantSwap::NotLive => panic!("round {round}: {o:?}"),
            }
        }
    }
}
