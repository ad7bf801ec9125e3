//! Sealing upstream grants: AES-256-GCM (aws-lc-rs) under a ring of vault
//! keys, with the grant's place as associated data — tenant, session id,
//! provider and key id — so a ciphertext copied to another session, another
//! provider or another key id does not open (and counts as absent). Old
//! keys keep opening what they sealed; the current key seals.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use sessionkit_core::random::fill_random;
use sessionkit_core::upstream::SealedGrant;
use sessionkit_core::{Millis, SessionId, TenantId};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::EngineError;

/// What a grant holds in the clear once opened. Zeroed on drop; its
/// `Debug` shows no token.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct GrantSecret {
    /// The provider's access token.
    pub access_token: String,
    /// Its refresh token, if it gave one.
    pub refresh_token: Option<String>,
    /// When the access token expires (Unix ms).
    pub expires_at_ms: i64,
    /// The scopes granted, space-separated.
    pub scope: Option<String>,
    /// The ID token's `sub`, when one was given: a refresh whose ID token
    /// names another subject kills the grant.
    pub sub: Option<String>,
    /// Failed refresh calls in a row (for the back-off).
    #[serde(default)]
    pub failures: u32,
}

impl GrantSecret {
    /// When the access token expires.
    #[must_use]
    pub fn expires_at(&self) -> Millis {
        Millis::from_millis(self.expires_at_ms)
    }
}

impl std::fmt::Debug for GrantSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantSecret")
            .field("expires_at_ms", &self.expires_at_ms)
            .field("scope", &self.scope)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// One vault key.
struct VaultKey {
    id: u32,
    key: LessSafeKey,
}

/// The vault keys: the newest seals, every one opens.
pub struct VaultKeys {
    /// Newest last.
    keys: Vec<VaultKey>,
}

impl std::fmt::Debug for VaultKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<u32> = self.keys.iter().map(|k| k.id).collect();
        f.debug_struct("VaultKeys").field("ids", &ids).finish()
    }
}

impl VaultKeys {
    /// A ring of `(id, 32-byte key)`, oldest first: the last one seals.
    /// Ids must be distinct; at least one key.
    ///
    /// # Errors
    /// [`EngineError::InvalidInput`] for an empty ring or a repeated id.
    pub fn new(keys: Vec<(u32, Zeroizing<[u8; 32]>)>) -> Result<Self, EngineError> {
        let bad = |m: &str| EngineError::InvalidInput {
            field: "vault_keys",
            message: m.to_owned(),
        };
        if keys.is_empty() {
            return Err(bad("at least one vault key"));
        }
        let mut out = Vec::with_capacity(keys.len());
        for (id, bytes) in keys {
            if out.iter().any(|k: &VaultKey| k.id == id) {
                return Err(bad("vault key ids must be distinct"));
            }
            let key = UnboundKey::new(&AES_256_GCM, &bytes[..])
                .map_err(|_| bad("a vault key must be 32 bytes"))?;
            out.push(VaultKey {
                id,
                key: LessSafeKey::new(key),
            });
        }
        Ok(VaultKeys { keys: out })
    }

    /// The id of the key that seals.
    #[must_use]
    pub fn current_id(&self) -> u32 {
        self.keys.last().map_or(0, |k| k.id)
    }

