//! # sessiond
//!
//! The session server: the [`sessionkit`] engine over a small JSON API
//! for backend services in any language, with its operator
//! CLI in the same binary.
//!
//! - [`backend`]: [`Backend`](backend::Backend), the one store seam: an enum
//!   over the stores a config can name, itself a
//!   [`SessionStore`](sessionkit_core::SessionStore).
//! - [`app`]: the state and the router; [`routes`]: the `/v1` handlers and
//!   the route table ([`routes::table`]); [`ops`]: health, readiness,
//!   metrics, OpenAPI.
//! - [`http`]: the request edge: API-key auth, strict JSON bodies, limits.
//! - [`error`]: every HTTP failure and its stable code, mapped once.
//! - [`config`], [`server_keys`], [`api_keys`]: configuration and the data
//!   dir (the server's own CSRF/HMAC keys; the callers' API keys).
//! - [`server`], [`shutdown`], [`tls`]: the listener (optionally TLS, reloaded
//!   on `SIGHUP`), graceful shutdown, background purge.
//! - [`telemetry`]: metrics and request logs.
//! - [`cli`]: `sessiond serve`, `sessiond config check`, and the operator commands.

pub mod api_keys;
pub mod app;
pub mod backend;
pub mod cli;
pub mod config;
pub mod error;
pub mod fsutil;
pub mod http;
pub mod idtext;
pub mod openapi;
pub mod ops;
pub mod routes;
pub mod server;
pub mod server_keys;
pub mod shutdown;
pub mod signing_keys;
pub mod telemetry;
pub mod tls;
pub mod vault_keys;
pub mod wire;
