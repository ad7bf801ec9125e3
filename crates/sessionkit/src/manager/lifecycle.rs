//! Create, validate (with the throttled touch), upgrade and attribute patches.

use serde_json::Value;
use serde_json::value::RawValue;
use sessionkit_core::crypto::csrf_matches;
use sessionkit_core::store::{
    Change, CreateOutcome, Limits, RetireOutcome, RetireRequest, UpdateOutcome,
};
use sessionkit_core::{
    Assurance, Attributes, ClientInfo, DurationMs, ExpiryCause, FingerprintMode, Liveness, Millis,
    RefreshState, RefreshToken, SessionId, SessionRecord, SessionState, SessionStore, SessionToken,
    Subject, TenantId, TokenHash,
};

use super::{MAX_RETRIES, SessionManager};
use crate::error::{EngineError, invalid};
use crate::events::EventKind;

/// Most names `keep_attributes` may list.
pub const MAX_KEEP_ATTRIBUTES: usize = 64;

/// What to create.
#[derive(Debug, Clone, Default)]
pub struct NewSession {
    /// Who; `None` for an anonymous session.
    pub subject: Option<Subject>,
    /// Initial attributes: the raw text of a JSON object, as it came in
    /// (a server deserializes a request body's `attributes` straight into
    /// it). Checked and encoded by [`Attributes::from_json`] in one pass,
    /// without building a `Value` tree: a repeated key, nesting deeper or
    /// text larger than the policy's caps are refused. Keys keep their
    /// order. Build one with `serde_json::value::to_raw_value` or
    /// `RawValue::from_string`.
    pub attributes: Option<Box<RawValue>>,
    /// Client info.
    pub client: ClientInfo,
    /// Shorter idle timeout than the policy's, in seconds (1..=policy).
    pub idle_timeout_secs: Option<i128>,
    /// Shorter absolute timeout than the policy's, in seconds (1..=policy).
    pub absolute_timeout_secs: Option<i128>,
    /// How strongly the subject authenticated (level and methods); `None`:
    /// [`Assurance::DEFAULT_LOGIN`]. Only with a subject: an anonymous
    /// session has level 0.
    pub assurance: Option<Assurance>,
}

impl NewSession {
    /// An anonymous session with nothing else set.
    #[must_use]
    pub fn anonymous() -> Self {
        NewSession::default()
    }

    /// A session of `subject` with nothing else set.
    #[must_use]
    pub fn for_subject(subject: Subject) -> Self {
        NewSession {
            subject: Some(subject),
            ..NewSession::default()
        }
    }
}

/// A session just created or upgraded: the only moment its token is seen.
/// Its `Debug` does not show the token. Its CSRF token is
/// [`SessionManager::csrf_token`] of its id, computed by callers that hand
/// it out (cookie sessions), not by every create.
pub struct Created {
    /// The stored record.
    pub session: SessionRecord,
    /// The bearer token, to hand to the client once.
    pub token: SessionToken,
    /// The first refresh token, for a session issued as an access +
    /// refresh pair (`None` otherwise).
    pub refresh: Option<RefreshToken>,
    /// The subject's sessions this one displaced at the per-subject cap
    /// (`on_session_limit = "evict_oldest"`): already revoked.
    pub evicted: Vec<SessionId>,
}

/// What a create or upgrade hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Issue {
    /// A session token (cookie and opaque-token sessions).
    #[default]
    Session,
    /// Also a refresh token: the session keeps refresh state, and an access
    /// JWT can be minted for it (feature `jwt`).
    Pair,
}

/// Gives a new record refresh state for [`Issue::Pair`]; returns the root
/// refresh token.
fn with_refresh(
    rec: &mut SessionRecord,
    issue: Issue,
    now: Millis,
) -> Result<Option<RefreshToken>, EngineError> {
    match issue {
        Issue::Session => Ok(None),
        Issue::Pair => {
            let root = RefreshToken::root(rec.id)?;
            rec.refresh = Some(Box::new(RefreshState::new(&root, now)));
            Ok(Some(root))
        }
    }
}

