//! # sessionkit-redb
//!
//! The embedded durable session store, and `sessiond`'s default: durable on
//! one machine with no server to run. [`RedbStore`] keeps every record in
//! an in-memory index (the [`MemoryStore`](sessionkit_memory::MemoryStore)),
//! so validation never waits on disk, and writes each change to a
//! [redb](https://docs.rs/redb) file through a group-commit writer: the
//! writes that arrive together share one transaction and one fsync, and
//! each caller is answered only once its change is durable (invariant 4).
//! It survives `kill -9` and power loss with nothing acknowledged lost.
//!
//! ```
//! use sessionkit_redb::RedbStore;
//! use sessionkit_core::{StoreAdmin, TenantId};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = RedbStore::open(dir.path())?;
//! let rt = tokio::runtime::Builder::new_current_thread().build()?;
//! let counts = rt.block_on(store.counts(TenantId::DEFAULT))?;
//! assert_eq!(counts.active, 0);
//! store.flush_and_close()?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Deployment caveats
//! - One process owns a data directory at a time; a second open fails with
//!   [`OpenError::InUse`] naming the owner's pid.
//! - Memory holds every record (active and tombstones) until purged:
//!   schedule `SessionManager::purge_expired` (the engine emits the
//!   `expired` events), e.g. every minute.
//! - A crash loses at most `touch_delay` of touches (best-effort by design:
//!   it only shortens idle windows), never an acknowledged write.
#![doc = ""]
#![doc = include_str!("../README.md")]

mod db;
mod encoding;
mod error;
#[cfg(test)]
mod fault;
/// The record codec, public for the fuzz targets only (not part of the API).
#[doc(hidden)]
pub mod fuzzing;
mod lock;
mod store;
mod writer;

#[cfg(test)]
mod tests;

pub use db::SkippedRecord;
pub use encoding::DecodeError;
pub use error::{Closed, OpenError, WriteFailed};
pub use store::{OpenReport, RedbOptions, RedbStore, WriterStats};

/// The redb crate this store is built on (pinned).
pub use redb;
