//! The signing key ring: generation, rotation, pruning and the file codec.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{self, SystemRandom};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine;
use jsonwebtoken::DecodingKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::b64url;

/// The shortest HS256 secret accepted: 32 bytes (256 bits, the output size
/// of SHA-256, RFC 7518 §3.2).
pub const MIN_HS256_SECRET_LEN: usize = 32;

/// Random bytes in a generated `kid`.
const KID_RANDOM_LEN: usize = 16;

/// Bytes of the SHA-256 in a `kid` derived from a configured HS256 secret.
const KID_DERIVED_LEN: usize = 12;

/// The longest `kid` accepted from a file.
const MAX_KID_LEN: usize = 64;

/// A JWS algorithm a key of the ring signs with. Each key has exactly one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    /// Ed25519 (RFC 8037). The default: small keys, small and fast
    /// signatures, deterministic.
    #[default]
    EdDSA,
    /// ECDSA over P-256 with SHA-256 (RFC 7518 §3.4).
    ES256,
    /// HMAC with SHA-256 (RFC 7518 §3.2), a shared secret: only for a
    /// verifier that holds the secret; never published in the JWKS.
    HS256,
}

impl SigningAlgorithm {
    /// The JWS `alg` name: `"EdDSA"`, `"ES256"` or `"HS256"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::EdDSA => "EdDSA",
            SigningAlgorithm::ES256 => "ES256",
            SigningAlgorithm::HS256 => "HS256",
        }
    }

    /// The same algorithm in `jsonwebtoken`'s terms.
    pub(crate) const fn jwt_algorithm(self) -> jsonwebtoken::Algorithm {
        match self {
            SigningAlgorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            SigningAlgorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            SigningAlgorithm::HS256 => jsonwebtoken::Algorithm::HS256,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlgorithm {
    type Err = KeyRingError;

    /// Exactly `"EdDSA"`, `"ES256"` or `"HS256"` (case-sensitive, as in JWS).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "EdDSA" => Ok(SigningAlgorithm::EdDSA),
            "ES256" => Ok(SigningAlgorithm::ES256),
            "HS256" => Ok(SigningAlgorithm::HS256),
            _ => Err(KeyRingError::UnknownAlgorithm),
        }
    }
}

impl Serialize for SigningAlgorithm {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SigningAlgorithm {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        name.parse()
            .map_err(|_| serde::de::Error::custom("unknown signing algorithm"))
    }
}

/// Why a key ring could not be made, loaded or rotated. No variant carries
/// key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    /// An HS256 secret shorter than [`MIN_HS256_SECRET_LEN`] bytes (or empty).
    #[error("the HS256 secret is shorter than 32 bytes")]
    WeakSecret,
    /// The key ring file does not parse or breaks a rule; the text says
    /// which rule, never what the file holds.
    #[error("the key ring file is corrupt: {0}")]
    Corrupt(&'static str),
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// Generating a key pair failed.
    #[error("generating a signing key failed")]
    KeyGeneration,
    /// The ring has no active key (no key without a `retires_at`).
    #[error("the key ring has no active key")]
    NoActiveKey,
    /// An algorithm name other than `EdDSA`, `ES256` or `HS256`.
    #[error("unknown signing algorithm (expected EdDSA, ES256 or HS256)")]
    UnknownAlgorithm,
}

/// What `sessiond keys list` shows of one key: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// The key id, the `kid` of the tokens it signs.
    pub kid: String,
    /// The key's algorithm.
    pub alg: SigningAlgorithm,
    /// When the key was made (unix seconds).
    pub created_at: i64,
    /// When the key stops verifying (unix seconds); `None` for the active
    /// key and any other key still in service.
    pub retires_at: Option<i64>,
    /// Whether this is the key that signs.
    pub active: bool,
}

/// The signing half of a key, parsed once.
enum Signer {
    Ed25519(Ed25519KeyPair),
    Es256(EcdsaKeyPair),
    Hs256(hmac::Key),
}

