//! Validation cost on `MemoryStore`, against the raw cost of its parts
//! measured in the same run (the budget in docs/benchmarks.md), and the engine-side parts of a
//! create (creates per second: `benches/create.rs`).
//!
//! `cargo bench -p sessionkit --bench validate`. Set `SESSIONKIT_BENCH_10M=1`
//! to add the 10M-session point (~3 GiB and a few minutes).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use sessionkit::{ValidateRequest, Validation};
use sessionkit_core::{Clock, SessionStore, SessionToken, SystemClock, TenantId};

use common::{TOKEN_LEN, engine, fill, ready, typical};

/// A cheap PRNG so picking a key costs next to nothing.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Inputs are copied out of their big array a batch at a time, outside the
/// timed part: a token being validated is in cache (the server just read
/// it off the wire), and so are the baseline's keys. 1,024 tokens are 48 KB.
const BATCH: BatchSize = BatchSize::NumIterations(1024);

fn parts(c: &mut Criterion) {
    let mut g = c.benchmark_group("parts");
    let bytes = [7u8; 32];
    g.bench_function("sha256_32B", |b| {
        b.iter(|| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, black_box(&bytes)))
    });
    let n = 1_000_000u64;
    let map: hashbrown::HashMap<[u8; 32], u64> = (0..n)
        .map(|i| {
            (
                SessionToken::generate()
                    .unwrap()
                    .hash()
                    .as_bytes()
                    .to_owned(),
                i,
            )
        })
        .collect();
    let keys: Vec<[u8; 32]> = map.keys().copied().collect();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut key = || keys[(rng.next() % n) as usize];
    g.bench_function("map_lookup_1M", |b| {
        b.iter_batched(&mut key, |k| black_box(map.get(&k).copied()), BATCH)
    });
    let mut prev = 0u64;
    g.bench_function("map_lookup_1M_chained", |b| {
        b.iter(|| {
            let k = &keys[((rng.next() ^ prev) % n) as usize];
            let v = map.get(k).copied().unwrap_or(0);
            prev = v & 1;
            black_box(v)
        })
    });
    // One lookup's cost, as a request pays it: the key in cache (copied
    // out a batch at a time, untimed), and the next lookup waiting for this
    // one (its key is picked by this one's value), so that lookups do not
    // overlap in the CPU as the tight loop's do.
    g.bench_function("map_lookup_1M_serial", |b| {
        b.iter_custom(|iters| {
            serial(iters, &mut || keys[(rng.next() % n) as usize], |k| {
                map.get(k).copied().unwrap_or(0) as usize
            })
        })
    });
    let mut key = || keys[(rng.next() % n) as usize];
    let locked = std::sync::RwLock::new(map.clone());
    g.bench_function("map_lookup_1M_rwlock", |b| {
        b.iter_batched(
            &mut key,
            |k| black_box(locked.read().unwrap().get(&k).copied()),
            BATCH,
        )
    });
    let boxed: hashbrown::HashMap<[u8; 32], Box<[u8; 200]>> =
        map.keys().map(|k| (*k, Box::new([1u8; 200]))).collect();
    g.bench_function("map_lookup_1M_boxed_value", |b| {
        b.iter_batched(
            &mut key,
            |k| black_box(boxed.get(&k).map(|v| v[100])),
            BATCH,
        )
    });
    let boxed_locked = std::sync::RwLock::new(boxed);
    g.bench_function("map_lookup_1M_boxed_value_rwlock", |b| {
        b.iter_batched(
            &mut key,
            |k| black_box(boxed_locked.read().unwrap().get(&k).map(|v| v[100])),
            BATCH,
        )
    });
    g.bench_function("clock_read", |b| b.iter(|| black_box(SystemClock.now())));
    g.finish();
}

/// Times `iters` calls of `f`, each on an input picked by the value the
/// previous call returned (one of two neighbours in a batch of inputs
/// made by `make` beforehand, untimed): a chain of calls, each paying its
/// latency in full, with its input in cache.
fn serial<T>(
    iters: u64,
    make: &mut dyn FnMut() -> T,
    mut f: impl FnMut(&T) -> usize,
) -> std::time::Duration {
    const SERIAL_BATCH: usize = 1024;
    let mut timed = std::time::Duration::ZERO;
    let mut left = iters;
    let mut prev = 0usize;
    while left > 0 {
        let len = SERIAL_BATCH
            .min(usize::try_from(left).unwrap_or(SERIAL_BATCH))
            .max(2);
        let batch: Vec<T> = (0..len).map(|_| make()).collect();
        let start = std::time::Instant::now();
        for i in 0..len {
            let j = (i ^ (prev & 1)).min(len - 1);
            prev = f(&batch[j]);
        }
        timed += start.elapsed();
        black_box(prev);
        left = left.saturating_sub(len as u64);
    }
    timed
}

