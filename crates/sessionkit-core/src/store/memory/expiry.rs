//! The expiry index: a wheel of one-second buckets, each listing the slots
//! whose purge time falls in it. A purge visits only the buckets that are
//! due, so it costs what expires, not what lives.
//!
//! Entries are not removed when a record's purge time moves (a touch, a
//! revoke) or when its slot is freed: the stale entry stays in its old
//! bucket and is recognised and dropped when that bucket comes due, since
//! the slot's current purge time no longer lies in that bucket. Every
//! record always has an entry in the bucket of its current purge time.

use std::collections::BTreeMap;

use super::slab::Loc;
use crate::time::Millis;

const BUCKET_MS: i64 = 1000;

fn bucket(t: Millis) -> i64 {
    t.as_millis().div_euclid(BUCKET_MS)
}

/// What a purge decides about one entry.
pub(super) enum Verdict {
    /// Due: the record was removed.
    Purged,
    /// The record is in this bucket but not due yet.
    Keep,
    /// The entry is stale (slot freed, or its purge time moved).
    Stale,
}

/// See the module docs.
#[derive(Default)]
pub(super) struct ExpiryWheel {
    buckets: BTreeMap<i64, Vec<Loc>>,
}

impl ExpiryWheel {
    /// Notes that the record in `loc` is due at `at`.
    pub(super) fn insert(&mut self, at: Millis, loc: Loc) {
        self.buckets.entry(bucket(at)).or_default().push(loc);
    }

    /// Whether `at` falls in the same bucket as `other`.
    pub(super) fn same_bucket(at: Millis, other: Millis) -> bool {
        bucket(at) == bucket(other)
    }

    /// Visits the entries of every bucket that holds times at or before
    /// `now`, oldest first, until `visit` has purged `max` records. `visit`
    /// gets each entry and the start of its bucket.
    pub(super) fn drain_due(
        &mut self,
        now: Millis,
        max: usize,
        mut visit: impl FnMut(Loc, Millis) -> Verdict,
    ) -> usize {
        let due = bucket(now);
        let mut purged = 0;
        while purged < max {
            let Some(mut entry) = self.buckets.first_entry() else {
                break;
            };
            let key = *entry.key();
            if key > due {
                break;
            }
            let start = Millis::from_millis(key.saturating_mul(BUCKET_MS));
            let locs = std::mem::take(entry.get_mut());
            let mut keep = Vec::new();
            for loc in locs {
                if purged >= max {
                    keep.push(loc);
                    continue;
                }
                match visit(loc, start) {
                    Verdict::Purged => purged += 1,
                    Verdict::Keep => keep.push(loc),
                    Verdict::Stale => {}
                }
            }
            if keep.is_empty() {
                entry.remove();
            } else {
                *entry.get_mut() = keep;
                // Not-yet-due entries remain only in the current bucket,
                // or the batch is full: stop either way.
                break;
            }
        }
        purged
    }
}
