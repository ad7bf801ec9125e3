//! # sessionkit-store-tests
//!
//! The one conformance suite every sessionkit store must pass
//! (docs/store-contract.md): the [`SessionStore`] contract checked at the trait level, one
//! `pub async fn` per case, generic over the store, plus a proptest
//! state-machine [`model_test`] of the store against a plain reference
//! model of the documented semantics.
//!
//! A store crate runs all of it with one macro call from its
//! `tests/conformance.rs`, giving a factory (an async fn or closure) that
//! returns a fresh, isolated store — for an embedded store one in a new
//! temporary directory, for Redis one under a unique key prefix:
//!
//! ```ignore
//! // crates/sessionkit-redb/tests/conformance.rs
//! async fn fresh() -> sessionkit_store_tests::Fixture<sessionkit_redb::RedbStore> {
//!     let dir = tempfile::tempdir().expect("temp dir");
//!     let store = sessionkit_redb::RedbStore::open(dir.path()).await.expect("open");
//!     // The guard (the directory) is dropped after the store.
//!     sessionkit_store_tests::Fixture::with_guard(store, dir)
//! }
//!
//! sessionkit_store_tests::conformance_tests!(fresh);
//! ```
//!
//! A factory may return the store itself or a [`Fixture`] holding the store
//! and a guard to drop after it. The macro expands to a module
//! `conformance` with one `#[test]` per case (each on its own multi-thread
//! tokio runtime with 4 workers, as `#[tokio::test(flavor = "multi_thread",
//! worker_threads = 4)]` would) and a `model_test`. Only this crate is
//! needed as a dev-dependency.
//!
//! Conventions the cases rely on: stores never read a clock (`now` is a
//! parameter, so every time in the suite is a chosen [`Millis`]); records
//! are built by hand ([`support::session`]); races start their tasks
//! together behind a [`tokio::sync::Barrier`] and repeat
//! [`cases::concurrency::ROUNDS`] times, each round checking an invariant
//! that holds for every interleaving of atomic operations.
//!
//! ## What the suite pins where the trait documentation is terse
//!
//! - **Outcome precedence.** `create`: `Duplicate` before any cap.
//!   `update`: `NotLive` (unknown, other tenant, revoked, expired) before
//!   `VersionMismatch`. `upgrade`: `NotLive` (including a wrong token hash
//!   or another tenant) before `VersionMismatch`, before `Duplicate`, before
//!   `SubjectLimitReached`.
//! - **Keys.** A tombstone keeps its id and token hash: a create or upgrade
//!   reusing either is `Duplicate` until the tombstone is purged. Whether
//!   two *tenants* may hold the same id or token hash is not pinned.
//! - **Caps.** Per-subject caps count live sessions only (not expired, not
//!   revoked), in that tenant; with `EvictOldest` the least recently seen
//!   go, as many as needed to fit the new one. The anonymous cap counts
//!   *active* anonymous sessions of the tenant (not revoked, not yet purged:
//!   expired ones count until purged), as `Limits::anonymous` says.
//! - **Touch.** `true` means the write is visible to the next read of the
//!   same store (`last_seen_at == at`); `false` means nothing changed.
//! - **Update** changes the attributes and the version and nothing else
//!   (not `last_seen_at`).
//! - **Purge.** `Purged::expired` is the record's liveness at the purge's
//!   `now` (`Absolute` when both deadlines have passed).
//! - **Lists** order by `(created_at, id)` descending; a cursor is a
//!   position, valid even after its session is revoked.
//! - **Not pinned:** the order of the ids in `evicted` and
//!   purge results; which of equally old sessions is evicted; which due
//!   records a purge bounded by `max` removes (any `min(max, due)` of them).
//!
//! [`SessionStore`]: sessionkit_core::SessionStore
//! [`StoreAdmin`]: sessionkit_core::StoreAdmin
//! [`Millis`]: sessionkit_core::Millis
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::any::Any;

use sessionkit_core::StoreAdmin;

pub mod cases;
pub mod model;
pub mod outage;
pub mod support;

pub use cases::caps::*;
pub use cases::concurrency::{
    concurrent_anonymous_creates_respect_cap, concurrent_creates_respect_cap_evict,
    concurrent_creates_respect_cap_refuse, concurrent_updates_one_winner,
    concurrent_upgrades_one_winner, touch_racing_revoke_never_revives,
    update_racing_revoke_never_revives, upgrade_racing_revoke,
};
pub use cases::expiry::*;
pub use cases::grants::*;
pub use cases::lifecycle::*;
pub use cases::list::*;
pub use cases::purge::*;
pub use cases::refresh::*;
pub use cases::revoke::*;
pub use cases::update::*;
pub use cases::upgrade::*;
pub use model::model_test;
pub use outage::OutageStore;

/// A store under test and what must outlive it (a temporary directory, a
/// key prefix to clean up on drop…). Dropped store first, then guard.
pub struct Fixture<S> {
    store: S,
    guard: Option<Box<dyn Any + Send>>,
}

