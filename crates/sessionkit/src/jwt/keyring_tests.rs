//! Tests of the key ring: generation, rotation, pruning and the file codec.

use base64::Engine;
use serde_json::{Value, json};

use super::*;
use crate::jwt::{AccessClaims, Expectation};

const NOW: i64 = 1_700_000_000;
const ALGS: [SigningAlgorithm; 3] = [
    SigningAlgorithm::EdDSA,
    SigningAlgorithm::ES256,
    SigningAlgorithm::HS256,
];

fn claims(now: i64) -> AccessClaims {
    AccessClaims {
        iss: "iss".into(),
        aud: "aud".into(),
        sub: None,
        sid: "sid".into(),
        jti: "jti".into(),
        iat: now,
        exp: now + 300,
        extra: Default::default(),
    }
}

fn expect() -> Expectation {
    Expectation::new("iss", "aud", 0).unwrap()
}

#[test]
fn algorithm_names() {
    for alg in ALGS {
        assert_eq!(alg.as_str().parse::<SigningAlgorithm>(), Ok(alg));
        assert_eq!(alg.to_string(), alg.as_str());
        let json = serde_json::to_value(alg).unwrap();
        assert_eq!(json, alg.as_str());
        assert_eq!(
            serde_json::from_value::<SigningAlgorithm>(json).unwrap(),
            alg
        );
    }
    assert_eq!(SigningAlgorithm::default(), SigningAlgorithm::EdDSA);
    for bad in ["eddsa", "HS512", "none", "RS256", ""] {
        assert_eq!(
            bad.parse::<SigningAlgorithm>(),
            Err(KeyRingError::UnknownAlgorithm)
        );
        assert!(serde_json::from_value::<SigningAlgorithm>(json!(bad)).is_err());
    }
}

#[test]
fn generate_each_algorithm() {
    for alg in ALGS {
        let ring = KeyRing::generate(alg, NOW).unwrap();
        let keys = ring.keys();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].alg, alg);
        assert_eq!(keys[0].created_at, NOW);
        assert_eq!(keys[0].retires_at, None);
        assert!(keys[0].active);
        assert_eq!(ring.active_kid(), keys[0].kid);
        assert_eq!(ring.active_algorithm(), alg);
        // 16 random bytes, base64url without padding.
        assert_eq!(ring.active_kid().len(), 22);
        assert_eq!(b64url().decode(ring.active_kid()).unwrap().len(), 16);
        let other = KeyRing::generate(alg, NOW).unwrap();
        assert_ne!(ring.active_kid(), other.active_kid());
    }
}

/// The stored PKCS#8 documents and secrets are what `jsonwebtoken`'s own
/// `EncodingKey` takes, and what it signs verifies here (and the other way
/// round: what we sign, `jsonwebtoken::decode` accepts).
#[test]
fn secrets_interoperate_with_jsonwebtoken() {
    for alg in ALGS {
        let ring = KeyRing::generate(alg, NOW).unwrap();
        let key = ring.active_key();
        let enc = match alg {
            SigningAlgorithm::EdDSA => jsonwebtoken::EncodingKey::from_ed_der(key.secret()),
            SigningAlgorithm::ES256 => jsonwebtoken::EncodingKey::from_ec_der(key.secret()),
            SigningAlgorithm::HS256 => {
                jsonwebtoken::EncodingKey::from_secret(key.secret()).unwrap()
            }
        };
        let mut header = jsonwebtoken::Header::new(alg.jwt_algorithm());
        header.typ = Some("at+jwt".into());
        header.kid = Some(ring.active_kid().into());
        let token = jsonwebtoken::encode(&header, &claims(NOW), &enc).unwrap();
        assert_eq!(
            ring.verify_access(&token, &expect(), NOW).unwrap(),
            claims(NOW),
            "{alg}"
        );

        let ours = ring.sign_access(&claims(NOW)).unwrap();
        let mut v = jsonwebtoken::Validation::new(alg.jwt_algorithm());
        // jsonwebtoken reads the system clock; NOW is in the past.
        v.validate_exp = false;
        v.set_audience(&["aud"]);
        v.set_issuer(&["iss"]);
        let data = jsonwebtoken::decode::<Value>(&ours, &key.decoding, &v).unwrap();
        assert_eq!(data.claims["sid"], "sid");
    }
}

