//! The key ring file: the codec only (the server decides where it lives).
//!
//! `{"version":1,"keys":[{"kid","alg","created_at","retires_at","secret"}]}`,
//! oldest key first, `secret` the base64url (no padding) of the PKCS#8
//! document (EdDSA, ES256) or of the HMAC secret (HS256).

use std::sync::Arc;

use base64::Engine;
use serde::Deserialize;
use zeroize::{Zeroize, Zeroizing};

use super::b64url;
use super::keyring::{Entry, KeyMaterial, KeyRing, KeyRingError, SigningAlgorithm, kid_is_valid};

/// The only file format version this code reads and writes.
const FILE_VERSION: u32 = 1;

impl KeyRing {
    /// The ring as the server stores it:
    /// `{"version":1,"keys":[{"kid","alg","created_at","retires_at","secret"}]}`
    /// with `secret` the base64url (no padding) of the PKCS#8 document or
    /// HMAC secret. The text is zeroed when dropped.
    pub fn to_file_json(&self) -> Zeroizing<String> {
        // Sized up front so that the buffer never grows (a growth would
        // leave a copy of the secrets behind in freed memory).
        let capacity = 32
            + self
                .entries
                .iter()
                .map(|e| 160 + e.key.kid.len() + e.key.secret().len().div_ceil(3) * 4)
                .sum::<usize>();
        let mut out = Zeroizing::new(String::with_capacity(capacity));
        out.push_str(r#"{"version":1,"keys":["#);
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            // `kid` is base64url (checked when made or loaded): no escaping.
            out.push_str(r#"{"kid":""#);
            out.push_str(&e.key.kid);
            out.push_str(r#"","alg":""#);
            out.push_str(e.key.alg.as_str());
            out.push_str(r#"","created_at":"#);
            out.push_str(&e.key.created_at.to_string());
            out.push_str(r#","retires_at":"#);
            match e.retires_at {
                Some(r) => out.push_str(&r.to_string()),
                None => out.push_str("null"),
            }
            out.push_str(r#","secret":""#);
            b64url().encode_string(e.key.secret(), &mut out);
            out.push_str(r#""}"#);
        }
        out.push_str("]}");
        debug_assert!(out.len() <= capacity, "the file text outgrew its buffer");
        out
    }

    /// Reads a ring written by [`to_file_json`](Self::to_file_json).
    ///
    /// Bad JSON, an unknown field, an unknown `alg`, bad base64, a key that
    /// does not parse, no keys, two keys with one `kid` or an HS256 secret
    /// shorter than 32 bytes is [`KeyRingError::Corrupt`]; a ring whose keys
    /// all have a `retires_at` is [`KeyRingError::NoActiveKey`].
    pub fn from_file_json(text: &str) -> Result<KeyRing, KeyRingError> {
        let file: FileRing = serde_json::from_str(text)
            .map_err(|_| KeyRingError::Corrupt("not a key ring file (JSON or its fields)"))?;
        if file.version != FILE_VERSION {
            return Err(KeyRingError::Corrupt("unsupported version"));
        }
        if file.keys.is_empty() {
            return Err(KeyRingError::Corrupt("no keys"));
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(file.keys.len());
        for k in &file.keys {
            if !kid_is_valid(&k.kid) {
                return Err(KeyRingError::Corrupt(
                    "a kid is not 1 to 64 base64url characters",
                ));
            }
            if entries.iter().any(|e| e.key.kid == k.kid) {
                return Err(KeyRingError::Corrupt("two keys have the same kid"));
            }
            let alg: SigningAlgorithm = k
                .alg
                .parse()
                .map_err(|_| KeyRingError::Corrupt("unknown alg"))?;
            let secret = decode_secret(&k.secret.0)?;
            let key = KeyMaterial::parse(k.kid.clone(), alg, k.created_at, secret)
                .map_err(KeyRingError::Corrupt)?;
            entries.push(Entry {
                key: Arc::new(key),
                retires_at: k.retires_at,
            });
        }
        KeyRing::from_entries(entries)
    }
}

/// Decodes a base64url secret straight into a buffer zeroed on drop.
fn decode_secret(text: &str) -> Result<Zeroizing<Vec<u8>>, KeyRingError> {
    let mut buf = Zeroizing::new(vec![0u8; base64::decoded_len_estimate(text.len())]);
    let n = b64url()
        .decode_slice(text, &mut buf)
        .map_err(|_| KeyRingError::Corrupt("a secret is not base64url without padding"))?;
    buf.truncate(n);
    Ok(buf)
}

/// The file, as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRing {
    version: u32,
    keys: Vec<FileKey>,
}

/// One key of the file, as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKey {
    kid: String,
    alg: String,
    created_at: i64,
    retires_at: Option<i64>,
    secret: SecretText,
}

/// A secret's base64 text, zeroed when dropped.
struct SecretText(String);

impl Drop for SecretText {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SecretText)
    }
}
