//! Where the memory store keeps records: 64 shards, each with its records
//! packed in an [`Arena`], a table from slot numbers to arena addresses,
//! a token-hash index and the tenants its records name.
//!
//! A record is one run of bytes: an 81-byte header (token hash, id, times,
//! version, lengths, state), then the subject, then the attributes' JSON
//! text, then client info if any (`client_bytes`). A typical session
//! (16-byte subject, ~100 bytes of attributes) is under 200 bytes in one
//! place: a validation reads it with one dependent memory access after the
//! index. Times other than the creation time are 32-bit millisecond
//! offsets from it. What most sessions lack (a revocation time, an
//! `auth_time` other than the creation time, a time or idle timeout more
//! than 49 days from the creation time, client info too long for 16-bit
//! lengths) lives in a side table, flagged in the header.
//!
//! Records move (a longer attribute text, a compaction); a [`Loc`] names
//! the *slot*, which stays put, so the other indexes hold 4-byte `Loc`s.

use hashbrown::HashMap;

use crate::arena::{self, Arena};
use crate::line_table::LineTable;
use crate::record_codec::*;
use sessionkit_core::attributes::Attributes;
use sessionkit_core::ids::Subject;
use sessionkit_core::ids::{SessionId, TenantId};
use sessionkit_core::record::{RevokeReason, SessionRecord};
use sessionkit_core::refresh::apply_rotation;
use sessionkit_core::store::{Capacity, Corruption, RefreshRequest, StoreError};
use sessionkit_core::time::Millis;
use sessionkit_core::token::TokenHash;
use sessionkit_core::upstream::Grants;

/// The highest version a record can reach: versions are kept in 32 bits.
pub(crate) const MAX_VERSION: u64 = u32::MAX as u64 - 1;

/// Number of shards (a power of two, at most 64: six bits of a [`Loc`]).
pub(super) const SHARDS: usize = 64;
const SHARD_BITS: u32 = 6;
/// Most slots one shard can address.
const MAX_SLOTS: usize = 1 << (32 - SHARD_BITS);
/// `offsets` entry of a free slot.
const NO_RECORD: u32 = u32::MAX;

/// Where a slot is: shard in the low six bits, index above. Ordered by
/// shard, then index (so sorted `Loc`s visit each shard's slots in turn).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(super) struct Loc(u32);

impl Ord for Loc {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0
            .rotate_right(SHARD_BITS)
            .cmp(&other.0.rotate_right(SHARD_BITS))
    }
}

impl PartialOrd for Loc {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Loc {
    /// "No slot" (for tests of the indexes).
    #[cfg(test)]
    pub(super) const NONE: Loc = Loc(u32::MAX);

    fn new(shard: usize, index: usize) -> Loc {
        Loc(((index as u32) << SHARD_BITS) | shard as u32)
    }

    pub(super) fn shard(self) -> usize {
        (self.0 & ((1 << SHARD_BITS) - 1)) as usize
    }

    fn index(self) -> usize {
        (self.0 >> SHARD_BITS) as usize
    }
}

/// The shard a token hash lives in.
pub(super) fn shard_of(h: &TokenHash) -> usize {
    usize::from(h.as_bytes()[31]) % SHARDS
}

/// Parts of a removed record that callers report.
pub(super) struct Removed {
    pub(super) id: SessionId,
    pub(super) subject: Option<Subject>,
}

/// One shard: its records, the slot table, the token index and the
/// tenants its records name.
#[derive(Default)]
pub(super) struct Shard {
    arena: Arena,
    /// Arena address of each slot's record ([`NO_RECORD`] when free).
    offsets: Vec<u32>,
    free: Vec<u32>,
    len: usize,
    /// Arena addresses, by token hash: a validation goes from the index
    /// straight to the record.
    by_token: LineTable<u32>,
    ext: HashMap<SessionId, Ext>,
    /// No compaction below this much garbage (after one that failed).
    compact_after: usize,
    tenants: Vec<TenantId>,
    tenant_ix: HashMap<TenantId, u16>,
}

impl Shard {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Entries in the token index.
    #[cfg(test)]
    pub(super) fn by_token_len(&self) -> usize {
        self.by_token.len()
    }

    fn addr_of(&self, loc: Loc) -> Option<u32> {
        self.offsets
            .get(loc.index())
            .copied()
            .filter(|&a| a != NO_RECORD)
    }

    fn view(&self, addr: u32) -> Option<Slot<'_>> {
        self.view_in(self.arena.rest(addr)?)
    }

