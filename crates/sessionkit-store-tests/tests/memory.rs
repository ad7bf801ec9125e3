//! The conformance suite against `MemoryStore`, the reference store (it
//! cannot run from sessionkit-core itself: that would be a dependency
//! cycle).

use sessionkit_memory::MemoryStore;

async fn fresh() -> MemoryStore {
    MemoryStore::new()
}

sessionkit_store_tests::conformance_tests!(fresh);
