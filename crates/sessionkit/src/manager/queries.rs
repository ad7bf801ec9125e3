//! Reads: one session, a subject's sessions (device list), counts, and the
//! purge of expired records.

use sessionkit_core::store::{Counts, ListCursor};
use sessionkit_core::{SessionId, SessionRecord, SessionStore, StoreAdmin, Subject, TenantId};

use super::SessionManager;
use crate::error::{EngineError, invalid};
use crate::events::EventKind;

/// Most sessions one page may hold.
pub const MAX_PAGE: usize = 1000;
/// Records removed per purge batch.
const PURGE_BATCH: usize = 10_000;

/// One page of a subject's sessions, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The sessions.
    pub sessions: Vec<SessionRecord>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<ListCursor>,
}

/// One page of the subjects with a live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectPage {
    /// Subjects and their numbers of live sessions, in byte order.
    pub subjects: Vec<(Subject, u64)>,
    /// The subject to continue after; `None` on the last page.
    pub next: Option<Subject>,
}

impl<S: SessionStore> SessionManager<S> {
    /// The live session with this id; `None` for a dead or unknown id.
    pub async fn get(
        &self,
        tenant: TenantId,
        id: SessionId,
    ) -> Result<Option<SessionRecord>, EngineError> {
        let now = self.now();
        Ok(self
            .store
            .get_by_id(tenant, id)
            .await?
            .filter(|r| r.is_live(now)))
    }

    /// The live session with this id if it belongs to `subject`.
    pub async fn get_for_subject(
        &self,
        tenant: TenantId,
        subject: &Subject,
        id: SessionId,
    ) -> Result<Option<SessionRecord>, EngineError> {
        Ok(self
            .get(tenant, id)
            .await?
            .filter(|r| r.subject.as_ref() == Some(subject)))
    }

    /// A page of the live sessions of `subject`, newest first, with their
    /// client info. `limit` must be 1..=1000.
    pub async fn list(
        &self,
        tenant: TenantId,
        subject: &Subject,
        after: Option<ListCursor>,
        limit: usize,
    ) -> Result<Page, EngineError> {
        if limit == 0 || limit > MAX_PAGE {
            return Err(invalid("limit", format!("must be from 1 to {MAX_PAGE}")));
        }
        let now = self.now();
        let mut sessions = self
            .store
            .list_subject(tenant, subject, now, after, limit + 1)
            .await?;
        let next = if sessions.len() > limit {
            sessions.truncate(limit);
            sessions.last().map(ListCursor::after)
        } else {
            None
        };
        Ok(Page { sessions, next })
    }

    /// Removes every record past its purge time, emitting `expired` once for
    /// each session that expired. Returns how many records went.
    ///
    /// It also persists the engine's time as the store's clock floor, so a
    /// periodic purge bounds how far a clock set back across a restart can
    /// reach: no session the engine saw expire before the last purge looks
    /// live again.
    pub async fn purge_expired(&self) -> Result<usize, EngineError> {
        self.store.persist_clock_floor(self.now()).await?;
        let mut total = 0;
        loop {
            let now = self.now();
            let batch = self.store.purge_expired(now, PURGE_BATCH).await?;
            let n = batch.len();
            total += n;
            for p in batch {
                if let Some(cause) = p.expired {
                    self.emit_for(
                        p.tenant,
                        Some(p.id),
                        p.subject,
                        now,
                        EventKind::Expired { cause },
                    );
                }
            }
            if n < PURGE_BATCH {
                break;
            }
            // A store that answers at once (memory, embedded) would
            // otherwise run every batch of a large purge on this worker
            // without letting the requests queued behind it in.
            sessionkit_core::time::yield_now().await;
        }
        metrics::counter!(self.metrics.purged).increment(total as u64);
        Ok(total)
    }
}

/// Operator figures, from stores that keep them ([`StoreAdmin`]).
impl<S: StoreAdmin> SessionManager<S> {
    /// A page of the subjects of `tenant` that have an active session ("who
    /// is logged in"), in byte order, each with its number of sessions (see
    /// [`StoreAdmin::list_subjects`] for what a store may count).
    /// `limit` must be 1..=1000; continue after the last subject of a page.
    pub async fn list_subjects(
        &self,
        tenant: TenantId,
        after: Option<&Subject>,
        limit: usize,
    ) -> Result<SubjectPage, EngineError> {
        if limit == 0 || limit > MAX_PAGE {
            return Err(invalid("limit", format!("must be from 1 to {MAX_PAGE}")));
        }
        let now = self.now();
        let mut subjects = self
            .store
            .list_subjects(tenant, now, after, limit + 1)
            .await?;
        let next = if subjects.len() > limit {
            subjects.truncate(limit);
            subjects.last().map(|(s, _)| s.clone())
        } else {
            None
        };
        Ok(SubjectPage { subjects, next })
    }

    /// A tenant's figures, for stats (exact or within the bound the store
    /// states, see [`Counts`]).
    pub async fn counts(&self, tenant: TenantId) -> Result<Counts, EngineError> {
        Ok(self.store.counts(tenant).await?)
    }
}
