//! What `SessionLayer` adds to a request, in process: one axum router
//! driven with `oneshot`, bare and behind the layer (reading a live session
//! from its cookie on `MemoryStore`), in the same run. The server-level
//! figure (CPU per request over HTTP, docs/benchmarks.md) is
//! `benches/bench-layer.sh`; this one has no network or HTTP parsing in
//! it, so it shows the layer's own cost.
//!
//! `cargo bench -p sessionkit --bench layer`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod layer_app;

use axum::body::Body;
use axum::http::{Method, Request, header};
use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt;

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";

fn request(cookie: &str) -> Request<Body> {
    Request::get("/page")
        .header(header::USER_AGENT, UA)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap()
}

fn layer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let layered = rt.block_on(layer_app::layered());
    let bare = layer_app::bare();
    let res = rt.block_on(
        layered.clone().oneshot(
            Request::builder()
                .method(Method::POST)
                .uri("/start")
                .header(header::USER_AGENT, UA)
                .header("sec-fetch-site", "same-origin")
                .body(Body::empty())
                .unwrap(),
        ),
    );
    let set = res.unwrap().headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    let cookie = format!("theme=dark; {}", set.split(';').next().unwrap());
    let mut g = c.benchmark_group("layer");
    g.bench_function("bare_handler", |b| {
        b.iter(|| rt.block_on(bare.clone().oneshot(request(&cookie))).unwrap())
    });
    g.bench_function("session_layer_reading_a_session", |b| {
        b.iter(|| {
            rt.block_on(layered.clone().oneshot(request(&cookie)))
                .unwrap()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    targets = layer
}
criterion_main!(benches);
