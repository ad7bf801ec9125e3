//! The group-commit writer: one std thread that owns the redb file.
//!
//! Callers send an [`Op`] and await a oneshot reply. The writer takes
//! whatever has queued up (a batch), and for each op decides and applies it
//! on the in-memory index under [`MemoryStore::exclusive`] — exactly the
//! reference semantics — noting the image each touched record had when the
//! batch began. It then writes the resulting records (or deletions) of the
//! whole batch in one redb transaction, commits it durably (fsync), and
//! only then answers every caller of the batch. One fsync serves the batch.
//!
//! If the commit fails (disk full, read-only file system, I/O error), the
//! writer puts the batch's before-images back into memory, answers each op
//! of the batch with [`StoreError::Unavailable`], and closes the file.
//! Before the next batch it reopens the file and reconciles every record
//! the failed batch touched with what the file holds (a failed fsync may
//! still have reached the disk), so memory and file agree again. Reads never
//! go through here and keep working throughout; writes work again as soon
//! as the file can be written, with no restart.
//!
//! Touches are applied to memory by the caller and only queued here (by
//! id): they are written with the next batch, or after `touch_delay` when
//! no other write comes, and nobody waits for them (touches are best-effort).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redb::Database;
use sessionkit_core::store::{
    Change, CreateOutcome, GrantSwap, GrantSwapRequest, Limits, Purged, RefreshOutcome,
    RefreshRequest, RetireOutcome, RetireRequest, RevokeOutcome, RevokeSubjectOutcome,
    UpdateOutcome,
};
use sessionkit_core::{
    Millis, RevokeReason, SessionId, SessionRecord, StoreError, StoreResult, Subject, TenantId,
};
use sessionkit_memory::{Before, Journal, MemoryStore};
use tokio::sync::oneshot;

use crate::db::{self, DbConfig};
use crate::encoding;
use crate::error::WriteFailed;

/// Where the answer to one op goes.
pub(crate) type Reply<T> = oneshot::Sender<StoreResult<T>>;

/// One request to the writer.
pub(crate) enum Op {
    Create {
        rec: SessionRecord,
        limits: Limits,
        now: Millis,
        tx: Reply<CreateOutcome>,
    },
    Update {
        tenant: TenantId,
        id: SessionId,
        expected_version: u64,
        change: Change,
        now: Millis,
        tx: Reply<UpdateOutcome>,
    },
    Retire {
        req: RetireRequest,
        tx: Reply<RetireOutcome>,
    },
    SwapGrants {
        req: GrantSwapRequest,
        tx: Reply<GrantSwap>,
    },
    Refresh {
        req: RefreshRequest,
        tx: Reply<RefreshOutcome>,
    },
    Revoke {
        tenant: TenantId,
        id: SessionId,
        reason: RevokeReason,
        now: Millis,
        tx: Reply<RevokeOutcome>,
    },
    RevokeSubject {
        tenant: TenantId,
        subject: Subject,
        except: Option<SessionId>,
        reason: RevokeReason,
        now: Millis,
        tx: Reply<RevokeSubjectOutcome>,
    },
    Purge {
        now: Millis,
        max: usize,
        tx: Reply<Vec<Purged>>,
    },
    /// Answered once everything sent before it is durable.
    Flush { tx: Reply<()> },
    /// Touches are pending (sent when the touch set stops being empty).
    Touched,
    /// Flush, then stop. Answered on a std channel: the closer blocks on
    /// it, possibly from inside an async runtime.
    Close { tx: SyncReply },
}

/// The reply to a close.
pub(crate) type SyncReply = std::sync::mpsc::Sender<StoreResult<()>>;

/// Ids whose touches are applied in memory but not yet written.
pub(crate) type TouchSet = Arc<Mutex<HashSet<SessionId>>>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Longest wait between two attempts to reopen the file.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// `now + d`, saturating (a huge configured duration must not panic).
fn later(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(86_400 * 365)))
        .unwrap_or(now)
}

