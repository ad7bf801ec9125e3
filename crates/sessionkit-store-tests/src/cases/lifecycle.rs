//! Lifecycle, tenant isolation, duplicates, the clock floor and counts.

use crate::support::UpgradeOutcome;
use serde_json::json;
use sessionkit_core::store::{
    Change, Counts, CreateOutcome, Limits, RevokeOutcome, RevokeSubjectOutcome, UpdateOutcome,
};
use sessionkit_core::{Liveness, Millis, RevokeReason, SessionState, StoreAdmin};

async fn floor<S: StoreAdmin>(s: &S) -> Millis {
    ok(s.clock_floor()).await
}

use crate::support::*;

/// Create → get by token and by id (exactly the record written) → revoke →
/// the record is a tombstone: state `Revoked{reason, at}`, no attributes, no
/// client info, every other field unchanged, liveness `Revoked`.
pub async fn create_then_get<S: StoreAdmin>(store: S) {
    let rec = session(Some("alice"), at(0));
    put(&store, &rec).await;
    assert_stored(&store, &rec, "fresh session").await;
    assert_eq!(rec.liveness(at(1)), Liveness::Live);

    let anon = session(None, at(1));
    put(&store, &anon).await;
    assert_stored(&store, &anon, "anonymous session").await;

    revoke(&store, &rec, RevokeReason::Logout, at(10)).await;
    let tomb = by_id(&store, rec.tenant, rec.id)
        .await
        .expect("a revoked session is kept as a tombstone");
    assert_eq!(
        tomb.state,
        SessionState::Revoked {
            reason: RevokeReason::Logout,
            at: at(10)
        }
    );
    assert!(tomb.attributes.is_empty(), "a tombstone has no attributes");
    assert!(tomb.client.is_empty(), "a tombstone has no client info");
    assert_eq!(
        tomb.liveness(at(11)),
        Liveness::Revoked(RevokeReason::Logout)
    );
    assert_eq!(tomb, tombstone_of(&rec, RevokeReason::Logout, at(10)));
    assert_stored(&store, &tomb, "tombstone").await;
    // The other session is untouched.
    assert_stored(&store, &anon, "unrelated session").await;
}

/// Another tenant's token or id finds nothing; writes addressed to another
/// tenant (revoke, revoke_subject, touch, update, upgrade) change nothing;
/// listing and counts are per tenant.
pub async fn tenant_isolation<S: StoreAdmin>(store: S) {
    let (a, b) = (tenant_a(), tenant_b());
    let rec = session_in(a, Some("alice"), at(0));
    put(&store, &rec).await;

    assert_eq!(by_token(&store, b, &rec.token_hash).await, None);
    assert_eq!(by_id(&store, b, rec.id).await, None);

    let out = ok(store.revoke(b, rec.id, RevokeReason::Admin, at(1))).await;
    assert_eq!(out, RevokeOutcome::NotFound, "revoke in another tenant");
    let out = ok(store.revoke_subject(
        b,
        &subject("alice"),
        None,
        RevokeReason::SubjectRevoked,
        at(1),
    ))
    .await;
    assert_eq!(
        out,
        RevokeSubjectOutcome::Revoked { count: 0 },
        "revoke_subject in another tenant"
    );
    let out = ok(store.revoke_subject(
        b,
        &subject("alice"),
        Some(rec.id),
        RevokeReason::OthersRevoked,
        at(1),
    ))
    .await;
    assert_eq!(
        out,
        RevokeSubjectOutcome::ExceptNotLive,
        "except from another tenant"
    );
    assert!(
        !ok(store.touch(b, rec.id, at(2))).await,
        "touch in another tenant"
    );
    let out = ok(store.update(
        b,
        rec.id,
        1,
        Change::Attributes(attrs(json!({"x": 1}))),
        at(2),
    ))
    .await;
    assert_eq!(out, UpdateOutcome::NotLive, "update in another tenant");
    let new = session_in(b, Some("alice"), at(3));
    upgrade_expect(
        &store,
        upgrade_req(&rec, &new, Limits::default(), at(3)),
        UpgradeOutcome::NotLive,
        "upgrade into another tenant",
    )
    .await;
    assert_unusable_successor(&store, &new, "refused upgrade").await;

    assert!(
        ok(store.list_subject(b, &subject("alice"), at(4), None, 10))
            .await
            .is_empty()
    );
    assert_eq!(
        ok(store.list_subject(a, &subject("alice"), at(4), None, 10)).await,
        vec![rec.clone()]
    );
    let cb = ok(store.counts(b)).await;
    assert_eq!(
        (cb.active, cb.anonymous, cb.subjects),
        (0, 0, 0),
        "counts of the other tenant"
    );

    // Nothing above changed the record.
    assert_stored(&store, &rec, "after foreign writes").await;

    // The same subject in the other tenant is another person.
    let rec_b = session_in(b, Some("alice"), at(5));
    put(&store, &rec_b).await;
    let out = ok(store.revoke_subject(
        a,
        &subject("alice"),
        None,
        RevokeReason::SubjectRevoked,
        at(6),
    ))
    .await;
    assert_eq!(out, RevokeSubjectOutcome::Revoked { count: 1 });
    assert_stored(&store, &rec_b, "other tenant's session of the same subject").await;
}

