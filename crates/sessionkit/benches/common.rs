//! Shared by the benches: polling a future that never pends (the memory
#![allow(dead_code, unreachable_pub)]
//! store answers at once) without a runtime, and filling an engine.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use sessionkit::MemoryStore;
use sessionkit::{EngineKeys, NewSession, SessionManager};
use sessionkit_core::{Policy, SessionStore, Subject, TenantId};

/// Polls `f` once; the memory store's futures are always ready.
pub fn ready<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    let mut f = pin!(f);
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a memory-store future pended"),
    }
}

/// An engine on a MemoryStore, no caps.
pub fn engine() -> SessionManager<MemoryStore> {
    engine_on(MemoryStore::new())
}

/// An engine on `store`, no caps (no per-subject or anonymous limit).
pub fn engine_on<S: SessionStore>(store: S) -> SessionManager<S> {
    let policy = Policy::builder()
        .max_sessions_per_subject(None, sessionkit_core::OnSessionLimit::Refuse)
        .max_anonymous_sessions(None)
        .build()
        .expect("policy");
    ready(
        SessionManager::builder(store, EngineKeys::generate().expect("keys"))
            .with_policy(policy)
            .build(),
    )
    .expect("engine")
}

/// The benchmark session of docs/benchmarks.md: a 16-byte subject and
/// about 100 bytes of attributes.
pub fn typical(i: u64) -> NewSession {
    NewSession {
        subject: Some(Subject::new(&format!("user-{i:011}")).expect("subject")),
        attributes: Some(typical_attributes(i)),
        ..NewSession::default()
    }
}

/// The attributes of [`typical`]`(i)` as a server hands them to the engine:
/// the request body's `attributes` deserialized into a `Box<RawValue>` (a
/// copy of the text as the client sent it, compact).
pub fn typical_attributes(i: u64) -> Box<serde_json::value::RawValue> {
    let body = format!(
        r#"{{"attributes":{{"cart":[101,202,303],"theme":"dark","locale":"de-DE","plan":"pro","flags":{{"beta":true,"n":{}}}}}}}"#,
        i % 1000
    );
    #[derive(serde::Deserialize)]
    struct Body {
        attributes: Box<serde_json::value::RawValue>,
    }
    serde_json::from_str::<Body>(&body)
        .expect("attributes")
        .attributes
}

/// Length of a session token's text.
pub const TOKEN_LEN: usize = 47;

/// Creates `n` typical sessions; returns their tokens, stored contiguously
/// (as the baseline's keys are) so that picking one costs one cache miss.
pub fn fill(e: &SessionManager<MemoryStore>, n: u64) -> Vec<[u8; TOKEN_LEN]> {
    (0..n)
        .map(|i| {
            let t = ready(e.create(TenantId::DEFAULT, typical(i)))
                .expect("create")
                .token
                .expose_secret();
            let mut b = [0u8; TOKEN_LEN];
            b.copy_from_slice(t.as_bytes());
            b
        })
        .collect()
}