    /// The record at the start of `rest` (the bytes from its address to
    /// its chunk's end).
    fn view_in<'s>(&'s self, rest: &'s [u8]) -> Option<Slot<'s>> {
        let b = rest.get(..record_len(rest)?)?;
        let ext = if b[H_FLAGS] & F_EXT != 0 {
            let mut id = [0u8; 16];
            id.copy_from_slice(&b[H_ID..H_ID + 16]);
            self.ext.get(&SessionId::from_bytes(id))
        } else {
            None
        };
        Some(Slot { b, ext })
    }

    /// The record in a slot (`None` if the slot is free).
    pub(super) fn slot(&self, loc: Loc) -> Option<Slot<'_>> {
        self.view(self.addr_of(loc)?)
    }

    /// The tenant index of `t` in this shard, if any record names it.
    pub(super) fn tenant_ix(&self, t: &TenantId) -> Option<u16> {
        self.tenant_ix.get(t).copied()
    }

    /// The tenant a slot names; `None` if its tenant index names no tenant
    /// (corrupt), so that the record matches no tenant at all.
    pub(super) fn tenant_of(&self, slot: &Slot<'_>) -> Option<TenantId> {
        self.tenants.get(usize::from(slot.tenant_ix())).copied()
    }

    /// The record with this token hash.
    pub(super) fn find_token(&self, h: &TokenHash) -> Option<Slot<'_>> {
        // One chunk lookup per candidate: its bytes are both compared and
        // decoded.
        self.by_token.iter_hash(h.short()).find_map(|a| {
            let rest = self.arena.rest(a)?;
            warm(rest);
            if rest.get(..32) == Some(h.as_bytes()) {
                self.view_in(rest)
            } else {
                None
            }
        })
    }

    fn index_token(&mut self, h: u64, addr: u32) {
        let arena = &self.arena;
        self.by_token.insert(h, addr, |a| token_short_in(arena, a));
    }

    /// Points the token index entry of the record at `from` to `to`.
    fn reindex_token(&mut self, h: u64, from: u32, to: u32) {
        self.by_token.replace(h, from, to);
    }

    /// Stores a record; fails if this shard is full (or names 65,535
    /// tenants already) or the version is past [`MAX_VERSION`].
    pub(super) fn insert(&mut self, shard: usize, rec: &SessionRecord) -> Result<Loc, Capacity> {
        if rec.version > MAX_VERSION {
            return Err(Capacity::Version);
        }
        let tenant = match self.tenant_ix.get(&rec.tenant) {
            Some(ix) => *ix,
            None => {
                let ix = u16::try_from(self.tenants.len()).map_err(|_| Capacity::Tenants)?;
                self.tenants.push(rec.tenant);
                self.tenant_ix.insert(rec.tenant, ix);
                ix
            }
        };
        let client = client_of(rec);
        let len = encoded_len(rec, client.as_deref());
        let addr = self.arena.alloc(len).ok_or(Capacity::Records)?;
        let index = match self.free.pop() {
            Some(i) => i,
            None if self.offsets.len() < MAX_SLOTS => {
                self.offsets.push(NO_RECORD);
                (self.offsets.len() - 1) as u32
            }
            None => {
                self.arena.free(addr, len);
                return Err(Capacity::Records);
            }
        };
        let ext = ext_of(rec, client.is_some());
        let out = self.arena.get_mut(addr, len).ok_or(Capacity::Records)?;
        encode(out, rec, tenant, ext.is_some(), client.as_deref());
        if let Some(ext) = ext {
            self.ext.insert(rec.id, ext);
        }
        self.offsets[index as usize] = addr;
        self.index_token(rec.token_hash.short(), addr);
        self.len += 1;
        self.maybe_promote();
        Ok(Loc::new(shard, index as usize))
    }

    /// Frees a slot, returning what callers report of its record.
    pub(super) fn remove(&mut self, loc: Loc) -> Option<Removed> {
        let index = u32::try_from(loc.index()).ok()?;
        let addr = self.addr_of(loc)?;
        let (removed, h, len) = {
            let s = self.view(addr)?;
            (
                Removed {
                    id: s.id(),
                    // Only reported (the purge's event); a subject that no
                    // longer decodes is reported as none, and the record
                    // goes all the same.
                    subject: s.subject().ok().flatten(),
                },
                s.token_hash().short(),
                s.b.len(),
            )
        };
        self.by_token.remove(h, addr);
        self.ext.remove(&removed.id);
        self.offsets[index as usize] = NO_RECORD;
        self.arena.free(addr, len);
        self.free.push(index);
        self.len -= 1;
        self.maybe_compact();
        Some(removed)
    }

    /// Moves the last-seen time of an active record.
    pub(super) fn set_last_seen(&mut self, loc: Loc, at: Millis) {
        if let Some(b) = self.record_mut(loc) {
            let seen = small(at.as_millis().saturating_sub(i64_at(b, H_CREATED)));
            if seen != IN_EXT {
                b[H_SEEN..H_SEEN + 4].copy_from_slice(&seen.to_le_bytes());
                return;
            }
        }
        // More than 49 days after creation: into the side table.
        if let Some(Ok(mut rec)) = self.slot(loc).map(|s| self.to_record(&s)) {
            rec.last_seen_at = at;
            self.rewrite(loc, &rec);
        }
    }

    fn record_mut(&mut self, loc: Loc) -> Option<&mut [u8]> {
        let addr = self.addr_of(loc)?;
        let len = record_len(self.arena.rest(addr)?)?;
        self.arena.get_mut(addr, len)
    }

    /// Rewrites a record in its slot: in place when it fits, else at a new
    /// address. `false` if it does not fit and the arena has no room (never
    /// for a record that is not longer than before).
    fn rewrite(&mut self, loc: Loc, rec: &SessionRecord) -> bool {
        let Some(old) = self.addr_of(loc) else {
            return false;
        };
        let Some((old_len, tenant)) = self.view(old).map(|s| (s.b.len(), s.tenant_ix())) else {
            return false;
        };
        let client = client_of(rec);
        let len = encoded_len(rec, client.as_deref());
        // A big record that shrinks moves out, so that its chunk goes back
        // (in place only if there is no room elsewhere).
        let leave_big = Arena::is_big(old_len) && !Arena::fits(len, old_len);
        let fits = Arena::fits(old_len, len);
        let moved = if fits && !leave_big {
            None
        } else {
            self.arena.alloc(len)
        };
        let in_place = moved.is_none();
        if in_place && !fits {
            return false;
        }
        let addr = moved.unwrap_or(old);
        let ext = ext_of(rec, client.is_some());
        let Some(out) = self.arena.get_mut(addr, len) else {
            return false;
        };
        encode(out, rec, tenant, ext.is_some(), client.as_deref());
        match ext {
            Some(e) => self.ext.insert(rec.id, e),
            None => self.ext.remove(&rec.id),
        };
        self.offsets[loc.index()] = addr;
        self.reindex_token(rec.token_hash.short(), old, addr);
        if in_place {
            self.arena.shrink(addr, old_len, len);
        } else {
            self.arena.free(old, old_len);
            self.maybe_promote();
        }
        self.maybe_compact();
        true
    }

    /// Replaces the attributes and bumps the version. Fails if the version
    /// is at [`MAX_VERSION`] or the record cannot be read or rewritten;
    /// nothing changes then.
    pub(super) fn set_attributes(&mut self, loc: Loc, a: &Attributes) -> Result<(), StoreError> {
        let Some(slot) = self.slot(loc) else {
            return Err(Capacity::Records.into());
        };
        let mut rec = self.to_record(&slot)?;
        if rec.version >= MAX_VERSION {
            return Err(Capacity::Version.into());
        }
        rec.version += 1;
        rec.attributes = a.clone();
        if self.rewrite(loc, &rec) {
            Ok(())
        } else {
            Err(Capacity::Records.into())
        }
    }

    /// Replaces the record's upstream grants (nothing else changes).
    pub(super) fn set_grants(
        &mut self,
        loc: Loc,
        grants: Option<Box<Grants>>,
    ) -> Result<(), StoreError> {
        let Some(slot) = self.slot(loc) else {
            return Err(Capacity::Records.into());
        };
        let mut rec = self.to_record(&slot)?;
        rec.grants = grants;
        if self.rewrite(loc, &rec) {
            Ok(())
        } else {
            Err(Capacity::Records.into())
        }
    }

    /// Applies a refresh rotation (see [`apply_rotation`]). The record's
    /// length does not change, so it is rewritten in place; `false` if it
    /// does not decode.
    pub(super) fn rotate_refresh(&mut self, loc: Loc, req: &RefreshRequest) -> bool {
        let Some(Ok(mut rec)) = self.slot(loc).map(|s| self.to_record(&s)) else {
            return false;
        };
        apply_rotation(&mut rec, req);
        self.rewrite(loc, &rec)
    }

    /// Turns an active record into a tombstone
    /// ([`SessionRecord::make_tombstone`]). `false` if the record does not
    /// decode (the caller removes it).
    pub(super) fn make_tombstone(&mut self, loc: Loc, reason: RevokeReason, at: Millis) -> bool {
        let Some(Ok(mut rec)) = self.slot(loc).map(|s| self.to_record(&s)) else {
            return false;
        };
        rec.make_tombstone(reason, at);
        // Never longer than before: rewritten in place, cannot fail.
        self.rewrite(loc, &rec)
    }

    /// Copies the live records into a fresh arena once garbage is over
    /// half of it, so each byte freed is copied at most once on average.
    fn maybe_compact(&mut self) {
        let garbage = self.arena.garbage();
        if garbage < (1 << 16) || garbage * 2 < self.arena.used() {
            return;
        }
        if garbage < self.compact_after {
            return;
        }
        // All or nothing: every record copied, or the old arena kept (and
        // no new try until garbage has doubled).
        let mut fresh = Arena::packing();
        let mut moved = self.offsets.clone();
        for (i, addr) in self.offsets.iter().enumerate() {
            if *addr == NO_RECORD {
                continue;
            }
            let copied = record_in(&self.arena, *addr).and_then(|b| {
                let to = fresh.alloc(b.len())?;
                fresh.get_mut(to, b.len())?.copy_from_slice(b);
                Some(to)
            });
            match copied {
                Some(to) => moved[i] = to,
                None => {
                    self.compact_after = garbage * 2;
                    return;
                }
            }
        }
        fresh.stop_packing();
        self.compact_after = 0;
        self.arena = fresh;
        self.offsets = moved;
        // Same records, new addresses: index them again.
        self.by_token.clear();
        for i in 0..self.offsets.len() {
            let addr = self.offsets[i];
            if addr != NO_RECORD {
                self.index_token(token_short_in(&self.arena, addr), addr);
            }
        }
        self.maybe_promote();
    }

    /// Moves the records of full small chunks into huge-page chunks once
    /// the arena is large (see the arena's docs).
    fn maybe_promote(&mut self) {
        while let Some((small, huge)) = self.arena.take_promotion() {
            let mut packed = 0;
            let mut moved_all = true;
            for i in 0..self.offsets.len() {
                let from = self.offsets[i];
                if from == NO_RECORD || !small.contains(&Arena::chunk_of(from)) {
                    continue;
                }
                let Some(len) = self.arena.rest(from).and_then(record_len) else {
                    moved_all = false;
                    continue;
                };
                let Some(to) = Arena::address(huge, packed) else {
                    moved_all = false;
                    continue;
                };
                if !self.arena.copy(from, to, len) {
                    moved_all = false;
                    continue;
                }
                packed += arena::room(len);
                self.offsets[i] = to;
                self.reindex_token(token_short_in(&self.arena, to), from, to);
            }
            // A record that could not move keeps its chunk alive (never
            // expected: the live records of eight small chunks fit one huge).
            if moved_all {
                self.arena.retire(&small);
            }
        }
    }

    /// The record in a slot; a field that does not decode is a
    /// [`Corruption`], never a default.
    pub(super) fn to_record(&self, slot: &Slot<'_>) -> Result<SessionRecord, Corruption> {
        Ok(SessionRecord {
            tenant: self
                .tenant_of(slot)
                .ok_or_else(|| Corruption::field("tenant index", slot.id()))?,
            id: slot.id(),
            token_hash: slot.token_hash(),
            subject: slot.subject()?,
            created_at: slot.created_at(),
            last_seen_at: slot.last_seen_at(),
            idle_timeout: slot.idle_timeout(),
            expires_at: slot.expires_at(),
            auth_time: slot.auth_time(),
            attributes: Attributes::from_trusted_json(slot.attributes_text()?),
            client: slot.client()?,
            version: slot.version(),
            state: slot.state(),
            refresh: slot.refresh()?.map(Box::new),
            assurance: slot.assurance()?,
            grants: slot.grants()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessionkit_core::attributes::AttributeLimits;
    use sessionkit_core::client::ClientInfo;
    use sessionkit_core::record::SessionState;
    use sessionkit_core::time::DurationMs;

    fn rec(i: u8, subject: Option<&str>) -> SessionRecord {
        let mut h = [0u8; 32];
        h[0] = i;
        h[31] = 5;
        let now = Millis::from_millis(1_000_000);
        SessionRecord {
            tenant: TenantId::DEFAULT,
            id: SessionId::generate(),
            token_hash: TokenHash::from_bytes(h),
            subject: subject.map(|s| Subject::new(s).unwrap()),
            created_at: now,
            last_seen_at: now,
            idle_timeout: DurationMs::from_secs(60),
            expires_at: now.saturating_add(DurationMs::from_secs(3600)),
            auth_time: subject.map(|_| now),
            attributes: Attributes::from_value(
                &serde_json::json!({"a": i, "b": "x".repeat(usize::from(i))}),
                &AttributeLimits::default(),
            )
            .unwrap(),
            client: ClientInfo::default(),
            version: 1,
            state: SessionState::Active,
            refresh: None,
            assurance: None,
            grants: None,
        }
    }

    #[test]
    fn records_round_trip_through_their_bytes() {
        let mut s = Shard::default();
        let mut odd = rec(9, Some("alice"));
        odd.auth_time = Some(Millis::from_millis(5));
        odd.assurance = sessionkit_core::Assurance::new(3, vec!["hwk".into()])
            .unwrap()
            .into_stored();
        odd.idle_timeout = DurationMs::from_secs(60 * 86_400);
        odd.expires_at = odd
            .created_at
            .saturating_add(DurationMs::from_secs(90 * 86_400));
        let mut early = rec(3, Some("dave"));
        early.last_seen_at = Millis::from_millis(5);
        odd.client.device = Some("phone".into());
        for r in [rec(1, None), rec(2, Some("bob")), odd, early] {
            let loc = s.insert(5, &r).unwrap();
            let back = s.to_record(&s.slot(loc).unwrap()).unwrap();
            assert_eq!(back, r);
            assert_eq!(s.find_token(&r.token_hash).map(|v| v.id()), Some(r.id));
        }
    }

    #[test]
    fn a_large_shard_moves_its_records_into_huge_chunks() {
        let mut s = Shard::default();
        let mut recs = Vec::new();
        // 108-byte records: 6.5 MB of them, well past the threshold.
        for i in 0..60_000u32 {
            let mut r = rec(7, Some("grace"));
            let mut h = [0u8; 32];
            h[..4].copy_from_slice(&i.to_le_bytes());
            r.token_hash = TokenHash::from_bytes(h);
            r.id = SessionId::generate();
            let loc = s.insert(5, &r).unwrap();
            recs.push((loc, r));
        }
        let huge = s.arena.huge_chunks();
        assert!(huge >= 2, "{huge} huge chunks");
        // Promotion leaves no space behind: the arena holds the records.
        let live: usize = recs
            .iter()
            .map(|(_, r)| arena::room(encoded_len(r, None)))
            .sum();
        assert!(s.arena.used() - s.arena.garbage() >= live);
        assert!(
            s.arena.used() < live + (1 << 20),
            "{} for {live}",
            s.arena.used()
        );
        for (loc, r) in &recs {
            assert_eq!(s.to_record(&s.slot(*loc).unwrap()).unwrap(), *r);
            assert_eq!(s.find_token(&r.token_hash).map(|v| v.id()), Some(r.id));
        }
        // Records in huge chunks change, move and go like any other.
        let (loc, r) = &recs[0];
        let longer = Attributes::from_value(
            &serde_json::json!({"more": "z".repeat(500)}),
            &AttributeLimits::default(),
        )
        .unwrap();
        assert!(s.set_attributes(*loc, &longer).is_ok());
        assert_eq!(
            s.to_record(&s.slot(*loc).unwrap()).unwrap().attributes,
            longer
        );
        assert_eq!(s.remove(*loc).map(|x| x.id), Some(r.id));
        assert!(s.find_token(&r.token_hash).is_none());
    }

    fn sized(n: usize) -> Attributes {
        Attributes::from_value(
            &serde_json::json!({"a": "x".repeat(n)}),
            &AttributeLimits {
                max_bytes: 1 << 20,
                max_depth: 16,
            },
        )
        .unwrap()
    }

    #[test]
    fn big_records_grow_shrink_and_go_without_running_out_of_room() {
        let mut s = Shard::default();
        let mut r = rec(1, Some("heidi"));
        r.attributes = sized(40_001);
        let loc = s.insert(5, &r).unwrap();
        // Within its 4-byte step, then back and forth across steps.
        assert!(s.set_attributes(loc, &sized(40_002)).is_ok());
        for i in 0..5_000 {
            let n = if i % 2 == 0 { 40_010 } else { 40_000 };
            assert!(s.set_attributes(loc, &sized(n)).is_ok(), "update {i}");
        }
        assert_eq!(
            s.to_record(&s.slot(loc).unwrap()).unwrap().attributes,
            sized(40_000)
        );
        // A tombstone is small: the big chunk goes back.
        s.make_tombstone(loc, RevokeReason::Logout, Millis::from_millis(9));
        assert!(s.arena.used() < 1 << 12, "{}", s.arena.used());
        assert!(s.remove(loc).is_some());
    }

    fn huge_attrs(n: usize) -> Attributes {
        Attributes::from_value(
            &serde_json::json!({"a": "x".repeat(n)}),
            &AttributeLimits {
                max_bytes: 1 << 22,
                max_depth: 16,
            },
        )
        .unwrap()
    }

    /// A record over 2 MiB (a chunk of its own), with client info.
    fn over_2_mib_with_client() -> SessionRecord {
        let mut r = rec(1, Some("judy"));
        r.attributes = huge_attrs(2_200_000);
        r.client.ip = Some("10.0.0.1".parse().unwrap());
        r
    }

    #[test]
    fn a_record_over_2_mib_with_client_info_reads_back() {
        let mut s = Shard::default();
        let r = over_2_mib_with_client();
        let loc = s.insert(5, &r).unwrap();
        assert_eq!(
            s.slot(loc).map(|v| s.to_record(&v).unwrap()),
            Some(r.clone())
        );
        assert_eq!(s.find_token(&r.token_hash).map(|v| v.id()), Some(r.id));
        assert_eq!(s.remove(loc).map(|x| x.id), Some(r.id));
    }

    #[test]
    fn compaction_keeps_a_huge_record_and_never_aliases_another() {
        let mut s = Shard::default();
        let r = over_2_mib_with_client();
        let big = s.insert(5, &r).unwrap();
        let mut locs = Vec::new();
        for i in 0..40_000u32 {
            let mut x = rec(2, Some("k"));
            let mut h = [3u8; 32];
            h[..4].copy_from_slice(&i.to_le_bytes());
            x.token_hash = TokenHash::from_bytes(h);
            locs.push(s.insert(5, &x).unwrap());
        }
        for loc in locs.iter().skip(1) {
            s.remove(*loc);
        }
        assert_eq!(
            s.slot(big).map(|v| s.to_record(&v).unwrap()),
            Some(r.clone())
        );
        assert_eq!(s.find_token(&r.token_hash).map(|v| v.id()), Some(r.id));
    }

    #[test]
    fn compaction_near_the_chunk_limit_keeps_every_record() {
        let mut s = Shard::default();
        let mut n = 0u32;
        let mut make = |attrs: usize| {
            n += 1;
            let mut r = rec(1, Some("m"));
            r.attributes = sized(attrs);
            r.id = SessionId::generate();
            let mut h = [9u8; 32];
            h[..4].copy_from_slice(&n.to_le_bytes());
            r.token_hash = TokenHash::from_bytes(h);
            r
        };
        // 110 MiB of small records (in huge chunks), then big records in
        // chunks of their own up to near the 2,048 chunk numbers; then
        // enough removals to compact.
        let small: Vec<_> = (0..110 << 10)
            .map(|_| {
                let r = make(1_000);
                (s.insert(5, &r).unwrap(), r)
            })
            .collect();
        let big: Vec<_> = (0..2048 - s.arena.huge_chunks() - 10)
            .map(|_| {
                let r = make(33_000);
                (s.insert(5, &r).unwrap(), r)
            })
            .collect();
        let mut kept = Vec::new();
        for (i, (loc, r)) in small.into_iter().enumerate() {
            if i % 6 == 0 {
                kept.push((loc, r));
            } else {
                assert_eq!(s.remove(loc).map(|x| x.id), Some(r.id));
            }
        }
        for (loc, r) in kept.iter().chain(&big) {
            assert_eq!(s.slot(*loc).map(|v| v.id()), Some(r.id));
            assert_eq!(s.find_token(&r.token_hash).map(|v| v.id()), Some(r.id));
        }
    }

    #[test]
    fn freed_space_is_reused_by_records_of_the_same_size() {
        let mut s = Shard::default();
        let recs: Vec<_> = (0..100u8).map(|i| rec(i % 4, Some("frank"))).collect();
        let locs: Vec<_> = recs.iter().map(|r| s.insert(5, r).unwrap()).collect();
        let used = s.arena.used();
        for loc in locs {
            s.remove(loc).unwrap();
        }
        for (i, r) in recs.iter().enumerate() {
            let mut r = r.clone();
            r.id = SessionId::generate();
            r.token_hash = TokenHash::from_bytes([i as u8 + 1; 32]);
            s.insert(5, &r).unwrap();
        }
        assert_eq!(s.arena.used(), used);
        assert_eq!(s.arena.garbage(), 0);
    }

    #[test]
    fn a_touch_far_after_creation_moves_to_the_side_table_and_back() {
        let mut s = Shard::default();
        let r = rec(4, Some("erin"));
        let loc = s.insert(5, &r).unwrap();
        for days in [1, 60, 2] {
            let at = r
                .created_at
                .saturating_add(DurationMs::from_secs(days * 86_400));
            s.set_last_seen(loc, at);
            let back = s.to_record(&s.slot(loc).unwrap()).unwrap();
            assert_eq!(back.last_seen_at, at);
            assert_eq!(back.expires_at, r.expires_at);
            assert_eq!(back.attributes, r.attributes);
        }
    }

    #[test]
    fn records_survive_growth_tombstones_and_compaction() {
        let mut s = Shard::default();
        let recs: Vec<_> = (0..200u8).map(|i| rec(i, Some("carol"))).collect();
        let locs: Vec<_> = recs.iter().map(|r| s.insert(5, r).unwrap()).collect();
        let grown = |round: usize| {
            Attributes::from_value(
                &serde_json::json!({"big": "y".repeat(1000 + 64 * round)}),
                &AttributeLimits::default(),
            )
            .unwrap()
        };
        // Grow every other record, longer each round: each move leaves
        // space no later record fits exactly, enough to compact repeatedly.
        let mut compactions = 0;
        for round in 0..20 {
            for loc in locs.iter().step_by(2) {
                let before = s.arena.used();
                assert!(s.set_attributes(*loc, &grown(round)).is_ok());
                compactions += usize::from(s.arena.used() < before);
            }
        }
        assert!(compactions >= 2, "{compactions} compactions");
        let big = grown(19);
        for (i, loc) in locs.iter().enumerate().skip(1).step_by(2) {
            s.make_tombstone(*loc, RevokeReason::Logout, Millis::from_millis(7));
            let r = s.to_record(&s.slot(*loc).unwrap()).unwrap();
            assert_eq!(
                r.state,
                SessionState::Revoked {
                    reason: RevokeReason::Logout,
                    at: Millis::from_millis(7)
                }
            );
            assert_eq!(r.attributes, Attributes::empty());
            assert_eq!(r.id, recs[i].id);
        }
        for (i, loc) in locs.iter().enumerate().step_by(2) {
            let r = s.to_record(&s.slot(*loc).unwrap()).unwrap();
            assert_eq!(r.version, 21);
            assert_eq!(r.attributes, big);
            assert_eq!(r.id, recs[i].id);
            assert_eq!(
                s.find_token(&recs[i].token_hash).map(|v| v.id()),
                Some(recs[i].id)
            );
        }
        assert!(s.arena.garbage() * 2 <= s.arena.used() || s.arena.garbage() < 1 << 16);
        for loc in &locs {
            assert!(s.remove(*loc).is_some());
        }
        assert_eq!(s.len(), 0);
        assert!(s.find_token(&recs[0].token_hash).is_none());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert {
            attrs: usize,
            subject: bool,
            client: u8,
        },
        Remove(usize),
        SetAttributes(usize, usize),
        Tombstone(usize),
        Touch(usize, u64),
    }

    /// Attribute sizes: mostly small, some of a few kilobytes, a few big
    /// enough for a chunk of their own.
    fn attrs_len() -> impl proptest::strategy::Strategy<Value = usize> {
        use proptest::prelude::*;
        prop_oneof![
            8 => 0usize..300,
            3 => 2_000usize..12_000,
            1 => 32_800usize..45_000,
        ]
    }

    /// Either growth (mostly inserts: every eight full chunks are promoted to
    /// huge ones) or churn (as many removals and moves as inserts: the
    /// arena fills with garbage and compacts).
    fn ops() -> impl proptest::strategy::Strategy<Value = Vec<Op>> {
        use proptest::prelude::*;
        let op = |insert: u32, remove: u32, set: u32| {
            prop_oneof![
                insert => (attrs_len(), any::<bool>(), 0u8..4)
                    .prop_map(|(attrs, subject, client)| Op::Insert { attrs, subject, client }),
                remove => any::<usize>().prop_map(Op::Remove),
                set => (any::<usize>(), attrs_len()).prop_map(|(i, n)| Op::SetAttributes(i, n)),
                1 => any::<usize>().prop_map(Op::Tombstone),
                2 => (any::<usize>(), 0u64..100).prop_map(|(i, d)| Op::Touch(i, d)),
            ]
        };
        prop_oneof![
            proptest::collection::vec(op(12, 1, 1), 1..4_000),
            proptest::collection::vec(op(4, 4, 4), 1..3_000),
            // Growth, then mostly removals: compacts an arena that holds
            // huge chunks.
            (
                proptest::collection::vec(op(12, 1, 1), 2_500..4_000),
                proptest::collection::vec(op(1, 8, 2), 2_000..3_500),
            )
                .prop_map(|(mut a, b)| {
                    a.extend(b);
                    a
                }),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(12))]

        /// A shard against a plain list of records: inserts, removals,
        /// moves (growing, shrinking, big records), tombstones and touches
        /// far from creation, through compactions and promotions to huge
        /// chunks; every record reads back as written, by slot and by
        /// token, and freed tokens are gone.
        #[test]
        fn a_shard_keeps_every_record_as_written(ops in ops()) {
            let mut s = Shard::default();
            let mut model: Vec<(Loc, SessionRecord)> = Vec::new();
            let mut gone: Vec<TokenHash> = Vec::new();
            let mut n = 0u32;
            for op in ops {
                match op {
                    Op::Insert { attrs, subject, client } => {
                        n += 1;
                        let mut r = rec(1, subject.then_some("ivan"));
                        r.attributes = sized(attrs);
                        r.client = match client {
                            0 => ClientInfo::default(),
                            1 => ClientInfo {
                                ip: Some(std::net::IpAddr::from([10, 0, 0, (n % 250) as u8])),
                                user_agent: Some("curl/8".repeat(usize::from(attrs % 20 == 0) * 100 + 1)),
                                ..ClientInfo::default()
                            },
                            2 => ClientInfo {
                                device: Some("phone".into()),
                                fingerprint: Some(sessionkit_core::client::Fingerprint([3; 32])),
                                ..ClientInfo::default()
                            },
                            // Too long for the record: kept in the side table.
                            _ => ClientInfo {
                                user_agent: Some("u".repeat(70_000)),
                                ..ClientInfo::default()
                            },
                        };
                        r.id = SessionId::generate();
                        let mut h = [7u8; 32];
                        h[..4].copy_from_slice(&n.to_le_bytes());
                        r.token_hash = TokenHash::from_bytes(h);
                        let loc = s.insert(5, &r).unwrap();
                        model.push((loc, r));
                    }
                    Op::Remove(i) if !model.is_empty() => {
                        let (loc, r) = model.swap_remove(i % model.len());
                        proptest::prop_assert_eq!(s.remove(loc).map(|x| x.id), Some(r.id));
                        gone.push(r.token_hash);
                    }
                    Op::SetAttributes(i, len) if !model.is_empty() => {
                        let k = i % model.len();
                        let (loc, r) = &mut model[k];
                        proptest::prop_assert!(s.set_attributes(*loc, &sized(len)).is_ok());
                        r.attributes = sized(len);
                        r.version += 1;
                    }
                    Op::Tombstone(i) if !model.is_empty() => {
                        let k = i % model.len();
                        let (loc, r) = &mut model[k];
                        let at = Millis::from_millis(2_000_000);
                        s.make_tombstone(*loc, RevokeReason::Admin, at);
                        r.state = SessionState::Revoked { reason: RevokeReason::Admin, at };
                        r.attributes = Attributes::empty();
                        r.client = ClientInfo::default();
                    }
                    Op::Touch(i, days) if !model.is_empty() => {
                        let k = i % model.len();
                        let (loc, r) = &mut model[k];
                        let at = r.created_at.saturating_add(DurationMs::from_secs(days * 86_400));
                        s.set_last_seen(*loc, at);
                        r.last_seen_at = at;
                    }
                    _ => {}
                }
            }
            proptest::prop_assert_eq!(s.len(), model.len());
            for (loc, r) in &model {
                let back = s.slot(*loc).map(|v| s.to_record(&v).unwrap());
                proptest::prop_assert_eq!(back.as_ref(), Some(r));
                proptest::prop_assert_eq!(s.find_token(&r.token_hash).map(|v| v.id()), Some(r.id));
            }
            for h in &gone {
                proptest::prop_assert!(s.find_token(h).is_none());
            }
            // No side-table entry outlives its record.
            for id in s.ext.keys() {
                proptest::prop_assert!(model.iter().any(|(_, r)| r.id == *id));
            }
            proptest::prop_assert!(s.arena.garbage() <= s.arena.used());
        }
    }
}
