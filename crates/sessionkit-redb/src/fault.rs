//! Test only: a redb storage backend that fails on demand, to drive the
//! writer's failure path without privileges (no tmpfs needed), including
//! the case a tmpfs cannot show: an fsync that reports failure after the
//! data reached the file.

use std::fs::File;
use std::io;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// What to break.
#[derive(Debug, Default)]
pub(crate) struct Fault(AtomicU8);

impl Fault {
    pub(crate) const NONE: u8 = 0;
    /// Every write and file extension fails with ENOSPC.
    pub(crate) const DISK_FULL: u8 = 1;
    /// Writes go through, every fsync fails with EIO.
    pub(crate) const SYNC_FAILS: u8 = 2;

    pub(crate) fn set(&self, mode: u8) {
        self.0.store(mode, Ordering::SeqCst);
    }

    fn mode(&self) -> u8 {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug)]
pub(crate) struct FaultyBackend {
    inner: FileBackend,
    fault: Arc<Fault>,
}

impl FaultyBackend {
    pub(crate) fn new(file: File, fault: Arc<Fault>) -> Result<Self, redb::DatabaseError> {
        Ok(FaultyBackend {
            inner: FileBackend::new(file)?,
            fault,
        })
    }
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(28)
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        if self.fault.mode() == Fault::DISK_FULL && len > self.inner.len()? {
            return Err(enospc());
        }
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), io::Error> {
        match self.fault.mode() {
            Fault::NONE => self.inner.sync_data(),
            Fault::DISK_FULL => Err(enospc()),
            _ => Err(io::Error::from_raw_os_error(5)),
        }
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        if self.fault.mode() == Fault::DISK_FULL {
            return Err(enospc());
        }
        self.inner.write(offset, data)
    }
    fn close(&self) -> Result<(), io::Error> {
        self.inner.close()
    }
    fn try_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(s, e)
    }
    fn try_lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(s, e)
    }
    fn lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(s, e)
    }
    fn lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(s, e)
    }
    fn unlock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(s, e)
    }
    fn query_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(s, e)
    }
}
