//! Purge at scale: batches larger than one transaction's, purgers running
//! side by side (each record reported once), and validation never waiting
//! on a purge.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use sessionkit_core::store::Limits;
use sessionkit_core::{SessionStore, StoreAdmin};
use sessionkit_postgres::PostgresStore;
use sessionkit_store_tests::support::{at, session_with};

use common::{DropSchema, reachable, schema, url};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_purgers_report_each_record_once() {
    if !reachable() {
        return;
    }
    let schema = schema();
    let _guard = DropSchema(schema.clone());
    let store = Arc::new(PostgresStore::connect(&url(), &schema).await.unwrap());
    const N: usize = 1_200;
    let mut creates = Vec::new();
    for i in 0..N {
        let store = Arc::clone(&store);
        let subject = (i % 3 != 0).then(|| format!("user-{}", i % 40));
        creates.push(tokio::spawn(async move {
            let r = session_with(subject.as_deref(), at(0), 10, 10_000);
            store
                .create(r.clone(), Limits::default(), at(0))
                .await
                .unwrap();
            r
        }));
    }
    let mut recs = Vec::new();
    for c in creates {
        recs.push(c.await.unwrap());
    }
    let live = session_with(Some("user-1"), at(0), 10_000, 10_000);
    store
        .create(live.clone(), Limits::default(), at(0))
        .await
        .unwrap();

    let purgers: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.purge_expired(at(100), N).await.unwrap() })
        })
        .collect();
    // Validation goes on meanwhile.
    for r in recs.iter().take(50) {
        store.get_by_token(r.tenant, &r.token_hash).await.unwrap();
    }
    let mut seen = HashSet::new();
    for p in purgers {
        for got in p.await.unwrap() {
            assert!(seen.insert(got.id), "reported twice: {:?}", got.id);
        }
    }
    // Whatever a busy row made a purger skip, one more purge takes.
    for got in store.purge_expired(at(100), N).await.unwrap() {
        assert!(seen.insert(got.id), "reported twice: {:?}", got.id);
    }
    assert_eq!(seen.len(), N);
    let c = store.counts(live.tenant).await.unwrap();
    assert_eq!((c.active, c.anonymous, c.subjects), (1, 0, 1));
    assert_eq!(
        store.get_by_id(live.tenant, live.id).await.unwrap(),
        Some(live.clone())
    );
}

/// Purging subject sessions finds each subject's row through its index,
/// never by scanning `subjects` (the call's "C" input collation once made
/// `tenant = p_tenant` unindexable: a full scan per purged row, and a 1M
/// purge timed out). Counted with `pg_stat_user_tables.seq_scan`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_subject_sessions_never_scans_the_subjects_table() {
    if !reachable() {
        return;
    }
    let schema = schema();
    let _guard = DropSchema(schema.clone());
    let store = Arc::new(PostgresStore::connect(&url(), &schema).await.unwrap());
    // Enough subjects that a scan is never the planner's cheapest choice.
    let s = schema.clone();
    common::with_client(async move |c| {
        c.batch_execute(&format!(
            "INSERT INTO {s}.subjects (tenant, subject, epoch, active)
               SELECT 'other', 'filler-' || g, 1, 0 FROM generate_series(1, 20000) g;
             ANALYZE {s}.subjects;"
        ))
        .await
        .unwrap();
    })
    .unwrap();
    for i in 0..300 {
        let subject = format!("user-{i}");
        let r = session_with(Some(&subject), at(0), 10, 10_000);
        store.create(r, Limits::default(), at(0)).await.unwrap();
    }
    let scans = |s: String| {
        common::with_client(async move |c| {
            c.batch_execute("SELECT pg_stat_force_next_flush()").await.ok();
            c.query_one(
                "SELECT seq_scan FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'subjects'",
                &[&s],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
        })
        .unwrap()
    };
    let before = scans(schema.clone());
    let purged = store.purge_expired(at(20_000), 10_000).await.unwrap();
    assert_eq!(purged.len(), 300);
    // Let the store's connections report their counters.
    drop(store);
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let after = scans(schema.clone());
    assert!(
        after - before < 10,
        "subjects scanned {} times for 300 purged sessions",
        after - before
    );
}
