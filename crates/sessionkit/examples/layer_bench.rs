//! The server of `benches/bench-layer.sh`: one small axum app on
//! `axum::serve`, with [`SessionLayer`] in front (`layer`) or without it
//! (`bare`), so that the CPU a request costs can be compared between the
//! two in one run (DESIGN.md §8: at most 1.08x).
//!
//! - `GET /page`: with the layer, reads the request's session (its subject
//!   and an attribute) and answers a line naming them; bare, answers a
//!   line of the same length.
//! - `POST /start` (layer only): logs `user-1` in and stores an attribute;
//!   its `Set-Cookie` is the cookie the load sends.
//!
//! Run: `cargo run --release -p sessionkit --example layer_bench -- layer 127.0.0.1:7801`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use sessionkit::http::{Session, SessionError, SessionLayer};
use sessionkit::{EngineKeys, SessionManager};
use sessionkit_core::{MemoryStore, Subject};

async fn page(session: Session) -> String {
    let subject = session.subject();
    let visits = session.get::<u64>("visits").unwrap_or(0);
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

fn main() {
    // `LAYER_BENCH_RUNTIME=current_thread` runs both servers on one thread.
    let mut rt = match std::env::var("LAYER_BENCH_RUNTIME").as_deref() {
        Ok("current_thread") => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    rt.enable_all().build().unwrap().block_on(serve());
}

async fn serve() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "layer".into());
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7801".into());
    let app = match mode.as_str() {
        "bare" => Router::new().route("/page", get(bare_page)),
        "layer" => {
            let engine =
                SessionManager::builder(MemoryStore::new(), EngineKeys::generate().unwrap())
                    .build()
                    .await
                    .unwrap();
            Router::new()
                .route("/page", get(page))
                .route("/start", post(start))
                .layer(SessionLayer::new(Arc::new(engine)))
        }
        other => panic!("mode must be layer or bare, not {other}"),
    };
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    axum::serve(listener, app).await.unwrap();
}
