//! Engine behaviour through `SessionManager` on `MemoryStore`: the policy of
//! docs/sessions.md, the invariants of docs/architecture.md that live in the
//! engine, and the behaviours that need neither JWTs nor HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::json;
use serde_json::value::{RawValue, to_raw_value};
use sessionkit::MemoryStore;
use sessionkit::{
    EngineError, EngineKeys, EventKind, NewSession, PatchResult, SessionManager, TokenRevocation,
    UpgradeResult, ValidateRequest, Validation,
};
use sessionkit_core::store::{RevokeOutcome, RevokeSubjectOutcome};
use sessionkit_core::{
    ClientInfo, ExpiryCause, FingerprintMode, ManualClock, Millis, OnSessionLimit, Policy,
    RevokeReason, SessionStore, Subject, TenantId,
};

const T: TenantId = TenantId::DEFAULT;
const START: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// A create request's attributes, as a server hands them over: raw text.
fn raw(v: serde_json::Value) -> Option<Box<RawValue>> {
    Some(to_raw_value(&v).unwrap())
}

fn subject(s: &str) -> Subject {
    Subject::new(s).unwrap()
}

fn policy() -> Policy {
    Policy::builder()
        .idle_timeout_secs(600)
        .absolute_timeout_secs(3600)
        .touch_interval_secs(60)
        .build()
        .unwrap()
}

async fn engine_with(policy: Policy) -> (SessionManager<MemoryStore>, ManualClock) {
    let clock = ManualClock::new(Millis::from_millis(START));
    let e = SessionManager::builder(MemoryStore::new(), EngineKeys::generate().unwrap())
        .with_policy(policy)
        .with_clock(clock.clone())
        .build()
        .await
        .unwrap();
    (e, clock)
}

async fn engine() -> (SessionManager<MemoryStore>, ManualClock) {
    engine_with(policy()).await
}

async fn validate(e: &SessionManager<MemoryStore>, token: &str) -> Validation {
    e.validate(T, token, &ValidateRequest::default())
        .await
        .unwrap()
}

fn valid(v: Validation) -> sessionkit_core::SessionRecord {
    match v {
        Validation::Valid { session, .. } => session,
        other => panic!("expected Valid, got {other:?}"),
    }
}

