//! The access-token signing keys: a key ring in `<data dir>/signing.keys`
//! (mode 0600), or, for HS256, the secret from the configuration.
//!
//! Created on first start with the configured algorithm (or on the first
//! start of a data dir that never had one: one made before access tokens
//! existed, or run with HS256 until now), and recorded in `server.keys`;
//! never silently regenerated: a missing file once recorded, or a corrupt
//! one, is an error naming the file (new keys would invalidate every access
//! token in flight and hide a lost backup). A configured algorithm that differs from
//! the active key's rotates once (the old key keeps verifying for its
//! grace). Rotation (`sessiond keys rotate`, `POST /v1/keys/rotate`) writes
//! the new ring before it is used.

use std::path::{Path, PathBuf};

use sessionkit::jwt::{KeyRing, KeyRingError, SigningAlgorithm};

use crate::config::TokensConfig;
use crate::fsutil::write_atomic;
use crate::server_keys::KeyFileError;

/// File name of the signing key ring inside the data dir.
pub const SIGNING_KEYS_FILE: &str = "signing.keys";

/// Where the key ring lives, and how it rotates.
#[derive(Debug, Clone)]
pub struct SigningKeys {
    /// The file; `None` when the keys come from the configuration (HS256).
    pub path: Option<PathBuf>,
    /// The algorithm of new keys.
    pub algorithm: SigningAlgorithm,
    /// How long a rotated-out key keeps verifying.
    pub grace_secs: u64,
    /// Held across read, rotate, write and put-in-force: two rotations at
    /// once would otherwise leave different rings on disk and in memory.
    pub rotation: std::sync::Arc<std::sync::Mutex<()>>,
}

fn corrupt(path: &Path, e: &KeyRingError) -> KeyFileError {
    let why = match e {
        KeyRingError::WeakSecret => "an HS256 secret is shorter than 32 bytes",
        _ => "not a sessiond signing key ring",
    };
    KeyFileError::Corrupt {
        path: path.display().to_string(),
        why,
    }
}

/// Loads the key ring, or creates it when `first_start` is true and the
/// file does not exist. An HS256 secret under 32 bytes (or empty) is an
/// error: the server refuses to start.
pub fn load_or_create(
    data_dir: &Path,
    first_start: bool,
    cfg: &TokensConfig,
    now_secs: i64,
) -> Result<(KeyRing, SigningKeys), StartError> {
    let algorithm = cfg
        .algorithm()
        .map_err(|e| StartError::Config(e.to_string()))?;
    let grace_secs = cfg.key_grace_secs();
    if algorithm == SigningAlgorithm::HS256 {
        let ring = KeyRing::from_hs256_secret(cfg.hs256_secret.as_bytes(), now_secs).map_err(
            |_| {
                StartError::Config(
                    "tokens.hs256_secret: HS256 needs a secret of at least 32 bytes (SESSIOND_TOKENS__HS256_SECRET)"
                        .into(),
                )
            },
        )?;
        let keys = SigningKeys {
            path: None,
            algorithm,
            grace_secs,
            rotation: std::sync::Arc::default(),
        };
        return Ok((ring, keys));
    }
    let path = data_dir.join(SIGNING_KEYS_FILE);
    let keys = SigningKeys {
        path: Some(path.clone()),
        algorithm,
        grace_secs,
        rotation: std::sync::Arc::default(),
    };
    let p = path.display().to_string();
    let ring = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let ring = KeyRing::from_file_json(&text).map_err(|e| corrupt(&path, &e))?;
            crate::server_keys::record_signing_keys(data_dir)?;
            let ring = ring.prune(now_secs);
            if ring.active_algorithm() == algorithm {
                ring
            } else {
                let rotated = ring
                    .rotate(algorithm, now_secs, grace_secs)
                    .map_err(|_| KeyFileError::Random)?;
                save(&path, &rotated)?;
                tracing::info!(
                    algorithm = algorithm.as_str(),
                    "signing algorithm changed: rotated to a new key"
                );
                rotated
            }
        }
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && (first_start || !crate::server_keys::signing_keys_recorded(data_dir)?) =>
        {
            let ring = KeyRing::generate(algorithm, now_secs).map_err(|_| KeyFileError::Random)?;
            save(&path, &ring)?;
            crate::server_keys::record_signing_keys(data_dir)?;
            tracing::info!(path = %path.display(), "created the signing key ring");
            ring
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(KeyFileError::Missing { path: p }.into());
        }
        Err(source) => return Err(KeyFileError::Io { path: p, source }.into()),
    };
    Ok((ring, keys))
}

