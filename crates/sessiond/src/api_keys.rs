//! API keys: who may call `/v1/*`, for which tenant, with which scopes.
//!
//! A key is `sdk_` + 32 random bytes in base64url, shown once when it is
//! created. Only `SHA-256(domain tag ‖ key)` is kept, in
//! `<data dir>/api-keys.json` (written atomically, mode 0600); lookups hash
//! the presented key and compare hashes in constant time. Keys are never
//! logged and never accepted from a query string.
//!
//! On first start an `admin` key is created and written to
//! `<data dir>/admin.key` (mode 0600). `SESSIOND_ADMIN_KEY` adds an extra
//! admin key held in memory only while the variable is set.
//!
//! Lifecycle: a key may expire (`expires_at`; refused from then on, as if
//! unknown); each key records when it was last used, at most once a minute
//! (`last_used_at`, written to the file by [`ApiKeys::flush_usage`]); and
//! [`ApiKeys::rotate`] replaces a key with a new secret while the old one
//! keeps working for an overlap, so callers can switch without downtime.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use sessionkit_core::crypto::ct_eq;
use sessionkit_core::{Millis, TenantId};

use crate::fsutil::write_atomic;

/// File holding the hashed keys.
pub const API_KEYS_FILE: &str = "api-keys.json";
/// File holding the admin key created on first start.
pub const ADMIN_KEY_FILE: &str = "admin.key";
/// Shortest `SESSIOND_ADMIN_KEY` accepted.
pub const MIN_ENV_ADMIN_KEY: usize = 32;
/// Longest presented key that is even hashed.
const MAX_PRESENTED: usize = 512;
/// Domain tag of the stored hash; short so that tag + a 47-byte key fit
/// one SHA-256 block.
const HASH_TAG: &[u8] = b"sdk/v1\0";

/// One permission of an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `sessions:validate`: validate tokens.
    Validate,
    /// `sessions:read`: read sessions and lists.
    Read,
    /// `sessions:write`: create, upgrade, revoke, patch, delete.
    Write,
    /// `admin`: everything, incl. stats, purge and API keys.
    Admin,
    /// `upstream`: keep and use upstream grants (with the session's token).
    Upstream,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 5] = [
        Scope::Validate,
        Scope::Read,
        Scope::Write,
        Scope::Admin,
        Scope::Upstream,
    ];

    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Validate => "sessions:validate",
            Scope::Read => "sessions:read",
            Scope::Write => "sessions:write",
            Scope::Admin => "admin",
            Scope::Upstream => "upstream",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    const fn bit(self) -> u8 {
        match self {
            Scope::Validate => 1,
            Scope::Read => 2,
            Scope::Write => 4,
            Scope::Admin => 8,
            Scope::Upstream => 16,
        }
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// Builds a set.
    #[must_use]
    pub fn of(scopes: &[Scope]) -> Self {
        Scopes(scopes.iter().fold(0, |a, s| a | s.bit()))
    }

    /// Whether `scope` is granted (`admin` grants everything).
    #[must_use]
    pub fn allows(self, scope: Scope) -> bool {
        self.0 & (scope.bit() | Scope::Admin.bit()) != 0
    }

    /// The wire names, in a fixed order.
    #[must_use]
    pub fn names(self) -> Vec<&'static str> {
        Scope::ALL
            .into_iter()
            .filter(|s| self.0 & s.bit() != 0)
            .map(Scope::as_str)
            .collect()
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// What is known about a key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    /// Public id, to list and revoke it.
    pub id: String,
    /// Operator's label.
    pub name: Option<String>,
    /// The tenant whose records it sees.
    pub tenant: TenantId,
    /// Its scopes.
    pub scopes: Scopes,
    /// When it was created.
    pub created_at: Millis,
    /// When it stops working (`None`: never).
    pub expires_at: Option<Millis>,
    /// When it was last used, to the minute.
    pub last_used: LastUsed,
    /// Held in memory only (`SESSIOND_ADMIN_KEY`); never listed or stored.
    pub ephemeral: bool,
}

