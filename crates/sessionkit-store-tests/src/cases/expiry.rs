//! Deadlines exactly at their boundaries, and touch.

use serde_json::json;
use sessionkit_core::store::{Change, Limits, UpdateOutcome};
use sessionkit_core::{ExpiryCause, Liveness, RevokeReason, StoreAdmin};

use crate::support::*;

/// The idle deadline, read back from the store: live at deadline − 1 ms,
/// `Expired(Idle)` at the deadline; listing agrees.
pub async fn expiry_idle_boundary<S: StoreAdmin>(store: S) {
    let rec = session_with(Some("alice"), at(0), 100, 10_000);
    put(&store, &rec).await;
    let got = by_id(&store, rec.tenant, rec.id).await.expect("stored");
    assert_eq!(got.idle_expires_at(), at(100));
    assert_eq!(got.liveness(at(99)), Liveness::Live);
    assert_eq!(got.liveness(at(100)), Liveness::Expired(ExpiryCause::Idle));
    assert_eq!(got.liveness(at(101)), Liveness::Expired(ExpiryCause::Idle));
    let alice = subject("alice");
    assert_eq!(
        ok(store.list_subject(rec.tenant, &alice, at(99), None, 10))
            .await
            .len(),
        1,
        "listed at deadline − 1"
    );
    assert!(
        ok(store.list_subject(rec.tenant, &alice, at(100), None, 10))
            .await
            .is_empty(),
        "not listed at the deadline"
    );
}

/// The absolute deadline: live at deadline − 1 ms, `Expired(Absolute)` at
/// it, even when the idle window would reach further.
pub async fn expiry_absolute_boundary<S: StoreAdmin>(store: S) {
    let rec = session_with(Some("alice"), at(0), 10_000, 100);
    put(&store, &rec).await;
    let got = by_id(&store, rec.tenant, rec.id).await.expect("stored");
    assert_eq!(
        got.idle_expires_at(),
        at(100),
        "the idle deadline never passes the absolute one"
    );
    assert_eq!(got.liveness(at(99)), Liveness::Live);
    assert_eq!(
        got.liveness(at(100)),
        Liveness::Expired(ExpiryCause::Absolute)
    );
    let alice = subject("alice");
    assert_eq!(
        ok(store.list_subject(rec.tenant, &alice, at(99), None, 10))
            .await
            .len(),
        1
    );
    assert!(
        ok(store.list_subject(rec.tenant, &alice, at(100), None, 10))
            .await
            .is_empty()
    );
}

/// `update`, `touch` and `upgrade` succeed at deadline − 1 ms and are
/// refused at the deadline, for the idle and the absolute deadline; a
/// refused write changes nothing.
pub async fn writes_refused_at_deadline<S: StoreAdmin>(store: S) {
    for (idle, absolute) in [(100, 10_000), (10_000, 100)] {
        let what = if idle < absolute { "idle" } else { "absolute" };
        let change = || Change::Attributes(attrs(json!({"n": 1})));

        // At the deadline: every write is refused.
        let rec = session_with(Some("alice"), at(0), idle, absolute);
        put(&store, &rec).await;
        let out = ok(store.update(rec.tenant, rec.id, 1, change(), at(100))).await;
        assert_eq!(out, UpdateOutcome::NotLive, "update at the {what} deadline");
        assert!(
            !ok(store.touch(rec.tenant, rec.id, at(100))).await,
            "touch at the {what} deadline"
        );
        let new = session(Some("alice"), at(100));
        upgrade_expect(
            &store,
            upgrade_req(&rec, &new, Limits::default(), at(100)),
            UpgradeOutcome::NotLive,
            "upgrade at the deadline",
        )
        .await;
        assert_unusable_successor(&store, &new, "refused upgrade").await;
        assert_stored(&store, &rec, "after refused writes").await;

        // One millisecond before: each write succeeds.
        let rec = session_with(Some("bob"), at(0), idle, absolute);
        put(&store, &rec).await;
        let out = ok(store.update(rec.tenant, rec.id, 1, change(), at(99))).await;
        assert!(
            matches!(out, UpdateOutcome::Updated(_)),
            "update at the {what} deadline − 1: {out:?}"
        );
        let rec = session_with(Some("carol"), at(0), idle, absolute);
        put(&store, &rec).await;
        assert!(
            ok(store.touch(rec.tenant, rec.id, at(99))).await,
            "touch at the {what} deadline − 1"
        );
        let rec = session_with(Some("dave"), at(0), idle, absolute);
        put(&store, &rec).await;
        let new = session(Some("dave"), at(99));
        upgrade_expect(
            &store,
            upgrade_req(&rec, &new, Limits::default(), at(99)),
            UpgradeOutcome::Upgraded { evicted: vec![] },
            "upgrade at the deadline − 1",
        )
        .await;
        assert_stored(&store, &new, "upgraded session").await;
    }
}