/// The public half of an asymmetric key, as the JWKS publishes it.
#[derive(Clone, Copy)]
pub(crate) enum PublicKey {
    /// The raw 32-byte Ed25519 public key (the JWK `x`).
    Ed25519([u8; 32]),
    /// The P-256 point's coordinates (the JWK `x` and `y`).
    P256 { x: [u8; 32], y: [u8; 32] },
    /// A shared secret has nothing public.
    None,
}

/// One key's material; immutable, shared between rings by `Arc`.
pub(crate) struct KeyMaterial {
    pub(crate) kid: String,
    pub(crate) alg: SigningAlgorithm,
    pub(crate) created_at: i64,
    /// The PKCS#8 document (EdDSA, ES256) or the HMAC secret (HS256), as
    /// stored in the file.
    secret: Zeroizing<Vec<u8>>,
    signer: Signer,
    /// What `jsonwebtoken` verifies with: the raw Ed25519 public key, the
    /// uncompressed P-256 point, or the HMAC secret.
    pub(crate) decoding: DecodingKey,
    pub(crate) public: PublicKey,
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl KeyMaterial {
    /// Parses `secret` (PKCS#8 or HMAC secret) for `alg`. The error says
    /// what is wrong, never with what bytes.
    pub(super) fn parse(
        kid: String,
        alg: SigningAlgorithm,
        created_at: i64,
        secret: Zeroizing<Vec<u8>>,
    ) -> Result<KeyMaterial, &'static str> {
        let (signer, decoding, public) = match alg {
            SigningAlgorithm::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(&secret)
                    .map_err(|_| "an EdDSA key is not an Ed25519 PKCS#8 document")?;
                let raw: [u8; 32] = pair
                    .public_key()
                    .as_ref()
                    .try_into()
                    .map_err(|_| "an EdDSA public key is not 32 bytes")?;
                // jsonwebtoken's EdDSA verifier takes the raw public key.
                let decoding = DecodingKey::from_ed_der(&raw);
                (Signer::Ed25519(pair), decoding, PublicKey::Ed25519(raw))
            }
            SigningAlgorithm::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &secret)
                    .map_err(|_| "an ES256 key is not a P-256 PKCS#8 document")?;
                let point = pair.public_key().as_ref();
                // The uncompressed point: 0x04 ‖ x ‖ y.
                let (x, y) = match point {
                    [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
                    _ => return Err("an ES256 public key is not an uncompressed P-256 point"),
                };
                let x: [u8; 32] = x.try_into().map_err(|_| "bad P-256 point")?;
                let y: [u8; 32] = y.try_into().map_err(|_| "bad P-256 point")?;
                // jsonwebtoken's ES256 verifier takes the uncompressed point.
                let decoding = DecodingKey::from_ec_der(point);
                (Signer::Es256(pair), decoding, PublicKey::P256 { x, y })
            }
            SigningAlgorithm::HS256 => {
                if secret.len() < MIN_HS256_SECRET_LEN {
                    return Err("an HS256 secret is shorter than 32 bytes");
                }
                let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
                let decoding =
                    DecodingKey::from_secret(&secret).map_err(|_| "an HS256 secret is empty")?;
                (Signer::Hs256(key), decoding, PublicKey::None)
            }
        };
        Ok(KeyMaterial {
            kid,
            alg,
            created_at,
            secret,
            signer,
            decoding,
            public,
        })
    }

    /// A new key for `alg` with a random `kid`.
    fn generate(alg: SigningAlgorithm, now_secs: i64) -> Result<KeyMaterial, KeyRingError> {
        let rng = SystemRandom::new();
        let secret = match alg {
            SigningAlgorithm::EdDSA => Zeroizing::new(
                Ed25519KeyPair::generate_pkcs8(&rng)
                    .map_err(|_| KeyRingError::KeyGeneration)?
                    .as_ref()
                    .to_vec(),
            ),
            SigningAlgorithm::ES256 => Zeroizing::new(
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| KeyRingError::KeyGeneration)?
                    .as_ref()
                    .to_vec(),
            ),
            SigningAlgorithm::HS256 => {
                let mut s = Zeroizing::new(vec![0u8; MIN_HS256_SECRET_LEN]);
                rand::fill(&mut s).map_err(|_| KeyRingError::Random)?;
                s
            }
        };
        KeyMaterial::parse(random_kid()?, alg, now_secs, secret)
            .map_err(|_| KeyRingError::KeyGeneration)
    }

    /// Signs `message` (the JWS signing input) with this key.
    pub(crate) fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        match &self.signer {
            Signer::Ed25519(pair) => Some(pair.sign(message).as_ref().to_vec()),
            Signer::Es256(pair) => pair
                .sign(&SystemRandom::new(), message)
                .ok()
                .map(|s| s.as_ref().to_vec()),
            Signer::Hs256(key) => Some(hmac::sign(key, message).as_ref().to_vec()),
        }
    }

    /// The PKCS#8 document or HMAC secret.
    pub(crate) fn secret(&self) -> &[u8] {
        &self.secret
    }
}

