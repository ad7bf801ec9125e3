//! Access + refresh token pairs (feature `jwt`): minting a pair for a
//! session, refresh with rotation and reuse detection, and validation of
//! access JWTs.
//!
//! - A pair session keeps refresh state in its record (current and previous
//!   refresh hash, generation, grace deadline). [`SessionManager::refresh`]
//!   is one conditional store write: the current token rotates; its parent,
//!   presented again inside the grace window while its successor is unused,
//!   gets the **same** pair again (the successor is derived, not stored, and
//!   the access token is minted from what the record holds); any other
//!   reuse revokes the session (`reuse_detected`).
//! - An access JWT is checked against the key ring (the algorithm from our
//!   key, never from the header) **and** its session must still be live, so
//!   a revoke works at once. A verified token's claims are cached by the
//!   hash of its text until its `exp`, so the signature is checked once; the
//!   session is read on every validation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::{Map, Value};
use sessionkit_core::crypto::tagged_sha256;
use sessionkit_core::store::{RefreshOutcome, RefreshRequest};
use sessionkit_core::{
    DurationMs, ExpiryCause, Liveness, Millis, RefreshToken, SessionId, SessionRecord,
    SessionStore, TenantId,
};

use super::SessionManager;
use super::lifecycle::{Created, Issue, NewSession, UpgradeResult, ValidateRequest, Validation};
use crate::error::{EngineError, invalid};
use crate::events::EventKind;
use crate::jwt::{
    AccessClaims, AccessError, CachedAccess, Expectation, KeyRing, MAX_LEEWAY_SECS, MAX_TOKEN_LEN,
    VerifiedCache,
};

/// How access tokens are minted and checked.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    /// `iss` of every access token.
    pub issuer: String,
    /// `aud` of access tokens, unless the tenant has its own.
    pub audience: String,
    /// Per-tenant audiences.
    pub tenant_audiences: HashMap<TenantId, String>,
    /// Lifetime of an access token (default 10 minutes); never past the
    /// session's absolute deadline.
    pub access_ttl: DurationMs,
    /// How long a refresh token's parent may be replayed for the same pair
    /// (default 30 s).
    pub refresh_grace: DurationMs,
    /// Clock skew forgiven on `exp`/`iat` (default 0: the engine checks the tokens it issued against its own clock; at most 60 for nodes whose clocks drift).
    pub leeway_secs: u64,
    /// Top-level session attributes copied into the token as claims (a
    /// registered claim name is never overridden).
    pub claims: Vec<String>,
    /// How many verified tokens are remembered (default 100,000).
    pub cache_capacity: usize,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            issuer: "sessiond".into(),
            audience: "sessiond".into(),
            tenant_audiences: HashMap::new(),
            access_ttl: DurationMs::from_secs(600),
            refresh_grace: DurationMs::from_secs(30),
            leeway_secs: 0,
            claims: Vec::new(),
            cache_capacity: 100_000,
        }
    }
}

impl AccessConfig {
    fn check(&self) -> Result<(), EngineError> {
        if self.leeway_secs > MAX_LEEWAY_SECS {
            return Err(invalid("leeway_secs", "at most 60"));
        }
        if self.access_ttl.as_millis() < 1000 {
            return Err(invalid("access_ttl_secs", "at least 1"));
        }
        if self.refresh_grace.as_millis() < 0 {
            return Err(invalid("refresh_grace_secs", "must not be negative"));
        }
        if self.issuer.is_empty() || self.audience.is_empty() {
            return Err(invalid("issuer", "issuer and audience must not be empty"));
        }
        Ok(())
    }

    fn audience_of(&self, tenant: TenantId) -> &str {
        self.tenant_audiences
            .get(&tenant)
            .map_or(self.audience.as_str(), String::as_str)
    }
}

/// The engine's access-token state: the key ring (replaced whole on
/// rotation), the configuration and the verified-token cache.
pub(crate) struct AccessTokens {
    ring: RwLock<RingState>,
    /// `ring`'s epoch, readable without the lock: a cache hit checks it on
    /// every validation.
    epoch: AtomicU64,
    config: AccessConfig,
    /// What a token must say: the issuer, and one of the audiences this
    /// engine mints (the default or a tenant's; the caller then checks its
    /// tenant's), so the signature is checked once.
    expect: Expectation,
    cache: VerifiedCache,
}

