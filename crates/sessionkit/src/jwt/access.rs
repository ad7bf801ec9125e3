//! Access JWTs: the claims, minting ([`KeyRing::sign_access`]) and
//! verification ([`KeyRing::verify_access`]).

use std::fmt;

use base64::Engine;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::b64url;
use super::keyring::KeyRing;

/// The longest token [`KeyRing::verify_access`] looks at, in bytes; a
/// longer one is [`AccessError::Invalid`] before any parsing, and
/// [`KeyRing::sign_access`] refuses to mint one.
pub const MAX_TOKEN_LEN: usize = 8192;

/// The largest clock leeway an [`Expectation`] may carry, in seconds.
pub const MAX_LEEWAY_SECS: u64 = 60;

/// The JOSE `typ` of an access token (RFC 9068 §2.1).
const TYP: &str = "at+jwt";

/// The claims [`AccessClaims::extra`] may not set: the registered claims
/// this module reads.
const REGISTERED: [&str; 8] = ["iss", "aud", "sub", "sid", "jti", "iat", "exp", "nbf"];

/// The claims of an access token.
///
/// Serialized with `extra` flattened into the top level and `sub` left out
/// when `None`; an `extra` key naming a registered claim (`iss`, `aud`,
/// `sub`, `sid`, `jti`, `iat`, `exp`, `nbf`) is skipped, so it can never
/// override one.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessClaims {
    /// Issuer: who minted the token.
    pub iss: String,
    /// Audience: who the token is for (a single string).
    pub aud: String,
    /// Subject: the user, once known.
    pub sub: Option<String>,
    /// The session the token belongs to.
    pub sid: String,
    /// The token's unique id.
    pub jti: String,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Expires at (unix seconds).
    pub exp: i64,
    /// Any other claims.
    pub extra: Map<String, Value>,
}

impl Serialize for AccessClaims {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("iss", &self.iss)?;
        map.serialize_entry("aud", &self.aud)?;
        if let Some(sub) = &self.sub {
            map.serialize_entry("sub", sub)?;
        }
        map.serialize_entry("sid", &self.sid)?;
        map.serialize_entry("jti", &self.jti)?;
        map.serialize_entry("iat", &self.iat)?;
        map.serialize_entry("exp", &self.exp)?;
        for (k, v) in &self.extra {
            if !REGISTERED.contains(&k.as_str()) {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

/// What a verified token must say: its issuer and audience, and how much
/// clock skew to forgive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The `iss` the token must carry, exactly.
    pub issuer: String,
    /// The `aud` the token must carry, exactly.
    pub audience: String,
    /// Further audiences accepted (a server with per-tenant audiences
    /// verifies the signature once, then checks the tenant's).
    pub other_audiences: Vec<String>,
    /// Seconds of clock skew forgiven on `exp`, `iat` and `nbf`; at most
    /// [`MAX_LEEWAY_SECS`] ([`Expectation::new`] refuses more, and
    /// [`KeyRing::verify_access`] never uses more).
    pub leeway_secs: u64,
}

impl Expectation {
    /// An expectation; a `leeway_secs` over [`MAX_LEEWAY_SECS`] is
    /// [`JwtError::Leeway`].
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        leeway_secs: u64,
    ) -> Result<Expectation, JwtError> {
        if leeway_secs > MAX_LEEWAY_SECS {
            return Err(JwtError::Leeway);
        }
        Ok(Expectation {
            issuer: issuer.into(),
            audience: audience.into(),
            other_audiences: Vec::new(),
            leeway_secs,
        })
    }

    /// The leeway in force: `leeway_secs`, at most [`MAX_LEEWAY_SECS`].
    fn leeway(&self) -> i64 {
        // At most 60: the conversion cannot fail.
        i64::try_from(self.leeway_secs.min(MAX_LEEWAY_SECS)).unwrap_or(0)
    }
}

/// Why a token could not be minted, or an [`Expectation`] made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// A leeway over [`MAX_LEEWAY_SECS`].
    #[error("the leeway is over 60 seconds")]
    Leeway,
    /// The claims could not be encoded as JSON.
    #[error("the claims could not be encoded")]
    Encode,
    /// The token would be longer than [`MAX_TOKEN_LEN`]: nothing could
    /// verify it.
    #[error("the token would be longer than 8192 bytes")]
    TooLarge,
    /// The signing key failed to sign.
    #[error("signing failed")]
    Sign,
}

