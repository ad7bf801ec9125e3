//! [`SessionStore`] and [`StoreAdmin`] for [`PostgresStore`]: each method
//! one prepared statement (a function call for writes), its answer decoded
//! into the trait's outcome. Nothing is decided here that the database did
//! not decide under its locks.

use sessionkit_core::near_cache::Invalidation;
use sessionkit_core::policy::OnSessionLimit;
use sessionkit_core::record::{ExpiryCause, RevokeReason, SessionRecord};
use sessionkit_core::side_blob;
use sessionkit_core::store::{
    Capacity, Change, Counts, CreateOutcome, GrantSwap, GrantSwapRequest, Limits, ListCursor,
    Purged, RefreshOutcome, RefreshRequest, RetireOutcome, RetireRequest, RevokeOutcome,
    RevokeSubjectOutcome, SessionStore, StoreAdmin, StoreError, StoreResult, UpdateOutcome,
};
use sessionkit_core::{Millis, SessionId, SessionState, Subject, TenantId, TokenHash};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::codec::{self, corrupt, uuid};
use crate::{PostgresStore, sql};

/// Most records one purge transaction removes.
const PURGE_BATCH: usize = 500;

/// Highest version: `bigint`.
const MAX_VERSION: i64 = i64::MAX;

fn ms(m: Millis) -> i64 {
    m.as_millis()
}

/// A version the caller expects, as a `bigint`; one that does not fit can
/// match no record (versions are at most [`MAX_VERSION`]).
fn expected(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(-1)
}

/// The outcome tag of a function's answer (column 0).
fn outcome<'a>(row: &'a Row, what: &'static str, id: Option<SessionId>) -> StoreResult<&'a str> {
    row.try_get::<_, &str>(0).map_err(|_| corrupt(what, id))
}

/// A version number a function answered (column 1).
fn version(row: &Row, what: &'static str, id: SessionId) -> StoreResult<u64> {
    row.try_get::<_, i64>(1)
        .ok()
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| corrupt(what, Some(id)))
}

fn subject_col(row: &Row, i: usize, id: Option<SessionId>) -> StoreResult<Option<Subject>> {
    match row
        .try_get::<_, Option<&str>>(i)
        .map_err(|_| corrupt("subject", id))?
    {
        None => Ok(None),
        Some(s) => codec::subject(s, id).map(Some),
    }
}

/// One row of `sk_purge`'s answer.
fn purged(r: &Row) -> StoreResult<Purged> {
    let bad = |id| corrupt("purge reply", id);
    let id = codec::session_id(r.try_get::<_, Uuid>(1).map_err(|_| bad(None))?);
    let tenant = codec::tenant(r.try_get(0).map_err(|_| bad(Some(id)))?, Some(id))?;
    let expired = match r.try_get::<_, Option<&str>>(3).map_err(|_| bad(Some(id)))? {
        None => None,
        Some("idle") => Some(ExpiryCause::Idle),
        Some("absolute") => Some(ExpiryCause::Absolute),
        Some(_) => return Err(bad(Some(id))),
    };
    Ok(Purged {
        tenant,
        id,
        subject: subject_col(r, 2, Some(id))?,
        expired,
    })
}

impl SessionStore for PostgresStore {
    const MAX_VERSION: u64 = MAX_VERSION as u64;

