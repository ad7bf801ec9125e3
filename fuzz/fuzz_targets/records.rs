//! The record codecs of the stores, on bytes read back from a disk or a
//! server: every decoder must refuse what it cannot trust with an error
//! (fail closed), never panic, and what it accepts must be a record the
//! store could have written (it encodes and decodes back to itself).
//!
//! Every input goes through each of:
//! - the redb store's on-disk record (`sessionkit_redb::fuzzing`: a
//!   format byte, then postcard), under the key its bytes 1..17 name (the
//!   record's own id, so the id check passes and the fields behind it are
//!   reached);
//! - the Redis store's record (`sessionkit_redis::fuzzing`: a MessagePack
//!   array of strings, with a client-info blob inside) and its key-text
//!   parsers (session id, token hash, subject as lowercase hex);
//! - the PostgreSQL store's client-info blob (`sessionkit_postgres::fuzzing`;
//!   its rows come from the server's typed columns, not from bytes).
//!
//! The memory store's record codec is not here: it reads only records it
//! wrote into its own memory, never bytes from outside.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessionkit_core::{Attributes, SessionId, SessionRecord};

/// The key of the Redis records (its store takes it from the hash field).
const ID: SessionId = SessionId::from_bytes([0x5a; 16]);

/// What every decoded record must satisfy, whatever store it came from.
fn check(rec: &SessionRecord) {
    assert!(Attributes::from_stored(rec.attributes.as_json()).is_ok());
    assert!(rec.client.validate().is_ok(), "{:?}", rec.client);
    assert!(rec.version >= 1);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn redb(data: &[u8]) {
    let Some(id) = data.get(1..17) else {
        let _ = sessionkit_redb::fuzzing::decode_record(ID, data);
        return;
    };
    let key = SessionId::from_bytes(id.try_into().expect("16 bytes"));
    if let Ok(rec) = sessionkit_redb::fuzzing::decode_record(key, data) {
        assert_eq!(rec.id, key);
        check(&rec);
        let bytes = sessionkit_redb::fuzzing::encode_record(&rec).expect("encode");
        let again = sessionkit_redb::fuzzing::decode_record(key, &bytes).expect("decode again");
        assert_eq!(again, rec);
    }
}

fn redis(data: &[u8]) {
    use sessionkit_redis::fuzzing as r;
    if let Ok(rec) = r::decode_record(ID, data) {
        check(&rec);
        let again = r::decode_record(ID, &r::encode_record(&rec)).expect("decode again");
        assert_eq!(again, rec);
    }
    // Key text: only the one spelling the store writes is read.
    if let Some(id) = r::parse_id(data) {
        assert_eq!(hex(id.as_bytes()).as_bytes(), data);
    }
    if let Some(h) = r::parse_hash(data) {
        assert_eq!(hex(h.as_bytes()).as_bytes(), data);
    }
    if let Some(s) = r::parse_subject(data) {
        assert_eq!(hex(s.as_str().as_bytes()).as_bytes(), data);
    }
}

fn postgres(data: &[u8]) {
    use sessionkit_postgres::fuzzing as p;
    if let Some((client, assurance, grants)) = p::decode_side(data) {
        assert!(client.validate().is_ok(), "{client:?}");
        let side = sessionkit_core::side_blob::Side {
            client: &client,
            assurance: assurance.as_deref(),
            grants: grants.as_deref(),
        };
        let again = p::decode_side(&p::encode_side(side));
        assert_eq!(again, Some((client, assurance, grants)));
    }
}

fuzz_target!(|data: &[u8]| {
    redb(data);
    redis(data);
    postgres(data);
});
