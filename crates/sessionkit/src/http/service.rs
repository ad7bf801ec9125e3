//! [`SessionService`]: the middleware itself.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue, Request, Response, header};
use sessionkit_core::{FingerprintMode, SessionStore};
use tower_service::Service;
use zeroize::Zeroizing;

use super::PeerAddr;
use super::cookies::{self, Lookup};
use super::csrf::{CSRF_HEADER, is_unsafe};
use super::layer::Shared;
use super::response::Refusal;
use super::session::{Client, CookieChange, Ops, Session, Source, Writes};
use super::skip::is_bot;
use crate::{ValidateRequest, Validation};

/// The service [`SessionLayer`](super::SessionLayer) wraps around `I`.
pub struct SessionService<I, S> {
    inner: I,
    shared: Arc<Shared<S>>,
}

impl<I: Clone, S> Clone for SessionService<I, S> {
    fn clone(&self) -> Self {
        SessionService {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<I, S> SessionService<I, S> {
    pub(crate) fn new(inner: I, shared: Arc<Shared<S>>) -> Self {
        SessionService { inner, shared }
    }
}

/// The response future of [`SessionService`].
pub type ResponseFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<I, S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<I, S>
where
    I: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    I::Future: Send,
    S: SessionStore,
    ReqBody: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = I::Error;
    type Future = ResponseFuture<Response<ResBody>, I::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // The service polled ready is the one that must take the call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let cfg = &shared.config;
            if cfg.skip.skips_request(req.method(), req.uri().path()) {
                let session = Session::untracked(cfg.tenant, Client::default());
                req.extensions_mut().insert(session);
                return inner.call(req).await;
            }
            let headers = req.headers();
            let bearer = if cfg.bearer {
                bearer_token(headers)
            } else {
                None
            };
            let unsafe_method = is_unsafe(req.method());
            if unsafe_method && bearer.is_none() && !cfg.csrf.origin_ok(headers) {
                return Ok(Refusal::OriginNotAllowed.response());
            }
            let (presented, source) = match bearer {
                Some(t) => (Some(t), Source::Bearer),
                None => match cookies::find(headers, &cfg.cookie_name) {
                    Lookup::One(c) => (Some(c), Source::Cookie),
                    Lookup::Absent => (None, Source::None),
                    // Neither cookie counts (never "the first wins"), and
                    // neither is cleared: that would drop the browser's own
                    // and leave a planted one. A state change is refused.
                    Lookup::Duplicate if unsafe_method => {
                        return Ok(Refusal::DuplicateSessionCookie.response());
                    }
                    Lookup::Duplicate => (None, Source::None),
                },
            };
            let client = client_of(&req, cfg);
            // The client is checked against the session's only if the
            // policy binds sessions to one.
            let fingerprinting = shared.manager.policy().fingerprint != FingerprintMode::Off;
            let mut found = None;
            let mut clear_cookie = false;
            if let Some(text) = presented.map(Zeroizing::new) {
                let csrf_token = (unsafe_method && source == Source::Cookie).then(|| {
                    req.headers()
                        .get(CSRF_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                });
                let vreq = ValidateRequest {
                    csrf_token,
                    client: fingerprinting.then(|| client.info()),
                    // Step-up is per handler (`Session::require_recent_auth`,
                    // `Session::require_aal`).
                    max_age: None,
                    min_aal: None,
                };
                match shared.manager.validate(cfg.tenant, &text, &vreq).await {
                    Ok(Validation::Valid { session }) => found = Some((session, text)),
                    Ok(Validation::CsrfFailed) => return Ok(Refusal::CsrfFailed.response()),
                    Ok(
                        Validation::Expired(_)
                        | Validation::TokenExpired
                        | Validation::Invalid
                        | Validation::ReauthenticationRequired,
                    ) => {
                        clear_cookie = source == Source::Cookie;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "session validation failed; refusing the request");
                        return Ok(Refusal::Engine(e.kind()).response());
                    }
                }
            }
            // Bots are looked for only where a session could be made: a
            // request with a live session is a visitor's, whatever it says.
            if found.is_none() && cfg.detect_bots && is_bot(client.user_agent()) {
                req.extensions_mut()
                    .insert(Session::untracked(cfg.tenant, client));
                return inner.call(req).await;
            }
            let ops: Arc<dyn Ops> = shared.manager.clone();
            // A safe method passed no CSRF check: it may not write.
            let may_change = unsafe_method || cfg.changes_on_safe_methods;
            let session = Session::tracked(
                ops,
                cfg.tenant,
                client,
                source,
                found,
                clear_cookie,
                Writes {
                    may_change,
                    limiter: shared.limiter.clone(),
                },
            );
            req.extensions_mut().insert(session.clone());
            let mut res = inner.call(req).await?;
            finish(&mut res, &session, &shared);
            Ok(res)
        })
    }
}

