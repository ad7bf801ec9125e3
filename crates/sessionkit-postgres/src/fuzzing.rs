//! The client-info codec of the `client` column, for the fuzz targets
//! only (`fuzz/` in the repository): hidden, not part of the API, and may
//! change in any release. The store itself never calls these.

use sessionkit_core::ClientInfo;

/// Decodes a stored client-info blob (a format byte, then postcard);
/// `None` for anything that is not valid client info.
#[must_use]
pub fn decode_client(blob: &[u8]) -> Option<ClientInfo> {
    crate::codec::decode_client(blob)
}

/// Encodes client info as the store writes it.
#[must_use]
pub fn encode_client(c: &ClientInfo) -> Vec<u8> {
    crate::codec::encode_client(c)
}
