//! The client-info codec of the `client` column, for the fuzz targets
//! only (`fuzz/` in the repository): hidden, not part of the API, and may
//! change in any release. The store itself never calls these.

use sessionkit_core::{Assurance, ClientInfo, client_blob};

/// Decodes a stored client blob (a format byte, then postcard); `None` for
/// anything that is not valid client info and assurance.
#[must_use]
pub fn decode_client(blob: &[u8]) -> Option<(ClientInfo, Option<Box<Assurance>>)> {
    client_blob::decode(blob)
}

/// Encodes client info and assurance as the store writes them.
#[must_use]
pub fn encode_client(c: &ClientInfo, assurance: Option<&Assurance>) -> Vec<u8> {
    client_blob::encode(c, assurance)
}