impl ApiKeyInfo {
    /// A new stored key's info: a fresh id, no expiry, never used.
    fn new(tenant: TenantId, scopes: Scopes, name: Option<String>, now: Millis) -> Self {
        ApiKeyInfo {
            id: uuid::Uuid::now_v7().hyphenated().to_string(),
            name,
            tenant,
            scopes,
            created_at: now,
            expires_at: None,
            last_used: LastUsed::default(),
            ephemeral: false,
        }
    }
}

/// How often a key's last use is recorded.
const USAGE_RESOLUTION_MS: i64 = 60_000;

/// When a key was last used, shared by every copy of its info (so that
/// recording a use needs no write lock). Two are equal whatever they hold:
/// it is bookkeeping, not identity.
#[derive(Clone, Default)]
pub struct LastUsed(Arc<AtomicI64>);

impl LastUsed {
    fn at(ms: Option<i64>) -> Self {
        LastUsed(Arc::new(AtomicI64::new(ms.unwrap_or(i64::MIN))))
    }

    /// The last recorded use (`None`: never used).
    #[must_use]
    pub fn get(&self) -> Option<Millis> {
        let v = self.0.load(Ordering::Relaxed);
        (v != i64::MIN).then(|| Millis::from_millis(v))
    }

    /// Records a use at `now` if the last one is a minute old or more;
    /// whether it did.
    fn record(&self, now: Millis) -> bool {
        let now = now.as_millis();
        let last = self.0.load(Ordering::Relaxed);
        if last != i64::MIN && now.saturating_sub(last) < USAGE_RESOLUTION_MS {
            return false;
        }
        self.0
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

impl PartialEq for LastUsed {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for LastUsed {}

impl std::fmt::Debug for LastUsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.get())
    }
}

