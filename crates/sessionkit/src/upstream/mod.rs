//! The upstream token vault (feature `upstream`): per session and
//! provider, the access and refresh tokens of an OAuth 2.0 / OpenID
//! provider, sealed with the session ([`seal`]), handed out fresh and
//! refreshed **once across every node** sharing the store.
//!
//! How one refresh happens once: a grant is read from the store (never a
//! cache); when its access token expires within the provider's buffer, the
//! node takes the grant's **lease** by a compare-and-set of the session's
//! grants ([`SessionStore::swap_grants`]), calls the provider, and writes
//! the new tokens (and the rotated refresh token) while releasing the
//! lease, again by compare-and-set. Every other caller — on this node
//! (queued behind a local lock) or on another (polling the store) — waits
//! for the lease to go and takes the new tokens. A provider that refuses
//! the refresh token (`invalid_grant`) kills the grant: the user must sign
//! in again, and no one calls the provider for it again. A provider that is
//! down puts the grant in back-off (exponential, jittered): the old access
//! token is served while it is valid, then "unavailable".
//!
//! Revoking or purging the session drops its grants in the same write.
//! Neither an upstream refresh nor a vault call extends our session (the
//! session is looked up by any of its tokens, never touched).

pub mod provider;
pub mod seal;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sessionkit_core::random::fill_random;
use sessionkit_core::store::{GrantSwap, GrantSwapRequest};
use sessionkit_core::upstream::{Grants, Lease, MAX_GRANTS, SealedGrant};
use sessionkit_core::{DurationMs, Millis, SessionId, SessionRecord, SessionStore, TenantId};
use zeroize::Zeroizing;

pub use provider::{AssertionKey, AssertionKeyError, ClientAuth, Endpoint, Provider};
pub use seal::{GrantSecret, VaultKeys};

use crate::error::EngineError;
use crate::manager::{SessionManager, Validation};

/// How long a lease holds off other nodes (longer than a provider call
/// may take).
const LEASE: Duration = Duration::from_secs(15);
/// The longest a provider call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a waiter looks at the store again.
const POLL: Duration = Duration::from_millis(40);
/// The longest a caller waits for another node's refresh.
const MAX_WAIT: Duration = Duration::from_secs(20);
/// Back-off after a failed call: 1 s doubling, at most this.
const MAX_BACKOFF_SECS: u64 = 300;
/// Tries of a compare-and-set that keeps losing to other writers.
const MAX_SWAPS: usize = 16;
/// Most grants one node watches for the background refresher.
const MAX_WATCHED: usize = 1_000_000;

/// What a provider gave at login, to keep (`PUT /v1/upstream/{provider}`).
pub struct GrantInput {
    /// The access token.
    pub access_token: String,
    /// The refresh token, if any (without one the grant cannot be
    /// refreshed and dies with its access token).
    pub refresh_token: Option<String>,
    /// When the access token expires.
    pub expires_at: Millis,
    /// Granted scopes.
    pub scope: Option<String>,
    /// The ID token, if any: only its `sub` is kept, to check refreshes.
    pub id_token: Option<String>,
}

/// A fresh upstream access token. Its `Debug` shows no token.
pub struct UpstreamAccess {
    /// The token.
    pub access_token: Zeroizing<String>,
    /// When it expires.
    pub expires_at: Millis,
    /// Its scopes, if known.
    pub scope: Option<String>,
}

impl std::fmt::Debug for UpstreamAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamAccess")
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// The expected outcomes of a vault call (failures of the store or of
/// randomness are [`EngineError`]s).
#[derive(Debug)]
pub enum Upstream<T> {
    /// Done.
    Done(T),
    /// The session token is unknown, forged or revoked (`invalid_token`).
    InvalidToken,
    /// The session is past a deadline (`session_expired`).
    SessionExpired,
    /// An access JWT past its `exp` (`token_expired`).
    TokenExpired,
    /// No such provider configured, or no grant for it (or one that does
    /// not open here): `not_found`.
    NotFound,
    /// The grant is dead (refused by the provider, or another identity):
    /// sign in again (`reauthentication_required`).
    ReauthenticationRequired,
    /// The provider cannot be reached and no valid token is left
    /// (`upstream_unavailable`, retry after this many seconds).
    Unavailable {
        /// Seconds.
        retry_after_secs: u64,
    },
}