/// Why a token did not verify. Deliberately coarse: nothing more leaves
/// [`KeyRing::verify_access`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// A genuine token for this issuer and audience, past its `exp` (plus
    /// the leeway): the client may refresh.
    #[error("the access token has expired")]
    Expired,
    /// Anything else: malformed, forged, tampered with, for another
    /// audience, signed by an unknown or retired key.
    #[error("the access token is invalid")]
    Invalid,
}

/// The JOSE header as this module accepts it: a JSON object of exactly
/// `alg`, `typ` and `kid`, each once, each a string without escapes (this
/// module never writes one). Anything else (`jwk`, `jku`, `x5u`, `x5c`,
/// `crit`, …) is refused.
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

impl<'de> Deserialize<'de> for Header<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;
        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = Header<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JOSE header of alg, typ and kid")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header<'de>, A::Error> {
                let (mut alg, mut typ, mut kid) = (None, None, None);
                while let Some(name) = map.next_key::<&'de str>()? {
                    let slot = match name {
                        "alg" => &mut alg,
                        "typ" => &mut typ,
                        "kid" => &mut kid,
                        _ => return Err(de::Error::custom("unexpected header parameter")),
                    };
                    if slot.replace(map.next_value::<&'de str>()?).is_some() {
                        return Err(de::Error::custom("repeated header parameter"));
                    }
                }
                match (alg, typ, kid) {
                    (Some(alg), Some(typ), Some(kid)) => Ok(Header { alg, typ, kid }),
                    _ => Err(de::Error::custom("missing header parameter")),
                }
            }
        }
        // Only a map: a derived impl would take a JSON array too.
        deserializer.deserialize_map(HeaderVisitor)
    }
}

impl KeyRing {
    /// Mints an access token signed by the active key, with the header
    /// `{"alg": <the key's>, "typ": "at+jwt", "kid": <the key's>}` and
    /// nothing else.
    pub fn sign_access(&self, claims: &AccessClaims) -> Result<String, JwtError> {
        let key = self.active_key();
        // `kid` is base64url (checked when made or loaded): no escaping.
        let header = format!(
            r#"{{"alg":"{}","typ":"{TYP}","kid":"{}"}}"#,
            key.alg.as_str(),
            key.kid
        );
        let payload = serde_json::to_vec(claims).map_err(|_| JwtError::Encode)?;
        // An Ed25519 or P-256 signature is 64 bytes, an HMAC-SHA256 32.
        let len = encoded_len(header.len()) + encoded_len(payload.len()) + encoded_len(64) + 2;
        if len > MAX_TOKEN_LEN {
            return Err(JwtError::TooLarge);
        }
        let mut token = String::with_capacity(len);
        b64url().encode_string(header, &mut token);
        token.push('.');
        b64url().encode_string(payload, &mut token);
        let signature = key.sign(token.as_bytes()).ok_or(JwtError::Sign)?;
        token.push('.');
        b64url().encode_string(signature, &mut token);
        Ok(token)
    }

