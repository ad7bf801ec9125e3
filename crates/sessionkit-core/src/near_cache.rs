//! A node's local cache of session records in front of a shared store
//! (Redis, PostgreSQL), invalidated across nodes.
//!
//! The cache itself knows nothing of the transport: the store that owns it
//! applies every invalidation it hears (its own writes and other nodes'),
//! marks it usable only while its invalidation channel is up, and fills it
//! after reads. The rules that make that safe live here:
//!
//! - **Marks, not deletions.** Every invalidation takes the next number of a
//!   local sequence and writes it into a mark slot chosen by the session id
//!   (or by tenant and subject). An entry remembers the sequence number
//!   taken *before* the store read that produced it, and is served only if
//!   neither of its mark slots has moved past that number. So an
//!   invalidation that lands while a read is in flight can never be
//!   overwritten by the stale result of that read, and no index from ids to
//!   cached tokens is needed. Two sessions sharing a mark slot only cost
//!   each other a miss.
//! - **Usable only while connected.** [`NearCache::set_usable`]`(false)`
//!   stops every hit at once; `set_usable(true)` first moves a floor past
//!   every entry filled so far, so nothing cached before an outage of the
//!   channel is served after it.
//! - **Short-lived.** An entry older than the configured TTL is a miss,
//!   whatever the marks say: the bound if an invalidation is lost.
//!
//! Only active records are cached. The cache never decides liveness: the
//! engine does, from the record, and rereads the store (bypassing the
//! cache) before it reports an idle expiry, because another node may have
//! touched the session since it was cached.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::ids::{SessionId, Subject, TenantId};
use crate::record::{SessionRecord, SessionState};
use crate::token::TokenHash;

/// Mark slots for session ids (a power of two).
const ID_MARKS: usize = 1 << 16;
/// Mark slots for subjects (a power of two).
const SUBJECT_MARKS: usize = 1 << 14;

/// How large and how long-lived a near-cache is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NearCacheConfig {
    /// Records kept at most (least recently and least frequently used go
    /// first).
    pub capacity: usize,
    /// An entry older than this is never served.
    pub ttl: Duration,
}

impl Default for NearCacheConfig {
    fn default() -> Self {
        NearCacheConfig {
            capacity: 100_000,
            ttl: Duration::from_secs(5),
        }
    }
}

/// What changed, as far as caches are concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// One session changed or ended (revoke, retire, refresh, update,
    /// eviction, touch).
    Session(SessionId),
    /// Every session of a subject (revoke_subject).
    Subject(TenantId, Subject),
}

/// A sequence number taken before a store read; see [`NearCache::ticket`].
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

#[derive(Clone)]
struct Entry {
    rec: Arc<SessionRecord>,
    stamp: u64,
    at: Instant,
}

/// Counters of a near-cache, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NearCacheStats {
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads that went to the store while the cache was usable.
    pub misses: u64,
    /// Invalidations applied (local and remote).
    pub invalidations: u64,
    /// Whether the cache is serving (its invalidation channel is up).
    pub usable: bool,
    /// Entries held now.
    pub entries: u64,
}

/// The cache. Shared by reference (`Arc`); every method takes `&self`.
pub struct NearCache {
    entries: quick_cache::sync::Cache<TokenHash, Entry>,
    ttl: Duration,
    seq: AtomicU64,
    /// Entries stamped below this are stale (moved on reconnect).
    floor: AtomicU64,
    usable: AtomicBool,
    id_marks: Box<[AtomicU64]>,
    subject_marks: Box<[AtomicU64]>,
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
}

