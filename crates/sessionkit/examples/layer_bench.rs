//! The server of `benches/bench-layer.sh`: one small axum app on
//! `axum::serve`, with `SessionLayer` in front (`layer`) or without it
//! (`bare`), so that the CPU a request costs can be compared between the
//! two in one run (the goal: at most 1.08x; docs/benchmarks.md).
//!
//! The app (`/page`, `/start`) is `benches/layer_app.rs`, which the
//! in-process bench (`benches/layer.rs`) measures too.
//!
//! Run: `cargo run --release -p sessionkit --example layer_bench -- layer 127.0.0.1:7801`
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../benches/layer_app.rs"]
mod layer_app;

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
        "bare" => layer_app::bare(),
        "layer" => layer_app::layered().await,
        other => panic!("mode must be layer or bare, not {other}"),
    };
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    axum::serve(listener, app).await.unwrap();
}
