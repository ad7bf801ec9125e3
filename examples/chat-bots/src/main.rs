//! One bot process: `REDIS_URL` (default `redis://127.0.0.1:6379`),
//! `BOTS_PREFIX` (default `chat-bots`), `PORT` (default 3002; 0 picks a
//! free one). Start several on different ports: they share logins.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = std::env::var("BOTS_PREFIX").unwrap_or_else(|_| "chat-bots".into());
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse().map_err(|e| format!("PORT={p:?}: {e}"))?,
        Err(_) => 3002,
    };
    let engine = Arc::new(chat_bots::engine(&url, &prefix).await?);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, chat_bots::app(engine)).await?;
    Ok(())
}
