//! Fail closed: a damaged row is `Corrupt` (never a default value, never a
//! panic), for reads and for the writes that decide on it.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use sessionkit_core::{RevokeReason, SessionStore, StoreError};
use sessionkit_postgres::PostgresStore;
use sessionkit_store_tests::support::{at, put, session};

use common::{DropSchema, reachable, schema, url};

/// Runs `sql` (with `{s}` for the schema and `{id}` for the session id).
async fn damage(schema: &str, id: &str, sql: &str) {
    let sql = sql.replace("{s}", schema).replace("{id}", id);
    let ok =
        common::with_client(async move |c| c.batch_execute(&sql).await.map_err(|e| e.to_string()))
            .expect("connect");
    ok.unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn damaged_rows_are_corrupt() {
    if !reachable() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let schema = schema();
        let _guard = DropSchema(schema.clone());
        let store = PostgresStore::connect(&url(), &schema).await.expect("connect");
        let rec = session(Some("alice"), at(0));
        put(&store, &rec).await;
        let id = rec.id.to_string();
        let backup = format!("CREATE TABLE {schema}.backup AS SELECT * FROM {schema}.sessions WHERE id = '{id}'");
        damage(&schema, &id, &backup).await;
        let restore = "DELETE FROM {s}.sessions WHERE id = '{id}'; INSERT INTO {s}.sessions SELECT * FROM {s}.backup;";
        let cases: &[(&str, &str)] = &[
            ("unknown state", "UPDATE {s}.sessions SET state = 99 WHERE id = '{id}'"),
            ("version 0", "UPDATE {s}.sessions SET version = 0 WHERE id = '{id}'"),
            ("negative idle", "UPDATE {s}.sessions SET idle_timeout_ms = -1 WHERE id = '{id}'"),
            ("attributes not UTF-8", "UPDATE {s}.sessions SET attributes = '\\xff' WHERE id = '{id}'"),
            ("attributes not an object", "UPDATE {s}.sessions SET attributes = convert_to('[1]', 'UTF8') WHERE id = '{id}'"),
            ("attributes missing", "UPDATE {s}.sessions SET attributes = NULL WHERE id = '{id}'"),
            ("client format", "UPDATE {s}.sessions SET client = '\\x09' WHERE id = '{id}'"),
            ("client missing", "UPDATE {s}.sessions SET client = NULL WHERE id = '{id}'"),
            ("token hash length", "UPDATE {s}.sessions SET token_hash = '\\x01' WHERE id = '{id}'"),
            ("revoked_at on an active record", "UPDATE {s}.sessions SET revoked_at = 1 WHERE id = '{id}'"),
            ("tombstone with attributes", "UPDATE {s}.sessions SET state = 1, revoked_at = 1 WHERE id = '{id}'"),
            ("refresh half there", "UPDATE {s}.sessions SET refresh_current = '\\x01' WHERE id = '{id}'"),
            ("subject epoch missing", "UPDATE {s}.sessions SET subject_epoch = NULL WHERE id = '{id}'"),
            ("subject epoch ahead", "UPDATE {s}.sessions SET subject_epoch = 7 WHERE id = '{id}'"),
            ("stale epoch without its bump", "UPDATE {s}.subjects SET epoch = 5"),
            ("subject row missing", "DELETE FROM {s}.subjects"),
            ("subject not valid", "UPDATE {s}.sessions SET subject = E'a\\nb' WHERE id = '{id}'"),
        ];
        for (what, sql) in cases {
            damage(&schema, &id, sql).await;
            let got = store.get_by_id(rec.tenant, rec.id).await;
            assert!(matches!(got, Err(StoreError::Corrupt(_))), "{what}: get_by_id {got:?}");
            let got = store.get_by_token(rec.tenant, &rec.token_hash).await;
            // A damaged token hash no longer finds the row: no session.
            if *what != "token hash length" {
                assert!(matches!(got, Err(StoreError::Corrupt(_))), "{what}: get_by_token {got:?}");
            }
            // Restore the row and the subject.
            damage(&schema, &id, restore).await;
            damage(
                &schema,
                &id,
                "INSERT INTO {s}.subjects (tenant, subject, epoch, active) VALUES ('default', 'alice', 1, 1)
                   ON CONFLICT (tenant, subject) DO UPDATE SET epoch = 1, active = 1",
            )
            .await;
            let got = store.get_by_id(rec.tenant, rec.id).await;
            assert_eq!(got.unwrap().as_ref(), Some(&rec), "{what}: restored");
        }

        // A write that decides on a damaged subject fails closed as well.
        damage(&schema, &id, "DELETE FROM {s}.subjects").await;
        let got = store.revoke(rec.tenant, rec.id, RevokeReason::Logout, at(1)).await;
        assert!(matches!(got, Err(StoreError::Corrupt(_))), "revoke without its subject row: {got:?}");
        let got = store.touch(rec.tenant, rec.id, at(1)).await;
        assert!(matches!(got, Ok(false)), "touch without its subject row: {got:?}");
    });
}
