//! Tests of minting and verifying access tokens. Each refusal is checked
//! against a control: the same token without the one defect verifies.

use aws_lc_rs::hmac;
use base64::Engine;
use serde_json::{Value, json};

use super::*;
use crate::jwt::{SigningAlgorithm, b64url};

pub(super) const NOW: i64 = 1_700_000_000;
pub(super) const ISS: &str = "https://sessions.example";
pub(super) const AUD: &str = "api";
pub(super) const ALGS: [SigningAlgorithm; 3] = [
    SigningAlgorithm::EdDSA,
    SigningAlgorithm::ES256,
    SigningAlgorithm::HS256,
];

pub(super) fn expect() -> Expectation {
    Expectation::new(ISS, AUD, 0).unwrap()
}

pub(super) fn claims() -> AccessClaims {
    let mut extra = Map::new();
    extra.insert("role".into(), json!("admin"));
    extra.insert("n".into(), json!([1, 2]));
    AccessClaims {
        iss: ISS.into(),
        aud: AUD.into(),
        sub: Some("user-1".into()),
        sid: "sid-1".into(),
        jti: "jti-1".into(),
        iat: NOW,
        exp: NOW + 300,
        extra,
    }
}

pub(super) fn ring(alg: SigningAlgorithm) -> KeyRing {
    KeyRing::generate(alg, NOW).unwrap()
}

/// The header `sign_access` writes.
pub(super) fn header(ring: &KeyRing) -> Value {
    json!({"alg": ring.active_algorithm().as_str(), "typ": "at+jwt", "kid": ring.active_kid()})
}

/// The payload `sign_access` writes for [`claims`] without extras.
pub(super) fn payload() -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": "user-1", "sid": "sid-1", "jti": "jti-1",
           "iat": NOW, "exp": NOW + 300})
}

pub(super) fn segment(v: &Value) -> String {
    b64url().encode(v.to_string())
}

/// Any header and payload, validly signed by the ring's active key.
pub(super) fn forge(ring: &KeyRing, header: &Value, payload: &Value) -> String {
    let input = format!("{}.{}", segment(header), segment(payload));
    let sig = ring.active_key().sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64url().encode(sig))
}

pub(super) fn verify(ring: &KeyRing, token: &str) -> Result<AccessClaims, AccessError> {
    ring.verify_access(token, &expect(), NOW)
}

#[test]
fn the_forged_control_verifies() {
    for alg in ALGS {
        let r = ring(alg);
        let c = verify(&r, &forge(&r, &header(&r), &payload())).unwrap();
        assert_eq!(c.sid, "sid-1");
        assert!(c.extra.is_empty());
    }
}

#[test]
fn every_algorithm_round_trips() {
    for alg in ALGS {
        let r = ring(alg);
        let token = r.sign_access(&claims()).unwrap();
        assert_eq!(verify(&r, &token).unwrap(), claims(), "{alg}");
        let h = token.split('.').next().unwrap();
        let h: Value = serde_json::from_slice(&b64url().decode(h).unwrap()).unwrap();
        assert_eq!(h, header(&r), "the header is exactly alg, typ, kid");
    }
}

#[test]
fn sub_is_omitted_when_none() {
    let r = ring(SigningAlgorithm::EdDSA);
    let mut c = claims();
    c.sub = None;
    let token = r.sign_access(&c).unwrap();
    let p = token.split('.').nth(1).unwrap();
    let p: Value = serde_json::from_slice(&b64url().decode(p).unwrap()).unwrap();
    assert!(p.get("sub").is_none());
    assert_eq!(verify(&r, &token).unwrap(), c);
}

#[test]
fn extra_cannot_override_a_registered_claim() {
    let r = ring(SigningAlgorithm::EdDSA);
    let mut c = claims();
    c.sub = None;
    for (k, v) in [
        ("iss", json!("https://evil.example")),
        ("aud", json!("other")),
        ("sub", json!("admin")),
        ("sid", json!("other-sid")),
        ("jti", json!("other-jti")),
        ("iat", json!(0)),
        ("exp", json!(i64::MAX)),
        ("nbf", json!(NOW + 10_000)),
    ] {
        c.extra.insert(k.into(), v);
    }
    let token = r.sign_access(&c).unwrap();
    let p = token.split('.').nth(1).unwrap();
    let p: Value = serde_json::from_slice(&b64url().decode(p).unwrap()).unwrap();
    assert_eq!(p["iss"], ISS);
    assert_eq!(p["exp"], NOW + 300);
    assert!(p.get("sub").is_none() && p.get("nbf").is_none());
    let got = verify(&r, &token).unwrap();
    assert_eq!(got.sub, None);
    assert_eq!(got.sid, "sid-1");
    assert_eq!(got.extra, claims().extra);
}

