//! # sessiond
//!
//! The session server: the [`sessionkit`] engine over a small JSON API
//! (DESIGN.md §7) for backend services in any language, with its operator
//! CLI in the same binary.
//!
//! - [`app`]: the router, generic over any [`SessionStore`](sessionkit_core::SessionStore).
//! - [`routes`]: the `/v1` handlers; [`ops`]: health, readiness, metrics, OpenAPI.
//! - [`error`]: every HTTP failure and its stable code, mapped once.
//! - [`config`], [`keys`], [`api_keys`]: configuration and the data dir.
//! - [`server`], [`shutdown`]: the listener, graceful shutdown, background purge.
//! - [`cli`]: `sessiond serve`, `sessiond config check`, and the operator commands.

pub mod api_keys;
pub mod app;
pub mod cli;
pub mod config;
pub mod error;
pub mod fsutil;
pub mod guard;
pub mod idtext;
pub mod json;
pub mod keys;
pub mod openapi;
pub mod ops;
pub mod routes;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod wire;
