//! The session record (docs/sessions.md) and the vocabulary of its life:
//! [`SessionState`], [`RevokeReason`], [`ExpiryCause`] and [`Liveness`].

use std::fmt;

use crate::assurance::Assurance;
use crate::attributes::Attributes;
use crate::client::ClientInfo;
use crate::ids::{SessionId, Subject, TenantId};
use crate::refresh::RefreshState;
use crate::time::{DurationMs, Millis};
use crate::token::TokenHash;
use crate::upstream::Grants;

/// Why a session was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevokeReason {
    /// The user logged out.
    Logout,
    /// An operator or backend revoked it by id.
    Admin,
    /// All sessions of the subject were revoked.
    SubjectRevoked,
    /// "Log out other devices".
    OthersRevoked,
    /// Replaced by a new session at login or privilege change.
    Upgraded,
    /// Evicted by the per-subject session cap.
    Evicted,
    /// An old refresh token was replayed.
    ReuseDetected,
    /// Erased on request (right to be forgotten).
    Erased,
}

impl RevokeReason {
    /// Every reason, in a fixed order.
    pub const ALL: [RevokeReason; 8] = [
        RevokeReason::Logout,
        RevokeReason::Admin,
        RevokeReason::SubjectRevoked,
        RevokeReason::OthersRevoked,
        RevokeReason::Upgraded,
        RevokeReason::Evicted,
        RevokeReason::ReuseDetected,
        RevokeReason::Erased,
    ];

    /// The stable wire name (`logout`, `subject_revoked`, …).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Logout => "logout",
            RevokeReason::Admin => "admin",
            RevokeReason::SubjectRevoked => "subject_revoked",
            RevokeReason::OthersRevoked => "others_revoked",
            RevokeReason::Upgraded => "upgraded",
            RevokeReason::Evicted => "evicted",
            RevokeReason::ReuseDetected => "reuse_detected",
            RevokeReason::Erased => "erased",
        }
    }

    /// A stable one-byte code, for compact storage.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            RevokeReason::Logout => 1,
            RevokeReason::Admin => 2,
            RevokeReason::SubjectRevoked => 3,
            RevokeReason::OthersRevoked => 4,
            RevokeReason::Upgraded => 5,
            RevokeReason::Evicted => 6,
            RevokeReason::ReuseDetected => 7,
            RevokeReason::Erased => 8,
        }
    }

    /// The reason with this [`RevokeReason::code`].
    #[must_use]
    pub fn from_code(c: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == c)
    }
}

impl fmt::Display for RevokeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which deadline a session passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpiryCause {
    /// No activity for the idle timeout.
    Idle,
    /// The absolute timeout since (re-)authentication.
    Absolute,
}

impl ExpiryCause {
    /// The stable wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            ExpiryCause::Idle => "idle",
            ExpiryCause::Absolute => "absolute",
        }
    }
}

/// Whether a record is live or a tombstone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Not revoked (it may still be past a deadline: see [`Liveness`]).
    Active,
    /// Revoked: a tombstone kept until its absolute deadline.
    Revoked {
        /// Why.
        reason: RevokeReason,
        /// When.
        at: Millis,
    },
}

/// What a record is at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Valid now.
    Live,
    /// Past a deadline (and not revoked).
    Expired(ExpiryCause),
    /// Revoked.
    Revoked(RevokeReason),
}

/// One session, as every store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// Its public id.
    pub id: SessionId,
    /// Hash of its bearer token.
    pub token_hash: TokenHash,
    /// Who it belongs to; `None` for an anonymous session.
    pub subject: Option<Subject>,
    /// When it was created.
    pub created_at: Millis,
    /// Last activity written (touch).
    pub last_seen_at: Millis,
    /// Idle timeout: the idle deadline is `last_seen_at + idle_timeout`.
    pub idle_timeout: DurationMs,
    /// The absolute deadline.
    pub expires_at: Millis,
    /// When the subject last authenticated; `None` when anonymous.
    pub auth_time: Option<Millis>,
    /// The app's data.
    pub attributes: Attributes,
    /// Client info (IP, user agent, device, fingerprint).
    pub client: ClientInfo,
    /// ≥ 1; changes only when attributes, subject or auth level change.
    pub version: u64,
    /// Active or revoked.
    pub state: SessionState,
    /// Refresh-token state, for sessions issued as an access + refresh
    /// pair; `None` for cookie and opaque-token sessions.
    /// Boxed: most sessions have none, and a record is moved several times
    /// on the validation hot path.
    pub refresh: Option<Box<RefreshState>>,
    /// How strongly the subject authenticated, when the login stated more
    /// than [`Assurance::DEFAULT_LOGIN`]; `None` otherwise (and always for
    /// an anonymous session or a tombstone). Read it with
    /// [`SessionRecord::aal`] and [`SessionRecord::amr`].
    pub assurance: Option<Box<Assurance>>,
    /// Upstream grants (sealed), one per provider; `None` when it holds
    /// none (and always in a tombstone). Changed only by
    /// [`SessionStore::swap_grants`](crate::store::SessionStore::swap_grants),
    /// never with the version.
    pub grants: Option<Box<Grants>>,
}

