//! [`RedbStore`]: opening a data directory, and the [`SessionStore`]
//! methods — reads straight from the in-memory index, writes through the
//! group-commit writer.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sessionkit_core::store::{
    Change, Counts, CreateOutcome, GrantSwap, GrantSwapRequest, Limits, ListCursor, Purged,
    RefreshOutcome, RefreshRequest, RetireOutcome, RetireRequest, RevokeOutcome,
    RevokeSubjectOutcome, UpdateOutcome,
};
use sessionkit_core::{
    Millis, RevokeReason, SessionId, SessionRecord, SessionStore, StoreAdmin, StoreError,
    StoreResult, Subject, TenantId, TokenHash,
};
use sessionkit_memory::MemoryStore;
use tokio::sync::oneshot;

use crate::db::{self, DbConfig, SkippedRecord};
use crate::error::{Closed, OpenError};
use crate::lock::DirLock;
use crate::writer::{Counters, Op, TouchSet, Writer, WriterConfig, lock};

/// Options for [`RedbStore::open_with`]. Built with `with_*` methods from
/// [`RedbOptions::default`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedbOptions {
    cache_bytes: usize,
    verify_on_open: bool,
    max_batch: usize,
    touch_delay: Duration,
    reopen_interval: Duration,
    gather: Duration,
    #[cfg(test)]
    pub(crate) fault: Option<Arc<crate::fault::Fault>>,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            cache_bytes: 64 * 1024 * 1024,
            verify_on_open: true,
            max_batch: 1024,
            touch_delay: Duration::from_millis(500),
            reopen_interval: Duration::from_millis(100),
            gather: Duration::from_micros(500),
            #[cfg(test)]
            fault: None,
        }
    }
}

impl RedbOptions {
    /// redb's page cache, in bytes (default 64 MiB). Reads are served from
    /// memory, so the cache only serves writes and the load on open.
    pub fn with_cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Whether to verify the checksum of every page when opening (default
    /// `true`). With it, a file damaged outside redb is refused with
    /// [`OpenError::Corrupt`]; without it, redb trusts a cleanly closed file.
    /// Costs one read of the file per open.
    pub fn with_verify_on_open(mut self, verify: bool) -> Self {
        self.verify_on_open = verify;
        self
    }

    /// Whether pages are verified on open (see [`Self::with_verify_on_open`]).
    #[must_use]
    pub fn verify(&self) -> bool {
        self.verify_on_open
    }

    /// Most operations in one group commit (default 1024).
    pub fn with_max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }

    /// How long queued touches wait for another write to ride with before
    /// they get a commit of their own (default 500 ms). A crash loses at
    /// most this much touch activity; that only shortens idle windows.
    pub fn with_touch_delay(mut self, d: Duration) -> Self {
        self.touch_delay = d;
        self
    }

    /// The longest the writer waits, after a commit, for the callers it
    /// just answered to send their next write, so they share the next
    /// commit (default 500 µs; an fsync here takes 1–4 ms). Zero commits
    /// whatever has arrived at once.
    pub fn with_gather_window(mut self, d: Duration) -> Self {
        self.gather = d;
        self
    }

    /// After a failed write, the least time between attempts to reopen the
    /// file (default 100 ms; it doubles while attempts keep failing, up to
    /// 5 s, since each may read the whole file). Writes in between fail at
    /// once.
    pub fn with_reopen_interval(mut self, d: Duration) -> Self {
        self.reopen_interval = d;
        self
    }
}

/// What [`RedbStore::open`] found in the file.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct OpenReport {
    /// Records loaded (active sessions and tombstones).
    pub loaded: usize,
    /// Records that could not be read: each session is treated as absent,
    /// its bytes are left on disk untouched.
    pub skipped: Vec<SkippedRecord>,
    /// The persisted clock floor, if any write ever stored one.
    pub clock_floor: Option<Millis>,
    /// Time taken by the open (lock, verify, load, index).
    pub took: Duration,
}

/// Counters of the group-commit writer since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterStats {
    /// Durable commits made (one fsync each).
    pub commits: u64,
    /// Operations answered (including those answered with an error).
    pub ops: u64,
    /// Commits that failed (each failed every operation of its batch).
    pub failed_commits: u64,
}

struct Inner {
    mem: MemoryStore,
    counters: Arc<Counters>,
    tx: Sender<Op>,
    touches: TouchSet,
    closed: AtomicBool,
    healthy: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    report: OpenReport,
    dir: PathBuf,
    // Declared last: released only after the writer has closed the file.
    _lock: DirLock,
}

impl Inner {
    fn close(&self) -> StoreResult<()> {
        let Some(handle) = lock(&self.thread).take() else {
            return Ok(());
        };
        self.closed.store(true, Ordering::Release);
        let (tx, rx) = mpsc::channel();
        // If the writer is gone already, the join below still waits for it.
        let _ = self.tx.send(Op::Close { tx });
        if handle.join().is_err() {
            tracing::error!("session store writer panicked");
        }
        // No reply means the writer died before its final flush: say so
        // rather than report a clean close.
        rx.try_recv().unwrap_or_else(|_| Err(closed()))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(error = %e, "final flush of the session store failed");
        }
    }
}