/// Counters of the writer, shared with the store for [`crate::RedbStore::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) commits: AtomicU64,
    pub(crate) ops: AtomicU64,
    pub(crate) failed_commits: AtomicU64,
}

/// Tuning of the writer.
#[derive(Debug, Clone)]
pub(crate) struct WriterConfig {
    pub(crate) db: DbConfig,
    pub(crate) max_batch: usize,
    pub(crate) touch_delay: Duration,
    pub(crate) reopen_interval: Duration,
    pub(crate) gather: Duration,
}

type Answer = Box<dyn FnOnce(Result<(), &WriteFailed>) + Send>;

fn answer<T: Send + 'static>(tx: Reply<T>, out: T) -> Answer {
    Box::new(move |res| {
        let msg = match res {
            Ok(()) => Ok(out),
            Err(e) => Err(StoreError::Unavailable(Box::new(e.clone()))),
        };
        // The caller may have stopped waiting; that is fine.
        let _ = tx.send(msg);
    })
}

/// What one batch changed, and how to undo it in memory.
#[derive(Default)]
struct Batch {
    /// The image of each modified record when the batch began (`None`:
    /// it did not exist).
    before: HashMap<SessionId, Option<SessionRecord>>,
    /// Modified records whose image is unknown (purged); a failed batch
    /// leaves them as memory has them and reconciles them on reopen.
    unknown: HashSet<SessionId>,
    /// Every record whose current state must be written.
    dirty: HashSet<SessionId>,
    answers: Vec<Answer>,
    closes: Vec<SyncReply>,
}

impl Batch {
    /// Takes the records an op changed (with their images before it) into
    /// the batch; the first image of a record in the batch is the one kept.
    fn changed(&mut self, journal: Journal) {
        for (id, image) in journal {
            self.dirty.insert(id);
            if self.before.contains_key(&id) || self.unknown.contains(&id) {
                continue;
            }
            match image {
                Before::Absent => {
                    self.before.insert(id, None);
                }
                Before::Record(rec) => {
                    self.before.insert(id, Some(rec));
                }
                Before::Unreadable => {
                    self.unknown.insert(id);
                }
            }
        }
    }

    /// Queues the answer to an op (sent once the batch is durable).
    fn answer<T: Send + 'static>(&mut self, tx: Reply<T>, out: T) {
        self.answers.push(answer(tx, out));
    }
}

/// The writer thread's state.
pub(crate) struct Writer {
    pub(crate) mem: MemoryStore,
    pub(crate) db: Option<Database>,
    pub(crate) path: PathBuf,
    pub(crate) cfg: WriterConfig,
    pub(crate) rx: Receiver<Op>,
    pub(crate) touches: TouchSet,
    pub(crate) healthy: Arc<AtomicBool>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) persisted_floor: Option<i64>,
    /// Records a failed batch touched: reconciled with the file on reopen.
    pub(crate) suspect: HashSet<SessionId>,
    pub(crate) last_error: Option<WriteFailed>,
    pub(crate) next_reopen: Instant,
    /// The wait before the next reopen attempt: doubles while reopening
    /// keeps failing (up to [`MAX_BACKOFF`]), since each attempt may read
    /// the whole file.
    pub(crate) backoff: Duration,
    /// Writes answered by the last commit: their callers are likely to
    /// send again at once.
    pub(crate) last_batch: usize,
}

impl Writer {
    /// Runs until closed or until every sender is gone.
    pub(crate) fn run(mut self) {
        while let Some(batch) = self.next_batch() {
            if self.process(batch) {
                break;
            }
        }
        if let Some(db) = self.db.take()
            && let Err(e) = db.close()
        {
            tracing::warn!(error = %e, "closing the session database");
        }
    }

    fn touches_pending(&self) -> bool {
        !lock(&self.touches).is_empty()
    }

