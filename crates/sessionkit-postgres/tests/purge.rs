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
