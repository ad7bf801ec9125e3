//! Where the memory store keeps records: shards of fixed-size slots, each
//! shard with its own token-hash index and tenant table.
//!
//! A slot is 128 bytes; the subject and the attributes share one heap
//! allocation; client info and tombstone details are boxed apart because
//! most sessions do without. Indexes hold 4-byte [`Loc`]s, not copies of
//! keys: the key is read from the slot when an entry is compared.

use hashbrown::HashMap;

use hashbrown::HashTable;

use crate::attributes::Attributes;
use crate::client::ClientInfo;
use crate::ids::{SessionId, Subject, TenantId};
use crate::record::{self, Liveness, RevokeReason, SessionRecord, SessionState};
use crate::time::{DurationMs, Millis};
use crate::token::TokenHash;

const _: () = assert!(std::mem::size_of::<Slot>() == 128);

/// Number of shards (a power of two, at most 64: six bits of a [`Loc`]).
pub(super) const SHARDS: usize = 64;
const SHARD_BITS: u32 = 6;
/// Slots per allocation chunk: the slab grows in steps of this many.
const CHUNK: usize = 1024;
/// Most slots one shard can address.
const MAX_SLOTS: usize = 1 << (32 - SHARD_BITS);

/// Where a slot is: shard in the low six bits, index above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Loc(u32);

impl Loc {
    /// "No slot" (the end of a subject list).
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

    pub(super) fn is_none(self) -> bool {
        self == Loc::NONE
    }
}

/// The shard a token hash lives in.
pub(super) fn shard_of(h: &TokenHash) -> usize {
    usize::from(h.as_bytes()[31]) % SHARDS
}

/// Hash of an id for the id index: the random tail of a UUID v7.
pub(super) fn id_hash(id: &SessionId) -> u64 {
    let b = id.as_bytes();
    let mut t = [0u8; 8];
    t.copy_from_slice(&b[8..]);
    u64::from_le_bytes(t)
}

const FREE: u8 = 0;
const ACTIVE: u8 = 1;
const REVOKED: u8 = 0x10;

/// Rarely present parts of a record.
#[derive(Debug, Clone, Default)]
struct Ext {
    client: ClientInfo,
    revoked_at: Millis,
}

/// One record, compactly: 128 bytes, aligned so that a slot is one
/// 128-byte block (the CPU fetches both of its cache lines together).
#[derive(Debug)]
#[repr(align(128))]
pub(super) struct Slot {
    token_hash: TokenHash,
    id: SessionId,
    created_at: Millis,
    pub(super) last_seen_at: Millis,
    expires_at: Millis,
    idle_timeout: DurationMs,
    /// `Millis::MIN` when anonymous.
    auth_time: Millis,
    /// The subject's bytes, then the attributes' JSON text.
    data: Box<[u8]>,
    ext: Option<Box<Ext>>,
    /// Previous and next active session of the same subject.
    pub(super) subj_prev: Loc,
    pub(super) subj_next: Loc,
    version: u32,
    tenant: u16,
    subj_len: u8,
    state: u8,
}

impl Slot {
    fn empty() -> Slot {
        Slot {
            token_hash: TokenHash::from_bytes([0; 32]),
            id: SessionId::from_bytes([0; 16]),
            created_at: Millis::MIN,
            last_seen_at: Millis::MIN,
            expires_at: Millis::MIN,
            idle_timeout: DurationMs::ZERO,
            auth_time: Millis::MIN,
            data: Box::new([]),
            ext: None,
            subj_prev: Loc::NONE,
            subj_next: Loc::NONE,
            version: 0,
            tenant: 0,
            subj_len: 0,
            state: FREE,
        }
    }

    pub(super) fn is_free(&self) -> bool {
        self.state == FREE
    }

    pub(super) fn is_active(&self) -> bool {
        self.state == ACTIVE
    }

    pub(super) fn id(&self) -> SessionId {
        self.id
    }

    pub(super) fn token_hash(&self) -> &TokenHash {
        &self.token_hash
    }

    pub(super) fn version(&self) -> u64 {
        u64::from(self.version)
    }

    pub(super) fn subject_bytes(&self) -> Option<&[u8]> {
        (self.subj_len > 0).then(|| &self.data[..usize::from(self.subj_len)])
    }

