//! The side-data codec of the `client` column, for the fuzz targets
//! only (`fuzz/` in the repository): hidden, not part of the API, and may
//! change in any release. The store itself never calls these.

use sessionkit_core::side_blob::{self, Decoded, Side};

/// Decodes a stored side blob (a format byte, then postcard); `None` for
/// anything that is not valid client info, assurance and grants.
#[must_use]
pub fn decode_side(blob: &[u8]) -> Option<Decoded> {
    side_blob::decode(blob)
}

/// Encodes side data as the store writes it.
#[must_use]
pub fn encode_side(side: Side<'_>) -> Vec<u8> {
    side_blob::encode(side)
}
