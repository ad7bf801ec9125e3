//! [`Session`]: what a handler behind the layer sees of its request's
//! session, and how it changes it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sessionkit_core::{
    Assurance, ClientInfo, Millis, RevokeReason, SessionId, SessionRecord, SessionStore,
    SessionToken, Subject, TenantId,
};
use zeroize::Zeroizing;

use super::rate_limit::CreationLimiter;
use crate::{Created, EngineError, NewSession, PatchResult, SessionManager, UpgradeResult};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The engine operations a [`Session`] needs, with the store type erased so
/// that handlers name `Session`, not `Session<SomeStore>`.
pub(crate) trait Ops: Send + Sync {
    fn create(
        &self,
        tenant: TenantId,
        req: NewSession,
    ) -> BoxFuture<'_, Result<Created, EngineError>>;
    fn patch(
        &self,
        tenant: TenantId,
        id: SessionId,
        patch: Value,
    ) -> BoxFuture<'_, Result<PatchResult, EngineError>>;
    fn upgrade(
        &self,
        tenant: TenantId,
        token: Zeroizing<String>,
        subject: Subject,
        keep: Vec<String>,
        assurance: Option<Assurance>,
    ) -> BoxFuture<'_, Result<UpgradeResult, EngineError>>;
    fn revoke(&self, tenant: TenantId, id: SessionId) -> BoxFuture<'_, Result<(), EngineError>>;
    fn csrf_token(&self, id: &SessionId) -> String;
    fn now(&self) -> Millis;
}

impl<S: SessionStore> Ops for SessionManager<S> {
    fn create(
        &self,
        tenant: TenantId,
        req: NewSession,
    ) -> BoxFuture<'_, Result<Created, EngineError>> {
        Box::pin(SessionManager::create(self, tenant, req))
    }
    fn patch(
        &self,
        tenant: TenantId,
        id: SessionId,
        patch: Value,
    ) -> BoxFuture<'_, Result<PatchResult, EngineError>> {
        Box::pin(async move { self.patch_attributes(tenant, id, &patch, None).await })
    }
    fn upgrade(
        &self,
        tenant: TenantId,
        token: Zeroizing<String>,
        subject: Subject,
        keep: Vec<String>,
        assurance: Option<Assurance>,
    ) -> BoxFuture<'_, Result<UpgradeResult, EngineError>> {
        Box::pin(async move {
            let issue = crate::manager::Issue::Session;
            self.upgrade_as(tenant, &token, subject, &keep, assurance, issue)
                .await
        })
    }
    fn revoke(&self, tenant: TenantId, id: SessionId) -> BoxFuture<'_, Result<(), EngineError>> {
        Box::pin(async move {
            SessionManager::revoke(self, tenant, id, RevokeReason::Logout)
                .await
                .map(|_| ())
        })
    }
    fn csrf_token(&self, id: &SessionId) -> String {
        SessionManager::csrf_token(self, id)
    }
    fn now(&self) -> Millis {
        SessionManager::now(self)
    }
}

