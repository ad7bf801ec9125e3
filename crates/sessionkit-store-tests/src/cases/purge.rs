//! Purging records past their purge time.

use std::collections::HashSet;

use sessionkit_core::store::Purged;
use sessionkit_core::{ExpiryCause, RevokeReason, SessionRecord, StoreAdmin};

use crate::support::*;

fn purged(r: &SessionRecord, expired: Option<ExpiryCause>) -> Purged {
    Purged {
        tenant: r.tenant,
        id: r.id,
        subject: r.subject.clone(),
        expired,
    }
}

/// Purge at `now` removes exactly the records due at `now` (active
/// sessions past a deadline, tombstones past their absolute deadline, in
/// every tenant), reports `Expired(Idle|Absolute)` for active ones and
/// `None` for tombstones, and leaves everything else; a purged record is
/// gone by id and by token.
pub async fn purge_removes_due_records<S: StoreAdmin>(store: S) {
    let idle = session_with(Some("alice"), at(0), 100, 10_000);
    let absolute = session_with(Some("bob"), at(0), 10_000, 100);
    let idle_b = session_in(tenant_b(), None, at(0));
    let mut idle_b = idle_b;
    idle_b.idle_timeout = ms(50);
    let tomb_due = session_with(Some("carol"), at(0), 10_000, 100);
    let tomb_kept = session_with(Some("carol"), at(0), 10, 1000);
    let live = session_with(Some("dave"), at(0), 10_000, 10_000);
    let due_later = session_with(Some("erin"), at(0), 151, 10_000);
    for r in [
        &idle, &absolute, &idle_b, &tomb_due, &tomb_kept, &live, &due_later,
    ] {
        put(&store, r).await;
    }
    revoke(&store, &tomb_due, RevokeReason::Logout, at(1)).await;
    // Revoked while live: kept until its absolute deadline, though its idle
    // deadline (10) has passed.
    revoke(&store, &tomb_kept, RevokeReason::Logout, at(2)).await;

    let mut got = ok(store.purge_expired(at(150), 100)).await;
    got.sort_by_key(|p| p.id);
    let mut want = vec![
        purged(&idle, Some(ExpiryCause::Idle)),
        purged(&absolute, Some(ExpiryCause::Absolute)),
        purged(&idle_b, Some(ExpiryCause::Idle)),
        purged(&tomb_due, None),
    ];
    want.sort_by_key(|p| p.id);
    assert_eq!(got, want, "exactly the records due at now");
    for r in [&idle, &absolute, &idle_b, &tomb_due] {
        assert_absent(&store, r, "purged record").await;
    }
    assert_stored(
        &store,
        &tombstone_of(&tomb_kept, RevokeReason::Logout, at(2)),
        "tombstone not yet due",
    )
    .await;
    assert_stored(&store, &live, "live session").await;
    assert_stored(&store, &due_later, "session due 1 ms later").await;
    assert!(
        ok(store.purge_expired(at(150), 100)).await.is_empty(),
        "nothing left to purge"
    );

    // The boundary: due at its deadline, not a millisecond before.
    assert!(ok(store.purge_expired(at(150), 100)).await.is_empty());
    let got = ok(store.purge_expired(at(151), 100)).await;
    assert_eq!(
        got,
        vec![purged(&due_later, Some(ExpiryCause::Idle))],
        "due at the deadline"
    );
    let got = ok(store.purge_expired(at(999), 100)).await;
    assert!(got.is_empty(), "tombstone due at 1000, not before");
    let got = ok(store.purge_expired(at(1000), 100)).await;
    assert_eq!(
        got,
        vec![purged(&tomb_kept, None)],
        "tombstone at its absolute deadline"
    );
    assert_stored(&store, &live, "live session").await;

    // A purged id and token are free again.
    let c = ok(store.counts(tenant_a())).await;
    assert_eq!(c.active, 1, "only dave's session is left");
}

/// Purge removes at most `max` records per call; repeated calls remove
/// every due record once.
pub async fn purge_respects_max<S: StoreAdmin>(store: S) {
    let mut due = Vec::new();
    for i in 0..7 {
        let r = session_with(Some("alice"), at(i), 10, 10_000);
        put(&store, &r).await;
        due.push(r);
    }
    let live = session_with(Some("alice"), at(0), 10_000, 10_000);
    put(&store, &live).await;
    let mut seen = HashSet::new();
    for (max, n) in [(3, 3), (3, 3), (3, 1), (3, 0)] {
        let got = ok(store.purge_expired(at(100), max)).await;
        assert_eq!(got.len(), n, "purge with max {max}");
        for p in got {
            assert!(due.iter().any(|r| r.id == p.id), "only due records");
            assert!(seen.insert(p.id), "each record purged once");
            assert_eq!(p.expired, Some(ExpiryCause::Idle));
        }
    }
    assert_eq!(seen.len(), due.len());
    assert!(
        ok(store.purge_expired(at(100), 0)).await.is_empty(),
        "max 0"
    );
    assert_stored(&store, &live, "live session").await;
}