/// The embedded durable session store: redb under a group-commit writer,
/// with every record indexed in memory (see the crate docs). Clones share
/// one store; the last clone dropped flushes and closes it.
#[derive(Clone)]
pub struct RedbStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("dir", &self.inner.dir)
            .field("records", &self.inner.mem.len())
            .finish()
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable(Box::new(Closed))
}

impl RedbStore {
    /// Opens the store in `dir` (created if missing) with default options.
    pub fn open(dir: &Path) -> Result<RedbStore, OpenError> {
        Self::open_with(dir, RedbOptions::default())
    }

    /// Opens the store in `dir` (created if missing): takes the directory
    /// lock, opens and verifies the file, and loads every record into the
    /// in-memory index.
    pub fn open_with(dir: &Path, opts: RedbOptions) -> Result<RedbStore, OpenError> {
        let started = Instant::now();
        db::private_dir(dir).map_err(|source| OpenError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let dir_lock = DirLock::acquire(dir)?;
        let path = db::db_path(dir);
        let db_cfg = DbConfig {
            cache_bytes: opts.cache_bytes,
            verify: opts.verify_on_open,
            #[cfg(test)]
            fault: opts.fault.clone(),
        };
        let database = db::open_db(&path, &db_cfg)?;
        let mem = MemoryStore::new();
        let loaded = db::load(&database, &path, &mem)?;
        for s in &loaded.skipped {
            tracing::warn!(session = %s.id, error = %s.error, "unreadable session record treated as absent");
        }
        let count = loaded.count;
        if let Some(f) = loaded.floor {
            mem.raise_floor(Millis::from_millis(f));
        }
        let (tx, rx) = mpsc::channel();
        let touches: TouchSet = Arc::new(Mutex::new(HashSet::new()));
        let healthy = Arc::new(AtomicBool::new(true));
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            mem: mem.clone(),
            db: Some(database),
            path,
            cfg: WriterConfig {
                db: db_cfg,
                max_batch: opts.max_batch,
                touch_delay: opts.touch_delay,
                reopen_interval: opts.reopen_interval,
                gather: opts.gather,
            },
            rx,
            touches: touches.clone(),
            healthy: healthy.clone(),
            counters: counters.clone(),
            persisted_floor: loaded.floor,
            suspect: HashSet::new(),
            last_error: None,
            next_reopen: Instant::now(),
            backoff: opts.reopen_interval,
            last_batch: 0,
        };
        let thread = std::thread::Builder::new()
            .name("sessionkit-redb-writer".into())
            .spawn(move || writer.run())
            .map_err(|source| OpenError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        let report = OpenReport {
            loaded: count,
            skipped: loaded.skipped,
            clock_floor: loaded.floor.map(Millis::from_millis),
            took: started.elapsed(),
        };
        Ok(RedbStore {
            inner: Arc::new(Inner {
                mem,
                counters,
                tx,
                touches,
                closed: AtomicBool::new(false),
                healthy,
                thread: Mutex::new(Some(thread)),
                report,
                dir: dir.to_path_buf(),
                _lock: dir_lock,
            }),
        })
    }

    /// What the open found: records loaded, records skipped, time taken.
    #[must_use]
    pub fn open_report(&self) -> &OpenReport {
        &self.inner.report
    }

    /// The data directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Number of records held (active sessions and tombstones).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.mem.len()
    }

    /// Whether the store holds no record.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.inner.mem.is_empty()
    }

    /// Whether the last write reached the disk (for readiness probes):
    /// `false` from a failed commit until the file is writable again.
    #[must_use]
    pub fn writes_healthy(&self) -> bool {
        self.inner.healthy.load(Ordering::Acquire) && !self.inner.closed.load(Ordering::Acquire)
    }

    /// Counters of the group-commit writer since open (commits, operations,
    /// failed commits): `ops / commits` is the mean batch size.
    #[must_use]
    pub fn stats(&self) -> WriterStats {
        let c = &self.inner.counters;
        WriterStats {
            commits: c.commits.load(Ordering::Relaxed),
            ops: c.ops.load(Ordering::Relaxed),
            failed_commits: c.failed_commits.load(Ordering::Relaxed),
        }
    }

    /// Waits until every write sent before it, queued touches included, is
    /// durable.
    pub async fn flush(&self) -> StoreResult<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Op::Flush { tx })?;
        rx.await.map_err(|_| closed())?
    }

    /// Drains the writer (every queued write and touch is committed), closes
    /// the file and stops the writer thread. Blocks until done. Later writes
    /// on any clone fail with [`StoreError::Unavailable`]; reads keep
    /// answering from memory. Calling it again does nothing.
    pub fn flush_and_close(&self) -> StoreResult<()> {
        self.inner.close()
    }

    fn send(&self, op: Op) -> StoreResult<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        self.inner.tx.send(op).map_err(|_| closed())
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> Op,
    ) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx))?;
        rx.await.map_err(|_| closed())?
    }
}

