//! The baseline of `benches/bench-validate.sh`: a bare axum JSON handler
//! that parses a validate-shaped body and answers a session-shaped JSON
//! object of the same size, with no auth, no store and no metrics.
//!
//! Run: `cargo run --release -p sessiond --example bare_json -- 127.0.0.1:7799`

use axum::Json;
use axum::routing::post;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct In {
    token: String,
    csrf_token: Option<String>,
}

#[derive(Serialize)]
struct Client {
    ip: Option<String>,
    user_agent: Option<String>,
    device: Option<String>,
}

#[derive(Serialize)]
struct Session {
    id: String,
    subject: Option<String>,
    created_at: String,
    last_seen_at: String,
    idle_expires_at: String,
    expires_at: String,
    auth_time: Option<String>,
    attributes: serde_json::Value,
    client: Client,
    version: u64,
}

#[derive(Serialize)]
struct Out {
    session: Session,
    csrf_token: String,
}

async fn validate(Json(b): Json<In>) -> Json<Out> {
    let ts = "2026-01-02T03:04:05.678Z".to_owned();
    Json(Out {
        session: Session {
            id: format!("0190a4a2-0000-7000-8000-{:012}", b.token.len()),
            subject: Some("user-1".into()),
            created_at: ts.clone(),
            last_seen_at: ts.clone(),
            idle_expires_at: ts.clone(),
            expires_at: ts.clone(),
            auth_time: Some(ts),
            attributes: serde_json::json!({"cart": 3}),
            client: Client {
                ip: None,
                user_agent: None,
                device: None,
            },
            version: 1,
        },
        csrf_token: b.csrf_token.unwrap_or_else(|| "x".repeat(43)),
    })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7799".into());
    let app = axum::Router::new().route("/v1/sessions/validate", post(validate));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("bare_json listening on {addr}");
    axum::serve(listener, app).await
}