/// The ring in force and what the cache needs to know of it.
#[derive(Clone)]
struct RingState {
    ring: KeyRing,
    /// Bumped by every [`SessionManager::set_key_ring`]: a cache entry of
    /// another generation is verified again.
    epoch: u64,
    /// When the first key of the ring retires (unix seconds): no cache hit
    /// is used past it, so a token of a retired key stops verifying then.
    first_retirement: i64,
}

impl RingState {
    fn new(ring: KeyRing, epoch: u64) -> Self {
        let first_retirement = ring
            .keys()
            .iter()
            .filter_map(|k| k.retires_at)
            .min()
            .unwrap_or(i64::MAX);
        RingState {
            ring,
            epoch,
            first_retirement,
        }
    }
}

impl AccessTokens {
    pub(crate) fn new(ring: KeyRing, config: AccessConfig) -> Result<Self, EngineError> {
        config.check()?;
        let expect = Expectation {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            other_audiences: config.tenant_audiences.values().cloned().collect(),
            leeway_secs: config.leeway_secs,
        };
        Ok(AccessTokens {
            cache: VerifiedCache::with_capacity(config.cache_capacity.max(1)),
            ring: RwLock::new(RingState::new(ring, 0)),
            epoch: AtomicU64::new(0),
            expect,
            config,
        })
    }

    fn state(&self) -> RingState {
        self.ring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn ring(&self) -> KeyRing {
        self.state().ring
    }
}

/// An access + refresh pair, handed to its holder once. `Debug` hides the
/// tokens.
pub struct IssuedPair {
    /// The session as stored.
    pub session: SessionRecord,
    /// The access JWT.
    pub access_token: String,
    /// When it expires.
    pub access_expires_at: Millis,
    /// The refresh token (single use).
    pub refresh_token: String,
    /// The subject's sessions a create or upgrade displaced at the
    /// per-subject cap (empty for a refresh).
    pub evicted: Vec<SessionId>,
}

impl std::fmt::Debug for IssuedPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedPair")
            .field("session", &self.session)
            .field("access_token", &"[redacted]")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_token", &"[redacted]")
            .field("evicted", &self.evicted)
            .finish()
    }
}

/// The answer to a refresh.
#[derive(Debug)]
pub enum RefreshResult {
    /// A new pair — or, for a retry of the same token inside the grace
    /// window, the same pair again.
    Refreshed(IssuedPair),
    /// An old refresh token was reused: the session is revoked
    /// (`refresh_token_reused`).
    Reused,
    /// Past a deadline (`session_expired`).
    Expired(ExpiryCause),
    /// Malformed, forged, unknown, revoked or another tenant's
    /// (`invalid_token`).
    Invalid,
}

/// What [`SessionManager::introspect`] found of a live token.
#[derive(Debug, Clone)]
pub struct Introspected {
    /// The token's session (live).
    pub session: SessionRecord,
    /// `session_token`, `access_token` or `refresh_token`.
    pub token_type: &'static str,
    /// When the token was issued (unix seconds): an access token's `iat`,
    /// a refresh token's issue time, a session token's session creation.
    pub iat: i64,
    /// When it stops being valid at the latest (unix seconds): an access
    /// token's `exp`; the session's absolute deadline otherwise.
    pub exp: i64,
}

/// What checking an access token without the store gave.
pub(super) enum Verified {
    Valid(Arc<CachedAccess>),
    Expired,
    Invalid,
}

/// Whether `token` may be a compact JWS, in O(1): every JWT header is a
/// JSON object, so its base64url starts with `eyJ` (`{"`). The verifier
/// checks the rest.
pub(super) fn looks_like_jwt(token: &str) -> bool {
    token.len() <= MAX_TOKEN_LEN && token.starts_with("eyJ")
}

fn secs(t: Millis) -> i64 {
    t.as_millis().div_euclid(1000)
}

impl<S: SessionStore> SessionManager<S> {
    fn access(&self) -> Result<&AccessTokens, EngineError> {
        self.tokens
            .as_ref()
            .ok_or_else(|| invalid("issue", "access tokens are not configured"))
    }

