//! # sessionkit-core
//!
//! The model of sessionkit: identifiers, bearer tokens and their hashes, the
//! session record, policy, an injectable clock, the [`store::SessionStore`]
//! trait every backend implements. No store engine, no async runtime and no
//! I/O: store crates depend on this crate alone (the reference in-memory
//! store is the `sessionkit-memory` crate).
//!
//! See docs/sessions.md and docs/architecture.md (invariants) at the
//! repository root for the model and its invariants.

pub mod assurance;
pub mod attributes;
pub mod client;
pub mod crypto;
pub mod ids;
pub mod near_cache;
pub mod near_cache_channel;
pub mod policy;
pub mod random;
pub mod record;
pub mod refresh;
pub mod side_blob;
pub mod store;
pub mod text;
pub mod time;
pub mod token;
pub mod upstream;

pub use assurance::{Assurance, AssuranceError};
pub use attributes::{AttributeError, AttributeLimits, Attributes};
pub use client::{ClientInfo, Fingerprint};
pub use crypto::SecretKey;
pub use ids::{IdError, SessionId, Subject, TenantId};
pub use near_cache::{Invalidation, NearCache, NearCacheConfig};
pub use policy::{FingerprintMode, OnSessionLimit, Policy, PolicyError};
pub use record::{ExpiryCause, Liveness, RevokeReason, SessionRecord, SessionState};
pub use refresh::{RefreshState, RefreshToken};
pub use store::{SessionStore, StoreAdmin, StoreError, StoreResult};
pub use time::{Clock, DurationMs, ManualClock, Millis, SystemClock};
pub use token::{SessionToken, TokenHash};