#[test]
fn hs256_secret_must_be_32_bytes() {
    assert_eq!(
        KeyRing::from_hs256_secret(b"", NOW).unwrap_err(),
        KeyRingError::WeakSecret
    );
    assert_eq!(
        KeyRing::from_hs256_secret(&[1u8; 31], NOW).unwrap_err(),
        KeyRingError::WeakSecret
    );
    let ring = KeyRing::from_hs256_secret(&[1u8; 32], NOW).unwrap();
    assert_eq!(ring.active_algorithm(), SigningAlgorithm::HS256);
    assert!(KeyRing::from_hs256_secret(&[1u8; 64], NOW).is_ok());
}

#[test]
fn hs256_kid_is_derived_from_the_secret() {
    let secret = b"0123456789abcdef0123456789abcdef";
    let a = KeyRing::from_hs256_secret(secret, NOW).unwrap();
    let b = KeyRing::from_hs256_secret(secret, NOW + 1000).unwrap();
    assert_eq!(a.active_kid(), b.active_kid());
    assert_eq!(a.active_kid().len(), 16);
    // SHA-256("sk/v1/kid" ‖ secret), first 12 bytes.
    let mut input = b"sk/v1/kid".to_vec();
    input.extend_from_slice(secret);
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
    assert_eq!(a.active_kid(), b64url().encode(&hash.as_ref()[..12]));
    // A token from before a restart still verifies after it.
    let token = a.sign_access(&claims(NOW)).unwrap();
    assert!(b.verify_access(&token, &expect(), NOW).is_ok());
    // Another secret: another kid, and the token does not verify.
    let c = KeyRing::from_hs256_secret(b"0123456789abcdef0123456789abcdeF", NOW).unwrap();
    assert_ne!(a.active_kid(), c.active_kid());
    assert!(c.verify_access(&token, &expect(), NOW).is_err());
}

#[test]
fn rotate_retires_the_active_key_after_the_grace() {
    let ring = KeyRing::generate(SigningAlgorithm::EdDSA, NOW).unwrap();
    let first = ring.active_kid().to_owned();
    let ring2 = ring
        .rotate(SigningAlgorithm::ES256, NOW + 100, 600)
        .unwrap();
    // The old value is unchanged.
    assert_eq!(ring.keys().len(), 1);
    assert_eq!(ring.active_kid(), first);

    let keys = ring2.keys();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].kid, first);
    assert_eq!(keys[0].retires_at, Some(NOW + 700));
    assert!(!keys[0].active);
    assert_eq!(keys[1].alg, SigningAlgorithm::ES256);
    assert_eq!(keys[1].created_at, NOW + 100);
    assert_eq!(keys[1].retires_at, None);
    assert!(keys[1].active);
    assert_eq!(ring2.active_kid(), keys[1].kid);

    // A rotation after the grace drops the retired key.
    let ring3 = ring2
        .rotate(SigningAlgorithm::HS256, NOW + 700, 10)
        .unwrap();
    let keys3 = ring3.keys();
    assert_eq!(keys3.len(), 2);
    assert_eq!(keys3[0].kid, keys[1].kid);
    assert_eq!(keys3[0].retires_at, Some(NOW + 710));
    assert_eq!(keys3[1].alg, SigningAlgorithm::HS256);

    // No grace: the old key goes at once.
    let ring4 = ring3.rotate(SigningAlgorithm::EdDSA, NOW + 800, 0).unwrap();
    assert_eq!(ring4.keys().len(), 1);

    // A huge grace saturates.
    let ring5 = ring4
        .rotate(SigningAlgorithm::EdDSA, NOW, u64::MAX)
        .unwrap();
    assert_eq!(ring5.keys()[0].retires_at, Some(i64::MAX));
}