/// A token a caller presented, checked as far as it can be without the
/// store: a session token's hash, or (feature `jwt`) the session named by a
/// genuine refresh token or a verified access token.
#[derive(Debug, Clone, Copy)]
pub(super) enum Credential {
    /// A session token.
    Session(TokenHash),
    /// A refresh token with a valid tag: its session and hash (which must
    /// still be the session's current or previous one).
    Refresh(SessionId, TokenHash),
    /// A verified access token: its session.
    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    Access(SessionId),
}

/// Whether `presented` may still act for `rec` as a refresh token: it is
/// the current one, or the previous one before the grace deadline.
fn refresh_usable(rec: &SessionRecord, presented: TokenHash, now: Millis) -> bool {
    rec.refresh
        .as_ref()
        .is_some_and(|st| st.accepts(presented, now))
}

/// A genuine access token past its `exp`.
#[derive(Debug, Clone, Copy)]
pub(super) struct AccessExpired;

/// What the caller presents with a token. Its `Debug` hides the CSRF token.
#[derive(Clone, Default)]
pub struct ValidateRequest {
    /// The CSRF token, for requests that change state.
    pub csrf_token: Option<String>,
    /// The client, for fingerprint binding.
    pub client: Option<ClientInfo>,
    /// The longest the user's sign-in (`auth_time`) may date back: an older
    /// one, or none (an anonymous session), is
    /// [`Validation::ReauthenticationRequired`] (step-up before a sensitive
    /// action). `None`: any.
    pub max_age: Option<DurationMs>,
    /// The lowest authenticator assurance level accepted
    /// ([`SessionRecord::aal`]): a session at a lower one (an anonymous
    /// session is level 0) is [`Validation::ReauthenticationRequired`].
    /// `None`: any.
    pub min_aal: Option<u8>,
}

impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created")
            .field("session", &self.session)
            .field("token", &self.token)
            .field("refresh", &self.refresh)
            .field("evicted", &self.evicted)
            .finish()
    }
}

impl std::fmt::Debug for ValidateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidateRequest")
            .field(
                "csrf_token",
                &self.csrf_token.as_ref().map(|_| "[redacted]"),
            )
            .field("client", &self.client)
            .field("max_age", &self.max_age)
            .field("min_aal", &self.min_aal)
            .finish()
    }
}

/// The answer to a validation. Unknown, forged, malformed, revoked and
/// other-tenant tokens are all [`Validation::Invalid`] (invariant 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validation {
    /// Live. `session` reflects the touch if one was written. Its CSRF
    /// token is [`SessionManager::csrf_token`] of its id, computed only by
    /// callers that hand it out (an HMAC is not free on the hot path).
    Valid {
        /// The session.
        session: SessionRecord,
    },
    /// Past a deadline, not yet purged.
    Expired(ExpiryCause),
    /// A genuine access JWT past its `exp`: the client refreshes
    /// (`token_expired`). Only for access tokens.
    TokenExpired,
    /// No live session for this token.
    Invalid,
    /// The token is valid but the presented CSRF token is not this
    /// session's.
    CsrfFailed,
    /// The session is live, but the user signed in longer ago than the
    /// request's `max_age` allows, or at a lower assurance level than its
    /// `min_aal` (or never: anonymous): sign in again (step-up). Nothing
    /// was written.
    ReauthenticationRequired,
}

/// The answer to an upgrade.
#[derive(Debug)]
pub enum UpgradeResult {
    /// The new session; the old token is dead.
    Upgraded(Created),
    /// No live session for this token (or another upgrade won the race).
    Invalid,
    /// Past a deadline.
    Expired(ExpiryCause),
    /// The presented access JWT is past its `exp` (`token_expired`).
    TokenExpired,
}

/// The answer to an attribute patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchResult {
    /// Written; the session as it now is.
    Updated(Box<SessionRecord>),
    /// No live session with that id.
    NotFound,
    /// `If-Match` named another version; nothing written.
    PreconditionFailed,
}

fn override_timeout(
    field: &'static str,
    v: Option<i128>,
    max: DurationMs,
) -> Result<DurationMs, EngineError> {
    let Some(v) = v else { return Ok(max) };
    let max_secs = max.as_secs();
    if v < 1 || v > i128::from(max_secs) {
        return Err(invalid(
            field,
            format!("must be an integer from 1 to {max_secs}"),
        ));
    }
    // In range of a u64 now: 1..=max_secs.
    Ok(DurationMs::from_secs(u64::try_from(v).unwrap_or(max_secs)))
}