    /// Seals `secret` for `provider` of session `id` in `tenant` with the
    /// current key: the grant as stored, with no lease, no back-off, alive.
    ///
    /// # Errors
    /// [`EngineError::Random`] without a nonce source, or
    /// [`EngineError::InvalidInput`] when the grant is too large.
    pub fn seal(
        &self,
        tenant: TenantId,
        id: SessionId,
        provider: &str,
        secret: &GrantSecret,
    ) -> Result<SealedGrant, EngineError> {
        let unsealable = || EngineError::InvalidInput {
            field: "grant",
            message: "the grant could not be sealed".to_owned(),
        };
        let key = self.keys.last().ok_or_else(unsealable)?;
        let mut plain = Zeroizing::new(serde_json::to_vec(secret).map_err(|_| unsealable())?);
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let aad = aad(tenant, id, provider, key.id);
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad[..]),
                &mut *plain,
            )
            .map_err(|_| unsealable())?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + plain.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&plain);
        if sealed.len() > sessionkit_core::upstream::MAX_SEALED_LEN {
            return Err(EngineError::InvalidInput {
                field: "grant",
                message: "the grant's tokens are too large".to_owned(),
            });
        }
        Ok(SealedGrant {
            provider: provider.to_owned(),
            key_id: key.id,
            sealed,
            lease: None,
            not_before: Millis::from_millis(0),
            dead: false,
        })
    }

    /// Opens a stored grant of session `id` in `tenant`; `None` when it
    /// does not open here (another session's or provider's ciphertext, an
    /// unknown key id, damaged bytes): such a grant counts as absent.
    #[must_use]
    pub fn open(
        &self,
        tenant: TenantId,
        id: SessionId,
        grant: &SealedGrant,
    ) -> Option<GrantSecret> {
        let key = self.keys.iter().find(|k| k.id == grant.key_id)?;
        if grant.sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = grant.sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let aad = aad(tenant, id, &grant.provider, grant.key_id);
        let mut buf = Zeroizing::new(body.to_vec());
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(&aad[..]), &mut buf[..])
            .ok()?;
        serde_json::from_slice(plain).ok()
    }
}

/// The associated data: where a grant belongs and which key sealed it.
fn aad(tenant: TenantId, id: SessionId, provider: &str, key_id: u32) -> Vec<u8> {
    let mut a = Vec::with_capacity(64);
    a.extend_from_slice(b"sessionkit-grant-v1\0");
    a.extend_from_slice(tenant.as_str().as_bytes());
    a.push(0);
    a.extend_from_slice(id.as_bytes());
    a.extend_from_slice(provider.as_bytes());
    a.push(0);
    a.extend_from_slice(&key_id.to_be_bytes());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ids: &[u32]) -> VaultKeys {
        VaultKeys::new(
            ids.iter()
                .map(|&i| (i, Zeroizing::new([u8::try_from(i).unwrap_or(9); 32])))
                .collect(),
        )
        .unwrap()
    }

    fn secret() -> GrantSecret {
        GrantSecret {
            access_token: "at-secret".into(),
            refresh_token: Some("rt-secret".into()),
            expires_at_ms: 1_000,
            scope: Some("openid".into()),
            sub: Some("u1".into()),
            failures: 0,
        }
    }

    #[test]
    fn opens_only_where_it_was_sealed() {
        let ring = keys(&[1, 2]);
        let (t, id) = (TenantId::DEFAULT, SessionId::generate());
        let g = ring.seal(t, id, "idp", &secret()).unwrap();
        assert_eq!(g.key_id, 2);
        assert!(!g.sealed.windows(9).any(|w| w == b"at-secret"));
        assert_eq!(ring.open(t, id, &g).unwrap().access_token, "at-secret");
        // Moved to another session, provider or tenant: absent.
        assert!(ring.open(t, SessionId::generate(), &g).is_none());
        let mut other = g.clone();
        other.provider = "other".into();
        assert!(ring.open(t, id, &other).is_none());
        assert!(ring.open(TenantId::new("t2").unwrap(), id, &g).is_none());
        // Wrong key id, unknown key id, truncated or flipped bytes: absent.
        let mut wrong = g.clone();
        wrong.key_id = 1;
        assert!(ring.open(t, id, &wrong).is_none());
        wrong.key_id = 77;
        assert!(ring.open(t, id, &wrong).is_none());
        for cut in [0, 5, 12, g.sealed.len() - 1] {
            let mut short = g.clone();
            short.sealed.truncate(cut);
            assert!(ring.open(t, id, &short).is_none(), "cut {cut}");
        }
        let mut flipped = g.clone();
        flipped.sealed[20] ^= 1;
        assert!(ring.open(t, id, &flipped).is_none());
        // After a rotation the old key still opens; the new one seals.
        let rotated = keys(&[1, 2, 3]);
        assert!(rotated.open(t, id, &g).is_some());
        assert_eq!(rotated.seal(t, id, "idp", &secret()).unwrap().key_id, 3);
        assert!(!format!("{:?}", secret()).contains("secret"));
    }
}
