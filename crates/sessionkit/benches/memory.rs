//! Bytes per live session in `MemoryStore`, every index counted: the growth
//! of the process's resident memory (VmRSS, which includes the allocator's
//! own overhead) while `n` typical sessions are created, divided by `n`.
//! The sessions' tokens are not kept, so only the store is measured.
//!
//! Client info is reported separately (docs/benchmarks.md): with
//! SESSIONKIT_BENCH_CLIENT=1 each session also carries an IP address and a
//! 110-byte user agent.
//!
//! `cargo bench -p sessionkit --bench memory` (N with SESSIONKIT_BENCH_N).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use sessionkit_core::TenantId;

use common::{engine, ready, typical};

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value");
    kb * 1024
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let n: u64 = std::env::var("SESSIONKIT_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let with_client = std::env::var_os("SESSIONKIT_BENCH_CLIENT").is_some();
    let session = |i: u64| {
        let mut s = typical(i);
        if with_client {
            s.client.ip = Some(std::net::IpAddr::from([203, 0, 113, (i % 250) as u8]));
            s.client.user_agent = Some(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/131.0.0.0 Safari/537.36"
                    .into(),
            );
        }
        s
    };
    let e = engine();
    // Warm up the allocator and the engine with a few sessions first.
    for i in 0..1000 {
        ready(e.create(TenantId::DEFAULT, session(u64::MAX - i))).unwrap();
    }
    let sample = typical(0);
    let attr_bytes = sample.attributes.as_ref().unwrap().get().len();
    let subject_bytes = sample.subject.as_ref().unwrap().as_str().len();
    let before = rss_bytes();
    for i in 0..n {
        ready(e.create(TenantId::DEFAULT, session(i))).unwrap();
    }
    let after = rss_bytes();
    let per = (after - before) as f64 / n as f64;
    let client = if with_client {
        ", client info: IP and 110-byte user agent"
    } else {
        ""
    };
    println!(
        "memory: {n} sessions ({subject_bytes}-byte subject, {attr_bytes} bytes of attributes{client}): \
         {per:.0} bytes per live session (RSS grew {:.1} MiB)",
        (after - before) as f64 / (1 << 20) as f64
    );
}
