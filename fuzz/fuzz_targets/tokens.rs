//! Every parser of a token a client sends must refuse garbage without
//! panicking: session tokens (`ses_…`), refresh tokens (`rft_…`) and access
//! JWTs (EdDSA and HS256 key rings).
//!
//! The input is tried as text (lossy UTF-8, and as is when it is UTF-8), and
//! spliced into a real access JWT: base64url-encoded (and as raw text) in
//! place of its header or its payload segment, once with the original
//! signature and once re-signed with the ring's own key, so that a spliced
//! header or payload gets past the signature check and reaches the header
//! and claim checks behind it.
#![no_main]

use std::sync::OnceLock;

use aws_lc_rs::hmac;
use aws_lc_rs::signature::Ed25519KeyPair;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use libfuzzer_sys::fuzz_target;
use sessionkit::jwt::{AccessClaims, Expectation, KeyRing, SigningAlgorithm};
use sessionkit_core::SecretKey;
use sessionkit_core::SessionToken;
use sessionkit_core::refresh::RefreshToken;

/// The rings' creation time; tokens are checked a little later.
const CREATED: i64 = 1_800_000_000;
const NOW: i64 = CREATED + 10;
const ISSUER: &str = "https://sessions.example";
const AUDIENCE: &str = "api";
/// The HS256 secret (also in docs/fuzzing.md: the HS256 seeds verify).
const HS256_SECRET: [u8; 32] = [9; 32];

/// A ring, a real token of it, and a way to sign like it.
struct Ring {
    ring: KeyRing,
    header: String,
    payload: String,
    signature: String,
    signer: Signer,
}

enum Signer {
    Ed25519(Ed25519KeyPair),
    Hs256(hmac::Key),
}

impl Ring {
    fn new(ring: KeyRing) -> Ring {
        let claims = AccessClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: Some("user-1".into()),
            sid: "s-1".into(),
            jti: "j-1".into(),
            iat: NOW,
            exp: NOW + 300,
            extra: Default::default(),
        };
        let token = ring.sign_access(&claims).expect("sign_access");
        let mut parts = token.split('.').map(str::to_owned);
        let (header, payload, signature) = (
            parts.next().expect("header"),
            parts.next().expect("payload"),
            parts.next().expect("signature"),
        );
        // The active key's secret, from the ring's own key file.
        let file: serde_json::Value =
            serde_json::from_str(&ring.to_file_json()).expect("key file json");
        let secret = B64
            .decode(file["keys"][0]["secret"].as_str().expect("secret"))
            .expect("secret base64");
        let signer = match ring.active_algorithm() {
            SigningAlgorithm::EdDSA => {
                Signer::Ed25519(Ed25519KeyPair::from_pkcs8(&secret).expect("pkcs8"))
            }
            SigningAlgorithm::HS256 => Signer::Hs256(hmac::Key::new(hmac::HMAC_SHA256, &secret)),
            SigningAlgorithm::ES256 => unreachable!("no ES256 ring here"),
        };
        let r = Ring {
            ring,
            header,
            payload,
            signature,
            signer,
        };
        // The re-signing must agree with the ring, or the splices are shallow.
        assert_eq!(r.sign(&format!("{}.{}", r.header, r.payload)), r.signature);
        assert!(r.ring.verify_access(&token, expectation(), NOW).is_ok());
        r
    }

    fn sign(&self, signing_input: &str) -> String {
        match &self.signer {
            Signer::Ed25519(pair) => B64.encode(pair.sign(signing_input.as_bytes())),
            Signer::Hs256(key) => B64.encode(hmac::sign(key, signing_input.as_bytes())),
        }
    }

    /// Verifies `header.payload` with the original signature and re-signed.
    fn splice(&self, header: &str, payload: &str, also_at_extremes: bool) {
        let input = format!("{header}.{payload}");
        let _ = self
            .ring
            .verify_access(&format!("{input}.{}", self.signature), expectation(), NOW);
        let token = format!("{input}.{}", self.sign(&input));
        let _ = self.ring.verify_access(&token, expectation(), NOW);
        if also_at_extremes {
            for now in [i64::MIN, -1, 0, i64::MAX] {
                let _ = self.ring.verify_access(&token, expectation(), now);
            }
        }
    }

    fn exercise(&self, data: &[u8], text: &str, cheap: bool) {
        let _ = self.ring.verify_access(text, expectation(), NOW);
        let encoded = B64.encode(data);
        self.splice(&encoded, &self.payload, false);
        self.splice(&self.header, &encoded, cheap);
        // The input as the segment's text: base64url decoding of garbage.
        self.splice(text, &self.payload, false);
        self.splice(&self.header, text, false);
    }
}

struct Fixture {
    refresh_key: SecretKey,
    eddsa: Ring,
    hs256: Ring,
}

fn expectation() -> &'static Expectation {
    static E: OnceLock<Expectation> = OnceLock::new();
    E.get_or_init(|| Expectation::new(ISSUER, AUDIENCE, 30).expect("expectation"))
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| Fixture {
        refresh_key: SecretKey::from_bytes([7; 32]),
        eddsa: Ring::new(KeyRing::generate(SigningAlgorithm::EdDSA, CREATED).expect("EdDSA ring")),
        hs256: Ring::new(KeyRing::from_hs256_secret(&HS256_SECRET, CREATED).expect("HS256 ring")),
    })
}

fn parse_text(f: &Fixture, s: &str) {
    let _ = SessionToken::parse(s);
    let _ = RefreshToken::parse(s, &f.refresh_key);
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let lossy = String::from_utf8_lossy(data);
    parse_text(f, &lossy);
    // Raw: when the bytes are not UTF-8, lossy decoding replaced some; the
    // valid prefix is also tried as is. (The JWT splices below also take the
    // raw bytes, base64url-encoded.)
    if let Err(e) = std::str::from_utf8(data) {
        let prefix = std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default();
        parse_text(f, prefix);
        let _ = f.eddsa.ring.verify_access(prefix, expectation(), NOW);
        let _ = f.hs256.ring.verify_access(prefix, expectation(), NOW);
    }
    f.hs256.exercise(data, &lossy, true);
    f.eddsa.exercise(data, &lossy, false);
});
