//! Abuse from one client must not hurt the others: wrong API keys from one
//! address lock that address out (429, even for a right key, while it
//! lasts); creates are limited per key; connections past the cap are closed
//! at once and counted; a connection that sends nothing is closed after the
//! header timeout.
#![allow(missing_docs, clippy::unwrap_used)]

mod process;

use std::io::Read as _;
use std::time::{Duration, Instant};

use process::nodes::gauge;
use process::{Server, client, post};
use serde_json::json;

async fn metrics(c: &reqwest::Client, s: &Server) -> String {
    c.get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn counter(metrics: &str, line_start: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn wrong_keys_lock_the_client_out_and_creates_are_limited_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            ("SESSIOND_STORE", "memory"),
            ("SESSIOND_RATE_LIMITS__FAILED_AUTH_PER_MINUTE", "6"),
            ("SESSIOND_RATE_LIMITS__FAILED_AUTH_BURST", "5"),
            ("SESSIOND_RATE_LIMITS__CREATES_PER_SECOND", "1"),
            ("SESSIOND_RATE_LIMITS__CREATES_BURST", "3"),
        ],
    );
    let key = s.admin_key();
    let c = client();

    // Creates: a burst of 3, then 429 with Retry-After.
    for _ in 0..3 {
        let (st, v) = post(&c, &s, &key, "/v1/sessions", json!({})).await;
        assert_eq!(st, 201, "{v}");
    }
    let r = c
        .post(s.url("/v1/sessions"))
        .bearer_auth(&key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], "rate_limited");

    // Five wrong keys are 401; the sixth is 429, and so is the right key
    // from the same address while the lockout lasts.
    for i in 0..5 {
        let (st, v) = post(
            &c,
            &s,
            "wrong-key",
            "/v1/sessions/validate",
            json!({"token": "x"}),
        )
        .await;
        assert_eq!(
            (st, v["error"].as_str()),
            (401, Some("unauthenticated")),
            "attempt {i}"
        );
    }
    let r = c
        .post(s.url("/v1/sessions/validate"))
        .bearer_auth("wrong-key")
        .json(&json!({"token": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=12).contains(&wait), "Retry-After {wait}");
    let (st, v) = post(&c, &s, &key, "/v1/sessions/validate", json!({"token": "x"})).await;
    assert_eq!((st, v["error"].as_str()), (429, Some("rate_limited")));
    // A request without any key counts as a failed attempt too.
    let r = c.get(s.url("/v1/stats")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);

    let m = metrics(&c, &s).await;
    assert!(
        counter(&m, "sessiond_rate_limited_total{limit=\"creates\"}") >= 1.0,
        "{m}"
    );
    assert!(
        counter(&m, "sessiond_rate_limited_total{limit=\"failed_auth\"}") >= 3.0,
        "{m}"
    );
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_and_silent_ones_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            ("SESSIOND_STORE", "memory"),
            ("SESSIOND_MAX_CONNECTIONS", "4"),
            ("SESSIOND_HEADER_READ_TIMEOUT_SECS", "1"),
        ],
    );
    // Four silent connections fill the cap; the next ones are closed at
    // once by the server.
    let silent: Vec<std::net::TcpStream> = (0..4)
        .map(|_| std::net::TcpStream::connect(&s.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = std::net::TcpStream::connect(&s.addr).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    let n = extra.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "a connection past the cap is closed at once");

    // The silent ones are closed after the header timeout, which frees
    // the cap for real clients.
    let start = Instant::now();
    for mut sock in silent {
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let n = sock.read(&mut buf).unwrap_or(0);
        assert!(n == 0 || buf.starts_with(b"HTTP/1.1 408"), "closed");
    }
    assert!(start.elapsed() < Duration::from_secs(10));
    let c = client();
    let m = metrics(&c, &s).await;
    assert!(
        counter(&m, "sessiond_connections_refused_total") >= 1.0,
        "{m}"
    );
    assert!(gauge(&m, "sessiond_connections_open") >= 1.0, "{m}");
}