/// Why a [`Session`] write could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The request gets no stored session: a skipped path or a bot.
    #[error("this request has no tracked session (a skipped path or a bot)")]
    Untracked,
    /// The session was revoked or expired while the request ran.
    #[error("the session is no longer live")]
    Gone,
    /// The request authenticates with a bearer token: a new session's
    /// token cannot be handed out in a cookie (log such clients in through
    /// the engine or sessiond).
    #[error("a bearer-token request cannot start a session through the cookie layer")]
    BearerSession,
    /// The request's method is safe (`GET`, `HEAD`, `OPTIONS`, `TRACE`):
    /// no CSRF check guards it, so it may not change the session (a link
    /// or an image on another site could make it). Change state from a
    /// `POST` (or another unsafe method), or see
    /// [`SessionLayer::with_changes_on_safe_methods`](super::SessionLayer::with_changes_on_safe_methods).
    #[error("a GET, HEAD, OPTIONS or TRACE request cannot change the session")]
    SafeMethod,
    /// This client started too many anonymous sessions lately (the
    /// layer's [`CreationRateLimit`](super::CreationRateLimit)): none was
    /// made. The request goes on without a session; as a response this is
    /// 429 with `Retry-After`.
    #[error("too many new sessions from this client; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until this client may start one again.
        retry_after_secs: u64,
    },
    /// [`Session::require_recent_auth`]: the user signed in longer ago than
    /// allowed, or is not signed in. As a response, 401
    /// `reauthentication_required`: send the user through sign-in again.
    #[error("the user must sign in again for this")]
    ReauthenticationRequired,
    /// The value could not be turned into JSON.
    #[error("the attribute value is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The engine refused or failed (store down: fail closed).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl SessionError {
    /// The stable code of the error's response body (`{"error": "<code>"}`):
    /// `untracked_request`, `bearer_session`, `change_on_safe_method`,
    /// `reauthentication_required`,
    /// `session_gone`, `rate_limited`, `invalid_request` (a value that is
    /// not JSON), or an
    /// engine error's [`ErrorKind::code`](crate::ErrorKind::code).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            SessionError::Untracked => "untracked_request",
            SessionError::BearerSession => "bearer_session",
            SessionError::SafeMethod => "change_on_safe_method",
            SessionError::ReauthenticationRequired => "reauthentication_required",
            SessionError::Gone => "session_gone",
            SessionError::RateLimited { .. } => "rate_limited",
            SessionError::NotJson(_) => crate::ErrorKind::InvalidInput.code(),
            SessionError::Engine(e) => e.kind().code(),
        }
    }
}

/// Where the request's session came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// No credential was presented (yet).
    None,
    Cookie,
    Bearer,
}

/// What the response must do to the cookie.
pub(crate) enum CookieChange {
    Keep,
    /// A new token, kept until the session's absolute deadline.
    Set {
        token: SessionToken,
        expires_at: Millis,
    },
    Clear,
}

struct State {
    record: Option<SessionRecord>,
    /// The credential of `record`, while it is the presented one (its
    /// text, checked by the validation that found `record`).
    token: Option<Zeroizing<String>>,
    source: Source,
    cookie: CookieChange,
}

/// What the handler may write.
#[derive(Default)]
pub(crate) struct Writes {
    /// Whether it may change the session: an unsafe method (its CSRF
    /// checks passed), or a safe one where the app opted in.
    pub(crate) may_change: bool,
    /// The per-client limit on new anonymous sessions, if on.
    pub(crate) limiter: Option<Arc<CreationLimiter>>,
}

pub(crate) struct Inner {
    /// `None`: untracked.
    ops: Option<Arc<dyn Ops>>,
    writes: Writes,
    tenant: TenantId,
    client: Client,
    state: Mutex<State>,
}

/// What the request tells of its client, kept as it came until a session
/// is made (most requests make none).
#[derive(Clone, Debug, Default)]
pub(crate) struct Client {
    pub(crate) ip: Option<std::net::IpAddr>,
    pub(crate) user_agent: Option<http::HeaderValue>,
    pub(crate) trace_id: Option<String>,
}

impl Client {
    pub(crate) fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_ref().and_then(|v| v.to_str().ok())
    }

    /// As the engine records it; a user agent the engine would refuse
    /// (too long, control characters) is dropped, not fatal.
    pub(crate) fn info(&self) -> ClientInfo {
        let mut info = ClientInfo {
            ip: self.ip,
            user_agent: self.user_agent().map(str::to_owned),
            ..ClientInfo::default()
        };
        if info.validate().is_err() {
            info.user_agent = None;
        }
        info
    }
}