/// Touch moves `last_seen_at` forward only (an equal or earlier time is not
/// written), never changes the version, attributes or anything else, and
/// extends the idle deadline.
pub async fn touch_moves_last_seen_forward<S: StoreAdmin>(store: S) {
    let rec = session_with(Some("alice"), at(0), 100, 10_000);
    put(&store, &rec).await;
    assert!(
        !ok(store.touch(rec.tenant, rec.id, at(0))).await,
        "touch at last_seen_at"
    );
    assert_stored(&store, &rec, "after a touch at last_seen_at").await;

    assert!(
        ok(store.touch(rec.tenant, rec.id, at(60))).await,
        "touch forward"
    );
    let mut want = rec.clone();
    want.last_seen_at = at(60);
    assert_stored(&store, &want, "after a touch").await;
    let got = by_id(&store, rec.tenant, rec.id).await.expect("stored");
    assert_eq!(got.version, 1, "a touch never changes the version");
    assert_eq!(got.idle_expires_at(), at(160), "the idle deadline moved");
    assert_eq!(got.liveness(at(159)), Liveness::Live);
    assert_eq!(got.liveness(at(160)), Liveness::Expired(ExpiryCause::Idle));

    assert!(
        !ok(store.touch(rec.tenant, rec.id, at(30))).await,
        "touch backwards"
    );
    assert!(
        !ok(store.touch(rec.tenant, rec.id, at(60))).await,
        "touch at the same time"
    );
    assert_stored(&store, &want, "after refused touches").await;

    // After an update, a touch still leaves the version alone.
    let out = ok(store.update(
        rec.tenant,
        rec.id,
        1,
        Change::Attributes(attrs(json!({"a": 1}))),
        at(70),
    ))
    .await;
    let UpdateOutcome::Updated(updated) = out else {
        panic!("update of a live session: {out:?}");
    };
    assert!(ok(store.touch(rec.tenant, rec.id, at(80))).await);
    let got = by_id(&store, rec.tenant, rec.id).await.expect("stored");
    assert_eq!(got.version, 2);
    assert_eq!(got.attributes, updated.attributes);
    assert_eq!(got.last_seen_at, at(80));
}

/// Touch is refused (returns false, writes nothing) on a revoked session,
/// an expired one, another tenant's and an unknown id.
pub async fn touch_refused_when_not_live<S: StoreAdmin>(store: S) {
    let revoked = session(Some("alice"), at(0));
    put(&store, &revoked).await;
    revoke(&store, &revoked, RevokeReason::Logout, at(1)).await;
    assert!(
        !ok(store.touch(revoked.tenant, revoked.id, at(2))).await,
        "touch of a revoked session"
    );
    assert_stored(
        &store,
        &tombstone_of(&revoked, RevokeReason::Logout, at(1)),
        "tombstone after touch",
    )
    .await;

    let expired = session_with(Some("bob"), at(0), 10, 1000);
    put(&store, &expired).await;
    assert!(
        !ok(store.touch(expired.tenant, expired.id, at(10))).await,
        "touch of an idle-expired session"
    );
    assert!(
        !ok(store.touch(expired.tenant, expired.id, at(500))).await,
        "touch long after"
    );
    assert_stored(&store, &expired, "expired session after touch").await;

    let live = session(Some("carol"), at(0));
    put(&store, &live).await;
    assert!(
        !ok(store.touch(tenant_b(), live.id, at(5))).await,
        "touch in another tenant"
    );
    assert!(
        !ok(store.touch(live.tenant, session(None, at(0)).id, at(5))).await,
        "touch of an unknown id"
    );
    assert_stored(&store, &live, "after foreign touch").await;
}

/// Touch extends the idle deadline but never past the absolute one.
pub async fn touch_never_extends_past_absolute<S: StoreAdmin>(store: S) {
    let rec = session_with(Some("alice"), at(0), 100, 150);
    put(&store, &rec).await;
    assert!(ok(store.touch(rec.tenant, rec.id, at(99))).await);
    let got = by_id(&store, rec.tenant, rec.id).await.expect("stored");
    assert_eq!(got.idle_expires_at(), at(150));
    assert_eq!(
        got.expires_at,
        at(150),
        "a touch never moves the absolute deadline"
    );
    assert_eq!(got.liveness(at(149)), Liveness::Live);
    assert_eq!(
        got.liveness(at(150)),
        Liveness::Expired(ExpiryCause::Absolute)
    );
    assert!(ok(store.touch(rec.tenant, rec.id, at(149))).await);
    assert!(
        !ok(store.touch(rec.tenant, rec.id, at(150))).await,
        "touch at the absolute deadline"
    );
    let got = by_id(&store, rec.tenant, rec.id).await.expect("stored");
    assert_eq!(got.last_seen_at, at(149));
    assert_eq!(
        got.liveness(at(150)),
        Liveness::Expired(ExpiryCause::Absolute)
    );
}