/// Why the key file could not be loaded or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyError {
    /// The file is missing on a later start.
    #[error("{0} is missing but the data directory is in use")]
    Missing(String),
    /// The file cannot be decoded.
    #[error("{path} is corrupt: {why}")]
    Corrupt {
        /// The path.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// `SESSIOND_ADMIN_KEY` is too short.
    #[error("SESSIOND_ADMIN_KEY must be at least {MIN_ENV_ADMIN_KEY} characters")]
    EnvKeyTooShort,
    /// The OS random source failed.
    #[error("cannot generate a key: the OS random source failed")]
    Random,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    version: u8,
    keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct StoredKey {
    id: String,
    name: Option<String>,
    tenant: String,
    scopes: Vec<String>,
    hash: String,
    created_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used_at_ms: Option<i64>,
}

type Hash = [u8; 32];

fn hash_key(presented: &str) -> Hash {
    sessionkit_core::crypto::tagged_sha256(HASH_TAG, &[presented.as_bytes()])
}

/// How a key hash is written in the file: unpadded base64url, like every
/// other secret-derived value of sessiond.
fn encode_hash(h: &Hash) -> String {
    URL_SAFE_NO_PAD.encode(h)
}

fn decode_hash(s: &str) -> Option<Hash> {
    let mut out = [0u8; 32];
    match URL_SAFE_NO_PAD.decode_slice(s.as_bytes(), &mut out) {
        Ok(32) => Some(out),
        _ => None,
    }
}

#[derive(Default)]
struct Table {
    by_hash: HashMap<Hash, Arc<ApiKeyInfo>>,
}

/// The API keys of a server.
pub struct ApiKeys {
    table: RwLock<Table>,
    file: Option<PathBuf>,
    /// Serialises writers of the file.
    write: Mutex<()>,
    /// A use was recorded since the file was last written.
    usage_dirty: AtomicBool,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

fn read_table(t: &RwLock<Table>) -> std::sync::RwLockReadGuard<'_, Table> {
    t.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write_table(t: &RwLock<Table>) -> std::sync::RwLockWriteGuard<'_, Table> {
    t.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A key just created: the only moment its secret is seen. Its `Debug`
/// hides the secret.
pub struct NewApiKey {
    /// Its info.
    pub info: ApiKeyInfo,
    /// The secret, to hand to the operator once.
    pub secret: String,
}

/// API keys: `sdk_` and 32 random bytes, like session tokens.
enum ApiKeyKind {}

impl sessionkit_core::token::TokenKind for ApiKeyKind {
    const PREFIX: &'static str = "sdk_";
    const HASH_TAG: &'static [u8] = HASH_TAG;
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("info", &self.info)
            .field("secret", &"[redacted]")
            .finish()
    }
}

fn new_secret() -> Result<String, ApiKeyError> {
    let key =
        sessionkit_core::token::Token::<ApiKeyKind>::generate().map_err(|_| ApiKeyError::Random)?;
    Ok(key.expose_secret())
}

impl ApiKeys {
    /// A key table kept in memory only (tests, embedding).
    #[must_use]
    pub fn in_memory() -> Self {
        ApiKeys {
            table: RwLock::default(),
            file: None,
            write: Mutex::new(()),
            usage_dirty: AtomicBool::new(false),
        }
    }

    /// Loads `<data dir>/api-keys.json`; on first start creates it with one
    /// admin key, written to `<data dir>/admin.key`. Returns the table and,
    /// on first start, the new admin key.
    pub fn load_or_create(
        data_dir: &Path,
        first_start: bool,
        now: Millis,
    ) -> Result<(Self, Option<NewApiKey>), ApiKeyError> {
        let path = data_dir.join(API_KEYS_FILE);
        let p = path.display().to_string();
        let keys = ApiKeys {
            table: RwLock::default(),
            file: Some(path.clone()),
            write: Mutex::new(()),
            usage_dirty: AtomicBool::new(false),
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let f: FileV1 =
                    serde_json::from_slice(&bytes).map_err(|e| ApiKeyError::Corrupt {
                        path: p.clone(),
                        why: e.to_string(),
                    })?;
                let mut t = write_table(&keys.table);
                for k in f.keys {
                    let corrupt = |why: &str| ApiKeyError::Corrupt {
                        path: p.clone(),
                        why: format!("key {}: {why}", k.id),
                    };
                    let hash = decode_hash(&k.hash).ok_or_else(|| corrupt("bad hash"))?;
                    let tenant = TenantId::new(&k.tenant).map_err(|_| corrupt("bad tenant"))?;
                    let mut scopes = Vec::new();
                    for s in &k.scopes {
                        scopes.push(Scope::parse(s).ok_or_else(|| corrupt("bad scope"))?);
                    }
                    t.by_hash.insert(
                        hash,
                        Arc::new(ApiKeyInfo {
                            id: k.id.clone(),
                            name: k.name.clone(),
                            tenant,
                            scopes: Scopes::of(&scopes),
                            created_at: Millis::from_millis(k.created_at_ms),
                            expires_at: k.expires_at_ms.map(Millis::from_millis),
                            last_used: LastUsed::at(k.last_used_at_ms),
                            ephemeral: false,
                        }),
                    );
                }
                drop(t);
                Ok((keys, None))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && first_start => {
                let secret = new_secret()?;
                let admin_path = data_dir.join(ADMIN_KEY_FILE);
                write_atomic(&admin_path, format!("{secret}\n").as_bytes()).map_err(|source| {
                    ApiKeyError::Io {
                        path: admin_path.display().to_string(),
                        source,
                    }
                })?;
                let info = ApiKeyInfo::new(
                    TenantId::DEFAULT,
                    Scopes::of(&[Scope::Admin]),
                    Some("admin (created on first start)".into()),
                    now,
                );
                keys.insert(&secret, &info);
                keys.persist()?;
                Ok((keys, Some(NewApiKey { info, secret })))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ApiKeyError::Missing(p)),
            Err(source) => Err(ApiKeyError::Io { path: p, source }),
        }
    }

    /// Adds the `SESSIOND_ADMIN_KEY` admin key (memory only).
    pub fn add_env_admin_key(&self, key: &str, now: Millis) -> Result<(), ApiKeyError> {
        if key.chars().count() < MIN_ENV_ADMIN_KEY || key.len() > MAX_PRESENTED {
            return Err(ApiKeyError::EnvKeyTooShort);
        }
        let mut info = ApiKeyInfo::new(
            TenantId::DEFAULT,
            Scopes::of(&[Scope::Admin]),
            Some("SESSIOND_ADMIN_KEY".into()),
            now,
        );
        info.ephemeral = true;
        self.insert(key, &info);
        Ok(())
    }

    /// Adds `info` under the hash of `secret`; returns the hash (to undo).
    fn insert(&self, secret: &str, info: &ApiKeyInfo) -> Hash {
        let h = hash_key(secret);
        write_table(&self.table)
            .by_hash
            .insert(h, Arc::new(info.clone()));
        h
    }

    /// The key a caller presented at `now`, if it is one of ours and has
    /// not expired; records the use (to the minute).
    #[must_use]
    pub fn authenticate(&self, presented: &str, now: Millis) -> Option<Arc<ApiKeyInfo>> {
        if presented.is_empty() || presented.len() > MAX_PRESENTED {
            return None;
        }
        let h = hash_key(presented);
        let t = read_table(&self.table);
        let (stored, info) = t.by_hash.get_key_value(&h)?;
        if !ct_eq(stored, &h) || info.expires_at.is_some_and(|e| e <= now) {
            return None;
        }
        if info.last_used.record(now) && !info.ephemeral {
            self.usage_dirty.store(true, Ordering::Relaxed);
        }
        Some(Arc::clone(info))
    }

    /// Writes the recorded last uses to the file, if any changed since the
    /// last write (called every minute and at shutdown).
    ///
    /// # Errors
    /// The file could not be written (the uses stay recorded in memory).
    pub fn flush_usage(&self) -> Result<(), ApiKeyError> {
        if !self.usage_dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        self.persist()
            .inspect_err(|_| self.usage_dirty.store(true, Ordering::Relaxed))
    }

    /// Replaces the stored key `id` of `tenant`: a new key (new id and
    /// secret, same tenant, scopes and name) is created, and the old one
    /// keeps working until `now + overlap` (or its own earlier expiry).
    /// `None` if there is no such key. Persisted before it returns.
    ///
    /// # Errors
    /// The file could not be written (nothing changed).
    pub fn rotate(
        &self,
        tenant: TenantId,
        id: &str,
        overlap: sessionkit_core::DurationMs,
        now: Millis,
    ) -> Result<Option<NewApiKey>, ApiKeyError> {
        let _w = self
            .write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = read_table(&self.table)
            .by_hash
            .iter()
            .find(|(_, i)| i.id == id && i.tenant == tenant && !i.ephemeral)
            .map(|(h, i)| (*h, Arc::clone(i)));
        let Some((old_hash, old)) = old else {
            return Ok(None);
        };
        let secret = new_secret()?;
        let mut info = ApiKeyInfo::new(tenant, old.scopes, old.name.clone(), now);
        info.expires_at = old.expires_at;
        let until = now.saturating_add(overlap);
        let mut retiring = (*old).clone();
        retiring.expires_at = Some(old.expires_at.map_or(until, |e| e.min(until)));
        let new_hash = self.insert(&secret, &info);
        write_table(&self.table)
            .by_hash
            .insert(old_hash, Arc::new(retiring));
        if let Err(e) = self.persist_locked() {
            let mut t = write_table(&self.table);
            t.by_hash.remove(&new_hash);
            t.by_hash.insert(old_hash, old);
            return Err(e);
        }
        Ok(Some(NewApiKey { info, secret }))
    }

    /// Creates a key for `tenant` (expiring at `expires_at`, if given) and
    /// persists the table before returning.
    pub fn create(
        &self,
        tenant: TenantId,
        scopes: Scopes,
        name: Option<String>,
        expires_at: Option<Millis>,
        now: Millis,
    ) -> Result<NewApiKey, ApiKeyError> {
        let _w = self
            .write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let secret = new_secret()?;
        let mut info = ApiKeyInfo::new(tenant, scopes, name, now);
        info.expires_at = expires_at;
        let h = self.insert(&secret, &info);
        if let Err(e) = self.persist_locked() {
            write_table(&self.table).by_hash.remove(&h);
            return Err(e);
        }
        Ok(NewApiKey { info, secret })
    }

    /// The stored keys of `tenant`, oldest first.
    #[must_use]
    pub fn list(&self, tenant: TenantId) -> Vec<ApiKeyInfo> {
        let t = read_table(&self.table);
        let mut v: Vec<ApiKeyInfo> = t
            .by_hash
            .values()
            .filter(|i| i.tenant == tenant && !i.ephemeral)
            .map(|i| (**i).clone())
            .collect();
        v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        v
    }

    /// Revokes the stored key `id` of `tenant`; whether it existed.
    pub fn revoke(&self, tenant: TenantId, id: &str) -> Result<bool, ApiKeyError> {
        let _w = self
            .write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let removed = {
            let mut t = write_table(&self.table);
            let found = t
                .by_hash
                .iter()
                .find(|(_, i)| i.id == id && i.tenant == tenant && !i.ephemeral)
                .map(|(h, i)| (*h, Arc::clone(i)));
            if let Some((h, _)) = &found {
                t.by_hash.remove(h);
            }
            found
        };
        let Some((h, info)) = removed else {
            return Ok(false);
        };
        if let Err(e) = self.persist_locked() {
            write_table(&self.table).by_hash.insert(h, info);
            return Err(e);
        }
        Ok(true)
    }

    fn persist(&self) -> Result<(), ApiKeyError> {
        let _w = self
            .write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.persist_locked()
    }

    fn persist_locked(&self) -> Result<(), ApiKeyError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let mut keys: Vec<StoredKey> = read_table(&self.table)
            .by_hash
            .iter()
            .filter(|(_, i)| !i.ephemeral)
            .map(|(h, i)| StoredKey {
                id: i.id.clone(),
                name: i.name.clone(),
                tenant: i.tenant.as_str().to_owned(),
                scopes: i.scopes.names().into_iter().map(String::from).collect(),
                hash: encode_hash(h),
                created_at_ms: i.created_at.as_millis(),
                expires_at_ms: i.expires_at.map(Millis::as_millis),
                last_used_at_ms: i.last_used.get().map(Millis::as_millis),
            })
            .collect();
        keys.sort_by(|a, b| a.id.cmp(&b.id));
        let text = serde_json::to_vec_pretty(&FileV1 { version: 1, keys }).map_err(|e| {
            ApiKeyError::Io {
                path: path.display().to_string(),
                source: std::io::Error::other(e),
            }
        })?;
        write_atomic(path, &text).map_err(|source| ApiKeyError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_then_reload() {
        let d = tempfile::tempdir().unwrap();
        let now = Millis::from_millis(1);
        let (keys, admin) = ApiKeys::load_or_create(d.path(), true, now).unwrap();
        let admin = admin.unwrap();
        let on_disk = std::fs::read_to_string(d.path().join(ADMIN_KEY_FILE)).unwrap();
        assert_eq!(on_disk.trim(), admin.secret);
        let file = std::fs::read_to_string(d.path().join(API_KEYS_FILE)).unwrap();
        assert!(!file.contains(&admin.secret));
        assert!(keys.authenticate(&admin.secret, now).is_some());
        let k = keys
            .create(
                TenantId::DEFAULT,
                Scopes::of(&[Scope::Read]),
                None,
                None,
                now,
            )
            .unwrap();
        let (again, none) = ApiKeys::load_or_create(d.path(), false, now).unwrap();
        assert!(none.is_none());
        let info = again.authenticate(&k.secret, now).unwrap();
        assert!(info.scopes.allows(Scope::Read));
        assert!(!info.scopes.allows(Scope::Write));
        assert!(again.revoke(TenantId::DEFAULT, &k.info.id).unwrap());
        let (third, _) = ApiKeys::load_or_create(d.path(), false, now).unwrap();
        assert!(third.authenticate(&k.secret, now).is_none());
        assert!(third.authenticate(&admin.secret, now).is_some());
        assert!(third.authenticate("", now).is_none());
    }

    #[test]
    fn env_key_is_memory_only() {
        let keys = ApiKeys::in_memory();
        assert!(
            keys.add_env_admin_key("short", Millis::from_millis(0))
                .is_err()
        );
        let k = "x".repeat(32);
        keys.add_env_admin_key(&k, Millis::from_millis(0)).unwrap();
        assert!(
            keys.authenticate(&k, Millis::from_millis(0))
                .unwrap()
                .scopes
                .allows(Scope::Admin)
        );
        assert!(keys.list(TenantId::DEFAULT).is_empty());
    }

    #[test]
    fn expiry_last_use_and_rotation_survive_a_reload() {
        let d = tempfile::tempdir().unwrap();
        let t0 = Millis::from_millis(1_000_000);
        let at = |s: i64| Millis::from_millis(1_000_000 + s * 1000);
        let (keys, _) = ApiKeys::load_or_create(d.path(), true, t0).unwrap();
        let short = keys
            .create(
                TenantId::DEFAULT,
                Scopes::of(&[Scope::Read]),
                Some("short".into()),
                Some(at(60)),
                t0,
            )
            .unwrap();
        assert!(keys.authenticate(&short.secret, at(59)).is_some());
        assert!(
            keys.authenticate(&short.secret, at(60)).is_none(),
            "expired"
        );

        // Last use: recorded at most once a minute, written by flush_usage.
        let k = keys
            .create(
                TenantId::DEFAULT,
                Scopes::of(&[Scope::Write]),
                Some("app".into()),
                None,
                t0,
            )
            .unwrap();
        assert!(keys.authenticate(&k.secret, at(10)).is_some());
        assert!(keys.authenticate(&k.secret, at(20)).is_some());
        let used = |keys: &ApiKeys| {
            keys.list(TenantId::DEFAULT)
                .into_iter()
                .find(|i| i.id == k.info.id)
                .and_then(|i| i.last_used.get())
        };
        assert_eq!(used(&keys), Some(at(10)), "not again within the minute");
        assert!(keys.authenticate(&k.secret, at(75)).is_some());
        assert_eq!(used(&keys), Some(at(75)));
        keys.flush_usage().unwrap();

        // Rotation: a new key, the old one valid for the overlap only.
        let new = keys
            .rotate(
                TenantId::DEFAULT,
                &k.info.id,
                sessionkit_core::DurationMs::from_secs(300),
                at(100),
            )
            .unwrap()
            .unwrap();
        assert_ne!(new.info.id, k.info.id);
        assert_eq!(
            (new.info.scopes, new.info.name.as_deref()),
            (k.info.scopes, Some("app"))
        );
        assert!(
            keys.rotate(
                TenantId::DEFAULT,
                "nope",
                sessionkit_core::DurationMs::from_secs(1),
                at(100)
            )
            .unwrap()
            .is_none()
        );
        let other = TenantId::new("other").unwrap();
        assert!(
            keys.rotate(
                other,
                &k.info.id,
                sessionkit_core::DurationMs::from_secs(1),
                at(100)
            )
            .unwrap()
            .is_none()
        );

        let (again, _) = ApiKeys::load_or_create(d.path(), false, at(101)).unwrap();
        assert_eq!(used(&again), Some(at(75)), "last use persisted");
        assert!(
            again.authenticate(&k.secret, at(399)).is_some(),
            "old key in its overlap"
        );
        assert!(
            again.authenticate(&k.secret, at(400)).is_none(),
            "old key after it"
        );
        assert!(again.authenticate(&new.secret, at(10_000)).is_some());
        assert!(
            again.authenticate(&short.secret, at(1)).is_some(),
            "expiry persisted"
        );
        assert!(again.authenticate(&short.secret, at(61)).is_none());
    }
}
