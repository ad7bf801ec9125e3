//! Access JWTs: minting and verifying per algorithm, and a hit of the
//! verified-token cache (what it saves a request).
//!
//! `cargo bench -p sessionkit --bench jwt`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sessionkit::jwt::{AccessClaims, Expectation, KeyRing, SigningAlgorithm, VerifiedCache};

const NOW: i64 = 1_700_000_000;

fn claims() -> AccessClaims {
    let mut extra = serde_json::Map::new();
    extra.insert("role".into(), serde_json::json!("member"));
    AccessClaims {
        iss: "https://sessions.example".into(),
        aud: "api".into(),
        sub: Some("user-12345".into()),
        sid: "01J9Z3Q4V6X8Y0A2B4C6D8E0F2".into(),
        jti: "4kP2mQ9xR7tW1yZ3bN5vC8".into(),
        iat: NOW,
        exp: NOW + 300,
        extra,
    }
}

fn jwt(c: &mut Criterion) {
    let expect = Expectation::new("https://sessions.example", "api", 30).unwrap();
    let claims = claims();
    let mut g = c.benchmark_group("jwt");

    for alg in [
        SigningAlgorithm::EdDSA,
        SigningAlgorithm::ES256,
        SigningAlgorithm::HS256,
    ] {
        let ring = KeyRing::generate(alg, NOW).unwrap();
        g.bench_function(format!("sign_{alg}"), |b| {
            b.iter(|| ring.sign_access(black_box(&claims)).unwrap())
        });
        let token = ring.sign_access(&claims).unwrap();
        g.bench_function(format!("verify_{alg}"), |b| {
            b.iter(|| ring.verify_access(black_box(&token), &expect, NOW).unwrap())
        });
    }

    // Baseline for the signer: jsonwebtoken::encode re-parses the PKCS#8
    // document on every call; the key ring parses it once.
    let pkcs8 =
        aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
            .unwrap();
    let enc = jsonwebtoken::EncodingKey::from_ed_der(pkcs8.as_ref());
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some("kid".into());
    g.bench_function("sign_EdDSA_jsonwebtoken_encode", |b| {
        b.iter(|| jsonwebtoken::encode(&header, black_box(&claims), &enc).unwrap())
    });

    let ring = KeyRing::generate(SigningAlgorithm::EdDSA, NOW).unwrap();
    let token = ring.sign_access(&claims).unwrap();
    let cache = VerifiedCache::with_capacity(100_000);
    cache.insert(&token, ring.verify_access(&token, &expect, NOW).unwrap());
    g.bench_function("cache_hit", |b| {
        b.iter(|| cache.get(black_box(&token), NOW).unwrap())
    });
    g.bench_function("cache_miss", |b| {
        let other = format!("{token}x");
        b.iter(|| cache.get(black_box(&other), NOW))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = jwt
}
criterion_main!(benches);
