//! Refresh tokens ([`RefreshToken`]) and the refresh state a session keeps
//! of them ([`RefreshState`]).
//!
//! A refresh token is opaque to its holder: `rft_` and the unpadded
//! base64url of 68 bytes — the session id (16), the generation (4, big
//! endian), a 32-byte secret, and a 16-byte tag, `HMAC-SHA-256(refresh key,
//! id ‖ generation ‖ secret)` truncated. The tag lets the engine refuse a
//! forged token before any store I/O, and tells a *genuine* old token (a
//! replay: reuse detection revokes the session) from a made-up one (which
//! revokes nothing). The id makes a replayed grandparent findable although
//! the store keeps only the current and the previous hash.
//!
//! Generation 0's secret is random; every successor is *derived*:
//! `secret(n+1) = HMAC-SHA-256(refresh key, tag ‖ id ‖ n+1 ‖ secret(n))`, so
//! a retry of the same parent inside the grace window is answered with the
//! same successor, recomputed, and a store keeps only hashes
//! (`SHA-256(domain tag ‖ secret)`).
//!
//! ```
//! use sessionkit_core::refresh::RefreshToken;
//! use sessionkit_core::{SecretKey, SessionId};
//! let key = SecretKey::generate().unwrap();
//! let root = RefreshToken::root(SessionId::generate()).unwrap();
//! let next = root.successor(&key);
//! assert_eq!(next.generation(), 1);
//! assert_eq!(next.hash(), root.successor(&key).hash());
//! let text = next.expose_secret_with(&key);
//! assert_eq!(RefreshToken::parse(&text, &key).unwrap().hash(), next.hash());
//! let other = SecretKey::generate().unwrap();
//! assert!(RefreshToken::parse(&text, &other).is_err());
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use crate::crypto::{SecretKey, ct_eq};
use crate::ids::SessionId;
use crate::random::{RandomUnavailable, fill_random};
use crate::record::SessionRecord;
use crate::store::RefreshRequest;
use crate::time::Millis;
use crate::token::{MalformedToken, TokenHash};

/// The text prefix of a refresh token.
pub const PREFIX: &str = "rft_";
const ID_LEN: usize = 16;
const GEN_LEN: usize = 4;
const SECRET_LEN: usize = 32;
const TAG_LEN: usize = 16;
const RAW_LEN: usize = ID_LEN + GEN_LEN + SECRET_LEN + TAG_LEN;
/// 68 bytes in unpadded base64url.
const ENCODED_LEN: usize = 91;
/// Domain tag of the stored hash.
const HASH_TAG: &[u8] = b"sk/v1/refresh\0";
/// Domain tags of the two MACs.
const TAG_MAC: &[u8] = b"sk/v1/refresh-tag\0";
const NEXT_MAC: &[u8] = b"sk/v1/refresh-next\0";

/// A refresh token. Its `Debug` is redacted and its secret zeroed on drop.
pub struct RefreshToken {
    id: SessionId,
    generation: u32,
    secret: Zeroizing<[u8; SECRET_LEN]>,
}

impl RefreshToken {
    /// The first refresh token of session `id` (generation 0, random).
    pub fn root(id: SessionId) -> Result<Self, RandomUnavailable> {
        let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
        fill_random(secret.as_mut())?;
        Ok(RefreshToken {
            id,
            generation: 0,
            secret,
        })
    }

    /// The token that replaces this one at the next refresh: always the same
    /// for the same parent and key. The generation saturates at `u32::MAX`
    /// (a session refreshed every second for 136 years).
    #[must_use]
    pub fn successor(&self, key: &SecretKey) -> Self {
        let generation = self.generation.saturating_add(1);
        let mac = key.mac(&[
            NEXT_MAC,
            self.id.as_bytes(),
            &generation.to_be_bytes(),
            self.secret.as_ref(),
        ]);
        RefreshToken {
            id: self.id,
            generation,
            secret: Zeroizing::new(mac),
        }
    }

