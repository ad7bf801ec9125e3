//! The writer's failure path with I/O faults injected under redb
//! ([`crate::fault`]): no privileges needed, so it runs everywhere (the
//! tmpfs test in `tests/disk_full.rs` needs root).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sessionkit_core::store::{Change, CreateOutcome, Limits, UpdateOutcome};
use sessionkit_core::{
    AttributeLimits, Attributes, ClientInfo, DurationMs, Millis, RevokeReason, SessionId,
    SessionRecord, SessionState, SessionStore, SessionToken, Subject, TenantId,
};

use crate::fault::Fault;
use crate::{RedbOptions, RedbStore};

const T: TenantId = TenantId::DEFAULT;

fn at(ms: i64) -> Millis {
    Millis::from_millis(1_767_323_045_000 + ms)
}

fn attrs(v: serde_json::Value) -> Attributes {
    Attributes::from_value(&v, &AttributeLimits::default()).unwrap()
}

fn session(subject: &str, now: Millis) -> SessionRecord {
    SessionRecord {
        tenant: T,
        id: SessionId::generate(),
        token_hash: SessionToken::generate().unwrap().hash(),
        subject: Some(Subject::new(subject).unwrap()),
        created_at: now,
        last_seen_at: now,
        idle_timeout: DurationMs::from_secs(3600),
        expires_at: now.saturating_add(DurationMs::from_secs(86_400)),
        auth_time: Some(now),
        attributes: attrs(json!({"a": 1})),
        client: ClientInfo::default(),
        version: 1,
        state: SessionState::Active,
        refresh: None,
        assurance: None,
        grants: None,
    }
}

fn opts(fault: &Arc<Fault>) -> RedbOptions {
    let mut o = RedbOptions::default()
        .with_reopen_interval(Duration::from_millis(5))
        .with_touch_delay(Duration::from_millis(5));
    o.fault = Some(fault.clone());
    o
}

/// Retries a create until writes work again (bounded).
async fn create_until_ok(store: &RedbStore, r: &SessionRecord) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.create(r.clone(), Limits::default(), at(50)).await {
            Ok(CreateOutcome::Created { .. }) => return,
            Ok(other) => panic!("{other:?}"),
            Err(e) if Instant::now() < deadline => {
                assert!(e.is_retryable());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("writes never came back: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_disk_full_fails_writes_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let fault = Arc::new(Fault::default());
    let store = RedbStore::open_with(dir.path(), opts(&fault)).unwrap();
    let a = session("alice", at(0));
    store
        .create(a.clone(), Limits::default(), at(0))
        .await
        .unwrap();

    fault.set(Fault::DISK_FULL);
    let b = session("bob", at(1));
    let err = store
        .create(b.clone(), Limits::default(), at(1))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(!store.writes_healthy());
    // Nothing of the failed write is visible; earlier data is.
    assert!(
        store
            .get_by_token(T, &b.token_hash)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.get_by_token(T, &a.token_hash).await.unwrap(),
        Some(a.clone())
    );
    // While the file cannot be reopened, writes fail fast and apply nothing.
    let upd = store
        .update(
            T,
            a.id,
            1,
            Change::Attributes(attrs(json!({"x": 1}))),
            at(2),
        )
        .await;
    assert!(upd.is_err());
    let rev = store.revoke(T, a.id, RevokeReason::Admin, at(3)).await;
    assert!(rev.is_err());
    assert_eq!(store.get_by_id(T, a.id).await.unwrap(), Some(a.clone()));
    assert!(store.stats().failed_commits >= 1);

    fault.set(Fault::NONE);
    create_until_ok(&store, &b).await;
    assert!(store.writes_healthy());
    let upd = store
        .update(
            T,
            a.id,
            1,
            Change::Attributes(attrs(json!({"x": 2}))),
            at(60),
        )
        .await
        .unwrap();
    assert!(matches!(upd, UpdateOutcome::Updated(_)));
    store.flush_and_close().unwrap();
    drop(store);

    let store = RedbStore::open(dir.path()).unwrap();
    assert_eq!(store.len(), 2);
    assert_eq!(store.get_by_id(T, a.id).await.unwrap().unwrap().version, 2);
    assert!(
        store
            .get_by_token(T, &b.token_hash)
            .await
            .unwrap()
            .is_some()
    );
}

/// An fsync that reports failure after the data reached the file: the
/// caller is told `Unavailable` (the outcome is unknown to it), and once the
/// file is reopened memory agrees with the file again — whatever the file
/// ended up holding, the store serves exactly that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fsync_is_reconciled_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let fault = Arc::new(Fault::default());
    let store = RedbStore::open_with(dir.path(), opts(&fault)).unwrap();
    let a = session("carol", at(0));
    let c = session("carol", at(0));
    store
        .create(a.clone(), Limits::default(), at(0))
        .await
        .unwrap();
    store
        .create(c.clone(), Limits::default(), at(0))
        .await
        .unwrap();

    fault.set(Fault::SYNC_FAILS);
    let upd = store
        .update(
            T,
            a.id,
            1,
            Change::Attributes(attrs(json!({"y": 1}))),
            at(1),
        )
        .await;
    assert!(upd.is_err(), "{upd:?}");
    let b = session("carol", at(2));
    assert!(
        store
            .create(b.clone(), Limits::default(), at(2))
            .await
            .is_err()
    );
    let all = store
        .revoke_subject(
            T,
            &Subject::new("carol").unwrap(),
            None,
            RevokeReason::Admin,
            at(3),
        )
        .await;
    assert!(all.is_err());

    fault.set(Fault::NONE);
    let d = session("dave", at(40));
    create_until_ok(&store, &d).await;
    let in_memory = [
        store.get_by_id(T, a.id).await.unwrap(),
        store.get_by_id(T, b.id).await.unwrap(),
        store.get_by_id(T, c.id).await.unwrap(),
    ];
    store.flush_and_close().unwrap();
    drop(store);

    let store = RedbStore::open(dir.path()).unwrap();
    let on_disk = [
        store.get_by_id(T, a.id).await.unwrap(),
        store.get_by_id(T, b.id).await.unwrap(),
        store.get_by_id(T, c.id).await.unwrap(),
    ];
    assert_eq!(in_memory, on_disk);
    assert!(store.get_by_id(T, d.id).await.unwrap().is_some());
    println!(
        "after failed fsyncs: a v{:?}, b {:?}, c {:?}",
        on_disk[0].as_ref().map(|r| r.version),
        on_disk[1].is_some(),
        on_disk[2].as_ref().map(|r| r.state)
    );
    // Whatever happened, a is either untouched or fully updated.
    let a2 = on_disk[0].clone().unwrap();
    assert!(a2.version == 1 && a2.attributes == a.attributes || a2.version == 2);
}