#[test]
fn prune_drops_only_retired_keys() {
    let ring = KeyRing::generate(SigningAlgorithm::EdDSA, NOW).unwrap();
    let ring = ring.rotate(SigningAlgorithm::EdDSA, NOW, 100).unwrap();
    let ring = ring.rotate(SigningAlgorithm::EdDSA, NOW, 200).unwrap();
    assert_eq!(ring.keys().len(), 3);
    assert_eq!(ring.prune(NOW + 99).keys().len(), 3);
    let pruned = ring.prune(NOW + 100);
    assert_eq!(pruned.keys().len(), 2);
    assert_eq!(pruned.active_kid(), ring.active_kid());
    let pruned = ring.prune(i64::MAX);
    assert_eq!(pruned.keys().len(), 1);
    assert_eq!(pruned.active_kid(), ring.active_kid());
    assert!(pruned.keys()[0].active);
}

#[test]
fn file_round_trip_keeps_every_key() {
    let ring = KeyRing::generate(SigningAlgorithm::EdDSA, NOW).unwrap();
    let ring = ring.rotate(SigningAlgorithm::ES256, NOW + 1, 600).unwrap();
    let ring = ring.rotate(SigningAlgorithm::HS256, NOW + 2, 600).unwrap();
    let token_ed = {
        let r = KeyRing::from_file_json(&ring.to_file_json()).unwrap();
        assert_eq!(r.keys(), ring.keys());
        ring.sign_access(&claims(NOW)).unwrap()
    };
    let text = ring.to_file_json();
    let file: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(file["version"], 1);
    assert_eq!(file["keys"].as_array().unwrap().len(), 3);
    for (k, info) in file["keys"].as_array().unwrap().iter().zip(ring.keys()) {
        let mut names: Vec<&str> = k.as_object().unwrap().keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["alg", "created_at", "kid", "retires_at", "secret"]);
        assert_eq!(k["kid"], info.kid.as_str());
        assert_eq!(k["alg"], info.alg.as_str());
    }
    let loaded = KeyRing::from_file_json(&text).unwrap();
    assert_eq!(loaded.keys(), ring.keys());
    assert_eq!(loaded.active_kid(), ring.active_kid());
    // Same keys: tokens cross both ways, and the loaded ring re-serializes
    // to the same text.
    assert!(loaded.verify_access(&token_ed, &expect(), NOW).is_ok());
    let token = loaded.sign_access(&claims(NOW)).unwrap();
    assert!(ring.verify_access(&token, &expect(), NOW).is_ok());
    assert_eq!(*loaded.to_file_json(), *text);
}

/// A valid file as a JSON value, to break one rule at a time.
fn valid_file() -> Value {
    let ring = KeyRing::generate(SigningAlgorithm::EdDSA, NOW).unwrap();
    let ring = ring.rotate(SigningAlgorithm::HS256, NOW, 600).unwrap();
    serde_json::from_str(&ring.to_file_json()).unwrap()
}

fn load(v: &Value) -> Result<KeyRing, KeyRingError> {
    KeyRing::from_file_json(&v.to_string())
}