    async fn create(
        &self,
        rec: SessionRecord,
        limits: Limits,
        now: Millis,
    ) -> StoreResult<CreateOutcome> {
        codec::check_record(&rec)?;
        let id = rec.id;
        let (state, revoked_at) = match rec.state {
            SessionState::Active => (0i16, None),
            SessionState::Revoked { reason, at } => (i16::from(reason.code()), Some(ms(at))),
        };
        let (cap, refuse) = match limits.per_subject {
            Some((n, on)) => (Some(i64::from(n)), on == OnSessionLimit::Refuse),
            None => (None, false),
        };
        let anon_cap = limits
            .anonymous
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let rf = rec.refresh.as_deref();
        let rc = rf.map(|r| r.current.as_bytes().to_vec());
        let rp = rf.and_then(|r| r.previous.map(|p| p.as_bytes().to_vec()));
        let rg = rf.map(|r| i64::from(r.generation));
        let ri = rf.map(|r| ms(r.issued_at));
        let rgu = rf.map(|r| ms(r.grace_until));
        let version = expected(rec.version);
        let client = side_blob::encode(rec.side());
        let subject = rec.subject.as_ref().map(Subject::as_str);
        let row = self
            .query_one(
                sql::CREATE,
                &[
                    &uuid(id),
                    &rec.tenant.as_str(),
                    &rec.token_hash.as_bytes().as_slice(),
                    &subject,
                    &state,
                    &revoked_at,
                    &version,
                    &ms(rec.created_at),
                    &ms(rec.last_seen_at),
                    &rec.idle_timeout.as_millis(),
                    &ms(rec.expires_at),
                    &rec.auth_time.map(ms),
                    &rec.attributes.as_json().as_bytes(),
                    &client,
                    &rc,
                    &rp,
                    &rg,
                    &ri,
                    &rgu,
                    &ms(now),
                    &cap,
                    &refuse,
                    &limits.replaces.map(uuid),
                    &anon_cap,
                ],
                Some(id),
                "create reply",
            )
            .await?;
        let bad = || corrupt("create reply", Some(id));
        Ok(match outcome(&row, "create reply", Some(id))? {
            "duplicate" => CreateOutcome::Duplicate,
            "subject_limit" => CreateOutcome::SubjectLimitReached,
            "anonymous_limit" => CreateOutcome::AnonymousLimitReached,
            "created" => {
                let ids: Vec<Uuid> = row.try_get(1).map_err(|_| bad())?;
                let evicted: Vec<SessionId> = ids.into_iter().map(codec::session_id).collect();
                for id in &evicted {
                    self.announce(Invalidation::Session(*id)).await;
                }
                CreateOutcome::Created { evicted }
            }
            _ => return Err(bad()),
        })
    }

    async fn get_by_token(
        &self,
        tenant: TenantId,
        hash: &TokenHash,
    ) -> StoreResult<Option<SessionRecord>> {
        if let Some(bus) = &self.near
            && let Some(rec) = bus.cache.get(tenant, hash)
        {
            return Ok(Some(rec));
        }
        self.get_by_token_uncached(tenant, hash).await
    }

    async fn get_by_token_uncached(
        &self,
        tenant: TenantId,
        hash: &TokenHash,
    ) -> StoreResult<Option<SessionRecord>> {
        let ticket = self.near.as_ref().and_then(|b| b.cache.ticket());
        let rows = self
            .query(
                &sql::GET_BY_TOKEN,
                &[&hash.as_bytes().as_slice(), &tenant.as_str()],
                None,
            )
            .await?;
        let found = rows.first().map(|r| codec::record(r, 0)).transpose()?;
        if let (Some(bus), Some(t), Some(r)) = (&self.near, ticket, &found) {
            bus.cache.fill(t, r);
        }
        Ok(found)
    }

    async fn get_by_id(
        &self,
        tenant: TenantId,
        id: SessionId,
    ) -> StoreResult<Option<SessionRecord>> {
        let rows = self
            .query(&sql::GET_BY_ID, &[&uuid(id), &tenant.as_str()], Some(id))
            .await?;
        rows.first().map(|r| codec::record(r, 0)).transpose()
    }

    async fn touch(&self, tenant: TenantId, id: SessionId, at: Millis) -> StoreResult<bool> {
        let row = self
            .query_one(
                sql::TOUCH,
                &[&tenant.as_str(), &uuid(id), &ms(at)],
                Some(id),
                "touch reply",
            )
            .await?;
        self.forget_here(id);
        row.try_get::<_, bool>(0)
            .map_err(|_| corrupt("touch reply", Some(id)))
    }

    async fn update(
        &self,
        tenant: TenantId,
        id: SessionId,
        expected_version: u64,
        change: Change,
        now: Millis,
    ) -> StoreResult<UpdateOutcome> {
        let Change::Attributes(attrs) = change;
        codec::check_attributes(&attrs, id)?;
        let row = self
            .query_one(
                sql::UPDATE,
                &[
                    &tenant.as_str(),
                    &uuid(id),
                    &expected(expected_version),
                    &attrs.as_json().as_bytes(),
                    &ms(now),
                    &MAX_VERSION,
                ],
                Some(id),
                "update reply",
            )
            .await?;
        match outcome(&row, "update reply", Some(id))? {
            "not_live" => Ok(UpdateOutcome::NotLive),
            "capacity" => Err(StoreError::Capacity(Capacity::Version)),
            "mismatch" => Ok(UpdateOutcome::VersionMismatch {
                current: version(&row, "update reply", id)?,
            }),
            "updated" => {
                let r = codec::record(&row, 2)?;
                self.announce(Invalidation::Session(id)).await;
                Ok(UpdateOutcome::Updated(Box::new(r)))
            }
            _ => Err(corrupt("update reply", Some(id))),
        }
    }

