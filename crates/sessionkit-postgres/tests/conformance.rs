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
