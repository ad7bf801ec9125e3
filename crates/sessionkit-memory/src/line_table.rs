//! [`LineTable`]: a hash multimap of 4-byte values in which each probe
//! reads one cache line.
//!
//! The memory store's token index (token hash → record address) and id
//! index (id → slot) are looked up with a hash and checked against the
//! record they point to. A SwissTable reads two places per probe — the
//! control bytes, then the bucket — and at a million entries each is a
//! cache miss on its own. Here a bucket is one 64-byte line holding ten
//! 16-bit tags, a 32-bit overflow count and ten values, so a lookup is one miss
//! before the record.
//!
//! - **Placement.** A hash, mixed by a folded multiply so that every bit
//!   counts, picks its home bucket from its high 32 bits
//!   (`(hi * buckets) >> 32`, so any bucket count works) and its 16-bit tag
//!   from the 16 below. Tag 0 marks a free place.
//! - **Overflow.** A full home bucket sends the entry on to the next bucket
//!   with room (linear probing by buckets, wrapping at the end); every
//!   bucket it passes counts it in `over`. A lookup stops at the first
//!   bucket whose `over` is 0, so a miss usually reads one line.
//! - **Growth.** At 7/8 full the table grows by half and every entry is
//!   placed again; values do not carry their hash, so the caller gives it
//!   back (`rehash`) by reading the record. The values are sorted first,
//!   so the records are read in address order.
//! - **Removal** clears the place and takes the entry off the `over` of the
//!   buckets it had passed: no tombstones.
//!
//! Memory: 6.4 bytes a place, so 7.3–11 bytes an entry between growths.

/// Places in one bucket.
const WIDTH: usize = 10;

/// One cache line: ten tags, the overflow count, ten values.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Bucket<V> {
    tags: [u16; WIDTH],
    /// Entries whose home is this bucket or one before it on their probe
    /// sequence, and that sit past it.
    over: u32,
    vals: [V; WIDTH],
}

impl<V: Copy + Default> Default for Bucket<V> {
    fn default() -> Self {
        Bucket {
            tags: [0; WIDTH],
            over: 0,
            vals: [V::default(); WIDTH],
        }
    }
}

/// A hash multimap of small `Copy` values, one cache line per probe (see
/// the module docs). Equality is the caller's: lookups take the hash and a
/// predicate on candidate values.
pub(super) struct LineTable<V> {
    buckets: Vec<Bucket<V>>,
    len: usize,
}

impl<V: Copy + Default + PartialEq> Default for LineTable<V> {
    fn default() -> Self {
        LineTable {
            buckets: Vec::new(),
            len: 0,
        }
    }
}

/// Where a hash goes in a table of `buckets` buckets: its home bucket and
/// its tag (never 0, which marks a free place). The hash is first mixed by
/// a folded multiply (the 128-bit product's halves XORed), so that every
/// bit counts: a caller's hash may vary in a few bits only, as a test's
/// made-up token hashes do.
fn split(hash: u64, buckets: usize) -> (usize, u16) {
    let p = u128::from(hash) * 0x9E37_79B9_7F4A_7C15;
    let m = (p as u64) ^ ((p >> 64) as u64);
    let home = (((m >> 32) * buckets as u64) >> 32) as usize;
    (home, ((m >> 16) as u16).max(1))
}

/// Most entries `buckets` buckets take before the table grows.
fn max_len(buckets: usize) -> usize {
    buckets * WIDTH / 8 * 7
}

