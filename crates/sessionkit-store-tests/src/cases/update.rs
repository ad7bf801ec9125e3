//! Conditional updates (compare-and-set on the version).

use serde_json::json;
use sessionkit_core::store::{Change, UpdateOutcome};
use sessionkit_core::{RevokeReason, StoreAdmin};

use crate::support::*;

/// An update with the current version replaces the attributes, bumps the
/// version by exactly 1 and changes nothing else; the returned record is
/// the stored one. A stale or future version gets `VersionMismatch` with the
/// current version, and writes nothing.
pub async fn update_compare_and_set<S: StoreAdmin>(store: S) {
    let rec = session(Some("alice"), at(0));
    put(&store, &rec).await;

    let a1 = attrs(json!({"step": 1}));
    let out = ok(store.update(
        rec.tenant,
        rec.id,
        1,
        Change::Attributes(a1.clone()),
        at(10),
    ))
    .await;
    let mut want = rec.clone();
    want.attributes = a1;
    want.version = 2;
    assert_eq!(
        out,
        UpdateOutcome::Updated(Box::new(want.clone())),
        "first update"
    );
    assert_stored(&store, &want, "after the first update").await;

    for stale in [1, 3, 0, u64::MAX] {
        let out = ok(store.update(
            rec.tenant,
            rec.id,
            stale,
            Change::Attributes(attrs(json!({"lost": stale}))),
            at(20),
        ))
        .await;
        assert_eq!(
            out,
            UpdateOutcome::VersionMismatch { current: 2 },
            "expected version {stale}"
        );
    }
    assert_stored(&store, &want, "after mismatches").await;

    let a2 = attrs(json!({"step": 2, "nested": {"k": [1, 2]}}));
    let out = ok(store.update(
        rec.tenant,
        rec.id,
        2,
        Change::Attributes(a2.clone()),
        at(30),
    ))
    .await;
    want.attributes = a2;
    want.version = 3;
    assert_eq!(
        out,
        UpdateOutcome::Updated(Box::new(want.clone())),
        "second update"
    );
    assert_stored(&store, &want, "after the second update").await;
}

/// An update of a revoked, expired, unknown or other-tenant session is
/// `NotLive` and writes nothing — even with the right version.
pub async fn update_not_live<S: StoreAdmin>(store: S) {
    let change = || Change::Attributes(attrs(json!({"x": 1})));
    let revoked = session(Some("alice"), at(0));
    put(&store, &revoked).await;
    revoke(&store, &revoked, RevokeReason::Logout, at(1)).await;
    let out = ok(store.update(revoked.tenant, revoked.id, 1, change(), at(2))).await;
    assert_eq!(out, UpdateOutcome::NotLive, "revoked");
    assert_stored(
        &store,
        &tombstone_of(&revoked, RevokeReason::Logout, at(1)),
        "tombstone",
    )
    .await;

    let expired = session_with(Some("bob"), at(0), 10, 20);
    put(&store, &expired).await;
    let out = ok(store.update(expired.tenant, expired.id, 1, change(), at(15))).await;
    assert_eq!(out, UpdateOutcome::NotLive, "idle-expired");
    let out = ok(store.update(expired.tenant, expired.id, 1, change(), at(25))).await;
    assert_eq!(out, UpdateOutcome::NotLive, "absolute-expired");
    assert_stored(&store, &expired, "expired session").await;

    let live = session(Some("carol"), at(0));
    put(&store, &live).await;
    let out = ok(store.update(tenant_b(), live.id, 1, change(), at(2))).await;
    assert_eq!(out, UpdateOutcome::NotLive, "another tenant");
    let out = ok(store.update(live.tenant, session(None, at(0)).id, 1, change(), at(2))).await;
    assert_eq!(out, UpdateOutcome::NotLive, "unknown id");
    assert_stored(&store, &live, "live session").await;
}