/// A create whose token hash or id is already stored answers `Duplicate`
/// and writes nothing: the existing record is unchanged (also when it is a
/// tombstone) and nothing is stored under the new record's other key.
pub async fn duplicate_on_create<S: StoreAdmin>(store: S) {
    let rec = session(Some("alice"), at(0));
    put(&store, &rec).await;

    let mut same_token = session(Some("mallory"), at(1));
    same_token.token_hash = rec.token_hash;
    let out = ok(store.create(same_token.clone(), Limits::default(), at(1))).await;
    assert_eq!(out, CreateOutcome::Duplicate, "same token hash");
    assert_eq!(by_id(&store, tenant_a(), same_token.id).await, None);

    let mut same_id = session(Some("mallory"), at(2));
    same_id.id = rec.id;
    let out = ok(store.create(same_id.clone(), Limits::default(), at(2))).await;
    assert_eq!(out, CreateOutcome::Duplicate, "same id");
    assert_eq!(
        by_token(&store, tenant_a(), &same_id.token_hash).await,
        None
    );
    assert_stored(&store, &rec, "original after duplicates").await;

    // A tombstone still holds its keys.
    revoke(&store, &rec, RevokeReason::Logout, at(3)).await;
    let tomb = tombstone_of(&rec, RevokeReason::Logout, at(3));
    let out = ok(store.create(same_token.clone(), Limits::default(), at(4))).await;
    assert_eq!(out, CreateOutcome::Duplicate, "token hash of a tombstone");
    let out = ok(store.create(same_id.clone(), Limits::default(), at(4))).await;
    assert_eq!(out, CreateOutcome::Duplicate, "id of a tombstone");
    assert_stored(&store, &tomb, "tombstone after duplicates").await;
    let c = ok(store.counts(tenant_a())).await;
    assert_eq!(c.active, 0, "a duplicate is not counted");
}

/// `clock_floor` never goes down, whatever time each write carries (a store
/// may raise it on writes, but need not: the engine persists it with
/// `persist_clock_floor` about once a second and at shutdown).
pub async fn clock_floor_never_goes_down<S: StoreAdmin>(store: S) {
    let mut seen = floor(&store).await;
    let mut step = async |what: &str| {
        let now = floor(&store).await;
        assert!(now >= seen, "{what}: the floor went down");
        seen = now;
    };
    let rec = session(Some("alice"), at(0));
    put(&store, &rec).await;
    step("after create").await;

    assert!(ok(store.touch(tenant_a(), rec.id, at(100))).await);
    step("after touch").await;

    let out = ok(store.update(
        tenant_a(),
        rec.id,
        1,
        Change::Attributes(attrs(json!({}))),
        at(200),
    ))
    .await;
    assert!(matches!(out, UpdateOutcome::Updated(_)));
    step("after update").await;

    let other = session(Some("bob"), at(250));
    put(&store, &other).await;
    let mut rec2 = by_id(&store, tenant_a(), rec.id).await.expect("stored");
    rec2.version = 2;
    let new = session(Some("alice"), at(300));
    upgrade_expect(
        &store,
        upgrade_req(&rec2, &new, Limits::default(), at(300)),
        UpgradeOutcome::Upgraded { evicted: vec![] },
        "upgrade",
    )
    .await;
    step("after upgrade").await;

    revoke(&store, &other, RevokeReason::Admin, at(400)).await;
    step("after revoke").await;

    let out = ok(store.revoke_subject(
        tenant_a(),
        &subject("alice"),
        None,
        RevokeReason::SubjectRevoked,
        at(500),
    ))
    .await;
    assert_eq!(out, RevokeSubjectOutcome::Revoked { count: 1 });
    step("after revoke_subject").await;

    // A write carrying an earlier time never lowers the floor.
    let early = session(Some("carol"), at(50));
    put(&store, &early).await;
    step("after a write with an earlier now").await;

    // Purge removes the tombstones once their absolute deadlines pass.
    let late = at(0).saturating_add(sessionkit_core::DurationMs::from_secs(86_400 * 2));
    let purged = ok(store.purge_expired(late, 100)).await;
    assert!(!purged.is_empty());
    step("after purge").await;
    ok(store.persist_clock_floor(late)).await;
    assert!(floor(&store).await >= late, "after persist_clock_floor");
}

