//! The record codec and the key-text parsers, for the fuzz targets only
//! (`fuzz/` in the repository): hidden, not part of the API, and may
//! change in any release. The store itself never calls these.

use sessionkit_core::store::Corruption;
use sessionkit_core::{SessionId, SessionRecord, Subject, TokenHash};

/// Decodes a stored record (the MessagePack array of one records-hash
/// field) kept under `id`.
pub fn decode_record(id: SessionId, blob: &[u8]) -> Result<SessionRecord, Corruption> {
    crate::codec::decode_blob(id, blob)
}

/// Encodes a record as the store writes it.
#[must_use]
pub fn encode_record(rec: &SessionRecord) -> Vec<u8> {
    crate::codec::encode(rec)
}

/// A session id from its key text (lowercase hex).
#[must_use]
pub fn parse_id(text: &[u8]) -> Option<SessionId> {
    crate::codec::parse_id(text)
}

/// A token hash from its key text (lowercase hex).
#[must_use]
pub fn parse_hash(text: &[u8]) -> Option<TokenHash> {
    crate::codec::parse_hash(text)
}

/// A subject from its key text (lowercase hex of its UTF-8).
#[must_use]
pub fn parse_subject(text: &[u8]) -> Option<Subject> {
    crate::codec::parse_subject(text)
}
