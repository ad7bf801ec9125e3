//! The on-disk record codec, for the fuzz targets only (`fuzz/` in the
//! repository): hidden, not part of the API, and may change in any
//! release. The store itself never calls these.

use sessionkit_core::{SessionId, SessionRecord};

use crate::DecodeError;

/// Decodes a stored value kept under `key`, as opening a store does for
/// every record in the file.
pub fn decode_record(key: SessionId, bytes: &[u8]) -> Result<SessionRecord, DecodeError> {
    crate::encoding::decode(key, bytes)
}

/// Encodes a record as the store writes it (`None` should postcard ever
/// fail to serialise it).
#[must_use]
pub fn encode_record(rec: &SessionRecord) -> Option<Vec<u8>> {
    crate::encoding::encode(rec).ok()
}
