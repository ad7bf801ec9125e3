//! The redb file: its two tables, opening it without trusting it, loading
//! every record, and the one write transaction each batch becomes.
//!
//! Tables:
//! - `sessions`: session id (as a big-endian `u128`, so keys sort by
//!   creation time and inserts append) → encoded record
//!   ([`crate::encoding`]).
//! - `meta`: `format` (the file format, [`FILE_FORMAT`]) and
//!   `clock_floor` (the highest `now` written, Unix ms).
//!
//! The token-hash, subject and expiry indexes are not on disk: they are
//! rebuilt in memory on open, which costs less than keeping them
//! transactionally consistent on disk on every write.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableError};
use sessionkit_core::{SessionId, SessionRecord};
use sessionkit_memory::MemoryStore;

use crate::encoding::{self, DecodeError};
use crate::error::OpenError;

/// Sessions by id.
pub(crate) const SESSIONS: TableDefinition<u128, &[u8]> = TableDefinition::new("sessions");
/// File-level metadata.
pub(crate) const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
/// The file format this build writes and the newest it reads.
pub(crate) const FILE_FORMAT: i64 = 1;
const KEY_FORMAT: &str = "format";
const KEY_FLOOR: &str = "clock_floor";

/// Name of the database file inside the data directory.
pub(crate) const DB_FILE: &str = "sessions.redb";

/// How the database is opened.
#[derive(Debug, Clone)]
pub(crate) struct DbConfig {
    pub(crate) cache_bytes: usize,
    pub(crate) verify: bool,
    /// Test only: I/O faults injected under redb.
    #[cfg(test)]
    pub(crate) fault: Option<std::sync::Arc<crate::fault::Fault>>,
}

impl DbConfig {
    fn builder(&self) -> redb::Builder {
        let mut b = Database::builder();
        b.set_cache_size(self.cache_bytes);
        b.set_check_integrity_on_open(self.verify);
        b
    }

    #[cfg(not(test))]
    fn open(&self, b: &redb::Builder, path: &Path) -> Result<Database, redb::DatabaseError> {
        b.open(path)
    }

    #[cfg(test)]
    fn open(&self, b: &redb::Builder, path: &Path) -> Result<Database, redb::DatabaseError> {
        match &self.fault {
            None => b.open(path),
            Some(f) => {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)?;
                b.create_with_backend(crate::fault::FaultyBackend::new(file, f.clone())?)
            }
        }
    }
}

pub(crate) fn key_of(id: SessionId) -> u128 {
    id.as_u128()
}

pub(crate) fn id_of(key: u128) -> SessionId {
    SessionId::from_bytes(key.to_be_bytes())
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        String::from("panic while reading the file")
    }
}

fn classify(path: &Path, e: redb::Error) -> OpenError {
    match e {
        redb::Error::Corrupted(reason) => OpenError::Corrupt {
            path: path.to_path_buf(),
            reason,
        },
        redb::Error::DatabaseAlreadyOpen => OpenError::InUse {
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            pid: Some(std::process::id()),
        },
        other => OpenError::Database {
            path: path.to_path_buf(),
            source: other,
        },
    }
}

/// Creates a new, initialised database file atomically: built under a
/// temporary name, synced, then renamed into place (and the directory
/// synced). A crash while creating leaves no half-written file behind —
/// redb would refuse one whose header never got written ("magic number
/// mismatch"), so a crash on the very first start would otherwise need a
/// person to delete it.
fn create_new(path: &Path, cfg: &DbConfig) -> Result<(), OpenError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| OpenError::Io { path: p, source }
    };
    let tmp = path.with_extension("redb.creating");
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&tmp)(e)),
    }
    let mut b = Database::builder();
    b.set_cache_size(cfg.cache_bytes.min(1 << 20));
    let db = b.create(&tmp).map_err(|e| classify(&tmp, e.into()))?;
    init(&db).map_err(|e| classify(&tmp, e))?;
    db.close().map_err(|e| classify(&tmp, e.into()))?;
    // Sessions (subjects, attributes, client addresses) are for this user
    // alone, whatever the umask.
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io(&tmp))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

/// Opens (or creates) the database file. With `verify`, redb checks the
/// checksum of every page of the committed trees and reports damage as an
/// error rather than trusting it. A panic inside redb on a damaged file is
/// caught and reported the same way (never propagated to the caller).
/// Creates `dir` (and its parents) with mode 0700 if missing; an existing
/// one that others may read or enter is made private, with a warning.
pub(crate) fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    make_private(dir, 0o700)
}

