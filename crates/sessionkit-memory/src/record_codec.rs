//! The record codec: how the memory store lays out one session as a run
//! of bytes, and how it reads one in place ([`Slot`]).
//!
//! A record is an 81-byte header (token hash, id, times, version, lengths,
//! state), then the subject, then the attributes' JSON text, then client
//! info if any (`client_bytes`). Times other than the creation time are
//! 32-bit millisecond offsets from it. What most sessions lack (a
//! revocation time, an `auth_time` other than the creation time, a time or
//! idle timeout more than 49 days from the creation time, client info too
//! long for 16-bit lengths, refresh state, a login's assurance, upstream
//! grants) lives in a side entry ([`Ext`]), flagged in the
//! header. Decoding fails closed: a field that does not decode is a
//! [`Corruption`], never a default.

use crate::arena::Arena;
use crate::client_bytes;
use sessionkit_core::assurance::Assurance;
use sessionkit_core::client::ClientInfo;
use sessionkit_core::ids::{SessionId, Subject};
use sessionkit_core::record::{self, Liveness, RevokeReason, SessionRecord, SessionState};
use sessionkit_core::refresh::RefreshState;
use sessionkit_core::store::Corruption;
use sessionkit_core::time::{DurationMs, Millis};
use sessionkit_core::token::TokenHash;
use sessionkit_core::upstream::Grants;

// ---- the record header ----

pub(crate) const H_HASH: usize = 0;
pub(crate) const H_ID: usize = 32;
pub(crate) const H_CREATED: usize = 48;
/// Last seen, ms after creation.
pub(crate) const H_SEEN: usize = 56;
/// Absolute deadline, ms after creation.
pub(crate) const H_EXPIRES: usize = 60;
/// Idle timeout in ms.
pub(crate) const H_IDLE: usize = 64;
pub(crate) const H_VERSION: usize = 68;
pub(crate) const H_ATTRS_LEN: usize = 72;
pub(crate) const H_TENANT: usize = 76;
pub(crate) const H_SUBJ_LEN: usize = 78;
pub(crate) const H_STATE: usize = 79;
pub(crate) const H_FLAGS: usize = 80;
/// Bytes before the subject.
pub(crate) const HEADER: usize = 81;

/// A 32-bit time field whose value is in the [`Ext`] entry instead.
pub(crate) const IN_EXT: u32 = u32::MAX;

pub(crate) const ACTIVE: u8 = 1;
pub(crate) const REVOKED: u8 = 0x10;

/// The record has an [`Ext`] entry.
pub(crate) const F_EXT: u8 = 1;
/// `auth_time` is `None`.
pub(crate) const F_AUTH_NONE: u8 = 2;
/// `auth_time` is the creation time.
pub(crate) const F_AUTH_CREATED: u8 = 4;
/// Client info follows the attributes: a 16-bit length, then
/// `client_bytes`.
pub(crate) const F_CLIENT: u8 = 8;

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

pub(crate) fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(a)
}

/// Length of the header, subject and attributes.
pub(crate) fn base_len(header: &[u8]) -> usize {
    HEADER + usize::from(header[H_SUBJ_LEN]) + u32_at(header, H_ATTRS_LEN) as usize
}

/// Length of the record that `b` starts with (`b` may run on past it),
/// client info included.
pub(crate) fn record_len(b: &[u8]) -> Option<usize> {
    let base = base_len(b.get(..HEADER)?);
    if b[H_FLAGS] & F_CLIENT == 0 {
        return Some(base);
    }
    let n = b.get(base..base.checked_add(2)?)?;
    Some(base + 2 + usize::from(u16::from_le_bytes([n[0], n[1]])))
}

/// How much of a record [`warm`] fetches up front: a typical session's.
pub(crate) const WARM: usize = 256;

/// The record at arena address `addr`: one chunk lookup, then its lengths.
pub(crate) fn record_in(arena: &Arena, addr: u32) -> Option<&[u8]> {
    let rest = arena.rest(addr)?;
    rest.get(..record_len(rest)?)
}

/// Reads one byte in each cache line of a typical record's first
/// [`WARM`] bytes, so that those lines are fetched together with its first
/// line, not one after another as the record is decoded.
pub(crate) fn warm(b: &[u8]) {
    for i in (64..b.len().min(WARM)).step_by(64) {
        std::hint::black_box(b[i]);
    }
}

