//! Helpers the cases share: tenants, subjects, times, a record builder and
//! thin wrappers that turn a store error into a test failure.

use std::future::Future;

use serde_json::json;
use sessionkit_core::attributes::{AttributeLimits, Attributes};
use sessionkit_core::store::{
    CreateOutcome, Limits, RetireOutcome, RetireRequest, RevokeOutcome, StoreResult,
};
use sessionkit_core::{
    ClientInfo, DurationMs, Millis, RevokeReason, SessionId, SessionRecord, SessionState,
    SessionStore, SessionToken, Subject, TenantId, TokenHash,
};

/// The instant the cases start at (any value works: stores never read a
/// clock).
pub const T0: Millis = Millis::from_millis(1_767_323_045_000);

/// `T0 + ms`.
#[must_use]
pub const fn at(ms: i64) -> Millis {
    Millis::from_millis(T0.as_millis() + ms)
}

/// A duration of `ms` milliseconds.
#[must_use]
pub const fn ms(ms: i64) -> DurationMs {
    DurationMs::from_millis(ms)
}

/// The default tenant.
#[must_use]
pub fn tenant_a() -> TenantId {
    TenantId::DEFAULT
}

/// A second tenant.
#[must_use]
pub fn tenant_b() -> TenantId {
    TenantId::new("tenant-b").expect("valid tenant")
}

/// A subject.
#[must_use]
pub fn subject(s: &str) -> Subject {
    Subject::new(s).expect("valid subject")
}

/// A fresh, random token hash.
#[must_use]
pub fn fresh_token_hash() -> TokenHash {
    SessionToken::generate()
        .expect("the OS CSPRNG is available")
        .hash()
}

/// Attributes from a JSON object.
#[must_use]
pub fn attrs(v: serde_json::Value) -> Attributes {
    Attributes::from_value(&v, &AttributeLimits::default()).expect("valid attributes")
}

/// Client info with every field set.
#[must_use]
pub fn client(n: u32) -> ClientInfo {
    ClientInfo {
        ip: Some(std::net::IpAddr::from([192, 0, 2, (n % 250) as u8 + 1])),
        user_agent: Some(format!("conformance-agent/{n}")),
        device: Some(format!("device {n}")),
        fingerprint: Some(sessionkit_core::Fingerprint([n as u8; 32])),
    }
}

/// A new active session in `tenant`, created at `created`, with a fresh id
/// and token hash, an idle timeout of one hour, an absolute deadline one day
/// later, attributes and client info. Change fields as a case needs.
#[must_use]
pub fn session_in(tenant: TenantId, subj: Option<&str>, created: Millis) -> SessionRecord {
    SessionRecord {
        tenant,
        id: SessionId::generate(),
        token_hash: fresh_token_hash(),
        subject: subj.map(subject),
        created_at: created,
        last_seen_at: created,
        idle_timeout: DurationMs::from_secs(3600),
        expires_at: created.saturating_add(DurationMs::from_secs(86_400)),
        auth_time: subj.map(|_| created),
        attributes: attrs(json!({"cart": 3, "theme": "dark"})),
        client: client(7),
        version: 1,
        state: SessionState::Active,
        refresh: None,
        assurance: None,
        grants: None,
    }
}

/// [`session_in`] the default tenant.
#[must_use]
pub fn session(subj: Option<&str>, created: Millis) -> SessionRecord {
    session_in(tenant_a(), subj, created)
}

/// [`session`] with the given idle timeout and absolute lifetime.
#[must_use]
pub fn session_with(
    subj: Option<&str>,
    created: Millis,
    idle: i64,
    absolute: i64,
) -> SessionRecord {
    let mut r = session(subj, created);
    r.idle_timeout = ms(idle);
    r.expires_at = created.saturating_add(ms(absolute));
    r
}

/// What `rec` is expected to look like once revoked.
#[must_use]
pub fn tombstone_of(rec: &SessionRecord, reason: RevokeReason, when: Millis) -> SessionRecord {
    let mut t = rec.clone();
    t.make_tombstone(reason, when);
    t
}

/// Per-subject cap only.
#[must_use]
pub fn per_subject(max: u32, on: sessionkit_core::OnSessionLimit) -> Limits {
    Limits {
        per_subject: Some((max, on)),
        anonymous: None,
        replaces: None,
    }
}

/// Awaits a store call and fails the test on a store error.
pub async fn ok<T, E: std::fmt::Debug>(f: impl Future<Output = Result<T, E>>) -> T {
    f.await
        .expect("the store could not carry out the operation")
}

/// Creates `rec` with no limits; fails the test unless it is stored with no
/// eviction.
pub async fn put<S: SessionStore>(store: &S, rec: &SessionRecord) {
    let out = ok(store.create(rec.clone(), Limits::default(), rec.created_at)).await;
    assert_eq!(
        out,
        CreateOutcome::Created { evicted: vec![] },
        "create of a fresh session"
    );
}

/// The record with this id in `tenant`.
pub async fn by_id<S: SessionStore>(
    store: &S,
    tenant: TenantId,
    id: SessionId,
) -> Option<SessionRecord> {
    ok(store.get_by_id(tenant, id)).await
}

/// The record with this token hash in `tenant`.
pub async fn by_token<S: SessionStore>(
    store: &S,
    tenant: TenantId,
    hash: &TokenHash,
) -> Option<SessionRecord> {
    ok(store.get_by_token(tenant, hash)).await
}

