//! Refresh rotation (`SessionStore::refresh`): rotation conditional on the
//! current refresh hash, a replay of the parent inside the grace window,
//! reuse detection that revokes the session in the same write, and the
//! races: N concurrent refreshes of one token make exactly one successor,
//! and a refresh racing a revoke never revives the session.

use std::sync::Arc;

use sessionkit_core::refresh::{RefreshState, RefreshToken};
use sessionkit_core::store::{RefreshOutcome, RefreshRequest};
use sessionkit_core::{Liveness, Millis, RevokeReason, SecretKey, SessionRecord, StoreAdmin};

use crate::cases::concurrency::{ROUNDS, TASKS, race};
use crate::support::*;

/// Grace window used by the cases: 30 s.
const GRACE: i64 = 30_000;

/// The key the cases derive successors with.
#[must_use]
pub fn refresh_key() -> SecretKey {
    SecretKey::from_bytes([42; 32])
}

/// A pair session (refresh state from a fresh root token) and its token.
#[must_use]
pub fn pair_session(subj: Option<&str>, created: Millis) -> (SessionRecord, RefreshToken) {
    let mut rec = session(subj, created);
    let root = RefreshToken::root(rec.id).expect("random");
    rec.refresh = Some(Box::new(RefreshState::new(&root, created)));
    (rec, root)
}

/// The request that presents `token` at `now` for `rec`.
#[must_use]
pub fn refresh_req(rec: &SessionRecord, token: &RefreshToken, now: Millis) -> RefreshRequest {
    RefreshRequest {
        tenant: rec.tenant,
        id: rec.id,
        presented: token.hash(),
        presented_generation: token.generation(),
        successor: token.successor(&refresh_key()).hash(),
        now,
        grace_until: now.saturating_add(ms(GRACE)),
    }
}

fn rotated(out: RefreshOutcome, what: &str) -> SessionRecord {
    match out {
        RefreshOutcome::Rotated(r) => *r,
        other => panic!("{what}: expected Rotated, got {other:?}"),
    }
}

/// A rotation makes the successor current, keeps the parent as previous
/// (replayable until the grace deadline), bumps the generation, moves
/// `last_seen_at` and nothing else; a pair session's refresh state is
/// stored and read back whole.
pub async fn refresh_rotates<S: StoreAdmin>(store: S) {
    let t0 = at(1_000_000);
    let (rec, root) = pair_session(Some("alice"), t0);
    put(&store, &rec).await;
    assert_stored(&store, &rec, "a pair session with its refresh state").await;
    let t1 = t0.saturating_add(ms(60_000));
    let req = refresh_req(&rec, &root, t1);
    let after = rotated(
        ok(store.refresh(req)).await,
        "refresh with the current token",
    );
    let mut expected = rec.clone();
    expected.refresh = Some(Box::new(RefreshState {
        current: req.successor,
        previous: Some(root.hash()),
        generation: 1,
        issued_at: t1,
        grace_until: req.grace_until,
    }));
    expected.last_seen_at = t1;
    assert_eq!(after, expected, "the record after a rotation");
    assert_stored(&store, &expected, "the rotated record").await;
    // The successor rotates in turn.
    let next = root.successor(&refresh_key());
    let t2 = t1.saturating_add(ms(1_000));
    let again = rotated(
        ok(store.refresh(refresh_req(&rec, &next, t2))).await,
        "refresh with the successor",
    );
    let st = again.refresh.expect("refresh state");
    assert_eq!(st.generation, 2);
    assert_eq!(st.previous, Some(next.hash()));
    assert_eq!(
        again.version, rec.version,
        "a refresh never bumps the version"
    );
    assert_eq!(
        again.expires_at, rec.expires_at,
        "never the absolute deadline"
    );
}

