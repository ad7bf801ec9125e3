//! The expiry index: a wheel of one-second buckets, each listing the slots
//! whose purge time fell in it when they were filed. A purge visits only
//! the buckets that are due, so it costs what expires, not what lives.
//!
//! Each record has one entry, filed when it is inserted. A touch or a
//! revoke that moves its purge time later files nothing: when the old
//! bucket comes due the purge finds the record not due yet and moves the
//! entry to the bucket of its current purge time. So a session touched
//! every minute costs one 4-byte entry, not one per touch, and is visited
//! once per idle window.
//!
//! An entry only says "look at this slot then": the purge checks the
//! record's own purge time, so no entry can purge a record early. A slot
//! freed other than by a purge (a durable store's rollback or reload)
//! leaves its entry behind: dropped if it finds the slot free; if the slot
//! holds a new record by then, that record has one extra entry until it is
//! purged (rollbacks and reloads are rare, so these stay few).

use std::collections::BTreeMap;

use crate::shard::Loc;
use sessionkit_core::time::Millis;

const BUCKET_MS: i64 = 1000;

fn bucket(t: Millis) -> i64 {
    t.as_millis().div_euclid(BUCKET_MS)
}

/// One filed record: where it is.
pub(super) type Entry = Loc;

/// What a purge decides about one entry.
pub(super) enum Verdict {
    /// Due: the record was removed.
    Purged,
    /// Not due yet: file the entry again at this purge time.
    Refile(Millis),
    /// The entry names no record any more (its slot is free).
    Stale,
}

/// See the module docs.
#[derive(Default)]
pub(super) struct ExpiryWheel {
    buckets: BTreeMap<i64, Vec<Entry>>,
}

impl ExpiryWheel {
    /// Files the record `entry` names as due at `at`.
    pub(super) fn insert(&mut self, at: Millis, entry: Entry) {
        self.buckets.entry(bucket(at)).or_default().push(entry);
    }

    /// Visits the entries of every bucket that holds times at or before
    /// `now`, oldest first, until `visit` has purged `max` records.
    pub(super) fn drain_due(
        &mut self,
        now: Millis,
        max: usize,
        mut visit: impl FnMut(Entry) -> Verdict,
    ) -> usize {
        let due = bucket(now);
        let mut purged = 0;
        while purged < max {
            let Some(mut first) = self.buckets.first_entry() else {
                break;
            };
            let key = *first.key();
            if key > due {
                break;
            }
            let entries = std::mem::take(first.get_mut());
            first.remove();
            let mut keep = Vec::new();
            let mut refile = Vec::new();
            for entry in entries {
                if purged >= max {
                    keep.push(entry);
                    continue;
                }
                match visit(entry) {
                    Verdict::Purged => purged += 1,
                    Verdict::Refile(at) if bucket(at) <= key => keep.push(entry),
                    Verdict::Refile(at) => refile.push((at, entry)),
                    Verdict::Stale => {}
                }
            }
            for (at, entry) in refile {
                self.insert(at, entry);
            }
            if !keep.is_empty() {
                // Only the current bucket can hold entries not yet due, or
                // the batch is full: stop either way.
                self.buckets.entry(key).or_default().extend(keep);
                break;
            }
        }
        purged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_entries_are_refiled_once() {
        let mut w = ExpiryWheel::default();
        let loc = crate::shard::Loc::NONE;
        w.insert(Millis::from_millis(1_500), loc);
        // At 2 s the record turns out to be due at 10 s: refiled, not purged.
        let n = w.drain_due(Millis::from_millis(2_000), 10, |_| {
            Verdict::Refile(Millis::from_millis(10_000))
        });
        assert_eq!(n, 0);
        assert_eq!(w.buckets.len(), 1);
        assert!(w.buckets.contains_key(&10));
        let n = w.drain_due(Millis::from_millis(10_000), 10, |_| Verdict::Purged);
        assert_eq!(n, 1);
        assert!(w.buckets.is_empty());
    }
}