/// The request's session, put into its extensions by
/// [`SessionLayer`](super::SessionLayer) (in axum, an extractor). Clones
/// share one state; reads take a short lock, writes go to the engine and
/// are reflected in the response's cookie.
///
/// A visitor without a session has none until the app stores something:
/// [`Session::insert`] creates an anonymous session then, and the
/// response sets its cookie. [`Session::login`] upgrades it (new id and
/// token: see docs/sessions.md) or creates a session for the subject;
/// [`Session::logout`] revokes it and clears the cookie.
///
/// Only a state-changing request (`POST`, `PUT`, `PATCH`, `DELETE`, …),
/// which passed the layer's CSRF checks, may change the session: on `GET`,
/// `HEAD`, `OPTIONS` and `TRACE` every write ([`Session::insert`],
/// [`Session::remove`], [`Session::login`], [`Session::logout`]) returns
/// [`SessionError::SafeMethod`] and writes nothing, unless the app opted
/// in with
/// [`SessionLayer::with_changes_on_safe_methods`](super::SessionLayer::with_changes_on_safe_methods).
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state();
        f.debug_struct("Session")
            .field("tracked", &self.is_tracked())
            .field("id", &st.record.as_ref().map(|r| r.id))
            .finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Session {
    pub(crate) fn tracked(
        ops: Arc<dyn Ops>,
        tenant: TenantId,
        client: Client,
        source: Source,
        found: Option<(SessionRecord, Zeroizing<String>)>,
        clear_cookie: bool,
        writes: Writes,
    ) -> Self {
        let (record, token) = match found {
            Some((r, t)) => (Some(r), Some(t)),
            None => (None, None),
        };
        Session::new(
            Some(ops),
            writes,
            tenant,
            client,
            State {
                record,
                token,
                source,
                cookie: if clear_cookie {
                    CookieChange::Clear
                } else {
                    CookieChange::Keep
                },
            },
        )
    }

    pub(crate) fn untracked(tenant: TenantId, client: Client) -> Self {
        Session::new(
            None,
            Writes::default(),
            tenant,
            client,
            State {
                record: None,
                token: None,
                source: Source::None,
                cookie: CookieChange::Keep,
            },
        )
    }

    fn new(
        ops: Option<Arc<dyn Ops>>,
        writes: Writes,
        tenant: TenantId,
        client: Client,
        state: State,
    ) -> Self {
        Session {
            inner: Arc::new(Inner {
                ops,
                writes,
                tenant,
                client,
                state: Mutex::new(state),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    /// The engine, for a write: refused when the request is untracked, or
    /// when its method is safe and the app did not opt in (before anything
    /// is written).
    fn ops(&self) -> Result<&Arc<dyn Ops>, SessionError> {
        let ops = self.inner.ops.as_ref().ok_or(SessionError::Untracked)?;
        if !self.inner.writes.may_change {
            return Err(SessionError::SafeMethod);
        }
        Ok(ops)
    }

    /// Whether the request's session is anonymous (or there is none).
    #[must_use]
    pub fn is_anonymous(&self) -> bool {
        self.subject().is_none()
    }

    /// The request's trace id: the trace id of a W3C `traceparent` header,
    /// else an `X-Request-Id` of 1–128 letters, digits, `-`, `_`, `.` or
    /// `:`; anything else is ignored (a client's text never becomes a log
    /// line as it came).
    #[must_use]
    pub fn trace_id(&self) -> Option<&str> {
        self.inner.client.trace_id.as_deref()
    }

    /// The client's IP address, as the layer took it (through trusted
    /// proxies only).
    #[must_use]
    pub fn client_ip(&self) -> Option<std::net::IpAddr> {
        self.inner.client.ip
    }

    /// Whether this request is tracked (not a skipped path, not a bot).
    #[must_use]
    pub fn is_tracked(&self) -> bool {
        self.inner.ops.is_some()
    }

    /// The live session, if there is one.
    #[must_use]
    pub fn record(&self) -> Option<SessionRecord> {
        self.state().record.clone()
    }

    /// The session's id (public, not a credential).
    #[must_use]
    pub fn id(&self) -> Option<SessionId> {
        self.state().record.as_ref().map(|r| r.id)
    }

    /// Step-up: `Ok` when a user signed in (the session's `auth_time`) at
    /// most `max_age` ago; else [`SessionError::ReauthenticationRequired`]
    /// (anonymous, no session, or a sign-in too old). Call it before a
    /// sensitive action; a fresh [`Session::login`] satisfies it.
    ///
    /// # Errors
    /// [`SessionError::ReauthenticationRequired`].
    pub fn require_recent_auth(&self, max_age: std::time::Duration) -> Result<(), SessionError> {
        let auth_time = self.state().record.as_ref().and_then(|r| r.auth_time);
        let (Some(at), Some(ops)) = (auth_time, &self.inner.ops) else {
            return Err(SessionError::ReauthenticationRequired);
        };
        let max = sessionkit_core::DurationMs::from_millis(
            i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX),
        );
        if ops.now().saturating_since(at) > max {
            return Err(SessionError::ReauthenticationRequired);
        }
        Ok(())
    }

    /// Step-up by level: `Ok` when the user signed in at assurance level
    /// `min_aal` or higher (see [`Session::login_with`]); else
    /// [`SessionError::ReauthenticationRequired`] (anonymous, no session,
    /// or a lower level).
    ///
    /// # Errors
    /// [`SessionError::ReauthenticationRequired`].
    pub fn require_aal(&self, min_aal: u8) -> Result<(), SessionError> {
        let aal = self.state().record.as_ref().map_or(0, SessionRecord::aal);
        if aal < min_aal {
            return Err(SessionError::ReauthenticationRequired);
        }
        Ok(())
    }

    /// Who is logged in; `None` when anonymous or without a session.
    #[must_use]
    pub fn subject(&self) -> Option<Subject> {
        self.state().record.as_ref().and_then(|r| r.subject.clone())
    }

    /// The top-level attribute `key`, deserialised; `None` if absent or of
    /// another shape.
    #[must_use]
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.state().record.as_ref()?.attributes.get(key)
    }

    /// The CSRF token to embed in pages and send back in `X-CSRF-Token` on
    /// state-changing requests.
    #[must_use]
    pub fn csrf_token(&self) -> Option<String> {
        let id = self.id()?;
        Some(self.inner.ops.as_ref()?.csrf_token(&id))
    }

    /// Sets the top-level attribute `key` (a merge patch, compare-and-set
    /// in the engine: never silently lost). Without a session, creates an
    /// anonymous one holding it, unless this client is over the layer's
    /// [`CreationRateLimit`](super::CreationRateLimit):
    /// [`SessionError::RateLimited`] then, and nothing is made.
    pub async fn insert(&self, key: &str, value: impl Serialize) -> Result<(), SessionError> {
        let value = serde_json::to_value(value).map_err(SessionError::NotJson)?;
        let mut patch = Map::new();
        patch.insert(key.to_owned(), value);
        self.apply(Value::Object(patch), true).await
    }

    /// Removes the top-level attribute `key`. Without a session, does
    /// nothing.
    pub async fn remove(&self, key: &str) -> Result<(), SessionError> {
        let mut patch = Map::new();
        patch.insert(key.to_owned(), Value::Null);
        self.apply(Value::Object(patch), false).await
    }

    async fn apply(&self, patch: Value, create: bool) -> Result<(), SessionError> {
        let ops = self.ops()?;
        let id = self.id();
        match id {
            Some(id) => match ops.patch(self.inner.tenant, id, patch).await? {
                PatchResult::Updated(rec) => {
                    self.state().record = Some(*rec);
                    Ok(())
                }
                PatchResult::NotFound | PatchResult::PreconditionFailed => {
                    self.forget();
                    Err(SessionError::Gone)
                }
            },
            None if create => {
                let attributes =
                    serde_json::value::to_raw_value(&patch).map_err(SessionError::NotJson)?;
                self.start(NewSession {
                    attributes: Some(attributes),
                    ..NewSession::default()
                })
                .await
            }
            None => Ok(()),
        }
    }

    /// Logs `subject` in. On top of a live session this is an upgrade: a
    /// new id and token, the old session revoked, only the attributes
    /// named in `keep_attributes` carried over (none if the subject
    /// changes). Without one, a new session for `subject`. The login has
    /// the default assurance (level 1, no methods): see
    /// [`Session::login_with`].
    pub async fn login(
        &self,
        subject: Subject,
        keep_attributes: &[&str],
    ) -> Result<(), SessionError> {
        self.sign_in(subject, keep_attributes, None).await
    }

    /// [`Session::login`], stating how strongly the user authenticated
    /// (level and methods, e.g. `Assurance::new(2, vec!["pwd".into(),
    /// "otp".into()])`). A step-up of a signed-in user is such a login with
    /// the same subject: the session gets a new id and token at the higher
    /// level, keeping the attributes named in `keep_attributes`.
    pub async fn login_with(
        &self,
        subject: Subject,
        keep_attributes: &[&str],
        assurance: Assurance,
    ) -> Result<(), SessionError> {
        self.sign_in(subject, keep_attributes, Some(assurance))
            .await
    }

    async fn sign_in(
        &self,
        subject: Subject,
        keep_attributes: &[&str],
        assurance: Option<Assurance>,
    ) -> Result<(), SessionError> {
        let ops = self.ops()?;
        let (source, token) = {
            let st = self.state();
            (st.source, st.token.clone())
        };
        if source == Source::Bearer {
            return Err(SessionError::BearerSession);
        }
        if let Some(token) = token {
            let keep = keep_attributes.iter().map(|s| (*s).to_owned()).collect();
            match ops
                .upgrade(
                    self.inner.tenant,
                    token,
                    subject.clone(),
                    keep,
                    assurance.clone(),
                )
                .await?
            {
                UpgradeResult::Upgraded(created) => {
                    self.adopt(created);
                    return Ok(());
                }
                // Revoked or expired meanwhile: log in afresh.
                UpgradeResult::Invalid
                | UpgradeResult::Expired(_)
                | UpgradeResult::TokenExpired => self.forget(),
            }
        }
        self.start(NewSession {
            subject: Some(subject),
            assurance,
            ..NewSession::default()
        })
        .await
    }

    /// Creates a session for this client and makes it the request's.
    async fn start(&self, req: NewSession) -> Result<(), SessionError> {
        if self.state().source == Source::Bearer {
            // Its token would have nowhere to go.
            return Err(SessionError::BearerSession);
        }
        let ops = self.ops()?;
        // Only an anonymous session counts against the client's limit: a
        // login is the app's decision, after its own checks.
        if req.subject.is_none()
            && let Some(limiter) = &self.inner.writes.limiter
        {
            limiter
                .check(self.inner.client.ip)
                .map_err(|retry_after_secs| SessionError::RateLimited { retry_after_secs })?;
        }
        let req = NewSession {
            client: self.inner.client.info(),
            ..req
        };
        let created = ops.create(self.inner.tenant, req).await?;
        self.adopt(created);
        Ok(())
    }

    /// Logs out: revokes the session (reason `logout`) and clears the
    /// cookie. Without a session, only clears the cookie.
    pub async fn logout(&self) -> Result<(), SessionError> {
        let ops = self.ops()?;
        if let Some(id) = self.id() {
            ops.revoke(self.inner.tenant, id).await?;
        }
        self.forget();
        Ok(())
    }

    /// Takes a new session as the request's, and its token for the cookie.
    fn adopt(&self, created: Created) {
        let mut st = self.state();
        let expires_at = created.session.expires_at;
        st.record = Some(created.session);
        // A later login in the same request upgrades this session.
        st.token = Some(Zeroizing::new(created.token.expose_secret()));
        st.source = Source::Cookie;
        st.cookie = CookieChange::Set {
            token: created.token,
            expires_at,
        };
    }

    /// Drops the request's session; a cookie that carried it is cleared.
    fn forget(&self) {
        let mut st = self.state();
        st.record = None;
        st.token = None;
        if st.source == Source::Cookie {
            st.cookie = CookieChange::Clear;
        }
    }

    /// What the response must do to the cookie, and whether the request
    /// came with a bearer token (its response then varies by it).
    pub(crate) fn take_cookie_change(&self) -> (CookieChange, bool) {
        let mut st = self.state();
        let change = std::mem::replace(&mut st.cookie, CookieChange::Keep);
        (change, st.source == Source::Bearer)
    }
}