/// The token-index hash of the record at `addr`.
pub(crate) fn token_short_in(arena: &Arena, addr: u32) -> u64 {
    arena.get(addr, 8).map_or(0, |b| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        u64::from_le_bytes(a)
    })
}

/// `v` as a 32-bit field, or [`IN_EXT`] when it does not fit.
pub(crate) fn small(v: i64) -> u32 {
    u32::try_from(v)
        .ok()
        .filter(|&v| v != IN_EXT)
        .unwrap_or(IN_EXT)
}

/// What most records do without, kept apart. Each field is read only when
/// the header says so.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ext {
    /// Only when it does not fit in the record (see `client_bytes`).
    client: ClientInfo,
    revoked_at: Millis,
    /// When not `None` and not the creation time.
    auth_time: Option<Millis>,
    /// When the header's fields of these are [`IN_EXT`].
    idle_timeout: DurationMs,
    last_seen_at: Millis,
    expires_at: Millis,
    /// Refresh state (pair sessions only).
    refresh: Option<RefreshState>,
    /// A login's level and methods, when it stated more than the default.
    assurance: Option<Box<Assurance>>,
    /// Upstream grants (sealed), when any.
    grants: Option<Box<Grants>>,
}

/// A record as stored, read in place.
#[derive(Clone, Copy)]
pub(crate) struct Slot<'a> {
    /// The whole record: at least [`HEADER`] bytes.
    pub(crate) b: &'a [u8],
    pub(crate) ext: Option<&'a Ext>,
}

impl<'a> Slot<'a> {
    pub(crate) fn is_active(&self) -> bool {
        self.b[H_STATE] == ACTIVE
    }

