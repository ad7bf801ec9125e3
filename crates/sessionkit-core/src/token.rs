//! Session tokens ([`SessionToken`]) and the
//! [`TokenHash`] that is all a store ever keeps of them.
//!
//! A token is 32 bytes from the OS CSPRNG, written as a short prefix and
//! unpadded base64url (`ses_` + 43 characters). [`SessionToken::parse`]
//! accepts exactly one spelling per token and rejects everything else —
//! padding, the standard alphabet, whitespace, wrong length, over-long input
//! — before any store is touched (an invariant: see docs/architecture.md).
//!
//! Tokens are stored only as `SHA-256(domain tag ‖ token bytes)`: unkeyed, so
//! opaque sessions survive the loss of any server key.
//!
//! ```
//! use sessionkit_core::token::SessionToken;
//! let t = SessionToken::generate().unwrap();
//! let text = t.expose_secret();
//! let parsed = SessionToken::parse(&text).unwrap();
//! assert_eq!(parsed.hash(), t.hash());
//! assert!(SessionToken::parse(&format!("{text}=")).is_err());
//! ```

use std::fmt;
use std::marker::PhantomData;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use crate::random::{RandomUnavailable, fill_random};

/// Length of a token's secret part, in bytes.
pub const TOKEN_BYTES: usize = 32;
/// Length of 32 bytes in unpadded base64url.
const ENCODED_LEN: usize = 43;

/// Why a token string was refused. Deliberately carries no detail that
/// could help an attacker: every malformed token is the same error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed token")]
pub struct MalformedToken;

/// What distinguishes one kind of token from another.
pub trait TokenKind: Send + Sync + 'static {
    /// The text prefix, e.g. `ses_`.
    const PREFIX: &'static str;
    /// The domain tag mixed into the stored hash. Kept short so that tag and
    /// secret fit one SHA-256 block (at most 23 bytes).
    const HASH_TAG: &'static [u8];
}

/// Marker for session tokens (`ses_…`).
#[derive(Debug, Clone, Copy)]
pub enum SessionKind {}
impl TokenKind for SessionKind {
    const PREFIX: &'static str = "ses_";
    const HASH_TAG: &'static [u8] = b"sk/v1/session\0";
}

/// A bearer secret of kind `K`. Its `Debug` is redacted and its bytes are
/// zeroed on drop; the only way to see it is [`Token::expose_secret`].
pub struct Token<K: TokenKind> {
    bytes: Zeroizing<[u8; TOKEN_BYTES]>,
    kind: PhantomData<K>,
}

/// A session token (cookie and opaque-token sessions).
pub type SessionToken = Token<SessionKind>;

impl<K: TokenKind> Token<K> {
    /// A fresh token from the OS CSPRNG.
    pub fn generate() -> Result<Self, RandomUnavailable> {
        let mut bytes = Zeroizing::new([0u8; TOKEN_BYTES]);
        fill_random(bytes.as_mut())?;
        Ok(Token {
            bytes,
            kind: PhantomData,
        })
    }

    /// Builds a token from raw bytes (used to recompute derived tokens).
    #[must_use]
    pub fn from_bytes(b: [u8; TOKEN_BYTES]) -> Self {
        Token {
            bytes: Zeroizing::new(b),
            kind: PhantomData,
        }
    }

    /// Parses the one canonical spelling of a token, without allocating.
    pub fn parse(s: &str) -> Result<Self, MalformedToken> {
        let rest = s.strip_prefix(K::PREFIX).ok_or(MalformedToken)?;
        if rest.len() != ENCODED_LEN {
            return Err(MalformedToken);
        }
        let mut bytes = Zeroizing::new([0u8; TOKEN_BYTES]);
        // URL_SAFE_NO_PAD rejects padding, the standard alphabet, whitespace
        // and non-zero trailing bits, so each token has exactly one spelling.
        match URL_SAFE_NO_PAD.decode_slice(rest.as_bytes(), bytes.as_mut()) {
            Ok(TOKEN_BYTES) => Ok(Token {
                bytes,
                kind: PhantomData,
            }),
            _ => Err(MalformedToken),
        }
    }

