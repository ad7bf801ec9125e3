//! A cache of recently verified tokens, to skip a signature check.

use std::fmt;
use std::sync::{Arc, OnceLock};

use quick_cache::sync::Cache;
use sessionkit_core::{SessionId, TokenHash};

use super::access::{AccessClaims, MAX_TOKEN_LEN};

/// What the cache keeps of a verified token: its claims, and — once a
/// caller has read the token's session — that session's store key, so the
/// next validation of the same token can look the session up by it.
#[derive(Debug)]
pub struct CachedAccess {
    /// The claims [`KeyRing::verify_access`](super::KeyRing::verify_access)
    /// returned.
    pub claims: AccessClaims,
    /// The session named by `sid` and its token hash (its store key), once
    /// a caller has read it.
    pub session_key: OnceLock<(SessionId, TokenHash)>,
    /// The caller's key-ring generation when the token was verified: a hit
    /// under another ring must be verified again.
    pub ring_epoch: u64,
    /// The hit is not returned at or after this time (unix seconds): the
    /// token's `exp`, or earlier if a key of the ring retires before it.
    pub not_after: i64,
}

/// The claims of recently verified access tokens, keyed by the whole token
/// text.
///
/// An Ed25519 verification costs tens of microseconds, a lookup by the
/// token's text well under one: a hit skips the signature check and the
/// claim parsing. Because a hit needs the *entire* token text to be equal
/// (the key is the text itself, hashed with a per-process random seed only
/// to find its slot), a token differing in any byte misses; the cache can
/// never make an invalid token valid. It can only remember a *valid* one,
/// until its `exp` (a hit is never returned at or after `exp`). Each entry
/// holds its token's text (a few hundred bytes): size the capacity with
/// that in mind.
///
/// Insert only what [`KeyRing::verify_access`](super::KeyRing::verify_access)
/// returned, and keep one cache per key ring and [`Expectation`](super::Expectation):
/// the cache knows neither. When a key is withdrawn before its time (a
/// compromised key), [`clear`](Self::clear) the cache along with rotating.
pub struct VerifiedCache {
    inner: Cache<Box<str>, Arc<CachedAccess>>,
}

impl fmt::Debug for VerifiedCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedCache")
            .field("len", &self.inner.len())
            .field("capacity", &self.inner.capacity())
            .finish()
    }
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
    pub fn get(&self, token: &str, now_secs: i64) -> Option<Arc<CachedAccess>> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let hit = self.inner.get(token)?;
        if hit.not_after <= now_secs {
            self.inner.remove(token);
            return None;
        }
        Some(hit)
    }

    /// Remembers the claims `verify_access` returned for `token`. A token
    /// longer than [`MAX_TOKEN_LEN`] is not remembered (it never verifies).
    pub fn insert(&self, token: &str, claims: AccessClaims) -> Arc<CachedAccess> {
        self.insert_with(token, claims, 0, i64::MAX)
    }

    /// [`VerifiedCache::insert`], noting the caller's key-ring generation
    /// and a time before `exp` after which the hit must not be used (a key
    /// of the ring retires then).
    pub fn insert_with(
        &self,
        token: &str,
        claims: AccessClaims,
        ring_epoch: u64,
        not_after: i64,
    ) -> Arc<CachedAccess> {
        let entry = Arc::new(CachedAccess {
            not_after: not_after.min(claims.exp),
            claims,
            session_key: OnceLock::new(),
            ring_epoch,
        });
        if token.len() <= MAX_TOKEN_LEN {
            self.inner.insert(token.into(), Arc::clone(&entry));
        }
        entry
    }

    /// Forgets `token`.
    pub fn remove(&self, token: &str) {
        self.inner.remove(token);
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

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "iss".into(),
            aud: "aud".into(),
            sub: None,
            sid: "sid".into(),
            jti: "jti".into(),
            iat: exp - 300,
            exp,
            extra: Default::default(),
        }
    }

    #[test]
    fn hit_until_exp() {
        let cache = VerifiedCache::with_capacity(16);
        assert!(cache.get("a.b.c", 100).is_none());
        cache.insert("a.b.c", claims(200));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get("a.b.c", 100).unwrap().claims.sid, "sid");
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
