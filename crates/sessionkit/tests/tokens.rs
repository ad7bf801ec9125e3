//! Access + refresh pairs through `SessionManager`: rotation and reuse
//! detection under races, access-JWT validation (no store I/O for a token
//! that fails its checks), key rotation, lifetimes.
#![cfg(feature = "jwt")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sessionkit::jwt::{KeyRing, SigningAlgorithm};
use sessionkit::{
    AccessConfig, EngineKeys, EventKind, IssuedPair, NewSession, RefreshResult, SessionManager,
    TokenRevocation, ValidateRequest, Validation,
};
use sessionkit_core::{ExpiryCause, ManualClock, Millis, Policy, RevokeReason, Subject, TenantId};
use sessionkit_store_tests::OutageStore;

const T: TenantId = TenantId::DEFAULT;
const START: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

type Engine = SessionManager<OutageStore>;

async fn engine_with(alg: SigningAlgorithm) -> (Arc<Engine>, ManualClock, OutageStore) {
    let clock = ManualClock::new(Millis::from_millis(START));
    let store = OutageStore::default();
    let ring = KeyRing::generate(alg, START / 1000).unwrap();
    let policy = Policy::builder()
        .idle_timeout_secs(1800)
        .absolute_timeout_secs(7200)
        .build()
        .unwrap();
    let e = SessionManager::builder(store.clone(), EngineKeys::generate().unwrap())
        .with_policy(policy)
        .with_clock(clock.clone())
        .with_access_tokens(ring, AccessConfig::default())
        .build()
        .await
        .unwrap();
    (Arc::new(e), clock, store)
}

/// An EdDSA engine with `policy` and `config` on `clock`.
async fn built(clock: &ManualClock, policy: Policy, config: AccessConfig) -> Engine {
    SessionManager::builder(OutageStore::default(), EngineKeys::generate().unwrap())
        .with_policy(policy)
        .with_clock(clock.clone())
        .with_access_tokens(
            KeyRing::generate(SigningAlgorithm::EdDSA, START / 1000).unwrap(),
            config,
        )
        .build()
        .await
        .unwrap()
}

async fn engine() -> (Arc<Engine>, ManualClock, OutageStore) {
    engine_with(SigningAlgorithm::EdDSA).await
}

async fn pair(e: &Engine) -> IssuedPair {
    e.create_pair(T, NewSession::for_subject(Subject::new("alice").unwrap()))
        .await
        .unwrap()
}

async fn validate(e: &Engine, token: &str) -> Validation {
    e.validate(T, token, &ValidateRequest::default())
        .await
        .unwrap()
}

fn refreshed(r: RefreshResult) -> IssuedPair {
    match r {
        RefreshResult::Refreshed(p) => p,
        other => panic!("expected a new pair, got {other:?}"),
    }
}

#[tokio::test]
async fn a_pair_validates_and_refreshes() {
    let (e, clock, _) = engine().await;
    let p = pair(&e).await;
    assert!(p.refresh_token.starts_with("rft_"));
    assert_eq!(p.access_token.split('.').count(), 3);
    match validate(&e, &p.access_token).await {
        Validation::Valid { session } => assert_eq!(session.id, p.session.id),
        other => panic!("{other:?}"),
    }
    clock.advance_millis(60_000);
    let next = refreshed(e.refresh(T, &p.refresh_token).await.unwrap());
    assert_ne!(next.refresh_token, p.refresh_token);
    assert_ne!(next.access_token, p.access_token);
    assert_eq!(
        next.session.expires_at, p.session.expires_at,
        "never the absolute deadline"
    );
    assert!(matches!(
        validate(&e, &next.access_token).await,
        Validation::Valid { .. }
    ));
    // The old access token stays valid until its exp (it is a JWT).
    assert!(matches!(
        validate(&e, &p.access_token).await,
        Validation::Valid { .. }
    ));
    // Another tenant sees none of it.
    let other = TenantId::new("acme").unwrap();
    let none = ValidateRequest::default();
    let v = e.validate(other, &next.access_token, &none).await;
    assert_eq!(v.unwrap(), Validation::Invalid);
    assert!(matches!(
        e.refresh(other, &next.refresh_token).await.unwrap(),
        RefreshResult::Invalid
    ));
}

