//! Outages without stopping the shared server: a closed port, the store's
//! connections killed under it, and its table locked by someone else.
//! Every call answers `Unavailable` within the timeout (never a panic,
//! never an "allow"), and the same store works again afterwards.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use sessionkit_core::{RevokeReason, SessionStore, StoreError};
use sessionkit_postgres::{PostgresOptions, PostgresStore};
use sessionkit_store_tests::support::{at, put, session};

use common::{DropSchema, reachable, schema, url};

fn opts(timeout: Duration) -> PostgresOptions {
    PostgresOptions {
        timeout,
        wait_timeout: timeout,
        create_timeout: timeout,
        recycle_timeout: timeout,
        ..PostgresOptions::default()
    }
}

#[tokio::test]
async fn closed_port_is_unavailable_in_time() {
    let started = Instant::now();
    let got = PostgresStore::connect_with(
        "postgres://postgres@127.0.0.1:1/test",
        "sk_none",
        opts(Duration::from_millis(500)),
    )
    .await;
    assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_and_a_locked_table() {
    if !reachable() {
        return;
    }
    let schema = schema();
    let _guard = DropSchema(schema.clone());
    let app = format!("sk_outage_{}", &schema[8..24]);
    let sep = if url().contains('?') { '&' } else { '?' };
    let store_url = format!("{}{sep}application_name={app}", url());
    let store = PostgresStore::connect_with(&store_url, &schema, opts(Duration::from_secs(1)))
        .await
        .unwrap();
    let rec = session(Some("ann"), at(0));
    put(&store, &rec).await;

    // Its connections are killed: calls fail as Unavailable, then the pool
    // opens new ones and the same store answers again.
    let kill = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{app}'"
    );
    let k = kill.clone();
    common::with_client(async move |c| c.batch_execute(&k).await.unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let found = loop {
        match store.get_by_token(rec.tenant, &rec.token_hash).await {
            Ok(found) => break found,
            Err(StoreError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no recovery: {e:?}"),
        }
    };
    assert_eq!(found.map(|r| r.id), Some(rec.id), "acknowledged, then kept");

    // Someone holds the table: every call gives up within the timeout.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let lock = format!("BEGIN; LOCK TABLE {schema}.sessions IN ACCESS EXCLUSIVE MODE;");
    let holder = std::thread::spawn(move || {
        common::with_client(async move |c| {
            c.batch_execute(&lock).await.unwrap();
            locked_tx.send(()).unwrap();
            while release_rx.try_recv().is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            c.batch_execute("ROLLBACK").await.unwrap();
        })
    });
    locked_rx.recv().unwrap();
    for _ in 0..2 {
        let started = Instant::now();
        let got = store.get_by_token(rec.tenant, &rec.token_hash).await;
        assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");
        let got = store
            .revoke(rec.tenant, rec.id, RevokeReason::Logout, at(1))
            .await;
        assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
    }
    // The server gives up too (`statement_timeout`, the store's timeout):
    // let it, before the lock goes, or a statement that started a moment
    // after the client's deadline began could still run (an `Unavailable`
    // answer means "not known to be done", not "certainly not done").
    std::thread::sleep(Duration::from_millis(2_500));
    release_tx.send(()).unwrap();
    holder.join().unwrap().unwrap();

    // Nothing was written by the calls that gave up; the store works again.
    let got = store.get_by_id(rec.tenant, rec.id).await.unwrap();
    assert_eq!(got, Some(rec.clone()));
    let got = store
        .revoke(rec.tenant, rec.id, RevokeReason::Logout, at(2))
        .await
        .unwrap();
    assert!(matches!(
        got,
        sessionkit_core::store::RevokeOutcome::Revoked { .. }
    ));
}
