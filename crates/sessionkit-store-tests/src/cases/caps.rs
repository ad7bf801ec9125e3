//! Per-subject and anonymous caps on create.

use sessionkit_core::store::{CreateOutcome, Limits};
use sessionkit_core::{OnSessionLimit, RevokeReason, StoreAdmin};

use crate::support::*;

/// At the per-subject cap with `EvictOldest`, a create revokes the live
/// session of that subject with the oldest `last_seen_at` (reason
/// `Evicted`), returns it, and stores the new one. Other subjects and other
/// tenants do not count.
pub async fn subject_cap_evicts_oldest<S: StoreAdmin>(store: S) {
    let lim = per_subject(2, OnSessionLimit::EvictOldest);
    let a = session(Some("alice"), at(0));
    let b = session(Some("alice"), at(10));
    for r in [&a, &b] {
        let out = ok(store.create(r.clone(), lim, r.created_at)).await;
        assert_eq!(
            out,
            CreateOutcome::Created { evicted: vec![] },
            "below the cap"
        );
    }
    // Others: not counted against alice.
    for r in [
        session(Some("bob"), at(11)),
        session_in(tenant_b(), Some("alice"), at(12)),
        session(None, at(13)),
    ] {
        let out = ok(store.create(r.clone(), lim, r.created_at)).await;
        assert_eq!(
            out,
            CreateOutcome::Created { evicted: vec![] },
            "another subject or tenant"
        );
    }
    // a was created first but seen last: b is the least recently seen.
    assert!(ok(store.touch(a.tenant, a.id, at(20))).await);
    let mut a_now = a.clone();
    a_now.last_seen_at = at(20);

    let c = session(Some("alice"), at(30));
    let out = ok(store.create(c.clone(), lim, at(30))).await;
    assert_eq!(
        out,
        CreateOutcome::Created {
            evicted: vec![b.id]
        }
    );
    assert_stored(
        &store,
        &tombstone_of(&b, RevokeReason::Evicted, at(30)),
        "evicted session",
    )
    .await;
    assert_stored(&store, &a_now, "kept session").await;
    assert_stored(&store, &c, "new session").await;

    let d = session(Some("alice"), at(40));
    let out = ok(store.create(d.clone(), lim, at(40))).await;
    assert_eq!(
        out,
        CreateOutcome::Created {
            evicted: vec![a.id]
        },
        "next oldest by last_seen_at"
    );
    let live = ok(store.list_subject(tenant_a(), &subject("alice"), at(41), None, 10)).await;
    assert_eq!(live, vec![d.clone(), c.clone()]);

    // A smaller cap evicts as many as needed, oldest first.
    let e = session(Some("alice"), at(50));
    let out = ok(store.create(
        e.clone(),
        per_subject(1, OnSessionLimit::EvictOldest),
        at(50),
    ))
    .await;
    let CreateOutcome::Created { mut evicted } = out else {
        panic!("create at a lowered cap: {out:?}");
    };
    evicted.sort();
    let mut want = vec![c.id, d.id];
    want.sort();
    assert_eq!(evicted, want, "both older sessions evicted");
}

/// At the per-subject cap with `Refuse`, a create is `SubjectLimitReached`
/// and writes nothing; revoking one makes room again.
pub async fn subject_cap_refuses<S: StoreAdmin>(store: S) {
    let lim = per_subject(2, OnSessionLimit::Refuse);
    let a = session(Some("alice"), at(0));
    let b = session(Some("alice"), at(1));
    for r in [&a, &b] {
        let out = ok(store.create(r.clone(), lim, r.created_at)).await;
        assert_eq!(out, CreateOutcome::Created { evicted: vec![] });
    }
    let c = session(Some("alice"), at(2));
    let out = ok(store.create(c.clone(), lim, at(2))).await;
    assert_eq!(out, CreateOutcome::SubjectLimitReached);
    assert_absent(&store, &c, "refused create").await;
    assert_stored(&store, &a, "first").await;
    assert_stored(&store, &b, "second").await;
    let counts = ok(store.counts(tenant_a())).await;
    assert_eq!(counts.active, 2, "nothing written");
    // Other subjects are not affected.
    let other = session(Some("bob"), at(3));
    let out = ok(store.create(other.clone(), lim, at(3))).await;
    assert_eq!(out, CreateOutcome::Created { evicted: vec![] });

    revoke(&store, &a, RevokeReason::Logout, at(4)).await;
    let out = ok(store.create(c.clone(), lim, at(5))).await;
    assert_eq!(
        out,
        CreateOutcome::Created { evicted: vec![] },
        "a tombstone does not count"
    );
}

