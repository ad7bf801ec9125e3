//! The per-subject index: for each (tenant, subject), the head of an
//! intrusive doubly linked list through the slots of that subject's active
//! sessions, in a `HashTable` keyed by a seeded hash of tenant and subject.

use std::hash::BuildHasher;
use std::sync::RwLock;

use super::slab::{Loc, Shard};
use super::{TenantCounts, WriteTxn, read};
use crate::ids::{Subject, TenantId};
use crate::time::Millis;

impl WriteTxn<'_> {
    pub(super) fn subject_hash(&self, tenant: TenantId, subject: &[u8]) -> u64 {
        self.w.subject_hasher.hash_one((tenant, subject))
    }

    pub(super) fn subject_key(&self, loc: Loc) -> Option<(TenantId, Vec<u8>, u16)> {
        self.with(loc, |shard, s| {
            let t = shard.tenant_of(s);
            let ix = shard.tenant_ix(&t).unwrap_or(0);
            s.subject_bytes().map(|b| (t, b.to_vec(), ix))
        })
        .flatten()
    }

    pub(super) fn subject_head(&self, tenant: TenantId, subject: &[u8]) -> Option<Loc> {
        let shards = self.shards;
        let h = self.subject_hash(tenant, subject);
        self.w
            .subjects
            .find(h, |&loc| matches_subject(shards, loc, tenant, subject))
            .copied()
    }

    /// The active sessions of a subject.
    pub(super) fn subject_locs(&self, tenant: TenantId, subject: &[u8]) -> Vec<Loc> {
        let mut out = Vec::new();
        let mut cur = self.subject_head(tenant, subject).unwrap_or(Loc::NONE);
        while !cur.is_none() {
            out.push(cur);
            cur = self.with(cur, |_, s| s.subj_next).unwrap_or(Loc::NONE);
        }
        out
    }

    pub(super) fn link_subject(&mut self, loc: Loc, tenant: TenantId, subject: &[u8]) {
        let h = self.subject_hash(tenant, subject);
        match self.subject_head(tenant, subject) {
            Some(head) => {
                self.with_mut(head, |s| s.subj_prev = loc);
                self.with_mut(loc, |s| {
                    s.subj_next = head;
                    s.subj_prev = Loc::NONE;
                });
                if let Ok(mut e) = self.w.subjects.find_entry(h, |&l| l == head) {
                    *e.get_mut() = loc;
                }
            }
            None => {
                let shards = self.shards;
                let hasher = &self.w.subject_hasher;
                self.w
                    .subjects
                    .insert_unique(h, loc, |&l| subject_hash_at(shards, hasher, l));
                self.counts(tenant).subjects += 1;
            }
        }
    }

    pub(super) fn unlink_subject(&mut self, loc: Loc) {
        let Some((tenant, subject, _)) = self.subject_key(loc) else {
            return;
        };
        let Some((prev, next)) = self.with_mut(loc, |s| {
            let links = (s.subj_prev, s.subj_next);
            s.subj_prev = Loc::NONE;
            s.subj_next = Loc::NONE;
            links
        }) else {
            return;
        };
        if !next.is_none() {
            self.with_mut(next, |s| s.subj_prev = prev);
        }
        if prev.is_none() {
            let h = self.subject_hash(tenant, &subject);
            if let Ok(mut e) = self.w.subjects.find_entry(h, |&l| l == loc) {
                if next.is_none() {
                    e.remove();
                    self.counts(tenant).subjects = self.counts(tenant).subjects.saturating_sub(1);
                } else {
                    *e.get_mut() = next;
                }
            }
        } else {
            self.with_mut(prev, |s| s.subj_next = next);
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
        let heads: Vec<Loc> = self.w.subjects.iter().copied().collect();
        let mut out = Vec::new();
        for head in heads {
            let Some((t, subject)) = self.with(head, |shard, s| (shard.tenant_of(s), s.subject()))
            else {
                continue;
            };
            let Some(subject) = subject.filter(|_| t == tenant) else {
                continue;
            };
            if after.is_some_and(|a| subject.as_str().as_bytes() <= a.as_str().as_bytes()) {
                continue;
            }
            let live = self
                .subject_locs(tenant, subject.as_str().as_bytes())
                .into_iter()
                .filter(|l| self.with(*l, |_, s| s.is_live(now)) == Some(true))
                .count() as u64;
            if live > 0 {
                out.push((subject, live));
            }
        }
        out
    }

    pub(super) fn counts(&mut self, t: TenantId) -> &mut TenantCounts {
        self.w.counts.entry(t).or_default()
    }
}

/// The subject-index hash of the record in `loc` (for rehashing).
pub(super) fn subject_hash_at(
    shards: &[RwLock<Shard>],
    hasher: &impl BuildHasher,
    loc: Loc,
) -> u64 {
    let shard = read(&shards[loc.shard()]);
    shard
        .slot(loc)
        .and_then(|s| {
            s.subject_bytes()
                .map(|b| hasher.hash_one((shard.tenant_of(s), b)))
        })
        .unwrap_or(0)
}

pub(super) fn matches_subject(
    shards: &[RwLock<Shard>],
    loc: Loc,
    tenant: TenantId,
    subject: &[u8],
) -> bool {
    let shard = read(&shards[loc.shard()]);
    match (shard.tenant_ix(&tenant), shard.slot(loc)) {
        (Some(ix), Some(s)) => !s.is_free() && s.same_subject(ix, subject),
        _ => false,
    }
}
