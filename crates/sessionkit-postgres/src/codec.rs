//! How a record crosses into and out of PostgreSQL: the columns of a
//! `sessions` row (as `sk_row` and the reads select them; the `client`
//! column is `sessionkit_core::side_blob`: client info and assurance), and the checks that refuse bad input before any SQL runs.
//!
//! Anything read back that does not decode is [`Corruption`], never a
//! default value (fail closed).

use sessionkit_core::side_blob;
use sessionkit_core::store::{Corruption, StoreError, StoreResult};
use sessionkit_core::{
    Attributes, ClientInfo, DurationMs, Millis, RefreshState, RevokeReason, SessionId,
    SessionRecord, SessionState, Subject, TenantId, TokenHash,
};
use tokio_postgres::Row;
use uuid::Uuid;

/// The record columns, in the order of the `sk_result` type after its
/// `outcome` and `n`: what every read selects.
pub(crate) const RECORD_COLUMNS: &str = "s.id, s.tenant, s.token_hash, s.subject, \
    s.subject_epoch, s.state, s.revoked_at, s.version, s.created_at, s.last_seen_at, \
    s.idle_timeout_ms, s.expires_at, s.auth_time, s.attributes, s.client, s.refresh_current, \
    s.refresh_previous, s.refresh_generation, s.refresh_issued_at, s.refresh_grace_until, \
    sub.epoch, b.reason, b.at \
    FROM sessions s \
    LEFT JOIN subjects sub ON sub.tenant = s.tenant AND sub.subject = s.subject \
    LEFT JOIN subject_bumps b ON b.tenant = s.tenant AND b.subject = s.subject \
      AND b.epoch = s.subject_epoch + 1";

/// Input refused before it reaches SQL. `StoreError` has no variant for a
/// caller's bad input, so it is reported as [`StoreError::Corrupt`] naming
/// the field, and nothing is written.
pub(crate) fn refused(what: &'static str, id: Option<SessionId>) -> StoreError {
    StoreError::Corrupt(Corruption { what, id })
}

/// Checks attributes before they are written: the JSON object the core
/// type promises, with no U+0000 (raw or escaped).
pub(crate) fn check_attributes(a: &Attributes, id: SessionId) -> StoreResult<()> {
    let text = a.as_json();
    if text.contains('\0') || text.contains("\\u0000") || Attributes::from_stored(text).is_err() {
        return Err(refused(
            "attributes (refused: not a JSON object without U+0000)",
            Some(id),
        ));
    }
    Ok(())
}

/// Checks a record before `create` writes it.
pub(crate) fn check_record(rec: &SessionRecord) -> StoreResult<()> {
    check_attributes(&rec.attributes, rec.id)?;
    if rec.client.validate().is_err() {
        return Err(refused(
            "client info (refused: too long or a control character)",
            Some(rec.id),
        ));
    }
    if rec.version == 0 || i64::try_from(rec.version).is_err() {
        return Err(StoreError::Capacity(
            sessionkit_core::store::Capacity::Version,
        ));
    }
    Ok(())
}

/// A record's id as the uuid column holds it.
pub(crate) fn uuid(id: SessionId) -> Uuid {
    Uuid::from_bytes(*id.as_bytes())
}

/// An id from its uuid column.
pub(crate) fn session_id(u: Uuid) -> SessionId {
    SessionId::from_bytes(*u.as_bytes())
}

/// A subject from its column.
pub(crate) fn subject(s: &str, id: Option<SessionId>) -> StoreResult<Subject> {
    Subject::new(s).map_err(|_| corrupt("subject", id))
}

/// A tenant from its column.
pub(crate) fn tenant(s: &str, id: Option<SessionId>) -> StoreResult<TenantId> {
    TenantId::new(s).map_err(|_| corrupt("tenant", id))
}

/// Corruption of `what` (of session `id`, when known).
pub(crate) fn corrupt(what: &'static str, id: Option<SessionId>) -> StoreError {
    StoreError::Corrupt(Corruption { what, id })
}

fn hash(b: &[u8]) -> Option<TokenHash> {
    let a: [u8; 32] = b.try_into().ok()?;
    Some(TokenHash::from_bytes(a))
}

/// Reads column `i` of `row`, or fails as corruption of `what`.
fn col<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    i: usize,
    what: &'static str,
    id: Option<SessionId>,
) -> StoreResult<T> {
    row.try_get(i).map_err(|_| corrupt(what, id))
}

