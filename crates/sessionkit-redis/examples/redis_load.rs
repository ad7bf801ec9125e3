//! Bounded load figures of the Redis store, through the engine, against
//! the Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`), under a
//! fresh key prefix deleted at the end:
//!
//! - bytes per session: `INFO memory` `used_memory` growth over `N`
//!   sessions (default 100,000; the typical session of docs/benchmarks.md:
//!   a 16-byte subject, ~100 bytes of attributes), every index counted;
//! - creates/s and validates/s with 64 concurrent tasks (validates for 5 s
//!   over 10,000 of the sessions, without and with the near-cache);
//! - Redis round trips per operation, from `INFO commandstats` (calls of
//!   every command, over the operations done).
//!
//! `cargo run --release -p sessionkit-redis --example redis_load [N]`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sessionkit::{EngineKeys, NewSession, SessionManager, ValidateRequest, Validation};
use sessionkit_core::{OnSessionLimit, Policy, Subject, TenantId};
use sessionkit_redis::{NearCacheConfig, RedisOptions, RedisStore};

const TASKS: usize = 64;

fn info(con: &mut redis::Connection, section: &str) -> String {
    redis::cmd("INFO").arg(section).query(con).unwrap()
}

fn used_memory(con: &mut redis::Connection) -> i64 {
    info(con, "memory")
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// Round trips so far: calls of the commands the store sends itself
/// (`EVALSHA`, `EVAL`, `PUBLISH`, `SCRIPT`). Commands a script runs inside
/// Redis are counted by `INFO commandstats` too but are not round trips,
/// so `GET` (run by every write script, and sent alone only once, when an
/// engine starts) is left out.
fn round_trips(con: &mut redis::Connection) -> u64 {
    info(con, "commandstats")
        .lines()
        .filter(|l| {
            ["evalsha:", "eval:", "publish:", "script|load:", "script:"]
                .iter()
                .any(|c| l.strip_prefix("cmdstat_").is_some_and(|r| r.starts_with(c)))
        })
        .filter_map(|l| {
            let rest = l.split("calls=").nth(1)?;
            rest.split(',').next()?.parse::<u64>().ok()
        })
        .sum()
}

async fn engine(url: &str, prefix: &str, near: bool) -> Arc<SessionManager<RedisStore>> {
    let opts = RedisOptions {
        near_cache: near.then(NearCacheConfig::default),
        ..RedisOptions::default()
    };
    let store = RedisStore::connect_with(url, prefix, opts).await.unwrap();
    let policy = Policy::builder()
        .max_sessions_per_subject(None, OnSessionLimit::Refuse)
        .max_anonymous_sessions(None)
        .build()
        .unwrap();
    let keys = EngineKeys::generate().unwrap();
    Arc::new(
        SessionManager::builder(store, keys)
            .with_policy(policy)
            .build()
            .await
            .unwrap(),
    )
}

fn typical(i: u64) -> NewSession {
    let attrs = format!(
        r#"{{"cart":[101,202,303],"theme":"dark","locale":"de-DE","plan":"pro","flags":{{"beta":true,"n":{i}}}}}"#
    );
    NewSession {
        subject: Some(Subject::new(&format!("user-{i:011}")).unwrap()),
        attributes: Some(serde_json::value::RawValue::from_string(attrs).unwrap()),
        ..NewSession::default()
    }
}

async fn validate_for(
    e: &Arc<SessionManager<RedisStore>>,
    tokens: &Arc<Vec<String>>,
    secs: u64,
) -> (u64, f64) {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs(secs);
    let mut hs = Vec::new();
    for t in 0..TASKS {
        let (e, tokens, done) = (e.clone(), tokens.clone(), done.clone());
        hs.push(tokio::spawn(async move {
            let mut i = t;
            let req = ValidateRequest::default();
            while Instant::now() < until {
                let tok = &tokens[i % tokens.len()];
                let v = e.validate(TenantId::DEFAULT, tok, &req).await.unwrap();
                assert!(matches!(v, Validation::Valid { .. }));
                done.fetch_add(1, Ordering::Relaxed);
                i += TASKS;
                // A cache hit never pends: let the runtime drive the I/O
                // of the other tasks' misses now and then.
                if i % (TASKS * 64) < TASKS {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for h in hs {
        h.await.unwrap();
    }
    let n = done.load(Ordering::Relaxed);
    (n, n as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(100_000, |s| s.parse().expect("N"));
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("sk-bench:{:016x}", rand::random::<u64>());
    let mut con = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let e = engine(&url, &prefix, false).await;

    let mem0 = used_memory(&mut con);
    let calls0 = round_trips(&mut con);
    let start = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut hs = Vec::new();
    for _ in 0..TASKS {
        let (e, next) = (e.clone(), next.clone());
        hs.push(tokio::spawn(async move {
            let mut toks = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break toks;
                }
                let c = e.create(TenantId::DEFAULT, typical(i)).await.unwrap();
                toks.push(c.token.expose_secret());
            }
        }));
    }
    let mut tokens = Vec::new();
    for h in hs {
        tokens.extend(h.await.unwrap());
    }
    let create_secs = start.elapsed().as_secs_f64();
    let create_calls = round_trips(&mut con) - calls0;
    let mem1 = used_memory(&mut con);
    println!("sessions: {n}");
    println!(
        "creates/s ({TASKS} tasks): {:.0}  ({:.2} round trips per create)",
        n as f64 / create_secs,
        create_calls as f64 / n as f64
    );
    println!(
        "bytes per session (used_memory growth, indexes counted): {:.0}",
        (mem1 - mem0) as f64 / n as f64
    );

    // Validation draws from the 10,000 sessions in use (each validated
    // many times: the near-cache's case), the same set for both runs.
    tokens.truncate(10_000);
    let tokens = Arc::new(tokens);
    let c0 = round_trips(&mut con);
    let (done, rate) = validate_for(&e, &tokens, 5).await;
    let c1 = round_trips(&mut con);
    println!(
        "validates/s ({TASKS} tasks, no near-cache): {rate:.0}  ({:.2} round trips per validate)",
        (c1 - c0) as f64 / done as f64
    );
    let cached = engine(&url, &prefix, true).await;
    let _ = validate_for(&cached, &tokens, 1).await; // warm
    let c0 = round_trips(&mut con);
    let (done, rate) = validate_for(&cached, &tokens, 5).await;
    let c1 = round_trips(&mut con);
    println!(
        "validates/s ({TASKS} tasks, near-cache warm): {rate:.0}  ({:.3} round trips per validate)",
        (c1 - c0) as f64 / done as f64
    );

    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query(&mut con)
        .unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut con).unwrap();
    }
}