/// A `kid` of 16 random bytes, base64url without padding (22 characters).
fn random_kid() -> Result<String, KeyRingError> {
    let mut bytes = [0u8; KID_RANDOM_LEN];
    rand::fill(&mut bytes).map_err(|_| KeyRingError::Random)?;
    Ok(b64url().encode(bytes))
}

/// Whether `kid` is 1 to 64 characters of the base64url alphabet: the
/// only shape this code makes, and one that needs no escaping in JSON.
pub(super) fn kid_is_valid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A key in a ring: its material and when it stops verifying.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) key: Arc<KeyMaterial>,
    pub(crate) retires_at: Option<i64>,
}

impl Entry {
    /// Whether the key still verifies at `now_secs`.
    pub(crate) fn verifies_at(&self, now_secs: i64) -> bool {
        self.retires_at.is_none_or(|r| r > now_secs)
    }
}

/// The signing keys: one *active* key signs, every key not yet retired
/// verifies.
///
/// A `KeyRing` is an immutable value, cheap to clone (one `Arc`); rotation
/// and pruning return a new ring that shares the unchanged keys. The active
/// key is the newest key (the last added) without a `retires_at`.
#[derive(Clone)]
pub struct KeyRing {
    /// Oldest first.
    pub(super) entries: Arc<[Entry]>,
    /// The key that signs, also in `entries`.
    active: Arc<KeyMaterial>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("active_kid", &self.active_kid())
            .field("keys", &self.keys())
            .finish()
    }
}

impl KeyRing {
    /// A ring of `entries` (oldest first); the active key is the last one
    /// without a `retires_at`.
    pub(super) fn from_entries(entries: Vec<Entry>) -> Result<KeyRing, KeyRingError> {
        let active = entries
            .iter()
            .rev()
            .find(|e| e.retires_at.is_none())
            .map(|e| Arc::clone(&e.key))
            .ok_or(KeyRingError::NoActiveKey)?;
        Ok(KeyRing {
            entries: entries.into(),
            active,
        })
    }

    /// A ring of one new key for `alg`, active from `now_secs`.
    pub fn generate(alg: SigningAlgorithm, now_secs: i64) -> Result<KeyRing, KeyRingError> {
        let key = KeyMaterial::generate(alg, now_secs)?;
        KeyRing::from_entries(vec![Entry {
            key: Arc::new(key),
            retires_at: None,
        }])
    }

