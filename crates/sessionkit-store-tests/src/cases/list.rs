//! Listing a subject's sessions.

use std::collections::HashSet;

use sessionkit_core::store::ListCursor;
use sessionkit_core::{RevokeReason, SessionId, SessionRecord, StoreAdmin};

use crate::support::*;

/// Only live sessions of that subject and tenant, newest first by
/// `created_at`, then by id (ties on `created_at` included); `limit`
/// respected.
pub async fn list_live_newest_first<S: StoreAdmin>(store: S) {
    let mut recs = Vec::new();
    for (i, t) in [0, 10, 10, 10, 20, 5].into_iter().enumerate() {
        let mut r = session(Some("alice"), at(t));
        // Ids in an order unrelated to creation, to pin the tie-break.
        let mut b = *r.id.as_bytes();
        b[0] = [3, 9, 1, 7, 5, 2][i];
        r.id = SessionId::from_bytes(b);
        put(&store, &r).await;
        recs.push(r);
    }
    let expired = session_with(Some("alice"), at(15), 20, 10_000);
    let revoked = session(Some("alice"), at(16));
    for r in [
        &expired,
        &revoked,
        &session(Some("bob"), at(17)),
        &session_in(tenant_b(), Some("alice"), at(18)),
        &session(None, at(19)),
    ] {
        put(&store, r).await;
    }
    revoke(&store, &revoked, RevokeReason::Logout, at(21)).await;

    let mut want: Vec<SessionRecord> = recs.clone();
    want.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
    let all = ok(store.list_subject(tenant_a(), &subject("alice"), at(40), None, 100)).await;
    assert_eq!(all, want, "live sessions, newest first, ties by id");

    for limit in [1, 2, 5] {
        let page = ok(store.list_subject(tenant_a(), &subject("alice"), at(40), None, limit)).await;
        assert_eq!(page.as_slice(), &want[..limit], "limit {limit}");
    }
    // Before the idle deadline, the expired one is still listed.
    let earlier = ok(store.list_subject(tenant_a(), &subject("alice"), at(30), None, 100)).await;
    assert!(earlier.iter().any(|r| r.id == expired.id));
    assert!(!earlier.iter().any(|r| r.id == revoked.id));
    assert!(
        ok(store.list_subject(tenant_a(), &subject("nobody"), at(40), None, 100))
            .await
            .is_empty()
    );
}

/// Cursor pagination: pages of `limit` joined give the whole list, with no
/// duplicate and no gap, also when sessions share a `created_at` and when
/// the cursor's session is revoked between pages.
pub async fn list_pagination<S: StoreAdmin>(store: S) {
    let mut all = Vec::new();
    for i in 0..11 {
        let r = session(Some("alice"), at(i / 3));
        put(&store, &r).await;
        all.push(r);
    }
    all.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
    let alice = subject("alice");
    for limit in [1, 2, 3, 4, 10, 11, 12] {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = ok(store.list_subject(tenant_a(), &alice, at(100), cursor, limit)).await;
            assert!(page.len() <= limit, "limit {limit} respected");
            let Some(last) = page.last() else { break };
            cursor = Some(ListCursor::after(last));
            let full = page.len() == limit;
            seen.extend(page);
            if !full {
                break;
            }
            assert!(seen.len() <= all.len(), "pagination does not end");
        }
        assert_eq!(seen, all, "pages of {limit}");
        let ids: HashSet<_> = seen.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), all.len(), "no duplicates");
    }

    // The session a cursor points at is revoked between pages.
    let first = ok(store.list_subject(tenant_a(), &alice, at(100), None, 4)).await;
    assert_eq!(first.as_slice(), &all[..4]);
    let last = first.last().expect("a full page");
    revoke(&store, last, RevokeReason::Logout, at(101)).await;
    let rest = ok(store.list_subject(
        tenant_a(),
        &alice,
        at(102),
        Some(ListCursor::after(last)),
        100,
    ))
    .await;
    assert_eq!(
        rest.as_slice(),
        &all[4..],
        "the page after a revoked cursor"
    );
}

/// "Who is logged in": the subjects of a tenant with a live session, in
/// byte order, each with its number of live sessions; revoked, expired,
/// anonymous and other-tenant sessions do not count; pages follow `after`
/// with no gaps or repeats.
pub async fn list_subjects_with_live_sessions<S: StoreAdmin>(store: S) {
    for (subj, t) in [
        ("carol", 1),
        ("alice", 2),
        ("alice", 3),
        ("bob", 4),
        ("dave", 5),
    ] {
        put(&store, &session(Some(subj), at(t))).await;
    }
    let revoked = session(Some("erin"), at(6));
    put(&store, &revoked).await;
    revoke(&store, &revoked, RevokeReason::Logout, at(7)).await;
    put(&store, &session_with(Some("frank"), at(8), 20, 10_000)).await;
    put(&store, &session(None, at(9))).await;
    put(&store, &session_in(tenant_b(), Some("zed"), at(10))).await;

    let all = ok(store.list_subjects(tenant_a(), at(40), None, 100)).await;
    let names: Vec<(&str, u64)> = all.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    assert_eq!(
        names,
        [("alice", 2), ("bob", 1), ("carol", 1), ("dave", 1)],
        "live subjects in byte order with their counts (frank's expired, erin's revoked)"
    );
    // Before frank's idle deadline, frank is logged in.
    let earlier = ok(store.list_subjects(tenant_a(), at(20), None, 100)).await;
    assert!(earlier.iter().any(|(s, _)| s.as_str() == "frank"));
    // Pages of two, following `after`.
    let first = ok(store.list_subjects(tenant_a(), at(40), None, 2)).await;
    let last = first.last().map(|(s, _)| s.clone());
    let second = ok(store.list_subjects(tenant_a(), at(40), last.as_ref(), 2)).await;
    let paged: Vec<_> = first.iter().chain(second.iter()).cloned().collect();
    assert_eq!(paged, all);
    let beyond = ok(store.list_subjects(tenant_a(), at(40), Some(&subject("dave")), 2)).await;
    assert!(beyond.is_empty());
    let other = ok(store.list_subjects(tenant_b(), at(40), None, 100)).await;
    assert_eq!(other.len(), 1);
}