impl SessionStore for RedbStore {
    /// The in-memory index's: versions are kept in 32 bits.
    const MAX_VERSION: u64 = MemoryStore::MAX_VERSION;

    async fn create(
        &self,
        rec: SessionRecord,
        limits: Limits,
        now: Millis,
    ) -> StoreResult<CreateOutcome> {
        self.call(|tx| Op::Create {
            rec,
            limits,
            now,
            tx,
        })
        .await
    }

    async fn get_by_token(
        &self,
        tenant: TenantId,
        hash: &TokenHash,
    ) -> StoreResult<Option<SessionRecord>> {
        self.inner.mem.get_by_token(tenant, hash).await
    }

    async fn get_by_id(
        &self,
        tenant: TenantId,
        id: SessionId,
    ) -> StoreResult<Option<SessionRecord>> {
        self.inner.mem.get_by_id(tenant, id).await
    }

    async fn touch(&self, tenant: TenantId, id: SessionId, at: Millis) -> StoreResult<bool> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let done = self.inner.mem.exclusive(|t| t.touch(tenant, id, at));
        if done {
            let was_empty = {
                let mut set = lock(&self.inner.touches);
                let empty = set.is_empty();
                set.insert(id);
                empty
            };
            if was_empty {
                // Best effort: if the writer is gone the touch stays in
                // memory only, which is all a touch promises.
                let _ = self.inner.tx.send(Op::Touched);
            }
        }
        Ok(done)
    }

    async fn update(
        &self,
        tenant: TenantId,
        id: SessionId,
        expected_version: u64,
        change: Change,
        now: Millis,
    ) -> StoreResult<UpdateOutcome> {
        self.call(|tx| Op::Update {
            tenant,
            id,
            expected_version,
            change,
            now,
            tx,
        })
        .await
    }

    async fn retire(&self, req: RetireRequest) -> StoreResult<RetireOutcome> {
        self.call(|tx| Op::Retire { req, tx }).await
    }

    async fn refresh(&self, req: RefreshRequest) -> StoreResult<RefreshOutcome> {
        self.call(|tx| Op::Refresh { req, tx }).await
    }

    async fn swap_grants(&self, req: GrantSwapRequest) -> StoreResult<GrantSwap> {
        self.call(|tx| Op::SwapGrants { req, tx }).await
    }

    async fn revoke(
        &self,
        tenant: TenantId,
        id: SessionId,
        reason: RevokeReason,
        now: Millis,
    ) -> StoreResult<RevokeOutcome> {
        self.call(|tx| Op::Revoke {
            tenant,
            id,
            reason,
            now,
            tx,
        })
        .await
    }

    async fn revoke_subject(
        &self,
        tenant: TenantId,
        subject: &Subject,
        except: Option<SessionId>,
        reason: RevokeReason,
        now: Millis,
    ) -> StoreResult<RevokeSubjectOutcome> {
        let subject = subject.clone();
        self.call(|tx| Op::RevokeSubject {
            tenant,
            subject,
            except,
            reason,
            now,
            tx,
        })
        .await
    }

    async fn list_subject(
        &self,
        tenant: TenantId,
        subject: &Subject,
        now: Millis,
        after: Option<ListCursor>,
        limit: usize,
    ) -> StoreResult<Vec<SessionRecord>> {
        self.inner
            .mem
            .list_subject(tenant, subject, now, after, limit)
            .await
    }

    async fn purge_expired(&self, now: Millis, max: usize) -> StoreResult<Vec<Purged>> {
        self.call(|tx| Op::Purge { now, max, tx }).await
    }

    async fn clock_floor(&self) -> StoreResult<Millis> {
        Ok(self.inner.mem.floor())
    }

    async fn persist_clock_floor(&self, at: Millis) -> StoreResult<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        self.inner.mem.raise_floor(at);
        // Written with the next batch (or after `touch_delay`), like a
        // touch; nobody waits for it.
        let _ = self.inner.tx.send(Op::Touched);
        Ok(())
    }
}

/// Exact: the figures of the in-memory index, which holds every record.
impl StoreAdmin for RedbStore {
    async fn list_subjects(
        &self,
        tenant: TenantId,
        now: Millis,
        after: Option<&Subject>,
        limit: usize,
    ) -> StoreResult<Vec<(Subject, u64)>> {
        Ok(self
            .inner
            .mem
            .exclusive(|t| t.list_subjects(tenant, now, after, limit)))
    }

    async fn counts(&self, tenant: TenantId) -> StoreResult<Counts> {
        Ok(self.inner.mem.exclusive(|t| t.counts_of(tenant)))
    }
}
