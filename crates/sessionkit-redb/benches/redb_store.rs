//! Figures of the embedded store, each against a baseline measured in the
//! same run (these VMs are noisy; ratios are what to compare):
//!
//! 1. Durable creates/s with 64 concurrent writers, fsync on — against raw
//!    redb in the same directory, one fsync per write and 64 writes per
//!    fsync.
//! 2. The validate-path lookup (`get_by_token`) against `MemoryStore`, on
//!    the same sessions, interleaved rounds.
//! 3. Reopen with N live sessions (default 1M), after a clean close and
//!    after a crash (a copy of the file taken while open); bytes on disk
//!    per session.
//!
//! `cargo bench -p sessionkit-redb` (N with `SESSIONKIT_BENCH_N`, the
//! create run's length with `SESSIONKIT_BENCH_SECS`). Sessions have the
//! shape of the memory budget (docs/benchmarks.md): a 16-byte subject and about 100 bytes of
//! attributes.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sessionkit_core::store::Limits;
use sessionkit_core::{
    AttributeLimits, Attributes, ClientInfo, DurationMs, Millis, SessionId, SessionRecord,
    SessionState, SessionStore, SessionToken, Subject, TenantId, TokenHash,
};
use sessionkit_memory::MemoryStore;
use sessionkit_redb::{RedbOptions, RedbStore};

const T0: Millis = Millis::from_millis(1_767_323_045_000);

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn typical(i: u64) -> SessionRecord {
    let attributes = Attributes::from_value(
        &json!({
            "cart": [101, 202, 303],
            "theme": "dark",
            "locale": "de-DE",
            "plan": "pro",
            "flags": {"beta": true, "n": (i % 1000)}
        }),
        &AttributeLimits::default(),
    )
    .unwrap();
    SessionRecord {
        tenant: TenantId::DEFAULT,
        id: SessionId::generate(),
        token_hash: SessionToken::generate().unwrap().hash(),
        subject: Some(Subject::new(&format!("user-{i:011}")).unwrap()),
        created_at: T0,
        last_seen_at: T0,
        idle_timeout: DurationMs::from_secs(86_400),
        expires_at: T0.saturating_add(DurationMs::from_secs(30 * 86_400)),
        auth_time: Some(T0),
        attributes,
        client: ClientInfo::default(),
        version: 1,
        state: SessionState::Active,
        refresh: None,
        assurance: None,
        grants: None,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Creates through the store from `writers` concurrent tasks, for `dur` or
/// until `limit` creates are done. Returns (creates, elapsed).
fn create_load(
    rt: &tokio::runtime::Runtime,
    store: &RedbStore,
    writers: u64,
    dur: Duration,
    limit: u64,
) -> (u64, Duration) {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..writers {
            let store = store.clone();
            let done = done.clone();
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let n = done.fetch_add(1, Ordering::Relaxed);
                    if n >= limit {
                        done.fetch_sub(1, Ordering::Relaxed);
                        break;
                    }
                    store
                        .create(typical(i), Limits::default(), T0)
                        .await
                        .unwrap();
                    i += writers;
                }
            }));
        }
        let stopper = {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::time::sleep(dur).await;
                stop.store(true, Ordering::Relaxed);
            })
        };
        for t in tasks {
            t.await.unwrap();
        }
        stopper.abort();
    });
    (done.load(Ordering::Relaxed), started.elapsed())
}