#[test]
fn corrupt_files_are_refused() {
    assert!(load(&valid_file()).is_ok(), "the control loads");
    let corrupt = |v: &Value| matches!(load(v), Err(KeyRingError::Corrupt(_)));

    assert!(matches!(
        KeyRing::from_file_json("{\"version\":1,"),
        Err(KeyRingError::Corrupt(_))
    ));
    assert!(matches!(
        KeyRing::from_file_json(""),
        Err(KeyRingError::Corrupt(_))
    ));

    let mut v = valid_file();
    v["extra"] = json!(1);
    assert!(corrupt(&v), "unknown top-level field");
    let mut v = valid_file();
    v["keys"][0]["note"] = json!("x");
    assert!(corrupt(&v), "unknown key field");
    let mut v = valid_file();
    v["version"] = json!(2);
    assert!(corrupt(&v), "version 2");
    let mut v = valid_file();
    v["keys"][0]["alg"] = json!("RS256");
    assert_eq!(load(&v).unwrap_err(), KeyRingError::Corrupt("unknown alg"));
    let mut v = valid_file();
    v["keys"][0]["secret"] = json!("not base64!");
    assert!(corrupt(&v), "bad base64");
    let mut v = valid_file();
    let s = v["keys"][0]["secret"].as_str().unwrap().to_owned();
    v["keys"][0]["secret"] = json!(format!("{s}="));
    assert!(corrupt(&v), "padding");
    let mut v = valid_file();
    v["keys"][0]["secret"] = json!(b64url().encode([0u8; 48]));
    assert!(corrupt(&v), "a key that does not parse");
    let mut v = valid_file();
    v["keys"][0]["alg"] = json!("ES256");
    assert!(corrupt(&v), "an Ed25519 key said to be ES256");
    let mut v = valid_file();
    v["keys"] = json!([]);
    assert_eq!(load(&v).unwrap_err(), KeyRingError::Corrupt("no keys"));
    let mut v = valid_file();
    v["keys"][1]["kid"] = v["keys"][0]["kid"].clone();
    assert_eq!(
        load(&v).unwrap_err(),
        KeyRingError::Corrupt("two keys have the same kid")
    );
    let mut v = valid_file();
    v["keys"][1]["secret"] = json!(b64url().encode([9u8; 31]));
    assert!(corrupt(&v), "an HS256 secret of 31 bytes");
    let mut v = valid_file();
    v["keys"][1]["secret"] = json!("");
    assert!(corrupt(&v), "an empty HS256 secret");
    let mut v = valid_file();
    v["keys"][0]["kid"] = json!("a\"b");
    assert!(corrupt(&v), "a kid outside base64url");
    let mut v = valid_file();
    v["keys"][0]["kid"] = json!("");
    assert!(corrupt(&v), "an empty kid");
    let mut v = valid_file();
    v["keys"][0]["created_at"] = json!("now");
    assert!(corrupt(&v), "a string time");

    // No key without a retires_at.
    let mut v = valid_file();
    v["keys"][1]["retires_at"] = json!(NOW + 10);
    assert_eq!(load(&v).unwrap_err(), KeyRingError::NoActiveKey);
}

#[test]
fn errors_and_debug_never_show_secrets() {
    let ring = KeyRing::generate(SigningAlgorithm::EdDSA, NOW).unwrap();
    let ring = ring.rotate(SigningAlgorithm::HS256, NOW, 600).unwrap();
    let file: Value = serde_json::from_str(&ring.to_file_json()).unwrap();
    let secrets: Vec<String> = file["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["secret"].as_str().unwrap().to_owned())
        .collect();
    let dbg = format!("{ring:?} {:?} {:?}", ring.active_key(), ring.keys());
    assert!(dbg.contains(ring.active_kid()));
    for s in &secrets {
        assert!(!dbg.contains(s.as_str()));
        assert!(!dbg.contains(&s[..12]));
    }
    // Nor the raw bytes, as a derived `Debug` would print them.
    for k in ring.verifying_keys(NOW) {
        let raw = format!("{:?}", &k.secret()[..8]);
        assert!(!dbg.contains(raw.trim_end_matches(']')), "{dbg}");
    }

    // Break each key in turn; no error text carries any part of a secret.
    let mut v = file.clone();
    v["keys"][0]["alg"] = json!("ES256");
    v["keys"][1]["secret"] = json!(format!("{}!", secrets[1]));
    for text in [
        v.to_string(),
        file.to_string().replace("HS256", "HS512"),
        file.to_string()
            .replace("\"version\":1", "\"version\":\"1\""),
        file.to_string().replace(&secrets[1], &secrets[1][..20]),
    ] {
        let err = KeyRing::from_file_json(&text).unwrap_err();
        let shown = format!("{err} {err:?}");
        for s in &secrets {
            assert!(!shown.contains(&s[..8]), "{shown}");
        }
    }
}
