//! Upgrade: the successor is created (with `Limits::replaces`), then the
//! old session is retired for it (`retire`), each step one atomic write.

use serde_json::json;
use sessionkit_core::SessionId;
use sessionkit_core::store::{
    Change, CreateOutcome, Limits, RetireOutcome, RetireRequest, UpdateOutcome,
};
use sessionkit_core::{OnSessionLimit, RevokeReason, StoreAdmin};

use crate::support::*;

/// The old session becomes a tombstone (`Upgraded`, at `now`), the new one
/// is stored exactly as given, and the old token finds the tombstone.
pub async fn upgrade_replaces_session<S: StoreAdmin>(store: S) {
    let old = session(None, at(0));
    put(&store, &old).await;
    let new = session(Some("alice"), at(50));
    upgrade_expect(
        &store,
        upgrade_req(&old, &new, Limits::default(), at(50)),
        UpgradeOutcome::Upgraded { evicted: vec![] },
        "upgrade",
    )
    .await;
    assert_stored(
        &store,
        &tombstone_of(&old, RevokeReason::Upgraded, at(50)),
        "old session",
    )
    .await;
    assert_stored(&store, &new, "new session").await;
    let c = ok(store.counts(tenant_a())).await;
    assert_eq!((c.active, c.anonymous, c.subjects), (1, 0, 1));
    // The new session can be upgraded in turn (a privilege change).
    let newer = session(Some("alice"), at(60));
    upgrade_expect(
        &store,
        upgrade_req(&new, &newer, Limits::default(), at(60)),
        UpgradeOutcome::Upgraded { evicted: vec![] },
        "second upgrade",
    )
    .await;
    // A replay of the first upgrade finds a tombstone.
    let again = session(Some("alice"), at(70));
    upgrade_expect(
        &store,
        upgrade_req(&old, &again, Limits::default(), at(70)),
        UpgradeOutcome::NotLive,
        "replayed upgrade",
    )
    .await;
    assert_unusable_successor(&store, &again, "refused upgrade").await;
}

/// `NotLive` for a wrong token hash, a revoked, expired, unknown or other
/// tenant's session; nothing written.
pub async fn upgrade_refuses_not_live<S: StoreAdmin>(store: S) {
    let live = session(Some("alice"), at(0));
    put(&store, &live).await;
    let new = session(Some("alice"), at(10));

    // Each attempt brings its own successor: an upgrade that loses leaves
    // its successor as an unusable tombstone.
    let mut wrong_token = upgrade_req(&live, &new, Limits::default(), at(10));
    wrong_token.old_token_hash = fresh_token_hash();
    upgrade_expect(
        &store,
        wrong_token,
        UpgradeOutcome::NotLive,
        "wrong token hash",
    )
    .await;

    let foreign = session_in(tenant_b(), Some("alice"), at(10));
    upgrade_expect(
        &store,
        upgrade_req(&live, &foreign, Limits::default(), at(10)),
        UpgradeOutcome::NotLive,
        "other tenant",
    )
    .await;
    assert_unusable_successor(&store, &foreign, "refused upgrade").await;

    let unknown = session(Some("alice"), at(0));
    upgrade_expect(
        &store,
        upgrade_req(
            &unknown,
            &session(Some("alice"), at(10)),
            Limits::default(),
            at(10),
        ),
        UpgradeOutcome::NotLive,
        "unknown id",
    )
    .await;

    let revoked = session(Some("bob"), at(0));
    put(&store, &revoked).await;
    revoke(&store, &revoked, RevokeReason::Logout, at(5)).await;
    upgrade_expect(
        &store,
        upgrade_req(
            &revoked,
            &session(Some("bob"), at(10)),
            Limits::default(),
            at(10),
        ),
        UpgradeOutcome::NotLive,
        "revoked",
    )
    .await;

    let expired = session_with(Some("carol"), at(0), 5, 1000);
    put(&store, &expired).await;
    upgrade_expect(
        &store,
        upgrade_req(
            &expired,
            &session(Some("carol"), at(10)),
            Limits::default(),
            at(10),
        ),
        UpgradeOutcome::NotLive,
        "expired",
    )
    .await;

    assert_unusable_successor(&store, &new, "refused upgrades").await;
    assert_stored(&store, &live, "live session").await;
    assert_stored(&store, &expired, "expired session").await;
}