impl SessionRecord {
    /// The idle deadline: `last_seen_at + idle_timeout`, never past the
    /// absolute deadline (saturating, never overflows).
    #[must_use]
    pub fn idle_expires_at(&self) -> Millis {
        idle_deadline(self.last_seen_at, self.idle_timeout, self.expires_at)
    }

    /// What this record is at `now`. A deadline is passed at the deadline
    /// itself: a session is live while `now` is strictly before both.
    /// Revocation wins over expiry.
    #[must_use]
    pub fn liveness(&self, now: Millis) -> Liveness {
        liveness_at(self.state, self.idle_expires_at(), self.expires_at, now)
    }

    /// The authenticator assurance level: 0 for an anonymous session, else
    /// the login's (1 when it stated none).
    #[must_use]
    pub fn aal(&self) -> u8 {
        match (&self.subject, &self.assurance) {
            (None, _) => 0,
            (Some(_), Some(a)) => a.aal(),
            (Some(_), None) => Assurance::DEFAULT_LOGIN.aal(),
        }
    }

    /// The login's authentication methods (RFC 8176 names); empty when it
    /// stated none.
    #[must_use]
    pub fn amr(&self) -> &[String] {
        self.assurance.as_deref().map_or(&[], Assurance::amr)
    }

    /// What the shared stores keep in the record's side blob.
    #[must_use]
    pub fn side(&self) -> crate::side_blob::Side<'_> {
        crate::side_blob::Side {
            client: &self.client,
            assurance: self.assurance.as_deref(),
            grants: self.grants.as_deref(),
        }
    }

    /// Whether the record is live at `now`.
    #[must_use]
    pub fn is_live(&self, now: Millis) -> bool {
        self.liveness(now) == Liveness::Live
    }

    /// When a store may drop this record: for an active session the first
    /// deadline it will pass; for a tombstone its absolute deadline.
    #[must_use]
    pub fn purge_at(&self) -> Millis {
        purge_time(self.state, self.idle_expires_at(), self.expires_at)
    }

    /// Turns the record into a tombstone: no attributes, no client info,
    /// no refresh state, no assurance, no upstream grants.
    pub fn make_tombstone(&mut self, reason: RevokeReason, at: Millis) {
        self.state = SessionState::Revoked { reason, at };
        self.attributes = Attributes::empty();
        self.client = ClientInfo::default();
        self.refresh = None;
        self.assurance = None;
        self.grants = None;
    }
}

// The lifetime rules, in one place: `SessionRecord` and the stores'
// compact encodings (the memory store's slots) all answer through these.

/// `last_seen + idle`, capped by the absolute deadline (saturating).
pub fn idle_deadline(last_seen: Millis, idle: DurationMs, expires: Millis) -> Millis {
    last_seen.saturating_add(idle).min(expires)
}

/// Liveness at `now` given both deadlines; revocation wins over expiry.
pub fn liveness_at(
    state: SessionState,
    idle_deadline: Millis,
    expires: Millis,
    now: Millis,
) -> Liveness {
    match state {
        SessionState::Revoked { reason, .. } => Liveness::Revoked(reason),
        SessionState::Active if now >= expires => Liveness::Expired(ExpiryCause::Absolute),
        SessionState::Active if now >= idle_deadline => Liveness::Expired(ExpiryCause::Idle),
        SessionState::Active => Liveness::Live,
    }
}

/// When a record may be purged: its first deadline while active, its
/// absolute deadline once a tombstone.
pub fn purge_time(state: SessionState, idle_deadline: Millis, expires: Millis) -> Millis {
    match state {
        SessionState::Active => idle_deadline,
        SessionState::Revoked { .. } => expires,
    }
}
