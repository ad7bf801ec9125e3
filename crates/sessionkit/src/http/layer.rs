//! [`SessionLayer`]: the layer and its settings.

use std::sync::Arc;

use sessionkit_core::{SessionStore, TenantId};
use tower_layer::Layer;

use super::cookies::SameSite;
use super::rate_limit::{CreationLimiter, CreationRateLimit, EngineTime};
use super::service::SessionService;
use super::{CsrfConfig, SkipRules, TrustedProxies};
use crate::SessionManager;

/// A cookie name the layer cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cookie name {name:?}: 1-64 letters, digits, '-' or '_'")]
pub struct InvalidCookieName {
    /// The name given.
    pub name: String,
}

/// The layer's settings (see the `with_*` methods of [`SessionLayer`]).
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) tenant: TenantId,
    pub(crate) cookie_name: String,
    pub(crate) same_site: SameSite,
    pub(crate) skip: SkipRules,
    pub(crate) detect_bots: bool,
    pub(crate) csrf: CsrfConfig,
    pub(crate) proxies: TrustedProxies,
    pub(crate) bearer: bool,
    pub(crate) changes_on_safe_methods: bool,
}

pub(crate) struct Shared<S> {
    pub(crate) manager: Arc<SessionManager<S>>,
    pub(crate) config: Config,
    /// The per-client limit on new anonymous sessions; `None`: off.
    pub(crate) limiter: Option<Arc<CreationLimiter>>,
}

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Shared {
            manager: Arc::clone(&self.manager),
            config: self.config.clone(),
            limiter: self.limiter.clone(),
        }
    }
}

/// A tower [`Layer`] that gives every request the session of its cookie
/// (or bearer token) as a [`Session`](super::Session) in its extensions.
/// See the [module docs](super).
#[must_use]
pub struct SessionLayer<S> {
    pub(crate) shared: Arc<Shared<S>>,
}

impl<S> Clone for SessionLayer<S> {
    fn clone(&self) -> Self {
        SessionLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: SessionStore> SessionLayer<S> {
    /// Sessions from `manager`, in the default tenant, in a cookie named
    /// `__Host-session` (`SameSite=Lax`), with [`SkipRules::default`], bot
    /// detection on, CSRF checks with no extra allowed origin, no trusted
    /// proxy, bearer tokens accepted, no session change on a safe
    /// method, and [`CreationRateLimit::default`] per client.
    pub fn new(manager: Arc<SessionManager<S>>) -> Self {
        let limiter = Some(limiter_for(&manager, CreationRateLimit::default()));
        SessionLayer {
            shared: Arc::new(Shared {
                limiter,
                manager,
                config: Config {
                    tenant: TenantId::DEFAULT,
                    cookie_name: "__Host-session".to_owned(),
                    same_site: SameSite::Lax,
                    skip: SkipRules::default(),
                    detect_bots: true,
                    csrf: CsrfConfig::default(),
                    proxies: TrustedProxies::none(),
                    bearer: true,
                    changes_on_safe_methods: false,
                },
            }),
        }
    }

    fn config(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut Arc::make_mut(&mut self.shared).config);
        self
    }

    /// The tenant whose sessions these are.
    pub fn with_tenant(self, tenant: TenantId) -> Self {
        self.config(|c| c.tenant = tenant)
    }

    /// The cookie's name after its `__Host-` prefix (`session` by default).
    pub fn with_cookie_name(self, name: &str) -> Result<Self, InvalidCookieName> {
        let ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(InvalidCookieName {
                name: name.to_owned(),
            });
        }
        Ok(self.config(|c| c.cookie_name = format!("__Host-{name}")))
    }

    /// The cookie's `SameSite`.
    pub fn with_same_site(self, same_site: SameSite) -> Self {
        self.config(|c| c.same_site = same_site)
    }

    /// The paths that get no session work.
    pub fn with_skip(self, skip: SkipRules) -> Self {
        self.config(|c| c.skip = skip)
    }

    /// Whether bots (see [`is_bot`](super::is_bot)) get an untracked
    /// session instead of a stored one.
    pub fn with_bot_detection(self, on: bool) -> Self {
        self.config(|c| c.detect_bots = on)
    }

    /// Origins beside the app's own that may send state-changing requests.
    pub fn with_csrf(self, csrf: CsrfConfig) -> Self {
        self.config(|c| c.csrf = csrf)
    }

    /// The proxies whose forwarding headers name the client.
    pub fn with_trusted_proxies(self, proxies: TrustedProxies) -> Self {
        self.config(|c| c.proxies = proxies)
    }

    /// Whether `Authorization: Bearer <session token>` is read (before the
    /// cookie). Such requests skip the CSRF checks: a browser never adds
    /// that header by itself.
    pub fn with_bearer_tokens(self, on: bool) -> Self {
        self.config(|c| c.bearer = on)
    }

    /// Whether handlers of `GET`, `HEAD`, `OPTIONS` and `TRACE` requests
    /// may change the session (`insert`, `remove`, `login`, `logout`); off
    /// by default, when such a write returns
    /// [`SessionError::SafeMethod`](super::SessionError::SafeMethod) and
    /// writes nothing.
    ///
    /// **Dangerous.** Safe methods get no CSRF check: with this on, any
    /// page on any site can make a visitor's browser log out, or change
    /// what its session holds, with a link or an image (`SameSite=Lax`
    /// still sends the cookie on a top-level `GET`). Turn it on only for
    /// an app whose `GET` handlers write nothing an attacker could use
    /// (a visit counter), and prefer a `POST` from script.
    pub fn with_changes_on_safe_methods(self, allow: bool) -> Self {
        self.config(|c| c.changes_on_safe_methods = allow)
    }

    /// How fast one client may start anonymous sessions
    /// ([`CreationRateLimit::default`]: a burst of 30, then 10 a second,
    /// per IP address or IPv6 `/64`); `None` turns the limit off.
    ///
    /// Only a write that would create an anonymous session takes a token
    /// ([`Session::insert`](super::Session::insert) without a session); a
    /// login does not. Over the limit, that write returns
    /// [`SessionError::RateLimited`](super::SessionError::RateLimited) and
    /// creates nothing; the request goes on, and the handler chooses: go
    /// on without a session, or return the error (429 with `Retry-After`).
    /// Refusals are counted: [`SessionLayer::rate_limited_creations`] and
    /// the `metrics` counter `<prefix>_creations_rate_limited_total`.
    pub fn with_creation_rate_limit(mut self, limit: Option<CreationRateLimit>) -> Self {
        let limiter = limit.map(|l| limiter_for(&self.shared.manager, l));
        Arc::make_mut(&mut self.shared).limiter = limiter;
        self
    }

    /// How many anonymous sessions this layer refused to create, over
    /// its creation rate limit, since it was made.
    #[must_use]
    pub fn rate_limited_creations(&self) -> u64 {
        self.shared.limiter.as_ref().map_or(0, |l| l.limited())
    }
}

/// A limiter on the engine's clock, counting in its metrics.
fn limiter_for<S: SessionStore>(
    manager: &Arc<SessionManager<S>>,
    limit: CreationRateLimit,
) -> Arc<CreationLimiter> {
    let m = Arc::clone(manager);
    let clock = EngineTime(Arc::new(move || m.now()));
    let metric = manager.metric_names().creations_rate_limited;
    Arc::new(CreationLimiter::new(limit, clock, metric))
}

impl<S, I> Layer<I> for SessionLayer<S> {
    type Service = SessionService<I, S>;

    fn layer(&self, inner: I) -> Self::Service {
        SessionService::new(inner, Arc::clone(&self.shared))
    }
}
