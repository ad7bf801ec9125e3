//! Serves the example on 127.0.0.1:3000 (see the library's docs).

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("open http://localhost:3000");
    axum::serve(listener, example_cookie_login::app().await?).await?;
    Ok(())
}
