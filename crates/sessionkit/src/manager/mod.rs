//! [`SessionManager`]: the session engine, generic over any
//! [`SessionStore`]. It owns the policy, the server keys, the clock and the
//! event channel; stores only carry out atomic operations.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use sessionkit::{SessionManager, EngineKeys, NewSession, Validation, ValidateRequest};
//! use sessionkit_core::{Policy, TenantId, Subject};
//! use sessionkit::MemoryStore;
//!
//! let engine = SessionManager::builder(MemoryStore::new(), EngineKeys::generate().unwrap())
//!     .build()
//!     .await
//!     .unwrap();
//! let t = TenantId::DEFAULT;
//! let created = engine.create(t, NewSession::for_subject(Subject::new("user-1").unwrap())).await.unwrap();
//! let token = created.token.expose_secret();
//! match engine.validate(t, &token, &ValidateRequest::default()).await.unwrap() {
//!     Validation::Valid { session, .. } => assert_eq!(session.id, created.session.id),
//!     other => panic!("{other:?}"),
//! }
//! # });
//! ```

mod lifecycle;
mod queries;
mod revoke;
#[cfg(feature = "jwt")]
mod tokens;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use sessionkit_core::crypto::{SecretKey, csrf_token};
use sessionkit_core::random::RandomUnavailable;
use sessionkit_core::time::MonotonicNow;
use sessionkit_core::{
    ClientInfo, Clock, Fingerprint, Millis, Policy, SessionId, SessionRecord, SessionStore,
    SessionToken, SystemClock,
};
use tokio::sync::broadcast;

use crate::error::EngineError;
use crate::events::{Event, EventKind};

pub use lifecycle::{
    Created, Issue, MAX_KEEP_ATTRIBUTES, NewSession, PatchResult, UpgradeResult, ValidateRequest,
    Validation,
};
pub use queries::{MAX_PAGE, Page, SubjectPage};
pub use revoke::TokenRevocation;
#[cfg(feature = "jwt")]
pub use tokens::{AccessConfig, Introspected, IssuedPair, RefreshResult};

/// How often an operation that loses a version race is retried before it
/// gives up with [`EngineError::Conflict`].
const MAX_RETRIES: usize = 16;
/// How often the engine's time is persisted as the store's clock floor.
const FLOOR_PERSIST_EVERY_MS: i64 = 1000;

/// The server secrets the engine derives values from.
#[derive(Debug, Clone)]
pub struct EngineKeys {
    /// Key of the CSRF token (`HMAC(csrf, session id)`).
    pub csrf: SecretKey,
    /// Key from which refresh-token successors are derived.
    pub refresh: SecretKey,
}

impl EngineKeys {
    /// Fresh random keys (a library user that keeps no state across
    /// restarts; a server persists its keys instead).
    pub fn generate() -> Result<Self, RandomUnavailable> {
        Ok(EngineKeys {
            csrf: SecretKey::generate()?,
            refresh: SecretKey::generate()?,
        })
    }
}

/// The names of the engine's metrics (`<prefix>_revocations_total{reason}`,
/// `<prefix>_events_total{kind}`, `<prefix>_purged_total`,
/// `<prefix>_fingerprint_mismatch_total`, and the layer's
/// `<prefix>_creations_rate_limited_total`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetricNames {
    pub(crate) revocations: &'static str,
    pub(crate) events: &'static str,
    pub(crate) purged: &'static str,
    pub(crate) fingerprint_mismatch: &'static str,
    pub(crate) creations_rate_limited: &'static str,
}

impl MetricNames {
    const DEFAULT: MetricNames = MetricNames {
        revocations: "sessionkit_revocations_total",
        events: "sessionkit_events_total",
        purged: "sessionkit_purged_total",
        fingerprint_mismatch: "sessionkit_fingerprint_mismatch_total",
        creations_rate_limited: "sessionkit_creations_rate_limited_total",
    };

