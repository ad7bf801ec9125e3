//! The request edge: everything a request meets before a handler's own
//! code, each answering with the stable error codes of [`crate::error`].
//!
//! - [`limits`]: [`HttpLimits`] and the pre-routing checks (431 oversized
//!   headers, 413 a declared body over the limit).
//! - [`auth`]: the caller's API key and scope ([`Authorized`]), checked
//!   before the body is read.
//! - [`json`]: strict JSON bodies (content type, size and read timeout,
//!   duplicate and unknown keys).
//! - [`params`]: path and query extractors.
//! - [`rate_limit`]: failed API-key attempts per client IP, creates per
//!   key.
//!
//! The middleware that runs these checks and records metrics is
//! [`crate::telemetry::edge`]; the routes are in [`crate::routes::table`].

pub mod auth;
pub mod json;
pub mod limits;
pub mod params;
pub mod rate_limit;

pub use auth::{Authorized, RequiredScope, scope};
pub use json::{JsonBody, MergePatchBody};
pub use limits::HttpLimits;
pub use params::{PathParams, QueryPairs};
pub use rate_limit::{RateLimitConfig, RateLimits};
