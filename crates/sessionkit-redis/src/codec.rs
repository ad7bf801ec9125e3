//! How a record is kept: one field of the records hash per record (`<id>`),
//! whose value is a MessagePack array of [`FIELDS`] — each a string, or
//! `false` when absent — so the scripts read and rewrite it with Redis's
//! own `cmsgpack`. Numbers are decimal text, hashes and subjects lowercase
//! hex, the attributes their JSON text and the client info (with the login's
//! assurance) a `sessionkit_core::side_blob`. Anything that does not decode is
//! [`Corruption`]: never a default.

use sessionkit_core::side_blob;
use sessionkit_core::store::Corruption;
use sessionkit_core::{
    Attributes, ClientInfo, DurationMs, Millis, RefreshState, RevokeReason, SessionId,
    SessionRecord, SessionState, Subject, TenantId, TokenHash,
};

/// The record format this build writes (element `v`). Format 1 (one hash
/// field per record field) is not read.
pub(crate) const FORMAT: &str = "2";

/// The record fields, in the order of the stored array (the scripts index
/// it from 1).
pub(crate) const FIELDS: [&str; 19] = [
    "v", "ten", "tok", "sub", "st", "rat", "ver", "cat", "ls", "idle", "exp", "auth", "a", "c",
    "rc", "rp", "rg", "ri", "rgu",
];

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex (sorts as the bytes do).
pub(crate) fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(char::from(HEX[usize::from(x >> 4)]));
        s.push(char::from(HEX[usize::from(x & 15)]));
    }
    s
}

fn unhex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let d = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    s.chunks(2)
        .map(|p| Some(d(p[0])? << 4 | d(p[1])?))
        .collect()
}

/// The key text of an id.
pub(crate) fn id_key(id: SessionId) -> String {
    hex(id.as_bytes())
}

/// The key text of a token hash.
pub(crate) fn hash_key(h: &TokenHash) -> String {
    hex(h.as_bytes())
}

/// The key text of a subject.
pub(crate) fn subject_key(s: &Subject) -> String {
    hex(s.as_str().as_bytes())
}

/// An id from its key text.
pub(crate) fn parse_id(b: &[u8]) -> Option<SessionId> {
    let v: [u8; 16] = unhex(b)?.try_into().ok()?;
    Some(SessionId::from_bytes(v))
}

/// A token hash from its key text.
pub(crate) fn parse_hash(b: &[u8]) -> Option<TokenHash> {
    let v: [u8; 32] = unhex(b)?.try_into().ok()?;
    Some(TokenHash::from_bytes(v))
}

/// A subject from its key text.
pub(crate) fn parse_subject(b: &[u8]) -> Option<Subject> {
    Subject::from_bytes(&unhex(b)?).ok()
}

fn parse_i64(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?;
    // One spelling per number: no sign but '-', no leading '+'.
    if s.starts_with('+') {
        return None;
    }
    s.parse().ok()
}

/// The stored array of a new record (format [`FORMAT`]).
pub(crate) fn encode(rec: &SessionRecord) -> Vec<u8> {
    let mut vals: Vec<Option<Vec<u8>>> = vec![None; FIELDS.len()];
    let num = |x: i64| Some(x.to_string().into_bytes());
    vals[0] = Some(FORMAT.as_bytes().to_vec());
    vals[1] = Some(rec.tenant.as_str().as_bytes().to_vec());
    vals[2] = Some(hash_key(&rec.token_hash).into_bytes());
    vals[3] = rec.subject.as_ref().map(|s| subject_key(s).into_bytes());
    match rec.state {
        SessionState::Active => vals[4] = Some(b"0".to_vec()),
        SessionState::Revoked { reason, at } => {
            vals[4] = Some(reason.code().to_string().into_bytes());
            vals[5] = num(at.as_millis());
        }
    }
    vals[6] = Some(rec.version.to_string().into_bytes());
    vals[7] = num(rec.created_at.as_millis());
    vals[8] = num(rec.last_seen_at.as_millis());
    vals[9] = num(rec.idle_timeout.as_millis());
    vals[10] = num(rec.expires_at.as_millis());
    vals[11] = rec.auth_time.and_then(|a| num(a.as_millis()));
    if rec.state == SessionState::Active {
        vals[12] = Some(rec.attributes.as_json().as_bytes().to_vec());
        vals[13] = Some(side_blob::encode(rec.side()));
        if let Some(r) = rec.refresh.as_deref() {
            vals[14] = Some(hash_key(&r.current).into_bytes());
            vals[15] = r.previous.as_ref().map(|p| hash_key(p).into_bytes());
            vals[16] = Some(r.generation.to_string().into_bytes());
            vals[17] = num(r.issued_at.as_millis());
            vals[18] = num(r.grace_until.as_millis());
        }
    }
    // Every element a str of raw bytes (cmsgpack writes every Lua string
    // as a MessagePack str, so the store uses only that type) or `false`.
    // Writing into a Vec does not fail.
    let mut out = Vec::with_capacity(256);
    let _ = rmp::encode::write_array_len(&mut out, FIELDS.len() as u32);
    for v in vals {
        match v {
            Some(b) => {
                let _ = rmp::encode::write_str_len(&mut out, u32::try_from(b.len()).unwrap_or(0));
                out.extend_from_slice(&b);
            }
            None => {
                let _ = rmp::encode::write_bool(&mut out, false);
            }
        }
    }
    out
}