    pub(super) fn subject(&self) -> Option<Subject> {
        self.subject_bytes()
            .map(|b| Subject::from_checked(std::str::from_utf8(b).unwrap_or_default()))
    }

    fn attributes_text(&self) -> &str {
        std::str::from_utf8(&self.data[usize::from(self.subj_len)..]).unwrap_or("{}")
    }

    pub(super) fn idle_expires_at(&self) -> Millis {
        record::idle_deadline(self.last_seen_at, self.idle_timeout, self.expires_at)
    }

    pub(super) fn purge_at(&self) -> Millis {
        record::purge_time(self.state(), self.idle_expires_at(), self.expires_at)
    }

    /// What the record is at `now` (the rule of [`SessionRecord::liveness`]).
    pub(super) fn liveness(&self, now: Millis) -> Liveness {
        record::liveness_at(self.state(), self.idle_expires_at(), self.expires_at, now)
    }

    pub(super) fn is_live(&self, now: Millis) -> bool {
        self.liveness(now) == Liveness::Live
    }

    /// Replaces the attributes and bumps the version. `false` if the
    /// version cannot grow any more (after 4 billion changes).
    pub(super) fn set_attributes(&mut self, a: &Attributes) -> bool {
        let Some(v) = self.version.checked_add(1) else {
            return false;
        };
        let mut data = Vec::with_capacity(usize::from(self.subj_len) + a.len());
        data.extend_from_slice(&self.data[..usize::from(self.subj_len)]);
        data.extend_from_slice(a.as_json().as_bytes());
        self.data = data.into_boxed_slice();
        self.version = v;
        true
    }

    /// Turns an active record into a tombstone: no attributes, no client.
    pub(super) fn make_tombstone(&mut self, reason: RevokeReason, at: Millis) {
        self.state = REVOKED | reason.code();
        let mut data = self.data[..usize::from(self.subj_len)].to_vec();
        data.extend_from_slice(b"{}");
        self.data = data.into_boxed_slice();
        self.ext = Some(Box::new(Ext {
            client: ClientInfo::default(),
            revoked_at: at,
        }));
    }

    pub(super) fn state(&self) -> SessionState {
        if self.state & REVOKED != 0 {
            SessionState::Revoked {
                reason: RevokeReason::from_code(self.state & !REVOKED)
                    .unwrap_or(RevokeReason::Admin),
                at: self.ext.as_ref().map_or(self.created_at, |e| e.revoked_at),
            }
        } else {
            SessionState::Active
        }
    }

    pub(super) fn same_subject(&self, tenant_ix: u16, subject: &[u8]) -> bool {
        self.tenant == tenant_ix && self.subject_bytes() == Some(subject)
    }
}

fn slot_at(chunks: &[Vec<Slot>], i: u32) -> Option<&Slot> {
    let i = i as usize;
    chunks.get(i / CHUNK).and_then(|c| c.get(i % CHUNK))
}

/// One shard: a slab of slots, its free list, its token index and the
/// tenants its slots name.
#[derive(Default)]
pub(super) struct Shard {
    chunks: Vec<Vec<Slot>>,
    free: Vec<u32>,
    len: usize,
    by_token: HashTable<u32>,
    tenants: Vec<TenantId>,
    tenant_ix: HashMap<TenantId, u16>,
}

impl Shard {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn slot(&self, loc: Loc) -> Option<&Slot> {
        let i = loc.index();
        self.chunks.get(i / CHUNK).and_then(|c| c.get(i % CHUNK))
    }

    pub(super) fn slot_mut(&mut self, loc: Loc) -> Option<&mut Slot> {
        let i = loc.index();
        self.chunks
            .get_mut(i / CHUNK)
            .and_then(|c| c.get_mut(i % CHUNK))
    }

    /// The tenant index of `t` in this shard, if any slot names it.
    pub(super) fn tenant_ix(&self, t: &TenantId) -> Option<u16> {
        self.tenant_ix.get(t).copied()
    }

    pub(super) fn tenant_of(&self, slot: &Slot) -> TenantId {
        self.tenants
            .get(usize::from(slot.tenant))
            .copied()
            .unwrap_or_default()
    }

    /// The slot holding this token hash.
    pub(super) fn find_token(&self, shard: usize, h: &TokenHash) -> Option<Loc> {
        let chunks = &self.chunks;
        self.by_token
            .find(h.short(), |&i| {
                slot_at(chunks, i).is_some_and(|s| s.token_hash == *h)
            })
            .map(|&i| Loc::new(shard, i as usize))
    }