    fn next_batch(&mut self) -> Option<Vec<Op>> {
        // Pending touches, or a failed batch to reconcile, must not wait
        // forever for the next write.
        let wait = if !self.suspect.is_empty() {
            Some(self.backoff.max(Duration::from_millis(10)))
        } else if self.touches_pending() {
            Some(self.cfg.touch_delay)
        } else {
            None
        };
        let first = match wait {
            Some(w) => match self.rx.recv_timeout(w) {
                Ok(op) => op,
                Err(RecvTimeoutError::Timeout) => Op::Touched,
                Err(RecvTimeoutError::Disconnected) => return None,
            },
            None => self.rx.recv().ok()?,
        };
        let mut batch = vec![first];
        self.drain(&mut batch);
        self.gather(&mut batch);
        if wait.is_none()
            && batch.iter().all(|op| matches!(op, Op::Touched))
            && !self.cfg.touch_delay.is_zero()
        {
            // Touches only: give them a chance to ride with the next real
            // write instead of costing an fsync of their own.
            if let Ok(op) = self.rx.recv_timeout(self.cfg.touch_delay) {
                batch.push(op);
                self.drain(&mut batch);
            }
        }
        Some(batch)
    }

    /// Group commit's one subtlety: right after a commit answers `k`
    /// callers, only the first few have sent their next write. Committing
    /// at once would make a small batch now and a large one after it; so
    /// wait (at most `gather`, far less than an fsync) for as many writes as
    /// the last commit answered.
    fn gather(&mut self, batch: &mut Vec<Op>) {
        let target = self.last_batch.min(self.cfg.max_batch);
        if batch.len() >= target || self.cfg.gather.is_zero() {
            return;
        }
        let deadline = later(self.cfg.gather);
        while batch.len() < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.rx.recv_timeout(left) {
                Ok(op) => {
                    batch.push(op);
                    self.drain(batch);
                }
                Err(_) => break,
            }
        }
    }

    fn drain(&self, batch: &mut Vec<Op>) {
        while batch.len() < self.cfg.max_batch {
            match self.rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
    }

    /// Reopens the file after a failed write and makes memory agree with
    /// it for every record the failed batches touched.
    fn reopen(&mut self) -> Result<(), WriteFailed> {
        if Instant::now() < self.next_reopen
            && let Some(e) = &self.last_error
        {
            return Err(e.clone());
        }
        // Until this attempt succeeds, the next one waits longer.
        self.next_reopen = later(self.backoff);
        self.backoff = self
            .backoff
            .saturating_mul(2)
            .min(MAX_BACKOFF.max(self.cfg.reopen_interval));
        let db = db::open_db(&self.path, &self.cfg.db).map_err(WriteFailed::new)?;
        let mut loaded = Vec::with_capacity(self.suspect.len());
        for id in &self.suspect {
            let on_disk = db::read_one(&db, *id).map_err(WriteFailed::new)?;
            loaded.push((*id, on_disk));
        }
        self.backoff = self.cfg.reopen_interval;
        for (id, on_disk) in loaded {
            match on_disk {
                Some(Ok(rec)) => load_or_warn(&self.mem, rec),
                Some(Err(e)) => {
                    tracing::warn!(session = %id, error = %e, "unreadable record treated as absent");
                    self.mem.remove(id);
                }
                None => {
                    self.mem.remove(id);
                }
            }
        }
        self.suspect.clear();
        self.db = Some(db);
        self.healthy.store(true, Ordering::Release);
        tracing::info!("session database writable again");
        Ok(())
    }

    /// Processes one batch; returns whether the store is closing.
    fn process(&mut self, ops: Vec<Op>) -> bool {
        if self.db.is_none()
            && let Err(e) = self.reopen()
        {
            self.last_error = Some(e.clone());
            return fail_unapplied(ops, &e);
        }
        self.last_batch = ops
            .iter()
            .filter(|op| !matches!(op, Op::Touched | Op::Close { .. }))
            .count();
        let mut b = Batch::default();
        for op in ops {
            self.apply(op, &mut b);
        }
        let touched: Vec<SessionId> = lock(&self.touches).drain().collect();
        b.dirty.extend(touched.iter().copied());
        let floor = Some(self.mem.floor().as_millis())
            .filter(|f| Some(*f) != self.persisted_floor && *f != i64::MIN);
        let result = if b.dirty.is_empty() && floor.is_none() {
            Ok(())
        } else {
            let r = self.persist(&b.dirty, floor);
            let c = &self.counters;
            match r {
                Ok(()) => c.commits.fetch_add(1, Ordering::Relaxed),
                Err(_) => c.failed_commits.fetch_add(1, Ordering::Relaxed),
            };
            r
        };
        self.counters
            .ops
            .fetch_add(b.answers.len() as u64, Ordering::Relaxed);
        match result {
            Ok(()) => {
                if floor.is_some() {
                    self.persisted_floor = floor;
                }
                for a in b.answers {
                    a(Ok(()));
                }
                let closing = !b.closes.is_empty();
                for tx in b.closes {
                    let _ = tx.send(Ok(()));
                }
                closing
            }
            Err(e) => {
                tracing::warn!(error = %e, ops = b.answers.len(), "batch not durable; rolled back");
                for (id, img) in b.before.drain() {
                    self.suspect.insert(id);
                    match img {
                        Some(rec) => load_or_warn(&self.mem, rec),
                        None => {
                            self.mem.remove(id);
                        }
                    }
                }
                self.suspect.extend(b.unknown.drain());
                self.suspect.extend(touched);
                // Close the file: redb latches an I/O failure until reopen.
                self.db = None;
                self.healthy.store(false, Ordering::Release);
                self.next_reopen = Instant::now();
                self.last_error = Some(e.clone());
                for a in b.answers {
                    a(Err(&e));
                }
                let closing = !b.closes.is_empty();
                for tx in b.closes {
                    let _ = tx.send(Err(StoreError::Unavailable(Box::new(e.clone()))));
                }
                closing
            }
        }
    }

    fn persist(&self, dirty: &HashSet<SessionId>, floor: Option<i64>) -> Result<(), WriteFailed> {
        let Some(db) = &self.db else {
            return Err(WriteFailed::new(redb::Error::DatabaseClosed));
        };
        let images: Vec<(SessionId, StoreResult<Option<SessionRecord>>)> = self
            .mem
            .exclusive(|t| dirty.iter().map(|id| (*id, t.get(*id))).collect());
        let writes = images
            .into_iter()
            .map(|(id, rec)| {
                // A record that no longer decodes in memory is not written
                // over its last good copy on disk: the batch fails, and the
                // reopen reloads it from the file.
                let rec = rec.map_err(WriteFailed::new)?;
                let bytes = rec
                    .as_ref()
                    .map(encoding::encode)
                    .transpose()
                    .map_err(WriteFailed::new)?;
                Ok((id, bytes))
            })
            .collect::<Result<Vec<(SessionId, Option<Vec<u8>>)>, WriteFailed>>()?;
        db::write_batch(db, &writes, floor).map_err(WriteFailed::new)
    }

    /// Decides and applies one op on the in-memory index, noting what it
    /// changed (and how to undo it) in the batch.
    fn apply(&self, op: Op, b: &mut Batch) {
        let mem = &self.mem;
        match op {
            Op::Create {
                rec,
                limits,
                now,
                tx,
            } => {
                let (out, journal) = mem.exclusive_journaled(|t| t.create(rec, limits, now));
                // Whatever the outcome, what changed is written (or rolled
                // back) with the batch.
                b.changed(journal);
                match out {
                    Ok(out) => b.answer(tx, out),
                    Err(e) => drop(tx.send(Err(e))),
                }
            }
            Op::Update {
                tenant,
                id,
                expected_version,
                change,
                now,
                tx,
            } => {
                let (out, journal) = mem
                    .exclusive_journaled(|t| t.update(tenant, id, expected_version, change, now));
                b.changed(journal);
                match out {
                    Ok(out) => b.answer(tx, out),
                    Err(e) => drop(tx.send(Err(e))),
                }
            }
            Op::Retire { req, tx } => {
                let (out, journal) = mem.exclusive_journaled(|t| t.retire(req));
                b.changed(journal);
                b.answer(tx, out);
            }
            Op::SwapGrants { req, tx } => {
                let (out, journal) = mem.exclusive_journaled(|t| t.swap_grants(req));
                b.changed(journal);
                match out {
                    Ok(out) => b.answer(tx, out),
                    Err(e) => drop(tx.send(Err(e))),
                }
            }
            Op::Refresh { req, tx } => {
                let (out, journal) = mem.exclusive_journaled(|t| t.refresh(req));
                b.changed(journal);
                match out {
                    Ok(out) => b.answer(tx, out),
                    Err(e) => drop(tx.send(Err(e))),
                }
            }
            Op::Revoke {
                tenant,
                id,
                reason,
                now,
                tx,
            } => {
                let (out, journal) = mem.exclusive_journaled(|t| t.revoke(tenant, id, reason, now));
                b.changed(journal);
                b.answer(tx, out);
            }
            Op::RevokeSubject {
                tenant,
                subject,
                except,
                reason,
                now,
                tx,
            } => {
                let (out, journal) = mem.exclusive_journaled(|t| {
                    t.revoke_subject(tenant, &subject, except, reason, now)
                });
                b.changed(journal);
                b.answer(tx, out);
            }
            Op::Purge { now, max, tx } => {
                // One redb transaction, but the in-memory index is changed
                // in chunks, each under its own hold of its lock: a
                // validate's touch (which takes that lock on a runtime
                // worker) never waits for a whole batch.
                let mut out = Vec::new();
                while out.len() < max {
                    let want = (max - out.len()).min(sessionkit_memory::PURGE_CHUNK);
                    let (got, journal) = mem.exclusive_journaled(|t| t.purge_expired(now, want));
                    b.changed(journal);
                    let done = got.len() < want;
                    out.extend(got);
                    if done {
                        break;
                    }
                    std::thread::yield_now();
                }
                b.answer(tx, out);
            }
            Op::Flush { tx } => b.answers.push(answer(tx, ())),
            Op::Touched => {}
            // Answered after the batch's commit.
            Op::Close { tx } => b.closes.push(tx),
        }
    }
}

