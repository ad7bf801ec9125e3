//! Upgrade: replace a live session by a new one in one atomic write.

use serde_json::json;
use sessionkit_core::store::{Change, Limits, UpdateOutcome, UpgradeOutcome};
use sessionkit_core::{OnSessionLimit, RevokeReason, SessionStore};

use crate::support::*;

/// The old session becomes a tombstone (`Upgraded`, at `now`), the new one
/// is stored exactly as given, and the old token finds the tombstone.
pub async fn upgrade_replaces_session<S: SessionStore>(store: S) {
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
    if !c.approximate {
        assert_eq!((c.active, c.anonymous, c.subjects), (1, 0, 1));
    }
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
    assert_absent(&store, &again, "refused upgrade").await;
}

/// `NotLive` for a wrong token hash, a revoked, expired, unknown or other
/// tenant's session; nothing written.
pub async fn upgrade_refuses_not_live<S: SessionStore>(store: S) {
    let live = session(Some("alice"), at(0));
    put(&store, &live).await;
    let new = session(Some("alice"), at(10));

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
    assert_absent(&store, &foreign, "refused upgrade").await;

    let unknown = session(Some("alice"), at(0));
    upgrade_expect(
        &store,
        upgrade_req(&unknown, &new, Limits::default(), at(10)),
        UpgradeOutcome::NotLive,
        "unknown id",
    )
    .await;

    let revoked = session(Some("bob"), at(0));
    put(&store, &revoked).await;
    revoke(&store, &revoked, RevokeReason::Logout, at(5)).await;
    upgrade_expect(
        &store,
        upgrade_req(&revoked, &new, Limits::default(), at(10)),
        UpgradeOutcome::NotLive,
        "revoked",
    )
    .await;

    let expired = session_with(Some("carol"), at(0), 5, 1000);
    put(&store, &expired).await;
    upgrade_expect(
        &store,
        upgrade_req(&expired, &new, Limits::default(), at(10)),
        UpgradeOutcome::NotLive,
        "expired",
    )
    .await;

    assert_absent(&store, &new, "refused upgrades").await;
    assert_stored(&store, &live, "live session").await;
    assert_stored(&store, &expired, "expired session").await;
}

/// A stale expected version is `VersionMismatch` and writes nothing.
pub async fn upgrade_version_mismatch<S: SessionStore>(store: S) {
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
    assert_absent(&store, &new, "refused upgrade").await;
    assert_stored(&store, &current, "old session").await;
    upgrade_expect(
        &store,
        upgrade_req(&current, &new, Limits::default(), at(11)),
        UpgradeOutcome::Upgraded { evicted: vec![] },
        "current version",
    )
    .await;
}

/// The new session's token hash or id already stored: `Duplicate`, nothing
/// written, the old session still live.
pub async fn upgrade_duplicate<S: SessionStore>(store: S) {
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
pub async fn upgrade_applies_cap<S: SessionStore>(store: S) {
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
    assert_absent(&store, &new, "refused upgrade").await;
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