/// Counters of provider calls, by outcome (for `/metrics` and tests).
#[derive(Debug, Default)]
pub struct CallCounts {
    /// New tokens.
    pub refreshed: std::sync::atomic::AtomicU64,
    /// Refused for good.
    pub refused: std::sync::atomic::AtomicU64,
    /// Failed for now.
    pub failed: std::sync::atomic::AtomicU64,
}

/// A grant: its session and provider.
type GrantKey = (SessionId, String);

/// The vault: keys, providers, an HTTP client.
pub struct UpstreamVault {
    keys: VaultKeys,
    providers: HashMap<String, Provider>,
    http: reqwest::Client,
    /// This instance's lease holder id.
    holder: u64,
    /// One refresher per grant on this node.
    local: Mutex<HashMap<GrantKey, Arc<tokio::sync::Mutex<()>>>>,
    /// The grants this node knows of and when their access tokens expire,
    /// for the background refresher.
    watched: Mutex<HashMap<(TenantId, SessionId, String), Millis>>,
    /// Provider calls made by this instance.
    pub calls: CallCounts,
    /// The name of the provider-call counter.
    metric: &'static str,
}

impl std::fmt::Debug for UpstreamVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamVault")
            .field("keys", &self.keys)
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn ms(d: Duration) -> DurationMs {
    DurationMs::from_millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A random number below `n` (0 when `n` is 0 or randomness fails).
fn jitter(n: u64) -> u64 {
    let mut b = [0u8; 8];
    if n == 0 || fill_random(&mut b).is_err() {
        return 0;
    }
    u64::from_le_bytes(b) % n
}

impl UpstreamVault {
    /// A vault sealing with `keys`, for `providers`.
    ///
    /// # Errors
    /// [`EngineError::InvalidInput`] for a provider name outside
    /// `a-z 0-9 _ -` or named twice, or [`EngineError::Random`].
    pub fn new(keys: VaultKeys, providers: Vec<Provider>) -> Result<Self, EngineError> {
        let mut map = HashMap::new();
        for p in providers {
            if !sessionkit_core::upstream::valid_provider(&p.name) || map.contains_key(&p.name) {
                return Err(EngineError::InvalidInput {
                    field: "upstream.providers",
                    message:
                        "provider names are 1 to 64 characters of a-z, 0-9, '_', '-', each once"
                            .to_owned(),
                });
            }
            map.insert(p.name.clone(), p);
        }
        let mut holder = [0u8; 8];
        fill_random(&mut holder)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| EngineError::InvalidInput {
                field: "upstream",
                message: "the HTTP client could not be built".to_owned(),
            })?;
        Ok(UpstreamVault {
            keys,
            providers: map,
            http,
            holder: u64::from_le_bytes(holder),
            local: Mutex::new(HashMap::new()),
            watched: Mutex::new(HashMap::new()),
            calls: CallCounts::default(),
            metric: "sessionkit_upstream_refreshes_total",
        })
    }

    /// Counts a provider call: in [`UpstreamVault::calls`] and as the
    /// metric `<prefix>_upstream_refreshes_total{provider, outcome}`.
    fn count(&self, p: &Provider, outcome: &'static str, counter: &std::sync::atomic::AtomicU64) {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics::counter!(self.metric, "provider" => p.name.clone(), "outcome" => outcome)
            .increment(1);
    }

    /// Names the provider-call counter `<prefix>_upstream_refreshes_total`
    /// (default prefix `sessionkit`; sessiond uses `sessiond`).
    #[must_use]
    pub fn with_metrics_prefix(mut self, prefix: &str) -> Self {
        if prefix != "sessionkit" {
            // Made once per vault; metric names must outlive the recorder.
            self.metric = Box::leak(format!("{prefix}_upstream_refreshes_total").into_boxed_str());
        }
        self
    }

    /// Whether `name` is a configured provider.
    #[must_use]
    pub fn has_provider(&self, name: &str) -> bool {
        self.providers.contains_key(name)
    }

    /// The live session of `token`, or why not.
    async fn session<S: SessionStore>(
        engine: &SessionManager<S>,
        tenant: TenantId,
        token: &str,
    ) -> Result<Result<SessionRecord, Upstream<()>>, EngineError> {
        Ok(match engine.session_of(tenant, token).await? {
            Validation::Valid { session } => Ok(session),
            Validation::Expired(_) => Err(Upstream::SessionExpired),
            Validation::TokenExpired => Err(Upstream::TokenExpired),
            Validation::Invalid | Validation::CsrfFailed | Validation::ReauthenticationRequired => {
                Err(Upstream::InvalidToken)
            }
        })
    }

    /// Keeps `grant` for `provider` with the session of `token`, replacing
    /// any grant it had for that provider.
    ///
    /// # Errors
    /// [`EngineError::InvalidInput`] (too many providers, tokens too
    /// large), the store's, [`EngineError::Conflict`] after many lost races.
    pub async fn put<S: SessionStore>(
        &self,
        engine: &SessionManager<S>,
        tenant: TenantId,
        token: &str,
        provider: &str,
        grant: GrantInput,
    ) -> Result<Upstream<()>, EngineError> {
        if !self.has_provider(provider) {
            return Ok(Upstream::NotFound);
        }
        let session = match Self::session(engine, tenant, token).await? {
            Ok(s) => s,
            Err(refusal) => return Ok(refusal),
        };
        let secret = GrantSecret {
            sub: grant.id_token.as_deref().and_then(provider::id_token_sub),
            access_token: grant.access_token,
            refresh_token: grant.refresh_token,
            expires_at_ms: grant.expires_at.as_millis(),
            scope: grant.scope,
            failures: 0,
        };
        let sealed = self.keys.seal(tenant, session.id, provider, &secret)?;
        let out = self
            .change(engine, tenant, session.id, |grants| {
                grants.put(sealed.clone());
                if grants.0.len() > MAX_GRANTS {
                    return Err(EngineError::InvalidInput {
                        field: "provider",
                        message: format!("a session holds at most {MAX_GRANTS} grants"),
                    });
                }
                Ok(())
            })
            .await?;
        if matches!(out, Upstream::Done(())) && secret.refresh_token.is_some() {
            self.watch(tenant, session.id, provider, secret.expires_at());
        }
        Ok(out)
    }

    /// Forgets the grant of `provider` of the session of `token` (done
    /// whether or not it had one).
    ///
    /// # Errors
    /// The store's, [`EngineError::Conflict`] after many lost races.
    pub async fn delete<S: SessionStore>(
        &self,
        engine: &SessionManager<S>,
        tenant: TenantId,
        token: &str,
        provider: &str,
    ) -> Result<Upstream<()>, EngineError> {
        if !self.has_provider(provider) {
            return Ok(Upstream::NotFound);
        }
        let session = match Self::session(engine, tenant, token).await? {
            Ok(s) => s,
            Err(refusal) => return Ok(refusal),
        };
        self.unwatch(tenant, session.id, provider);
        self.change(engine, tenant, session.id, |grants| {
            grants.remove(provider);
            Ok(())
        })
        .await
    }

    /// Applies `edit` to the session's grants by compare-and-set, again
    /// from what is stored when another writer got there first.
    async fn change<S: SessionStore>(
        &self,
        engine: &SessionManager<S>,
        tenant: TenantId,
        id: SessionId,
        edit: impl Fn(&mut Grants) -> Result<(), EngineError>,
    ) -> Result<Upstream<()>, EngineError> {
        let Some(mut rec) = engine.store().get_by_id(tenant, id).await? else {
            return Ok(Upstream::InvalidToken);
        };
        for _ in 0..MAX_SWAPS {
            let mut grants = rec.grants.as_deref().cloned().unwrap_or_default();
            edit(&mut grants)?;
            match swap(engine, &rec, grants).await? {
                GrantSwap::Swapped(_) => return Ok(Upstream::Done(())),
                GrantSwap::Changed(now) => rec = *now,
                GrantSwap::NotLive => return Ok(Upstream::InvalidToken),
            }
        }
        Err(EngineError::Conflict)
    }

    /// A fresh access token of `provider` for the session of `token`:
    /// the stored one while it is valid beyond the provider's buffer, else
    /// refreshed (once across every node).
    ///
    /// # Errors
    /// The store's, [`EngineError::Random`].
    pub async fn token<S: SessionStore>(
        &self,
        engine: &SessionManager<S>,
        tenant: TenantId,
        token: &str,
        provider: &str,
    ) -> Result<Upstream<UpstreamAccess>, EngineError> {
        let Some(p) = self.providers.get(provider) else {
            return Ok(Upstream::NotFound);
        };
        let session = match Self::session(engine, tenant, token).await? {
            Ok(s) => s,
            Err(refusal) => return Ok(refusal.map_never()),
        };
        self.queued(engine, tenant, session.id, p, ms(p.refresh_buffer))
            .await
    }

    /// [`Self::fresh`], one caller per grant on this node at a time: the
    /// others queue here and then find the new token in the store. Keeps
    /// the node's watch list of grants (for the background refresher) up
    /// to date with what it learns.
    async fn queued<S: SessionStore>(
        &self,
        engine: &SessionManager<S>,
        tenant: TenantId,
        id: SessionId,
        p: &Provider,
        buffer: DurationMs,
    ) -> Result<Upstream<UpstreamAccess>, EngineError> {
        let key = (id, p.name.clone());
        let local = Arc::clone(lock(&self.local).entry(key.clone()).or_default());
        let out = {
            let _turn = local.lock().await;
            self.fresh(engine, tenant, id, p, buffer).await
        };
        drop(local);
        {
            let mut map = lock(&self.local);
            if map.get(&key).is_some_and(|m| Arc::strong_count(m) == 1) {
                map.remove(&key);
            }
        }
        match &out {
            Ok(Upstream::Done(a)) => self.watch(tenant, id, &p.name, a.expires_at),
            _ => self.unwatch(tenant, id, &p.name),
        }
        out
    }

    /// Notes that this node knows of a grant expiring at `at`.
    fn watch(&self, tenant: TenantId, id: SessionId, provider: &str, at: Millis) {
        let mut w = lock(&self.watched);
        if w.len() < MAX_WATCHED || w.contains_key(&(tenant, id, provider.to_owned())) {
            w.insert((tenant, id, provider.to_owned()), at);
        }
    }

    fn unwatch(&self, tenant: TenantId, id: SessionId, provider: &str) {
        lock(&self.watched).remove(&(tenant, id, provider.to_owned()));
    }

    /// How many grants this node watches for the background refresher.
    #[must_use]
    pub fn watched(&self) -> usize {
        lock(&self.watched).len()
    }

    /// One pass of the background refresher: refreshes every grant this
    /// node knows of (it stored, served or refreshed it since it started)
    /// whose access token expires within `horizon`, at most `concurrency`
    /// at a time, once across nodes like any refresh. Never touches the
    /// sessions. Returns how many grants it looked at.
    ///
    /// # Errors
    /// None: failures are logged and the grant is tried at the next pass.
    pub async fn refresh_due<S: SessionStore>(
        &self,
        engine: &SessionManager<S>,
        horizon: Duration,
        concurrency: usize,
    ) -> usize {
        let until = engine.now().saturating_add(ms(horizon));
        let due: Vec<(TenantId, SessionId, String)> = lock(&self.watched)
            .iter()
            .filter(|(_, at)| **at <= until)
            .map(|(k, _)| k.clone())
            .collect();
        let n = due.len();
        let sem = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
        let mut running = Vec::with_capacity(n);
        for (tenant, id, provider) in due {
            let Some(p) = self.providers.get(&provider) else {
                self.unwatch(tenant, id, &provider);
                continue;
            };
            let sem = Arc::clone(&sem);
            running.push(async move {
                let _permit = sem.acquire().await;
                if let Err(e) = self.queued(engine, tenant, id, p, ms(horizon)).await {
                    tracing::info!(error = %e, provider = %p.name, session_id = %id, "background upstream refresh failed");
                }
            });
        }
        futures_util::future::join_all(running).await;
        n
    }

    /// A token valid for at least `buffer`, from the store or refreshed.
    async fn fresh<S: SessionStore>(
        &self,
        engine: &SessionManager<S>,
        tenant: TenantId,
        id: SessionId,
        p: &Provider,
        buffer: DurationMs,
    ) -> Result<Upstream<UpstreamAccess>, EngineError> {
        let started = tokio::time::Instant::now();
        let mut swaps = 0;
        loop {
            let Some(rec) = engine.store().get_by_id(tenant, id).await? else {
                return Ok(Upstream::InvalidToken);
            };
            let now = engine.now();
            if !rec.is_live(now) {
                return Ok(Upstream::InvalidToken);
            }
            let Some(grant) = rec.grants.as_deref().and_then(|g| g.get(&p.name)) else {
                return Ok(Upstream::NotFound);
            };
            if grant.dead {
                return Ok(Upstream::ReauthenticationRequired);
            }
            let Some(secret) = self.keys.open(tenant, id, grant) else {
                return Ok(Upstream::NotFound);
            };
            let valid = now < secret.expires_at();
            if now.saturating_add(buffer) < secret.expires_at() {
                return Ok(Upstream::Done(access(&secret)));
            }
            let leased = grant
                .lease
                .is_some_and(|l| l.holder != self.holder && now < l.until);
            let backing_off = now < grant.not_before;
            if leased || backing_off || secret.refresh_token.is_none() {
                if !leased || started.elapsed() >= MAX_WAIT {
                    if valid {
                        return Ok(Upstream::Done(access(&secret)));
                    }
                    if secret.refresh_token.is_none() {
                        return Ok(Upstream::ReauthenticationRequired);
                    }
                    let wait = grant.not_before.saturating_since(now).as_secs().max(1);
                    return Ok(Upstream::Unavailable {
                        retry_after_secs: wait,
                    });
                }
                // Another node is refreshing: wait for its result.
                tokio::time::sleep(POLL).await;
                continue;
            }
            // Take the lease.
            let mut mine = grant.clone();
            mine.lease = Some(Lease {
                holder: self.holder,
                until: now.saturating_add(ms(LEASE)),
            });
            let Some(leased_rec) = self.swap_one(engine, &rec, mine).await? else {
                swaps += 1;
                if swaps >= MAX_SWAPS {
                    return Err(EngineError::Conflict);
                }
                continue;
            };
            return self.refresh(engine, &leased_rec, p, secret).await;
        }
    }

    /// Replaces the grant of its provider in `rec`'s grants by
    /// compare-and-set; the record after, or `None` when someone else
    /// changed the grants first.
    async fn swap_one<S: SessionStore>(
        &self,
        engine: &SessionManager<S>,
        rec: &SessionRecord,
        grant: SealedGrant,
    ) -> Result<Option<SessionRecord>, EngineError> {
        let mut grants = rec.grants.as_deref().cloned().unwrap_or_default();
        grants.put(grant);
        Ok(match swap(engine, rec, grants).await? {
            GrantSwap::Swapped(r) => Some(*r),
            GrantSwap::Changed(_) | GrantSwap::NotLive => None,
        })
    }

    /// Holding the lease on `rec`'s grant: calls the provider and writes
    /// what came of it, releasing the lease.
    async fn refresh<S: SessionStore>(
        &self,
        engine: &SessionManager<S>,
        rec: &SessionRecord,
        p: &Provider,
        old: GrantSecret,
    ) -> Result<Upstream<UpstreamAccess>, EngineError> {
        let refresh_token = old.refresh_token.clone().unwrap_or_default();
        let outcome = p.refresh(&self.http, &refresh_token, CALL_TIMEOUT).await;
        let now = engine.now();
        let (grant, answer) = match outcome {
            provider::Refreshed::Tokens(t) => {
                let sub = t.id_token.as_deref().and_then(provider::id_token_sub);
                if sub.is_some() && old.sub.is_some() && sub != old.sub {
                    // Another identity: refuse it and kill the grant.
                    self.count(p, "refused", &self.calls.refused);
                    tracing::warn!(provider = %p.name, session_id = %rec.id, "upstream refresh returned another subject; grant dead");
                    (dead_grant(p), Upstream::ReauthenticationRequired)
                } else {
                    self.count(p, "refreshed", &self.calls.refreshed);
                    let lifetime = t.expires_in.unwrap_or(3600).min(10 * 365 * 86_400);
                    let secret = GrantSecret {
                        access_token: t.access_token.clone(),
                        refresh_token: t.refresh_token.clone().or(old.refresh_token.clone()),
                        expires_at_ms: now
                            .saturating_add(DurationMs::from_secs(lifetime))
                            .as_millis(),
                        scope: t.scope.clone().or(old.scope.clone()),
                        sub: old.sub.clone().or(sub),
                        failures: 0,
                    };
                    let sealed = self.keys.seal(rec.tenant, rec.id, &p.name, &secret)?;
                    (sealed, Upstream::Done(access(&secret)))
                }
            }
            provider::Refreshed::Refused => {
                self.count(p, "refused", &self.calls.refused);
                tracing::info!(provider = %p.name, session_id = %rec.id, "upstream refused the refresh token; grant dead");
                (dead_grant(p), Upstream::ReauthenticationRequired)
            }
            provider::Refreshed::Unavailable => {
                self.count(p, "failed", &self.calls.failed);
                let failures = old.failures.saturating_add(1);
                let base = 1u64 << failures.min(9);
                let backoff = base.min(MAX_BACKOFF_SECS) * 1000;
                let delay = backoff / 2 + jitter(backoff);
                let mut again = old.clone();
                again.failures = failures;
                let mut sealed = self.keys.seal(rec.tenant, rec.id, &p.name, &again)?;
                sealed.not_before = now.saturating_add(DurationMs::from_millis(
                    i64::try_from(delay).unwrap_or(i64::MAX),
                ));
                let answer = if now < old.expires_at() {
                    Upstream::Done(access(&old))
                } else {
                    Upstream::Unavailable {
                        retry_after_secs: (delay / 1000).max(1),
                    }
                };
                tracing::info!(provider = %p.name, session_id = %rec.id, failures, "upstream refresh failed; backing off");
                (sealed, answer)
            }
        };
        // Release the lease with the result. Our lease makes a lost race
        // unlikely; if the session went meanwhile there is nothing to keep.
        let mut current = rec.clone();
        for _ in 0..MAX_SWAPS {
            match self.swap_one(engine, &current, grant.clone()).await? {
                Some(_) => return Ok(answer),
                None => match engine.store().get_by_id(rec.tenant, rec.id).await? {
                    Some(r) if r.is_live(engine.now()) => {
                        let ours = r
                            .grants
                            .as_deref()
                            .and_then(|g| g.get(&p.name))
                            .and_then(|g| g.lease)
                            .is_some_and(|l| l.holder == self.holder);
                        if !ours {
                            // Our lease lapsed and another node took over:
                            // its result wins.
                            tracing::warn!(provider = %p.name, session_id = %rec.id, "upstream refresh outlived its lease");
                            return Ok(answer);
                        }
                        current = r;
                    }
                    _ => return Ok(Upstream::InvalidToken),
                },
            }
        }
        Err(EngineError::Conflict)
    }
}