impl std::fmt::Debug for NearCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NearCache")
            .field("stats", &self.stats())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn marks(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

fn id_slot(id: SessionId) -> usize {
    let b = id.as_bytes();
    (usize::from(b[14]) << 8 | usize::from(b[15])) & (ID_MARKS - 1)
}

fn subject_slot(tenant: &TenantId, subject: &Subject) -> usize {
    // FNV-1a: cheap and well spread over short texts; collisions only
    // cost a miss.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tenant
        .as_str()
        .bytes()
        .chain([0])
        .chain(subject.as_str().bytes())
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    usize::try_from(h % SUBJECT_MARKS as u64).unwrap_or(0)
}

impl NearCache {
    /// An empty cache, not usable until [`NearCache::set_usable`]`(true)`.
    #[must_use]
    pub fn new(cfg: NearCacheConfig) -> Self {
        NearCache {
            entries: quick_cache::sync::Cache::new(cfg.capacity.max(1)),
            ttl: cfg.ttl,
            seq: AtomicU64::new(1),
            floor: AtomicU64::new(0),
            usable: AtomicBool::new(false),
            id_marks: marks(ID_MARKS),
            subject_marks: marks(SUBJECT_MARKS),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
        }
    }

    /// Starts or stops serving. Starting moves the floor past every entry
    /// filled so far: whatever was missed while the channel was down is
    /// never served.
    pub fn set_usable(&self, on: bool) {
        if on {
            // Only tickets taken after this increment pass the floor.
            let s = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
            self.floor.fetch_max(s + 1, Ordering::SeqCst);
            self.entries.clear();
        }
        self.usable.store(on, Ordering::SeqCst);
    }

    /// Whether the cache is serving.
    #[must_use]
    pub fn is_usable(&self) -> bool {
        self.usable.load(Ordering::SeqCst)
    }

    /// The ticket to take *before* a store read whose result may be
    /// cached; `None` when the cache is not usable.
    #[must_use]
    pub fn ticket(&self) -> Option<Ticket> {
        self.is_usable()
            .then(|| Ticket(self.seq.load(Ordering::SeqCst)))
    }

    /// The cached record for this token in `tenant`, if it may be served.
    #[must_use]
    pub fn get(&self, tenant: TenantId, hash: &TokenHash) -> Option<SessionRecord> {
        if !self.is_usable() {
            return None;
        }
        let hit = self
            .entries
            .get(hash)
            .filter(|e| e.rec.tenant == tenant && self.fresh(e));
        match hit {
            Some(e) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some((*e.rec).clone())
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    fn fresh(&self, e: &Entry) -> bool {
        e.at.elapsed() < self.ttl
            && e.stamp >= self.floor.load(Ordering::SeqCst)
            && self.id_marks[id_slot(e.rec.id)].load(Ordering::SeqCst) < e.stamp
            && e.rec.subject.as_ref().is_none_or(|s| {
                self.subject_marks[subject_slot(&e.rec.tenant, s)].load(Ordering::SeqCst) < e.stamp
            })
    }

    /// Caches `rec`, read from the store after `ticket` was taken, unless
    /// an invalidation of it was applied since (or it is not active).
    pub fn fill(&self, ticket: Ticket, rec: &SessionRecord) {
        if rec.state != SessionState::Active || !self.is_usable() {
            return;
        }
        let e = Entry {
            rec: Arc::new(rec.clone()),
            // Marks are written with the sequence number *after* an
            // increment, so an entry stamped `ticket + 1` is stale exactly
            // when a mark reached a number above the ticket.
            stamp: ticket.0 + 1,
            at: Instant::now(),
        };
        if self.fresh(&e) {
            self.entries.insert(rec.token_hash, e);
        }
    }

    /// Applies an invalidation: every entry it covers stops being served
    /// now, on this node.
    pub fn invalidate(&self, inv: &Invalidation) {
        let s = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let mark = match inv {
            Invalidation::Session(id) => &self.id_marks[id_slot(*id)],
            Invalidation::Subject(t, sub) => &self.subject_marks[subject_slot(t, sub)],
        };
        mark.fetch_max(s, Ordering::SeqCst);
        self.invalidations.fetch_add(1, Ordering::Relaxed);
    }

    /// Counters for metrics.
    #[must_use]
    pub fn stats(&self) -> NearCacheStats {
        NearCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            usable: self.is_usable(),
            entries: u64::try_from(self.entries.len()).unwrap_or(u64::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Attributes, ClientInfo, DurationMs, Millis, SessionToken};

    fn rec(subject: &str) -> SessionRecord {
        SessionRecord {
            tenant: TenantId::DEFAULT,
            id: SessionId::generate(),
            token_hash: SessionToken::generate().unwrap().hash(),
            subject: Some(Subject::new(subject).unwrap()),
            created_at: Millis::from_millis(1_000),
            last_seen_at: Millis::from_millis(1_000),
            idle_timeout: DurationMs::from_millis(60_000),
            expires_at: Millis::from_millis(1_000_000),
            auth_time: None,
            attributes: Attributes::empty(),
            client: ClientInfo::default(),
            version: 1,
            state: SessionState::Active,
            refresh: None,
            assurance: None,
            grants: None,
        }
    }

    fn cache() -> NearCache {
        let c = NearCache::new(NearCacheConfig::default());
        c.set_usable(true);
        c
    }

    #[test]
    fn served_until_invalidated() {
        let c = cache();
        let r = rec("ann");
        c.fill(c.ticket().unwrap(), &r);
        assert_eq!(c.get(r.tenant, &r.token_hash).map(|x| x.id), Some(r.id));
        // Another tenant never sees it.
        let other = TenantId::new("other").unwrap();
        assert!(c.get(other, &r.token_hash).is_none());
        c.invalidate(&Invalidation::Session(r.id));
        assert!(c.get(r.tenant, &r.token_hash).is_none());
        // A read after the invalidation may be cached again.
        c.fill(c.ticket().unwrap(), &r);
        assert!(c.get(r.tenant, &r.token_hash).is_some());
        c.invalidate(&Invalidation::Subject(
            r.tenant,
            Subject::new("ann").unwrap(),
        ));
        assert!(c.get(r.tenant, &r.token_hash).is_none());
    }

    #[test]
    fn an_invalidation_during_the_read_wins_over_its_result() {
        let c = cache();
        let r = rec("bob");
        let ticket = c.ticket().unwrap();
        // ... the store read is in flight when the revoke is heard ...
        c.invalidate(&Invalidation::Session(r.id));
        c.fill(ticket, &r);
        assert!(c.get(r.tenant, &r.token_hash).is_none());
        let ticket = c.ticket().unwrap();
        c.invalidate(&Invalidation::Subject(
            r.tenant,
            Subject::new("bob").unwrap(),
        ));
        c.fill(ticket, &r);
        assert!(c.get(r.tenant, &r.token_hash).is_none());
    }

    #[test]
    fn an_outage_of_the_channel_drops_everything() {
        let c = cache();
        let r = rec("cy");
        let early = c.ticket().unwrap();
        c.fill(c.ticket().unwrap(), &r);
        c.set_usable(false);
        assert!(c.ticket().is_none());
        assert!(c.get(r.tenant, &r.token_hash).is_none());
        c.set_usable(true);
        assert!(c.get(r.tenant, &r.token_hash).is_none());
        // A read begun before the outage is not cached after it.
        c.fill(early, &r);
        assert!(c.get(r.tenant, &r.token_hash).is_none());
    }

    #[test]
    fn tombstones_and_old_entries_are_not_served() {
        let c = NearCache::new(NearCacheConfig {
            capacity: 10,
            ttl: Duration::ZERO,
        });
        c.set_usable(true);
        let r = rec("dee");
        c.fill(c.ticket().unwrap(), &r);
        assert!(
            c.get(r.tenant, &r.token_hash).is_none(),
            "older than the TTL"
        );
        let c = cache();
        let mut dead = rec("eve");
        dead.state = SessionState::Revoked {
            reason: crate::RevokeReason::Logout,
            at: Millis::from_millis(2_000),
        };
        c.fill(c.ticket().unwrap(), &dead);
        assert!(c.get(dead.tenant, &dead.token_hash).is_none());
        assert_eq!(c.stats().entries, 0);
    }
}
