//! The public keys as a JWK Set (RFC 7517 §5), for verifiers elsewhere.

use base64::Engine;
use serde_json::{Value, json};

use super::b64url;
use super::keyring::{KeyRing, PublicKey};

impl KeyRing {
    /// The JWK Set `{"keys":[…]}` of the keys that still verify at
    /// `now_secs`, oldest first: EdDSA as
    /// `{"kty":"OKP","crv":"Ed25519","x","kid","alg":"EdDSA","use":"sig"}`,
    /// ES256 as `{"kty":"EC","crv":"P-256","x","y","kid","alg":"ES256","use":"sig"}`.
    /// HS256 keys are shared secrets and never published.
    pub fn jwks(&self, now_secs: i64) -> Value {
        let keys: Vec<Value> = self
            .verifying_keys(now_secs)
            .filter_map(|key| match &key.public {
                PublicKey::Ed25519(x) => Some(json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": b64url().encode(x),
                    "kid": key.kid,
                    "alg": key.alg.as_str(),
                    "use": "sig",
                })),
                PublicKey::P256 { x, y } => Some(json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": b64url().encode(x),
                    "y": b64url().encode(y),
                    "kid": key.kid,
                    "alg": key.alg.as_str(),
                    "use": "sig",
                })),
                PublicKey::None => None,
            })
            .collect();
        json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{DecodingKey, Validation};

    use super::super::{AccessClaims, Expectation, KeyRing, SigningAlgorithm};

    const NOW: i64 = 1_700_000_000;

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "https://sessions.example".into(),
            aud: "api".into(),
            sub: Some("user-1".into()),
            sid: "s1".into(),
            jti: "j1".into(),
            iat: NOW,
            exp: NOW + 3000,
            extra: Default::default(),
        }
    }

    /// A token verifies with `jsonwebtoken`'s own key made from the
    /// published JWK: the JWK is right.
    #[test]
    fn published_jwk_verifies_a_token() {
        for alg in [SigningAlgorithm::EdDSA, SigningAlgorithm::ES256] {
            let ring = KeyRing::generate(alg, NOW).unwrap();
            let token = ring.sign_access(&claims()).unwrap();
            let set = ring.jwks(NOW);
            let keys = set["keys"].as_array().unwrap();
            assert_eq!(keys.len(), 1);
            assert_eq!(keys[0]["kid"], ring.active_kid());
            assert_eq!(keys[0]["alg"], alg.as_str());
            assert_eq!(keys[0]["use"], "sig");
            let jwk: Jwk = serde_json::from_value(keys[0].clone()).unwrap();
            let key = DecodingKey::from_jwk(&jwk).unwrap();
            let mut v = Validation::new(alg.jwt_algorithm());
            // jsonwebtoken reads the system clock; NOW is in the past.
            v.validate_exp = false;
            v.set_audience(&["api"]);
            v.set_issuer(&["https://sessions.example"]);
            let data = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &v).unwrap();
            assert_eq!(data.claims["sid"], "s1");
            assert_eq!(data.header.kid.as_deref(), Some(ring.active_kid()));
            assert_eq!(data.header.typ.as_deref(), Some("at+jwt"));

            // And another ring's JWK does not verify it.
            let other = KeyRing::generate(alg, NOW).unwrap().jwks(NOW);
            let jwk: Jwk = serde_json::from_value(other["keys"][0].clone()).unwrap();
            let key = DecodingKey::from_jwk(&jwk).unwrap();
            assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &key, &v).is_err());
        }
    }

    #[test]
    fn members_are_exactly_those_of_rfc_8037_and_7518() {
        // The published key of a new `alg` ring and its member names, sorted.
        let published = |alg| {
            let set = KeyRing::generate(alg, NOW).unwrap().jwks(NOW);
            let mut names: Vec<String> = set["keys"][0]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            names.sort_unstable();
            (set, names)
        };
        let (set, names) = published(SigningAlgorithm::EdDSA);
        assert_eq!(names, ["alg", "crv", "kid", "kty", "use", "x"]);
        assert_eq!(set["keys"][0]["x"].as_str().unwrap().len(), 43);

        let (set, names) = published(SigningAlgorithm::ES256);
        assert_eq!(names, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
        assert_eq!(set["keys"][0]["kty"], "EC");
        assert_eq!(set["keys"][0]["crv"], "P-256");
    }

    #[test]
    fn hs256_is_never_published() {
        let ring = KeyRing::from_hs256_secret(&[7u8; 32], NOW).unwrap();
        assert_eq!(ring.jwks(NOW), serde_json::json!({ "keys": [] }));
        let ring = ring.rotate(SigningAlgorithm::EdDSA, NOW, 600).unwrap();
        let set = ring.jwks(NOW);
        assert_eq!(set["keys"].as_array().unwrap().len(), 1);
        assert_eq!(set["keys"][0]["kid"], ring.active_kid());
        let ring = ring.rotate(SigningAlgorithm::HS256, NOW, 600).unwrap();
        let set = ring.jwks(NOW);
        let text = set.to_string();
        assert_eq!(set["keys"].as_array().unwrap().len(), 1, "{text}");
        assert!(!text.contains("oct"));
    }

    #[test]
    fn a_retired_key_leaves_the_set_when_it_stops_verifying() {
        let ring = KeyRing::generate(SigningAlgorithm::EdDSA, NOW).unwrap();
        let old = ring.active_kid().to_owned();
        let token = ring.sign_access(&claims()).unwrap();
        let ring = ring.rotate(SigningAlgorithm::ES256, NOW + 10, 100).unwrap();
        let kids = |now| -> Vec<String> {
            ring.jwks(now)["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(kids(NOW + 109), [old.clone(), ring.active_kid().to_owned()]);
        assert_eq!(kids(NOW + 110), [ring.active_kid().to_owned()]);
        // Consistent with verification: published exactly while it verifies.
        let expect = Expectation::new("https://sessions.example", "api", 0).unwrap();
        assert!(ring.verify_access(&token, &expect, NOW + 109).is_ok());
        assert!(ring.verify_access(&token, &expect, NOW + 110).is_err());
    }
}
