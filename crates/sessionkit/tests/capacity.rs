//! A store that runs out of room says so (`StoreError::Capacity`), and the
//! engine answers with it at once: it is never read as a version conflict
//! and retried, and nothing changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use sessionkit::MemoryStore;
use sessionkit::error::ErrorKind;
use sessionkit::{EngineError, EngineKeys, NewSession, PatchResult, SessionManager};
use sessionkit_core::store::Capacity;
use sessionkit_core::{SessionStore, StoreError, Subject, TenantId};

const T: TenantId = TenantId::DEFAULT;

#[tokio::test]
async fn an_update_at_the_stores_maximum_version_is_capacity_not_conflict() {
    let store = MemoryStore::new();
    let e = SessionManager::builder(store.clone(), EngineKeys::generate().unwrap())
        .build()
        .await
        .unwrap();
    let made = e
        .create(T, NewSession::for_subject(Subject::new("alice").unwrap()))
        .await
        .unwrap();
    // The session as if it had changed MAX_VERSION - 1 times already.
    let mut rec = store.get_by_id(T, made.session.id).await.unwrap().unwrap();
    rec.version = MemoryStore::MAX_VERSION;
    store.load(rec.clone()).unwrap();

    let out = e.patch_attributes(T, rec.id, &json!({"n": 1}), None).await;
    let Err(err) = out else {
        panic!("an update past the maximum version: {out:?}");
    };
    assert!(
        matches!(
            err,
            EngineError::Store(StoreError::Capacity(Capacity::Version))
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::StoreCapacity);
    assert!(!err.is_retryable());
    // Nothing changed.
    let after = store.get_by_id(T, rec.id).await.unwrap().unwrap();
    assert_eq!(after, rec);

    // One version below the maximum still updates, to the maximum.
    let mut below = rec;
    below.version = MemoryStore::MAX_VERSION - 1;
    store.load(below.clone()).unwrap();
    let out = e
        .patch_attributes(T, below.id, &json!({"n": 2}), None)
        .await
        .unwrap();
    let PatchResult::Updated(now) = out else {
        panic!("{out:?}");
    };
    assert_eq!(now.version, MemoryStore::MAX_VERSION);
}

#[tokio::test]
async fn a_record_past_the_maximum_version_is_refused_with_capacity() {
    let store = MemoryStore::new();
    let e = SessionManager::builder(store.clone(), EngineKeys::generate().unwrap())
        .build()
        .await
        .unwrap();
    let made = e.create(T, NewSession::anonymous()).await.unwrap();
    let kept = store.get_by_id(T, made.session.id).await.unwrap().unwrap();
    let mut rec = kept.clone();
    rec.version = MemoryStore::MAX_VERSION + 1;
    assert_eq!(store.load(rec), Err(Capacity::Version));
    // The record it would have replaced is still there.
    assert_eq!(store.get_by_id(T, kept.id).await.unwrap(), Some(kept));
}
