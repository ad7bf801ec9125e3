//! The per-subject index: every active session that has a subject, in a
//! `HashTable` multimap keyed by a seeded hash of tenant and subject (one
//! 4-byte entry per session; a subject's sessions are the entries of its
//! hash whose record names it).
//!
//! Not a [`LineTable`](super::line_table::LineTable), although that would
//! save a create one cache miss (measured: ~3% of a create at 1M): all the
//! sessions of one subject share a hash, and a subject with many sessions
//! (no per-subject cap) would fill a run of consecutive buckets that every
//! other subject homed inside it must walk to its end. hashbrown's probe
//! sequences only cross such a run.

use std::hash::BuildHasher;
use std::sync::RwLock;

use hashbrown::HashTable;

use super::{TenantCounts, WriteTxn, read};
use crate::shard::{Loc, Shard};
use sessionkit_core::ids::{Subject, TenantId};
use sessionkit_core::time::Millis;

/// The subject multimaps, one per tenant. The default tenant's table is a
/// field of its own: most stores hold one tenant, and its lookup is then a
/// comparison, not a hash (the create path looks its table up three times).
#[derive(Default)]
pub(super) struct PerTenant {
    default: HashTable<Loc>,
    others: hashbrown::HashMap<TenantId, HashTable<Loc>>,
}

impl PerTenant {
    fn get(&self, tenant: &TenantId) -> Option<&HashTable<Loc>> {
        if *tenant == TenantId::DEFAULT {
            Some(&self.default)
        } else {
            self.others.get(tenant)
        }
    }

    fn get_or_default(&mut self, tenant: TenantId) -> &mut HashTable<Loc> {
        if tenant == TenantId::DEFAULT {
            &mut self.default
        } else {
            self.others.entry(tenant).or_default()
        }
    }

    /// Drops `loc` from `tenant`'s table; whether it was there.
    fn remove(&mut self, tenant: TenantId, h: u64, loc: Loc) -> bool {
        let table = if tenant == TenantId::DEFAULT {
            &mut self.default
        } else {
            match self.others.get_mut(&tenant) {
                Some(t) => t,
                None => return false,
            }
        };
        let Ok(e) = table.find_entry(h, |&l| l == loc) else {
            return false;
        };
        e.remove();
        if tenant != TenantId::DEFAULT && table.is_empty() {
            self.others.remove(&tenant);
        }
        true
    }

    fn tables_mut(&mut self) -> impl Iterator<Item = &mut HashTable<Loc>> {
        std::iter::once(&mut self.default).chain(self.others.values_mut())
    }

    /// Entries over every tenant.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.default.len() + self.others.values().map(HashTable::len).sum::<usize>()
    }

    /// Whether `tenant` has a table (the default tenant always has).
    #[cfg(test)]
    pub(super) fn has(&self, tenant: &TenantId) -> bool {
        self.get(tenant).is_some()
    }

    /// Whether a tenant other than the default has an empty table.
    #[cfg(test)]
    pub(super) fn keeps_empty_tables(&self) -> bool {
        self.others.values().any(HashTable::is_empty)
    }
}

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
            .get(&tenant)
            .into_iter()
            .flat_map(move |t| t.iter_hash(h))
            .copied()
            .filter(move |&loc| matches_subject(shards, loc, tenant, subject))
    }

    /// The active sessions of a subject.
    pub(super) fn subject_locs(&self, tenant: TenantId, subject: &[u8]) -> Vec<Loc> {
        let h = self.subject_hash(tenant, subject);
        self.subject_entries(h, tenant, subject).collect()
    }

    /// Reads the control group a lookup of this subject reads first, so that
    /// its cache miss starts now (a probe that matches nothing reads no
    /// entry).
    pub(super) fn warm_subject(&self, tenant: TenantId, subject: &[u8]) {
        let h = self.subject_hash(tenant, subject);
        if let Some(t) = self.w.subjects.get(&tenant) {
            std::hint::black_box(t.find(h, |_| false).is_some());
        }
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
                .zip(shard.tenant_of(s))
                .map_or(0, |(b, t)| hasher.hash_one((t, b)))
        });
        let table = w.subjects.get_or_default(tenant);
        if table.len() == table.capacity() {
            // Grown here rather than by hashbrown, so that the records are
            // read in slot order (see `LineTable`'s growth).
            let mut locs: Vec<Loc> = table.iter().copied().collect();
            locs.sort_unstable();
            let mut grown = HashTable::with_capacity((locs.len() * 2).max(8));
            for l in locs {
                grown.insert_unique(hash_of(l), l, |&l| hash_of(l));
            }
            *table = grown;
        }
        table.insert_unique(h, loc, |&l| hash_of(l));
    }

    /// Drops an active session from its subject's entries (call while the
    /// record still has its subject).
    pub(super) fn unlink_subject(&mut self, loc: Loc) {
        let Some((Some(tenant), subject)) = self
            .with(loc, |shard, s| {
                s.subject_bytes().map(|b| (shard.tenant_of(s), b.to_vec()))
            })
            .flatten()
        else {
            return;
        };
        let h = self.subject_hash(tenant, &subject);
        if self.w.subjects.remove(tenant, h, loc)
            && self.subject_entries(h, tenant, &subject).next().is_none()
        {
            let c = self.counts(tenant);
            c.subjects = c.subjects.saturating_sub(1);
        }
    }

    /// Drops `loc` from every tenant's entries (its tenant does not decode,
    /// so its entry cannot be found by hash; corruption only).
    pub(super) fn unlink_subject_anywhere(&mut self, loc: Loc) {
        for table in self.w.subjects.tables_mut() {
            table.retain(|l| *l != loc);
        }
        self.w.subjects.others.retain(|_, t| !t.is_empty());
    }

    /// Active sessions with a subject, over every tenant.
    #[cfg(test)]
    pub(super) fn subject_entry_count(&self) -> usize {
        self.w.subjects.len()
    }

    /// The first `limit` subjects of `tenant` that sort after `after`
    /// (byte order) with a session live at `now`, each with its number of
    /// live sessions. Walks only `tenant`'s own entries: a listing in one
    /// tenant costs that tenant's sessions with a subject, never another
    /// tenant's (an empty tenant answers at once).
    pub(super) fn subjects_page(
        &self,
        tenant: TenantId,
        now: Millis,
        after: Option<&Subject>,
        limit: usize,
    ) -> Vec<(Subject, u64)> {
        let Some(table) = self.w.subjects.get(&tenant) else {
            return Vec::new();
        };
        let mut live: hashbrown::HashMap<Vec<u8>, u64> = hashbrown::HashMap::new();
        let after = after.map(|a| a.as_str().as_bytes());
        for &loc in table {
            let found = self
                .with(loc, |_, s| {
                    if !s.is_live(now) {
                        return None;
                    }
                    let b = s.subject_bytes()?;
                    after.is_none_or(|a| b > a).then(|| b.to_vec())
                })
                .flatten();
            if let Some(b) = found {
                *live.entry(b).or_default() += 1;
            }
        }
        let mut out: Vec<(Vec<u8>, u64)> = live.into_iter().collect();
        if out.len() > limit {
            out.select_nth_unstable_by(limit, |a, b| a.0.cmp(&b.0));
            out.truncate(limit);
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out.into_iter()
            .filter_map(|(b, n)| Subject::from_bytes(&b).ok().map(|s| (s, n)))
            .collect()
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