fn validate_at(c: &mut Criterion, n: u64, label: &str) {
    let e = engine();
    let tokens = fill(&e, n);
    let req = ValidateRequest::default();
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let validate = |t: [u8; TOKEN_LEN]| {
        let v = ready(e.validate(TenantId::DEFAULT, std::str::from_utf8(&t).unwrap(), &req));
        debug_assert!(matches!(v, Ok(Validation::Valid { .. })));
        drop(black_box(v));
    };
    if label != "10M" {
        let mut token = || tokens[(rng.next() % n) as usize];
        // Where the time goes: the token's parse and hash, and the store
        // lookup (which clones the record out) on its own.
        c.bench_function(&format!("breakdown_{label}/parse_and_hash"), |b| {
            b.iter_batched(
                &mut token,
                |t| {
                    black_box(
                        SessionToken::parse(std::str::from_utf8(&t).unwrap())
                            .unwrap()
                            .hash(),
                    )
                },
                BATCH,
            )
        });
        let hashes: Vec<_> = tokens
            .iter()
            .map(|t| {
                SessionToken::parse(std::str::from_utf8(t).unwrap())
                    .unwrap()
                    .hash()
            })
            .collect();
        c.bench_function(&format!("breakdown_{label}/store_get_by_token"), |b| {
            b.iter_batched(
                || hashes[(rng.next() % n) as usize],
                |h| {
                    drop(black_box(
                        ready(e.store().get_by_token(TenantId::DEFAULT, &h)).unwrap(),
                    ))
                },
                BATCH,
            )
        });
        // The same validation with the token read from the big array
        // inside the timed part: one cache miss more than a request has.
        c.bench_function(&format!("validate_token_from_array/{label}"), |b| {
            b.iter(|| validate(tokens[(rng.next() % n) as usize]))
        });
    }
    c.bench_function(&format!("validate/{label}"), |b| {
        b.iter_batched(|| tokens[(rng.next() % n) as usize], validate, BATCH)
    });
    // As `map_lookup_1M_serial`: each validation waits for the one before.
    c.bench_function(&format!("validate_serial/{label}"), |b| {
        b.iter_custom(|iters| {
            serial(
                iters,
                &mut || tokens[(rng.next() % n) as usize],
                |t| match ready(e.validate(
                    TenantId::DEFAULT,
                    std::str::from_utf8(t).unwrap(),
                    &req,
                )) {
                    Ok(Validation::Valid { session }) => session.last_seen_at.as_millis() as usize,
                    _ => 0,
                },
            )
        })
    });
}

fn validate(c: &mut Criterion) {
    validate_at(c, 10_000, "10k");
    validate_at(c, 1_000_000, "1M");
    if std::env::var_os("SESSIONKIT_BENCH_10M").is_some() {
        validate_at(c, 10_000_000, "10M");
    }
}

/// The engine-side parts of a create, one by one.
fn create_parts(c: &mut Criterion) {
    use sessionkit_core::{Attributes, SessionId};
    let mut g = c.benchmark_group("create_parts");
    let raw = typical(0).attributes.unwrap();
    let v: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
    g.bench_function("attributes_from_value", |b| {
        b.iter(|| Attributes::from_value(black_box(&v), &Default::default()).unwrap())
    });
    g.bench_function("attributes_from_json", |b| {
        b.iter(|| Attributes::from_json(black_box(raw.get()), &Default::default()).unwrap())
    });
    g.bench_function("token_generate", |b| {
        b.iter(|| SessionToken::generate().unwrap())
    });
    g.bench_function("id_generate", |b| b.iter(SessionId::generate));
    let e = engine();
    let id = SessionId::generate();
    g.bench_function("csrf_token", |b| b.iter(|| e.csrf_token(black_box(&id))));
    g.bench_function("typical_request_drop", |b| {
        b.iter_batched(|| typical(7), drop, BatchSize::SmallInput)
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    targets = parts, validate, create_parts
}
criterion_main!(benches);