    async fn swap_grants(&self, req: GrantSwapRequest) -> StoreResult<GrantSwap> {
        let id = req.id;
        let Some(rec) = self.get_by_id(req.tenant, id).await? else {
            return Ok(GrantSwap::NotLive);
        };
        let (tenant, now) = (req.tenant, req.now);
        let (expected, new) = match side_blob::grant_swap_blobs(rec, req) {
            Ok(blobs) => blobs,
            Err(answer) => return Ok(answer),
        };
        let rows = self
            .query(
                sql::SWAP_GRANTS,
                &[&tenant.as_str(), &uuid(id), &new, &expected, &ms(now)],
                Some(id),
            )
            .await?;
        let swapped = !rows.is_empty();
        if swapped {
            self.announce(Invalidation::Session(id)).await;
        }
        // Read back: the record as it now is, or why nothing was written.
        match self.get_by_id(tenant, id).await? {
            Some(r) if swapped => Ok(GrantSwap::Swapped(Box::new(r))),
            Some(r) if r.is_live(now) => Ok(GrantSwap::Changed(Box::new(r))),
            _ => Ok(GrantSwap::NotLive),
        }
    }

    async fn retire(&self, req: RetireRequest) -> StoreResult<RetireOutcome> {
        let id = req.old_id;
        let row = self
            .query_one(
                sql::RETIRE,
                &[
                    &req.tenant.as_str(),
                    &uuid(id),
                    &req.old_token_hash.as_bytes().as_slice(),
                    &expected(req.expected_version),
                    &uuid(req.successor),
                    &ms(req.now),
                ],
                Some(id),
                "retire reply",
            )
            .await?;
        match outcome(&row, "retire reply", Some(id))? {
            "retired" => {
                self.announce(Invalidation::Session(id)).await;
                Ok(RetireOutcome::Retired)
            }
            "not_live" => Ok(RetireOutcome::NotLive),
            "mismatch" => Ok(RetireOutcome::VersionMismatch {
                current: version(&row, "retire reply", id)?,
            }),
            _ => Err(corrupt("retire reply", Some(id))),
        }
    }

    async fn refresh(&self, req: RefreshRequest) -> StoreResult<RefreshOutcome> {
        let id = req.id;
        let row = self
            .query_one(
                sql::REFRESH,
                &[
                    &req.tenant.as_str(),
                    &uuid(id),
                    &req.presented.as_bytes().as_slice(),
                    &i64::from(req.presented_generation),
                    &req.successor.as_bytes().as_slice(),
                    &ms(req.now),
                    &ms(req.grace_until),
                ],
                Some(id),
                "refresh reply",
            )
            .await?;
        let tag = outcome(&row, "refresh reply", Some(id))?;
        if matches!(tag, "rotated" | "reuse") {
            self.announce(Invalidation::Session(id)).await;
        }
        match tag {
            "not_live" => Ok(RefreshOutcome::NotLive),
            "rotated" => Ok(RefreshOutcome::Rotated(Box::new(codec::record(&row, 2)?))),
            "replayed" => Ok(RefreshOutcome::Replayed(Box::new(codec::record(&row, 2)?))),
            // The subject is the record's (column 2 + 3).
            "reuse" => Ok(RefreshOutcome::ReuseDetected {
                subject: subject_col(&row, 5, Some(id))?,
            }),
            _ => Err(corrupt("refresh reply", Some(id))),
        }
    }

    async fn revoke(
        &self,
        tenant: TenantId,
        id: SessionId,
        reason: RevokeReason,
        now: Millis,
    ) -> StoreResult<RevokeOutcome> {
        let row = self
            .query_one(
                sql::REVOKE,
                &[
                    &tenant.as_str(),
                    &uuid(id),
                    &i16::from(reason.code()),
                    &ms(now),
                ],
                Some(id),
                "revoke reply",
            )
            .await?;
        let tag = outcome(&row, "revoke reply", Some(id))?;
        // Also when already revoked: a retry repairs a lost announcement.
        if matches!(tag, "revoked" | "already") {
            self.announce(Invalidation::Session(id)).await;
        }
        match tag {
            "not_found" => Ok(RevokeOutcome::NotFound),
            "already" => Ok(RevokeOutcome::AlreadyRevoked),
            "revoked" => Ok(RevokeOutcome::Revoked {
                subject: subject_col(&row, 1, Some(id))?,
            }),
            _ => Err(corrupt("revoke reply", Some(id))),
        }
    }

