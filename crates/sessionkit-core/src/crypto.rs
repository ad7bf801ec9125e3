//! Server keys and what is derived from them: the CSRF token bound to a
//! session id, and constant-time comparison of secrets.
//!
//! ```
//! use sessionkit_core::crypto::{SecretKey, csrf_token, csrf_matches};
//! use sessionkit_core::ids::SessionId;
//! let key = SecretKey::generate().unwrap();
//! let id = SessionId::generate();
//! let t = csrf_token(&key, &id);
//! assert!(csrf_matches(&key, &id, &t));
//! assert!(!csrf_matches(&key, &SessionId::generate(), &t));
//! ```

use std::fmt;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::ids::SessionId;
use crate::random::{RandomUnavailable, fill_random};

/// A 32-byte server secret (HMAC key). Redacted `Debug`, zeroed on drop.
/// The HMAC key schedule is computed once, when the key is made.
#[derive(Clone)]
pub struct SecretKey {
    bytes: Zeroizing<[u8; 32]>,
    hmac: hmac::Key,
}

impl SecretKey {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> Result<Self, RandomUnavailable> {
        let mut b = [0u8; 32];
        fill_random(&mut b)?;
        let key = SecretKey::from_bytes(b);
        zeroize::Zeroize::zeroize(&mut b);
        Ok(key)
    }

    /// Wraps existing key bytes (loaded from a key file).
    #[must_use]
    pub fn from_bytes(b: [u8; 32]) -> Self {
        let hmac = hmac::Key::new(hmac::HMAC_SHA256, &b);
        SecretKey {
            bytes: Zeroizing::new(b),
            hmac,
        }
    }

    /// The key bytes, to persist them. Never log them.
    #[must_use]
    pub fn expose_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// HMAC-SHA-256 of `parts` (concatenated) under this key.
    #[must_use]
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.hmac);
        for p in parts {
            ctx.update(p);
        }
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

const CSRF_TAG: &[u8] = b"sessionkit/v1/csrf\0";

/// The CSRF token of a session: `base64url(HMAC-SHA-256(key, id))`. It
/// changes whenever the session id does (upgrade).
#[must_use]
pub fn csrf_token(key: &SecretKey, id: &SessionId) -> String {
    URL_SAFE_NO_PAD.encode(key.mac(&[CSRF_TAG, id.as_bytes()]))
}

/// Whether `presented` is the CSRF token of session `id`, in constant time.
#[must_use]
pub fn csrf_matches(key: &SecretKey, id: &SessionId, presented: &str) -> bool {
    let expected = csrf_token(key, id);
    ct_eq(expected.as_bytes(), presented.as_bytes())
}

/// `SHA-256(tag ‖ part ‖ part …)`: the one domain-separated hash for values
/// that are not fixed-size tokens (API keys, client fingerprints). The tag
/// names what is hashed, so no two uses can collide.
#[must_use]
pub fn tagged_sha256(tag: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(tag);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Constant-time equality of two byte strings (length is not secret).
#[must_use]
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