/// Raw redb: `per_txn` inserts of ~250 bytes per durable commit.
fn raw_redb(dir: &std::path::Path, per_txn: usize, dur: Duration) -> f64 {
    let table: redb::TableDefinition<u128, &[u8]> = redb::TableDefinition::new("t");
    let db = redb::Database::create(dir.join(format!("raw-{per_txn}.redb"))).unwrap();
    let value = vec![0x5au8; 250];
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < dur {
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(table).unwrap();
            for _ in 0..per_txn {
                t.insert(SessionId::generate().as_u128(), value.as_slice())
                    .unwrap();
                n += 1;
            }
        }
        txn.commit().unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn bench_creates(rt: &tokio::runtime::Runtime) {
    let secs = env("SESSIONKIT_BENCH_SECS", 5);
    let dir = tempfile::tempdir().unwrap();
    let raw_one = raw_redb(dir.path(), 1, Duration::from_secs(2));
    let raw_64 = raw_redb(dir.path(), 64, Duration::from_secs(secs));
    let mut opts = RedbOptions::default();
    if let Ok(us) = std::env::var("SESSIONKIT_BENCH_GATHER_US") {
        opts = opts.with_gather_window(Duration::from_micros(us.parse().unwrap()));
    }
    let store = RedbStore::open_with(&dir.path().join("store"), opts).unwrap();
    let (n, took) = create_load(rt, &store, 64, Duration::from_secs(secs), u64::MAX);
    let rate = n as f64 / took.as_secs_f64();
    let stats = store.stats();
    store.flush_and_close().unwrap();
    println!(
        "creates, durable (fsync), 64 concurrent writers: {rate:.0}/s ({n} in {took:.1?}; {} commits, mean batch {:.1})",
        stats.commits,
        stats.ops as f64 / stats.commits.max(1) as f64
    );
    println!(
        "  baseline raw redb, same disk: one fsync per write {raw_one:.0}/s; 64 writes per fsync {raw_64:.0}/s"
    );
    println!(
        "  ratio: RedbStore / raw redb batched = {:.2}; / raw redb unbatched = {:.1}x",
        rate / raw_64,
        rate / raw_one
    );
}

fn lookups<S: SessionStore>(
    rt: &tokio::runtime::Runtime,
    store: &S,
    hashes: &[TokenHash],
    order: &[usize],
) -> Duration {
    rt.block_on(async {
        let started = Instant::now();
        let mut found = 0usize;
        for &i in order {
            if store
                .get_by_token(TenantId::DEFAULT, &hashes[i])
                .await
                .unwrap()
                .is_some()
            {
                found += 1;
            }
        }
        let took = started.elapsed();
        assert_eq!(found, order.len());
        took
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench_lookups_and_reopen(rt: &tokio::runtime::Runtime) {
    let n = env("SESSIONKIT_BENCH_N", 1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = RedbStore::open(&path).unwrap();
    // Fill through the store itself, from many writers so batches are big.
    let fill_started = Instant::now();
    let (made, _) = create_load(rt, &store, 1024, Duration::from_secs(3600), n);
    assert_eq!(made, n);
    println!(
        "filled {n} sessions through the writer (1024 writers) in {:.1?}",
        fill_started.elapsed()
    );

    // The same records in a MemoryStore, for the lookup baseline.
    let mem = MemoryStore::new();
    let mut hashes = Vec::with_capacity(usize::try_from(n).unwrap());
    rt.block_on(async {
        let all: Vec<SessionRecord> = {
            // Every record, read back through the public API by subject.
            let mut v = Vec::new();
            for i in 0..n {
                let s = Subject::new(&format!("user-{i:011}")).unwrap();
                v.extend(
                    store
                        .list_subject(TenantId::DEFAULT, &s, T0, None, 10)
                        .await
                        .unwrap(),
                );
            }
            v
        };
        for r in all {
            hashes.push(r.token_hash);
            mem.create(r, Limits::default(), T0).await.unwrap();
        }
    });
    let mut order: Vec<usize> = (0..hashes.len()).collect();
    // A fixed shuffle (xorshift), so both stores see the same keys.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    order.truncate(1_000_000.min(order.len()));
    let mut mem_ns = Vec::new();
    let mut redb_ns = Vec::new();
    for _ in 0..7 {
        let m = lookups(rt, &mem, &hashes, &order);
        let r = lookups(rt, &store, &hashes, &order);
        mem_ns.push(m.as_nanos() as f64 / order.len() as f64);
        redb_ns.push(r.as_nanos() as f64 / order.len() as f64);
    }
    let (m, r) = (median(mem_ns), median(redb_ns));
    println!(
        "get_by_token (validate path), {n} sessions, uniform keys: RedbStore {r:.0} ns, MemoryStore {m:.0} ns; ratio {:.2}",
        r / m
    );
    drop(mem);

    // Bytes on disk, and a crash image: a copy taken while the store is open
    // (everything flushed, nothing closed), which redb must repair on open.
    rt.block_on(store.flush()).unwrap();
    let crashed = tempfile::tempdir().unwrap();
    std::fs::copy(
        path.join("sessions.redb"),
        crashed.path().join("sessions.redb"),
    )
    .unwrap();
    store.flush_and_close().unwrap();
    drop(store);
    let bytes = std::fs::metadata(path.join("sessions.redb")).unwrap().len();
    println!(
        "on disk: {:.1} MiB for {n} sessions = {:.0} bytes per session (encoded record ~{} bytes)",
        bytes as f64 / f64::from(1 << 20),
        bytes as f64 / n as f64,
        encoded_size()
    );

    for (what, dir, verify) in [
        (
            "clean close, pages verified (default)",
            path.as_path(),
            true,
        ),
        ("clean close, no verification", path.as_path(), false),
        (
            "after a crash (repair), pages verified (default)",
            crashed.path(),
            true,
        ),
    ] {
        let started = Instant::now();
        let s =
            RedbStore::open_with(dir, RedbOptions::default().with_verify_on_open(verify)).unwrap();
        let took = started.elapsed();
        assert_eq!(s.len() as u64, n);
        println!("reopen with {n} sessions, {what}: {took:.2?}");
        s.flush_and_close().unwrap();
    }
}

fn encoded_size() -> usize {
    // The record format is private; a stored copy is measured instead.
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let store = RedbStore::open(dir.path()).unwrap();
    for i in 0..1000 {
        rt.block_on(store.create(typical(i), Limits::default(), T0))
            .unwrap();
    }
    store.flush_and_close().unwrap();
    let db = redb::Database::open(dir.path().join("sessions.redb")).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let table: redb::TableDefinition<u128, &[u8]> = redb::TableDefinition::new("sessions");
    let t = txn.open_table(table).unwrap();
    let mut total = 0;
    let mut count = 0;
    for e in redb::ReadableTable::iter(&t).unwrap() {
        total += e.unwrap().1.value().len();
        count += 1;
    }
    total / count
}

/// Refreshes through the store from `writers` concurrent tasks, each
/// rotating its own pair session's chain, for `dur`: (refreshes, elapsed).
fn refresh_load(
    rt: &tokio::runtime::Runtime,
    store: &RedbStore,
    writers: u64,
    dur: Duration,
) -> (u64, Duration) {
    use sessionkit_core::refresh::{RefreshState, RefreshToken};
    use sessionkit_core::store::{RefreshOutcome, RefreshRequest};
    let key = sessionkit_core::SecretKey::from_bytes([3; 32]);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (store, done, stop, key) = (store.clone(), done.clone(), stop.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                let mut rec = typical(w);
                let mut token = RefreshToken::root(rec.id).unwrap();
                rec.refresh = Some(Box::new(RefreshState::new(&token, T0)));
                store
                    .create(rec.clone(), Limits::default(), T0)
                    .await
                    .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let next = token.successor(&key);
                    let req = RefreshRequest {
                        tenant: rec.tenant,
                        id: rec.id,
                        presented: token.hash(),
                        presented_generation: token.generation(),
                        successor: next.hash(),
                        now: T0,
                        grace_until: T0.saturating_add(DurationMs::from_secs(30)),
                    };
                    match store.refresh(req).await.unwrap() {
                        RefreshOutcome::Rotated(_) => {}
                        other => panic!("{other:?}"),
                    }
                    token = next;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        tokio::time::sleep(dur).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
    });
    (done.load(Ordering::Relaxed), started.elapsed())
}

fn bench_refreshes(rt: &tokio::runtime::Runtime) {
    let secs = env("SESSIONKIT_BENCH_SECS", 5);
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("refresh")).unwrap();
    let (c, ctook) = create_load(rt, &store, 64, Duration::from_secs(secs), u64::MAX);
    let creates = c as f64 / ctook.as_secs_f64();
    let (n, took) = refresh_load(rt, &store, 64, Duration::from_secs(secs));
    let rate = n as f64 / took.as_secs_f64();
    store.flush_and_close().unwrap();
    println!(
        "refreshes, durable (fsync), 64 concurrent chains: {rate:.0}/s ({n} in {took:.1?}); durable creates in the same run {creates:.0}/s; ratio {:.2}",
        rate / creates
    );
}

fn main() {
    let rt = runtime();
    let which = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    if which.is_empty() || "creates".contains(&which) {
        bench_creates(&rt);
    }
    if which.is_empty() || "refreshes".contains(&which) {
        bench_refreshes(&rt);
    }
    if which.is_empty() || "lookups reopen".contains(&which) {
        bench_lookups_and_reopen(&rt);
    }
}
