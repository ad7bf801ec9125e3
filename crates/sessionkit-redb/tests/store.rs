//! Focused tests of the embedded store: what is durable across a reopen,
//! the single-owner lock, touches, purge, unreadable records, formats.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use sessionkit_core::store::{
    Change, CreateOutcome, Limits, RetireOutcome, RetireRequest, RevokeOutcome,
    RevokeSubjectOutcome, UpdateOutcome,
};
use sessionkit_core::{
    Liveness, Millis, OnSessionLimit, RevokeReason, SessionState, SessionStore, StoreAdmin,
    TenantId,
};
use sessionkit_redb::{OpenError, RedbOptions, RedbStore};

const T: TenantId = TenantId::DEFAULT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path()).unwrap();
    let a = session(Some("alice"), at(0));
    let b = session(Some("alice"), at(1));
    let c = session(None, at(2));
    for r in [&a, &b, &c] {
        let out = store.create(r.clone(), no_limits(), at(3)).await.unwrap();
        assert_eq!(out, CreateOutcome::Created { evicted: vec![] });
    }
    let upd = store
        .update(
            T,
            a.id,
            1,
            Change::Attributes(attrs(json!({"x": 1}))),
            at(4),
        )
        .await
        .unwrap();
    let UpdateOutcome::Updated(a2) = upd else {
        panic!("{upd:?}")
    };
    assert_eq!(a2.version, 2);
    let out = store
        .revoke(T, c.id, RevokeReason::Logout, at(5))
        .await
        .unwrap();
    assert_eq!(out, RevokeOutcome::Revoked { subject: None });
    let mut new = session(Some("bob"), at(6));
    new.created_at = at(6);
    let limits = Limits {
        replaces: Some(b.id),
        ..no_limits()
    };
    let out = store.create(new.clone(), limits, at(6)).await.unwrap();
    assert_eq!(out, CreateOutcome::Created { evicted: vec![] });
    let out = store
        .retire(RetireRequest {
            tenant: T,
            old_id: b.id,
            old_token_hash: b.token_hash,
            expected_version: 1,
            successor: new.id,
            now: at(6),
        })
        .await
        .unwrap();
    assert_eq!(out, RetireOutcome::Retired);
    let floor = store.clock_floor().await.unwrap();
    // Dropping the last clone flushes and closes.
    drop(store);

    let store = RedbStore::open(dir.path()).unwrap();
    assert_eq!(store.open_report().loaded, 4);
    assert!(store.open_report().skipped.is_empty());
    assert_eq!(store.clock_floor().await.unwrap(), floor);
    assert_eq!(store.get_by_id(T, a.id).await.unwrap().unwrap(), *a2);
    let c2 = store.get_by_token(T, &c.token_hash).await.unwrap().unwrap();
    assert_eq!(c2.liveness(at(7)), Liveness::Revoked(RevokeReason::Logout));
    assert!(c2.attributes.is_empty());
    let b2 = store.get_by_id(T, b.id).await.unwrap().unwrap();
    assert_eq!(
        b2.liveness(at(7)),
        Liveness::Revoked(RevokeReason::Upgraded)
    );
    assert_eq!(
        store.get_by_token(T, &new.token_hash).await.unwrap(),
        Some(new)
    );
    let counts = store.counts(T).await.unwrap();
    assert_eq!(
        (counts.active, counts.anonymous, counts.subjects),
        (2, 0, 2)
    );
    store.flush_and_close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_open_names_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path()).unwrap();
    let err = RedbStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, OpenError::InUse { pid: Some(p), .. } if p == std::process::id()));
    assert!(
        err.to_string()
            .contains(&format!("already in use by pid {}", std::process::id())),
        "{err}"
    );
    store.flush_and_close().unwrap();
    // The lock is released with the store.
    drop(store);
    RedbStore::open(dir.path()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_store_refuses_writes_keeps_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path()).unwrap();
    let a = session(Some("alice"), at(0));
    store.create(a.clone(), no_limits(), at(0)).await.unwrap();
    let other = store.clone();
    store.flush_and_close().unwrap();
    store.flush_and_close().unwrap();
    let err = other
        .create(session(None, at(1)), no_limits(), at(1))
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert!(other.touch(T, a.id, at(2)).await.is_err());
    assert!(other.get_by_id(T, a.id).await.unwrap().is_some());
    assert!(!other.writes_healthy());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touches_are_written_behind() {
    let dir = tempfile::tempdir().unwrap();
    let opts = RedbOptions::default().with_touch_delay(Duration::from_millis(20));
    let store = RedbStore::open_with(dir.path(), opts.clone()).unwrap();
    let a = session(Some("alice"), at(0));
    let b = session(Some("bob"), at(0));
    store.create(a.clone(), no_limits(), at(0)).await.unwrap();
    store.create(b.clone(), no_limits(), at(0)).await.unwrap();
    assert!(store.touch(T, a.id, at(1_000)).await.unwrap());
    // Older than last_seen_at: nothing to do.
    assert!(!store.touch(T, a.id, at(500)).await.unwrap());
    // Written with the flush (a barrier for touches too).
    store.flush().await.unwrap();
    assert!(store.touch(T, b.id, at(2_000)).await.unwrap());
    // Written after touch_delay with no other write to ride with.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Simulate a crash: the file is read while the store is still open, so
    // nothing written at close counts.
    let snapshot = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.path().join("sessions.redb"),
        snapshot.path().join("sessions.redb"),
    )
    .unwrap();
    let copy = RedbStore::open(snapshot.path()).unwrap();
    let a2 = copy.get_by_id(T, a.id).await.unwrap().unwrap();
    let b2 = copy.get_by_id(T, b.id).await.unwrap().unwrap();
    assert_eq!(a2.last_seen_at, at(1_000));
    assert_eq!(b2.last_seen_at, at(2_000));
    assert_eq!(a2.version, 1);
    drop(copy);
    // A touch never revives a revoked session, in memory or on disk.
    store
        .revoke(T, a.id, RevokeReason::Admin, at(3_000))
        .await
        .unwrap();
    assert!(!store.touch(T, a.id, at(4_000)).await.unwrap());
    drop(store);
    let store = RedbStore::open_with(dir.path(), opts).unwrap();
    let a3 = store.get_by_id(T, a.id).await.unwrap().unwrap();
    assert!(matches!(a3.state, SessionState::Revoked { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_floor_is_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path()).unwrap();
    store.persist_clock_floor(at(9_000)).await.unwrap();
    assert_eq!(store.clock_floor().await.unwrap(), at(9_000));
    store.flush().await.unwrap();
    drop(store);
    let store = RedbStore::open(dir.path()).unwrap();
    assert_eq!(store.clock_floor().await.unwrap(), at(9_000));
    assert_eq!(store.open_report().clock_floor, Some(at(9_000)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_and_revoke_all_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path()).unwrap();
    let cap = Limits {
        per_subject: Some((2, OnSessionLimit::EvictOldest)),
        anonymous: None,
        replaces: None,
    };
    let s: Vec<_> = (0..3).map(|i| session(Some("carol"), at(i))).collect();
    for (i, r) in s.iter().enumerate() {
        store.create(r.clone(), cap, at(i as i64)).await.unwrap();
    }
    let old = store.get_by_id(T, s[0].id).await.unwrap().unwrap();
    assert_eq!(
        old.liveness(at(10)),
        Liveness::Revoked(RevokeReason::Evicted)
    );
    let out = store
        .revoke_subject(
            T,
            &subject("carol"),
            Some(s[2].id),
            RevokeReason::OthersRevoked,
            at(20),
        )
        .await
        .unwrap();
    assert_eq!(out, RevokeSubjectOutcome::Revoked { count: 1 });
    drop(store);
    let store = RedbStore::open(dir.path()).unwrap();
    let live: Vec<_> = store
        .list_subject(T, &subject("carol"), at(30), None, 10)
        .await
        .unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, s[2].id);
    for (r, reason) in [
        (&s[0], RevokeReason::Evicted),
        (&s[1], RevokeReason::OthersRevoked),
    ] {
        let got = store.get_by_id(T, r.id).await.unwrap().unwrap();
        assert_eq!(got.liveness(at(30)), Liveness::Revoked(reason));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_deletes_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path()).unwrap();
    let short = {
        let mut r = session(Some("dave"), at(0));
        r.idle_timeout = sessionkit_core::DurationMs::from_millis(100);
        r
    };
    let long = session(Some("dave"), at(0));
    store
        .create(short.clone(), no_limits(), at(0))
        .await
        .unwrap();
    store
        .create(long.clone(), no_limits(), at(0))
        .await
        .unwrap();
    let purged = store.purge_expired(at(1_000), 100).await.unwrap();
    assert_eq!(purged.len(), 1);
    assert_eq!(purged[0].id, short.id);
    drop(store);
    let store = RedbStore::open(dir.path()).unwrap();
    assert_eq!(store.open_report().loaded, 1);
    assert!(store.get_by_id(T, short.id).await.unwrap().is_none());
    assert!(store.get_by_id(T, long.id).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_are_all_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path()).unwrap();
    let mut tasks = Vec::new();
    for t in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..20 {
                let r = session(Some(&format!("user-{t}")), at(i));
                let out = store.create(r.clone(), no_limits(), at(i)).await.unwrap();
                assert!(matches!(out, CreateOutcome::Created { .. }));
                ids.push(r);
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    // Read the file as a crash would leave it: copy it while still open.
    let snapshot = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.path().join("sessions.redb"),
        snapshot.path().join("sessions.redb"),
    )
    .unwrap();
    let copy = RedbStore::open(snapshot.path()).unwrap();
    assert_eq!(copy.open_report().loaded, all.len());
    for r in &all {
        assert_eq!(
            copy.get_by_token(T, &r.token_hash).await.unwrap().as_ref(),
            Some(r)
        );
    }
}

#[test]
fn unreadable_record_is_absent_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let (a, b) = rt.block_on(async {
        let store = RedbStore::open(dir.path()).unwrap();
        let a = session(Some("erin"), at(0));
        let b = session(Some("erin"), at(1));
        store.create(a.clone(), no_limits(), at(0)).await.unwrap();
        store.create(b.clone(), no_limits(), at(1)).await.unwrap();
        store.flush_and_close().unwrap();
        (a, b)
    });
    // Damage b's record in place (a later format version, a copy of a's
    // record under b's key), through redb so the page checksums are valid.
    let table: redb::TableDefinition<u128, &[u8]> = redb::TableDefinition::new("sessions");
    for damage in 0..2 {
        {
            let db = redb::Database::create(dir.path().join("sessions.redb")).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(table).unwrap();
                let a_bytes = redb::ReadableTable::get(&t, a.id.as_u128())
                    .unwrap()
                    .unwrap()
                    .value()
                    .to_vec();
                let bad = if damage == 0 {
                    let mut v = a_bytes;
                    v[0] = 200;
                    v
                } else {
                    a_bytes
                };
                t.insert(b.id.as_u128(), bad.as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        rt.block_on(async {
            let store = RedbStore::open(dir.path()).unwrap();
            let report = store.open_report();
            assert_eq!(report.loaded, 1);
            assert_eq!(report.skipped.len(), 1);
            assert_eq!(report.skipped[0].id, b.id);
            assert!(store.get_by_id(T, b.id).await.unwrap().is_none());
            assert!(
                store
                    .get_by_token(T, &b.token_hash)
                    .await
                    .unwrap()
                    .is_none()
            );
            assert_eq!(store.get_by_id(T, a.id).await.unwrap().unwrap(), a);
        });
    }
}

#[test]
fn newer_file_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(RedbStore::open(dir.path()).unwrap());
    {
        let db = redb::Database::create(dir.path().join("sessions.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let meta: redb::TableDefinition<&str, i64> = redb::TableDefinition::new("meta");
            txn.open_table(meta).unwrap().insert("format", 2).unwrap();
        }
        txn.commit().unwrap();
    }
    let err = RedbStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::UnsupportedFormat {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn works_without_an_ambient_runtime() {
    // The writer is a std thread: any executor (here a bare block_on of a
    // current-thread runtime without time or I/O drivers) will do.
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let r = session(None, at(0));
    let out = rt
        .block_on(store.create(r.clone(), no_limits(), at(0)))
        .unwrap();
    assert!(matches!(out, CreateOutcome::Created { .. }));
    // Dropping the store inside a runtime is fine too.
    rt.block_on(async move { drop(store) });
    let store = RedbStore::open(dir.path()).unwrap();
    assert_eq!(store.len(), 1);
    let _ = Millis::MIN;
}

/// The store's directory and file are the user's alone: created 0700 and
/// 0600 whatever the umask, and made so when an existing one is open to
/// other users.
#[tokio::test]
async fn the_directory_and_the_file_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("store");
    let s = RedbStore::open(&dir).unwrap();
    s.flush_and_close().unwrap();
    drop(s);
    assert_eq!(mode(&dir), 0o700);
    let file = dir.join("sessions.redb");
    let lock = dir.join("LOCK");
    assert_eq!((mode(&file), mode(&lock)), (0o600, 0o600));
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o644)).unwrap();
    let s = RedbStore::open(&dir).unwrap();
    s.flush_and_close().unwrap();
    assert_eq!(
        (mode(&dir), mode(&file), mode(&lock)),
        (0o700, 0o600, 0o600)
    );
}