/// 64 concurrent refreshes with one token: one lineage, everyone gets the
/// same pair, nobody is logged out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_get_the_same_pair() {
    let (e, _, _) = engine().await;
    for _round in 0..5 {
        let p = pair(&e).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(64));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (e, b, t) = (
                    Arc::clone(&e),
                    Arc::clone(&barrier),
                    p.refresh_token.clone(),
                );
                tokio::spawn(async move {
                    b.wait().await;
                    refreshed(e.refresh(T, &t).await.unwrap())
                })
            })
            .collect();
        let mut pairs = Vec::new();
        for t in tasks {
            pairs.push(t.await.unwrap());
        }
        let first = &pairs[0];
        for q in &pairs {
            assert_eq!(q.refresh_token, first.refresh_token, "one successor");
            assert_eq!(q.access_token, first.access_token, "the same access token");
        }
        assert!(matches!(
            validate(&e, &first.access_token).await,
            Validation::Valid { .. }
        ));
        // The lineage goes on from that one successor.
        refreshed(e.refresh(T, &first.refresh_token).await.unwrap());
    }
}

/// Reuse after the grace: the session is revoked, every token of it dies,
/// and the event is emitted once.
#[tokio::test]
async fn reuse_after_the_grace_revokes_the_session() {
    let (e, clock, _) = engine().await;
    let mut events = e.subscribe();
    let p = pair(&e).await;
    let next = refreshed(e.refresh(T, &p.refresh_token).await.unwrap());
    // Inside the grace: the same pair again.
    clock.advance_millis(29_000);
    let again = refreshed(e.refresh(T, &p.refresh_token).await.unwrap());
    assert_eq!(again.refresh_token, next.refresh_token);
    assert_eq!(again.access_token, next.access_token);
    // After it: reuse.
    clock.advance_millis(1_000);
    assert!(matches!(
        e.refresh(T, &p.refresh_token).await.unwrap(),
        RefreshResult::Reused
    ));
    assert!(matches!(
        e.refresh(T, &next.refresh_token).await.unwrap(),
        RefreshResult::Invalid
    ));
    assert_eq!(validate(&e, &next.access_token).await, Validation::Invalid);
    assert_eq!(validate(&e, &p.access_token).await, Validation::Invalid);
    // A second reuse finds a revoked session: no second event.
    assert!(matches!(
        e.refresh(T, &p.refresh_token).await.unwrap(),
        RefreshResult::Invalid
    ));
    let mut reuse = 0;
    let mut revoked = 0;
    while let Ok(ev) = events.try_recv() {
        match ev.kind {
            EventKind::ReuseDetected => reuse += 1,
            EventKind::Revoked {
                reason: RevokeReason::ReuseDetected,
            } => revoked += 1,
            _ => {}
        }
    }
    assert_eq!((reuse, revoked), (1, 1));
}

/// A grandparent presented inside the grace window is a reuse too.
#[tokio::test]
async fn a_grandparent_is_a_reuse() {
    let (e, _, _) = engine().await;
    let p = pair(&e).await;
    let child = refreshed(e.refresh(T, &p.refresh_token).await.unwrap());
    refreshed(e.refresh(T, &child.refresh_token).await.unwrap());
    assert!(matches!(
        e.refresh(T, &p.refresh_token).await.unwrap(),
        RefreshResult::Reused
    ));
}

/// A refresh racing a revoke: the session stays revoked, and nothing the
/// race minted validates or refreshes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_racing_revoke_stays_revoked() {
    let (e, _, _) = engine().await;
    for _ in 0..20 {
        let p = pair(&e).await;
        let (e1, e2) = (Arc::clone(&e), Arc::clone(&e));
        let t = p.refresh_token.clone();
        let a = tokio::spawn(async move { e1.refresh(T, &t).await.unwrap() });
        let access = p.access_token.clone();
        let b = tokio::spawn(async move { e2.revoke_token(T, &access).await.unwrap() });
        let minted = a.await.unwrap();
        assert_eq!(b.await.unwrap(), TokenRevocation::Done);
        if let RefreshResult::Refreshed(q) = minted {
            assert_eq!(validate(&e, &q.access_token).await, Validation::Invalid);
            assert!(!matches!(
                e.refresh(T, &q.refresh_token).await.unwrap(),
                RefreshResult::Refreshed(_)
            ));
        }
        assert_eq!(validate(&e, &p.access_token).await, Validation::Invalid);
    }
}

fn forge(token: &str, header: serde_json::Value, payload: Option<serde_json::Value>) -> String {
    let mut parts = token.split('.');
    let (_, body, sig) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let body = payload.map_or(body.to_owned(), |p| B64.encode(p.to_string()));
    format!("{}.{}.{}", B64.encode(header.to_string()), body, sig)
}

fn claims_of(token: &str) -> serde_json::Value {
    let body = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(body).unwrap()).unwrap()
}

fn header_of(token: &str) -> serde_json::Value {
    let h = token.split('.').next().unwrap();
    serde_json::from_slice(&B64.decode(h).unwrap()).unwrap()
}