    /// Parses the one canonical spelling of a refresh token and checks its
    /// tag under `key`; a token we did not issue is [`MalformedToken`].
    pub fn parse(s: &str, key: &SecretKey) -> Result<Self, MalformedToken> {
        let rest = s.strip_prefix(PREFIX).ok_or(MalformedToken)?;
        if rest.len() != ENCODED_LEN {
            return Err(MalformedToken);
        }
        let mut raw = Zeroizing::new([0u8; RAW_LEN]);
        match URL_SAFE_NO_PAD.decode_slice(rest.as_bytes(), raw.as_mut()) {
            Ok(RAW_LEN) => {}
            _ => return Err(MalformedToken),
        }
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&raw[..ID_LEN]);
        let mut g = [0u8; GEN_LEN];
        g.copy_from_slice(&raw[ID_LEN..ID_LEN + GEN_LEN]);
        let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
        secret.copy_from_slice(&raw[ID_LEN + GEN_LEN..ID_LEN + GEN_LEN + SECRET_LEN]);
        let t = RefreshToken {
            id: SessionId::from_bytes(id),
            generation: u32::from_be_bytes(g),
            secret,
        };
        if ct_eq(&t.tag(key), &raw[RAW_LEN - TAG_LEN..]) {
            Ok(t)
        } else {
            Err(MalformedToken)
        }
    }

    fn tag(&self, key: &SecretKey) -> [u8; TAG_LEN] {
        let mac = key.mac(&[
            TAG_MAC,
            self.id.as_bytes(),
            &self.generation.to_be_bytes(),
            self.secret.as_ref(),
        ]);
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&mac[..TAG_LEN]);
        out
    }

    /// The token as text, to hand to its owner once. Never log it.
    #[must_use]
    pub fn expose_secret_with(&self, key: &SecretKey) -> String {
        let mut raw = Zeroizing::new([0u8; RAW_LEN]);
        raw[..ID_LEN].copy_from_slice(self.id.as_bytes());
        raw[ID_LEN..ID_LEN + GEN_LEN].copy_from_slice(&self.generation.to_be_bytes());
        raw[ID_LEN + GEN_LEN..ID_LEN + GEN_LEN + SECRET_LEN].copy_from_slice(self.secret.as_ref());
        raw[RAW_LEN - TAG_LEN..].copy_from_slice(&self.tag(key));
        let mut s = String::with_capacity(PREFIX.len() + ENCODED_LEN);
        s.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(raw.as_ref(), &mut s);
        s
    }

    /// The session this token belongs to (not a secret: ids are public).
    #[must_use]
    pub fn session_id(&self) -> SessionId {
        self.id
    }

    /// How many refreshes preceded this token in its session.
    #[must_use]
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// The hash a store keeps of this token.
    #[must_use]
    pub fn hash(&self) -> TokenHash {
        TokenHash::compute(HASH_TAG, &self.secret)
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RefreshToken({PREFIX}[redacted], gen {})",
            self.generation
        )
    }
}

/// What a session keeps of its refresh tokens: enough to rotate (the
/// current hash), to answer a retry of the parent inside the grace window
/// (the previous hash and its deadline) and to mint the same access token
/// again for that retry (when the current token was issued).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshState {
    /// Hash of the refresh token that the next refresh must present.
    pub current: TokenHash,
    /// Hash of its parent, accepted as a retry until `grace_until`.
    pub previous: Option<TokenHash>,
    /// The current token's generation (0 at create or upgrade).
    pub generation: u32,
    /// When the current token (and its access token) was issued.
    pub issued_at: Millis,
    /// Until when (exclusive) the parent may be replayed.
    pub grace_until: Millis,
}

impl RefreshState {
    /// The state of a freshly issued root token.
    #[must_use]
    pub fn new(root: &RefreshToken, now: Millis) -> Self {
        RefreshState {
            current: root.hash(),
            previous: None,
            generation: root.generation(),
            issued_at: now,
            grace_until: now,
        }
    }
}

