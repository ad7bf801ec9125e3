//! The shared Redis of the multi-node tests: its URL and clean-up.

use std::time::Duration;

/// The Redis URL of the multi-node tests: `REDIS_URL`, else the local
/// default; `None` (with a notice) when nothing answers there, which fails
/// under `CI=true`.
pub fn redis_url() -> Option<String> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let up = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        .is_ok();
    if up {
        return Some(url);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but no Redis answers at {url}"
    );
    eprintln!("NOTICE: no Redis at {url} (set REDIS_URL); multi-node test skipped");
    None
}

/// Deletes every key under `prefix:` (never the whole database).
pub fn delete_prefix(url: &str, prefix: &str) {
    let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query(&mut c)
        .unwrap();
    for k in keys {
        // One key per DEL: a Cluster node refuses keys of several slots.
        let _: () = redis::cmd("DEL").arg(k).query(&mut c).unwrap();
    }
}
