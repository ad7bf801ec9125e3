//! The conformance suite of `sessionkit-store-tests` (every case and the
//! model test), run against the real PostgreSQL at `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), each case in its own random
//! schema, dropped (`DROP SCHEMA … CASCADE`) by its guard.
//!
//! If PostgreSQL cannot be reached and `CI` is not `true`, every case
//! prints a notice and passes without running; under `CI=true` it fails.
#![allow(clippy::expect_used, clippy::panic)]

mod common;

use sessionkit_postgres::PostgresStore;
use sessionkit_store_tests::Fixture;

use common::{DropSchema, reachable, schema, url};

/// A fresh store in its own schema, dropped when the case ends.
async fn fresh() -> Fixture<PostgresStore> {
    let schema = schema();
    let store = PostgresStore::connect(&url(), &schema)
        .await
        .expect("connect to PostgreSQL");
    Fixture::with_guard(store, DropSchema(schema))
}

sessionkit_store_tests::conformance_tests!(fresh, run_if = reachable());

/// The same suite with the near-cache on: a cache in front of the store
/// must not change any answer the contract fixes.
mod near_cached {
    use super::*;
    use sessionkit_postgres::{NearCacheConfig, PostgresOptions};

    async fn fresh() -> Fixture<PostgresStore> {
        let schema = schema();
        let opts = PostgresOptions {
            near_cache: Some(NearCacheConfig::default()),
            ..PostgresOptions::default()
        };
        let store = PostgresStore::connect_with(&url(), &schema, opts)
            .await
            .expect("connect to PostgreSQL");
        assert!(
            store.near_cache_stats().is_some_and(|(c, _)| c.usable),
            "the near-cache channel came up"
        );
        Fixture::with_guard(store, DropSchema(schema))
    }

    sessionkit_store_tests::conformance_tests!(fresh, run_if = reachable());
}