    pub(crate) fn id(&self) -> SessionId {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b[H_ID..H_ID + 16]);
        SessionId::from_bytes(a)
    }

    pub(crate) fn token_hash_bytes(&self) -> &'a [u8] {
        &self.b[H_HASH..H_HASH + 32]
    }

    pub(crate) fn token_hash(&self) -> TokenHash {
        let mut a = [0u8; 32];
        a.copy_from_slice(self.token_hash_bytes());
        TokenHash::from_bytes(a)
    }

    pub(crate) fn version(&self) -> u64 {
        u64::from(u32_at(self.b, H_VERSION))
    }

    pub(crate) fn created_at(&self) -> Millis {
        Millis::from_millis(i64_at(self.b, H_CREATED))
    }

    /// A time stored as an offset from the creation time.
    pub(crate) fn time_at(&self, at: usize, ext: impl FnOnce(&Ext) -> Millis) -> Millis {
        match u32_at(self.b, at) {
            IN_EXT => self.ext.map_or(Millis::MIN, ext),
            ms => Millis::from_millis(i64_at(self.b, H_CREATED).saturating_add(i64::from(ms))),
        }
    }

    pub(crate) fn last_seen_at(&self) -> Millis {
        self.time_at(H_SEEN, |e| e.last_seen_at)
    }

    pub(crate) fn expires_at(&self) -> Millis {
        self.time_at(H_EXPIRES, |e| e.expires_at)
    }

    pub(crate) fn idle_timeout(&self) -> DurationMs {
        match u32_at(self.b, H_IDLE) {
            IN_EXT => self.ext.map_or(DurationMs::ZERO, |e| e.idle_timeout),
            ms => DurationMs::from_millis(i64::from(ms)),
        }
    }

    pub(crate) fn auth_time(&self) -> Option<Millis> {
        let flags = self.b[H_FLAGS];
        if flags & F_AUTH_NONE != 0 {
            None
        } else if flags & F_AUTH_CREATED != 0 {
            Some(self.created_at())
        } else {
            self.ext.and_then(|e| e.auth_time)
        }
    }

    pub(crate) fn tenant_ix(&self) -> u16 {
        u16::from_le_bytes([self.b[H_TENANT], self.b[H_TENANT + 1]])
    }

    pub(crate) fn subject_bytes(&self) -> Option<&'a [u8]> {
        let n = usize::from(self.b[H_SUBJ_LEN]);
        (n > 0).then(|| &self.b[HEADER..HEADER + n])
    }

    /// The subject; a subject that is not one (bad UTF-8, a control
    /// character) is a [`Corruption`], never a default.
    pub(crate) fn subject(&self) -> Result<Option<Subject>, Corruption> {
        self.subject_bytes()
            .map(|b| Subject::from_bytes(b).map_err(|_| Corruption::field("subject", self.id())))
            .transpose()
    }

    pub(crate) fn attributes_text(&self) -> Result<&'a str, Corruption> {
        let from = HEADER + usize::from(self.b[H_SUBJ_LEN]);
        let to = base_len(self.b);
        self.b
            .get(from..to)
            .and_then(|t| std::str::from_utf8(t).ok())
            .ok_or_else(|| Corruption::field("attributes", self.id()))
    }

    pub(crate) fn client(&self) -> Result<ClientInfo, Corruption> {
        if self.b[H_FLAGS] & F_CLIENT != 0 {
            let from = base_len(self.b) + 2;
            self.b
                .get(from..)
                .and_then(client_bytes::decode)
                .ok_or_else(|| Corruption::field("client info", self.id()))
        } else if self.b[H_FLAGS] & F_EXT != 0 {
            // The header says a side entry holds the rest: without it the
            // client (and its fingerprint) is unknown, not empty.
            self.ext
                .map(|e| e.client.clone())
                .ok_or_else(|| Corruption::field("side entry", self.id()))
        } else {
            Ok(ClientInfo::default())
        }
    }

    /// The refresh state; a record that says it has a side entry but has
    /// none is a [`Corruption`] (its refresh state is unknown, not absent).
    pub(crate) fn refresh(&self) -> Result<Option<RefreshState>, Corruption> {
        if self.b[H_FLAGS] & F_EXT == 0 {
            return Ok(None);
        }
        self.ext
            .map(|e| e.refresh)
            .ok_or_else(|| Corruption::field("side entry", self.id()))
    }

    /// The login's assurance when it stated more than the default; like
    /// [`Slot::refresh`], a missing side entry is a [`Corruption`].
    pub(crate) fn assurance(&self) -> Result<Option<Box<Assurance>>, Corruption> {
        if self.b[H_FLAGS] & F_EXT == 0 {
            return Ok(None);
        }
        self.ext
            .map(|e| e.assurance.clone())
            .ok_or_else(|| Corruption::field("side entry", self.id()))
    }

    /// The upstream grants; like [`Slot::refresh`], a missing side entry
    /// is a [`Corruption`].
    pub(crate) fn grants(&self) -> Result<Option<Box<Grants>>, Corruption> {
        if self.b[H_FLAGS] & F_EXT == 0 {
            return Ok(None);
        }
        self.ext
            .map(|e| e.grants.clone())
            .ok_or_else(|| Corruption::field("side entry", self.id()))
    }

    pub(crate) fn idle_expires_at(&self) -> Millis {
        record::idle_deadline(self.last_seen_at(), self.idle_timeout(), self.expires_at())
    }

    pub(crate) fn purge_at(&self) -> Millis {
        record::purge_time(self.state(), self.idle_expires_at(), self.expires_at())
    }

    /// What the record is at `now` (the rule of [`SessionRecord::liveness`]).
    pub(crate) fn liveness(&self, now: Millis) -> Liveness {
        record::liveness_at(self.state(), self.idle_expires_at(), self.expires_at(), now)
    }

    pub(crate) fn is_live(&self, now: Millis) -> bool {
        self.liveness(now) == Liveness::Live
    }

    /// The state; any byte but [`ACTIVE`] reads as revoked (fail closed: a
    /// damaged state byte can sign a session out, never back in), agreeing
    /// with [`Slot::is_active`].
    pub(crate) fn state(&self) -> SessionState {
        let state = self.b[H_STATE];
        if state == ACTIVE {
            SessionState::Active
        } else {
            SessionState::Revoked {
                reason: RevokeReason::from_code(state & !REVOKED).unwrap_or(RevokeReason::Admin),
                at: self.ext.map_or(self.created_at(), |e| e.revoked_at),
            }
        }
    }

    pub(crate) fn same_subject(&self, tenant_ix: u16, subject: &[u8]) -> bool {
        self.tenant_ix() == tenant_ix && self.subject_bytes() == Some(subject)
    }
}

