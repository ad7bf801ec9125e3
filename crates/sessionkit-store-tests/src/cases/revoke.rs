//! Revoke one, revoke a subject, revoke a subject except one.

use sessionkit_core::store::{RevokeOutcome, RevokeSubjectOutcome};
use sessionkit_core::{RevokeReason, StoreAdmin};

use crate::support::*;

/// `Revoked{subject}` for an active session (also an expired one not yet
/// purged), `AlreadyRevoked` for a tombstone (which keeps its first reason
/// and time), `NotFound` for an unknown id.
pub async fn revoke_outcomes<S: StoreAdmin>(store: S) {
    let rec = session(Some("alice"), at(0));
    put(&store, &rec).await;
    revoke(&store, &rec, RevokeReason::Logout, at(10)).await;
    let out = ok(store.revoke(rec.tenant, rec.id, RevokeReason::Admin, at(20))).await;
    assert_eq!(out, RevokeOutcome::AlreadyRevoked);
    assert_stored(
        &store,
        &tombstone_of(&rec, RevokeReason::Logout, at(10)),
        "first revocation wins",
    )
    .await;

    let anon = session(None, at(0));
    put(&store, &anon).await;
    let out = ok(store.revoke(anon.tenant, anon.id, RevokeReason::Admin, at(5))).await;
    assert_eq!(out, RevokeOutcome::Revoked { subject: None }, "anonymous");

    let expired = session_with(Some("bob"), at(0), 10, 1000);
    put(&store, &expired).await;
    revoke(&store, &expired, RevokeReason::Admin, at(50)).await;
    assert_stored(
        &store,
        &tombstone_of(&expired, RevokeReason::Admin, at(50)),
        "expired, then revoked",
    )
    .await;

    let unknown = session(Some("carol"), at(0));
    let out = ok(store.revoke(unknown.tenant, unknown.id, RevokeReason::Admin, at(5))).await;
    assert_eq!(out, RevokeOutcome::NotFound);
    assert_absent(&store, &unknown, "revoke of an unknown id writes nothing").await;
}

/// Revoking a subject tombstones every active session of it (live and
/// expired) with the given reason and returns their ids; other subjects and
/// anonymous sessions are untouched; a second call revokes nothing.
pub async fn revoke_subject_all<S: StoreAdmin>(store: S) {
    let a1 = session(Some("alice"), at(0));
    let a2 = session(Some("alice"), at(1));
    let a3 = session_with(Some("alice"), at(2), 10, 1000);
    let a4 = session(Some("alice"), at(3));
    let bob = session(Some("bob"), at(4));
    let anon = session(None, at(5));
    for r in [&a1, &a2, &a3, &a4, &bob, &anon] {
        put(&store, r).await;
    }
    revoke(&store, &a4, RevokeReason::Logout, at(10)).await;
    let out = ok(store.revoke_subject(
        tenant_a(),
        &subject("alice"),
        None,
        RevokeReason::SubjectRevoked,
        at(100),
    ))
    .await;
    assert_eq!(
        out,
        RevokeSubjectOutcome::Revoked { count: 3 },
        "every active session, the expired one too"
    );
    for r in [&a1, &a2, &a3] {
        assert_stored(
            &store,
            &tombstone_of(r, RevokeReason::SubjectRevoked, at(100)),
            "revoked",
        )
        .await;
    }
    assert_stored(
        &store,
        &tombstone_of(&a4, RevokeReason::Logout, at(10)),
        "earlier tombstone keeps its reason",
    )
    .await;
    assert_stored(&store, &bob, "other subject").await;
    assert_stored(&store, &anon, "anonymous").await;
    assert!(
        ok(store.list_subject(tenant_a(), &subject("alice"), at(101), None, 10))
            .await
            .is_empty()
    );

    let out = ok(store.revoke_subject(
        tenant_a(),
        &subject("alice"),
        None,
        RevokeReason::SubjectRevoked,
        at(110),
    ))
    .await;
    assert_eq!(
        out,
        RevokeSubjectOutcome::Revoked { count: 0 },
        "nothing left"
    );
    let out = ok(store.revoke_subject(
        tenant_a(),
        &subject("nobody"),
        None,
        RevokeReason::SubjectRevoked,
        at(110),
    ))
    .await;
    assert_eq!(
        out,
        RevokeSubjectOutcome::Revoked { count: 0 },
        "unknown subject"
    );
}

/// "Log out other devices": every other active session of the subject is
/// revoked and `except` stays live and unchanged. `except` must be a live
/// session of that subject in that tenant; otherwise `ExceptNotLive` and
/// nothing is revoked.
pub async fn revoke_subject_except<S: StoreAdmin>(store: S) {
    let keep = session(Some("alice"), at(0));
    let a2 = session(Some("alice"), at(1));
    let a3 = session(Some("alice"), at(2));
    let expired = session_with(Some("alice"), at(3), 10, 1000);
    let revoked = session(Some("alice"), at(4));
    let bob = session(Some("bob"), at(5));
    let foreign = session_in(tenant_b(), Some("alice"), at(6));
    for r in [&keep, &a2, &a3, &expired, &revoked, &bob, &foreign] {
        put(&store, r).await;
    }
    revoke(&store, &revoked, RevokeReason::Logout, at(7)).await;
    let alice = subject("alice");

    let bad_excepts = [
        (bob.id, "a session of another subject"),
        (expired.id, "an expired session"),
        (revoked.id, "a revoked session"),
        (foreign.id, "a session of another tenant"),
        (session(Some("alice"), at(0)).id, "an unknown id"),
    ];
    for (id, what) in bad_excepts {
        let out = ok(store.revoke_subject(
            tenant_a(),
            &alice,
            Some(id),
            RevokeReason::OthersRevoked,
            at(100),
        ))
        .await;
        assert_eq!(out, RevokeSubjectOutcome::ExceptNotLive, "except = {what}");
    }
    for r in [&keep, &a2, &a3, &expired, &bob, &foreign] {
        assert_stored(&store, r, "nothing revoked").await;
    }

    let out = ok(store.revoke_subject(
        tenant_a(),
        &alice,
        Some(keep.id),
        RevokeReason::OthersRevoked,
        at(100),
    ))
    .await;
    assert_eq!(out, RevokeSubjectOutcome::Revoked { count: 3 });
    assert_stored(&store, &keep, "the kept session").await;
    for r in [&a2, &a3, &expired] {
        assert_stored(
            &store,
            &tombstone_of(r, RevokeReason::OthersRevoked, at(100)),
            "revoked",
        )
        .await;
    }
    assert_stored(&store, &foreign, "other tenant").await;
    let listed = ok(store.list_subject(tenant_a(), &alice, at(101), None, 10)).await;
    assert_eq!(listed, vec![keep.clone()]);

    let out = ok(store.revoke_subject(
        tenant_a(),
        &alice,
        Some(keep.id),
        RevokeReason::OthersRevoked,
        at(110),
    ))
    .await;
    assert_eq!(
        out,
        RevokeSubjectOutcome::Revoked { count: 0 },
        "nothing else left"
    );
}