/// A new live session at `now`: fresh id, the token's hash, version 1,
/// both deadlines from now; authenticated now (with `assurance`) if it has
/// a subject.
fn fresh_record(
    tenant: TenantId,
    token: &SessionToken,
    (subject, assurance): (Option<Subject>, Option<Assurance>),
    now: Millis,
    (idle, absolute): (DurationMs, DurationMs),
    attributes: Attributes,
    client: ClientInfo,
) -> SessionRecord {
    let assurance = assurance
        .filter(|_| subject.is_some())
        .and_then(Assurance::into_stored);
    SessionRecord {
        tenant,
        id: SessionId::generate(),
        token_hash: token.hash(),
        auth_time: subject.is_some().then_some(now),
        subject,
        created_at: now,
        last_seen_at: now,
        idle_timeout: idle,
        expires_at: now.saturating_add(absolute),
        attributes,
        client,
        version: 1,
        state: SessionState::Active,
        refresh: None,
        assurance,
        grants: None,
    }
}

impl<S: SessionStore> SessionManager<S> {
    fn limits(&self) -> Limits {
        Limits {
            per_subject: self
                .policy
                .max_sessions_per_subject
                .map(|m| (m, self.policy.on_session_limit)),
            anonymous: self.policy.max_anonymous_sessions,
            replaces: None,
        }
    }

    fn stored_client(&self, mut client: ClientInfo) -> ClientInfo {
        // Invisible characters (bidi controls, zero-width…) are removed
        // from the user agent before it is kept or shown anywhere.
        if let Some(ua) = &client.user_agent
            && let std::borrow::Cow::Owned(clean) = sessionkit_core::text::without_hidden(ua)
        {
            client.user_agent = Some(clean);
        }
        client.fingerprint = match self.policy.fingerprint {
            FingerprintMode::Off => None,
            _ => Some(self.fingerprint_of(&client)),
        };
        client
    }

    /// Creates a session. Per-session timeouts may only shorten the policy's;
    /// anything else is [`EngineError::InvalidInput`] naming the field.
    pub async fn create(&self, tenant: TenantId, req: NewSession) -> Result<Created, EngineError> {
        self.create_as(tenant, req, Issue::Session).await
    }

    /// [`SessionManager::create`], issuing a session token or, with
    /// [`Issue::Pair`], also the first refresh token (stored as a hash).
    pub async fn create_as(
        &self,
        tenant: TenantId,
        req: NewSession,
        issue: Issue,
    ) -> Result<Created, EngineError> {
        let anonymous = req.subject.is_none();
        let (idle_max, abs_max) = self.policy.timeouts(anonymous);
        let idle = override_timeout("idle_timeout_secs", req.idle_timeout_secs, idle_max)?;
        let absolute =
            override_timeout("absolute_timeout_secs", req.absolute_timeout_secs, abs_max)?;
        if req.idle_timeout_secs.is_some() && idle > absolute {
            return Err(invalid(
                "idle_timeout_secs",
                "must not exceed absolute_timeout_secs",
            ));
        }
        // With a short absolute override and no idle override, the idle
        // window is the whole (shorter) life: stated here, not clamped later.
        let idle = idle.min(absolute);
        if req.subject.is_none() && req.assurance.is_some() {
            return Err(invalid(
                "aal",
                "only a session with a subject has an assurance level",
            ));
        }
        let attributes = match &req.attributes {
            None => Attributes::empty(),
            Some(raw) => Attributes::from_json(raw.get(), &self.policy.attributes)?,
        };
        req.client
            .validate()
            .map_err(|e| invalid("client", e.to_string()))?;
        let client = self.stored_client(req.client);
        for _ in 0..MAX_RETRIES {
            let now = self.now();
            let token = Self::new_token()?;
            let mut rec = fresh_record(
                tenant,
                &token,
                (req.subject.clone(), req.assurance.clone()),
                now,
                (idle, absolute),
                attributes.clone(),
                client.clone(),
            );
            let refresh = with_refresh(&mut rec, issue, now)?;
            match self.store.create(rec.clone(), self.limits(), now).await? {
                CreateOutcome::Created { evicted } => {
                    self.emit(&rec, now, EventKind::Created);
                    self.emit_evicted(&rec, now, evicted.clone());
                    return Ok(Created {
                        session: rec,
                        token,
                        refresh,
                        evicted,
                    });
                }
                CreateOutcome::SubjectLimitReached => return Err(EngineError::SessionLimitReached),
                CreateOutcome::AnonymousLimitReached => {
                    return Err(EngineError::AnonymousLimitReached {
                        retry_after_secs: self.policy.touch_interval.as_secs().max(1),
                    });
                }
                // A 2^-256 token collision or a duplicate id: draw again.
                CreateOutcome::Duplicate => continue,
            }
        }
        Err(EngineError::Conflict)
    }

