//! Decoding script replies. Anything unexpected is
//! [`StoreError::Corrupt`]: never a default.

use redis::Value;
use sessionkit_core::ids::{SessionId, Subject, TenantId};
use sessionkit_core::record::ExpiryCause;
use sessionkit_core::record::SessionRecord;
use sessionkit_core::store::{Corruption, Purged, StoreError, StoreResult};
use sessionkit_core::token::TokenHash;

use crate::codec;

pub(crate) fn corrupt(what: &'static str, id: Option<SessionId>) -> StoreError {
    StoreError::Corrupt(Corruption { what, id })
}

/// The bytes of a bulk or simple string, `None` for nil.
pub(crate) fn bytes(v: &Value) -> Option<Option<Vec<u8>>> {
    match v {
        Value::Nil => Some(None),
        Value::BulkString(b) => Some(Some(b.clone())),
        Value::SimpleString(s) => Some(Some(s.clone().into_bytes())),
        Value::Int(i) => Some(Some(i.to_string().into_bytes())),
        _ => None,
    }
}

pub(crate) fn text(v: &Value) -> Option<String> {
    String::from_utf8(bytes(v)??).ok()
}

pub(crate) fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}

pub(crate) fn array(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) => Some(a),
        _ => None,
    }
}

/// A reply `{tag, …}`: the tag and the rest.
pub(crate) fn tagged(v: &Value) -> Option<(String, &[Value])> {
    let a = array(v)?;
    let (t, rest) = a.split_first()?;
    Some((text(t)?, rest))
}

/// Decodes a `fetch(id)` reply (the stored record) for `id`.
pub(crate) fn record(id: SessionId, v: &Value) -> StoreResult<SessionRecord> {
    let blob = bytes(v)
        .flatten()
        .ok_or_else(|| corrupt("record", Some(id)))?;
    codec::decode_blob(id, &blob).map_err(StoreError::Corrupt)
}

/// Decodes an `{id, fetch(id)}` pair.
pub(crate) fn id_and_record(v: &Value) -> StoreResult<SessionRecord> {
    let pair = array(v).ok_or_else(|| corrupt("record", None))?;
    let [idv, rec] = pair else {
        return Err(corrupt("record", None));
    };
    let id = bytes(idv)
        .flatten()
        .and_then(|b| codec::parse_id(&b))
        .ok_or_else(|| corrupt("id index", None))?;
    record(id, rec)
}

pub(crate) fn subject_of(v: &Value, id: Option<SessionId>) -> StoreResult<Option<Subject>> {
    let b = bytes(v).flatten().ok_or_else(|| corrupt("subject", id))?;
    if b.is_empty() {
        return Ok(None);
    }
    codec::parse_subject(&b)
        .map(Some)
        .ok_or_else(|| corrupt("subject", id))
}

pub(crate) fn read_reply(tenant: TenantId, v: &Value) -> StoreResult<Option<SessionRecord>> {
    if matches!(v, Value::Nil) {
        return Ok(None);
    }
    let pair = array(v).ok_or_else(|| corrupt("record", None))?;
    // A dangling pointer (its record purged in between): no session.
    if let [_, Value::Nil] | [_] = pair {
        return Ok(None);
    }
    let rec = id_and_record(v)?;
    Ok((rec.tenant == tenant).then_some(rec))
}

/// Decodes a purge reply: each purged record and its token hash.
pub(crate) fn purged(v: &Value) -> StoreResult<Vec<(Purged, TokenHash)>> {
    let bad = |id| corrupt("purge reply", id);
    let items = array(v).ok_or_else(|| bad(None))?;
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        let [t, i, s, c, h] = array(it).ok_or_else(|| bad(None))? else {
            return Err(bad(None));
        };
        let id = bytes(i)
            .flatten()
            .and_then(|b| codec::parse_id(&b))
            .ok_or_else(|| bad(None))?;
        let tenant = text(t)
            .and_then(|t| TenantId::new(&t).ok())
            .ok_or_else(|| corrupt("tenant", Some(id)))?;
        let expired = match text(c).ok_or_else(|| bad(Some(id)))?.as_str() {
            "" => None,
            "idle" => Some(ExpiryCause::Idle),
            "absolute" => Some(ExpiryCause::Absolute),
            _ => return Err(bad(Some(id))),
        };
        let hash = bytes(h)
            .flatten()
            .and_then(|b| codec::parse_hash(&b))
            .ok_or_else(|| corrupt("token hash", Some(id)))?;
        let p = Purged {
            tenant,
            id,
            subject: subject_of(s, Some(id))?,
            expired,
        };
        out.push((p, hash));
    }
    Ok(out)
}
