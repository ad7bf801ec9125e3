//! Revocation: one session by token (logout) or by id, all sessions of a
//! subject, or all but one ("log out other devices").

use sessionkit_core::store::{RevokeOutcome, RevokeSubjectOutcome};
use sessionkit_core::{RevokeReason, SessionId, SessionRecord, SessionStore, Subject, TenantId};

use super::SessionManager;
use crate::error::EngineError;
use crate::events::EventKind;

/// The answer to a logout by token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRevocation {
    /// Well-formed. Whether a session was revoked is deliberately not told
    /// (no existence oracle); logout is idempotent.
    Done,
    /// Not a well-formed token; nothing was looked up.
    Malformed,
}

impl<S: SessionStore> SessionManager<S> {
    /// Logout: revokes the session of `token` (reason `logout`), if any.
    /// `token` may be any token of the session: its session token, its
    /// current or previous refresh token, or (feature `jwt`) an access JWT.
    pub async fn revoke_token(
        &self,
        tenant: TenantId,
        token: &str,
    ) -> Result<TokenRevocation, EngineError> {
        let credential = match self.credential(tenant, token) {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(TokenRevocation::Malformed),
            // A genuine but expired access token names no session now.
            Err(_) => return Ok(TokenRevocation::Done),
        };
        if let Some(rec) = self.lookup(tenant, &credential).await? {
            self.revoke(tenant, rec.id, RevokeReason::Logout).await?;
        }
        Ok(TokenRevocation::Done)
    }

    /// Revokes a session for the reuse of an old refresh token (reason
    /// `reuse_detected`), with both events, when it is still active.
    pub(super) async fn revoke_for_reuse(&self, rec: &SessionRecord) -> Result<(), EngineError> {
        let now = self.now();
        let out = self
            .store
            .revoke(rec.tenant, rec.id, RevokeReason::ReuseDetected, now)
            .await?;
        if let RevokeOutcome::Revoked { subject } = out {
            self.emit_reuse(rec.tenant, rec.id, subject, now);
        }
        Ok(())
    }

    /// The events of a session revoked for refresh-token reuse: `revoked
    /// {reuse_detected}` and `reuse_detected`.
    pub(super) fn emit_reuse(
        &self,
        tenant: TenantId,
        id: SessionId,
        subject: Option<Subject>,
        now: sessionkit_core::Millis,
    ) {
        let reason = RevokeReason::ReuseDetected;
        self.emit_for(
            tenant,
            Some(id),
            subject.clone(),
            now,
            EventKind::Revoked { reason },
        );
        self.emit_for(tenant, Some(id), subject, now, EventKind::ReuseDetected);
        tracing::warn!(session_id = %id, "refresh token reuse detected; session revoked");
    }

    /// Revokes one session by id. A tombstone is kept until its absolute
    /// deadline.
    pub async fn revoke(
        &self,
        tenant: TenantId,
        id: SessionId,
        reason: RevokeReason,
    ) -> Result<RevokeOutcome, EngineError> {
        let now = self.now();
        let out = self.store.revoke(tenant, id, reason, now).await?;
        if let RevokeOutcome::Revoked { subject } = &out {
            self.emit_for(
                tenant,
                Some(id),
                subject.clone(),
                now,
                EventKind::Revoked { reason },
            );
        }
        Ok(out)
    }

    /// Revokes a session by id only if it belongs to `subject`: use this for
    /// any id that came from an end user. Another subject's session is
    /// [`RevokeOutcome::NotFound`].
    pub async fn revoke_for_subject(
        &self,
        tenant: TenantId,
        subject: &Subject,
        id: SessionId,
        reason: RevokeReason,
    ) -> Result<RevokeOutcome, EngineError> {
        match self.store.get_by_id(tenant, id).await? {
            Some(rec) if rec.subject.as_ref() == Some(subject) => {
                self.revoke(tenant, id, reason).await
            }
            _ => Ok(RevokeOutcome::NotFound),
        }
    }

    /// Revokes every session of `subject` (reason `subject_revoked`), or all
    /// but `except` (reason `others_revoked`), which must then be a live
    /// session of theirs. Atomic in effect: once this returns, no session of
    /// the subject created before it validates.
    pub async fn revoke_subject(
        &self,
        tenant: TenantId,
        subject: &Subject,
        except: Option<SessionId>,
    ) -> Result<RevokeSubjectOutcome, EngineError> {
        let reason = if except.is_some() {
            RevokeReason::OthersRevoked
        } else {
            RevokeReason::SubjectRevoked
        };
        let now = self.now();
        let out = self
            .store
            .revoke_subject(tenant, subject, except, reason, now)
            .await?;
        if let RevokeSubjectOutcome::Revoked { count } = out
            && count > 0
        {
            self.emit_for(
                tenant,
                None,
                Some(subject.clone()),
                now,
                EventKind::SubjectRevoked { reason, count },
            );
        }
        Ok(out)
    }
}