/// Decodes a stored array (see [`encode`]) kept under `id`.
pub(crate) fn decode_blob(id: SessionId, blob: &[u8]) -> Result<SessionRecord, Corruption> {
    let bad = || Corruption::field("record", id);
    let mut rd = blob;
    let v = rmpv::decode::read_value(&mut rd).map_err(|_| bad())?;
    if !rd.is_empty() {
        return Err(bad());
    }
    let rmpv::Value::Array(items) = v else {
        return Err(bad());
    };
    let vals = items
        .into_iter()
        .map(|x| match x {
            rmpv::Value::String(s) => Ok(Some(s.into_bytes())),
            rmpv::Value::Binary(b) => Ok(Some(b)),
            rmpv::Value::Boolean(false) | rmpv::Value::Nil => Ok(None),
            _ => Err(bad()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    decode(id, &vals)
}

/// Decodes a record from the values of [`FIELDS`] (in order; `None` for a
/// missing field), stored under `id`.
fn decode(id: SessionId, v: &[Option<Vec<u8>>]) -> Result<SessionRecord, Corruption> {
    let bad = |what: &'static str| Corruption::field(what, id);
    if v.len() != FIELDS.len() {
        return Err(bad("record"));
    }
    let f = |i: usize| v[i].as_deref();
    if f(0) != Some(FORMAT.as_bytes()) {
        return Err(bad("record format"));
    }
    let req = |i: usize, what: &'static str| f(i).ok_or_else(|| bad(what));
    let int = |i: usize, what: &'static str| parse_i64(req(i, what)?).ok_or_else(|| bad(what));
    let tenant = std::str::from_utf8(req(1, "tenant")?)
        .ok()
        .and_then(|t| TenantId::new(t).ok())
        .ok_or_else(|| bad("tenant"))?;
    let token_hash = parse_hash(req(2, "token hash")?).ok_or_else(|| bad("token hash"))?;
    let subject = match f(3) {
        None => None,
        Some(b) => Some(parse_subject(b).ok_or_else(|| bad("subject"))?),
    };
    let st = int(4, "state")?;
    let state = if st == 0 {
        SessionState::Active
    } else {
        let reason = u8::try_from(st)
            .ok()
            .and_then(RevokeReason::from_code)
            .ok_or_else(|| bad("state"))?;
        SessionState::Revoked {
            reason,
            at: Millis::from_millis(int(5, "revoked at")?),
        }
    };
    let version = u64::try_from(int(6, "version")?)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| bad("version"))?;
    let created_at = Millis::from_millis(int(7, "created at")?);
    let last_seen_at = Millis::from_millis(int(8, "last seen at")?);
    let idle_timeout = DurationMs::from_millis(int(9, "idle timeout")?);
    let expires_at = Millis::from_millis(int(10, "expires at")?);
    let auth_time = match f(11) {
        None => None,
        Some(b) => Some(Millis::from_millis(
            parse_i64(b).ok_or_else(|| bad("auth time"))?,
        )),
    };
    let active = state == SessionState::Active;
    let (attributes, client, refresh, assurance, grants) = if active {
        let text = std::str::from_utf8(req(12, "attributes")?).map_err(|_| bad("attributes"))?;
        let attributes = Attributes::from_stored(text).map_err(|_| bad("attributes"))?;
        let (client, assurance, grants) =
            side_blob::decode(req(13, "client")?).ok_or_else(|| bad("client"))?;
        let refresh = match f(14) {
            None => None,
            Some(cur) => Some(Box::new(RefreshState {
                current: parse_hash(cur).ok_or_else(|| bad("refresh"))?,
                previous: match f(15) {
                    None => None,
                    Some(p) => Some(parse_hash(p).ok_or_else(|| bad("refresh"))?),
                },
                generation: u32::try_from(int(16, "refresh")?).map_err(|_| bad("refresh"))?,
                issued_at: Millis::from_millis(int(17, "refresh")?),
                grace_until: Millis::from_millis(int(18, "refresh")?),
            })),
        };
        (attributes, client, refresh, assurance, grants)
    } else {
        // A tombstone keeps no attributes, client info or refresh state.
        if (12..FIELDS.len()).any(|i| f(i).is_some()) {
            return Err(bad("tombstone"));
        }
        (Attributes::empty(), ClientInfo::default(), None, None, None)
    };
    Ok(SessionRecord {
        tenant,
        id,
        token_hash,
        subject,
        created_at,
        last_seen_at,
        idle_timeout,
        expires_at,
        auth_time,
        attributes,
        client,
        version,
        state,
        refresh,
        assurance,
        grants,
    })
}