/// Decodes the record columns of `row`, starting at column `at` (0 for a
/// read, 2 after a function's `outcome` and `n`).
pub(crate) fn record(row: &Row, at: usize) -> StoreResult<SessionRecord> {
    let id = session_id(col::<Uuid>(row, at, "id", None)?);
    let some = Some(id);
    let c = |i: usize| at + i;
    let tenant = tenant(col::<&str>(row, c(1), "tenant", some)?, some)?;
    let token_hash = hash(col::<&[u8]>(row, c(2), "token hash", some)?)
        .ok_or_else(|| corrupt("token hash", some))?;
    let subject = match col::<Option<&str>>(row, c(3), "subject", some)? {
        None => None,
        Some(s) => Some(self::subject(s, some)?),
    };
    let subject_epoch: Option<i64> = col(row, c(4), "subject epoch", some)?;
    let state_code: i16 = col(row, c(5), "state", some)?;
    let revoked_at: Option<i64> = col(row, c(6), "revoked at", some)?;
    let version = u64::try_from(col::<i64>(row, c(7), "version", some)?)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| corrupt("version", some))?;
    let created_at = Millis::from_millis(col(row, c(8), "created at", some)?);
    let last_seen_at = Millis::from_millis(col(row, c(9), "last seen at", some)?);
    let idle: i64 = col(row, c(10), "idle timeout", some)?;
    if idle < 0 {
        return Err(corrupt("idle timeout", some));
    }
    let expires_at = Millis::from_millis(col(row, c(11), "expires at", some)?);
    let auth_time = col::<Option<i64>>(row, c(12), "auth time", some)?.map(Millis::from_millis);
    let attributes: Option<&[u8]> = col(row, c(13), "attributes", some)?;
    let client: Option<&[u8]> = col(row, c(14), "client", some)?;
    let rc: Option<&[u8]> = col(row, c(15), "refresh", some)?;
    let rp: Option<&[u8]> = col(row, c(16), "refresh", some)?;
    let rg: Option<i64> = col(row, c(17), "refresh", some)?;
    let ri: Option<i64> = col(row, c(18), "refresh", some)?;
    let rgu: Option<i64> = col(row, c(19), "refresh", some)?;
    let current_epoch: Option<i64> = col(row, c(20), "subject epoch", some)?;
    let bump_reason: Option<i16> = col(row, c(21), "subject epoch", some)?;
    let bump_at: Option<i64> = col(row, c(22), "subject epoch", some)?;

    let reason_of = |code: i16, what| {
        u8::try_from(code)
            .ok()
            .and_then(RevokeReason::from_code)
            .ok_or_else(|| corrupt(what, some))
    };
    let mut state = if state_code == 0 {
        if revoked_at.is_some() {
            return Err(corrupt("revoked at", some));
        }
        SessionState::Active
    } else {
        SessionState::Revoked {
            reason: reason_of(state_code, "state")?,
            at: Millis::from_millis(revoked_at.ok_or_else(|| corrupt("revoked at", some))?),
        }
    };
    // A subject session is stamped with its subject's epoch; a lower
    // epoch than the subject's current one is a revocation by bump.
    if subject.is_some() {
        let (Some(mine), Some(current)) = (subject_epoch, current_epoch) else {
            return Err(corrupt("subject epoch", some));
        };
        if mine > current || mine < 1 {
            return Err(corrupt("subject epoch", some));
        }
        if mine < current && state == SessionState::Active {
            let (Some(r), Some(t)) = (bump_reason, bump_at) else {
                return Err(corrupt("subject epoch", some));
            };
            state = SessionState::Revoked {
                reason: reason_of(r, "subject epoch")?,
                at: Millis::from_millis(t),
            };
        }
    } else if subject_epoch.is_some() {
        return Err(corrupt("subject epoch", some));
    }

    let stored_active = state_code == 0;
    let (attributes, client, refresh, assurance, grants) = if state == SessionState::Active {
        let text = std::str::from_utf8(attributes.ok_or_else(|| corrupt("attributes", some))?)
            .map_err(|_| corrupt("attributes", some))?;
        let attributes = Attributes::from_stored(text).map_err(|_| corrupt("attributes", some))?;
        let (client, assurance, grants) =
            side_blob::decode(client.ok_or_else(|| corrupt("client", some))?)
                .ok_or_else(|| corrupt("client", some))?;
        let refresh = match rc {
            None => {
                if rp.is_some() || rg.is_some() || ri.is_some() || rgu.is_some() {
                    return Err(corrupt("refresh", some));
                }
                None
            }
            Some(cur) => {
                let bad = || corrupt("refresh", some);
                Some(Box::new(RefreshState {
                    current: hash(cur).ok_or_else(bad)?,
                    previous: match rp {
                        None => None,
                        Some(p) => Some(hash(p).ok_or_else(bad)?),
                    },
                    generation: rg.and_then(|g| u32::try_from(g).ok()).ok_or_else(bad)?,
                    issued_at: Millis::from_millis(ri.ok_or_else(bad)?),
                    grace_until: Millis::from_millis(rgu.ok_or_else(bad)?),
                }))
            }
        };
        (attributes, client, refresh, assurance, grants)
    } else {
        // A stored tombstone keeps nothing; a record revoked by an epoch
        // bump still holds its data until purge scrubs it, but never
        // shows it.
        if !stored_active
            && (attributes.is_some()
                || client.is_some()
                || rc.is_some()
                || rp.is_some()
                || rg.is_some())
        {
            return Err(corrupt("tombstone", some));
        }
        (Attributes::empty(), ClientInfo::default(), None, None, None)
    };
    Ok(SessionRecord {
        tenant,
        id,
        token_hash,
        subject,
        created_at,
        last_seen_at,
        idle_timeout: DurationMs::from_millis(idle),
        expires_at,
        auth_time,
        attributes,
        client,
        version,
        state,
        refresh,
        assurance,
        grants,
    })
}