    /// Validates a session token. A malformed token is rejected before any
    /// store I/O; a failed validation writes nothing (invariant 3). A live
    /// session is touched when `touch_interval` has passed since it was last
    /// seen; the touch is best-effort and never fails the validation.
    pub async fn validate(
        &self,
        tenant: TenantId,
        token: &str,
        req: &ValidateRequest,
    ) -> Result<Validation, EngineError> {
        let Ok(parsed) = SessionToken::parse(token) else {
            #[cfg(feature = "jwt")]
            if super::tokens::looks_like_jwt(token) {
                // Boxed: keeps the opaque-token path's future small.
                return Box::pin(self.validate_access(tenant, token, req)).await;
            }
            return Ok(Validation::Invalid);
        };
        let hash = parsed.hash();
        let Some(mut rec) = self.read_by_token(tenant, &hash).await? else {
            return Ok(Validation::Invalid);
        };
        Ok(match self.admit(tenant, &mut rec, req).await {
            None => Validation::Valid { session: rec },
            Some(refused) => refused,
        })
    }

    /// The live session named by any of its tokens — a session token, an
    /// access JWT, or a refresh token that could still refresh (the
    /// current one, or its parent inside the grace window; any older one is
    /// a reuse, as on refresh: the session is revoked and the answer is
    /// `Invalid`). Unlike [`SessionManager::validate`] it never touches the
    /// session and checks no CSRF token or fingerprint: for callers that
    /// act on the session's behalf with the token as proof (the upstream
    /// vault), not for a user's request.
    ///
    /// # Errors
    /// The store's.
    pub async fn session_of(
        &self,
        tenant: TenantId,
        token: &str,
    ) -> Result<Validation, EngineError> {
        let credential = match self.credential(tenant, token) {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(Validation::Invalid),
            Err(AccessExpired) => return Ok(Validation::TokenExpired),
        };
        let Some(rec) = self.lookup(tenant, &credential).await? else {
            return Ok(Validation::Invalid);
        };
        let now = self.now();
        if let Credential::Refresh(_, presented) = credential
            && !refresh_usable(&rec, presented, now)
        {
            if rec.is_live(now) {
                self.revoke_for_reuse(&rec).await?;
            }
            return Ok(Validation::Invalid);
        }
        Ok(match rec.liveness(now) {
            Liveness::Live => Validation::Valid { session: rec },
            Liveness::Expired(cause) => Validation::Expired(cause),
            Liveness::Revoked(_) => Validation::Invalid,
        })
    }

    /// The record of a token for a validation. A record that looks idle-
    /// expired is read again past the store's near-cache, if it has one: a
    /// cached `last_seen_at` may predate another node's touch.
    pub(super) async fn read_by_token(
        &self,
        tenant: TenantId,
        hash: &TokenHash,
    ) -> Result<Option<SessionRecord>, EngineError> {
        let found = self.store.get_by_token(tenant, hash).await?;
        if let Some(r) = &found
            && r.liveness(self.now()) == Liveness::Expired(ExpiryCause::Idle)
        {
            return Ok(self.store.get_by_token_uncached(tenant, hash).await?);
        }
        Ok(found)
    }