/// The parent presented again before the grace deadline, while its
/// successor is unused, is a replay: nothing written, the record as is.
pub async fn refresh_replay_in_grace<S: StoreAdmin>(store: S) {
    let t0 = at(2_000_000);
    let (rec, root) = pair_session(Some("bob"), t0);
    put(&store, &rec).await;
    let t1 = t0.saturating_add(ms(10));
    let after = rotated(
        ok(store.refresh(refresh_req(&rec, &root, t1))).await,
        "first refresh",
    );
    for dt in [0, 1, GRACE - 1] {
        let now = t1.saturating_add(ms(dt));
        match ok(store.refresh(refresh_req(&rec, &root, now))).await {
            RefreshOutcome::Replayed(r) => assert_eq!(*r, after, "a replay returns the record"),
            other => panic!("replay {dt} ms after the rotation: {other:?}"),
        }
    }
    assert_stored(&store, &after, "a replay writes nothing").await;
}

/// The parent after the grace deadline is a reuse: the session is revoked
/// (`reuse_detected`) in the same write, and its current token is dead.
pub async fn refresh_reuse_after_grace_revokes<S: StoreAdmin>(store: S) {
    let t0 = at(3_000_000);
    let (rec, root) = pair_session(Some("carol"), t0);
    put(&store, &rec).await;
    let t1 = t0.saturating_add(ms(10));
    rotated(
        ok(store.refresh(refresh_req(&rec, &root, t1))).await,
        "rotation",
    );
    let late = t1.saturating_add(ms(GRACE));
    assert_eq!(
        ok(store.refresh(refresh_req(&rec, &root, late))).await,
        RefreshOutcome::ReuseDetected {
            subject: Some(subject("carol"))
        },
        "the parent at the grace deadline"
    );
    let got = by_id(&store, rec.tenant, rec.id)
        .await
        .expect("a tombstone");
    assert_eq!(
        got.liveness(late),
        Liveness::Revoked(RevokeReason::ReuseDetected)
    );
    assert_eq!(got.refresh, None, "a tombstone keeps no refresh state");
    let next = root.successor(&refresh_key());
    assert_eq!(
        ok(store.refresh(refresh_req(&rec, &next, late))).await,
        RefreshOutcome::NotLive,
        "the current token of a revoked session"
    );
}

/// A grandparent (the parent of a used successor) is a reuse even inside
/// the grace window, and so is a displaced branch.
pub async fn refresh_reuse_of_grandparent_revokes<S: StoreAdmin>(store: S) {
    let t0 = at(4_000_000);
    let (rec, root) = pair_session(None, t0);
    put(&store, &rec).await;
    let key = refresh_key();
    let child = root.successor(&key);
    rotated(
        ok(store.refresh(refresh_req(&rec, &root, t0))).await,
        "first",
    );
    rotated(
        ok(store.refresh(refresh_req(&rec, &child, t0))).await,
        "second",
    );
    assert_eq!(
        ok(store.refresh(refresh_req(&rec, &root, t0))).await,
        RefreshOutcome::ReuseDetected { subject: None },
        "a grandparent inside the grace window"
    );
    assert!(
        by_id(&store, rec.tenant, rec.id)
            .await
            .is_some_and(|r| !r.is_live(t0))
    );
}

