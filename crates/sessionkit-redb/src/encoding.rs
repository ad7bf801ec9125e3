//! The on-disk encoding of one session record: a format-version byte, then
//! the record in postcard.
//!
//! Why a struct of our own rather than serde on [`SessionRecord`]: the file
//! outlives the code. [`DiskRecordV1`] is frozen — its fields and their
//! order, and the variant order of its enums, never change. A later format
//! gets a new version byte and a new struct, and the decoder keeps reading
//! every version it ever wrote. A record with an unknown version, trailing
//! bytes, a field that fails validation, or an id that differs from its key
//! is refused with a [`DecodeError`] (the store then treats that session as
//! absent): a damaged record is never read as some other session.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use sessionkit_core::upstream::Grants;
use sessionkit_core::{
    Assurance, Attributes, ClientInfo, DurationMs, Fingerprint, Millis, RefreshState, RevokeReason,
    SessionId, SessionRecord, SessionState, Subject, TenantId, TokenHash,
};

/// The version byte of [`DiskRecordV1`].
pub(crate) const RECORD_V1: u8 = 1;
/// The version byte of a [`DiskRecordV1`] followed by a [`DiskRefreshV2`]
/// (a session issued as an access + refresh pair). Records without refresh
/// state are still written as format 1.
pub(crate) const RECORD_V2: u8 = 2;
/// The version byte of a [`DiskRecordV1`], then an optional
/// [`DiskRefreshV2`], an optional [`DiskAssuranceV3`] (a login that stated
/// its assurance level or methods) and optional upstream grants (in their
/// own frozen encoding, `Grants::to_bytes`). Only records with an
/// assurance or grants are written as format 3.
pub(crate) const RECORD_V3: u8 = 3;

/// Why a stored record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The value is empty.
    #[error("empty record")]
    Empty,
    /// Written by a format this build does not know (a newer release).
    #[error("unknown record format version {0}")]
    UnknownVersion(u8),
    /// The bytes are not a record of the announced format.
    #[error("malformed record: {0}")]
    Malformed(String),
    /// The record decodes but a field is invalid.
    #[error("invalid field {field}: {why}")]
    InvalidField {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The record names another session id than the key it is stored under.
    #[error("record holds session id {found}, stored under another key")]
    IdMismatch {
        /// The id inside the record.
        found: SessionId,
    },
}

/// Format 1 of a stored record. Frozen: never reorder, rename-in-meaning,
/// or remove a field; add a `DiskRecordV2` instead.
#[derive(Serialize, Deserialize)]
struct DiskRecordV1 {
    id: [u8; 16],
    tenant: String,
    token_hash: [u8; 32],
    subject: Option<String>,
    created_at: i64,
    last_seen_at: i64,
    idle_timeout_ms: i64,
    expires_at: i64,
    auth_time: Option<i64>,
    attributes: String,
    client: Option<DiskClientV1>,
    version: u64,
    state: DiskStateV1,
}

/// Client info, format 1 (frozen).
#[derive(Serialize, Deserialize)]
struct DiskClientV1 {
    ip: Option<DiskIpV1>,
    user_agent: Option<String>,
    device: Option<String>,
    fingerprint: Option<[u8; 32]>,
}

/// An IP address, format 1 (frozen variant order).
#[derive(Serialize, Deserialize)]
enum DiskIpV1 {
    V4([u8; 4]),
    V6([u8; 16]),
}

/// Refresh state, format 2 (frozen): follows the format-1 record.
#[derive(Serialize, Deserialize)]
struct DiskRefreshV2 {
    current: [u8; 32],
    previous: Option<[u8; 32]>,
    generation: u32,
    issued_at: i64,
    grace_until: i64,
}

/// A login's assurance, format 3 (frozen): level and methods.
#[derive(Serialize, Deserialize)]
struct DiskAssuranceV3 {
    aal: u8,
    amr: Vec<String>,
}

/// The state, format 1 (frozen variant order). The reason is
/// [`RevokeReason::code`], stable by contract.
#[derive(Serialize, Deserialize)]
enum DiskStateV1 {
    Active,
    Revoked { reason: u8, at: i64 },
}

