//! Fail closed: damaged data is `Corrupt`, an unreachable server is
//! `Unavailable` (never a default, never a panic).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use sessionkit_core::{SessionStore, StoreError};
use sessionkit_redis::{RedisOptions, RedisStore};
use sessionkit_store_tests::support::{at, put, session};

fn url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn redis_con() -> Option<redis::Connection> {
    let con = redis::Client::open(url())
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
        .ok();
    if con.is_none() && std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but no Redis at {}", url());
    }
    con
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test]
async fn damaged_record_is_corrupt() {
    let Some(mut con) = redis_con() else { return };
    let prefix = format!("sk-test:{:032x}", rand::random::<u128>());
    let store = RedisStore::connect(&url(), &prefix).await.expect("connect");
    let rec = session(Some("alice"), at(0));
    put(&store, &rec).await;
    let id = hex(rec.id.as_bytes());
    let records = format!("{prefix}:r");
    for (field, bad) in [("ver", "x"), ("v", "9"), ("a", "[1]"), ("c", "\u{7}")] {
        let good: Vec<u8> = redis::cmd("HGET")
            .arg(&records)
            .arg(format!("{id}:{field}"))
            .query(&mut con)
            .unwrap();
        let _: () = redis::cmd("HSET")
            .arg(&records)
            .arg(format!("{id}:{field}"))
            .arg(bad)
            .query(&mut con)
            .unwrap();
        let got = store.get_by_id(rec.tenant, rec.id).await;
        assert!(
            matches!(got, Err(StoreError::Corrupt(_))),
            "{field}: {got:?}"
        );
        let got = store.touch(rec.tenant, rec.id, at(1)).await;
        if field != "a" && field != "c" {
            assert!(
                matches!(got, Err(StoreError::Corrupt(_))),
                "{field}: {got:?}"
            );
        }
        let _: () = redis::cmd("HSET")
            .arg(&records)
            .arg(format!("{id}:{field}"))
            .arg(good)
            .query(&mut con)
            .unwrap();
    }
    assert!(store.get_by_id(rec.tenant, rec.id).await.unwrap().is_some());
    let keys: Vec<String> = redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("MATCH")
        .arg(format!("{prefix}:*"))
        .clone()
        .iter::<String>(&mut con)
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut con).unwrap();
}

#[tokio::test]
async fn unreachable_is_unavailable() {
    let got = RedisStore::connect_with(
        "redis://127.0.0.1:1",
        "sk-test:none",
        RedisOptions {
            timeout: Duration::from_millis(500),
            ..RedisOptions::default()
        },
    )
    .await;
    assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");
}
