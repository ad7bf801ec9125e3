//! The per-subject index: every active session that has a subject, in a
//! [`LineTable`](super::line_table::LineTable) multimap keyed by a seeded
//! hash of tenant and subject (one 4-byte entry per session; a subject's
//! sessions are the entries of its hash whose record names it). A lookup
//! and an insert read the same one line, so a create's warm-up
//! ([`WriteTxn::warm_subject`]) covers both.

use std::hash::BuildHasher;
use std::sync::RwLock;

use super::slab::{Loc, Shard};
use super::{TenantCounts, WriteTxn, read};
use crate::ids::{Subject, TenantId};
use crate::time::Millis;

impl WriteTxn<'_> {
    fn subject_hash(&self, tenant: TenantId, subject: &[u8]) -> u64 {
        self.w.hasher.hash_one((tenant, subject))
    }

    /// The entries of the subject whose hash is `h`.
    fn subject_entries<'s>(
        &'s self,
        h: u64,
        tenant: TenantId,
        subject: &'s [u8],
    ) -> impl Iterator<Item = Loc> + 's {
        let shards = self.shards;
        self.w
            .subjects
            .iter_hash(h)
            .filter(move |&loc| matches_subject(shards, loc, tenant, subject))
    }

    /// The active sessions of a subject.
    pub(super) fn subject_locs(&self, tenant: TenantId, subject: &[u8]) -> Vec<Loc> {
        let h = self.subject_hash(tenant, subject);
        self.subject_entries(h, tenant, subject).collect()
    }

    /// Reads the line a lookup or an insert of this subject reads first, so
    /// that its cache miss starts now.
    pub(super) fn warm_subject(&self, tenant: TenantId, subject: &[u8]) {
        self.w.subjects.warm(self.subject_hash(tenant, subject));
    }

    pub(super) fn link_subject(&mut self, loc: Loc, tenant: TenantId, subject: &[u8]) {
        let h = self.subject_hash(tenant, subject);
        if self.subject_entries(h, tenant, subject).next().is_none() {
            self.counts(tenant).subjects += 1;
        }
        let w = &mut *self.w;
        let hasher = &w.hasher;
        let hash_of = super::rehash(self.shards, |shard, s| {
            s.subject_bytes()
                .map_or(0, |b| hasher.hash_one((shard.tenant_of(s), b)))
        });
        w.subjects.insert(h, loc, hash_of);
    }

    /// Drops an active session from its subject's entries (call while the
    /// record still has its subject).
    pub(super) fn unlink_subject(&mut self, loc: Loc) {
        let Some((tenant, subject)) = self
            .with(loc, |shard, s| {
                s.subject_bytes().map(|b| (shard.tenant_of(s), b.to_vec()))
            })
            .flatten()
        else {
            return;
        };
        let h = self.subject_hash(tenant, &subject);
        if self.w.subjects.remove(h, loc)
            && self.subject_entries(h, tenant, &subject).next().is_none()
        {
            let c = self.counts(tenant);
            c.subjects = c.subjects.saturating_sub(1);
        }
    }

    /// Every subject of `tenant` with a live session at `now` that sorts
    /// after `after`, with its number of live sessions.
    pub(super) fn subjects_with_live(
        &self,
        tenant: TenantId,
        now: Millis,
        after: Option<&Subject>,
    ) -> Vec<(Subject, u64)> {
        let mut live: hashbrown::HashMap<Subject, u64> = hashbrown::HashMap::new();
        for loc in self.w.subjects.iter() {
            let found = self
                .with(loc, |shard, s| {
                    (shard.tenant_of(s) == tenant && s.is_live(now))
                        .then(|| s.subject())
                        .flatten()
                })
                .flatten();
            let Some(subject) = found else { continue };
            if after.is_some_and(|a| subject.as_str().as_bytes() <= a.as_str().as_bytes()) {
                continue;
            }
            *live.entry(subject).or_default() += 1;
        }
        live.into_iter().collect()
    }

    pub(super) fn counts(&mut self, t: TenantId) -> &mut TenantCounts {
        self.w.counts.entry(t).or_default()
    }
}

pub(super) fn matches_subject(
    shards: &[RwLock<Shard>],
    loc: Loc,
    tenant: TenantId,
    subject: &[u8],
) -> bool {
    let shard = read(&shards[loc.shard()]);
    match (shard.tenant_ix(&tenant), shard.slot(loc)) {
        (Some(ix), Some(s)) => s.same_subject(ix, subject),
        _ => false,
    }
}