/// Encodes a record in the current format. (Serialising this plain struct
/// into a `Vec` does not fail; should it ever, the batch fails honestly
/// instead of writing something unreadable.)
pub(crate) fn encode(rec: &SessionRecord) -> Result<Vec<u8>, postcard::Error> {
    let c = &rec.client;
    let client = (!c.is_empty()).then(|| DiskClientV1 {
        ip: c.ip.map(|ip| match ip {
            IpAddr::V4(a) => DiskIpV1::V4(a.octets()),
            IpAddr::V6(a) => DiskIpV1::V6(a.octets()),
        }),
        user_agent: c.user_agent.clone(),
        device: c.device.clone(),
        fingerprint: c.fingerprint.map(|f| f.0),
    });
    let disk = DiskRecordV1 {
        id: *rec.id.as_bytes(),
        tenant: rec.tenant.as_str().to_owned(),
        token_hash: *rec.token_hash.as_bytes(),
        subject: rec.subject.as_ref().map(|s| s.as_str().to_owned()),
        created_at: rec.created_at.as_millis(),
        last_seen_at: rec.last_seen_at.as_millis(),
        idle_timeout_ms: rec.idle_timeout.as_millis(),
        expires_at: rec.expires_at.as_millis(),
        auth_time: rec.auth_time.map(Millis::as_millis),
        attributes: rec.attributes.as_json().to_owned(),
        client,
        version: rec.version,
        state: match rec.state {
            SessionState::Active => DiskStateV1::Active,
            SessionState::Revoked { reason, at } => DiskStateV1::Revoked {
                reason: reason.code(),
                at: at.as_millis(),
            },
        },
    };
    let mut out = Vec::with_capacity(128 + rec.attributes.len());
    let refresh = rec.refresh.as_deref().map(|r| DiskRefreshV2 {
        current: *r.current.as_bytes(),
        previous: r.previous.map(|h| *h.as_bytes()),
        generation: r.generation,
        issued_at: r.issued_at.as_millis(),
        grace_until: r.grace_until.as_millis(),
    });
    match (rec.assurance.is_some() || rec.grants.is_some(), refresh) {
        (false, None) => {
            out.push(RECORD_V1);
            postcard::to_extend(&disk, out)
        }
        (false, Some(refresh)) => {
            out.push(RECORD_V2);
            let out = postcard::to_extend(&disk, out)?;
            postcard::to_extend(&refresh, out)
        }
        (true, refresh) => {
            out.push(RECORD_V3);
            let out = postcard::to_extend(&disk, out)?;
            let out = postcard::to_extend(&refresh, out)?;
            let a = rec.assurance.as_deref().map(|a| DiskAssuranceV3 {
                aal: a.aal(),
                amr: a.amr().to_vec(),
            });
            let out = postcard::to_extend(&a, out)?;
            let grants = rec.grants.as_deref().map(Grants::to_bytes);
            postcard::to_extend(&grants, out)
        }
    }
}

fn invalid(field: &'static str, why: impl ToString) -> DecodeError {
    DecodeError::InvalidField {
        field,
        why: why.to_string(),
    }
}

/// Decodes a record stored under `key`, in any format this build knows.
pub(crate) fn decode(key: SessionId, bytes: &[u8]) -> Result<SessionRecord, DecodeError> {
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    let rec = match version {
        RECORD_V1 => only(decode_v1(body)?)?,
        RECORD_V2 => {
            let (mut rec, rest) = decode_v1(body)?;
            let (r, rest): (DiskRefreshV2, &[u8]) = take(rest)?;
            rec.refresh = Some(Box::new(refresh_of(r)));
            only((rec, rest))?
        }
        RECORD_V3 => {
            let (mut rec, rest) = decode_v1(body)?;
            let (r, rest): (Option<DiskRefreshV2>, &[u8]) = take(rest)?;
            let (a, rest): (Option<DiskAssuranceV3>, &[u8]) = take(rest)?;
            let (g, rest): (Option<Vec<u8>>, &[u8]) = take(rest)?;
            rec.refresh = r.map(|r| Box::new(refresh_of(r)));
            if let Some(a) = a {
                let a = Assurance::new(a.aal, a.amr).map_err(|e| invalid("assurance", e))?;
                if rec.subject.is_none() || a.is_default() {
                    return Err(invalid(
                        "assurance",
                        "kept without a subject or as the default",
                    ));
                }
                rec.assurance = Some(Box::new(a));
            }
            if let Some(g) = g {
                let grants = match Grants::take_from_bytes(&g) {
                    Some((grants, [])) => grants,
                    _ => return Err(invalid("grants", "not a valid list of grants")),
                };
                rec.grants = Some(Box::new(grants));
            }
            if rec.assurance.is_none() && rec.grants.is_none() {
                return Err(invalid("format", "format 3 without assurance or grants"));
            }
            only((rec, rest))?
        }
        other => return Err(DecodeError::UnknownVersion(other)),
    };
    if rec.id != key {
        return Err(DecodeError::IdMismatch { found: rec.id });
    }
    Ok(rec)
}

/// One postcard value and the bytes after it.
fn take<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Result<(T, &'a [u8]), DecodeError> {
    postcard::take_from_bytes(b).map_err(|e| DecodeError::Malformed(e.to_string()))
}