/// Asserts that `rec` is stored exactly as given, by id and by token.
pub async fn assert_stored<S: SessionStore>(store: &S, rec: &SessionRecord, what: &str) {
    assert_eq!(
        by_id(store, rec.tenant, rec.id).await.as_ref(),
        Some(rec),
        "{what}: get_by_id"
    );
    assert_eq!(
        by_token(store, rec.tenant, &rec.token_hash).await.as_ref(),
        Some(rec),
        "{what}: get_by_token"
    );
}

/// Asserts that the successor of an upgrade that lost is unusable: nothing
/// live under its id or token hash, in any of the two tenants (an upgrade
/// creates its successor first, so a losing one leaves a tombstone, whose
/// token was never handed out).
pub async fn assert_unusable_successor<S: SessionStore>(
    store: &S,
    rec: &SessionRecord,
    what: &str,
) {
    for t in [tenant_a(), tenant_b()] {
        for (how, found) in [
            ("get_by_id", by_id(store, t, rec.id).await),
            ("get_by_token", by_token(store, t, &rec.token_hash).await),
        ] {
            if let Some(found) = found {
                assert!(
                    matches!(
                        found.state,
                        SessionState::Revoked {
                            reason: RevokeReason::Upgraded,
                            ..
                        }
                    ),
                    "{what}: {how} finds a successor that is not revoked: {found:?}"
                );
            }
        }
    }
}

/// Asserts that nothing is stored under `rec`'s id or token hash, in any of
/// the two tenants.
pub async fn assert_absent<S: SessionStore>(store: &S, rec: &SessionRecord, what: &str) {
    for t in [tenant_a(), tenant_b()] {
        assert_eq!(by_id(store, t, rec.id).await, None, "{what}: get_by_id");
        assert_eq!(
            by_token(store, t, &rec.token_hash).await,
            None,
            "{what}: get_by_token"
        );
    }
}

/// Revokes `id` and asserts it was active.
pub async fn revoke<S: SessionStore>(
    store: &S,
    rec: &SessionRecord,
    reason: RevokeReason,
    now: Millis,
) {
    let out = ok(store.revoke(rec.tenant, rec.id, reason, now)).await;
    assert_eq!(
        out,
        RevokeOutcome::Revoked {
            subject: rec.subject.clone()
        },
        "revoke of an active session"
    );
}

/// An upgrade of `old` (presenting its token hash and version) to `new`,
/// as the engine makes it from the two store steps.
#[derive(Debug, Clone)]
pub struct UpgradeRequest {
    /// The session being replaced.
    pub old_id: SessionId,
    /// Its token hash.
    pub old_token_hash: TokenHash,
    /// Its version when read.
    pub expected_version: u64,
    /// The successor.
    pub new: SessionRecord,
    /// Caps for the successor (`replaces` is set to the old session).
    pub limits: Limits,
    /// The time.
    pub now: Millis,
}

/// What the two steps of an upgrade did, together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeOutcome {
    /// The successor is stored and the old session retired for it.
    Upgraded {
        /// Sessions the successor's create evicted.
        evicted: Vec<SessionId>,
    },
    /// The old session was not live (the successor, if made, is revoked).
    NotLive,
    /// The old session changed since it was read (the successor is revoked).
    VersionMismatch,
    /// The successor's subject is at its cap and the policy refuses.
    SubjectLimitReached,
    /// The successor's token hash or id exists already.
    Duplicate,
}

/// An upgrade of `old` (presenting its token hash and version) to `new`.
#[must_use]
pub fn upgrade_req(
    old: &SessionRecord,
    new: &SessionRecord,
    limits: Limits,
    now: Millis,
) -> UpgradeRequest {
    UpgradeRequest {
        old_id: old.id,
        old_token_hash: old.token_hash,
        expected_version: old.version,
        new: new.clone(),
        limits,
        now,
    }
}

/// Runs an upgrade as the engine does: create the successor (with
/// `replaces`), then retire the old session for it; if the retire loses,
/// the successor is revoked.
///
/// # Errors
/// The store's, as they come.
pub async fn upgrade<S: SessionStore>(
    store: &S,
    req: UpgradeRequest,
) -> StoreResult<UpgradeOutcome> {
    let limits = Limits {
        replaces: Some(req.old_id),
        ..req.limits
    };
    let tenant = req.new.tenant;
    let new_id = req.new.id;
    let evicted = match store.create(req.new, limits, req.now).await? {
        CreateOutcome::Created { evicted } => evicted,
        CreateOutcome::SubjectLimitReached => return Ok(UpgradeOutcome::SubjectLimitReached),
        CreateOutcome::AnonymousLimitReached | CreateOutcome::Duplicate => {
            return Ok(UpgradeOutcome::Duplicate);
        }
    };
    let retire = RetireRequest {
        tenant,
        old_id: req.old_id,
        old_token_hash: req.old_token_hash,
        expected_version: req.expected_version,
        successor: new_id,
        now: req.now,
    };
    let lost = match store.retire(retire).await? {
        RetireOutcome::Retired => return Ok(UpgradeOutcome::Upgraded { evicted }),
        RetireOutcome::NotLive => UpgradeOutcome::NotLive,
        RetireOutcome::VersionMismatch { .. } => UpgradeOutcome::VersionMismatch,
    };
    store
        .revoke(tenant, new_id, RevokeReason::Upgraded, req.now)
        .await?;
    Ok(lost)
}

/// Asserts an upgrade outcome.
pub async fn upgrade_expect<S: SessionStore>(
    store: &S,
    req: UpgradeRequest,
    want: UpgradeOutcome,
    what: &str,
) {
    let out = ok(upgrade(store, req)).await;
    assert_eq!(out, want, "{what}");
}