    /// The token as text, to hand to its owner once. Never log it.
    #[must_use]
    pub fn expose_secret(&self) -> String {
        let mut s = String::with_capacity(K::PREFIX.len() + ENCODED_LEN);
        s.push_str(K::PREFIX);
        URL_SAFE_NO_PAD.encode_string(self.bytes.as_ref(), &mut s);
        s
    }

    /// The raw secret bytes.
    #[must_use]
    pub fn secret_bytes(&self) -> &[u8; TOKEN_BYTES] {
        &self.bytes
    }

    /// The hash a store keeps of this token.
    #[must_use]
    pub fn hash(&self) -> TokenHash {
        TokenHash::compute(K::HASH_TAG, &self.bytes)
    }
}

impl<K: TokenKind> fmt::Debug for Token<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}[redacted])", K::PREFIX)
    }
}

/// `SHA-256(domain tag ‖ token bytes)`: how a store keys a token. Not a
/// secret in itself (it cannot be turned back into the token).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub(crate) fn compute(tag: &[u8], secret: &[u8; TOKEN_BYTES]) -> Self {
        // One contiguous input of at most 55 bytes: one compression.
        let mut buf = [0u8; 55];
        let n = tag.len().min(55 - TOKEN_BYTES);
        buf[..n].copy_from_slice(&tag[..n]);
        buf[n..n + TOKEN_BYTES].copy_from_slice(secret);
        let d = digest::digest(&digest::SHA256, &buf[..n + TOKEN_BYTES]);
        zeroize::Zeroize::zeroize(&mut buf);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        TokenHash(out)
    }

    /// Rebuilds a hash from its stored bytes.
    #[must_use]
    pub const fn from_bytes(b: [u8; 32]) -> Self {
        TokenHash(b)
    }

    /// The 32 bytes of the hash.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 8 bytes as an integer: uniformly distributed, so it is a
    /// ready-made hash-table hash.
    #[must_use]
    pub fn short(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(b)
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({:016x}…)", self.short().swap_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_shape() {
        let t = SessionToken::generate().unwrap();
        let s = t.expose_secret();
        assert!(s.starts_with("ses_"));
        assert_eq!(s.len(), 47);
        assert_eq!(SessionToken::parse(&s).unwrap().hash(), t.hash());
        assert_eq!(format!("{t:?}"), "Token(ses_[redacted])");
    }

    #[test]
    fn rejects_every_other_spelling() {
        let t = SessionToken::generate().unwrap();
        let s = t.expose_secret();
        let body = &s[4..];
        let bad = [
            String::new(),
            "ses_".into(),
            format!("{s}="),
            format!(" {s}"),
            format!("{s}\n"),
            format!("rft_{body}"),
            format!("SES_{body}"),
            s[..46].to_string(),
            format!("{s}A"),
            s.replace('-', "+").replace('_', "/") + if s.contains(['-', '_']) { "" } else { "!" },
            "x".repeat(100_000),
            format!("ses_{}", "\u{e9}".repeat(21)),
        ];
        for b in bad {
            assert!(SessionToken::parse(&b).is_err(), "accepted {b:?}");
        }
        // Non-zero trailing bits: the last character encodes 4 real bits
        // and 2 padding bits; every other last character must be refused.
        let mut canonical = 0;
        for c in URL_SAFE_ALPHABET.chars() {
            let cand = format!("{}{}", &s[..46], c);
            if SessionToken::parse(&cand).is_ok() {
                canonical += 1;
            }
        }
        assert_eq!(canonical, 16);
    }

    const URL_SAFE_ALPHABET: &str =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    #[test]
    fn kinds_hash_apart() {
        let b = [7u8; 32];
        assert_ne!(
            SessionToken::from_bytes(b).hash(),
            TokenHash::compute(b"sk/v1/refresh\0", &b)
        );
    }
}
