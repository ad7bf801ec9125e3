//! The conformance suite of `sessionkit-store-tests`, run against the real
//! Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`), each case under
//! a unique random key prefix that its guard deletes (SCAN + DEL; the
//! database is never flushed: others may share it).
//!
//! If Redis cannot be reached and `CI` is not `true`, every case prints a
//! notice and passes without running; under `CI=true` it fails.
#![allow(clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::sync::OnceLock;

use sessionkit_redis::RedisStore;
use sessionkit_store_tests::Fixture;

const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

fn url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// Whether a Redis answers at the URL (checked once per test binary).
fn reachable() -> bool {
    static UP: OnceLock<bool> = OnceLock::new();
    *UP.get_or_init(|| {
        let up = redis::Client::open(url())
            .and_then(|c| c.get_connection_with_timeout(std::time::Duration::from_secs(2)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok();
        if !up {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("CI=true but no Redis answers at {}", url());
            }
            // Written to the process's stderr, not the test's captured one.
            let _ = writeln!(
                std::io::stderr(),
                "NOTICE: no Redis at {} (set REDIS_URL); sessionkit-redis conformance skipped",
                url()
            );
        }
        up
    })
}

/// Deletes every key under its prefix when dropped.
struct Cleanup {
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Ok(mut con) = redis::Client::open(url()).and_then(|c| c.get_connection()) else {
            return;
        };
        let pattern = format!("{}:*", self.prefix);
        let keys: Vec<String> = match redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .clone()
            .iter::<String>(&mut con)
        {
            Ok(it) => it.filter_map(Result::ok).collect(),
            Err(_) => return,
        };
        if !keys.is_empty() {
            let _ = redis::cmd("DEL").arg(&keys).query::<i64>(&mut con);
        }
    }
}

fn prefix() -> String {
    format!("sk-test:{:032x}", rand::random::<u128>())
}

/// A fresh store under its own prefix, removed when the case ends.
async fn fresh() -> Fixture<RedisStore> {
    let prefix = prefix();
    let store = RedisStore::connect(&url(), &prefix)
        .await
        .expect("connect to Redis");
    Fixture::with_guard(store, Cleanup { prefix })
}

sessionkit_store_tests::conformance_tests!(fresh, run_if = reachable());

/// The same suite with the near-cache on: a cache in front of the store
/// must not change a single answer.
mod near_cached {
    use sessionkit_redis::{NearCacheConfig, RedisOptions, RedisStore};
    use sessionkit_store_tests::Fixture;

    use super::{Cleanup, prefix, reachable, url};

    async fn fresh() -> Fixture<RedisStore> {
        let prefix = prefix();
        let opts = RedisOptions {
            near_cache: Some(NearCacheConfig::default()),
            ..RedisOptions::default()
        };
        let store = RedisStore::connect_with(&url(), &prefix, opts)
            .await
            .expect("connect to Redis");
        assert!(
            store.near_cache_stats().is_some_and(|(c, _)| c.usable),
            "the near-cache channel came up"
        );
        Fixture::with_guard(store, Cleanup { prefix })
    }

    sessionkit_store_tests::conformance_tests!(fresh, run_if = reachable());
}