#[test]
fn forged_signature_is_invalid() {
    for alg in ALGS {
        let r = ring(alg);
        let other = ring(alg);
        // Signed by another key of the same algorithm, under our kid.
        let token = forge(&other, &header(&r), &payload());
        assert_eq!(verify(&r, &token), Err(AccessError::Invalid), "{alg}");
        // Our input with a made-up signature, and with one bit flipped.
        let good = forge(&r, &header(&r), &payload());
        let (input, sig) = good.rsplit_once('.').unwrap();
        let zeros = format!("{input}.{}", b64url().encode([0u8; 64]));
        assert_eq!(verify(&r, &zeros), Err(AccessError::Invalid));
        let mut bytes = b64url().decode(sig).unwrap();
        bytes[5] ^= 1;
        let flipped = format!("{input}.{}", b64url().encode(bytes));
        assert_eq!(verify(&r, &flipped), Err(AccessError::Invalid));
        assert!(verify(&r, &good).is_ok());
    }
}

#[test]
fn tampered_payload_is_invalid() {
    for alg in ALGS {
        let r = ring(alg);
        let token = r.sign_access(&claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        for change in [("sub", json!("admin")), ("exp", json!(NOW + 100_000))] {
            let mut p = payload();
            p[change.0] = change.1;
            let tampered = format!("{}.{}.{}", parts[0], segment(&p), parts[2]);
            assert_eq!(verify(&r, &tampered), Err(AccessError::Invalid), "{alg}");
        }
        // The header, too.
        let mut h = header(&r);
        h["typ"] = json!("at+jwt ");
        let tampered = format!("{}.{}.{}", segment(&h), parts[1], parts[2]);
        assert_eq!(verify(&r, &tampered), Err(AccessError::Invalid));
    }
}

#[test]
fn alg_none_is_invalid() {
    let r = ring(SigningAlgorithm::EdDSA);
    let good = r.sign_access(&claims()).unwrap();
    let sig = good.rsplit_once('.').unwrap().1;
    for none in ["none", "None", "NONE"] {
        let mut h = header(&r);
        h["alg"] = json!(none);
        let unsigned = format!("{}.{}.", segment(&h), segment(&payload()));
        assert_eq!(verify(&r, &unsigned), Err(AccessError::Invalid));
        let with_sig = format!("{unsigned}{sig}");
        assert_eq!(verify(&r, &with_sig), Err(AccessError::Invalid));
        // Even validly signed over the `none` header.
        assert_eq!(
            verify(&r, &forge(&r, &h, &payload())),
            Err(AccessError::Invalid)
        );
    }
}

/// HS256 "signed" with a public key as the HMAC secret: the classic
/// algorithm confusion. The algorithm comes from our key, never the token.
#[test]
fn alg_switched_to_hs256_with_the_public_key_is_invalid() {
    for alg in [SigningAlgorithm::EdDSA, SigningAlgorithm::ES256] {
        let r = ring(alg);
        let jwk = r.jwks(NOW)["keys"][0].clone();
        let mut public = b64url().decode(jwk["x"].as_str().unwrap()).unwrap();
        if let Some(y) = jwk["y"].as_str() {
            public.insert(0, 4);
            public.extend(b64url().decode(y).unwrap());
        }
        let mut h = header(&r);
        h["alg"] = json!("HS256");
        let input = format!("{}.{}", segment(&h), segment(&payload()));
        for secret in [public.clone(), jwk.to_string().into_bytes()] {
            let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
            let sig = hmac::sign(&key, input.as_bytes());
            let token = format!("{input}.{}", b64url().encode(sig));
            assert_eq!(verify(&r, &token), Err(AccessError::Invalid), "{alg}");
        }
    }
    // And the other way: an asymmetric alg named with an HS256 key's kid.
    let hs = KeyRing::from_hs256_secret(&[3u8; 32], NOW).unwrap();
    let both = hs.rotate(SigningAlgorithm::EdDSA, NOW, 600).unwrap();
    let mut h = header(&hs);
    h["alg"] = json!("EdDSA");
    let token = forge(&hs, &h, &payload());
    assert_eq!(verify(&both, &token), Err(AccessError::Invalid));
    assert!(verify(&both, &forge(&hs, &header(&hs), &payload())).is_ok());
}

#[test]
fn wrong_aud_or_iss_is_invalid() {
    let r = ring(SigningAlgorithm::EdDSA);
    for (claim, value) in [
        ("aud", json!("other-api")),
        ("aud", json!("API")),
        ("aud", json!([AUD])),
        ("aud", json!(null)),
        ("iss", json!("https://evil.example")),
        ("iss", json!(format!("{ISS}/"))),
        ("iss", json!(1)),
    ] {
        let mut p = payload();
        p[claim] = value;
        let token = forge(&r, &header(&r), &p);
        assert_eq!(verify(&r, &token), Err(AccessError::Invalid), "{claim}");
    }
    let token = r.sign_access(&claims()).unwrap();
    let mut e = expect();
    e.audience = "other-api".into();
    assert_eq!(r.verify_access(&token, &e, NOW), Err(AccessError::Invalid));
    let mut e = expect();
    e.issuer = "https://evil.example".into();
    assert_eq!(r.verify_access(&token, &e, NOW), Err(AccessError::Invalid));
}

#[test]
fn wrong_typ_is_invalid() {
    let r = ring(SigningAlgorithm::EdDSA);
    for typ in [
        json!("JWT"),
        json!("AT+JWT"),
        json!("application/at+jwt"),
        json!(null),
    ] {
        let mut h = header(&r);
        h["typ"] = typ;
        assert_eq!(
            verify(&r, &forge(&r, &h, &payload())),
            Err(AccessError::Invalid)
        );
    }
    let mut h = header(&r);
    h.as_object_mut().unwrap().remove("typ");
    assert_eq!(
        verify(&r, &forge(&r, &h, &payload())),
        Err(AccessError::Invalid)
    );
}

#[test]
fn unknown_or_missing_kid_is_invalid() {
    let r = ring(SigningAlgorithm::EdDSA);
    for kid in [
        json!("AAAAAAAAAAAAAAAAAAAAAA"),
        json!(""),
        json!(null),
        json!(7),
    ] {
        let mut h = header(&r);
        h["kid"] = kid;
        assert_eq!(
            verify(&r, &forge(&r, &h, &payload())),
            Err(AccessError::Invalid)
        );
    }
    let mut h = header(&r);
    h.as_object_mut().unwrap().remove("kid");
    assert_eq!(
        verify(&r, &forge(&r, &h, &payload())),
        Err(AccessError::Invalid)
    );
}

#[test]
fn injected_key_headers_are_invalid() {
    let r = ring(SigningAlgorithm::EdDSA);
    let jwk = r.jwks(NOW)["keys"][0].clone();
    for (name, value) in [
        ("jwk", jwk),
        ("jku", json!("https://evil.example/jwks.json")),
        ("x5u", json!("https://evil.example/cert.pem")),
        ("x5c", json!(["MIIB"])),
        ("crit", json!(["exp"])),
        ("x5t", json!("abc")),
        ("cty", json!("JWT")),
    ] {
        let mut h = header(&r);
        h[name] = value;
        let token = forge(&r, &h, &payload());
        assert_eq!(verify(&r, &token), Err(AccessError::Invalid), "{name}");
    }
}

#[test]
fn malformed_headers_are_invalid() {
    let r = ring(SigningAlgorithm::EdDSA);
    let p = segment(&payload());
    let kid = r.active_kid();
    for h in [
        format!(r#"{{"alg":"EdDSA","alg":"EdDSA","typ":"at+jwt","kid":"{kid}"}}"#),
        format!(r#"["EdDSA","at+jwt","{kid}"]"#),
        format!(r#"{{"alg":"EdDSA","typ":"at\/jwt","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","typ":"at+jwt"}}"#),
        "null".to_owned(),
        "not json".to_owned(),
    ] {
        let input = format!("{}.{p}", b64url().encode(&h));
        let sig = r.active_key().sign(input.as_bytes()).unwrap();
        let token = format!("{input}.{}", b64url().encode(sig));
        assert_eq!(verify(&r, &token), Err(AccessError::Invalid), "{h}");
    }
}

#[test]
fn time_claims_must_be_integers() {
    let r = ring(SigningAlgorithm::EdDSA);
    for (claim, value) in [
        ("exp", json!((NOW + 300).to_string())),
        ("exp", json!((NOW + 300) as f64 + 0.5)),
        ("exp", json!(null)),
        ("exp", json!(true)),
        ("exp", json!(u64::MAX)),
        ("iat", json!(NOW.to_string())),
        ("nbf", json!(NOW.to_string())),
        ("nbf", json!(null)),
    ] {
        let mut p = payload();
        p[claim] = value;
        let token = forge(&r, &header(&r), &p);
        assert_eq!(verify(&r, &token), Err(AccessError::Invalid), "{claim}");
    }
}

#[test]
fn required_claims_must_be_present_strings() {
    let r = ring(SigningAlgorithm::EdDSA);
    for claim in ["iss", "aud", "sid", "jti", "iat", "exp"] {
        let mut p = payload();
        p.as_object_mut().unwrap().remove(claim);
        assert_eq!(
            verify(&r, &forge(&r, &header(&r), &p)),
            Err(AccessError::Invalid),
            "{claim}"
        );
    }
    for (claim, value) in [("sid", json!(1)), ("jti", json!(null)), ("sub", json!(1))] {
        let mut p = payload();
        p[claim] = value;
        assert_eq!(
            verify(&r, &forge(&r, &header(&r), &p)),
            Err(AccessError::Invalid),
            "{claim}"
        );
    }
    let mut p = payload();
    p.as_object_mut().unwrap().remove("sub");
    assert_eq!(verify(&r, &forge(&r, &header(&r), &p)).unwrap().sub, None);
    let token = forge(&r, &header(&r), &json!([1, 2]));
    assert_eq!(verify(&r, &token), Err(AccessError::Invalid));
}

#[test]
fn huge_tokens_are_invalid_before_parsing() {
    let r = ring(SigningAlgorithm::EdDSA);
    let mut p = payload();
    p["pad"] = json!("x".repeat(100 * 1024));
    let token = forge(&r, &header(&r), &p);
    assert!(token.len() > 100 * 1024);
    assert_eq!(verify(&r, &token), Err(AccessError::Invalid));
    assert_eq!(
        verify(&r, &"a".repeat(100 * 1024)),
        Err(AccessError::Invalid)
    );

    // The bound is exactly MAX_TOKEN_LEN: the longest valid token under it
    // verifies, the next one up does not.
    let mut last_ok = 0;
    for n in 5_500..6_300 {
        let mut p = payload();
        p["pad"] = json!("x".repeat(n));
        let token = forge(&r, &header(&r), &p);
        if token.len() <= MAX_TOKEN_LEN {
            assert!(verify(&r, &token).is_ok(), "{}", token.len());
            last_ok = token.len();
        } else {
            assert_eq!(
                verify(&r, &token),
                Err(AccessError::Invalid),
                "{}",
                token.len()
            );
        }
    }
    assert!(last_ok >= MAX_TOKEN_LEN - 1, "{last_ok}");

    // And sign_access will not mint one.
    let mut c = claims();
    c.extra
        .insert("pad".into(), json!("x".repeat(MAX_TOKEN_LEN)));
    assert_eq!(r.sign_access(&c), Err(JwtError::TooLarge));
}

#[test]
fn bad_segments_are_invalid() {
    let r = ring(SigningAlgorithm::EdDSA);
    let good = r.sign_access(&claims()).unwrap();
    let (h, rest) = good.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    for token in [
        String::new(),
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}."),
        format!("{h}.{p}.{s}.{s}"),
        format!(".{p}.{s}"),
        format!("{h}..{s}"),
        format!("{h}.{p}.{s}="),
        format!("{h}=.{p}.{s}"),
        format!(" {good}"),
        format!("{good}\n"),
        format!("{h}.{p}.{}", s.replace('-', "+").replace('_', "/")),
    ] {
        if token == good {
            continue;
        }
        assert_eq!(verify(&r, &token), Err(AccessError::Invalid), "{token}");
    }
    assert!(verify(&r, &good).is_ok());
}

#[test]
fn expiry_and_leeway() {
    let r = ring(SigningAlgorithm::EdDSA);
    let token = r.sign_access(&claims()).unwrap(); // exp = NOW + 300
    let e0 = expect();
    assert!(r.verify_access(&token, &e0, NOW + 299).is_ok());
    assert_eq!(
        r.verify_access(&token, &e0, NOW + 300),
        Err(AccessError::Expired)
    );
    assert_eq!(
        r.verify_access(&token, &e0, NOW + 10_000),
        Err(AccessError::Expired)
    );
    let e30 = Expectation::new(ISS, AUD, 30).unwrap();
    assert!(
        r.verify_access(&token, &e30, NOW + 329).is_ok(),
        "within leeway"
    );
    assert_eq!(
        r.verify_access(&token, &e30, NOW + 330),
        Err(AccessError::Expired)
    );

    // Expired is said only of a genuine token for us.
    let forged = forge(&ring(SigningAlgorithm::EdDSA), &header(&r), &payload());
    assert_eq!(
        r.verify_access(&forged, &e0, NOW + 400),
        Err(AccessError::Invalid)
    );
    let mut other = expect();
    other.audience = "other".into();
    assert_eq!(
        r.verify_access(&token, &other, NOW + 400),
        Err(AccessError::Invalid)
    );
}

#[test]
fn iat_and_nbf_in_the_future_are_invalid() {
    let r = ring(SigningAlgorithm::EdDSA);
    let e30 = Expectation::new(ISS, AUD, 30).unwrap();
    for (claim, ahead, ok) in [
        ("iat", 30, true),
        ("iat", 31, false),
        ("nbf", 30, true),
        ("nbf", 31, false),
    ] {
        let mut p = payload();
        p[claim] = json!(NOW + ahead);
        let token = forge(&r, &header(&r), &p);
        assert_eq!(
            r.verify_access(&token, &e30, NOW).is_ok(),
            ok,
            "{claim} +{ahead}"
        );
        if !ok {
            assert_eq!(
                r.verify_access(&token, &e30, NOW),
                Err(AccessError::Invalid)
            );
        }
        assert_eq!(
            verify(&r, &token),
            Err(AccessError::Invalid),
            "{claim} without leeway"
        );
    }
    let mut p = payload();
    p["nbf"] = json!(NOW);
    assert!(
        verify(&r, &forge(&r, &header(&r), &p))
            .unwrap()
            .extra
            .is_empty()
    );
}

#[test]
fn leeway_is_at_most_sixty_seconds() {
    assert_eq!(Expectation::new(ISS, AUD, 61), Err(JwtError::Leeway));
    assert!(Expectation::new(ISS, AUD, 60).is_ok());
    let r = ring(SigningAlgorithm::EdDSA);
    let token = r.sign_access(&claims()).unwrap();
    // Built by hand past the check: verification still uses 60.
    let e = Expectation {
        issuer: ISS.into(),
        audience: AUD.into(),
        other_audiences: Vec::new(),
        leeway_secs: 3600,
    };
    assert!(r.verify_access(&token, &e, NOW + 359).is_ok());
    assert_eq!(
        r.verify_access(&token, &e, NOW + 360),
        Err(AccessError::Expired)
    );
}

#[test]
fn rotation_keeps_old_tokens_until_the_grace_ends() {
    let r = ring(SigningAlgorithm::EdDSA);
    let mut c = claims();
    c.exp = NOW + 10_000;
    let old_token = r.sign_access(&c).unwrap();
    let old_kid = r.active_kid().to_owned();

    let rotated = r.rotate(SigningAlgorithm::ES256, NOW + 10, 600).unwrap();
    let new_token = rotated.sign_access(&c).unwrap();
    let h = new_token.split('.').next().unwrap();
    let h: Value = serde_json::from_slice(&b64url().decode(h).unwrap()).unwrap();
    assert_eq!(h["kid"], rotated.active_kid());
    assert_eq!(h["alg"], "ES256");
    assert_ne!(rotated.active_kid(), old_kid);

    let e = expect();
    assert!(rotated.verify_access(&old_token, &e, NOW + 609).is_ok());
    assert!(rotated.verify_access(&new_token, &e, NOW + 609).is_ok());
    assert_eq!(
        rotated.verify_access(&old_token, &e, NOW + 610),
        Err(AccessError::Invalid),
        "retired"
    );
    assert!(rotated.verify_access(&new_token, &e, NOW + 610).is_ok());
    // The old ring knows nothing of the new key.
    assert_eq!(
        r.verify_access(&new_token, &e, NOW + 20),
        Err(AccessError::Invalid)
    );

    // Pruned: the kid is gone, even at a time the key would still verify.
    let pruned = rotated.prune(NOW + 610);
    assert_eq!(pruned.keys().len(), 1);
    assert_eq!(
        pruned.verify_access(&old_token, &e, NOW + 20),
        Err(AccessError::Invalid)
    );
    assert!(rotated.verify_access(&old_token, &e, NOW + 20).is_ok());
}