/// The token of `Authorization: Bearer <token>`, if that is what is sent.
fn bearer_token(headers: &HeaderMap) -> Option<String> {
    // More than one Authorization header: none counts (fail closed).
    let mut all = headers.get_all(header::AUTHORIZATION).iter();
    let v = all.next()?;
    if all.next().is_some() {
        return None;
    }
    let v = v.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// The client: its address (through trusted proxies only) and its user
/// agent.
fn client_of<B>(req: &Request<B>, cfg: &super::layer::Config) -> Client {
    Client {
        ip: cfg.proxies.client_ip(peer_ip(req), req.headers()),
        user_agent: req.headers().get(header::USER_AGENT).cloned(),
        trace_id: trace_id(req.headers()),
    }
}

/// The trace id of `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), else a
/// tame `X-Request-Id`.
fn trace_id(headers: &HeaderMap) -> Option<String> {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(tp) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
        let parts: Vec<&str> = tp.trim().split('-').collect();
        if let [version, trace, parent, flags] = parts[..]
            && hex(version, 2)
            && hex(trace, 32)
            && hex(parent, 16)
            && hex(flags, 2)
            && trace.bytes().any(|b| b != b'0')
        {
            return Some(trace.to_ascii_lowercase());
        }
    }
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|id| {
            (1..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        })
        .map(str::to_owned)
}

fn peer_ip<B>(req: &Request<B>) -> Option<IpAddr> {
    if let Some(PeerAddr(a)) = req.extensions().get::<PeerAddr>() {
        return Some(a.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(a)) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return Some(a.ip());
    }
    None
}

/// Writes the cookie change the handler caused, and the cache headers of
/// a response that depends on, or carries, a credential.
fn finish<B, S: SessionStore>(res: &mut Response<B>, session: &Session, shared: &Shared<S>) {
    let cfg = &shared.config;
    let (change, bearer) = session.take_cookie_change();
    let h = res.headers_mut();
    let carries = match change {
        CookieChange::Keep => false,
        CookieChange::Set { token, expires_at } => {
            let max_age = expires_at.saturating_since(shared.manager.now()).as_secs();
            let max_age = i64::try_from(max_age).unwrap_or(i64::MAX);
            let value = Zeroizing::new(token.expose_secret());
            let cookie = cookies::set(&cfg.cookie_name, &value, cfg.same_site, max_age);
            h.append(header::SET_COOKIE, cookie);
            true
        }
        CookieChange::Clear => {
            h.append(
                header::SET_COOKIE,
                cookies::clear(&cfg.cookie_name, cfg.same_site),
            );
            true
        }
    };
    if carries {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    // What a tracked response says depends on the request's credential,
    // whether or not it sent one: a shared cache must not hand one
    // visitor's page to another.
    vary_on(h, "Cookie");
    if bearer {
        vary_on(h, "Authorization");
    }
}

/// Adds `name` to `Vary` unless it is there already (or `Vary: *`).
fn vary_on(h: &mut HeaderMap, name: &'static str) {
    let varies = h
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case(name) || v.trim() == "*");
    if !varies {
        h.append(header::VARY, HeaderValue::from_static(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &'static str, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn trace_ids_are_taken_only_when_well_formed() {
        let tp = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01";
        assert_eq!(
            trace_id(&with("traceparent", tp)).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "4bf92f3577b34da6a3ce929d0e0e4736",
        ] {
            assert_eq!(trace_id(&with("traceparent", bad)), None, "{bad}");
        }
        assert_eq!(
            trace_id(&with("x-request-id", "req-42.a:b_c")).as_deref(),
            Some("req-42.a:b_c")
        );
        assert_eq!(trace_id(&with("x-request-id", "a b")), None);
        assert_eq!(trace_id(&with("x-request-id", "x\"y")), None);
        assert_eq!(trace_id(&HeaderMap::new()), None);
    }
}
