//! Migrations: two stores migrating one schema at once both start; a
//! schema newer than this build, or an invalid schema name, is refused
//! with a clear error.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::error::Error as _;

use sessionkit_core::{SessionStore, StoreError};
use sessionkit_postgres::{PostgresStore, SCHEMA_VERSION, SchemaError};
use sessionkit_store_tests::support::{at, put, session};

use common::{DropSchema, reachable, schema, url, with_client};

fn schema_error(e: &StoreError) -> Option<&SchemaError> {
    e.source()?.downcast_ref::<SchemaError>()
}

#[test]
fn concurrent_migrations_and_newer_schema() {
    if !reachable() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let schema = schema();
        let _guard = DropSchema(schema.clone());
        // Eight nodes start at once on a schema that does not exist yet.
        let starts: Vec<_> = (0..8)
            .map(|_| {
                let schema = schema.clone();
                tokio::spawn(async move { PostgresStore::connect(&url(), &schema).await })
            })
            .collect();
        let mut stores = Vec::new();
        for s in starts {
            stores.push(s.await.unwrap().expect("every node starts"));
        }
        // They share one store.
        let rec = session(Some("alice"), at(0));
        put(&stores[0], &rec).await;
        for s in &stores {
            assert_eq!(
                s.get_by_id(rec.tenant, rec.id).await.unwrap(),
                Some(rec.clone())
            );
        }
        drop(stores);

        // Starting again finds nothing to do.
        PostgresStore::connect(&url(), &schema)
            .await
            .expect("restart");

        // A newer build migrated the schema: this one refuses to start.
        let sql = format!("UPDATE {schema}.schema_version SET version = 99");
        common::with_client(async move |c| c.batch_execute(&sql).await.unwrap()).unwrap();
        let err = PostgresStore::connect(&url(), &schema)
            .await
            .expect_err("refused");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        let why = schema_error(&err).expect("a schema error");
        assert_eq!(
            why,
            &SchemaError::TooNew {
                schema: schema.clone(),
                found: 99,
                supported: SCHEMA_VERSION,
            }
        );
        let text = why.to_string();
        assert!(
            text.contains("99") && text.contains(&SCHEMA_VERSION.to_string()),
            "{text}"
        );
    });
}

#[test]
fn invalid_schema_names_are_refused_before_connecting() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for bad in [
            "",
            "Sessions",
            "a-b",
            "x; DROP SCHEMA public",
            "pg_temp",
            &"a".repeat(64),
        ] {
            // A closed port: had the name passed, this would be a network error.
            let err = PostgresStore::connect("postgres://postgres@127.0.0.1:1/test", bad)
                .await
                .expect_err("refused");
            assert!(
                matches!(schema_error(&err), Some(SchemaError::InvalidName(_))),
                "{bad:?}: {err:?}"
            );
        }
    });
}

/// Migration 2 (the index of every record of a subject): a schema left at
/// version 1 is brought to 2 by the next start, and the purge's "does the
/// subject still have a record?" is an index probe, never a scan of every
/// session (which made a purge of 1M subject sessions time out).
#[test]
fn version_1_is_migrated_and_the_subject_check_uses_the_index() {
    if !reachable() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let schema = schema();
        let _guard = DropSchema(schema.clone());
        drop(PostgresStore::connect(&url(), &schema).await.unwrap());
        let s = schema.clone();
        with_client(async move |c| {
            c.batch_execute(&format!(
                "DROP INDEX {s}.sessions_of_subject; UPDATE {s}.schema_version SET version = 1"
            ))
            .await
            .unwrap();
        })
        .unwrap();
        drop(PostgresStore::connect(&url(), &schema).await.unwrap());
        let s = schema.clone();
        let (version, plan) = with_client(async move |c| {
            let v: i32 = c
                .query_one(&format!("SELECT version FROM {s}.schema_version"), &[])
                .await
                .unwrap()
                .get(0);
            c.batch_execute("SET enable_seqscan = off").await.unwrap();
            let rows = c
                .query(
                    &format!(
                        "EXPLAIN SELECT 1 FROM {s}.sessions x \
                          WHERE x.tenant = 'default' AND x.subject = 'ann'"
                    ),
                    &[],
                )
                .await
                .unwrap();
            let plan: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            (v, plan.join("\n"))
        })
        .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert!(plan.contains("sessions_of_subject"), "{plan}");
    });
}
