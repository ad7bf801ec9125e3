//! Corruption: a truncated file, flipped bytes, a zero-filled page. Each
//! damaged copy is opened: the open either fails with a clear error or
//! succeeds, and then every session it returns is exactly one that was
//! written, under its own id and token (never another session's data), and
//! nothing panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use serde_json::json;
use sessionkit_core::store::Change;
use sessionkit_core::{RevokeReason, SessionRecord, SessionStore, TenantId};
use sessionkit_redb::{OpenError, RedbOptions, RedbStore};

const T: TenantId = TenantId::DEFAULT;
const PAGE: usize = 4096;

/// Writes a few hundred sessions (some patched, some revoked) and returns
/// the file's bytes and the records as written.
fn build(dir: &Path) -> (Vec<u8>, Vec<SessionRecord>) {
    let rt = rt();
    let recs = rt.block_on(async {
        let store = RedbStore::open(dir).unwrap();
        let mut recs = Vec::new();
        for i in 0..300 {
            let subj = format!("user-{}", i % 40);
            let r = session((i % 7 != 0).then_some(subj.as_str()), at(i));
            store.create(r.clone(), no_limits(), at(i)).await.unwrap();
            recs.push(r);
        }
        for (i, r) in recs.iter().enumerate() {
            if i % 5 == 1 {
                store
                    .update(
                        T,
                        r.id,
                        1,
                        Change::Attributes(attrs(json!({"i": i}))),
                        at(400),
                    )
                    .await
                    .unwrap();
            } else if i % 5 == 2 {
                store
                    .revoke(T, r.id, RevokeReason::Logout, at(400))
                    .await
                    .unwrap();
            }
        }
        let mut now = Vec::new();
        for r in &recs {
            now.push(store.get_by_id(T, r.id).await.unwrap().unwrap());
        }
        store.flush_and_close().unwrap();
        now
    });
    let bytes = std::fs::read(dir.join("sessions.redb")).unwrap();
    (bytes, recs)
}

#[derive(Default)]
struct Tally {
    opened: usize,
    refused: usize,
    lost: usize,
}

/// Opens a damaged copy and checks that whatever it serves is true.
fn check_copy(bytes: &[u8], recs: &[SessionRecord], opts: &RedbOptions, tally: &mut Tally) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sessions.redb"), bytes).unwrap();
    let store = match RedbStore::open_with(dir.path(), opts.clone()) {
        Ok(s) => s,
        Err(e) => {
            // A clear error, naming the file.
            assert!(
                matches!(
                    e,
                    OpenError::Corrupt { .. }
                        | OpenError::Database { .. }
                        | OpenError::UnsupportedFormat { .. }
                ),
                "unexpected kind: {e}"
            );
            assert!(e.to_string().contains("sessions.redb"), "{e}");
            tally.refused += 1;
            return;
        }
    };
    tally.opened += 1;
    // With page checksums verified, what opens is exactly what was written.
    let strict = opts.verify() && store.open_report().skipped.is_empty();
    let rt = rt();
    rt.block_on(async {
        assert!(store.len() <= recs.len());
        for r in recs {
            let by_id = store.get_by_id(T, r.id).await.unwrap();
            let by_token = store.get_by_token(T, &r.token_hash).await.unwrap();
            match &by_id {
                None => tally.lost += 1,
                Some(got) => {
                    assert_eq!(got.id, r.id, "another session's data under this id");
                    if strict {
                        assert_eq!(got, r, "a session read differently than written");
                    }
                }
            }
            if let Some(got) = by_token {
                assert_eq!(got.id, r.id, "a token that leads to another session");
            }
        }
    });
    drop(store);
}

thread_local! {
    /// Panics raised on this thread (the hook is process-wide, the count is
    /// not: tests run in parallel).
    static PANICS: Arc<AtomicUsize> = Arc::new(AtomicUsize::new(0));
}

fn panics_counted() -> Arc<AtomicUsize> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|n| n.fetch_add(1, Ordering::SeqCst));
            prev(info);
        }));
    });
    PANICS.with(Arc::clone)
}

#[test]
fn damaged_files_are_refused_or_read_truthfully() {
    let src = tempfile::tempdir().unwrap();
    let (bytes, recs) = build(src.path());
    let panics = panics_counted();
    let opts = RedbOptions::default();
    let len = bytes.len();

    // Truncated.
    let mut t = Tally::default();
    let mut cuts: Vec<usize> = vec![1, 100, 511, PAGE, PAGE + 1, len / 2, len - PAGE, len - 1];
    cuts.extend((1..len / PAGE).map(|p| p * PAGE));
    for cut in cuts {
        check_copy(&bytes[..cut.min(len)], &recs, &opts, &mut t);
    }
    println!(
        "truncated: {} refused, {} opened, {} sessions lost",
        t.refused, t.opened, t.lost
    );

    // Flipped bytes, at offsets all over the file.
    let mut t = Tally::default();
    let step = (len / 300).max(1);
    for off in (0..len).step_by(step).chain([0, 1, 8, 64, 511, 512, 600]) {
        let mut b = bytes.clone();
        b[off] ^= 0xff;
        check_copy(&b, &recs, &opts, &mut t);
    }
    println!(
        "flipped bytes: {} refused, {} opened, {} sessions lost",
        t.refused, t.opened, t.lost
    );

    // A zero-filled page, each page in turn.
    let mut t = Tally::default();
    for p in 0..len.div_ceil(PAGE) {
        let mut b = bytes.clone();
        let end = ((p + 1) * PAGE).min(len);
        b[p * PAGE..end].fill(0);
        check_copy(&b, &recs, &opts, &mut t);
    }
    println!(
        "zeroed pages: {} refused, {} opened, {} sessions lost",
        t.refused, t.opened, t.lost
    );
    assert_eq!(
        panics.load(Ordering::SeqCst),
        0,
        "redb panicked on a damaged file"
    );
}

/// Without the checksum pass on open, redb trusts the file: a panic inside
/// it is caught and reported as corruption, and our own record checks still
/// keep one session from being read as another.
#[test]
fn without_verification_nothing_panics_out_or_crosses_sessions() {
    let src = tempfile::tempdir().unwrap();
    let (bytes, recs) = build(src.path());
    let opts = RedbOptions::default().with_verify_on_open(false);
    let len = bytes.len();
    let mut t = Tally::default();
    let step = (len / 150).max(1);
    for off in (0..len).step_by(step) {
        let mut b = bytes.clone();
        b[off] ^= 0x5a;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_copy(&b, &recs, &opts, &mut t);
        }));
        if let Err(p) = r {
            // Only our assertions may panic here; a redb panic must have
            // been turned into an OpenError.
            std::panic::resume_unwind(p);
        }
    }
    println!(
        "flipped bytes, unverified: {} refused, {} opened, {} sessions lost",
        t.refused, t.opened, t.lost
    );
}