/// Forged, tampered, `alg: none`, switched algorithms, wrong claims,
/// injected headers and huge tokens are all `invalid_token` — with the
/// store down, so any store read would have been an error instead.
#[tokio::test]
async fn bad_access_tokens_are_refused_without_store_io() {
    let (e, _, store) = engine().await;
    let p = pair(&e).await;
    let good = p.access_token.clone();
    let h = header_of(&good);
    let c = claims_of(&good);
    let kid = h["kid"].as_str().unwrap().to_owned();
    let mut bad = vec![
        String::new(),
        "a.b.c".into(),
        format!("{good}x"),
        good.replacen('.', "..", 1),
        forge(
            &good,
            serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": kid}),
            None,
        ),
        forge(
            &good,
            serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
            None,
        ),
        forge(
            &good,
            serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}),
            None,
        ),
        forge(
            &good,
            serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "nope"}),
            None,
        ),
        forge(
            &good,
            serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "../../etc/passwd"}),
            None,
        ),
        forge(
            &good,
            serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "jku": "http://x"}),
            None,
        ),
        forge(
            &good,
            serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "jwk": {}}),
            None,
        ),
        forge(
            &good,
            serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "x5u": "x"}),
            None,
        ),
        forge(
            &good,
            serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "x5c": []}),
            None,
        ),
        format!("{}.{}", good, "x".repeat(100_000)),
    ];
    for (field, v) in [
        ("aud", serde_json::json!("someone-else")),
        ("iss", serde_json::json!("someone-else")),
        ("exp", serde_json::json!(c["exp"].to_string())),
        (
            "sid",
            serde_json::json!("0190a4a2-0000-7000-8000-000000000000"),
        ),
    ] {
        let mut m = c.clone();
        m[field] = v;
        bad.push(forge(&good, h.clone(), Some(m)));
    }
    // HS256 with the Ed25519 public key (from the JWKS) as the secret.
    let jwks = e.jwks().unwrap();
    let x = jwks["keys"][0]["x"].as_str().unwrap();
    let public = B64.decode(x).unwrap();
    let hs_key = jsonwebtoken::EncodingKey::from_secret(&public).unwrap();
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            alg: jsonwebtoken::Algorithm::HS256,
            typ: Some("at+jwt".into()),
            kid: Some(kid.clone()),
            ..Default::default()
        },
        &c,
        &hs_key,
    )
    .unwrap();
    bad.push(hs);
    store.set_down(true);
    for t in &bad {
        let v = e.validate(T, t, &ValidateRequest::default()).await;
        assert_eq!(
            v.unwrap(),
            Validation::Invalid,
            "accepted or read the store for {t:.80}"
        );
    }
    // Forged refresh tokens: refused before the store too.
    let mut rt = p.refresh_token.clone().into_bytes();
    let i = rt.len() - 3;
    rt[i] = if rt[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(rt).unwrap();
    assert!(matches!(
        e.refresh(T, &forged).await.unwrap(),
        RefreshResult::Invalid
    ));
    // The genuine token needs the store: with it down, that is an error.
    assert!(
        e.validate(T, &good, &ValidateRequest::default())
            .await
            .is_err()
    );
    store.set_down(false);
    assert!(matches!(
        validate(&e, &good).await,
        Validation::Valid { .. }
    ));
}

#[tokio::test]
async fn an_expired_access_token_is_token_expired_and_refresh_never_passes_the_deadline() {
    let (e, clock, _) = engine().await;
    let p = pair(&e).await;
    clock.advance_millis((600 + 31) * 1000);
    assert_eq!(
        validate(&e, &p.access_token).await,
        Validation::TokenExpired
    );
    let q = refreshed(e.refresh(T, &p.refresh_token).await.unwrap());
    assert!(matches!(
        validate(&e, &q.access_token).await,
        Validation::Valid { .. }
    ));
    // Keep the session active until its absolute deadline (7200 s).
    let mut last = q;
    for _ in 0..20 {
        clock.advance_millis(600_000);
        match e.refresh(T, &last.refresh_token).await.unwrap() {
            RefreshResult::Refreshed(n) => {
                assert!(n.access_expires_at <= n.session.expires_at);
                last = n;
            }
            RefreshResult::Expired(ExpiryCause::Absolute) => return,
            other => panic!("{other:?}"),
        }
    }
    panic!("a refresh extended the absolute deadline");
}

