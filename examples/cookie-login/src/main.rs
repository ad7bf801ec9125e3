//! Serves the example on 127.0.0.1:3000 (see the library's docs).

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("open http://localhost:3000");
    // The peer's address is the key of the layer's per-client limit on
    // new sessions.
    let app = example_cookie_login::app().await?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await?;
    Ok(())
}