/// No rotation and no write for a session that is not live, has no refresh
/// state, is in another tenant or does not exist.
pub async fn refresh_refused_when_not_live<S: StoreAdmin>(store: S) {
    let t0 = at(5_000_000);
    // Expired.
    let (mut expired, root) = pair_session(Some("dan"), t0);
    expired.idle_timeout = ms(1_000);
    put(&store, &expired).await;
    let late = t0.saturating_add(ms(1_000));
    assert_eq!(
        ok(store.refresh(refresh_req(&expired, &root, late))).await,
        RefreshOutcome::NotLive
    );
    assert_stored(&store, &expired, "an expired session is not written").await;
    // Revoked.
    let (revoked, root2) = pair_session(Some("dan"), t0);
    put(&store, &revoked).await;
    revoke(&store, &revoked, RevokeReason::Logout, t0).await;
    assert_eq!(
        ok(store.refresh(refresh_req(&revoked, &root2, t0))).await,
        RefreshOutcome::NotLive
    );
    // An opaque-token session (no refresh state).
    let plain = session(Some("dan"), t0);
    put(&store, &plain).await;
    let stray = RefreshToken::root(plain.id).expect("random");
    assert_eq!(
        ok(store.refresh(refresh_req(&plain, &stray, t0))).await,
        RefreshOutcome::NotLive
    );
    assert_stored(&store, &plain, "a session without refresh state").await;
    // Another tenant, and an unknown id.
    let (live, root3) = pair_session(Some("dan"), t0);
    put(&store, &live).await;
    let mut other = refresh_req(&live, &root3, t0);
    other.tenant = tenant_b();
    assert_eq!(ok(store.refresh(other)).await, RefreshOutcome::NotLive);
    let mut unknown = refresh_req(&live, &root3, t0);
    unknown.id = sessionkit_core::SessionId::generate();
    assert_eq!(ok(store.refresh(unknown)).await, RefreshOutcome::NotLive);
    assert_stored(&store, &live, "nothing written for another tenant").await;
}

/// N concurrent refreshes with one token: exactly one rotation, every
/// other caller a replay of the same record (the same successor), nobody
/// revoked.
pub async fn concurrent_refreshes_one_successor<S: StoreAdmin>(store: S) {
    let store = Arc::new(store);
    for round in 0..ROUNDS {
        let t0 = at(10_000_000 + round as i64 * 100_000);
        let (rec, root) = pair_session(Some("erin"), t0);
        put(&*store, &rec).await;
        let req = refresh_req(&rec, &root, t0);
        let outs = race(TASKS, |_| {
            let store = Arc::clone(&store);
            async move { ok(store.refresh(req)).await }
        })
        .await;
        let rotations = outs
            .iter()
            .filter(|o| matches!(o, RefreshOutcome::Rotated(_)))
            .count();
        assert_eq!(
            rotations, 1,
            "round {round}: exactly one rotation: {outs:?}"
        );
        for o in &outs {
            match o {
                RefreshOutcome::Rotated(r) | RefreshOutcome::Replayed(r) => {
                    let st = r.refresh.as_deref().expect("refresh state");
                    assert_eq!(st.current, req.successor, "round {round}: one successor");
                    assert_eq!(st.generation, 1, "round {round}: one generation");
                }
                other => panic!("round {round}: a caller got {other:?}"),
            }
        }
        let got = by_id(&*store, rec.tenant, rec.id).await.expect("stored");
        assert!(got.is_live(t0), "round {round}: nobody is logged out");
    }
}

/// A refresh racing a revoke: the session ends revoked, whatever the order;
/// a rotation that won never brings it back.
pub async fn refresh_racing_revoke_never_revives<S: StoreAdmin>(store: S) {
    let store = Arc::new(store);
    for round in 0..ROUNDS {
        let t0 = at(20_000_000 + round as i64 * 100_000);
        let (rec, root) = pair_session(Some("frank"), t0);
        put(&*store, &rec).await;
        let req = refresh_req(&rec, &root, t0);
        let (tenant, id) = (rec.tenant, rec.id);
        let revoker = round % TASKS;
        race(TASKS, |i| {
            let store = Arc::clone(&store);
            async move {
                if i == revoker {
                    ok(store.revoke(tenant, id, RevokeReason::Logout, t0)).await;
                } else {
                    ok(store.refresh(req)).await;
                }
            }
        })
        .await;
        let got = by_id(&*store, tenant, id).await.expect("a tombstone");
        assert_eq!(
            got.liveness(t0),
            Liveness::Revoked(RevokeReason::Logout),
            "round {round}: a refresh racing a revoke revived the session"
        );
        let next = root.successor(&refresh_key());
        assert_eq!(
            ok(store.refresh(refresh_req(&rec, &next, t0))).await,
            RefreshOutcome::NotLive,
            "round {round}: nothing minted by the race refreshes"
        );
    }
}
