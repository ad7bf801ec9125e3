//! Access + refresh tokens through the engine on `MemoryStore`, against
//! the opaque-token validate measured in the same run:
//! - validate of an access JWT with the verified-token cache warm, and
//!   cold (every validate verifies an Ed25519 signature);
//! - refreshes per second on one core (a chain of rotations).
//!
//! `cargo bench -p sessionkit --bench tokens`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sessionkit::jwt::{KeyRing, SigningAlgorithm};
use sessionkit::{
    AccessConfig, EngineKeys, RefreshResult, SessionManager, ValidateRequest, Validation,
};
use sessionkit_core::{Clock, OnSessionLimit, Policy, SessionStore, SystemClock, TenantId};

use common::{ready, typical};

const T: TenantId = TenantId::DEFAULT;
/// Sessions of each kind in the store.
const N: u64 = 100_000;
/// Tokens cycled through by the validate loops.
const ROUND: usize = 1024;

fn engine(cache_capacity: usize) -> SessionManager<sessionkit::MemoryStore> {
    let policy = Policy::builder()
        .max_sessions_per_subject(None, OnSessionLimit::Refuse)
        .max_anonymous_sessions(None)
        .build()
        .unwrap();
    let now = SystemClock.now().as_millis() / 1000;
    let ring = KeyRing::generate(SigningAlgorithm::EdDSA, now).unwrap();
    let config = AccessConfig {
        cache_capacity,
        ..AccessConfig::default()
    };
    ready(
        SessionManager::builder(
            sessionkit::MemoryStore::new(),
            EngineKeys::generate().unwrap(),
        )
        .with_policy(policy)
        .with_access_tokens(ring, config)
        .build(),
    )
    .unwrap()
}

fn valid(v: Validation) {
    assert!(matches!(v, Validation::Valid { .. }), "{v:?}");
}

fn validate(c: &mut Criterion) {
    let none = ValidateRequest::default();
    for (name, capacity) in [("warm", 200_000), ("cold", 1)] {
        let e = engine(capacity);
        let mut opaque = Vec::new();
        let mut jwts = Vec::new();
        for i in 0..N {
            let s = ready(e.create(T, typical(i))).unwrap();
            let p = ready(e.create_pair(T, typical(N + i))).unwrap();
            if (i as usize) < ROUND {
                opaque.push(s.token.expose_secret());
                jwts.push(p.access_token);
            }
        }
        // Warm the cache (and check every token is valid).
        for t in opaque.iter().chain(&jwts) {
            valid(ready(e.validate(T, t, &none)).unwrap());
        }
        let mut g = c.benchmark_group(format!("validate_{name}"));
        let mut i = 0;
        g.bench_function("opaque", |b| {
            b.iter(|| {
                i = (i + 1) % ROUND;
                black_box(ready(e.validate(T, &opaque[i], &none)).unwrap())
            })
        });
        g.bench_function("access_jwt", |b| {
            b.iter(|| {
                i = (i + 1) % ROUND;
                black_box(ready(e.validate(T, &jwts[i], &none)).unwrap())
            })
        });
        if name == "warm" {
            let ids: Vec<_> = jwts
                .iter()
                .map(|t| match ready(e.validate(T, t, &none)).unwrap() {
                    Validation::Valid { session } => session.id,
                    _ => unreachable!(),
                })
                .collect();
            let hashes: Vec<_> = opaque
                .iter()
                .map(|t| sessionkit_core::SessionToken::parse(t).unwrap().hash())
                .collect();
            g.bench_function("part_get_by_id", |b| {
                b.iter(|| {
                    i = (i + 1) % ROUND;
                    black_box(ready(e.store().get_by_id(T, ids[i])).unwrap())
                })
            });
            g.bench_function("part_get_by_token", |b| {
                b.iter(|| {
                    i = (i + 1) % ROUND;
                    black_box(ready(e.store().get_by_token(T, &hashes[i])).unwrap())
                })
            });
            g.bench_function("part_sha256_jwt", |b| {
                b.iter(|| {
                    i = (i + 1) % ROUND;
                    black_box(aws_lc_rs::digest::digest(
                        &aws_lc_rs::digest::SHA256,
                        jwts[i].as_bytes(),
                    ))
                })
            });
        }
        g.finish();
    }
}

fn refresh(c: &mut Criterion) {
    let e = engine(1024);
    let mut token = ready(e.create_pair(T, typical(0))).unwrap().refresh_token;
    c.bench_function("refresh_rotation", |b| {
        b.iter(|| match ready(e.refresh(T, &token)).unwrap() {
            RefreshResult::Refreshed(p) => token = p.refresh_token,
            other => panic!("{other:?}"),
        })
    });
}

criterion_group!(benches, validate, refresh);
criterion_main!(benches);