/// `persist_clock_floor(at)` raises `clock_floor` to at least `at`, and an
/// earlier `at` never lowers it.
pub async fn persist_clock_floor_raises_floor<S: StoreAdmin>(store: S) {
    ok(store.persist_clock_floor(at(1_000))).await;
    assert!(
        floor(&store).await >= at(1_000),
        "after persist_clock_floor"
    );
    ok(store.persist_clock_floor(at(10))).await;
    assert!(
        floor(&store).await >= at(1_000),
        "an earlier time never lowers it"
    );
    let rec = session(Some("alice"), at(5_000));
    put(&store, &rec).await;
    ok(store.persist_clock_floor(at(2_000))).await;
    assert!(floor(&store).await >= at(5_000), "after a later write");
    // A session the engine already saw expire stays expired: the floor
    // persisted is past its deadline.
    let short = session_with(Some("bob"), at(5_000), 100, 100);
    put(&store, &short).await;
    ok(store.persist_clock_floor(at(5_100))).await;
    let f = floor(&store).await;
    let got = by_id(&store, short.tenant, short.id).await.expect("stored");
    assert!(!got.is_live(f), "not live at the floor");
}

/// Counts per tenant: active = not revoked and not yet purged (expired
/// sessions count until purged), anonymous among them, and the number of
/// subjects with at least one active session. Asserted exactly, for every
/// store, including those that say `approximate`: with no write in flight
/// and none lost half-way, the figures must be exact (see `Counts`).
pub async fn counts_by_tenant<S: StoreAdmin>(store: S) {
    let zero = ok(store.counts(tenant_a())).await;
    assert_eq!(
        (zero.active, zero.anonymous, zero.subjects),
        (0, 0, 0),
        "empty store"
    );

    let a1 = session(Some("alice"), at(0));
    let a2 = session(Some("alice"), at(1));
    let b1 = session(Some("bob"), at(2));
    let n1 = session(None, at(3));
    let n2 = session(None, at(4));
    let short = session_with(Some("carol"), at(5), 10, 10);
    let other = session_in(tenant_b(), Some("dave"), at(6));
    for r in [&a1, &a2, &b1, &n1, &n2, &short, &other] {
        put(&store, r).await;
    }
    let want = |c: Counts| (c.active, c.anonymous, c.subjects);
    let c = ok(store.counts(tenant_a())).await;
    assert_eq!(want(c), (6, 2, 3), "alice×2, bob, carol, anonymous×2");
    revoke(&store, &b1, RevokeReason::Logout, at(20)).await;
    revoke(&store, &n1, RevokeReason::Logout, at(20)).await;
    let c = ok(store.counts(tenant_a())).await;
    // carol's session is expired but not purged: still active.
    assert_eq!(want(c), (4, 1, 2), "after revoking bob and one anonymous");
    let purged = ok(store.purge_expired(at(30), 100)).await;
    assert_eq!(purged.len(), 1, "only carol's session is due");
    let c = ok(store.counts(tenant_a())).await;
    assert_eq!(want(c), (3, 1, 1), "after purging carol's session");
    let c = ok(store.counts(tenant_b())).await;
    assert_eq!(want(c), (1, 0, 1), "the other tenant");
}