    fn with_prefix(prefix: &str) -> MetricNames {
        if prefix == "sessionkit" {
            return MetricNames::DEFAULT;
        }
        // Made once per engine; metric names must outlive the recorder.
        let name = |suffix: &str| -> &'static str {
            Box::leak(format!("{prefix}_{suffix}").into_boxed_str())
        };
        MetricNames {
            revocations: name("revocations_total"),
            events: name("events_total"),
            purged: name("purged_total"),
            fingerprint_mismatch: name("fingerprint_mismatch_total"),
            creations_rate_limited: name("creations_rate_limited_total"),
        }
    }
}

/// Builds a [`SessionManager`].
#[must_use]
pub struct SessionManagerBuilder<S> {
    store: S,
    keys: EngineKeys,
    policy: Policy,
    clock: Arc<dyn Clock>,
    event_capacity: usize,
    metrics: MetricNames,
    #[cfg(feature = "jwt")]
    tokens: Option<(crate::jwt::KeyRing, tokens::AccessConfig)>,
}

impl<S: SessionStore> SessionManagerBuilder<S> {
    /// Issues access JWTs signed with `ring` (and refresh tokens) as
    /// `config` says (feature `jwt`).
    #[cfg(feature = "jwt")]
    pub fn with_access_tokens(mut self, ring: crate::jwt::KeyRing, config: AccessConfig) -> Self {
        self.tokens = Some((ring, config));
        self
    }

    /// The policy (default: [`Policy::default`]).
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The clock (default: the system clock).
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How many events a subscriber may fall behind before it misses some.
    pub fn with_event_capacity(mut self, n: usize) -> Self {
        self.event_capacity = n.max(1);
        self
    }

    /// The prefix of the engine's metric names (default `sessionkit`; the
    /// server uses `sessiond`, so `sessiond_revocations_total{reason}`).
    pub fn with_metrics_prefix(mut self, prefix: &str) -> Self {
        self.metrics = MetricNames::with_prefix(prefix);
        self
    }

    /// Validates the policy, loads the store's clock floor, and builds.
    pub async fn build(self) -> Result<SessionManager<S>, EngineError> {
        self.policy
            .validate()
            .map_err(|e| EngineError::InvalidInput {
                field: e.field,
                message: e.why.to_string(),
            })?;
        #[cfg(feature = "jwt")]
        let tokens = match self.tokens {
            Some((ring, config)) => Some(tokens::AccessTokens::new(ring, config)?),
            None => None,
        };
        let floor = self.store.clock_floor().await?;
        let (events, _) = broadcast::channel(self.event_capacity);
        Ok(SessionManager {
            #[cfg(feature = "jwt")]
            tokens,
            store: self.store,
            keys: self.keys,
            policy: self.policy,
            clock: self.clock,
            now: MonotonicNow::new(floor),
            floor_persisted: AtomicI64::new(floor.as_millis()),
            events,
            metrics: self.metrics,
        })
    }
}

/// The session engine.
pub struct SessionManager<S> {
    store: S,
    keys: EngineKeys,
    policy: Policy,
    clock: Arc<dyn Clock>,
    now: MonotonicNow,
    /// The last time handed to [`SessionStore::persist_clock_floor`].
    floor_persisted: AtomicI64,
    events: broadcast::Sender<Event>,
    metrics: MetricNames,
    #[cfg(feature = "jwt")]
    tokens: Option<tokens::AccessTokens>,
}

impl<S> std::fmt::Debug for SessionManager<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S: SessionStore> SessionManager<S> {
    /// Starts building an engine over `store` with `keys`.
    pub fn builder(store: S, keys: EngineKeys) -> SessionManagerBuilder<S> {
        SessionManagerBuilder {
            store,
            keys,
            policy: Policy::default(),
            clock: Arc::new(SystemClock),
            event_capacity: 4096,
            metrics: MetricNames::DEFAULT,
            #[cfg(feature = "jwt")]
            tokens: None,
        }
    }

    /// The engine's time: the clock, clamped so it never goes backwards.
    pub fn now(&self) -> Millis {
        self.now.clamp(self.clock.now())
    }