    /// Stores a record; `None` if this shard is full (or has 65,535
    /// tenants already).
    pub(super) fn insert(&mut self, shard: usize, rec: SessionRecord) -> Option<Loc> {
        let tenant = match self.tenant_ix.get(&rec.tenant) {
            Some(ix) => *ix,
            None => {
                let ix = u16::try_from(self.tenants.len()).ok()?;
                self.tenants.push(rec.tenant);
                self.tenant_ix.insert(rec.tenant, ix);
                ix
            }
        };
        let index = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
                    if self.chunks.len() * CHUNK >= MAX_SLOTS {
                        return None;
                    }
                    self.chunks.push(Vec::with_capacity(CHUNK));
                }
                let ci = self.chunks.len() - 1;
                let chunk = self.chunks.last_mut()?;
                chunk.push(Slot::empty());
                ci * CHUNK + chunk.len() - 1
            }
        };
        let loc = Loc::new(shard, index);
        let subject = rec
            .subject
            .as_ref()
            .map_or(&[][..], |s| s.as_str().as_bytes());
        let mut data = Vec::with_capacity(subject.len() + rec.attributes.len());
        data.extend_from_slice(subject);
        data.extend_from_slice(rec.attributes.as_json().as_bytes());
        let revoked_at = match rec.state {
            SessionState::Revoked { at, .. } => Some(at),
            SessionState::Active => None,
        };
        let ext = (!rec.client.is_empty() || revoked_at.is_some()).then(|| {
            Box::new(Ext {
                client: rec.client,
                revoked_at: revoked_at.unwrap_or(Millis::MIN),
            })
        });
        let slot = Slot {
            token_hash: rec.token_hash,
            id: rec.id,
            created_at: rec.created_at,
            last_seen_at: rec.last_seen_at,
            expires_at: rec.expires_at,
            idle_timeout: rec.idle_timeout,
            auth_time: rec.auth_time.unwrap_or(Millis::MIN),
            data: data.into_boxed_slice(),
            ext,
            subj_prev: Loc::NONE,
            subj_next: Loc::NONE,
            version: u32::try_from(rec.version).unwrap_or(u32::MAX),
            tenant,
            subj_len: u8::try_from(subject.len()).unwrap_or(u8::MAX),
            state: match rec.state {
                SessionState::Active => ACTIVE,
                SessionState::Revoked { reason, .. } => REVOKED | reason.code(),
            },
        };
        let h = slot.token_hash.short();
        if let Some(s) = self.slot_mut(loc) {
            *s = slot;
        }
        let chunks = &self.chunks;
        self.by_token.insert_unique(h, index as u32, |&i| {
            slot_at(chunks, i).map_or(0, |s| s.token_hash.short())
        });
        self.len += 1;
        Some(loc)
    }

    /// Frees a slot, returning its record's parts that callers need.
    pub(super) fn remove(&mut self, loc: Loc) -> Option<Slot> {
        let index = loc.index();
        let h = {
            let s = self.slot(loc)?;
            if s.is_free() {
                return None;
            }
            s.token_hash.short()
        };
        if let Ok(entry) = self.by_token.find_entry(h, |&i| i as usize == index) {
            entry.remove();
        }
        let slot = std::mem::replace(self.slot_mut(loc)?, Slot::empty());
        self.free.push(index as u32);
        self.len -= 1;
        Some(slot)
    }

    /// The record in a slot.
    pub(super) fn to_record(&self, slot: &Slot) -> SessionRecord {
        SessionRecord {
            tenant: self.tenant_of(slot),
            id: slot.id,
            token_hash: slot.token_hash,
            subject: slot.subject(),
            created_at: slot.created_at,
            last_seen_at: slot.last_seen_at,
            idle_timeout: slot.idle_timeout,
            expires_at: slot.expires_at,
            auth_time: (slot.auth_time != Millis::MIN).then_some(slot.auth_time),
            attributes: Attributes::from_checked(slot.attributes_text()),
            client: slot
                .ext
                .as_ref()
                .map(|e| e.client.clone())
                .unwrap_or_default(),
            version: u64::from(slot.version),
            state: slot.state(),
        }
    }
}
