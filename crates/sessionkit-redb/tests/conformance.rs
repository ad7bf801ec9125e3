//! The conformance suite of `sessionkit-store-tests`, run against a
//! [`RedbStore`] in a fresh temporary directory per case.
#![allow(clippy::expect_used)]

use sessionkit_redb::RedbStore;
use sessionkit_store_tests::Fixture;

async fn fresh() -> Fixture<RedbStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path()).expect("open");
    // The guard (the directory) is dropped after the store.
    Fixture::with_guard(store, dir)
}

sessionkit_store_tests::conformance_tests!(fresh);