/// Takes group and other permissions away from `path` (to `mode`), with a
/// warning, when it has any.
pub(crate) fn make_private(path: &Path, mode: u32) -> std::io::Result<()> {
    let now = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if now & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{now:o}"), "was readable by other users; made private");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

pub(crate) fn open_db(path: &Path, cfg: &DbConfig) -> Result<Database, OpenError> {
    match path.try_exists() {
        Ok(true) => make_private(path, 0o600).map_err(|source| OpenError::Io {
            path: path.to_path_buf(),
            source,
        })?,
        Ok(false) => create_new(path, cfg)?,
        Err(source) => {
            return Err(OpenError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    let res = catch_unwind(AssertUnwindSafe(|| cfg.open(&cfg.builder(), path)));
    match res {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(classify(path, e.into())),
        Err(p) => Err(OpenError::Corrupt {
            path: path.to_path_buf(),
            reason: panic_text(&*p),
        }),
    }
}

/// A record that could not be read on open: the session is treated as
/// absent, and the bytes stay on disk untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRecord {
    /// The key it is stored under.
    pub id: SessionId,
    /// Why it was refused.
    pub error: DecodeError,
}

/// What [`load`] found.
pub(crate) struct Loaded {
    pub(crate) count: usize,
    pub(crate) skipped: Vec<SkippedRecord>,
    pub(crate) floor: Option<i64>,
}

/// Records handed from the reading thread to the indexing thread at once.
const CHUNK: usize = 4096;

/// Checks the file format (initialising a file that has none) and loads
/// every record into `mem`. Reading and decoding run on a second thread,
/// pipelined with the indexing here, so an open costs the slower of the
/// two rather than their sum.
pub(crate) fn load(db: &Database, path: &Path, mem: &MemoryStore) -> Result<Loaded, OpenError> {
    let res = catch_unwind(AssertUnwindSafe(|| load_inner(db, path, mem)));
    match res {
        Ok(r) => r,
        Err(p) => Err(OpenError::Corrupt {
            path: path.to_path_buf(),
            reason: panic_text(&*p),
        }),
    }
}

fn load_inner(db: &Database, path: &Path, mem: &MemoryStore) -> Result<Loaded, OpenError> {
    let err = |e: redb::Error| classify(path, e);
    let format = read_meta(db, KEY_FORMAT).map_err(err)?;
    match format {
        Some(f) if f == FILE_FORMAT => {}
        Some(found) => {
            return Err(OpenError::UnsupportedFormat {
                path: path.to_path_buf(),
                found,
                supported: FILE_FORMAT,
            });
        }
        None => init(db).map_err(err)?,
    }
    let floor = read_meta(db, KEY_FLOOR).map_err(err)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<SessionRecord>>(8);
    let (read, count) = std::thread::scope(|scope| {
        let reader = scope.spawn(move || read_all(db, path, &tx));
        let mut count = 0;
        for chunk in rx {
            count += chunk.len();
            for rec in chunk {
                crate::writer::load_or_warn(mem, rec);
            }
        }
        (reader.join(), count)
    });
    let skipped = match read {
        Ok(r) => r?,
        Err(p) => {
            return Err(OpenError::Corrupt {
                path: path.to_path_buf(),
                reason: panic_text(&*p),
            });
        }
    };
    Ok(Loaded {
        count,
        skipped,
        floor,
    })
}

/// Reads and decodes every record, sending them on in chunks; returns the
/// records it could not read.
fn read_all(
    db: &Database,
    path: &Path,
    tx: &std::sync::mpsc::SyncSender<Vec<SessionRecord>>,
) -> Result<Vec<SkippedRecord>, OpenError> {
    let err = |e: redb::Error| classify(path, e);
    let txn = db.begin_read().map_err(|e| err(e.into()))?;
    let table = txn.open_table(SESSIONS).map_err(|e| err(e.into()))?;
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut skipped = Vec::new();
    for entry in table.iter().map_err(|e| err(e.into()))? {
        let (k, v) = entry.map_err(|e| err(e.into()))?;
        let id = id_of(k.value());
        match encoding::decode(id, v.value()) {
            Ok(rec) => chunk.push(rec),
            Err(error) => skipped.push(SkippedRecord { id, error }),
        }
        if chunk.len() == CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if tx.send(full).is_err() {
                break;
            }
        }
    }
    if !chunk.is_empty() {
        let _ = tx.send(chunk);
    }
    Ok(skipped)
}

fn read_meta(db: &Database, key: &str) -> Result<Option<i64>, redb::Error> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(META) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(table.get(key)?.map(|g| g.value()))
}

fn init(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        meta.insert(KEY_FORMAT, FILE_FORMAT)?;
        txn.open_table(SESSIONS)?;
    }
    txn.commit()?;
    Ok(())
}

/// Reads one record (for reconciling memory with the file after a failed
/// write). `Ok(None)` when absent; a record that fails to decode is
/// reported as `Some(Err)`.
pub(crate) fn read_one(
    db: &Database,
    id: SessionId,
) -> Result<Option<Result<SessionRecord, DecodeError>>, redb::Error> {
    let txn = db.begin_read()?;
    let table = txn.open_table(SESSIONS)?;
    Ok(table
        .get(key_of(id))?
        .map(|v| encoding::decode(id, v.value())))
}

/// One batch: the records to write (`Some`) or delete (`None`), and the
/// clock floor, in one durable (fsync'd) transaction.
pub(crate) fn write_batch(
    db: &Database,
    writes: &[(SessionId, Option<Vec<u8>>)],
    floor: Option<i64>,
) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let mut t = txn.open_table(SESSIONS)?;
        for (id, val) in writes {
            match val {
                Some(bytes) => {
                    t.insert(key_of(*id), bytes.as_slice())?;
                }
                None => {
                    t.remove(key_of(*id))?;
                }
            }
        }
        if let Some(f) = floor {
            let mut meta = txn.open_table(META)?;
            meta.insert(KEY_FLOOR, f)?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// The database file of a data directory.
pub(crate) fn db_path(dir: &Path) -> PathBuf {
    dir.join(DB_FILE)
}