/// A stale expected version is `VersionMismatch` and writes nothing.
pub async fn upgrade_version_mismatch<S: StoreAdmin>(store: S) {
    let old = session(Some("alice"), at(0));
    put(&store, &old).await;
    let out = ok(store.update(
        old.tenant,
        old.id,
        1,
        Change::Attributes(attrs(json!({"v": 2}))),
        at(5),
    ))
    .await;
    let UpdateOutcome::Updated(current) = out else {
        panic!("update of a live session: {out:?}");
    };
    let new = session(Some("alice"), at(10));
    let req = upgrade_req(&old, &new, Limits::default(), at(10));
    assert_eq!(req.expected_version, 1);
    upgrade_expect(
        &store,
        req,
        UpgradeOutcome::VersionMismatch,
        "stale version",
    )
    .await;
    assert_unusable_successor(&store, &new, "refused upgrade").await;
    assert_stored(&store, &current, "old session").await;
    upgrade_expect(
        &store,
        upgrade_req(
            &current,
            &session(Some("alice"), at(11)),
            Limits::default(),
            at(11),
        ),
        UpgradeOutcome::Upgraded { evicted: vec![] },
        "current version",
    )
    .await;
}

/// The new session's token hash or id already stored: `Duplicate`, nothing
/// written, the old session still live.
pub async fn upgrade_duplicate<S: StoreAdmin>(store: S) {
    let old = session(None, at(0));
    let other = session(Some("bob"), at(1));
    put(&store, &old).await;
    put(&store, &other).await;
    let mut same_token = session(Some("alice"), at(10));
    same_token.token_hash = other.token_hash;
    upgrade_expect(
        &store,
        upgrade_req(&old, &same_token, Limits::default(), at(10)),
        UpgradeOutcome::Duplicate,
        "token hash in use",
    )
    .await;
    let mut same_id = session(Some("alice"), at(10));
    same_id.id = other.id;
    upgrade_expect(
        &store,
        upgrade_req(&old, &same_id, Limits::default(), at(10)),
        UpgradeOutcome::Duplicate,
        "id in use",
    )
    .await;
    let mut own_token = session(Some("alice"), at(10));
    own_token.token_hash = old.token_hash;
    upgrade_expect(
        &store,
        upgrade_req(&old, &own_token, Limits::default(), at(10)),
        UpgradeOutcome::Duplicate,
        "the old session's own token hash",
    )
    .await;
    assert_stored(&store, &old, "old session").await;
    assert_stored(&store, &other, "other session").await;
    assert_eq!(
        by_token(&store, tenant_a(), &same_id.token_hash).await,
        None
    );
}

/// The cap applies to the new session's subject, in the same write, and
/// ignores the session being replaced.
pub async fn upgrade_applies_cap<S: StoreAdmin>(store: S) {
    let refuse = per_subject(1, OnSessionLimit::Refuse);
    let evict = per_subject(1, OnSessionLimit::EvictOldest);
    let bob = session(Some("bob"), at(0));
    put(&store, &bob).await;

    // Anonymous → bob with bob at his cap: refused, nothing written.
    let anon = session(None, at(1));
    put(&store, &anon).await;
    let new = session(Some("bob"), at(10));
    upgrade_expect(
        &store,
        upgrade_req(&anon, &new, refuse, at(10)),
        UpgradeOutcome::SubjectLimitReached,
        "refuse at the cap",
    )
    .await;
    assert_absent(
        &store,
        &new,
        "a successor refused at the cap is never written",
    )
    .await;
    assert_stored(&store, &anon, "old session after refusal").await;
    assert_stored(&store, &bob, "bob after refusal").await;

    // Bob's own session → bob: the replaced session does not count.
    let bob2 = session(Some("bob"), at(20));
    upgrade_expect(
        &store,
        upgrade_req(&bob, &bob2, refuse, at(20)),
        UpgradeOutcome::Upgraded { evicted: vec![] },
        "upgrade of the subject's own session",
    )
    .await;

    // Anonymous → bob with eviction: bob's other session goes.
    let new = session(Some("bob"), at(30));
    upgrade_expect(
        &store,
        upgrade_req(&anon, &new, evict, at(30)),
        UpgradeOutcome::Upgraded {
            evicted: vec![bob2.id],
        },
        "evict at the cap",
    )
    .await;
    assert_stored(
        &store,
        &tombstone_of(&bob2, RevokeReason::Evicted, at(30)),
        "evicted",
    )
    .await;
    assert_stored(
        &store,
        &tombstone_of(&anon, RevokeReason::Upgraded, at(30)),
        "upgraded",
    )
    .await;
    assert_stored(&store, &new, "new").await;

    // Alice's session → bob: alice's session is replaced, bob's evicted.
    let alice = session(Some("alice"), at(40));
    put(&store, &alice).await;
    let newer = session(Some("bob"), at(50));
    upgrade_expect(
        &store,
        upgrade_req(&alice, &newer, evict, at(50)),
        UpgradeOutcome::Upgraded {
            evicted: vec![new.id],
        },
        "subject change",
    )
    .await;
}