/// Replaces `rec`'s grants (as read) with `grants`, by compare-and-set.
async fn swap<S: SessionStore>(
    engine: &SessionManager<S>,
    rec: &SessionRecord,
    grants: Grants,
) -> Result<GrantSwap, EngineError> {
    let req = GrantSwapRequest {
        tenant: rec.tenant,
        id: rec.id,
        expected: rec.grants.clone(),
        grants: grants.into_stored(),
        now: engine.now(),
    };
    Ok(engine.store().swap_grants(req).await?)
}

/// A dead grant of `p`: no tokens kept.
fn dead_grant(p: &Provider) -> SealedGrant {
    SealedGrant {
        provider: p.name.clone(),
        key_id: 0,
        sealed: Vec::new(),
        lease: None,
        not_before: Millis::from_millis(0),
        dead: true,
    }
}

fn access(s: &GrantSecret) -> UpstreamAccess {
    UpstreamAccess {
        access_token: Zeroizing::new(s.access_token.clone()),
        expires_at: s.expires_at(),
        scope: s.scope.clone(),
    }
}

impl Upstream<()> {
    /// A refusal as the outcome of another call.
    fn map_never<T>(self) -> Upstream<T> {
        match self {
            Upstream::Done(()) | Upstream::InvalidToken => Upstream::InvalidToken,
            Upstream::SessionExpired => Upstream::SessionExpired,
            Upstream::TokenExpired => Upstream::TokenExpired,
            Upstream::NotFound => Upstream::NotFound,
            Upstream::ReauthenticationRequired => Upstream::ReauthenticationRequired,
            Upstream::Unavailable { retry_after_secs } => {
                Upstream::Unavailable { retry_after_secs }
            }
        }
    }
}
