//! Upstream grants as a store keeps them: per session and provider, the
//! provider's tokens **sealed** (AEAD ciphertext made by the engine's
//! vault; a store never sees a plaintext token), with what every node must
//! see in the clear to refresh a grant once across all of them: who holds
//! the refresh lease and until when, when the next upstream call may be
//! made (back-off), and whether the grant is dead.
//!
//! Grants live in the session record, so revoking, retiring or purging a
//! session deletes its grants in the same write. Changing them is a
//! compare-and-set on the whole list ([`SessionStore::swap_grants`]),
//! which never changes the session's `version`.
//!
//! [`SessionStore::swap_grants`]: crate::store::SessionStore::swap_grants

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::Millis;

/// Most grants (providers) one session may hold.
pub const MAX_GRANTS: usize = 16;
/// Longest provider name, in bytes.
pub const MAX_PROVIDER_LEN: usize = 64;
/// Largest sealed grant, in bytes.
pub const MAX_SEALED_LEN: usize = 16 * 1024;

/// Whether `name` is a valid provider name: 1 to [`MAX_PROVIDER_LEN`]
/// bytes of `a-z 0-9 _ -`.
#[must_use]
pub fn valid_provider(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PROVIDER_LEN
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

/// A node refreshing a grant, until `until` (then anyone may take over).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The holder (a random id per engine instance).
    pub holder: u64,
    /// When the lease lapses.
    pub until: Millis,
}

/// One provider's grant, sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedGrant {
    /// The provider's configured name.
    pub provider: String,
    /// The vault key that sealed it.
    pub key_id: u32,
    /// Nonce and ciphertext (with its tag) of the grant's tokens.
    pub sealed: Vec<u8>,
    /// A node refreshing it now.
    pub lease: Option<Lease>,
    /// No upstream call before this (back-off after a failure).
    pub not_before: Millis,
    /// The provider refused its refresh token (`invalid_grant`) or the
    /// refreshed identity changed: the user must sign in again.
    pub dead: bool,
}

impl fmt::Debug for SealedGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedGrant")
            .field("provider", &self.provider)
            .field("key_id", &self.key_id)
            .field("sealed_len", &self.sealed.len())
            .field("lease", &self.lease)
            .field("not_before", &self.not_before)
            .field("dead", &self.dead)
            .finish()
    }
}

/// A session's grants: at most one per provider, at most [`MAX_GRANTS`].
/// A record keeps `None` rather than an empty list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grants(pub Vec<SealedGrant>);

impl Grants {
    /// The grant of `provider`.
    #[must_use]
    pub fn get(&self, provider: &str) -> Option<&SealedGrant> {
        self.0.iter().find(|g| g.provider == provider)
    }

    /// Replaces (or adds) the grant of its provider.
    pub fn put(&mut self, grant: SealedGrant) {
        match self.0.iter_mut().find(|g| g.provider == grant.provider) {
            Some(g) => *g = grant,
            None => self.0.push(grant),
        }
    }

    /// Removes the grant of `provider`; whether there was one.
    pub fn remove(&mut self, provider: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|g| g.provider != provider);
        self.0.len() != before
    }

    /// `None` when empty (what a record keeps), else boxed.
    #[must_use]
    pub fn into_stored(self) -> Option<Box<Grants>> {
        (!self.0.is_empty()).then(|| Box::new(self))
    }

    /// Whether every grant is within the limits (provider names, sizes,
    /// count, one per provider).
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.0.len() <= MAX_GRANTS
            && self.0.iter().enumerate().all(|(i, g)| {
                valid_provider(&g.provider)
                    && g.sealed.len() <= MAX_SEALED_LEN
                    && !self.0[..i].iter().any(|o| o.provider == g.provider)
            })
    }

    /// The stored bytes (postcard of a frozen format-1 struct).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let v: Vec<GrantV1<'_>> = self
            .0
            .iter()
            .map(|g| GrantV1 {
                provider: &g.provider,
                key_id: g.key_id,
                sealed: &g.sealed,
                lease: g.lease.map(|l| (l.holder, l.until.as_millis())),
                not_before: g.not_before.as_millis(),
                dead: g.dead,
            })
            .collect();
        // Serialising plain structs into a Vec does not fail.
        postcard::to_stdvec(&v).unwrap_or_default()
    }

    /// Reads [`Grants::to_bytes`]; `None` for anything else or for grants
    /// outside the limits. Reads exactly one value: `Some((grants, rest))`.
    #[must_use]
    pub fn take_from_bytes(b: &[u8]) -> Option<(Grants, &[u8])> {
        let (v, rest): (Vec<GrantV1<'_>>, &[u8]) = postcard::take_from_bytes(b).ok()?;
        let g = Grants(
            v.into_iter()
                .map(|g| SealedGrant {
                    provider: g.provider.to_owned(),
                    key_id: g.key_id,
                    sealed: g.sealed.to_vec(),
                    lease: g.lease.map(|(holder, until)| Lease {
                        holder,
                        until: Millis::from_millis(until),
                    }),
                    not_before: Millis::from_millis(g.not_before),
                    dead: g.dead,
                })
                .collect(),
        );
        (g.is_valid() && !g.0.is_empty()).then_some((g, rest))
    }
}

/// One grant, stored format 1 (frozen: never reorder or change a field).
#[derive(Serialize, Deserialize)]
struct GrantV1<'a> {
    provider: &'a str,
    key_id: u32,
    #[serde(with = "serde_bytes_compat")]
    sealed: &'a [u8],
    lease: Option<(u64, i64)>,
    not_before: i64,
    dead: bool,
}

/// Bytes as one length-prefixed run (postcard's `&[u8]` encoding).
mod serde_bytes_compat {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(b: &&[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<&'de [u8], D::Error> {
        <&[u8]>::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(p: &str) -> SealedGrant {
        SealedGrant {
            provider: p.into(),
            key_id: 7,
            sealed: vec![1, 2, 3],
            lease: Some(Lease {
                holder: 9,
                until: Millis::from_millis(5),
            }),
            not_before: Millis::from_millis(-1),
            dead: false,
        }
    }

    #[test]
    fn round_trip_and_limits() {
        let mut g = Grants::default();
        g.put(grant("idp"));
        g.put(grant("git-hub_2"));
        let mut again = grant("idp");
        again.dead = true;
        g.put(again);
        assert_eq!(g.0.len(), 2);
        assert!(g.get("idp").unwrap().dead);
        let b = g.to_bytes();
        assert_eq!(Grants::take_from_bytes(&b), Some((g.clone(), &[][..])));
        for cut in 0..b.len() {
            assert!(Grants::take_from_bytes(&b[..cut]).is_none(), "cut {cut}");
        }
        assert!(g.remove("idp"));
        assert!(!g.remove("idp"));
        assert!(Grants::default().into_stored().is_none());
        for bad in ["", "Upper", "a b", &"x".repeat(65)] {
            assert!(!valid_provider(bad), "{bad:?}");
        }
        let dup = Grants(vec![grant("a"), grant("a")]);
        assert!(!dup.is_valid());
        assert!(Grants::take_from_bytes(&dup.to_bytes()).is_none());
        assert!(!format!("{:?}", grant("a")).contains("[1, 2, 3]"));
    }
}
