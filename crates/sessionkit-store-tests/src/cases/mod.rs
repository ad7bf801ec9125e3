//! The conformance cases, one `pub async fn` each, generic over the store.

pub mod caps;
pub mod concurrency;
pub mod expiry;
pub mod grants;
pub mod lifecycle;
pub mod list;
pub mod purge;
pub mod refresh;
pub mod revoke;
pub mod update;
pub mod upgrade;