    /// Whether access tokens are configured.
    pub fn issues_access_tokens(&self) -> bool {
        self.tokens.is_some()
    }

    /// The key ring in force (to persist it, list it or publish it).
    pub fn key_ring(&self) -> Option<KeyRing> {
        self.tokens.as_ref().map(AccessTokens::ring)
    }

    /// Puts a new key ring in force (after a rotation): new tokens carry
    /// its active `kid`; tokens of keys it no longer holds stop verifying.
    pub fn set_key_ring(&self, ring: KeyRing) -> Result<(), EngineError> {
        let t = self.access()?;
        {
            let mut st = t
                .ring
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let epoch = st.epoch.wrapping_add(1);
            *st = RingState::new(ring, epoch);
            t.epoch.store(epoch, Ordering::Release);
        }
        // A token verified under a key that is gone must not stay valid: the
        // entries of the old generation are dropped, and one inserted by a
        // verification still running under the old ring is never used.
        t.cache.clear();
        Ok(())
    }

    /// The public keys as a JWK Set (`{"keys": [...]}`), for
    /// `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Option<Value> {
        let now = secs(self.now());
        self.tokens.as_ref().map(|t| t.ring().jwks(now))
    }

    /// Creates a session issued as an access + refresh pair.
    pub async fn create_pair(
        &self,
        tenant: TenantId,
        req: NewSession,
    ) -> Result<IssuedPair, EngineError> {
        self.access()?;
        let created = self.create_as(tenant, req, Issue::Pair).await?;
        self.pair_of(created)
    }

    /// Upgrades the session of `token` (any of its tokens) to `subject` at
    /// `assurance` (`None`: the default login), issuing an access + refresh
    /// pair for the new session.
    pub async fn upgrade_pair(
        &self,
        tenant: TenantId,
        token: &str,
        subject: sessionkit_core::Subject,
        keep_attributes: &[String],
        assurance: Option<sessionkit_core::Assurance>,
    ) -> Result<Result<IssuedPair, UpgradeResult>, EngineError> {
        self.access()?;
        match self
            .upgrade_as(
                tenant,
                token,
                subject,
                keep_attributes,
                assurance,
                Issue::Pair,
            )
            .await?
        {
            UpgradeResult::Upgraded(created) => Ok(Ok(self.pair_of(created)?)),
            other => Ok(Err(other)),
        }
    }

    fn pair_of(&self, created: Created) -> Result<IssuedPair, EngineError> {
        let refresh = created
            .refresh
            .ok_or_else(|| invalid("issue", "the session has no refresh token"))?;
        let mut pair = self.issue(created.session, &refresh)?;
        pair.evicted = created.evicted;
        Ok(pair)
    }

    /// The pair for `session` whose current refresh token is `refresh`:
    /// the access token is minted from the record alone (issue time from
    /// the refresh state, `jti` from the refresh hash), so minting it twice
    /// gives the same claims.
    fn issue(
        &self,
        session: SessionRecord,
        refresh: &RefreshToken,
    ) -> Result<IssuedPair, EngineError> {
        let t = self.access()?;
        let st = session
            .refresh
            .as_deref()
            .copied()
            .ok_or_else(|| invalid("issue", "the session has no refresh state"))?;
        let iat = secs(st.issued_at);
        let exp =
            secs(st.issued_at.saturating_add(t.config.access_ttl)).min(secs(session.expires_at));
        let jti = {
            let h = tagged_sha256(b"sk/v1/jti\0", &[st.current.as_bytes()]);
            base64_url(&h[..16])
        };
        let mut extra = Map::new();
        if !t.config.claims.is_empty()
            && let Ok(Value::Object(attrs)) =
                serde_json::from_str::<Value>(session.attributes.as_json())
        {
            for name in &t.config.claims {
                if let Some(v) = attrs.get(name) {
                    extra.insert(name.clone(), v.clone());
                }
            }
        }
        let claims = AccessClaims {
            iss: t.config.issuer.clone(),
            aud: t.config.audience_of(session.tenant).to_owned(),
            sub: session.subject.as_ref().map(|s| s.as_str().to_owned()),
            sid: session.id.to_string(),
            jti,
            iat,
            exp,
            extra,
        };
        let ring = t.ring();
        let access_token = match ring.sign_access(&claims) {
            Ok(token) => token,
            // The store write is done: never fail it for the custom claims.
            // Without them the token is small (and the same every time, so a
            // retry in the grace window gets the same token).
            Err(_) if !claims.extra.is_empty() => {
                tracing::warn!(session_id = %session.id, "access token too large with its custom claims; minted without them");
                let mut bare = claims.clone();
                bare.extra.clear();
                ring.sign_access(&bare)
                    .map_err(|e| invalid("access_token", e.to_string()))?
            }
            Err(e) => return Err(invalid("access_token", e.to_string())),
        };
        Ok(IssuedPair {
            access_expires_at: Millis::from_millis(exp.saturating_mul(1000)),
            refresh_token: refresh.expose_secret_with(&self.keys.refresh),
            access_token,
            session,
            evicted: Vec::new(),
        })
    }

    /// Refreshes a pair: rotates the refresh token (see the module docs).
    /// A malformed or forged token is refused before any store I/O.
    pub async fn refresh(
        &self,
        tenant: TenantId,
        refresh_token: &str,
    ) -> Result<RefreshResult, EngineError> {
        let t = self.access()?;
        let Ok(token) = RefreshToken::parse(refresh_token, &self.keys.refresh) else {
            return Ok(RefreshResult::Invalid);
        };
        if token.generation() == u32::MAX {
            // 2^32 refreshes: no successor can be told apart from it.
            return Ok(RefreshResult::Invalid);
        }
        let successor = token.successor(&self.keys.refresh);
        let now = self.now();
        let req = RefreshRequest {
            tenant,
            id: token.session_id(),
            presented: token.hash(),
            presented_generation: token.generation(),
            successor: successor.hash(),
            now,
            grace_until: now.saturating_add(t.config.refresh_grace),
        };
        match self.store.refresh(req).await? {
            RefreshOutcome::Rotated(rec) => {
                self.keep_floor(now).await;
                self.emit(
                    &rec,
                    now,
                    EventKind::Refreshed {
                        generation: successor.generation(),
                    },
                );
                Ok(RefreshResult::Refreshed(self.issue(*rec, &successor)?))
            }
            RefreshOutcome::Replayed(rec) => {
                // The successor is derived from the presented token: it is
                // the current one unless the key changed.
                if rec.refresh.as_ref().map(|st| st.current) != Some(successor.hash()) {
                    return Ok(RefreshResult::Invalid);
                }
                Ok(RefreshResult::Refreshed(self.issue(*rec, &successor)?))
            }
            RefreshOutcome::ReuseDetected { subject } => {
                self.emit_reuse(tenant, token.session_id(), subject, now);
                Ok(RefreshResult::Reused)
            }
            RefreshOutcome::NotLive => {
                // Only to tell an expired session from a dead one.
                let expired = self
                    .store
                    .get_by_id(tenant, token.session_id())
                    .await?
                    .filter(|r| {
                        r.refresh
                            .as_ref()
                            .is_some_and(|st| st.current == req.presented)
                    })
                    .and_then(|r| match r.liveness(now) {
                        Liveness::Expired(c) => Some(c),
                        _ => None,
                    });
                Ok(expired.map_or(RefreshResult::Invalid, RefreshResult::Expired))
            }
        }
    }

    /// Checks an access token against the key ring, without the store.
    pub(super) fn verify_access_token(&self, token: &str) -> Verified {
        let Some(t) = self.tokens.as_ref() else {
            return Verified::Invalid;
        };
        let now = secs(self.now());
        if let Some(hit) = t.cache.get(token, now)
            && hit.ring_epoch == t.epoch()
        {
            return Verified::Valid(hit);
        }
        // Any audience this engine mints is accepted here; the caller
        // checks its tenant's (`audience_of`).
        let st = t.state();
        match st.ring.verify_access(token, &t.expect, now) {
            Ok(claims) => {
                Verified::Valid(
                    t.cache
                        .insert_with(token, claims, st.epoch, st.first_retirement),
                )
            }
            Err(AccessError::Expired) => Verified::Expired,
            Err(AccessError::Invalid) => Verified::Invalid,
        }
    }

    /// Whether `token` (a session token, an access JWT, or a refresh token
    /// that could refresh now) is live, for gateways (RFC 7662): a read
    /// only — no fingerprint or CSRF check, no touch, nothing written.
    pub async fn introspect(
        &self,
        tenant: TenantId,
        token: &str,
    ) -> Result<Option<Introspected>, EngineError> {
        let Ok(Some(credential)) = self.credential(tenant, token) else {
            return Ok(None);
        };
        let Some(rec) = self.lookup(tenant, &credential).await? else {
            return Ok(None);
        };
        let now = self.now();
        if !rec.is_live(now) {
            return Ok(None);
        }
        let (token_type, iat, exp) = match credential {
            super::lifecycle::Credential::Session(_) => {
                ("session_token", secs(rec.created_at), secs(rec.expires_at))
            }
            super::lifecycle::Credential::Refresh(_, presented) => {
                let Some(st) = rec
                    .refresh
                    .as_deref()
                    .filter(|st| st.accepts(presented, now))
                else {
                    return Ok(None);
                };
                ("refresh_token", secs(st.issued_at), secs(rec.expires_at))
            }
            super::lifecycle::Credential::Access(_) => {
                let Verified::Valid(hit) = self.verify_access_token(token) else {
                    return Ok(None);
                };
                ("access_token", hit.claims.iat, hit.claims.exp)
            }
        };
        Ok(Some(Introspected {
            session: rec,
            token_type,
            iat,
            exp,
        }))
    }

    /// The session an access token names, if it verifies and is for
    /// `tenant`'s audience (no store I/O); `Err` if it is genuine but
    /// expired.
    pub(super) fn access_session(
        &self,
        tenant: TenantId,
        token: &str,
    ) -> Result<Option<SessionId>, super::lifecycle::AccessExpired> {
        let Some(t) = self.tokens.as_ref() else {
            return Ok(None);
        };
        match self.verify_access_token(token) {
            Verified::Valid(hit) if hit.claims.aud == t.config.audience_of(tenant) => {
                Ok(hit.claims.sid.parse::<SessionId>().ok())
            }
            Verified::Valid(_) | Verified::Invalid => Ok(None),
            Verified::Expired => Err(super::lifecycle::AccessExpired),
        }
    }

    /// Validates an access JWT: its signature and claims (no store I/O if
    /// they fail), its audience for `tenant`, then its session, which must
    /// be live — as for a session token (fingerprint, CSRF, touch).
    pub(super) async fn validate_access(
        &self,
        tenant: TenantId,
        token: &str,
        req: &ValidateRequest,
    ) -> Result<Validation, EngineError> {
        let Some(t) = self.tokens.as_ref() else {
            return Ok(Validation::Invalid);
        };
        let hit = match self.verify_access_token(token) {
            Verified::Valid(c) => c,
            Verified::Expired => return Ok(Validation::TokenExpired),
            Verified::Invalid => return Ok(Validation::Invalid),
        };
        if hit.claims.aud != t.config.audience_of(tenant) {
            return Ok(Validation::Invalid);
        }
        // Once the session was read for this token, it is found again by its
        // store key (the fast index) and must still be the same session.
        let (id, found) = match hit.session_key.get() {
            Some((id, key)) => (*id, self.read_by_token(tenant, key).await?),
            None => {
                let Ok(id) = hit.claims.sid.parse::<SessionId>() else {
                    return Ok(Validation::Invalid);
                };
                (id, self.store.get_by_id(tenant, id).await?)
            }
        };
        let Some(mut rec) = found.filter(|r| r.id == id) else {
            return Ok(Validation::Invalid);
        };
        let _ = hit.session_key.set((id, rec.token_hash));
        // Only pair sessions mint access tokens.
        if rec.refresh.is_none() && rec.is_live(self.now()) {
            return Ok(Validation::Invalid);
        }
        Ok(match self.admit(tenant, &mut rec, req).await {
            None => Validation::Valid { session: rec },
            Some(refused) => refused,
        })
    }
}

fn base64_url(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}
