//! Events: every state change of a session, with no secret in it
//! (no token, hash or attribute value), delivered to in-process subscribers over a bounded
//! broadcast channel. A slow subscriber never blocks the engine: it misses
//! the oldest events and learns how many it missed (`RecvError::Lagged`).

use sessionkit_core::{ExpiryCause, Millis, RevokeReason, SessionId, Subject, TenantId};

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// A session was created.
    Created,
    /// A touch was written (only then).
    Touched,
    /// This session replaced `from` at login or privilege change.
    Upgraded {
        /// The session it replaced (revoked with reason `upgraded`).
        from: SessionId,
    },
    /// The attributes changed; the session now has this version.
    AttributesChanged {
        /// The new version.
        version: u64,
    },
    /// The session was revoked.
    Revoked {
        /// Why.
        reason: RevokeReason,
    },
    /// Every session of a subject (but one, with `others_revoked`) was
    /// revoked at once. The event names the subject, not a session: a
    /// store revokes them in one step without listing them.
    SubjectRevoked {
        /// `subject_revoked` or `others_revoked`.
        reason: RevokeReason,
        /// How many active sessions it revoked.
        count: u64,
    },
    /// The session's refresh token rotated; the new one has this
    /// generation.
    Refreshed {
        /// The generation of the new refresh token.
        generation: u32,
    },
    /// An old refresh token was reused; the session was revoked with reason
    /// `reuse_detected` (a `revoked` event comes with it).
    ReuseDetected,
    /// The session passed a deadline and was purged (emitted once, by purge).
    Expired {
        /// Which deadline.
        cause: ExpiryCause,
    },
}

impl EventKind {
    /// The stable wire name (`created`, `revoked`, …).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Touched => "touched",
            EventKind::Upgraded { .. } => "upgraded",
            EventKind::AttributesChanged { .. } => "attributes_changed",
            EventKind::Revoked { .. } | EventKind::SubjectRevoked { .. } => "revoked",
            EventKind::Expired { .. } => "expired",
            EventKind::Refreshed { .. } => "refreshed",
            EventKind::ReuseDetected => "reuse_detected",
        }
    }
}

/// One state change of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The session's tenant.
    pub tenant: TenantId,
    /// The session; `None` for an event about a whole subject
    /// ([`EventKind::SubjectRevoked`]).
    pub session_id: Option<SessionId>,
    /// Its subject, if any.
    pub subject: Option<Subject>,
    /// When (engine time).
    pub at: Millis,
    /// What happened.
    pub kind: EventKind,
}