fn refresh_of(r: DiskRefreshV2) -> RefreshState {
    RefreshState {
        current: TokenHash::from_bytes(r.current),
        previous: r.previous.map(TokenHash::from_bytes),
        generation: r.generation,
        issued_at: Millis::from_millis(r.issued_at),
        grace_until: Millis::from_millis(r.grace_until),
    }
}

/// The record, if no bytes follow it.
fn only((rec, rest): (SessionRecord, &[u8])) -> Result<SessionRecord, DecodeError> {
    if rest.is_empty() {
        Ok(rec)
    } else {
        Err(DecodeError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )))
    }
}

/// A format-1 record and the bytes after it.
fn decode_v1(body: &[u8]) -> Result<(SessionRecord, &[u8]), DecodeError> {
    let (d, rest): (DiskRecordV1, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let tenant = TenantId::new(&d.tenant).map_err(|e| invalid("tenant", e))?;
    let subject = d
        .subject
        .as_deref()
        .map(Subject::new)
        .transpose()
        .map_err(|e| invalid("subject", e))?;
    let attributes =
        Attributes::from_stored(&d.attributes).map_err(|e| invalid("attributes", e))?;
    if d.version == 0 {
        return Err(invalid("version", "0"));
    }
    if d.idle_timeout_ms < 0 {
        return Err(invalid("idle_timeout", "negative"));
    }
    let state = match d.state {
        DiskStateV1::Active => SessionState::Active,
        DiskStateV1::Revoked { reason, at } => SessionState::Revoked {
            reason: RevokeReason::from_code(reason)
                .ok_or_else(|| invalid("state.reason", format!("unknown code {reason}")))?,
            at: Millis::from_millis(at),
        },
    };
    let client = match d.client {
        None => ClientInfo::default(),
        Some(c) => {
            let info = ClientInfo {
                ip: c.ip.map(|ip| match ip {
                    DiskIpV1::V4(a) => IpAddr::V4(Ipv4Addr::from(a)),
                    DiskIpV1::V6(a) => IpAddr::V6(Ipv6Addr::from(a)),
                }),
                user_agent: c.user_agent,
                device: c.device,
                fingerprint: c.fingerprint.map(Fingerprint),
            };
            info.validate().map_err(|e| invalid("client", e))?;
            info
        }
    };
    let rec = SessionRecord {
        tenant,
        id: SessionId::from_bytes(d.id),
        token_hash: TokenHash::from_bytes(d.token_hash),
        subject,
        created_at: Millis::from_millis(d.created_at),
        last_seen_at: Millis::from_millis(d.last_seen_at),
        idle_timeout: DurationMs::from_millis(d.idle_timeout_ms),
        expires_at: Millis::from_millis(d.expires_at),
        auth_time: d.auth_time.map(Millis::from_millis),
        attributes,
        client,
        version: d.version,
        state,
        refresh: None,
        assurance: None,
        grants: None,
    };
    Ok((rec, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sessionkit_core::AttributeLimits;

    pub(crate) fn sample() -> SessionRecord {
        SessionRecord {
            tenant: TenantId::new("acme").unwrap(),
            id: SessionId::generate(),
            token_hash: TokenHash::from_bytes([7; 32]),
            subject: Some(Subject::new("user-1").unwrap()),
            created_at: Millis::from_millis(1_000),
            last_seen_at: Millis::from_millis(2_000),
            idle_timeout: DurationMs::from_secs(60),
            expires_at: Millis::from_millis(100_000),
            auth_time: Some(Millis::from_millis(1_000)),
            attributes: Attributes::from_value(&json!({"cart": 3}), &AttributeLimits::default())
                .unwrap(),
            client: ClientInfo {
                ip: Some("2001:db8::1".parse().unwrap()),
                user_agent: Some("curl/8".into()),
                device: None,
                fingerprint: Some(Fingerprint([9; 32])),
            },
            version: 3,
            state: SessionState::Active,
            refresh: None,
            assurance: None,
            grants: None,
        }
    }

    #[test]
    fn round_trip() {
        let mut r = sample();
        assert_eq!(decode(r.id, &encode(&r).unwrap()).unwrap(), r);
        r.refresh = Some(Box::new(RefreshState {
            current: TokenHash::from_bytes([1; 32]),
            previous: Some(TokenHash::from_bytes([2; 32])),
            generation: 7,
            issued_at: Millis::from_millis(3_000),
            grace_until: Millis::from_millis(33_000),
        }));
        let bytes = encode(&r).unwrap();
        assert_eq!(bytes[0], RECORD_V2);
        assert_eq!(decode(r.id, &bytes).unwrap(), r);
        for cut in 1..bytes.len() {
            assert!(decode(r.id, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        r.make_tombstone(RevokeReason::Upgraded, Millis::from_millis(5));
        r.subject = None;
        r.auth_time = None;
        assert_eq!(decode(r.id, &encode(&r).unwrap()).unwrap(), r);
    }

    #[test]
    fn assurance_round_trips_as_format_3() {
        let mut r = sample();
        let a = Assurance::new(2, vec!["pwd".into(), "otp".into()]).unwrap();
        r.assurance = Some(Box::new(a));
        let bytes = encode(&r).unwrap();
        assert_eq!(bytes[0], RECORD_V3);
        assert_eq!(decode(r.id, &bytes).unwrap(), r);
        r.refresh = Some(Box::new(RefreshState {
            current: TokenHash::from_bytes([1; 32]),
            previous: None,
            generation: 0,
            issued_at: Millis::from_millis(3_000),
            grace_until: Millis::from_millis(3_000),
        }));
        let bytes = encode(&r).unwrap();
        assert_eq!(decode(r.id, &bytes).unwrap(), r);
        for cut in 1..bytes.len() {
            assert!(decode(r.id, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        r.grants = Some(Box::new(Grants(vec![
            sessionkit_core::upstream::SealedGrant {
                provider: "idp".into(),
                key_id: 3,
                sealed: vec![8; 60],
                lease: None,
                not_before: Millis::from_millis(0),
                dead: true,
            },
        ])));
        let bytes = encode(&r).unwrap();
        assert_eq!(decode(r.id, &bytes).unwrap(), r);
        r.assurance = None;
        let bytes = encode(&r).unwrap();
        assert_eq!(bytes[0], RECORD_V3);
        assert_eq!(decode(r.id, &bytes).unwrap(), r);
        for cut in 1..bytes.len() {
            assert!(decode(r.id, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        // Without a subject an assurance cannot be trusted.
        let mut anon = sample();
        anon.subject = None;
        anon.assurance = Assurance::new(2, vec![]).unwrap().into_stored();
        assert!(decode(anon.id, &encode(&anon).unwrap()).is_err());
    }

    /// A record written by format 1 today: these exact bytes must decode
    /// in every later release.
    #[test]
    fn format_v1_is_frozen() {
        let id = SessionId::from_bytes([0x11; 16]);
        let rec = SessionRecord {
            tenant: TenantId::DEFAULT,
            id,
            token_hash: TokenHash::from_bytes([0xab; 32]),
            subject: Some(Subject::new("u").unwrap()),
            created_at: Millis::from_millis(1),
            last_seen_at: Millis::from_millis(2),
            idle_timeout: DurationMs::from_millis(3),
            expires_at: Millis::from_millis(4),
            auth_time: None,
            attributes: Attributes::empty(),
            client: ClientInfo::default(),
            version: 1,
            state: SessionState::Revoked {
                reason: RevokeReason::Logout,
                at: Millis::from_millis(5),
            },
            refresh: None,
            assurance: None,
            grants: None,
        };
        let mut golden = vec![1u8];
        golden.extend([0x11; 16]);
        golden.extend([7]);
        golden.extend(b"default");
        golden.extend([0xab; 32]);
        golden.extend([1, 1, b'u']);
        golden.extend([2, 4, 6, 8]); // zigzag varints 1, 2, 3, 4
        golden.extend([0]); // auth_time: None
        golden.extend([2, b'{', b'}']);
        golden.extend([0]); // client: None
        golden.extend([1]); // version
        golden.extend([1, 1, 10]); // Revoked { reason: 1, at: 5 }
        assert_eq!(encode(&rec).unwrap(), golden);
        assert_eq!(decode(id, &golden).unwrap(), rec);
    }

    #[test]
    fn refuses_what_it_cannot_trust() {
        let r = sample();
        let bytes = encode(&r).unwrap();
        assert_eq!(decode(r.id, &[]), Err(DecodeError::Empty));
        let mut v9 = bytes.clone();
        v9[0] = 9;
        assert_eq!(decode(r.id, &v9), Err(DecodeError::UnknownVersion(9)));
        let other = SessionId::generate();
        assert!(matches!(
            decode(other, &bytes),
            Err(DecodeError::IdMismatch { .. })
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            decode(r.id, &long),
            Err(DecodeError::Malformed(_))
        ));
        for cut in 1..bytes.len() {
            assert!(decode(r.id, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        // Every single-byte change either fails or still yields a record
        // stored under the same id (never a panic, never another id).
        for i in 0..bytes.len() {
            for x in [0x00, 0xff, 0x80, 0x01] {
                let mut b = bytes.clone();
                b[i] ^= x;
                if let Ok(got) = decode(r.id, &b) {
                    assert_eq!(got.id, r.id);
                }
            }
        }
    }
}