    /// Verifies an access token at `now_secs` and returns its claims.
    ///
    /// The token must be at most [`MAX_TOKEN_LEN`] bytes of three base64url
    /// segments; its header exactly `alg`, `typ: "at+jwt"` and a `kid`
    /// naming a key of this ring not retired at `now_secs`, with `alg` that
    /// key's algorithm (the algorithm always comes from the key); its
    /// signature valid for that key; its `iss` and `aud` exactly those
    /// expected; `sid`, `jti`, `iat` and `exp` present, the times integer
    /// JSON numbers, `iat` (and `nbf`, if present) not beyond the leeway in
    /// the future. Only then is a passed `exp` (plus the leeway)
    /// [`AccessError::Expired`]; any other failure is
    /// [`AccessError::Invalid`].
    pub fn verify_access(
        &self,
        token: &str,
        expect: &Expectation,
        now_secs: i64,
    ) -> Result<AccessClaims, AccessError> {
        use AccessError::Invalid;
        if token.len() > MAX_TOKEN_LEN {
            return Err(Invalid);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Invalid);
        };
        if header.is_empty() || payload.is_empty() || signature.is_empty() {
            return Err(Invalid);
        }

        let header_json = b64url().decode(header).map_err(|_| Invalid)?;
        let header: Header<'_> = serde_json::from_slice(&header_json).map_err(|_| Invalid)?;
        let key = self.verifying_key(header.kid, now_secs).ok_or(Invalid)?;
        if header.alg != key.alg.as_str() || header.typ != TYP {
            return Err(Invalid);
        }

        // The signing input: `header.payload`, as received.
        let signed = token
            .get(..token.len() - signature.len() - 1)
            .ok_or(Invalid)?;
        match jsonwebtoken::crypto::verify(
            signature,
            signed.as_bytes(),
            &key.decoding,
            key.alg.jwt_algorithm(),
        ) {
            Ok(true) => {}
            _ => return Err(Invalid),
        }

        let payload = b64url().decode(payload).map_err(|_| Invalid)?;
        let claims: Map<String, Value> = serde_json::from_slice(&payload).map_err(|_| Invalid)?;
        check_claims(claims, expect, now_secs)
    }
}

/// The claim checks, on a token whose signature verified.
fn check_claims(
    mut claims: Map<String, Value>,
    expect: &Expectation,
    now_secs: i64,
) -> Result<AccessClaims, AccessError> {
    use AccessError::Invalid;
    let iss = take_string(&mut claims, "iss")?;
    let aud = take_string(&mut claims, "aud")?;
    let sid = take_string(&mut claims, "sid")?;
    let jti = take_string(&mut claims, "jti")?;
    let sub = match claims.remove("sub") {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(Invalid),
    };
    let iat = take_time(&mut claims, "iat")?.ok_or(Invalid)?;
    let exp = take_time(&mut claims, "exp")?.ok_or(Invalid)?;
    let nbf = take_time(&mut claims, "nbf")?;

    if iss != expect.issuer || (aud != expect.audience && !expect.other_audiences.contains(&aud)) {
        return Err(Invalid);
    }
    let leeway = expect.leeway();
    let latest = now_secs.saturating_add(leeway);
    if iat > latest || nbf.is_some_and(|nbf| nbf > latest) {
        return Err(Invalid);
    }
    if exp.saturating_add(leeway) <= now_secs {
        return Err(AccessError::Expired);
    }
    Ok(AccessClaims {
        iss,
        aud,
        sub,
        sid,
        jti,
        iat,
        exp,
        extra: claims,
    })
}

/// Removes the string claim `name`; absent or not a string is invalid.
fn take_string(claims: &mut Map<String, Value>, name: &str) -> Result<String, AccessError> {
    match claims.remove(name) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(AccessError::Invalid),
    }
}

/// Removes the time claim `name`: absent is `None`; present, it must be an
/// integer JSON number (a string, a fraction or a null is invalid).
fn take_time(claims: &mut Map<String, Value>, name: &str) -> Result<Option<i64>, AccessError> {
    match claims.remove(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(AccessError::Invalid),
        Some(_) => Err(AccessError::Invalid),
    }
}

/// The length of `n` bytes in base64 without padding.
const fn encoded_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "access_proptests.rs"]
mod proptests;