/// Rotation while tokens are in flight: old tokens keep verifying, new ones
/// carry the new kid, a token of a dropped key does not verify.
#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid_until_the_grace_ends() {
    for alg in [SigningAlgorithm::EdDSA, SigningAlgorithm::ES256] {
        let (e, clock, _) = engine_with(alg).await;
        let p = pair(&e).await;
        let old_kid = header_of(&p.access_token)["kid"].clone();
        let ring = e.key_ring().unwrap();
        let now = sessionkit_core::Clock::now(&clock).as_millis() / 1000;
        e.set_key_ring(ring.rotate(alg, now, 700).unwrap()).unwrap();
        assert!(matches!(
            validate(&e, &p.access_token).await,
            Validation::Valid { .. }
        ));
        let q = refreshed(e.refresh(T, &p.refresh_token).await.unwrap());
        assert_ne!(header_of(&q.access_token)["kid"], old_kid, "{alg:?}");
        assert!(matches!(
            validate(&e, &q.access_token).await,
            Validation::Valid { .. }
        ));
        assert_eq!(e.jwks().unwrap()["keys"].as_array().unwrap().len(), 2);
        // A ring without the old key: its tokens stop verifying.
        let pruned = e.key_ring().unwrap().prune(now + 701);
        e.set_key_ring(pruned).unwrap();
        assert_eq!(validate(&e, &p.access_token).await, Validation::Invalid);
        assert!(matches!(
            validate(&e, &q.access_token).await,
            Validation::Valid { .. }
        ));
    }
}

#[tokio::test]
async fn any_token_of_a_pair_session_logs_it_out_and_upgrades_it() {
    let (e, _, _) = engine().await;
    let anon = e.create_pair(T, NewSession::anonymous()).await.unwrap();
    let up = e
        .upgrade_pair(
            T,
            &anon.refresh_token,
            Subject::new("bob").unwrap(),
            &[],
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(up.session.subject.as_ref().unwrap().as_str(), "bob");
    assert_eq!(validate(&e, &anon.access_token).await, Validation::Invalid);
    assert!(matches!(
        validate(&e, &up.access_token).await,
        Validation::Valid { .. }
    ));
    assert_eq!(
        e.revoke_token(T, &up.refresh_token).await.unwrap(),
        TokenRevocation::Done
    );
    assert_eq!(validate(&e, &up.access_token).await, Validation::Invalid);
}

/// Custom claims come from the attributes the config names (never over a
/// registered claim); `aud` is per tenant, and a token of one tenant's
/// audience does not validate for another.
#[tokio::test]
async fn claims_from_attributes_and_audience_per_tenant() {
    let clock = ManualClock::new(Millis::from_millis(START));
    let acme = TenantId::new("acme").unwrap();
    let mut config = AccessConfig {
        claims: vec!["role".into(), "sub".into(), "missing".into()],
        ..AccessConfig::default()
    };
    config.tenant_audiences.insert(acme, "api.acme.test".into());
    let e = built(&clock, Policy::default(), config).await;
    let req = NewSession {
        attributes: Some(
            serde_json::value::to_raw_value(
                &serde_json::json!({"role": "admin", "sub": "mallory", "cart": 3}),
            )
            .unwrap(),
        ),
        ..NewSession::for_subject(Subject::new("erin").unwrap())
    };
    let p = e.create_pair(acme, req).await.unwrap();
    let c = claims_of(&p.access_token);
    assert_eq!(c["role"], "admin");
    assert_eq!(c["sub"], "erin", "a registered claim is never overridden");
    assert!(c.get("cart").is_none() && c.get("missing").is_none());
    assert_eq!(c["aud"], "api.acme.test");
    assert_eq!(c["iss"], "sessiond");
    assert_eq!(c["sid"], p.session.id.to_string());
    assert_eq!(header_of(&p.access_token)["typ"], "at+jwt");
    let none = ValidateRequest::default();
    assert!(matches!(
        e.validate(acme, &p.access_token, &none).await.unwrap(),
        Validation::Valid { .. }
    ));
    assert_eq!(
        e.validate(T, &p.access_token, &none).await.unwrap(),
        Validation::Invalid
    );
    let d = e.create_pair(T, NewSession::anonymous()).await.unwrap();
    assert_eq!(claims_of(&d.access_token)["aud"], "sessiond");
    assert!(claims_of(&d.access_token).get("sub").is_none());
    assert_eq!(
        e.validate(acme, &d.access_token, &none).await.unwrap(),
        Validation::Invalid
    );
}

/// A refresh token logs in (upgrade) only while it could refresh: the
/// current one, or its parent inside the grace window; an older genuine
/// one is a reuse and revokes the session, as on refresh.
#[tokio::test]
async fn upgrade_with_an_old_refresh_token_is_a_reuse() {
    let (e, clock, _) = engine().await;
    let anon = e.create_pair(T, NewSession::anonymous()).await.unwrap();
    let next = refreshed(e.refresh(T, &anon.refresh_token).await.unwrap());
    // The parent, inside the grace: accepted.
    let bob = Subject::new("bob").unwrap();
    let up = e
        .upgrade_pair(T, &anon.refresh_token, bob.clone(), &[], None)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        validate(&e, &up.access_token).await,
        Validation::Valid { .. }
    ));
    // A new pair session; its parent after the grace: a reuse.
    let p = pair(&e).await;
    let q = refreshed(e.refresh(T, &p.refresh_token).await.unwrap());
    clock.advance_millis(31_000);
    let r = e
        .upgrade_pair(T, &p.refresh_token, bob, &[], None)
        .await
        .unwrap();
    assert!(
        matches!(r, Err(sessionkit::UpgradeResult::Invalid)),
        "{r:?}"
    );
    assert_eq!(validate(&e, &q.access_token).await, Validation::Invalid);
    assert!(matches!(
        e.refresh(T, &q.refresh_token).await.unwrap(),
        RefreshResult::Invalid
    ));
    drop(next);
}