impl<S> Fixture<S> {
    /// A fixture with nothing to keep alive.
    pub fn new(store: S) -> Self {
        Fixture { store, guard: None }
    }

    /// A fixture whose `guard` is dropped after the store.
    pub fn with_guard(store: S, guard: impl Any + Send) -> Self {
        Fixture {
            store,
            guard: Some(Box::new(guard)),
        }
    }

    /// The store and the guard; drop the guard after the store.
    pub fn into_parts(self) -> (S, Option<Box<dyn Any + Send>>) {
        (self.store, self.guard)
    }
}

impl<S> std::fmt::Debug for Fixture<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture")
            .field("guard", &self.guard.is_some())
            .finish_non_exhaustive()
    }
}

/// What a factory may return: a store, or a [`Fixture`].
pub trait IntoFixture {
    /// The store type.
    type Store: StoreAdmin;
    /// Wraps it as a fixture.
    fn into_fixture(self) -> Fixture<Self::Store>;
}

impl<S: StoreAdmin> IntoFixture for S {
    type Store = S;
    fn into_fixture(self) -> Fixture<S> {
        Fixture::new(self)
    }
}

impl<S: StoreAdmin> IntoFixture for Fixture<S> {
    type Store = S;
    fn into_fixture(self) -> Fixture<S> {
        self
    }
}

/// What the macro expands to needs; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use tokio;

    /// The `run_if` condition of [`conformance_tests!`](crate::conformance_tests)
    /// (a call, so that a constant `true` draws no lint).
    #[must_use]
    pub fn enabled(run: bool) -> bool {
        run
    }

    /// Runs `fut` to completion on a fresh multi-thread runtime with 4
    /// workers, as `#[tokio::test(flavor = "multi_thread", worker_threads =
    /// 4)]` does.
    pub fn run<F: std::future::Future>(fut: F) -> F::Output {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(fut)
    }

    /// Builds the fixture from the factory's output and runs one case.
    pub async fn case<T, C, Fut>(made: T, case: C)
    where
        T: crate::IntoFixture,
        C: FnOnce(T::Store) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let (store, guard) = made.into_fixture().into_parts();
        case(store).await;
        drop(guard);
    }
}

/// Expands to a module `conformance` with one `#[test]` per conformance
/// case and the [`model_test`], each run against a fresh store from
/// `factory` — an async fn or closure (`|| async { … }`) returning a store
/// or a [`Fixture`]. See the crate documentation.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr $(,)?) => {
        $crate::conformance_tests!($factory, run_if = true);
    };
    // `run_if`: a `bool` expression checked at the start of every case; when
    // false the case returns at once (a remote store skips when its server
    // is not configured — the factory or the condition prints why).
    ($factory:expr, run_if = $run_if:expr $(,)?) => {
        $crate::__conformance_cases! {
            ($factory) ($run_if)
            create_then_get
            tenant_isolation
            duplicate_on_create
            clock_floor_never_goes_down
            persist_clock_floor_raises_floor
            counts_by_tenant
            expiry_idle_boundary
            expiry_absolute_boundary
            writes_refused_at_deadline
            touch_moves_last_seen_forward
            touch_refused_when_not_live
            touch_never_extends_past_absolute
            update_compare_and_set
            update_not_live
            subject_cap_evicts_oldest
            subject_cap_refuses
            expired_sessions_do_not_count
            anonymous_cap
            upgrade_replaces_session
            upgrade_refuses_not_live
            upgrade_version_mismatch
            upgrade_duplicate
            upgrade_applies_cap
            retire_is_idempotent_for_its_successor
            retire_version_mismatch
            replaced_session_is_not_counted_or_evicted
            revoke_outcomes
            revoke_subject_all
            revoke_subject_except
            list_live_newest_first
            list_pagination
            list_subjects_with_live_sessions
            purge_removes_due_records
            purge_respects_max
            concurrent_upgrades_one_winner
            touch_racing_revoke_never_revives
            update_racing_revoke_never_revives
            concurrent_updates_one_winner
            concurrent_creates_respect_cap_evict
            concurrent_creates_respect_cap_refuse
            concurrent_anonymous_creates_respect_cap
            upgrade_racing_revoke
            refresh_rotates
            refresh_replay_in_grace
            refresh_reuse_after_grace_revokes
            refresh_reuse_of_grandparent_revokes
            refresh_refused_when_not_live
            concurrent_refreshes_one_successor
            refresh_racing_revoke_never_revives
            grants_compare_and_set
            concurrent_grant_swaps_one_winner
        }
    };
}

/// Implementation detail of [`conformance_tests!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    (($factory:expr) ($run_if:expr) $($case:ident)*) => {
        #[allow(unused_imports)]
        mod conformance {
            use super::*;

            $(
                #[test]
                fn $case() {
                    if !$crate::__private::enabled($run_if) {
                        return;
                    }
                    $crate::__private::run(async {
                        $crate::__private::case(($factory)().await, $crate::$case).await;
                    });
                }
            )*

            #[test]
            fn model_test() {
                if !$crate::__private::enabled($run_if) {
                    return;
                }
                $crate::model_test($factory);
            }
        }
    };
}