/// Writes a key ring (atomically, mode 0600).
pub fn save(path: &Path, ring: &KeyRing) -> Result<(), KeyFileError> {
    let text = ring.to_file_json();
    write_atomic(path, text.as_bytes()).map_err(|source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Why the signing keys could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The key file.
    #[error(transparent)]
    File(#[from] KeyFileError),
    /// The configuration (an HS256 secret too short, an unknown algorithm).
    #[error("{0}")]
    Config(String),
}

impl SigningKeys {
    /// Rotates: a new active key of the configured algorithm, the old one
    /// verifying for the grace; written to the file before it is returned.
    pub fn rotate(&self, ring: &KeyRing, now_secs: i64) -> Result<KeyRing, RotateError> {
        let Some(path) = &self.path else {
            return Err(RotateError::Configured);
        };
        let new = ring
            .rotate(self.algorithm, now_secs, self.grace_secs)
            .map_err(|_| RotateError::Failed)?;
        save(path, &new).map_err(|e| {
            tracing::error!(error = %e, "could not write the rotated signing keys");
            RotateError::Failed
        })?;
        Ok(new)
    }
}

/// Why a rotation did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RotateError {
    /// HS256 keys come from the configuration: change the secret there.
    #[error(
        "HS256 keys come from the configuration (tokens.hs256_secret); change the secret there"
    )]
    Configured,
    /// The new key could not be made or written.
    #[error("the new signing key could not be created or written")]
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_loaded_never_regenerated() {
        let d = tempfile::tempdir().unwrap();
        crate::server_keys::load_or_create(d.path(), true).unwrap();
        let cfg = TokensConfig::default();
        let (a, keys) = load_or_create(d.path(), true, &cfg, 1_000).unwrap();
        let (b, _) = load_or_create(d.path(), false, &cfg, 1_001).unwrap();
        assert_eq!(a.active_kid(), b.active_kid());
        let rotated = keys.rotate(&b, 1_002).unwrap();
        let (c, _) = load_or_create(d.path(), false, &cfg, 1_003).unwrap();
        assert_eq!(c.active_kid(), rotated.active_kid());
        assert_ne!(c.active_kid(), a.active_kid());
        std::fs::write(d.path().join(SIGNING_KEYS_FILE), b"{}").unwrap();
        let e = load_or_create(d.path(), false, &cfg, 1_004).unwrap_err();
        assert!(e.to_string().contains(SIGNING_KEYS_FILE), "{e}");
        std::fs::remove_file(d.path().join(SIGNING_KEYS_FILE)).unwrap();
        let e = load_or_create(d.path(), false, &cfg, 1_005).unwrap_err();
        assert!(
            matches!(e, StartError::File(KeyFileError::Missing { .. })),
            "{e}"
        );
    }

    /// A data dir from before access tokens (server.keys without the
    /// record) gets a key ring on its next start, once.
    #[test]
    fn an_older_data_dir_gets_its_key_ring_once() {
        let d = tempfile::tempdir().unwrap();
        crate::server_keys::load_or_create(d.path(), true).unwrap();
        let cfg = TokensConfig::default();
        let (a, _) = load_or_create(d.path(), false, &cfg, 1).unwrap();
        let (b, _) = load_or_create(d.path(), false, &cfg, 2).unwrap();
        assert_eq!(a.active_kid(), b.active_kid());
        std::fs::remove_file(d.path().join(SIGNING_KEYS_FILE)).unwrap();
        assert!(load_or_create(d.path(), false, &cfg, 3).is_err());
    }

    #[test]
    fn a_short_hs256_secret_refuses_to_start() {
        let d = tempfile::tempdir().unwrap();
        for secret in ["", "short", &"x".repeat(31)] {
            let cfg = TokensConfig {
                algorithm: "HS256".into(),
                hs256_secret: secret.into(),
                ..TokensConfig::default()
            };
            assert!(matches!(
                load_or_create(d.path(), true, &cfg, 1),
                Err(StartError::Config(_))
            ));
        }
        let cfg = TokensConfig {
            algorithm: "HS256".into(),
            hs256_secret: "s".repeat(32),
            ..TokensConfig::default()
        };
        let (ring, keys) = load_or_create(d.path(), true, &cfg, 1).unwrap();
        assert_eq!(ring.active_algorithm(), SigningAlgorithm::HS256);
        assert_eq!(keys.rotate(&ring, 2).unwrap_err(), RotateError::Configured);
    }
}