impl<V: Copy + Default + Ord> LineTable<V> {
    /// Entries held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of the table itself.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.buckets.len() * std::mem::size_of::<Bucket<V>>()
    }

    fn next(&self, b: usize) -> usize {
        if b + 1 == self.buckets.len() {
            0
        } else {
            b + 1
        }
    }

    /// Reads the line a lookup of `hash` reads first, so that its cache
    /// miss starts now, beside others, rather than when the lookup needs it.
    pub(super) fn warm(&self, hash: u64) {
        if !self.buckets.is_empty() {
            std::hint::black_box(self.buckets[split(hash, self.buckets.len()).0].over);
        }
    }

    /// The first value with this hash for which `eq` holds.
    pub(super) fn find(&self, hash: u64, mut eq: impl FnMut(V) -> bool) -> Option<V> {
        self.iter_hash(hash).find(|&v| eq(v))
    }

    /// Every value whose tag matches this hash's (the caller checks each
    /// against its record).
    pub(super) fn iter_hash(&self, hash: u64) -> impl Iterator<Item = V> + '_ {
        let (_, t) = split(hash, self.buckets.len());
        self.probe(hash).flat_map(move |(_, bucket)| {
            (0..WIDTH)
                .filter(move |&i| bucket.tags[i] == t)
                .map(move |i| bucket.vals[i])
        })
    }

    /// The buckets a lookup of `hash` reads, with their numbers: its home,
    /// then on while the bucket just read has entries past it.
    fn probe(&self, hash: u64) -> impl Iterator<Item = (usize, &Bucket<V>)> + '_ {
        let n = self.buckets.len();
        let mut at = (n > 0).then(|| split(hash, n).0);
        let mut left = n;
        std::iter::from_fn(move || {
            let b = at?;
            let bucket = &self.buckets[b];
            left -= 1;
            at = (bucket.over > 0 && left > 0).then(|| self.next(b));
            Some((b, bucket))
        })
    }

    /// Where the entry `(hash, v)` sits: (bucket, place).
    fn position(&self, hash: u64, v: V) -> Option<(usize, usize)> {
        let (_, t) = split(hash, self.buckets.len());
        self.probe(hash).find_map(|(b, bucket)| {
            (0..WIDTH)
                .find(|&i| bucket.tags[i] == t && bucket.vals[i] == v)
                .map(|i| (b, i))
        })
    }

    /// Replaces the value `from` of an entry with this hash by `to`.
    /// Returns whether there was one.
    pub(super) fn replace(&mut self, hash: u64, from: V, to: V) -> bool {
        match self.position(hash, from) {
            Some((b, i)) => {
                self.buckets[b].vals[i] = to;
                true
            }
            None => false,
        }
    }

    /// Removes the entry `(hash, v)`. Returns whether there was one.
    pub(super) fn remove(&mut self, hash: u64, v: V) -> bool {
        let Some((at, i)) = self.position(hash, v) else {
            return false;
        };
        self.buckets[at].tags[i] = 0;
        self.buckets[at].vals[i] = V::default();
        let mut b = split(hash, self.buckets.len()).0;
        while b != at {
            let over = &mut self.buckets[b].over;
            debug_assert!(*over > 0, "an overflow count below its entries");
            *over = over.saturating_sub(1);
            b = self.next(b);
        }
        self.len -= 1;
        true
    }

    /// Adds an entry (duplicates are the caller's business), growing the
    /// table first if it is full; `rehash` gives the hash of a value
    /// already held.
    pub(super) fn insert(&mut self, hash: u64, v: V, rehash: impl FnMut(V) -> u64) {
        if self.len >= max_len(self.buckets.len()) {
            self.grow(rehash);
        }
        self.place(hash, v);
        self.len += 1;
    }

    /// Puts an entry in the first free place from its home on. The table
    /// has room (it is never over 7/8 full).
    fn place(&mut self, hash: u64, v: V) {
        let (mut b, t) = split(hash, self.buckets.len());
        loop {
            let bucket = &mut self.buckets[b];
            if let Some(i) = bucket.tags.iter().position(|&x| x == 0) {
                bucket.tags[i] = t;
                bucket.vals[i] = v;
                return;
            }
            bucket.over += 1;
            b = self.next(b);
        }
    }

    /// Grows by half and places every entry again. The values are sorted
    /// first, so that `rehash` reads their records in address order (a
    /// stream through memory instead of one cache miss per entry).
    fn grow(&mut self, rehash: impl FnMut(V) -> u64) {
        let mut vals: Vec<V> = self.iter().collect();
        vals.sort_unstable();
        let hashes: Vec<u64> = vals.iter().copied().map(rehash).collect();
        let n = self.buckets.len();
        self.buckets = vec![Bucket::default(); n + n / 2 + 1];
        for (h, v) in hashes.into_iter().zip(vals) {
            self.place(h, v);
        }
    }

    /// Every value, in table order.
    pub(super) fn iter(&self) -> impl Iterator<Item = V> + '_ {
        self.buckets.iter().flat_map(|bucket| {
            (0..WIDTH)
                .filter(|&i| bucket.tags[i] != 0)
                .map(|i| bucket.vals[i])
        })
    }

    /// Removes every entry, keeping the memory.
    pub(super) fn clear(&mut self) {
        self.buckets.fill(Bucket::default());
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tag(hash: u64) -> u16 {
        split(hash, 1).1
    }

    fn home(hash: u64, buckets: usize) -> usize {
        split(hash, buckets).0
    }

    impl<V: Copy + Default + Ord> LineTable<V> {
        /// Checks every bucket's `over` against the entries that pass it.
        fn check(&self, hash_of: impl Fn(V) -> u64) {
            let n = self.buckets.len();
            let mut over = vec![0u32; n];
            let mut len = 0;
            for (at, bucket) in self.buckets.iter().enumerate() {
                for i in 0..WIDTH {
                    if bucket.tags[i] == 0 {
                        continue;
                    }
                    len += 1;
                    let h = hash_of(bucket.vals[i]);
                    assert_eq!(bucket.tags[i], tag(h));
                    let mut b = home(h, n);
                    while b != at {
                        over[b] += 1;
                        b = self.next(b);
                    }
                }
            }
            assert_eq!(len, self.len);
            assert!(len <= max_len(n));
            for (b, bucket) in self.buckets.iter().enumerate() {
                assert_eq!(bucket.over, over[b], "bucket {b}");
            }
        }
    }

    #[test]
    fn a_bucket_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Bucket<u32>>(), 64);
        assert_eq!(std::mem::align_of::<Bucket<u32>>(), 64);
    }

    /// A value's hash comes from its low 16 bits, so a replacement that
    /// keeps them keeps the hash; the multimap holds up to 16 values per
    /// hash, and tags and homes collide.
    fn hash_of(v: u32) -> u64 {
        u64::from(v & 0x3ff)
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32),
        Remove(u32),
        Replace(u32, u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        let v = 0u32..16_000;
        prop_oneof![
            4 => v.clone().prop_map(Op::Insert),
            2 => v.clone().prop_map(Op::Remove),
            1 => (v.clone(), v).prop_map(|(a, b)| Op::Replace(a, b)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Against a list of entries: every entry is found from its hash,
        /// none that was removed is, and the overflow counts stay exact
        /// through growth, removal and replacement.
        #[test]
        fn agrees_with_a_list(ops in proptest::collection::vec(op(), 1..1500)) {
            let mut t: LineTable<u32> = LineTable::default();
            let mut model: Vec<u32> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(v) => {
                        t.insert(hash_of(v), v, hash_of);
                        model.push(v);
                    }
                    Op::Remove(v) => {
                        let had = model.iter().position(|&x| x == v);
                        prop_assert_eq!(t.remove(hash_of(v), v), had.is_some());
                        if let Some(i) = had {
                            model.swap_remove(i);
                        }
                    }
                    // Same low bits, so the same hash: a move in place.
                    Op::Replace(a, b) => {
                        let b = (a & 0xffff) | (b << 16);
                        let had = model.iter().position(|&x| x == a);
                        prop_assert_eq!(t.replace(hash_of(a), a, b), had.is_some());
                        if let Some(i) = had {
                            model[i] = b;
                        }
                    }
                }
            }
            t.check(hash_of);
            for &v in &model {
                let mut want: Vec<u32> = model.iter().copied().filter(|&x| hash_of(x) == hash_of(v)).collect();
                // Another hash may share the tag: the caller's check.
                let mut got: Vec<u32> = t.iter_hash(hash_of(v)).filter(|&x| hash_of(x) == hash_of(v)).collect();
                want.sort_unstable();
                got.sort_unstable();
                prop_assert_eq!(got, want);
                prop_assert_eq!(t.find(hash_of(v), |x| x == v), Some(v));
            }
            let mut all: Vec<u32> = t.iter().collect();
            all.sort_unstable();
            model.sort_unstable();
            prop_assert_eq!(all, model);
            t.clear();
            prop_assert_eq!(t.len(), 0);
            prop_assert_eq!(t.find(hash_of(1), |_| true), None);
        }
    }

    /// The same value held under two hashes that share a tag (the API
    /// allows it: duplicates are the caller's business): removing it under
    /// one hash may clear the *other* entry's place, but the two are
    /// indistinguishable and the `over` counts then describe the one left
    /// as the other hash's entry, so it stays findable.
    #[test]
    fn one_value_under_two_hashes_with_one_tag_stays_findable() {
        let n = 8;
        let mut t: LineTable<u32> = LineTable {
            buckets: vec![Bucket::default(); n],
            len: 0,
        };
        // h2's home is b, h1's is b + 1, same tag.
        let (h1, h2) = (0u64..)
            .flat_map(|a| (0u64..4096).map(move |b| (a, b)))
            .find(|&(a, b)| tag(a) == tag(b) && home(b, n) + 1 == home(a, n) && home(a, n) < n)
            .expect("two such hashes");
        for v in 100..100 + WIDTH as u32 {
            t.insert(h2, v, |_| unreachable!());
        }
        t.insert(h1, 5, |_| unreachable!());
        t.insert(h2, 5, |_| unreachable!());
        assert!(t.remove(h2, 5));
        t.check(|v| if v == 5 { h1 } else { h2 });
        assert_eq!(t.find(h1, |v| v == 5), Some(5));
    }

    #[test]
    fn most_entries_sit_in_their_home_line_and_memory_stays_under_eleven_bytes_an_entry() {
        let mut t: LineTable<u32> = LineTable::default();
        let h = |v: u32| u64::from(v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // Up to just before a growth, where the table is fullest (7/8).
        let mut v = 0;
        while t.len() < 90_000 || t.len() < max_len(t.buckets.len()) {
            t.insert(h(v), v, h);
            v += 1;
        }
        t.check(h);
        let n = t.buckets.len();
        assert!(t.bytes() / t.len() <= 8, "{} B", t.bytes() / t.len());
        let away = t
            .buckets
            .iter()
            .enumerate()
            .flat_map(|(b, bucket)| (0..WIDTH).map(move |i| (b, bucket.tags[i], bucket.vals[i])))
            .filter(|&(b, tag, v)| tag != 0 && home(h(v), n) != b)
            .count();
        assert!(away * 10 < t.len(), "{away} of {} away from home", t.len());
        let passed = t.buckets.iter().filter(|b| b.over > 0).count();
        assert!(passed * 2 < n, "{passed} of {n} buckets passed");
    }
}
