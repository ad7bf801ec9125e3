//! The in-process HTTP layer (`docs/http-layer.md`): [`SessionLayer`], a tower
//! layer that gives each request the session of its cookie or bearer
//! token as a [`Session`] (in axum, an extractor).
//!
//! - **Cookie**: `__Host-session` (so `Secure`, `Path=/`, no `Domain`),
//!   `HttpOnly`, `SameSite=Lax` unless set to `Strict`, kept until the
//!   session's absolute deadline. A response that sets or clears it gets
//!   `Cache-Control: no-store`; one that depends on it, `Vary: Cookie`.
//! - **Lazily created**: a visitor gets an anonymous session only when the
//!   app stores something ([`Session::insert`]) on a state-changing
//!   request; [`Session::login`]
//!   upgrades it (new id and token), [`Session::logout`] revokes it. A
//!   cookie whose session is gone is cleared; a session that is gone is
//!   never brought back.
//! - **CSRF** ([`CsrfConfig`]): a state-changing request needs
//!   `Sec-Fetch-Site: same-origin` or an allowed `Origin`, and, with a
//!   cookie session, `X-CSRF-Token` equal to [`Session::csrf_token`];
//!   otherwise 403 before the handler runs, with a JSON body naming why
//!   (`origin_not_allowed`, `csrf_failed`; never what the client sent).
//! - **One session cookie**: two in one request count for nothing (never
//!   "the first wins"), and a state-changing request with two is refused
//!   (400, `duplicate_session_cookie`).
//! - **No change on a safe method**: on `GET`, `HEAD`, `OPTIONS` and
//!   `TRACE`, which get no CSRF check, every session write returns
//!   [`SessionError::SafeMethod`] (403) and writes nothing, unless the app
//!   opts in with [`SessionLayer::with_changes_on_safe_methods`]
//!   (dangerous).
//! - **Bearer tokens**: `Authorization: Bearer <session token>` is read
//!   before the cookie, for API clients; no cookie is set for them.
//! - **Skipped**: the paths of [`SkipRules`] and bots ([`is_bot`]) get an
//!   untracked [`Session`]: no lookup, nothing stored, no cookie. The
//!   built-in static-asset guesses never skip a state-changing request
//!   (`POST /users/john.doe` keeps its CSRF check); only the app's own
//!   [`SkipRules::with_prefix`] and [`SkipRules::with_path`] do.
//! - **Client IP** from the peer, or through [`TrustedProxies`] only.
//! - **Rate limit** ([`CreationRateLimit`]): one client (IP, or IPv6
//!   `/64`) may start a burst of 30 anonymous sessions, then 10 a second;
//!   over that, [`Session::insert`] creates nothing and returns
//!   [`SessionError::RateLimited`] (429 with `Retry-After` if returned).
//! - **Failure**: a store that is down makes the request 503 before the
//!   handler runs (fail closed, invariant 1).
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::{get, post}};
//! use sessionkit::http::{Session, SessionLayer, SessionError};
//! use sessionkit::{EngineKeys, SessionManager};
//! use sessionkit::MemoryStore;
//!
//! // A page reads the session (and hands out its CSRF token)…
//! async fn cart(session: Session) -> String {
//!     let items = session.get::<u64>("items").unwrap_or(0);
//!     format!("{items} items, csrf {}", session.csrf_token().unwrap_or_default())
//! }
//!
//! // …and a POST, past the CSRF checks, changes it.
//! async fn add(session: Session) -> Result<String, SessionError> {
//!     let n = session.get::<u64>("items").unwrap_or(0) + 1;
//!     session.insert("items", n).await?;
//!     Ok(format!("{n} items"))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = SessionManager::builder(MemoryStore::new(), EngineKeys::generate()?)
//!     .build()
//!     .await?;
//! let app: Router = Router::new()
//!     .route("/cart", get(cart).post(add))
//!     .layer(SessionLayer::new(Arc::new(engine)));
//! # let _ = app; Ok(()) }
//! ```
//!
//! Deployment caveats: the `__Host-` cookie needs HTTPS (browsers also
//! accept it on `http://localhost`); behind a proxy, list it in
//! [`TrustedProxies`] or every client has the proxy's address; the layer
//! must see the request before any handler that reads the session.

mod client_ip;
mod cookies;
mod csrf;
#[cfg(feature = "axum")]
mod extract;
mod layer;
mod rate_limit;
mod response;
mod service;
mod session;
mod skip;

pub use client_ip::{ForwardedHeader, PeerAddr, TrustedProxies};
pub use cookies::SameSite;
pub use csrf::{CSRF_HEADER, CsrfConfig};
#[cfg(feature = "axum")]
pub use extract::MissingSessionLayer;
pub use layer::{InvalidCookieName, SessionLayer};
pub use rate_limit::CreationRateLimit;
pub use service::{ResponseFuture, SessionService};
pub use session::{Session, SessionError};
pub use skip::{SkipRules, is_bot};