/// Expired sessions (not yet purged) do not count toward the per-subject
/// cap and are not evicted for it.
pub async fn expired_sessions_do_not_count<S: StoreAdmin>(store: S) {
    let old = session_with(Some("alice"), at(0), 100, 10_000);
    put(&store, &old).await;
    let old_abs = session_with(Some("alice"), at(1), 10_000, 100);
    put(&store, &old_abs).await;
    let refuse = per_subject(1, OnSessionLimit::Refuse);
    let a = session(Some("alice"), at(200));
    let out = ok(store.create(a.clone(), refuse, at(200))).await;
    assert_eq!(
        out,
        CreateOutcome::Created { evicted: vec![] },
        "expired sessions are not counted"
    );

    let evict = per_subject(1, OnSessionLimit::EvictOldest);
    let b = session(Some("alice"), at(300));
    let out = ok(store.create(b.clone(), evict, at(300))).await;
    assert_eq!(
        out,
        CreateOutcome::Created {
            evicted: vec![a.id]
        },
        "only the live one is evicted"
    );
    assert_stored(&store, &old, "expired session untouched").await;
    assert_stored(&store, &old_abs, "expired session untouched").await;
}

/// The anonymous cap: at `anonymous` active anonymous sessions in a tenant,
/// an anonymous create is `AnonymousLimitReached` and writes nothing.
/// Subject sessions and other tenants are not counted; a revoked anonymous
/// session makes room; a subject session is never refused by it.
pub async fn anonymous_cap<S: StoreAdmin>(store: S) {
    let lim = Limits {
        per_subject: None,
        anonymous: Some(2),
        replaces: None,
    };
    for r in [
        session(Some("alice"), at(0)),
        session_in(tenant_b(), None, at(0)),
    ] {
        put(&store, &r).await;
    }
    let a = session(None, at(1));
    let b = session(None, at(2));
    for r in [&a, &b] {
        let out = ok(store.create(r.clone(), lim, r.created_at)).await;
        assert_eq!(
            out,
            CreateOutcome::Created { evicted: vec![] },
            "below the anonymous cap"
        );
    }
    let c = session(None, at(3));
    let out = ok(store.create(c.clone(), lim, at(3))).await;
    assert_eq!(out, CreateOutcome::AnonymousLimitReached);
    assert_absent(&store, &c, "refused anonymous create").await;

    let s = session(Some("bob"), at(4));
    let out = ok(store.create(s.clone(), lim, at(4))).await;
    assert_eq!(
        out,
        CreateOutcome::Created { evicted: vec![] },
        "subject sessions ignore the anonymous cap"
    );
    let t = session_in(tenant_b(), None, at(4));
    let out = ok(store.create(t.clone(), lim, at(4))).await;
    assert_eq!(
        out,
        CreateOutcome::Created { evicted: vec![] },
        "the cap is per tenant"
    );

    revoke(&store, &a, RevokeReason::Logout, at(5)).await;
    let out = ok(store.create(c.clone(), lim, at(6))).await;
    assert_eq!(
        out,
        CreateOutcome::Created { evicted: vec![] },
        "a revoked anonymous session makes room"
    );
    assert_stored(&store, &c, "new anonymous session").await;
}