/// Custom claims too large for an access token never fail a write that is
/// already done: the token is minted without them.
#[tokio::test]
async fn oversized_custom_claims_are_left_out_not_fatal() {
    let clock = ManualClock::new(Millis::from_millis(START));
    let config = AccessConfig {
        claims: vec!["blob".into()],
        ..AccessConfig::default()
    };
    let e = built(&clock, Policy::default(), config).await;
    let req = NewSession {
        attributes: Some(
            serde_json::value::to_raw_value(&serde_json::json!({"blob": "x".repeat(9000)}))
                .unwrap(),
        ),
        ..NewSession::for_subject(Subject::new("fay").unwrap())
    };
    let p = e.create_pair(T, req).await.unwrap();
    assert!(claims_of(&p.access_token).get("blob").is_none());
    let q = refreshed(e.refresh(T, &p.refresh_token).await.unwrap());
    let again = refreshed(e.refresh(T, &p.refresh_token).await.unwrap());
    assert_eq!(
        q.access_token, again.access_token,
        "the same pair in the grace"
    );
}

/// A cached verification is not used past the retirement of a key of the
/// ring, nor under another ring.
#[tokio::test]
async fn the_cache_follows_key_retirement_and_ring_changes() {
    let (e, clock, _) = engine().await;
    let p = pair(&e).await;
    assert!(matches!(
        validate(&e, &p.access_token).await,
        Validation::Valid { .. }
    ));
    let now = sessionkit_core::Clock::now(&clock).as_millis() / 1000;
    // A short grace (a library caller may choose one): the old key retires
    // in 5 s, before the token's own exp.
    let rotated = e
        .key_ring()
        .unwrap()
        .rotate(SigningAlgorithm::EdDSA, now, 5)
        .unwrap();
    e.set_key_ring(rotated).unwrap();
    assert!(matches!(
        validate(&e, &p.access_token).await,
        Validation::Valid { .. }
    ));
    clock.advance_millis(5_000);
    assert_eq!(validate(&e, &p.access_token).await, Validation::Invalid);
}

/// Introspection reads only: a session bound to its client (fingerprint
/// `enforce`) is active to a gateway that knows nothing of the client, and
/// an access token reports its own `iat` and `exp`.
#[tokio::test]
async fn introspection_is_a_read_with_the_tokens_own_times() {
    let clock = ManualClock::new(Millis::from_millis(START));
    let policy = Policy::builder()
        .fingerprint(sessionkit_core::FingerprintMode::Enforce, false)
        .build()
        .unwrap();
    let e = built(&clock, policy, AccessConfig::default()).await;
    let req = NewSession {
        client: sessionkit_core::ClientInfo {
            user_agent: Some("app/1".into()),
            ..Default::default()
        },
        ..NewSession::for_subject(Subject::new("gus").unwrap())
    };
    let p = e.create_pair(T, req).await.unwrap();
    let i = e.introspect(T, &p.access_token).await.unwrap().unwrap();
    assert_eq!(i.token_type, "access_token");
    let c = claims_of(&p.access_token);
    assert_eq!(
        (i.iat, i.exp),
        (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap())
    );
    let r = e.introspect(T, &p.refresh_token).await.unwrap().unwrap();
    assert_eq!(r.token_type, "refresh_token");
    assert!(e.introspect(T, "garbage").await.unwrap().is_none());
    let other = TenantId::new("acme").unwrap();
    assert!(
        e.introspect(other, &p.access_token)
            .await
            .unwrap()
            .is_none()
    );
}