#[tokio::test]
async fn create_validate_and_csrf() {
    let (e, _) = engine().await;
    let c = e
        .create(
            T,
            NewSession {
                subject: Some(subject("u1")),
                attributes: raw(json!({"cart": 2})),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(c.session.version, 1);
    assert_eq!(c.session.auth_time, Some(Millis::from_millis(START)));
    let token = c.token.expose_secret();
    let s = valid(validate(&e, &token).await);
    assert_eq!(s.id, c.session.id);
    assert_eq!(s.attributes.to_value(), json!({"cart": 2}));
    // CSRF: the session's own token passes, another session's fails.
    let other = e.create(T, NewSession::anonymous()).await.unwrap();
    let good = ValidateRequest {
        csrf_token: Some(e.csrf_token(&c.session.id)),
        ..ValidateRequest::default()
    };
    assert!(matches!(
        e.validate(T, &token, &good).await.unwrap(),
        Validation::Valid { .. }
    ));
    let bad = ValidateRequest {
        csrf_token: Some(e.csrf_token(&other.session.id)),
        ..ValidateRequest::default()
    };
    assert_eq!(
        e.validate(T, &token, &bad).await.unwrap(),
        Validation::CsrfFailed
    );
}

#[tokio::test]
async fn unknown_malformed_revoked_and_other_tenant_are_the_same_answer() {
    let (e, _) = engine().await;
    let c = e
        .create(T, NewSession::for_subject(subject("u1")))
        .await
        .unwrap();
    let token = c.token.expose_secret();
    let other_tenant = TenantId::new("acme").unwrap();
    assert_eq!(
        e.validate(other_tenant, &token, &ValidateRequest::default())
            .await
            .unwrap(),
        Validation::Invalid
    );
    assert_eq!(validate(&e, "garbage").await, Validation::Invalid);
    assert_eq!(
        validate(&e, &format!("{token}=")).await,
        Validation::Invalid
    );
    let forged = sessionkit_core::SessionToken::generate()
        .unwrap()
        .expose_secret();
    assert_eq!(validate(&e, &forged).await, Validation::Invalid);
    assert_eq!(
        e.revoke_token(T, &token).await.unwrap(),
        TokenRevocation::Done
    );
    assert_eq!(validate(&e, &token).await, Validation::Invalid);
    // Logout is idempotent and has no oracle.
    assert_eq!(
        e.revoke_token(T, &token).await.unwrap(),
        TokenRevocation::Done
    );
    assert_eq!(
        e.revoke_token(T, &forged).await.unwrap(),
        TokenRevocation::Done
    );
    assert_eq!(
        e.revoke_token(T, "nope").await.unwrap(),
        TokenRevocation::Malformed
    );
}

#[tokio::test]
async fn idle_and_absolute_deadlines_at_the_boundary() {
    let (e, clock) = engine().await;
    let c = e
        .create(T, NewSession::for_subject(subject("u1")))
        .await
        .unwrap();
    let token = c.token.expose_secret();
    // Idle: live at 600 s − 1 ms, expired at 600 s.
    clock.advance_millis(600_000 - 1);
    let s = valid(validate(&e, &token).await); // this touch moves last_seen
    assert_eq!(s.last_seen_at, Millis::from_millis(START + 600_000 - 1));
    clock.advance_millis(600_000 - 1);
    valid(validate(&e, &token).await);
    clock.advance_millis(600_000);
    assert_eq!(
        validate(&e, &token).await,
        Validation::Expired(ExpiryCause::Idle)
    );

    // Absolute: activity never extends past it.
    let c = e
        .create(T, NewSession::for_subject(subject("u2")))
        .await
        .unwrap();
    let token = c.token.expose_secret();
    let abs = c.session.expires_at;
    while e.now() < Millis::from_millis(abs.as_millis() - 300_000) {
        clock.advance_secs(300);
        valid(validate(&e, &token).await);
    }
    clock.set(Millis::from_millis(abs.as_millis() - 1));
    valid(validate(&e, &token).await);
    clock.set(abs);
    assert_eq!(
        validate(&e, &token).await,
        Validation::Expired(ExpiryCause::Absolute)
    );
}

#[tokio::test]
async fn touch_is_throttled_and_never_changes_version() {
    let (e, clock) = engine().await;
    let mut events = e.subscribe();
    let c = e
        .create(T, NewSession::for_subject(subject("u1")))
        .await
        .unwrap();
    let token = c.token.expose_secret();
    assert_eq!(events.recv().await.unwrap().kind, EventKind::Created);
    clock.advance_secs(59);
    let s = valid(validate(&e, &token).await);
    assert_eq!(
        s.last_seen_at, c.session.last_seen_at,
        "touched before the interval"
    );
    clock.advance_secs(1);
    let s = valid(validate(&e, &token).await);
    assert_eq!(s.last_seen_at, e.now());
    assert_eq!(s.version, 1);
    assert_eq!(events.recv().await.unwrap().kind, EventKind::Touched);
    assert!(events.try_recv().is_err(), "exactly one touched event");
}

#[tokio::test]
async fn a_failed_validation_writes_nothing() {
    let (e, clock) = engine().await;
    let c = e
        .create(T, NewSession::for_subject(subject("u1")))
        .await
        .unwrap();
    let token = c.token.expose_secret();
    clock.advance_secs(601);
    let mut events = e.subscribe();
    assert_eq!(
        validate(&e, &token).await,
        Validation::Expired(ExpiryCause::Idle)
    );
    let rec = e.store().get_by_id(T, c.session.id).await.unwrap().unwrap();
    assert_eq!(
        rec, c.session,
        "an expired session is not touched or deleted by validate"
    );
    assert!(events.try_recv().is_err());
}

#[tokio::test]
async fn per_session_timeouts_only_shorten() {
    let (e, clock) = engine().await;
    let c = e
        .create(
            T,
            NewSession {
                subject: Some(subject("u1")),
                idle_timeout_secs: Some(10),
                absolute_timeout_secs: Some(20),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(c.session.expires_at, Millis::from_millis(START + 20_000));
    clock.advance_secs(10);
    assert_eq!(
        validate(&e, &c.token.expose_secret()).await,
        Validation::Expired(ExpiryCause::Idle)
    );
    for (idle, abs, field) in [
        (Some(0), None, "idle_timeout_secs"),
        (Some(-5), None, "idle_timeout_secs"),
        (Some(601), None, "idle_timeout_secs"),
        (Some(i128::MAX), None, "idle_timeout_secs"),
        (None, Some(3601), "absolute_timeout_secs"),
        (None, Some(0), "absolute_timeout_secs"),
        (Some(100), Some(50), "idle_timeout_secs"),
    ] {
        let err = e
            .create(
                T,
                NewSession {
                    subject: Some(subject("u1")),
                    idle_timeout_secs: idle,
                    absolute_timeout_secs: abs,
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        match err {
            EngineError::InvalidInput { field: f, .. } => assert_eq!(f, field),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn clock_going_backwards_never_revives() {
    let (e, clock) = engine().await;
    let c = e
        .create(T, NewSession::for_subject(subject("u1")))
        .await
        .unwrap();
    let token = c.token.expose_secret();
    clock.advance_secs(601);
    assert_eq!(
        validate(&e, &token).await,
        Validation::Expired(ExpiryCause::Idle)
    );
    clock.advance_secs(-3600);
    assert_eq!(
        validate(&e, &token).await,
        Validation::Expired(ExpiryCause::Idle)
    );
    // A failed validation writes nothing, so the floor the store keeps
    // comes from writes, valid validations and purges: the periodic purge
    // persists the engine's time.
    e.purge_expired().await.unwrap();
    // A new engine over the same store, its clock an hour behind, starts
    // at the store's clock floor.
    let e2 = SessionManager::builder(e.store().clone(), EngineKeys::generate().unwrap())
        .with_policy(policy())
        .with_clock(ManualClock::new(Millis::from_millis(START)))
        .build()
        .await
        .unwrap();
    assert!(e2.now() >= Millis::from_millis(START + 601_000));
    assert_eq!(
        e2.validate(T, &token, &ValidateRequest::default())
            .await
            .unwrap(),
        Validation::Invalid
    );
}

#[tokio::test]
async fn create_takes_attributes_as_raw_text_and_refuses_bad_ones() {
    let limits = sessionkit_core::AttributeLimits {
        max_bytes: 40,
        max_depth: 2,
    };
    let (e, _) = engine_with(
        Policy::builder()
            .idle_timeout_secs(600)
            .absolute_timeout_secs(3600)
            .touch_interval_secs(60)
            .attribute_limits(limits)
            .build()
            .unwrap(),
    )
    .await;
    let text = |t: &str| Some(RawValue::from_string(t.to_owned()).unwrap());
    // Compacted, keys in their input order.
    let c = e
        .create(
            T,
            NewSession {
                attributes: text("{ \"z\": 1, \"a\": {\"b\": true} }"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(c.session.attributes.as_json(), r#"{"z":1,"a":{"b":true}}"#);
    use sessionkit_core::AttributeError as A;
    for (bad, want) in [
        (r#"[1]"#, A::NotAnObject),
        (r#""x""#, A::NotAnObject),
        (
            r#"{"k":1,"k":2}"#,
            A::DuplicateKey {
                key: "\"k\"".into(),
            },
        ),
        (r#"{"a":{"b":[]}}"#, A::TooDeep { max: 2 }),
    ] {
        let r = e
            .create(
                T,
                NewSession {
                    attributes: text(bad),
                    ..Default::default()
                },
            )
            .await;
        assert!(
            matches!(&r, Err(EngineError::Attributes(a)) if *a == want),
            "{bad}: {r:?}"
        );
    }
    let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(40));
    assert!(matches!(
        e.create(
            T,
            NewSession {
                attributes: text(&big),
                ..Default::default()
            },
        )
        .await,
        Err(EngineError::Attributes(A::TooLarge { max: 40, .. }))
    ));
    // Only the first create wrote anything.
    assert_eq!(e.counts(T).await.unwrap().active, 1);
}

#[tokio::test]
async fn upgrade_rotates_id_and_token_and_keeps_only_named_attributes() {
    let (e, clock) = engine().await;
    let mut events = e.subscribe();
    let anon = e
        .create(
            T,
            NewSession {
                attributes: raw(json!({"cart": [1, 2], "theme": "dark", "secret": 1})),
                idle_timeout_secs: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    clock.advance_secs(3);
    let keep = vec!["cart".to_string(), "absent".to_string()];
    let up = match e
        .upgrade(T, &anon.token.expose_secret(), subject("u1"), &keep)
        .await
        .unwrap()
    {
        UpgradeResult::Upgraded(c) => c,
        other => panic!("{other:?}"),
    };
    assert_ne!(up.session.id, anon.session.id);
    assert_ne!(e.csrf_token(&up.session.id), e.csrf_token(&anon.session.id));
    assert_eq!(up.session.attributes.to_value(), json!({"cart": [1, 2]}));
    assert_eq!(up.session.auth_time, Some(e.now()));
    // Deadlines restart with the policy's timeouts; the override is gone.
    assert_eq!(
        up.session.expires_at,
        e.now().saturating_add(policy().absolute_timeout)
    );
    assert_eq!(up.session.idle_timeout, policy().idle_timeout);
    assert_eq!(
        validate(&e, &anon.token.expose_secret()).await,
        Validation::Invalid
    );
    valid(validate(&e, &up.token.expose_secret()).await);
    let kinds: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|ev| ev.kind)
        .collect();
    assert!(kinds.contains(&EventKind::Revoked {
        reason: RevokeReason::Upgraded
    }));
    assert!(kinds.contains(&EventKind::Upgraded {
        from: anon.session.id
    }));

    // Re-login as the same subject keeps named attributes; as another
    // subject nothing carries over.
    let again = match e
        .upgrade(T, &up.token.expose_secret(), subject("u1"), &keep)
        .await
        .unwrap()
    {
        UpgradeResult::Upgraded(c) => c,
        other => panic!("{other:?}"),
    };
    assert_eq!(again.session.attributes.to_value(), json!({"cart": [1, 2]}));
    let switched = match e
        .upgrade(T, &again.token.expose_secret(), subject("u2"), &keep)
        .await
        .unwrap()
    {
        UpgradeResult::Upgraded(c) => c,
        other => panic!("{other:?}"),
    };
    assert!(switched.session.attributes.is_empty());
    let too_many: Vec<String> = (0..65).map(|i| format!("a{i}")).collect();
    assert!(matches!(
        e.upgrade(T, &switched.token.expose_secret(), subject("u2"), &too_many)
            .await,
        Err(EngineError::InvalidInput {
            field: "keep_attributes",
            ..
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_upgrades_of_one_token_have_one_winner() {
    for _ in 0..30 {
        let (e, _) = engine().await;
        let e = Arc::new(e);
        let anon = e.create(T, NewSession::anonymous()).await.unwrap();
        let token = anon.token.expose_secret();
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (e, token, barrier) = (e.clone(), token.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    e.upgrade(T, &token, subject(&format!("u{i}")), &[])
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut winners = 0;
        for t in tasks {
            match t.await.unwrap() {
                UpgradeResult::Upgraded(_) => winners += 1,
                UpgradeResult::Invalid => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(winners, 1);
    }
}

#[tokio::test]
async fn patch_attributes_is_compare_and_set() {
    let (e, _) = engine().await;
    let c = e
        .create(
            T,
            NewSession {
                subject: Some(subject("u1")),
                attributes: raw(json!({"a": 1})),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let id = c.session.id;
    let r = e
        .patch_attributes(T, id, &json!({"b": 2}), Some(1))
        .await
        .unwrap();
    let PatchResult::Updated(rec) = r else {
        panic!("{r:?}")
    };
    assert_eq!(rec.version, 2);
    assert_eq!(rec.attributes.to_value(), json!({"a": 1, "b": 2}));
    // A stale If-Match writes nothing.
    assert_eq!(
        e.patch_attributes(T, id, &json!({"c": 3}), Some(1))
            .await
            .unwrap(),
        PatchResult::PreconditionFailed
    );
    assert_eq!(e.get(T, id).await.unwrap().unwrap().version, 2);
    // A patch that changes nothing writes nothing: same version (and ETag).
    for noop in [json!({}), json!({"a": 1}), json!({"gone": null})] {
        let r = e.patch_attributes(T, id, &noop, Some(2)).await.unwrap();
        let PatchResult::Updated(rec) = r else {
            panic!("{r:?}")
        };
        assert_eq!(rec.version, 2, "{noop}");
    }
    assert_eq!(e.get(T, id).await.unwrap().unwrap().version, 2);
    // Too large: refused, old attributes unchanged.
    let big = json!({"x": "y".repeat(20_000)});
    assert!(matches!(
        e.patch_attributes(T, id, &big, None).await,
        Err(EngineError::Attributes(_))
    ));
    assert_eq!(
        e.get(T, id).await.unwrap().unwrap().attributes.to_value(),
        json!({"a": 1, "b": 2})
    );
    // Not an object.
    assert!(e.patch_attributes(T, id, &json!([1]), None).await.is_err());
    // Concurrent patches without If-Match are all kept (never lost).
    let e = Arc::new(e);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let e = e.clone();
            tokio::spawn(async move {
                e.patch_attributes(T, id, &json!({format!("k{i}"): i}), None)
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert!(matches!(t.await.unwrap().unwrap(), PatchResult::Updated(_)));
    }
    let rec = e.get(T, id).await.unwrap().unwrap();
    assert_eq!(rec.version, 22);
    assert_eq!(rec.attributes.to_map().len(), 22);
    // Patching a revoked session: not found.
    e.revoke(T, id, RevokeReason::Admin).await.unwrap();
    assert_eq!(
        e.patch_attributes(T, id, &json!({"z": 1}), None)
            .await
            .unwrap(),
        PatchResult::NotFound
    );
}

/// S3: list, revoke (another user's session is not found), revoke all,
/// revoke all except, cleanup count, max sessions per user.
#[tokio::test]
async fn s3_device_management() {
    let (e, clock) = engine_with(
        Policy::builder()
            .idle_timeout_secs(600)
            .absolute_timeout_secs(3600)
            .max_sessions_per_subject(Some(3), OnSessionLimit::EvictOldest)
            .build()
            .unwrap(),
    )
    .await;
    let alice = subject("alice");
    let bob = subject("bob");
    let mut a = Vec::new();
    for i in 0..3 {
        clock.advance_secs(1);
        a.push(
            e.create(
                T,
                NewSession {
                    subject: Some(alice.clone()),
                    client: ClientInfo {
                        user_agent: Some(format!("agent {i}")),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            )
            .await
            .unwrap(),
        );
    }
    let b = e
        .create(T, NewSession::for_subject(bob.clone()))
        .await
        .unwrap();
    // Newest first, with client info.
    let page = e.list(T, &alice, None, 100).await.unwrap();
    let ids: Vec<_> = page.sessions.iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![a[2].session.id, a[1].session.id, a[0].session.id]);
    assert_eq!(
        page.sessions[0].client.user_agent.as_deref(),
        Some("agent 2")
    );
    assert!(page.next.is_none());
    // Pagination.
    let p1 = e.list(T, &alice, None, 2).await.unwrap();
    let p2 = e.list(T, &alice, p1.next, 2).await.unwrap();
    assert_eq!(p1.sessions.len() + p2.sessions.len(), 3);
    assert!(p2.next.is_none());
    // Revoking bob's session as alice: not found, and bob still valid.
    assert_eq!(
        e.revoke_for_subject(T, &alice, b.session.id, RevokeReason::Logout)
            .await
            .unwrap(),
        RevokeOutcome::NotFound
    );
    valid(validate(&e, &b.token.expose_secret()).await);
    // Max per user: the oldest-seen session is evicted. Touch a[0] so a[1]
    // is the least recently seen.
    clock.advance_secs(120);
    valid(validate(&e, &a[0].token.expose_secret()).await);
    let a4 = e
        .create(T, NewSession::for_subject(alice.clone()))
        .await
        .unwrap();
    assert_eq!(
        validate(&e, &a[1].token.expose_secret()).await,
        Validation::Invalid
    );
    assert_eq!(
        e.list(T, &alice, None, 100).await.unwrap().sessions.len(),
        3
    );
    // Log out other devices.
    let out = e
        .revoke_subject(T, &alice, Some(a4.session.id))
        .await
        .unwrap();
    assert_eq!(out, RevokeSubjectOutcome::Revoked { count: 2 });
    for gone in [&a[0], &a[2]] {
        assert_eq!(
            validate(&e, &gone.token.expose_secret()).await,
            Validation::Invalid
        );
    }
    valid(validate(&e, &a4.token.expose_secret()).await);
    // `except` must be a live session of that subject.
    assert_eq!(
        e.revoke_subject(T, &alice, Some(b.session.id))
            .await
            .unwrap(),
        RevokeSubjectOutcome::ExceptNotLive
    );
    valid(validate(&e, &a4.token.expose_secret()).await);
    // Revoke all.
    assert!(matches!(
        e.revoke_subject(T, &alice, None).await.unwrap(),
        RevokeSubjectOutcome::Revoked { count: 1 }
    ));
    assert_eq!(
        validate(&e, &a4.token.expose_secret()).await,
        Validation::Invalid
    );
    // Cleanup returns how many records went: bob's expired session and
    // alice's four tombstones once past their absolute deadlines.
    clock.advance_secs(601);
    assert_eq!(e.purge_expired().await.unwrap(), 1);
    clock.advance_secs(3600);
    assert_eq!(e.purge_expired().await.unwrap(), 4);
    assert_eq!(e.store().len(), 0);
}

#[tokio::test]
async fn refuse_policy_and_anonymous_cap() {
    let (e, _) = engine_with(
        Policy::builder()
            .max_sessions_per_subject(Some(2), OnSessionLimit::Refuse)
            .max_anonymous_sessions(Some(2))
            .build()
            .unwrap(),
    )
    .await;
    let u = subject("u");
    e.create(T, NewSession::for_subject(u.clone()))
        .await
        .unwrap();
    e.create(T, NewSession::for_subject(u.clone()))
        .await
        .unwrap();
    assert!(matches!(
        e.create(T, NewSession::for_subject(u.clone())).await,
        Err(EngineError::SessionLimitReached)
    ));
    e.create(T, NewSession::anonymous()).await.unwrap();
    let anon = e.create(T, NewSession::anonymous()).await.unwrap();
    assert!(matches!(
        e.create(T, NewSession::anonymous()).await,
        Err(EngineError::AnonymousLimitReached { .. })
    ));
    // Upgrading an anonymous session frees an anonymous slot, but the
    // subject cap still applies to the upgrade.
    assert!(matches!(
        e.upgrade(T, &anon.token.expose_secret(), u.clone(), &[])
            .await,
        Err(EngineError::SessionLimitReached)
    ));
    valid(validate(&e, &anon.token.expose_secret()).await);
    let v = subject("v");
    assert!(matches!(
        e.upgrade(T, &anon.token.expose_secret(), v, &[])
            .await
            .unwrap(),
        UpgradeResult::Upgraded(_)
    ));
    e.create(T, NewSession::anonymous()).await.unwrap();
}

#[tokio::test]
async fn fingerprint_binding_modes() {
    let ua = |s: &str| ClientInfo {
        user_agent: Some(s.into()),
        ..Default::default()
    };
    for mode in [
        FingerprintMode::Off,
        FingerprintMode::Report,
        FingerprintMode::Enforce,
    ] {
        let (e, _) = engine_with(Policy::builder().fingerprint(mode, false).build().unwrap()).await;
        let c = e
            .create(
                T,
                NewSession {
                    subject: Some(subject("u")),
                    client: ua("Firefox"),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let token = c.token.expose_secret();
        let same = ValidateRequest {
            client: Some(ua("Firefox")),
            ..ValidateRequest::default()
        };
        let other = ValidateRequest {
            client: Some(ua("curl")),
            ..ValidateRequest::default()
        };
        assert!(matches!(
            e.validate(T, &token, &same).await.unwrap(),
            Validation::Valid { .. }
        ));
        let v = e.validate(T, &token, &other).await.unwrap();
        match mode {
            FingerprintMode::Enforce => assert_eq!(v, Validation::Invalid),
            _ => assert!(matches!(v, Validation::Valid { .. }), "{mode:?}"),
        }
    }
}

/// S4: the raw token never reaches the store; ids are generated, unique,
/// and never reused.
#[tokio::test]
async fn s4_tokens_hashed_ids_fresh() {
    let (e, clock) = engine().await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let c = e.create(T, NewSession::anonymous()).await.unwrap();
        let raw = c.token.expose_secret();
        let stored = e.store().get_by_id(T, c.session.id).await.unwrap().unwrap();
        let dump = format!("{stored:?}");
        assert!(!dump.contains(&raw[4..]), "raw token in the record");
        assert_ne!(stored.token_hash.as_bytes(), c.token.secret_bytes());
        assert!(seen.insert(c.session.id));
        assert!(
            !format!("{:?}", c.token).contains(&raw[4..]),
            "token Debug leaks"
        );
    }
    clock.advance_secs(7 * 24 * 3600 + 1);
    assert_eq!(e.purge_expired().await.unwrap(), 200);
    let c = e.create(T, NewSession::anonymous()).await.unwrap();
    assert!(!seen.contains(&c.session.id));
}

#[tokio::test]
async fn purge_emits_expired_once() {
    let (e, clock) = engine().await;
    let mut events = e.subscribe();
    let c = e
        .create(T, NewSession::for_subject(subject("u")))
        .await
        .unwrap();
    let _ = events.recv().await;
    clock.advance_secs(600);
    assert_eq!(e.purge_expired().await.unwrap(), 1);
    assert_eq!(e.purge_expired().await.unwrap(), 0);
    let ev = events.recv().await.unwrap();
    assert_eq!(
        ev.kind,
        EventKind::Expired {
            cause: ExpiryCause::Idle
        }
    );
    assert_eq!(ev.session_id, Some(c.session.id));
    assert!(events.try_recv().is_err());
    // After the purge the token is simply invalid.
    assert_eq!(
        validate(&e, &c.token.expose_secret()).await,
        Validation::Invalid
    );
}

#[tokio::test]
async fn a_slow_subscriber_never_blocks_the_engine() {
    let clock = ManualClock::new(Millis::from_millis(START));
    let e = SessionManager::builder(MemoryStore::new(), EngineKeys::generate().unwrap())
        .with_clock(clock)
        .with_event_capacity(4)
        .build()
        .await
        .unwrap();
    let mut rx = e.subscribe();
    for _ in 0..50 {
        e.create(T, NewSession::anonymous()).await.unwrap();
    }
    assert!(matches!(
        rx.recv().await,
        Err(tokio::sync::broadcast::error::RecvError::Lagged(_))
    ));
}

#[tokio::test]
async fn bad_policy_is_refused_at_build() {
    let mut p = Policy::default();
    p.touch_interval = sessionkit_core::DurationMs::from_secs(10_000);
    let err = SessionManager::builder(MemoryStore::new(), EngineKeys::generate().unwrap())
        .with_policy(p)
        .build()
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        EngineError::InvalidInput {
            field: "touch_interval",
            ..
        }
    ));
}

/// A session whose own idle timeout is shorter than twice the touch
/// interval still slides: it is touched every half idle timeout.
#[tokio::test]
async fn short_idle_override_still_slides() {
    let (e, clock) = engine().await; // touch_interval 60 s
    let c = e
        .create(
            T,
            NewSession {
                subject: Some(subject("u1")),
                idle_timeout_secs: Some(30),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let token = c.token.expose_secret();
    for _ in 0..10 {
        clock.advance_secs(20);
        valid(validate(&e, &token).await);
    }
    clock.advance_secs(30);
    assert_eq!(
        validate(&e, &token).await,
        Validation::Expired(ExpiryCause::Idle)
    );
}

/// A failed validation does not even persist the clock floor.
#[tokio::test]
async fn invalid_tokens_do_not_move_the_clock_floor() {
    let (e, clock) = engine().await;
    let floor = e.store().clock_floor().await.unwrap();
    clock.advance_secs(10);
    let forged = sessionkit_core::SessionToken::generate()
        .unwrap()
        .expose_secret();
    assert_eq!(validate(&e, &forged).await, Validation::Invalid);
    assert_eq!(e.store().clock_floor().await.unwrap(), floor);
}

/// A session kept alive by touches outlives its first idle deadline: a
/// purge then finds it not due (and files it again), and purges it once
/// when it really expires.
#[tokio::test]
async fn touched_sessions_survive_purges_until_they_expire() {
    let (e, clock) = engine().await; // idle 600 s, touch every 60 s
    let c = e
        .create(T, NewSession::for_subject(subject("u1")))
        .await
        .unwrap();
    let token = c.token.expose_secret();
    for _ in 0..10 {
        clock.advance_secs(120);
        valid(validate(&e, &token).await);
        assert_eq!(e.purge_expired().await.unwrap(), 0);
    }
    valid(validate(&e, &token).await);
    clock.advance_secs(600);
    assert_eq!(e.purge_expired().await.unwrap(), 1);
    assert_eq!(e.purge_expired().await.unwrap(), 0);
    assert_eq!(validate(&e, &token).await, Validation::Invalid);
}

/// Text that looks other than it is: bidi controls, zero-width characters
/// and line separators are refused in subjects and device names, removed
/// from user agents; U+0000 in attributes is refused.
#[tokio::test]
async fn hidden_characters_and_nul_are_kept_out() {
    let (e, _) = engine().await;
    for s in ["adm\u{202E}nimda", "a\u{200B}b", "a\u{2028}b", "\u{FEFF}x"] {
        assert!(Subject::new(s).is_err(), "{s:?}");
    }
    let with_device = |d: &str| NewSession {
        client: ClientInfo {
            device: Some(d.into()),
            ..Default::default()
        },
        ..NewSession::anonymous()
    };
    assert!(matches!(
        e.create(T, with_device("phone\u{202E}")).await,
        Err(EngineError::InvalidInput {
            field: "client",
            ..
        })
    ));
    assert!(e.create(T, with_device("Ann's phone")).await.is_ok());
    let c = e
        .create(
            T,
            NewSession {
                client: ClientInfo {
                    user_agent: Some("Moz\u{202E}illa/5.0\u{200B}".into()),
                    ..Default::default()
                },
                ..NewSession::anonymous()
            },
        )
        .await
        .unwrap();
    assert_eq!(c.session.client.user_agent.as_deref(), Some("Mozilla/5.0"));
    let nul = NewSession {
        attributes: raw(json!({"a": "x\u{0}y"})),
        ..NewSession::anonymous()
    };
    assert!(matches!(
        e.create(T, nul).await,
        Err(EngineError::Attributes(
            sessionkit_core::AttributeError::NulCharacter
        ))
    ));
}

/// A purge of many records yields between its batches: on a one-thread
/// runtime, another task runs while it is under way (the requests queued
/// behind a large purge are not held up until its very end).
#[tokio::test(flavor = "current_thread")]
async fn a_large_purge_lets_other_tasks_run_between_batches() {
    let (e, clock) = engine().await;
    for _ in 0..25_000 {
        e.create(TenantId::DEFAULT, NewSession::default())
            .await
            .unwrap();
    }
    clock.advance_secs(10 * 86_400);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ran_during = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (d, r) = (done.clone(), ran_during.clone());
    let other = tokio::spawn(async move {
        while !d.load(std::sync::atomic::Ordering::SeqCst) {
            r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::task::yield_now().await;
        }
    });
    tokio::task::yield_now().await;
    let before = ran_during.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(e.purge_expired().await.unwrap(), 25_000);
    let during = ran_during.load(std::sync::atomic::Ordering::SeqCst) - before;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    other.await.unwrap();
    assert!(
        during >= 2,
        "the other task ran {during} times during the purge"
    );
}
