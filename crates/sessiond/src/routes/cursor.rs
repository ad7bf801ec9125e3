//! Opaque pagination cursors: base64url of a version byte and where the
//! previous page ended — the `created_at` and id of its last session (a
//! device list), or its last subject (the list of subjects).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sessionkit_core::store::ListCursor;
use sessionkit_core::{Millis, SessionId, Subject};

use crate::error::ApiError;

const VERSION: u8 = 1;
const LEN: usize = 1 + 8 + 16;

/// Encodes a cursor.
#[must_use]
pub fn encode(c: &ListCursor) -> String {
    let mut b = [0u8; LEN];
    b[0] = VERSION;
    b[1..9].copy_from_slice(&c.created_at.as_millis().to_be_bytes());
    b[9..].copy_from_slice(c.id.as_bytes());
    URL_SAFE_NO_PAD.encode(b)
}

/// Decodes a cursor (400 `invalid_request` when malformed).
pub fn decode(s: &str) -> Result<ListCursor, ApiError> {
    let bad = || ApiError::field("cursor", "malformed cursor");
    if s.len() > 64 {
        return Err(bad());
    }
    let b = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
    if b.len() != LEN || b[0] != VERSION {
        return Err(bad());
    }
    let mut ms = [0u8; 8];
    ms.copy_from_slice(&b[1..9]);
    let mut id = [0u8; 16];
    id.copy_from_slice(&b[9..]);
    Ok(ListCursor {
        created_at: Millis::from_millis(i64::from_be_bytes(ms)),
        id: SessionId::from_bytes(id),
    })
}

/// Encodes a cursor of the subject list.
#[must_use]
pub fn encode_subject(s: &Subject) -> String {
    let mut b = Vec::with_capacity(1 + s.as_str().len());
    b.push(VERSION);
    b.extend_from_slice(s.as_str().as_bytes());
    URL_SAFE_NO_PAD.encode(b)
}

/// Decodes a cursor of the subject list (400 `invalid_request` when
/// malformed).
pub fn decode_subject(c: &str) -> Result<Subject, ApiError> {
    let bad = || ApiError::field("cursor", "malformed cursor");
    if c.len() > 400 {
        return Err(bad());
    }
    let b = URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
    let (&v, rest) = b.split_first().ok_or_else(bad)?;
    if v != VERSION {
        return Err(bad());
    }
    let text = std::str::from_utf8(rest).map_err(|_| bad())?;
    Subject::new(text).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let c = ListCursor {
            created_at: Millis::from_millis(1_700_000_000_123),
            id: SessionId::generate(),
        };
        assert_eq!(decode(&encode(&c)).unwrap(), c);
        assert!(decode("").is_err());
        assert!(decode("!!!").is_err());
        assert!(decode(&"A".repeat(200)).is_err());
    }

    #[test]
    fn subject_round_trip_and_garbage() {
        let s = Subject::new("team/ünï").unwrap();
        assert_eq!(decode_subject(&encode_subject(&s)).unwrap(), s);
        assert!(decode_subject("").is_err());
        assert!(decode_subject("AA").is_err(), "version 0");
        assert!(decode_subject("AQ").is_err(), "empty subject");
        assert!(decode_subject(&"A".repeat(500)).is_err());
    }
}
