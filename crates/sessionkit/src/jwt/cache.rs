//! A cache of recently verified tokens, to skip a signature check.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest;
use quick_cache::sync::Cache;

use super::access::{AccessClaims, MAX_TOKEN_LEN};

/// The claims of recently verified access tokens, keyed by the SHA-256 of
/// the whole token text.
///
/// An Ed25519 verification costs tens of microseconds, a SHA-256 of a
/// token well under one: a hit skips the signature check and the claim
/// parsing. Because the key is the hash of the *entire* token, a token
/// differing in any byte from one verified misses; the cache can never make
/// an invalid token valid. It can only remember a *valid* one, until its
/// `exp` (a hit is never returned at or after `exp`).
///
/// Insert only what [`KeyRing::verify_access`](super::KeyRing::verify_access)
/// returned, and keep one cache per key ring and [`Expectation`](super::Expectation):
/// the cache knows neither. When a key is withdrawn before its time (a
/// compromised key), [`clear`](Self::clear) the cache along with rotating.
pub struct VerifiedCache {
    inner: Cache<[u8; 32], Arc<AccessClaims>>,
}

impl fmt::Debug for VerifiedCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedCache")
            .field("len", &self.inner.len())
            .field("capacity", &self.inner.capacity())
            .finish()
    }
}

/// The cache key of a token: the SHA-256 of its whole text.
fn token_key(token: &str) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, token.as_bytes());
    let mut key = [0u8; 32];
    // A SHA-256 digest is 32 bytes.
    key.copy_from_slice(d.as_ref());
    key
}

impl VerifiedCache {
    /// A cache of at most about `capacity` tokens.
    pub fn with_capacity(capacity: usize) -> VerifiedCache {
        VerifiedCache {
            inner: Cache::new(capacity.max(1)),
        }
    }

    /// The claims of `token` if it was inserted and its `exp` is still
    /// after `now_secs`.
    pub fn get(&self, token: &str, now_secs: i64) -> Option<Arc<AccessClaims>> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let key = token_key(token);
        let claims = self.inner.get(&key)?;
        if claims.exp <= now_secs {
            self.inner.remove(&key);
            return None;
        }
        Some(claims)
    }

    /// Remembers the claims `verify_access` returned for `token`. A token
    /// longer than [`MAX_TOKEN_LEN`] is not remembered (it never verifies).
    pub fn insert(&self, token: &str, claims: Arc<AccessClaims>) {
        if token.len() > MAX_TOKEN_LEN {
            return;
        }
        self.inner.insert(token_key(token), claims);
    }

    /// Forgets `token`.
    pub fn remove(&self, token: &str) {
        self.inner.remove(&token_key(token));
    }

    /// Forgets every token.
    pub fn clear(&self) {
        self.inner.clear();
    }

    /// How many tokens are remembered.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether no token is remembered.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Arc<AccessClaims> {
        Arc::new(AccessClaims {
            iss: "iss".into(),
            aud: "aud".into(),
            sub: None,
            sid: "sid".into(),
            jti: "jti".into(),
            iat: exp - 300,
            exp,
            extra: Default::default(),
        })
    }

    #[test]
    fn hit_until_exp() {
        let cache = VerifiedCache::with_capacity(16);
        assert!(cache.get("a.b.c", 100).is_none());
        cache.insert("a.b.c", claims(200));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get("a.b.c", 100).unwrap().sid, "sid");
        assert!(cache.get("a.b.c", 199).is_some());
        assert!(cache.get("a.b.c", 200).is_none(), "a hit at exp");
        assert!(
            cache.get("a.b.c", 100).is_none(),
            "the expired entry was dropped"
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn any_byte_of_difference_misses() {
        let cache = VerifiedCache::with_capacity(16);
        let token = "eyJhbGciOiJFZERTQSJ9.eyJzaWQiOiJzIn0.c2lnbmF0dXJl";
        cache.insert(token, claims(200));
        for i in 0..token.len() {
            let mut other = token.as_bytes().to_vec();
            other[i] ^= 1;
            let other = String::from_utf8(other).unwrap();
            assert!(cache.get(&other, 100).is_none(), "byte {i}");
        }
        assert!(cache.get(&token[..token.len() - 1], 100).is_none());
        assert!(cache.get(&format!("{token}x"), 100).is_none());
        assert!(cache.get(&format!(" {token}"), 100).is_none());
        assert!(cache.get(token, 100).is_some());
    }

    #[test]
    fn remove_and_clear() {
        let cache = VerifiedCache::with_capacity(16);
        cache.insert("t1", claims(200));
        cache.insert("t2", claims(200));
        cache.remove("t1");
        assert!(cache.get("t1", 100).is_none());
        assert!(cache.get("t2", 100).is_some());
        cache.clear();
        assert!(cache.get("t2", 100).is_none());
    }

    #[test]
    fn over_long_tokens_are_never_remembered() {
        let cache = VerifiedCache::with_capacity(16);
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        cache.insert(&long, claims(200));
        assert!(cache.is_empty());
        assert!(cache.get(&long, 100).is_none());
        let max = "a".repeat(MAX_TOKEN_LEN);
        cache.insert(&max, claims(200));
        assert!(cache.get(&max, 100).is_some());
    }

    #[test]
    fn capacity_bounds_the_cache() {
        let cache = VerifiedCache::with_capacity(100);
        for i in 0..10_000 {
            cache.insert(&format!("token-{i}"), claims(200));
        }
        assert!(cache.len() <= 200, "{}", cache.len());
        assert!(VerifiedCache::with_capacity(0).get("x", 0).is_none());
    }

    #[test]
    fn debug_shows_no_token_or_claims() {
        let cache = VerifiedCache::with_capacity(4);
        cache.insert("secret-token-text", claims(200));
        let dbg = format!("{cache:?}");
        assert!(!dbg.contains("secret-token-text"));
        assert!(!dbg.contains("sid"));
    }
}
