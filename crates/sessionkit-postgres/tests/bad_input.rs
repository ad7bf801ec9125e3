//! Bad input is refused before any SQL runs (U+0000 in attributes or
//! client info), and odd but valid input round-trips byte for byte
//! (255-byte subjects with quotes, backslashes, `%`, `_` and non-ASCII;
//! nested JSON attributes).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use serde_json::json;
use sessionkit_core::store::{Change, Limits, UpdateOutcome};
use sessionkit_core::{Attributes, SessionStore, StoreAdmin, StoreError, Subject};
use sessionkit_postgres::PostgresStore;
use sessionkit_store_tests::support::{assert_absent, assert_stored, at, attrs, put, session};

use common::{DropSchema, reachable, schema, url};

#[test]
fn bad_input_and_odd_input() {
    if !reachable() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let schema = schema();
        let _guard = DropSchema(schema.clone());
        let store = PostgresStore::connect(&url(), &schema).await.expect("connect");

        // U+0000 in client info: refused, nothing stored.
        let mut rec = session(Some("alice"), at(0));
        rec.client.user_agent = Some("agent\0x".to_owned());
        let got = store.create(rec.clone(), Limits::default(), at(0)).await;
        assert!(matches!(got, Err(StoreError::Corrupt(_))), "{got:?}");
        assert_absent(&store, &rec, "refused create").await;

        // U+0000 in attributes (raw or escaped), on create and on update.
        for text in ["{\"a\":\"x\u{0}y\"}", "{\"a\":\"x\\u0000y\"}", "[1]"] {
            let mut rec = session(Some("alice"), at(0));
            rec.attributes = Attributes::from_trusted_json(text);
            let got = store.create(rec.clone(), Limits::default(), at(0)).await;
            assert!(matches!(got, Err(StoreError::Corrupt(_))), "{text}: {got:?}");
            assert_absent(&store, &rec, "refused create").await;
        }
        let rec = session(Some("alice"), at(0));
        put(&store, &rec).await;
        let got = store
            .update(
                rec.tenant,
                rec.id,
                1,
                Change::Attributes(Attributes::from_trusted_json("{\"a\":\"\u{0}\"}")),
                at(1),
            )
            .await;
        assert!(matches!(got, Err(StoreError::Corrupt(_))), "{got:?}");
        assert_stored(&store, &rec, "after a refused update").await;

        // Nested attributes round-trip, on create and on update.
        let nested = attrs(json!({
            "profile": {"name": "Zoë \"Z\" O'Neil", "tags": ["a", "b\\c", {"deep": [1, 2.5, null, true]}]},
            "emoji": "🦀", "empty": {}, "n": -12
        }));
        let mut rec2 = session(Some("bob"), at(0));
        rec2.attributes = nested.clone();
        put(&store, &rec2).await;
        assert_stored(&store, &rec2, "nested attributes").await;
        let got = store
            .update(rec2.tenant, rec2.id, 1, Change::Attributes(attrs(json!({"a": {"b": {"c": [[]]}}}))), at(1))
            .await
            .unwrap();
        let UpdateOutcome::Updated(after) = got else { panic!("{got:?}") };
        assert_eq!(after.attributes, attrs(json!({"a": {"b": {"c": [[]]}}})));
        assert_stored(&store, &after, "updated nested attributes").await;

        // 255-byte subjects with characters SQL, LIKE and JSON care about.
        let odd = [
            format!("'; DROP TABLE sessions; --{}", "x".repeat(255 - 26)),
            format!("%_\\\"{{}}|{}", "é".repeat(123)),
            "ü".repeat(127) + "_",
            "Z".to_owned(),
            "a b".to_owned(),
        ];
        let mut want = Vec::new();
        for s in &odd {
            assert!(s.len() <= 255, "{} bytes", s.len());
            let subject = Subject::new(s).expect("a valid subject");
            let mut r = session(Some("placeholder"), at(0));
            r.subject = Some(subject.clone());
            put(&store, &r).await;
            assert_stored(&store, &r, s).await;
            let listed = store.list_subject(r.tenant, &subject, at(1), None, 10).await.unwrap();
            assert_eq!(listed, vec![r.clone()], "{s}");
            want.push(subject);
        }
        // list_subjects in byte order, odd subjects included.
        want.push(Subject::new("alice").unwrap());
        want.push(Subject::new("bob").unwrap());
        want.sort_by(|a, b| a.as_str().as_bytes().cmp(b.as_str().as_bytes()));
        let got: Vec<Subject> = store
            .list_subjects(rec.tenant, at(1), None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(got, want);
    });
}
