//! # sessionkit
//!
//! The session engine: [`SessionManager`] over any
//! [`SessionStore`](sessionkit_core::SessionStore), with the policy of
//! docs/sessions.md and its events. Store crates depend on
//! `sessionkit-core` only; this crate adds the engine.

pub mod error;
pub mod events;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "jwt")]
pub mod jwt;
pub mod manager;
#[cfg(feature = "upstream")]
pub mod upstream;

pub use error::{EngineError, ErrorKind};
pub use events::{Event, EventKind};
#[cfg(feature = "jwt")]
pub use manager::{AccessConfig, Introspected, IssuedPair, RefreshResult};
pub use manager::{
    Created, EngineKeys, Issue, NewSession, Page, PatchResult, SessionManager,
    SessionManagerBuilder, SubjectPage, TokenRevocation, UpgradeResult, ValidateRequest,
    Validation,
};
pub use sessionkit_core;
/// The compact in-memory store (the reference store, and the default for
/// apps on one process).
pub use sessionkit_memory::{self, MemoryStore};

/// The README's Rust examples, compiled as doc tests so that they stay true.
#[cfg(all(doctest, feature = "axum"))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
