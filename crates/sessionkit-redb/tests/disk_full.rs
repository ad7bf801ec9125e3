//! Disk full, on a real file system: a small tmpfs mounted for the test
//! (needs root, or CAP_SYS_ADMIN; without it the test says so and passes —
//! the writer's failure path is also covered by the fault-injection unit
//! test in `src/tests.rs`, which needs no privilege).
//!
//! Writes fail with `StoreError::Unavailable` while the file system is
//! full, reads and validation keep working and show nothing of the failed
//! writes, and once space returns writes work again without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use sessionkit_core::store::{Change, CreateOutcome, UpdateOutcome};
use sessionkit_core::{SessionStore, StoreError, TenantId};
use sessionkit_redb::{RedbOptions, RedbStore};

const T: TenantId = TenantId::DEFAULT;

struct Tmpfs {
    point: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let parent = tempfile::tempdir().ok()?;
        let point = parent.path().join("fs");
        std::fs::create_dir(&point).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&point)
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(Tmpfs {
            point,
            _parent: parent,
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.point).status();
    }
}

fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xa5u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    path
}

#[test]
fn disk_full_fails_writes_keeps_reads_and_recovers() {
    let Some(fs) = Tmpfs::mount("4m") else {
        println!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    };
    let dir = fs.point.join("data");
    let rt = rt();
    rt.block_on(async {
        let opts = RedbOptions::default()
            .with_cache_bytes(1 << 20)
            .with_reopen_interval(Duration::from_millis(20));
        let store = RedbStore::open_with(&dir, opts.clone()).unwrap();
        let mut acked = Vec::new();
        for i in 0..20 {
            let r = session(Some("alice"), at(i));
            store.create(r.clone(), no_limits(), at(i)).await.unwrap();
            acked.push(r);
        }
        let filler = fill(&fs.point);

        // Write until the disk-full error surfaces (the file may have some
        // free pages left to fill first).
        let big = attrs(json!({"blob": "x".repeat(8_000)}));
        let mut failed = None;
        for i in 0..2_000 {
            let mut r = session(Some("bob"), at(100 + i));
            r.attributes = big.clone();
            match store.create(r.clone(), no_limits(), at(100 + i)).await {
                Ok(CreateOutcome::Created { .. }) => acked.push(r),
                Ok(other) => panic!("{other:?}"),
                Err(e) => {
                    failed = Some((r, e));
                    break;
                }
            }
        }
        let (lost, err) = failed.expect("the disk never filled");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert!(err.is_retryable());
        assert!(!store.writes_healthy());
        println!(
            "disk full after {} sessions: {err} ({:?})",
            acked.len(),
            std::error::Error::source(&err).map(ToString::to_string)
        );

        // Reads and validation keep working, and show nothing of the
        // failed write.
        for r in &acked {
            let got = store.get_by_token(T, &r.token_hash).await.unwrap();
            assert_eq!(got.as_ref(), Some(r));
        }
        assert!(
            store
                .get_by_token(T, &lost.token_hash)
                .await
                .unwrap()
                .is_none()
        );
        // More writes fail the same way and change nothing.
        let upd = store
            .update(
                T,
                acked[0].id,
                1,
                Change::Attributes(attrs(json!({"k": 1}))),
                at(5_000),
            )
            .await;
        assert!(matches!(upd, Err(StoreError::Unavailable(_))), "{upd:?}");
        assert_eq!(
            store
                .get_by_id(T, acked[0].id)
                .await
                .unwrap()
                .unwrap()
                .version,
            1
        );
        // A revoke-all and an upgrade that fail are undone in memory in full
        // (tombstones would have lost attributes and client info).
        let all = store
            .revoke_subject(
                T,
                &subject("alice"),
                None,
                sessionkit_core::RevokeReason::SubjectRevoked,
                at(5_001),
            )
            .await;
        assert!(matches!(all, Err(StoreError::Unavailable(_))), "{all:?}");
        let new = session(Some("alice"), at(5_002));
        let up = store.create(new.clone(), no_limits(), at(5_002)).await;
        assert!(matches!(up, Err(StoreError::Unavailable(_))), "{up:?}");
        let retire = store
            .retire(sessionkit_core::store::RetireRequest {
                tenant: T,
                old_id: acked[2].id,
                old_token_hash: acked[2].token_hash,
                expected_version: 1,
                successor: new.id,
                now: at(5_002),
            })
            .await;
        assert!(
            matches!(retire, Err(StoreError::Unavailable(_))),
            "{retire:?}"
        );
        assert!(store.get_by_id(T, new.id).await.unwrap().is_none());
        for r in &acked {
            let got = store.get_by_token(T, &r.token_hash).await.unwrap();
            assert_eq!(got.as_ref(), Some(r), "not restored after a failed write");
        }
        // A touch is best-effort: it answers, in memory.
        assert!(store.touch(T, acked[1].id, at(6_000)).await.is_ok());

        // Space returns: writes work again without a restart.
        std::fs::remove_file(&filler).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let again = loop {
            let r = session(Some("carol"), at(7_000));
            match store.create(r.clone(), no_limits(), at(7_000)).await {
                Ok(_) => break r,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("writes did not come back: {e}"),
            }
        };
        assert!(store.writes_healthy());
        acked.push(again);
        let upd = store
            .update(
                T,
                acked[0].id,
                1,
                Change::Attributes(attrs(json!({"k": 2}))),
                at(8_000),
            )
            .await
            .unwrap();
        let UpdateOutcome::Updated(a0) = upd else {
            panic!("{upd:?}")
        };
        acked[0] = *a0;
        store.flush_and_close().unwrap();
        drop(store);

        // Everything acknowledged is on disk; the failed write is not.
        let store = RedbStore::open_with(&dir, opts).unwrap();
        assert!(store.open_report().skipped.is_empty());
        for r in &acked {
            let got = store.get_by_token(T, &r.token_hash).await.unwrap().unwrap();
            assert_eq!(got.id, r.id);
            assert_eq!(got.version, r.version);
            assert_eq!(got.attributes, r.attributes);
        }
        assert!(
            store
                .get_by_token(T, &lost.token_hash)
                .await
                .unwrap()
                .is_none()
        );
        store.flush_and_close().unwrap();
    });

    // A read-only file system: the open fails with a clear error (it
    // cannot take the lock), nothing panics.
    let ro = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&fs.point)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ro {
        let err = RedbStore::open(&dir).unwrap_err();
        println!("read-only file system: {err}");
        assert!(err.to_string().contains("Read-only"), "{err}");
    }
    drop(fs);
}
