//! Serves the API on 127.0.0.1:3001, or the port in `PORT` (see the
//! library's docs and the README).

use std::sync::Arc;

use sessionkit_core::SystemClock;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse().map_err(|e| format!("PORT={p:?}: {e}"))?,
        Err(_) => 3001,
    };
    let engine = Arc::new(jwt_api::engine(SystemClock).await?);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, jwt_api::app(engine)).await?;
    Ok(())
}
