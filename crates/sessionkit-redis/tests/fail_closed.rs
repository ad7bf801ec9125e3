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
    let good: Vec<u8> = redis::cmd("HGET")
        .arg(&records)
        .arg(&id)
        .query(&mut con)
        .unwrap();
    // The stored array with element `i` (0-based) replaced.
    let with = |i: usize, v: rmpv::Value| {
        let mut arr = rmpv::decode::read_value(&mut good.as_slice()).unwrap();
        if let rmpv::Value::Array(items) = &mut arr {
            items[i] = v;
        }
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &arr).unwrap();
        out
    };
    let s = |t: &str| rmpv::Value::from(t);
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("not msgpack", b"\xc1garbage".to_vec(), true),
        ("not an array", b"\xa3abc".to_vec(), true),
        ("format", with(0, s("9")), true),
        ("version", with(6, s("x")), true),
        ("last seen", with(8, rmpv::Value::Boolean(false)), true),
        ("tenant", with(1, s("Bad Tenant")), false),
        ("attributes", with(12, s("[1]")), false),
        ("client", with(13, s("\u{7}")), false),
        ("token hash", with(2, s("zz")), false),
    ];
    for (what, bad, header) in cases {
        let _: () = redis::cmd("HSET")
            .arg(&records)
            .arg(&id)
            .arg(&bad)
            .query(&mut con)
            .unwrap();
        let got = store.get_by_id(rec.tenant, rec.id).await;
        assert!(
            matches!(got, Err(StoreError::Corrupt(_))),
            "{what}: {got:?}"
        );
        // The scripts read the header themselves: a damaged header fails
        // a write as well.
        let got = store.touch(rec.tenant, rec.id, at(1)).await;
        if header {
            assert!(
                matches!(got, Err(StoreError::Corrupt(_))),
                "{what}: {got:?}"
            );
        }
        let _: () = redis::cmd("HSET")
            .arg(&records)
            .arg(&id)
            .arg(&good)
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
