//! Step-up: a validation may demand a recent sign-in (`max_age`): a
//! session whose `auth_time` is older, or an anonymous one, is
//! `ReauthenticationRequired` and nothing is written; signing in again
//! (an upgrade, even to the same subject) rotates the token and satisfies
//! it. Likewise by level (`min_aal`): a login states its assurance level
//! and methods, and a step-up is an upgrade of the same subject to a
//! higher level.
#![allow(missing_docs, clippy::unwrap_used)]

use sessionkit::{
    EngineKeys, NewSession, SessionManager, UpgradeResult, ValidateRequest, Validation,
};
use sessionkit_core::{Assurance, DurationMs, ManualClock, Millis, Subject, TenantId};
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

fn min_aal(level: u8) -> ValidateRequest {
    ValidateRequest {
        min_aal: Some(level),
        ..ValidateRequest::default()
    }
}

#[tokio::test]
async fn a_low_level_needs_a_step_up_which_keeps_the_subject_and_rotates() {
    let e = SessionManager::builder(MemoryStore::new(), EngineKeys::generate().unwrap())
        .build()
        .await
        .unwrap();
    let ann = Subject::new("ann").unwrap();
    // A login that states nothing: level 1, no methods.
    let c = e
        .create(
            T,
            NewSession {
                subject: Some(ann.clone()),
                attributes: Some(
                    serde_json::value::to_raw_value(&serde_json::json!({"cart": 2, "tmp": 1}))
                        .unwrap(),
                ),
                ..NewSession::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((c.session.aal(), c.session.amr()), (1, &[][..]));
    let token = c.token.expose_secret();
    for level in [0, 1] {
        assert!(matches!(
            e.validate(T, &token, &min_aal(level)).await.unwrap(),
            Validation::Valid { .. }
        ));
    }
    assert_eq!(
        e.validate(T, &token, &min_aal(2)).await.unwrap(),
        Validation::ReauthenticationRequired
    );

    // Step-up: the same subject at level 2, a new token, `cart` kept.
    let two = Assurance::new(2, vec!["pwd".into(), "otp".into()]).unwrap();
    let UpgradeResult::Upgraded(up) = e
        .upgrade_as(
            T,
            &token,
            ann.clone(),
            &["cart".into()],
            Some(two),
            sessionkit::Issue::Session,
        )
        .await
        .unwrap()
    else {
        panic!("upgrade")
    };
    assert_eq!(up.session.subject.as_ref(), Some(&ann));
    assert_eq!(up.session.aal(), 2);
    assert_eq!(up.session.amr(), ["pwd", "otp"]);
    assert_eq!(up.session.attributes.as_json(), r#"{"cart":2}"#);
    let up_token = up.token.expose_secret();
    let Validation::Valid { session } = e.validate(T, &up_token, &min_aal(2)).await.unwrap() else {
        panic!("level 2 is enough")
    };
    assert_eq!(session.amr(), ["pwd", "otp"], "the store kept the methods");
    assert_eq!(
        e.validate(T, &up_token, &min_aal(3)).await.unwrap(),
        Validation::ReauthenticationRequired
    );
    assert_eq!(
        e.validate(T, &token, &ValidateRequest::default())
            .await
            .unwrap(),
        Validation::Invalid,
        "the lower-level token died with the step-up"
    );
    let read = e.get(T, up.session.id).await.unwrap().unwrap();
    assert_eq!(
        (read.aal(), read.amr()),
        (2, &["pwd".to_owned(), "otp".to_owned()][..])
    );

    // Anonymous: level 0, and no level may be stated for it.
    let anon = e.create(T, NewSession::anonymous()).await.unwrap();
    assert_eq!(anon.session.aal(), 0);
    assert_eq!(
        e.validate(T, &anon.token.expose_secret(), &min_aal(1))
            .await
            .unwrap(),
        Validation::ReauthenticationRequired
    );
    let err = e
        .create(
            T,
            NewSession {
                assurance: Some(Assurance::new(2, vec![]).unwrap()),
                ..NewSession::anonymous()
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("aal"), "{err}");
}