    /// A ring of one HS256 key with a configured `secret` (at least 32
    /// bytes, else [`KeyRingError::WeakSecret`]).
    ///
    /// The `kid` is derived from the secret (base64url of the first 12
    /// bytes of SHA-256(`"sk/v1/kid"` ‖ secret)), so a restart with the same
    /// secret keeps verifying the tokens already issued.
    pub fn from_hs256_secret(secret: &[u8], now_secs: i64) -> Result<KeyRing, KeyRingError> {
        if secret.len() < MIN_HS256_SECRET_LEN {
            return Err(KeyRingError::WeakSecret);
        }
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"sk/v1/kid");
        ctx.update(secret);
        let hash = ctx.finish();
        let kid = b64url().encode(&hash.as_ref()[..KID_DERIVED_LEN]);
        let key = KeyMaterial::parse(
            kid,
            SigningAlgorithm::HS256,
            now_secs,
            Zeroizing::new(secret.to_vec()),
        )
        .map_err(|_| KeyRingError::WeakSecret)?;
        KeyRing::from_entries(vec![Entry {
            key: Arc::new(key),
            retires_at: None,
        }])
    }

    /// A new ring with a new active key for `alg`. The key active until
    /// now keeps verifying for `grace_secs` (its `retires_at` becomes
    /// `now_secs + grace_secs`); keys whose `retires_at <= now_secs` are
    /// dropped.
    pub fn rotate(
        &self,
        alg: SigningAlgorithm,
        now_secs: i64,
        grace_secs: u64,
    ) -> Result<KeyRing, KeyRingError> {
        let retire = now_secs.saturating_add(i64::try_from(grace_secs).unwrap_or(i64::MAX));
        let mut key = KeyMaterial::generate(alg, now_secs)?;
        // 128 random bits do not collide; if the generator says otherwise,
        // it is broken.
        for _ in 0..3 {
            if !self.entries.iter().any(|e| e.key.kid == key.kid) {
                break;
            }
            key = KeyMaterial::generate(alg, now_secs)?;
        }
        if self.entries.iter().any(|e| e.key.kid == key.kid) {
            return Err(KeyRingError::Random);
        }
        let mut entries: Vec<Entry> = self
            .entries
            .iter()
            .map(|e| {
                let mut e = e.clone();
                if Arc::ptr_eq(&e.key, &self.active) {
                    e.retires_at = Some(retire);
                }
                e
            })
            .filter(|e| e.verifies_at(now_secs))
            .collect();
        entries.push(Entry {
            key: Arc::new(key),
            retires_at: None,
        });
        KeyRing::from_entries(entries)
    }

    /// A new ring without the keys retired at `now_secs` (`retires_at <=
    /// now_secs`). The active key is never dropped.
    pub fn prune(&self, now_secs: i64) -> KeyRing {
        // The active key has no `retires_at`: it always stays.
        let entries: Vec<Entry> = self
            .entries
            .iter()
            .filter(|e| e.verifies_at(now_secs))
            .cloned()
            .collect();
        KeyRing {
            entries: entries.into(),
            active: Arc::clone(&self.active),
        }
    }

    /// The `kid` of the key that signs.
    pub fn active_kid(&self) -> &str {
        &self.active_key().kid
    }

    /// The algorithm of the key that signs.
    pub fn active_algorithm(&self) -> SigningAlgorithm {
        self.active_key().alg
    }

    /// Every key of the ring, oldest first, without secrets.
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.entries
            .iter()
            .map(|e| KeyInfo {
                kid: e.key.kid.clone(),
                alg: e.key.alg,
                created_at: e.key.created_at,
                retires_at: e.retires_at,
                active: Arc::ptr_eq(&e.key, &self.active),
            })
            .collect()
    }

    /// The key that signs.
    pub(crate) fn active_key(&self) -> &KeyMaterial {
        &self.active
    }

    /// The key named `kid` if it still verifies at `now_secs`.
    pub(crate) fn verifying_key(&self, kid: &str, now_secs: i64) -> Option<&KeyMaterial> {
        self.entries
            .iter()
            .find(|e| e.key.kid == kid)
            .filter(|e| e.verifies_at(now_secs))
            .map(|e| &*e.key)
    }

    /// The keys that still verify at `now_secs`, oldest first.
    pub(crate) fn verifying_keys(&self, now_secs: i64) -> impl Iterator<Item = &KeyMaterial> {
        self.entries
            .iter()
            .filter(move |e| e.verifies_at(now_secs))
            .map(|e| &*e.key)
    }
}

#[cfg(test)]
#[path = "keyring_tests.rs"]
mod tests;