    /// The rest of a validation once the record is found: liveness,
    /// fingerprint, CSRF, and the throttled touch (which updates `rec`).
    /// `None` when the session is valid; else the refusal. (The record is
    /// borrowed, not moved: it is large and this is the hot path.)
    pub(super) async fn admit(
        &self,
        tenant: TenantId,
        rec: &mut SessionRecord,
        req: &ValidateRequest,
    ) -> Option<Validation> {
        let now = self.now();
        match rec.liveness(now) {
            Liveness::Live => {}
            Liveness::Expired(cause) => return Some(Validation::Expired(cause)),
            Liveness::Revoked(_) => return Some(Validation::Invalid),
        }
        // Only a valid credential may cause a write (invariant 3).
        self.keep_floor(now).await;
        if !self.fingerprint_ok(rec, req.client.as_ref()) {
            return Some(Validation::Invalid);
        }
        if let Some(presented) = &req.csrf_token
            && !csrf_matches(&self.keys.csrf, &rec.id, presented)
        {
            return Some(Validation::CsrfFailed);
        }
        if let Some(max_age) = req.max_age
            && rec
                .auth_time
                .is_none_or(|t| now.saturating_since(t) > max_age)
        {
            return Some(Validation::ReauthenticationRequired);
        }
        if req.min_aal.is_some_and(|min| rec.aal() < min) {
            return Some(Validation::ReauthenticationRequired);
        }
        // A session whose own idle timeout is short is touched often enough
        // to keep its sliding window: at most every half idle timeout.
        let interval = self.policy.touch_interval.min(rec.idle_timeout.half());
        if now.saturating_since(rec.last_seen_at) >= interval {
            match self.store.touch(tenant, rec.id, now).await {
                Ok(true) => {
                    rec.last_seen_at = now;
                    self.emit(rec, now, EventKind::Touched);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "touch failed; the idle window is only shorter")
                }
            }
        }
        None
    }

    /// Checks a presented token as far as possible without the store:
    /// `Ok(None)` for a malformed, forged or unknown-kind token; `Err` for
    /// a genuine access token past its `exp`.
    pub(super) fn credential(
        &self,
        tenant: TenantId,
        token: &str,
    ) -> Result<Option<Credential>, AccessExpired> {
        if let Ok(t) = SessionToken::parse(token) {
            return Ok(Some(Credential::Session(t.hash())));
        }
        if let Ok(t) = RefreshToken::parse(token, &self.keys.refresh) {
            return Ok(Some(Credential::Refresh(t.session_id(), t.hash())));
        }
        #[cfg(feature = "jwt")]
        if super::tokens::looks_like_jwt(token) {
            return Ok(self.access_session(tenant, token)?.map(Credential::Access));
        }
        let _ = tenant;
        Ok(None)
    }

    /// The record a credential names, if the credential still holds for it.
    pub(super) async fn lookup(
        &self,
        tenant: TenantId,
        c: &Credential,
    ) -> Result<Option<SessionRecord>, EngineError> {
        Ok(match c {
            Credential::Session(h) => self.store.get_by_token(tenant, h).await?,
            // Any genuine refresh token of a pair session names it; which
            // ones a caller accepts is its own rule (see `upgrade_as`).
            Credential::Refresh(id, _) => self
                .store
                .get_by_id(tenant, *id)
                .await?
                .filter(|r| r.refresh.is_some()),
            Credential::Access(id) => self.store.get_by_id(tenant, *id).await?,
        })
    }

    fn fingerprint_ok(&self, rec: &SessionRecord, client: Option<&ClientInfo>) -> bool {
        let mode = self.policy.fingerprint;
        let Some(stored) = rec.client.fingerprint else {
            return true;
        };
        if mode == FingerprintMode::Off {
            return true;
        }
        let matches = client.is_some_and(|c| self.fingerprint_of(c) == stored);
        if !matches {
            metrics::counter!(self.metrics.fingerprint_mismatch).increment(1);
            tracing::info!(session_id = %rec.id, enforced = mode == FingerprintMode::Enforce, "client fingerprint mismatch");
        }
        matches || mode == FingerprintMode::Report
    }

    /// Logs `subject` in on top of the live session of `token` (or rotates
    /// it on a privilege change): one atomic write creates a new id and
    /// token, revokes the old session (`upgraded`), sets `auth_time = now`
    /// and restarts both deadlines with the policy's timeouts. Only the
    /// top-level attributes named in `keep_attributes` carry over, and none
    /// when the subject changes from one subject to another. Of racing
    /// upgrades of one token exactly one succeeds. The new session has
    /// [`Assurance::DEFAULT_LOGIN`]; [`SessionManager::upgrade_as`] states
    /// another (a step-up to a higher level is such an upgrade: same
    /// subject, new token).
    pub async fn upgrade(
        &self,
        tenant: TenantId,
        token: &str,
        subject: Subject,
        keep_attributes: &[String],
    ) -> Result<UpgradeResult, EngineError> {
        self.upgrade_as(
            tenant,
            token,
            subject,
            keep_attributes,
            None,
            Issue::Session,
        )
        .await
    }

    /// [`SessionManager::upgrade`], presenting any token of the session (a
    /// session token; with access tokens configured also its current
    /// refresh token or an access JWT), stating the login's `assurance`
    /// (`None`: [`Assurance::DEFAULT_LOGIN`]), and issuing a session token
    /// or, with [`Issue::Pair`], also a first refresh token.
    pub async fn upgrade_as(
        &self,
        tenant: TenantId,
        token: &str,
        subject: Subject,
        keep_attributes: &[String],
        assurance: Option<Assurance>,
        issue: Issue,
    ) -> Result<UpgradeResult, EngineError> {
        if keep_attributes.len() > MAX_KEEP_ATTRIBUTES {
            return Err(invalid(
                "keep_attributes",
                format!("at most {MAX_KEEP_ATTRIBUTES} names"),
            ));
        }
        let credential = match self.credential(tenant, token) {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(UpgradeResult::Invalid),
            Err(AccessExpired) => return Ok(UpgradeResult::TokenExpired),
        };
        for _ in 0..MAX_RETRIES {
            let Some(old) = self.lookup(tenant, &credential).await? else {
                return Ok(UpgradeResult::Invalid);
            };
            // A refresh token logs in only while it could refresh: the
            // current one, or its parent inside the grace window. Any other
            // genuine refresh token is a reuse, as on refresh: the session
            // is revoked.
            if let Credential::Refresh(_, presented) = credential
                && !refresh_usable(&old, presented, self.now())
            {
                if old.is_live(self.now()) {
                    self.revoke_for_reuse(&old).await?;
                }
                return Ok(UpgradeResult::Invalid);
            }
            let old_hash = old.token_hash;
            let now = self.now();
            match old.liveness(now) {
                Liveness::Live => {}
                Liveness::Expired(c) => return Ok(UpgradeResult::Expired(c)),
                Liveness::Revoked(_) => return Ok(UpgradeResult::Invalid),
            }
            let subject_changes = old.subject.as_ref().is_some_and(|s| *s != subject);
            let attributes = if subject_changes {
                Attributes::empty()
            } else {
                old.attributes.retain_named(keep_attributes)
            };
            let (idle, absolute) = self.policy.timeouts(false);
            let new_token = Self::new_token()?;
            let mut new = fresh_record(
                tenant,
                &new_token,
                (Some(subject.clone()), assurance.clone()),
                now,
                (idle, absolute),
                attributes,
                old.client.clone(),
            );
            let refresh = with_refresh(&mut new, issue, now)?;
            // Step 1: the successor, in its subject's place (the old
            // session is neither counted against the cap nor evicted).
            let limits = Limits {
                replaces: Some(old.id),
                ..self.limits()
            };
            let evicted = match self.store.create(new.clone(), limits, now).await? {
                CreateOutcome::Created { evicted } => {
                    self.emit_evicted(&new, now, evicted.clone());
                    evicted
                }
                CreateOutcome::SubjectLimitReached => {
                    // A racing upgrade of the same token may hold the slot
                    // its successor took: if the old session is gone, this
                    // one lost the race (`invalid_token`), it did not hit
                    // the cap.
                    let still = self.store.get_by_id(tenant, old.id).await?;
                    if !still.is_some_and(|r| r.is_live(now)) {
                        return Ok(UpgradeResult::Invalid);
                    }
                    return Err(EngineError::SessionLimitReached);
                }
                // A subject's session is never anonymous; a duplicate token
                // or id is drawn again.
                CreateOutcome::Duplicate | CreateOutcome::AnonymousLimitReached => continue,
            };
            // Step 2: retire the old session in its favour.
            let retire = RetireRequest {
                tenant,
                old_id: old.id,
                old_token_hash: old_hash,
                expected_version: old.version,
                successor: new.id,
                now,
            };
            match self.retire(retire).await {
                Ok(RetireOutcome::Retired) => {
                    self.emit(
                        &old,
                        now,
                        EventKind::Revoked {
                            reason: sessionkit_core::RevokeReason::Upgraded,
                        },
                    );
                    self.emit(&new, now, EventKind::Upgraded { from: old.id });
                    return Ok(UpgradeResult::Upgraded(Created {
                        session: new,
                        token: new_token,
                        refresh,
                        evicted,
                    }));
                }
                lost => {
                    // Another upgrade won, the old session changed, or the
                    // store failed: the successor was never handed out, so
                    // it goes (fail closed if even that fails: its token
                    // is known to nobody).
                    self.discard_successor(tenant, new.id, now).await;
                    match lost {
                        Ok(RetireOutcome::NotLive) => return Ok(UpgradeResult::Invalid),
                        Ok(_) => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Err(EngineError::Conflict)
    }

    /// Retires the old session of an upgrade; after a store error, tries
    /// once more, since the first try may have been written (a retry for
    /// the same successor answers `Retired` then).
    async fn retire(&self, req: RetireRequest) -> Result<RetireOutcome, EngineError> {
        match self.store.retire(req).await {
            Ok(out) => Ok(out),
            Err(e) if e.is_retryable() => Ok(self.store.retire(req).await?),
            Err(e) => Err(e.into()),
        }
    }

    /// Revokes an upgrade's successor that lost (best-effort: its token was
    /// never handed out).
    async fn discard_successor(&self, tenant: TenantId, id: SessionId, now: Millis) {
        let reason = sessionkit_core::RevokeReason::Upgraded;
        if let Err(e) = self.store.revoke(tenant, id, reason, now).await {
            tracing::warn!(session_id = %id, error = %e, "could not revoke an upgrade's unused successor");
        }
    }

    /// Applies an RFC 7396 merge patch to the attributes of a live session,
    /// as a compare-and-set on its version: with `if_match`, only if the
    /// session has that version; without, retried on races, so an
    /// acknowledged write is never silently lost.
    pub async fn patch_attributes(
        &self,
        tenant: TenantId,
        id: SessionId,
        patch: &Value,
        if_match: Option<u64>,
    ) -> Result<PatchResult, EngineError> {
        if !patch.is_object() {
            return Err(EngineError::Attributes(
                sessionkit_core::AttributeError::NotAnObject,
            ));
        }
        for _ in 0..MAX_RETRIES {
            let now = self.now();
            let Some(rec) = self.store.get_by_id(tenant, id).await? else {
                return Ok(PatchResult::NotFound);
            };
            if !rec.is_live(now) {
                return Ok(PatchResult::NotFound);
            }
            if if_match.is_some_and(|v| v != rec.version) {
                return Ok(PatchResult::PreconditionFailed);
            }
            let attributes = rec.attributes.merge_patch(patch, &self.policy.attributes)?;
            if attributes == rec.attributes {
                // A patch that changes nothing writes nothing: the version
                // (and the ETag) change only when the attributes do.
                return Ok(PatchResult::Updated(Box::new(rec)));
            }
            match self
                .store
                .update(tenant, id, rec.version, Change::Attributes(attributes), now)
                .await?
            {
                UpdateOutcome::Updated(new) => {
                    self.emit(
                        &new,
                        now,
                        EventKind::AttributesChanged {
                            version: new.version,
                        },
                    );
                    return Ok(PatchResult::Updated(new));
                }
                UpdateOutcome::NotLive => return Ok(PatchResult::NotFound),
                UpdateOutcome::VersionMismatch { .. } if if_match.is_some() => {
                    return Ok(PatchResult::PreconditionFailed);
                }
                UpdateOutcome::VersionMismatch { .. } => continue,
            }
        }
        Err(EngineError::Conflict)
    }
}