    async fn revoke_subject(
        &self,
        tenant: TenantId,
        subject: &Subject,
        except: Option<SessionId>,
        reason: RevokeReason,
        now: Millis,
    ) -> StoreResult<RevokeSubjectOutcome> {
        let row = self
            .query_one(
                sql::REVOKE_SUBJECT,
                &[
                    &tenant.as_str(),
                    &subject.as_str(),
                    &except.map(uuid),
                    &i16::from(reason.code()),
                    &ms(now),
                ],
                except,
                "revoke_subject reply",
            )
            .await?;
        let bad = || corrupt("revoke_subject reply", None);
        match outcome(&row, "revoke_subject reply", None)? {
            "except_not_live" => Ok(RevokeSubjectOutcome::ExceptNotLive),
            "revoked" => {
                let n: i64 = row.try_get(1).map_err(|_| bad())?;
                if n > 0 {
                    self.announce(Invalidation::Subject(tenant, subject.clone()))
                        .await;
                }
                Ok(RevokeSubjectOutcome::Revoked {
                    count: u64::try_from(n).map_err(|_| bad())?,
                })
            }
            _ => Err(bad()),
        }
    }

    async fn list_subject(
        &self,
        tenant: TenantId,
        subject: &Subject,
        now: Millis,
        after: Option<ListCursor>,
        limit: usize,
    ) -> StoreResult<Vec<SessionRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = self
            .query(
                &sql::LIST_SUBJECT,
                &[
                    &tenant.as_str(),
                    &subject.as_str(),
                    &ms(now),
                    &after.map(|c| ms(c.created_at)),
                    &after.map(|c| uuid(c.id)),
                    &i64::try_from(limit).unwrap_or(i64::MAX),
                ],
                None,
            )
            .await?;
        rows.iter().map(|r| codec::record(r, 0)).collect()
    }

    async fn purge_expired(&self, now: Millis, max: usize) -> StoreResult<Vec<Purged>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        // Small batches, one transaction each, so that no purge holds many
        // row locks for long; a short batch means nothing more is due (or
        // the rest is locked by someone else: the next purge takes it).
        let mut out = Vec::new();
        while out.len() < max {
            let n = (max - out.len()).min(PURGE_BATCH);
            let asked = i32::try_from(n).unwrap_or(i32::MAX);
            let rows = match self.query(sql::PURGE, &[&ms(now), &asked], None).await {
                Ok(rows) => rows,
                // Earlier batches are committed: report them (the next
                // purge meets the failure again if it lasts).
                Err(_) if !out.is_empty() => break,
                Err(e) => return Err(e),
            };
            let got = rows.len();
            for r in &rows {
                let p = purged(r)?;
                // Other nodes' copies read as expired, or are reread (idle).
                self.forget_here(p.id);
                out.push(p);
            }
            if got < n {
                break;
            }
        }
        Ok(out)
    }

    async fn clock_floor(&self) -> StoreResult<Millis> {
        let row = self
            .query_one(sql::CLOCK_FLOOR, &[], None, "clock floor")
            .await?;
        row.try_get::<_, Option<i64>>(0)
            .ok()
            .flatten()
            .map(Millis::from_millis)
            .ok_or_else(|| corrupt("clock floor", None))
    }

    async fn persist_clock_floor(&self, at: Millis) -> StoreResult<()> {
        self.query(sql::PERSIST_FLOOR, &[&ms(at)], None).await?;
        Ok(())
    }
}

impl StoreAdmin for PostgresStore {
    async fn list_subjects(
        &self,
        tenant: TenantId,
        now: Millis,
        after: Option<&Subject>,
        limit: usize,
    ) -> StoreResult<Vec<(Subject, u64)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = self
            .query(
                sql::LIST_SUBJECTS,
                &[
                    &tenant.as_str(),
                    &ms(now),
                    &after.map(Subject::as_str),
                    &i64::try_from(limit).unwrap_or(i64::MAX),
                ],
                None,
            )
            .await?;
        let bad = || corrupt("subject index", None);
        rows.iter()
            .map(|r| {
                let s = codec::subject(r.try_get(0).map_err(|_| bad())?, None)?;
                let n: i64 = r.try_get(1).map_err(|_| bad())?;
                Ok((s, u64::try_from(n).map_err(|_| bad())?))
            })
            .collect()
    }

    /// Exact (`approximate: false`): the counters change in the same
    /// transaction as the records, and one statement reads them all.
    async fn counts(&self, tenant: TenantId) -> StoreResult<Counts> {
        let row = self
            .query_one(sql::COUNTS, &[&tenant.as_str()], None, "counters")
            .await?;
        let get = |i: usize| -> StoreResult<u64> {
            row.try_get::<_, i64>(i)
                .ok()
                .and_then(|v| u64::try_from(v).ok())
                .ok_or_else(|| corrupt("counters", None))
        };
        Ok(Counts {
            active: get(0)?,
            anonymous: get(1)?,
            subjects: get(2)?,
            approximate: false,
        })
    }
}