/// Answers every op of a batch that could not even be started (the file is
/// closed and cannot be reopened yet). Nothing was applied.
fn fail_unapplied(ops: Vec<Op>, e: &WriteFailed) -> bool {
    fn err<T>(e: &WriteFailed) -> StoreResult<T> {
        Err(StoreError::Unavailable(Box::new(e.clone())))
    }
    let mut close = false;
    for op in ops {
        // A caller that stopped waiting is fine.
        match op {
            Op::Create { tx, .. } => drop(tx.send(err(e))),
            Op::Update { tx, .. } => drop(tx.send(err(e))),
            Op::Retire { tx, .. } => drop(tx.send(err(e))),
            Op::SwapGrants { tx, .. } => drop(tx.send(err(e))),
            Op::Refresh { tx, .. } => drop(tx.send(err(e))),
            Op::Revoke { tx, .. } => drop(tx.send(err(e))),
            Op::RevokeSubject { tx, .. } => drop(tx.send(err(e))),
            Op::Purge { tx, .. } => drop(tx.send(err(e))),
            Op::Flush { tx } => drop(tx.send(err(e))),
            Op::Touched => {}
            Op::Close { tx } => {
                close = true;
                drop(tx.send(err(e)));
            }
        }
    }
    close
}

/// Loads a record into the in-memory index; a record that cannot be placed
/// (its shard is full) is logged: that session reads as signed out.
pub(crate) fn load_or_warn(mem: &MemoryStore, rec: sessionkit_core::SessionRecord) {
    let id = rec.id;
    if let Err(e) = mem.load(rec) {
        tracing::error!(session = %id, error = %e, "in-memory index full: session not loaded");
    }
}
