//! Step-up: a validation may demand a recent sign-in (`max_age`): a
//! session whose `auth_time` is older, or an anonymous one, is
//! `ReauthenticationRequired` and nothing is written; signing in again
//! (an upgrade, even to the same subject) rotates the token and satisfies
//! it.
#![allow(missing_docs, clippy::unwrap_used)]

use sessionkit::{
    EngineKeys, NewSession, SessionManager, UpgradeResult, ValidateRequest, Validation,
};
use sessionkit_core::{DurationMs, ManualClock, Millis, Subject, TenantId};
use sessionkit_memory::MemoryStore;

const T: TenantId = TenantId::DEFAULT;

fn max_age(secs: u64) -> ValidateRequest {
    ValidateRequest {
        max_age: Some(DurationMs::from_secs(secs)),
        ..ValidateRequest::default()
    }
}

#[tokio::test]
async fn an_old_sign_in_needs_a_new_one_and_an_upgrade_gives_it() {
    let clock = ManualClock::new(Millis::from_millis(1_800_000_000_000));
    let e = SessionManager::builder(MemoryStore::new(), EngineKeys::generate().unwrap())
        .with_clock(clock.clone())
        .build()
        .await
        .unwrap();
    let ann = Subject::new("ann").unwrap();
    let c = e
        .create(
            T,
            NewSession {
                subject: Some(ann.clone()),
                ..NewSession::default()
            },
        )
        .await
        .unwrap();
    let token = c.token.expose_secret();
    assert!(matches!(
        e.validate(T, &token, &max_age(300)).await.unwrap(),
        Validation::Valid { .. }
    ));
    clock.advance_secs(301);
    let seen = e.get(T, c.session.id).await.unwrap().unwrap().last_seen_at;
    assert!(matches!(
        e.validate(T, &token, &max_age(300)).await.unwrap(),
        Validation::ReauthenticationRequired
    ));
    assert_eq!(
        e.get(T, c.session.id).await.unwrap().unwrap().last_seen_at,
        seen,
        "a refused validation writes nothing (no touch)"
    );
    // Without max_age the session is as valid as ever.
    assert!(matches!(
        e.validate(T, &token, &ValidateRequest::default())
            .await
            .unwrap(),
        Validation::Valid { .. }
    ));

    // Signing in again (the same subject): a new token, a fresh auth_time.
    let UpgradeResult::Upgraded(fresh) = e.upgrade(T, &token, ann, &[]).await.unwrap() else {
        panic!("upgrade")
    };
    let fresh_token = fresh.token.expose_secret();
    assert_ne!(fresh_token, token);
    assert!(matches!(
        e.validate(T, &fresh_token, &max_age(300)).await.unwrap(),
        Validation::Valid { .. }
    ));
    assert!(
        matches!(
            e.validate(T, &token, &ValidateRequest::default())
                .await
                .unwrap(),
            Validation::Invalid
        ),
        "the old token died with the privilege change"
    );

    // Anonymous: never signed in.
    let anon = e.create(T, NewSession::anonymous()).await.unwrap();
    assert!(matches!(
        e.validate(T, &anon.token.expose_secret(), &max_age(3600))
            .await
            .unwrap(),
        Validation::ReauthenticationRequired
    ));
}
