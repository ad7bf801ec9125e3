//! Creates per second on one core: `n` typical sessions created one after
//! another into a fresh engine on `MemoryStore` (every index, rehash and
//! page fault included), then the same count of prebuilt records into a
//! fresh `MemoryStore` alone (the store's share). Inputs are built in
//! batches outside the timed part. Best of three rounds.
//!
//! `cargo bench -p sessionkit --bench create` (N with SESSIONKIT_BENCH_N;
//! SESSIONKIT_BENCH_ENGINE_ONLY=1 skips the store-alone rounds and
//! SESSIONKIT_BENCH_STORE_ONLY=1 the engine rounds, for profiling).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use sessionkit_core::store::Limits;
use sessionkit_core::{
    Attributes, Clock, DurationMs, MemoryStore, SessionId, SessionRecord, SessionState,
    SessionStore, SessionToken, Subject, SystemClock, TenantId,
};

use common::{engine, ready, typical};

/// Batch size: requests are built a batch at a time, untimed, so that
/// they are in cache when created, as a request just parsed is.
const BATCH: u64 = 1000;

/// Runs `f` over `n` inputs made by `make`, timing only `f`; returns
/// operations per second.
fn rate<T>(n: u64, mut make: impl FnMut(u64) -> T, mut f: impl FnMut(T)) -> f64 {
    let mut timed = Duration::ZERO;
    let mut i = 0;
    while i < n {
        let batch: Vec<T> = (i..n.min(i + BATCH)).map(&mut make).collect();
        i += batch.len() as u64;
        let t = Instant::now();
        for x in batch {
            f(x);
        }
        timed += t.elapsed();
    }
    n as f64 / timed.as_secs_f64()
}

fn main() {
    let n: u64 = std::env::var("SESSIONKIT_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let attrs =
        Attributes::from_value(typical(0).attributes.as_ref().unwrap(), &Default::default())
            .unwrap();
    let mut engine_best = 0f64;
    let mut store_best = 0f64;
    for round in 1..=3 {
        let e = engine();
        let r = if std::env::var_os("SESSIONKIT_BENCH_STORE_ONLY").is_some() {
            0.0
        } else {
            rate(n, typical, |req| {
                ready(e.create(TenantId::DEFAULT, req)).unwrap();
            })
        };
        drop(e);
        if std::env::var_os("SESSIONKIT_BENCH_ENGINE_ONLY").is_some() {
            println!("round {round}: engine {r:.0} creates/s");
            continue;
        }
        let now = SystemClock.now();
        let record = |i: u64| SessionRecord {
            tenant: TenantId::DEFAULT,
            id: SessionId::generate(),
            token_hash: SessionToken::generate().unwrap().hash(),
            subject: Some(Subject::new(&format!("user-{i:011}")).unwrap()),
            created_at: now,
            last_seen_at: now,
            idle_timeout: DurationMs::from_secs(1800),
            expires_at: now.saturating_add(DurationMs::from_secs(86_400)),
            auth_time: Some(now),
            attributes: attrs.clone(),
            client: Default::default(),
            version: 1,
            state: SessionState::Active,
        };
        let store = MemoryStore::new();
        let s = rate(n, record, |rec| {
            ready(store.create(rec, Limits::default(), now)).unwrap();
        });
        println!("round {round}: engine {r:.0} creates/s, store alone {s:.0} creates/s");
        engine_best = engine_best.max(r);
        store_best = store_best.max(s);
    }
    println!(
        "create, {n} sessions, one core, best of 3: engine {engine_best:.0}/s \
         ({:.2} µs each), store alone {store_best:.0}/s ({:.2} µs each)",
        1e6 / engine_best,
        1e6 / store_best
    );
}
