//! Access JWTs: a signing key ring, minting and verification (feature `jwt`).
//!
//! - [`KeyRing`]: an immutable set of signing keys (EdDSA, ES256 or HS256),
//!   exactly one of them *active* (it signs), the others still verifying
//!   until their `retires_at`. [`KeyRing::rotate`] returns a new ring; the
//!   server keeps the ring in its data dir with [`KeyRing::to_file_json`] /
//!   [`KeyRing::from_file_json`].
//! - [`KeyRing::sign_access`] mints an access JWT (`typ: at+jwt`, with the
//!   `kid` of the active key); [`KeyRing::verify_access`] verifies one
//!   against an [`Expectation`] and answers only [`AccessError::Expired`] or
//!   [`AccessError::Invalid`]. The algorithm always comes from the key the
//!   `kid` names, never from the token.
//! - [`KeyRing::jwks`]: the public keys as a JWK Set (HS256 keys are never
//!   published).
//! - [`VerifiedCache`]: claims of recently verified tokens, keyed by the
//!   whole token text, to skip a signature check.
//!
//! No secret (key bytes, HMAC secret) appears in any `Debug` output or
//! error message of this module.
//!
//! ```
//! use sessionkit::jwt::{AccessClaims, AccessError, Expectation, KeyRing, SigningAlgorithm};
//!
//! let now = 1_700_000_000;
//! let ring = KeyRing::generate(SigningAlgorithm::EdDSA, now)?;
//! let claims = AccessClaims {
//!     iss: "https://sessions.example".into(),
//!     aud: "api".into(),
//!     sub: Some("user-1".into()),
//!     sid: "s-1".into(),
//!     jti: "j-1".into(),
//!     iat: now,
//!     exp: now + 300,
//!     extra: Default::default(),
//! };
//! let token = ring.sign_access(&claims)?;
//! let expect = Expectation::new("https://sessions.example", "api", 30)?;
//! assert_eq!(ring.verify_access(&token, &expect, now)?, claims);
//! assert_eq!(ring.verify_access(&token, &expect, now + 330), Err(AccessError::Expired));
//!
//! // Rotation: the old key verifies for the grace period, then not at all.
//! let ring = ring.rotate(SigningAlgorithm::EdDSA, now + 60, 600)?;
//! assert!(ring.verify_access(&token, &expect, now + 100).is_ok());
//! assert_eq!(ring.verify_access(&token, &expect, now + 660), Err(AccessError::Invalid));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod access;
mod cache;
mod jwks;
mod keyfile;
mod keyring;

pub use access::{
    AccessClaims, AccessError, Expectation, JwtError, MAX_LEEWAY_SECS, MAX_TOKEN_LEN,
};
pub use cache::{CachedAccess, VerifiedCache};
pub use keyring::{KeyInfo, KeyRing, KeyRingError, MIN_HS256_SECRET_LEN, SigningAlgorithm};

/// base64url without padding, the encoding of every JWT segment, `kid` and
/// JWK member here.
pub(crate) fn b64url() -> &'static base64::engine::GeneralPurpose {
    &base64::engine::general_purpose::URL_SAFE_NO_PAD
}