/// What a store must do with a [`RefreshRequest`] for a record: the one
/// rule every store follows (see [`RefreshOutcome`](crate::store::RefreshOutcome)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshVerdict {
    /// Make the successor current ([`RefreshState::rotated`]).
    Rotate,
    /// A retry of the parent inside the grace window: write nothing.
    Replay,
    /// An old token reused: revoke the session (`reuse_detected`).
    Reuse,
    /// Not a live session with refresh state: write nothing.
    NotLive,
}

/// The verdict for `req` on `rec` (whose tenant and id the store matched).
#[must_use]
pub fn judge(rec: &SessionRecord, req: &RefreshRequest) -> RefreshVerdict {
    let Some(st) = rec.refresh.as_deref().filter(|_| rec.is_live(req.now)) else {
        return RefreshVerdict::NotLive;
    };
    if st.current == req.presented && st.generation == req.presented_generation {
        RefreshVerdict::Rotate
    } else if st.previous == Some(req.presented)
        && req.presented_generation.checked_add(1) == Some(st.generation)
        && req.now < st.grace_until
    {
        RefreshVerdict::Replay
    } else {
        RefreshVerdict::Reuse
    }
}

impl RefreshState {
    /// Whether `presented` could still refresh at `now`: the current token,
    /// or its parent before the grace deadline (what upgrade and
    /// introspection accept of a refresh token; [`judge`] also checks the
    /// generations).
    #[must_use]
    pub fn accepts(&self, presented: TokenHash, now: Millis) -> bool {
        self.current == presented || (self.previous == Some(presented) && now < self.grace_until)
    }

    /// The state after a rotation for `req` (verdict [`RefreshVerdict::Rotate`]).
    #[must_use]
    pub fn rotated(&self, req: &RefreshRequest) -> Self {
        RefreshState {
            current: req.successor,
            previous: Some(req.presented),
            generation: self.generation.saturating_add(1),
            issued_at: req.now,
            grace_until: req.grace_until,
        }
    }
}

/// Applies a rotation to a record: the new refresh state, and `last_seen_at`
/// moved to `now` (a refresh is activity; it never moves the absolute
/// deadline or the version).
pub fn apply_rotation(rec: &mut SessionRecord, req: &RefreshRequest) {
    if let Some(st) = rec.refresh.as_deref_mut() {
        *st = st.rotated(req);
        rec.last_seen_at = rec.last_seen_at.max(req.now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_round_trip_and_derivation() {
        let key = SecretKey::from_bytes([3; 32]);
        let id = SessionId::generate();
        let root = RefreshToken::root(id).unwrap();
        let s = root.expose_secret_with(&key);
        assert!(s.starts_with("rft_"));
        assert_eq!(s.len(), 4 + ENCODED_LEN);
        let back = RefreshToken::parse(&s, &key).unwrap();
        assert_eq!(back.hash(), root.hash());
        assert_eq!(back.session_id(), id);
        let a = root.successor(&key);
        let b = back.successor(&key);
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.generation(), 1);
        assert_ne!(a.hash(), root.hash());
        assert_ne!(a.successor(&key).hash(), a.hash());
        assert_eq!(format!("{root:?}"), "RefreshToken(rft_[redacted], gen 0)");
        // Another key derives another successor and refuses the tag.
        let other = SecretKey::from_bytes([4; 32]);
        assert_ne!(root.successor(&other).hash(), a.hash());
        assert!(RefreshToken::parse(&s, &other).is_err());
    }

    #[test]
    fn any_changed_character_is_refused() {
        let key = SecretKey::from_bytes([5; 32]);
        let s = RefreshToken::root(SessionId::generate())
            .unwrap()
            .expose_secret_with(&key);
        for i in 4..s.len() {
            let mut b = s.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let t = String::from_utf8(b).unwrap();
            assert!(
                RefreshToken::parse(&t, &key).is_err(),
                "accepted a change at {i}"
            );
        }
        for bad in [
            String::new(),
            "rft_".into(),
            format!("{s}="),
            format!(" {s}"),
            s.replacen("rft_", "ses_", 1),
            "x".repeat(100_000),
        ] {
            assert!(RefreshToken::parse(&bad, &key).is_err());
        }
    }
}
