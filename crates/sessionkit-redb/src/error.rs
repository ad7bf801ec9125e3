//! Errors of the embedded store: [`OpenError`] when a data directory cannot
//! be opened, and the causes carried inside
//! [`StoreError::Unavailable`](sessionkit_core::StoreError::Unavailable)
//! when a write cannot be made durable.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Why [`RedbStore::open`](crate::RedbStore::open) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another process (or another store in this process) holds the data
    /// directory.
    #[error("data directory {} is already in use {}", .dir.display(), by_pid(*.pid))]
    InUse {
        /// The directory.
        dir: PathBuf,
        /// The owner's process id, when its lock file names one.
        pid: Option<u32>,
    },
    /// The directory or a file in it could not be created, opened or locked.
    #[error("cannot use {}: {source}", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The database file is damaged beyond what redb repairs on open. The
    /// file is left as it is, for inspection or a restore from backup.
    #[error("database file {} is corrupt: {reason}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What redb or our checks found.
        reason: String,
    },
    /// The file was written by a newer release, in a format this one cannot
    /// read.
    #[error("database file {} has format {found}; this build reads up to {supported}", .path.display())]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// The format the file declares.
        found: i64,
        /// The newest format this build reads.
        supported: i64,
    },
    /// redb refused to open or read the file for another reason.
    #[error("cannot open database file {}: {source}", .path.display())]
    Database {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: redb::Error,
    },
}

fn by_pid(pid: Option<u32>) -> String {
    match pid {
        Some(p) => format!("by pid {p}"),
        None => String::from("by another process"),
    }
}

/// The cause of a failed write, shared by every operation of the batch it
/// failed (one redb error, many callers).
#[derive(Clone)]
pub struct WriteFailed(pub(crate) Arc<dyn std::error::Error + Send + Sync + 'static>);

impl WriteFailed {
    pub(crate) fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        WriteFailed(Arc::new(e))
    }
}

impl fmt::Debug for WriteFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for WriteFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "write to the session database failed: {}", self.0)
    }
}

impl std::error::Error for WriteFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// The store was closed ([`RedbStore::flush_and_close`](crate::RedbStore::flush_and_close))
/// or its writer stopped; no more writes are accepted.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the session store is closed")]
pub struct Closed;
