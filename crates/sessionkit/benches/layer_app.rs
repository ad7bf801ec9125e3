//! The app both layer benchmarks measure (`benches/layer.rs` in process,
//! `examples/layer_bench.rs` over HTTP for `benches/bench-layer.sh`), so
//! that the two time the same handlers.
//!
//! - `GET /page`: with the layer, reads the request's session (its subject
//!   and an attribute) and answers a line naming them; bare, answers the
//!   same line with no session.
//! - `POST /start` (layer only): logs `user-1` in and stores an attribute;
//!   its `Set-Cookie` is the cookie the load sends.
#![allow(dead_code, unreachable_pub, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use sessionkit::MemoryStore;
use sessionkit::http::{Session, SessionError, SessionLayer};
use sessionkit::{EngineKeys, SessionManager};
use sessionkit_core::Subject;

async fn page(session: Session) -> String {
    let visits = session.get::<u64>("visits").unwrap_or(0);
    let subject = session.subject();
    format!(
        "hello {} ({visits} visits)\n",
        subject.as_ref().map_or("stranger", |s| s.as_str())
    )
}

async fn bare_page() -> String {
    format!("hello {} ({} visits)\n", "user-1", 3)
}

async fn start(session: Session) -> Result<&'static str, SessionError> {
    session
        .login(Subject::new("user-1").expect("subject"), &[])
        .await?;
    session.insert("visits", 3).await?;
    Ok("started\n")
}

/// `/page` and `/start` behind `SessionLayer`, on a fresh `MemoryStore`.
pub async fn layered() -> Router {
    let engine = SessionManager::builder(MemoryStore::new(), EngineKeys::generate().expect("keys"))
        .build()
        .await
        .expect("engine");
    Router::new()
        .route("/page", get(page))
        .route("/start", post(start))
        .layer(SessionLayer::new(Arc::new(engine)))
}

/// `/page` with no layer.
pub fn bare() -> Router {
    Router::new().route("/page", get(bare_page))
}
