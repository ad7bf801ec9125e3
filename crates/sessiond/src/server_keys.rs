//! The server's own key material: the CSRF and refresh HMAC keys in
//! `<data dir>/server.keys`. (The callers' API keys are another matter:
//! [`crate::api_keys`].)
//!
//! Created once, on first start, with mode 0600; never silently
//! regenerated. A missing key file on a later start (the data dir already
//! holds sessions or API keys) or a corrupt one is an error: new keys would
//! quietly invalidate every CSRF token and refresh token in flight.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sessionkit::EngineKeys;
use sessionkit_core::SecretKey;

use crate::fsutil::write_atomic;

/// File name of the server keys inside the data dir.
pub const SERVER_KEYS_FILE: &str = "server.keys";

/// Why the server keys could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The key file is missing but the data dir is not new.
    #[error(
        "{path} is missing but the data directory is in use; refusing to create new keys (restore the file from a backup)"
    )]
    Missing {
        /// The expected path.
        path: String,
    },
    /// The key file cannot be decoded.
    #[error("{path} is corrupt: {why}")]
    Corrupt {
        /// The path.
        path: String,
        /// What is wrong (never the key material).
        why: &'static str,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The OS random source failed.
    #[error("cannot generate keys: the OS random source failed")]
    Random,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    version: u8,
    csrf: String,
    refresh: String,
    /// Whether `signing.keys` was ever created in this data dir (absent in
    /// files written before access tokens existed): a missing signing key
    /// file is then an error, never a silent new key ring.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    signing_keys: bool,
}

fn read_key_file(path: &Path) -> Result<KeyFile, KeyFileError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| KeyFileError::Io {
        path: p.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|_| KeyFileError::Corrupt {
        path: p,
        why: "not a sessiond key file",
    })
}

/// Whether the data dir has ever had a signing key ring (see
/// [`crate::signing_keys`]).
pub fn signing_keys_recorded(data_dir: &Path) -> Result<bool, KeyFileError> {
    let path = data_dir.join(SERVER_KEYS_FILE);
    if !path.exists() {
        return Ok(false);
    }
    Ok(read_key_file(&path)?.signing_keys)
}

/// Records that the data dir has a signing key ring from now on.
pub fn record_signing_keys(data_dir: &Path) -> Result<(), KeyFileError> {
    let path = data_dir.join(SERVER_KEYS_FILE);
    if !path.exists() {
        // Only an embedding without server keys (tests): nothing to record in.
        return Ok(());
    }
    let mut f = read_key_file(&path)?;
    if f.signing_keys {
        return Ok(());
    }
    f.signing_keys = true;
    let text = serde_json::to_vec(&f).map_err(|e| KeyFileError::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e),
    })?;
    write_atomic(&path, &text).map_err(|source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn decode_key(s: &str, path: &str) -> Result<SecretKey, KeyFileError> {
    let corrupt = |why| KeyFileError::Corrupt {
        path: path.to_owned(),
        why,
    };
    let mut out = [0u8; 32];
    match URL_SAFE_NO_PAD.decode_slice(s.as_bytes(), &mut out) {
        Ok(32) => Ok(SecretKey::from_bytes(out)),
        _ => Err(corrupt("a key is not 32 bytes of base64url")),
    }
}

/// Loads the server keys, or creates them when `first_start` is true and
/// the file does not exist. Returns the keys and whether they were created.
pub fn load_or_create(data_dir: &Path, first_start: bool) -> Result<EngineKeys, KeyFileError> {
    let path = data_dir.join(SERVER_KEYS_FILE);
    let p = path.display().to_string();
    match std::fs::read(&path) {
        Ok(bytes) => {
            let f: KeyFile = serde_json::from_slice(&bytes).map_err(|_| KeyFileError::Corrupt {
                path: p.clone(),
                why: "not a sessiond key file",
            })?;
            if f.version != 1 {
                return Err(KeyFileError::Corrupt {
                    path: p,
                    why: "unknown version",
                });
            }
            Ok(EngineKeys {
                csrf: decode_key(&f.csrf, &p)?,
                refresh: decode_key(&f.refresh, &p)?,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && first_start => {
            let keys = EngineKeys::generate().map_err(|_| KeyFileError::Random)?;
            let f = KeyFile {
                version: 1,
                csrf: URL_SAFE_NO_PAD.encode(keys.csrf.expose_bytes()),
                refresh: URL_SAFE_NO_PAD.encode(keys.refresh.expose_bytes()),
                signing_keys: false,
            };
            let text = serde_json::to_vec(&f).map_err(|e| KeyFileError::Io {
                path: p.clone(),
                source: std::io::Error::other(e),
            })?;
            write_atomic(&path, &text).map_err(|source| KeyFileError::Io { path: p, source })?;
            tracing::info!(path = %path.display(), "created server keys");
            Ok(keys)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(KeyFileError::Missing { path: p })
        }
        Err(source) => Err(KeyFileError::Io { path: p, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_loaded_and_never_regenerated() {
        let d = tempfile::tempdir().unwrap();
        let a = load_or_create(d.path(), true).unwrap();
        let b = load_or_create(d.path(), false).unwrap();
        assert_eq!(a.csrf.expose_bytes(), b.csrf.expose_bytes());
        std::fs::write(d.path().join(SERVER_KEYS_FILE), b"garbage").unwrap();
        assert!(matches!(
            load_or_create(d.path(), false),
            Err(KeyFileError::Corrupt { .. })
        ));
        assert!(matches!(
            load_or_create(d.path(), true),
            Err(KeyFileError::Corrupt { .. })
        ));
        std::fs::remove_file(d.path().join(SERVER_KEYS_FILE)).unwrap();
        assert!(matches!(
            load_or_create(d.path(), false),
            Err(KeyFileError::Missing { .. })
        ));
    }
}