    /// Persists the engine's time as the store's clock floor now. The engine
    /// does this by itself about once a second while it writes; call it at
    /// shutdown (before the store's final flush), so that after a restart
    /// with a clock set back no session this engine saw expire looks live.
    ///
    /// # Errors
    /// The store's, if it could not record it.
    pub async fn persist_clock_floor(&self) -> Result<(), crate::EngineError> {
        let now = self.now();
        self.floor_persisted
            .fetch_max(now.as_millis(), Ordering::AcqRel);
        Ok(self.store.persist_clock_floor(now).await?)
    }

    /// Persists the engine's time as the store's clock floor when a second
    /// or more has passed since the last time it did (best-effort).
    async fn keep_floor(&self, now: Millis) {
        let last = self.floor_persisted.load(Ordering::Relaxed);
        if now.as_millis().saturating_sub(last) < FLOOR_PERSIST_EVERY_MS {
            return;
        }
        if self
            .floor_persisted
            .compare_exchange(last, now.as_millis(), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
            && let Err(e) = self.store.persist_clock_floor(now).await
        {
            tracing::debug!(error = %e, "could not persist the clock floor");
        }
    }

    /// Sets every revocation counter to zero, so that each `reason` shows in
    /// an exporter before the first revocation.
    pub fn describe_metrics(&self) {
        for r in sessionkit_core::RevokeReason::ALL {
            metrics::counter!(self.metrics.revocations, "reason" => r.as_str()).absolute(0);
        }
    }

    /// The names of the engine's metrics (its prefix applied).
    pub(crate) fn metric_names(&self) -> &MetricNames {
        &self.metrics
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Subscribes to events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The CSRF token of a session id: `base64url(HMAC-SHA-256(csrf key,
    /// id))`. Create and upgrade return it; after a validation, compute it
    /// here when the response needs it.
    pub fn csrf_token(&self, id: &SessionId) -> String {
        csrf_token(&self.keys.csrf, id)
    }

    fn fingerprint_of(&self, client: &ClientInfo) -> Fingerprint {
        let ip = self
            .policy
            .fingerprint_includes_ip
            .then_some(client.ip)
            .flatten();
        let ua = client
            .user_agent
            .as_deref()
            .map(sessionkit_core::text::without_hidden);
        Fingerprint::compute(ua.as_deref(), ip)
    }

    fn emit(&self, rec: &SessionRecord, at: Millis, kind: EventKind) {
        self.emit_for(rec.tenant, Some(rec.id), rec.subject.clone(), at, kind);
    }

    /// `revoked{evicted}` for the sessions a create or upgrade of `rec`'s
    /// subject evicted.
    fn emit_evicted(&self, rec: &SessionRecord, at: Millis, evicted: Vec<SessionId>) {
        for id in evicted {
            self.emit_for(
                rec.tenant,
                Some(id),
                rec.subject.clone(),
                at,
                EventKind::Revoked {
                    reason: sessionkit_core::RevokeReason::Evicted,
                },
            );
        }
    }

    fn emit_for(
        &self,
        tenant: sessionkit_core::TenantId,
        session_id: Option<SessionId>,
        subject: Option<sessionkit_core::Subject>,
        at: Millis,
        kind: EventKind,
    ) {
        match &kind {
            EventKind::Revoked { reason } => {
                metrics::counter!(self.metrics.revocations, "reason" => reason.as_str())
                    .increment(1);
            }
            EventKind::SubjectRevoked { reason, count } => {
                metrics::counter!(self.metrics.revocations, "reason" => reason.as_str())
                    .increment(*count);
            }
            _ => {}
        }
        metrics::counter!(self.metrics.events, "kind" => kind.name()).increment(1);
        // No receiver is fine: events are best-effort in process.
        let _ = self.events.send(Event {
            tenant,
            session_id,
            subject,
            at,
            kind,
        });
    }

    fn new_token() -> Result<SessionToken, EngineError> {
        Ok(SessionToken::generate()?)
    }
}