/// Writes a whole record into `out` (exactly [`encoded_len`] bytes), with
/// `client` (from [`client_bytes::encode`]) after the attributes.
pub(crate) fn encode(
    out: &mut [u8],
    rec: &SessionRecord,
    tenant: u16,
    ext: bool,
    client: Option<&[u8]>,
) {
    let subject = rec
        .subject
        .as_ref()
        .map_or(&[][..], |s| s.as_str().as_bytes());
    let attrs = rec.attributes.as_json().as_bytes();
    out[H_HASH..H_HASH + 32].copy_from_slice(rec.token_hash.as_bytes());
    out[H_ID..H_ID + 16].copy_from_slice(rec.id.as_bytes());
    out[H_CREATED..H_CREATED + 8].copy_from_slice(&rec.created_at.as_millis().to_le_bytes());
    let [seen, expires, idle] = small_fields(rec);
    out[H_SEEN..H_SEEN + 4].copy_from_slice(&seen.to_le_bytes());
    out[H_EXPIRES..H_EXPIRES + 4].copy_from_slice(&expires.to_le_bytes());
    out[H_IDLE..H_IDLE + 4].copy_from_slice(&idle.to_le_bytes());
    let version = u32::try_from(rec.version).unwrap_or(u32::MAX);
    out[H_VERSION..H_VERSION + 4].copy_from_slice(&version.to_le_bytes());
    out[H_ATTRS_LEN..H_ATTRS_LEN + 4].copy_from_slice(&(attrs.len() as u32).to_le_bytes());
    out[H_TENANT..H_TENANT + 2].copy_from_slice(&tenant.to_le_bytes());
    out[H_SUBJ_LEN] = subject.len() as u8;
    out[H_STATE] = match rec.state {
        SessionState::Active => ACTIVE,
        SessionState::Revoked { reason, .. } => REVOKED | reason.code(),
    };
    let auth = match rec.auth_time {
        None => F_AUTH_NONE,
        Some(t) if t == rec.created_at => F_AUTH_CREATED,
        Some(_) => 0,
    };
    let ext = if ext { F_EXT } else { 0 };
    let has_client = if client.is_some() { F_CLIENT } else { 0 };
    out[H_FLAGS] = auth | ext | has_client;
    let base = HEADER + subject.len() + attrs.len();
    out[HEADER..HEADER + subject.len()].copy_from_slice(subject);
    out[HEADER + subject.len()..base].copy_from_slice(attrs);
    if let Some(c) = client {
        // `client_bytes::encode` keeps each field under 64 KiB; the whole
        // fits a u16 (checked by `client_of`).
        out[base..base + 2].copy_from_slice(&(c.len() as u16).to_le_bytes());
        out[base + 2..].copy_from_slice(c);
    }
}

/// The client info to keep in the record, if any (too long for the record
/// goes to the side table).
pub(crate) fn client_of(rec: &SessionRecord) -> Option<Vec<u8>> {
    client_bytes::encode(&rec.client).filter(|b| u16::try_from(b.len()).is_ok())
}

/// Last seen, absolute deadline and idle timeout as 32-bit header fields.
pub(crate) fn small_fields(rec: &SessionRecord) -> [u32; 3] {
    let created = rec.created_at.as_millis();
    [
        small(rec.last_seen_at.as_millis().saturating_sub(created)),
        small(rec.expires_at.as_millis().saturating_sub(created)),
        small(rec.idle_timeout.as_millis()),
    ]
}

pub(crate) fn encoded_len(rec: &SessionRecord, client: Option<&[u8]>) -> usize {
    HEADER
        + rec.subject.as_ref().map_or(0, |s| s.as_str().len())
        + rec.attributes.len()
        + client.map_or(0, |c| 2 + c.len())
}

/// The parts of a record that do not fit its header, if any (client info
/// only when it is not in the record).
pub(crate) fn ext_of(rec: &SessionRecord, client_in_record: bool) -> Option<Ext> {
    let revoked_at = match rec.state {
        SessionState::Revoked { at, .. } => Some(at),
        SessionState::Active => None,
    };
    let auth_time = rec.auth_time.filter(|t| *t != rec.created_at);
    let big = small_fields(rec).contains(&IN_EXT);
    let client_apart = !client_in_record && !rec.client.is_empty();
    let refresh = rec.refresh.is_some();
    let login_or_grants = rec.assurance.is_some() || rec.grants.is_some();
    let needed = client_apart || revoked_at.is_some() || auth_time.is_some() || big;
    (needed || refresh || login_or_grants).then(|| Ext {
        client: if client_apart {
            rec.client.clone()
        } else {
            ClientInfo::default()
        },
        revoked_at: revoked_at.unwrap_or(Millis::MIN),
        auth_time,
        idle_timeout: rec.idle_timeout,
        last_seen_at: rec.last_seen_at,
        expires_at: rec.expires_at,
        refresh: rec.refresh.as_deref().copied(),
        assurance: rec.assurance.clone(),
        grants: rec.grants.clone(),
    })
}
