//! The vault keys that seal upstream grants: `<data dir>/vault.keys`
//! (mode 0600), a ring of AES-256 keys, the newest sealing and every one
//! opening. Created on the first start that needs it; `rotate` adds a key.
//! Every node of a deployment needs the same file (like `server.keys`).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sessionkit::upstream::VaultKeys;
use sessionkit_core::random::fill_random;
use zeroize::Zeroizing;

use crate::fsutil::write_atomic;
use crate::server_keys::KeyFileError;

/// File name of the vault keys inside the data dir.
pub const VAULT_KEYS_FILE: &str = "vault.keys";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKey {
    id: u32,
    key: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    version: u8,
    /// Oldest first; the last seals.
    keys: Vec<FileKey>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn corrupt(path: &Path, why: &'static str) -> KeyFileError {
    KeyFileError::Corrupt {
        path: path.display().to_string(),
        why,
    }
}

fn new_key(id: u32) -> Result<FileKey, KeyFileError> {
    let mut k = Zeroizing::new([0u8; 32]);
    fill_random(&mut *k).map_err(|_| KeyFileError::Random)?;
    Ok(FileKey {
        id,
        key: URL_SAFE_NO_PAD.encode(*k),
    })
}

fn read(path: &Path) -> Result<Option<KeyFile>, KeyFileError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice::<KeyFile>(&b)
            .ok()
            .filter(|f| f.version == 1 && !f.keys.is_empty())
            .map(Some)
            .ok_or_else(|| corrupt(path, "not a sessiond vault key file")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

fn write(path: &Path, f: &KeyFile) -> Result<(), KeyFileError> {
    let text =
        Zeroizing::new(serde_json::to_vec(f).map_err(|e| io(path)(std::io::Error::other(e)))?);
    write_atomic(path, &text).map_err(io(path))
}

/// The vault keys of `data_dir`, created (one key) when the file does not
/// exist yet.
pub fn load_or_create(data_dir: &Path) -> Result<VaultKeys, KeyFileError> {
    let path = data_dir.join(VAULT_KEYS_FILE);
    let f = match read(&path)? {
        Some(f) => f,
        None => {
            let f = KeyFile {
                version: 1,
                keys: vec![new_key(1)?],
            };
            write(&path, &f)?;
            tracing::info!("created the vault key in {} (mode 0600)", path.display());
            f
        }
    };
    let mut ring = Vec::with_capacity(f.keys.len());
    for k in &f.keys {
        let mut out = Zeroizing::new([0u8; 32]);
        match URL_SAFE_NO_PAD.decode_slice(k.key.as_bytes(), &mut *out) {
            Ok(32) => ring.push((k.id, out)),
            _ => return Err(corrupt(&path, "a key is not 32 bytes of base64url")),
        }
    }
    VaultKeys::new(ring).map_err(|_| corrupt(&path, "repeated key ids"))
}

/// Adds a new vault key that seals from the next start on; older keys keep
/// opening what they sealed. Returns the new key's id.
pub fn rotate(data_dir: &Path) -> Result<u32, KeyFileError> {
    let path = data_dir.join(VAULT_KEYS_FILE);
    let mut f = read(&path)?.ok_or_else(|| corrupt(&path, "no vault keys to rotate yet"))?;
    let id = f
        .keys
        .iter()
        .map(|k| k.id)
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    f.keys.push(new_key(id)?);
    write(&path, &f)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessionkit::upstream::GrantSecret;
    use sessionkit_core::{SessionId, TenantId};

    #[test]
    fn created_private_rotated_and_still_opening() {
        let d = tempfile::tempdir().unwrap();
        let ring = load_or_create(d.path()).unwrap();
        assert_eq!(ring.current_id(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.path().join(VAULT_KEYS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (t, id) = (TenantId::DEFAULT, SessionId::generate());
        let secret = GrantSecret {
            access_token: "a".into(),
            refresh_token: None,
            expires_at_ms: 0,
            scope: None,
            sub: None,
            failures: 0,
        };
        let sealed = ring.seal(t, id, "idp", &secret).unwrap();
        assert_eq!(load_or_create(d.path()).unwrap().current_id(), 1, "kept");
        assert_eq!(rotate(d.path()).unwrap(), 2);
        let again = load_or_create(d.path()).unwrap();
        assert_eq!(again.current_id(), 2);
        assert!(
            again.open(t, id, &sealed).is_some(),
            "the old key still opens"
        );
        std::fs::write(d.path().join(VAULT_KEYS_FILE), b"{}").unwrap();
        assert!(load_or_create(d.path()).is_err(), "never silently replaced");
    }
}
