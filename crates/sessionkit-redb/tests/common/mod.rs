//! Helpers shared by the integration tests: records built by hand, a
//! runtime, and short names for the calls the tests make.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use sessionkit_core::store::Limits;
use sessionkit_core::{
    AttributeLimits, Attributes, ClientInfo, DurationMs, Millis, SessionId, SessionRecord,
    SessionState, SessionToken, Subject, TenantId, TokenHash,
};

/// The instant the tests start at (stores never read a clock).
pub const T0: Millis = Millis::from_millis(1_767_323_045_000);

pub fn at(ms: i64) -> Millis {
    Millis::from_millis(T0.as_millis() + ms)
}

pub fn subject(s: &str) -> Subject {
    Subject::new(s).unwrap()
}

pub fn attrs(v: serde_json::Value) -> Attributes {
    Attributes::from_value(&v, &AttributeLimits::default()).unwrap()
}

pub fn token_hash() -> TokenHash {
    SessionToken::generate().unwrap().hash()
}

/// An active session created at `created`: one hour idle, one day absolute.
pub fn session(subj: Option<&str>, created: Millis) -> SessionRecord {
    SessionRecord {
        tenant: TenantId::DEFAULT,
        id: SessionId::generate(),
        token_hash: token_hash(),
        subject: subj.map(subject),
        created_at: created,
        last_seen_at: created,
        idle_timeout: DurationMs::from_secs(3600),
        expires_at: created.saturating_add(DurationMs::from_secs(86_400)),
        auth_time: subj.map(|_| created),
        attributes: attrs(json!({"cart": 3, "theme": "dark"})),
        client: ClientInfo {
            ip: Some(std::net::IpAddr::from([192, 0, 2, 7])),
            user_agent: Some("test-agent/1".into()),
            device: None,
            fingerprint: None,
        },
        version: 1,
        state: SessionState::Active,
        refresh: None,
        assurance: None,
        grants: None,
    }
}

pub fn no_limits() -> Limits {
    Limits::default()
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