/// `retire` is idempotent for its successor: a retry of the same request
/// (after a timeout, say) answers `Retired` again and changes nothing; a
/// retire of the same session for another successor is `NotLive`.
pub async fn retire_is_idempotent_for_its_successor<S: StoreAdmin>(store: S) {
    let old = session(None, at(0));
    put(&store, &old).await;
    let new = session(Some("alice"), at(10));
    let limits = Limits {
        replaces: Some(old.id),
        ..Limits::default()
    };
    let out = ok(store.create(new.clone(), limits, at(10))).await;
    assert_eq!(out, CreateOutcome::Created { evicted: vec![] });
    let req = RetireRequest {
        tenant: old.tenant,
        old_id: old.id,
        old_token_hash: old.token_hash,
        expected_version: old.version,
        successor: new.id,
        now: at(10),
    };
    assert_eq!(ok(store.retire(req)).await, RetireOutcome::Retired);
    let tomb = tombstone_of(&old, RevokeReason::Upgraded, at(10));
    assert_stored(&store, &tomb, "retired").await;
    let retry = RetireRequest { now: at(12), ..req };
    assert_eq!(
        ok(store.retire(retry)).await,
        RetireOutcome::Retired,
        "a retry for the same successor"
    );
    assert_stored(&store, &tomb, "unchanged by the retry").await;
    let other = RetireRequest {
        successor: SessionId::generate(),
        now: at(12),
        ..req
    };
    assert_eq!(
        ok(store.retire(other)).await,
        RetireOutcome::NotLive,
        "another successor"
    );
    let mut wrong = RetireRequest { now: at(12), ..req };
    wrong.old_token_hash = fresh_token_hash();
    assert_eq!(
        ok(store.retire(wrong)).await,
        RetireOutcome::NotLive,
        "a retry with another token"
    );
    assert_stored(&store, &new, "the successor").await;
}

/// A stale version is `VersionMismatch` with the current version, and
/// writes nothing.
pub async fn retire_version_mismatch<S: StoreAdmin>(store: S) {
    let old = session(Some("alice"), at(0));
    put(&store, &old).await;
    let out = ok(store.update(
        old.tenant,
        old.id,
        1,
        Change::Attributes(attrs(json!({"v": 2}))),
        at(5),
    ))
    .await;
    let UpdateOutcome::Updated(current) = out else {
        panic!("update of a live session: {out:?}");
    };
    let req = RetireRequest {
        tenant: old.tenant,
        old_id: old.id,
        old_token_hash: old.token_hash,
        expected_version: 1,
        successor: SessionId::generate(),
        now: at(10),
    };
    assert_eq!(
        ok(store.retire(req)).await,
        RetireOutcome::VersionMismatch { current: 2 }
    );
    assert_stored(&store, &current, "unchanged").await;
}

/// The session an upgrade replaces (`Limits::replaces`) is neither counted
/// against the subject's cap nor evicted by the successor's create: a
/// privilege change at the cap rotates the session instead of evicting
/// or refusing.
pub async fn replaced_session_is_not_counted_or_evicted<S: StoreAdmin>(store: S) {
    for on in [OnSessionLimit::Refuse, OnSessionLimit::EvictOldest] {
        let name = format!("cap-{on:?}");
        let a = session(Some(&name), at(0));
        let b = session(Some(&name), at(1));
        put(&store, &a).await;
        put(&store, &b).await;
        let new = session(Some(&name), at(10));
        let limits = Limits {
            per_subject: Some((2, on)),
            replaces: Some(a.id),
            ..Limits::default()
        };
        let out = ok(store.create(new.clone(), limits, at(10))).await;
        assert_eq!(
            out,
            CreateOutcome::Created { evicted: vec![] },
            "{on:?}: a is replaced, b stays"
        );
        assert_stored(&store, &a, "the replaced session, until retired").await;
        assert_stored(&store, &b, "the other session").await;
    }
}
