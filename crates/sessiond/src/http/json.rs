//! Strict JSON bodies: the content type must be JSON, duplicate keys are
//! refused at every depth (serde_json keeps the last one silently),
//! unknown fields are refused (`deny_unknown_fields` on every body type),
//! a wrong type names its field, and a body over the limit is 413 before
//! it is read whole (the limit is enforced while buffering).

use std::borrow::Cow;
use std::fmt;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::app::AppState;
use crate::backend::ServedStore;
use crate::error::ApiError;

/// A JSON body of type `T` (content type `application/json`). Serde's
/// derive refuses a repeated field; the one free-form part of a body,
/// create's `attributes`, is raw text whose repeated keys
/// `Attributes::from_json` refuses as it encodes them.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// A JSON merge patch (RFC 7396): `application/merge-patch+json` or
/// `application/json`; must be an object.
#[derive(Debug)]
pub struct MergePatchBody(pub Value);

/// The media type of the body (lowercase essence), if the body is one we
/// read as it is: UTF-8 (a `charset` other than `utf-8` is refused) and not
/// content-encoded (gzip and the like are refused, never parsed as text).
fn media_type(req: &Request) -> Option<String> {
    let encoded = req
        .headers()
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .any(|e| !e.as_bytes().eq_ignore_ascii_case(b"identity"));
    if encoded {
        return None;
    }
    let v = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mut parts = v.split(';');
    let essence = parts.next().unwrap_or("").trim();
    for param in parts {
        let (name, value) = param.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("charset")
            && !value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        {
            return None;
        }
    }
    Some(essence.to_ascii_lowercase())
}

/// Reads the body, stopping with 413 as soon as it passes `limit` bytes
/// (a declared `Content-Length` over the limit was refused before
/// routing, see [`super::limits::check`]).
/// A body that has not arrived within `timeout` is 408 (a client that
/// sends its headers and then trickles or stalls must not hold a worker).
async fn read_body(
    req: Request,
    limit: usize,
    timeout: Option<std::time::Duration>,
) -> Result<Bytes, ApiError> {
    let read = axum::body::to_bytes(req.into_body(), limit);
    let read = match timeout {
        Some(t) => tokio::time::timeout(t, read)
            .await
            .map_err(|_| ApiError::RequestTimeout)?,
        None => read.await,
    };
    read.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::PayloadTooLarge("the request body is over the limit".into())
        } else {
            ApiError::InvalidRequest("the request body could not be read".into())
        }
    })
}

impl<S: ServedStore, T: DeserializeOwned> FromRequest<AppState<S>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState<S>) -> Result<Self, ApiError> {
        if media_type(&req).as_deref() != Some("application/json") {
            return Err(ApiError::UnsupportedMediaType(
                "the body must be application/json in UTF-8, not content-encoded".into(),
            ));
        }
        let limits = state.options().limits;
        let bytes = read_body(req, limits.max_body_bytes, limits.body_read_timeout).await?;
        // serde's derive also accepts a struct as a JSON array of its
        // fields; every v1 body is an object.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::InvalidRequest(
                "the body must be a JSON object".into(),
            ));
        }
        parse_typed(&bytes).map(JsonBody)
    }
}

impl<S: ServedStore> FromRequest<AppState<S>> for MergePatchBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState<S>) -> Result<Self, ApiError> {
        match media_type(&req).as_deref() {
            Some("application/json" | "application/merge-patch+json") => {}
            _ => {
                return Err(ApiError::UnsupportedMediaType(
                    "the body must be application/merge-patch+json or application/json, in UTF-8, not content-encoded"
                        .into(),
                ));
            }
        }
        let limits = state.options().limits;
        let bytes = read_body(req, limits.max_body_bytes, limits.body_read_timeout).await?;
        let v: Value = parse_strict(&bytes)?;
        if !v.is_object() {
            return Err(ApiError::InvalidRequest(
                "a merge patch must be a JSON object".into(),
            ));
        }
        Ok(MergePatchBody(v))
    }
}

/// Parses `bytes` as a `T`: syntax and duplicate keys first (anywhere in
/// the document), then the typed pass, which names the failing field.
pub fn parse_strict<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    check_no_duplicate_keys(bytes)?;
    parse_typed(bytes)
}

/// The typed pass: fast on success; on failure, parsed again to name the
/// field that failed.
fn parse_typed<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Ok(v),
        Err(_) => parse_with_path(bytes),
    }
}

fn parse_with_path<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() || path.contains('?') {
            ApiError::InvalidRequest(format!("invalid body: {inner}"))
        } else {
            ApiError::field(&path, inner)
        }
    })?;
    de.end()
        .map_err(|e| ApiError::InvalidRequest(format!("invalid body: {e}")))?;
    Ok(v)
}

/// Refuses malformed JSON and any object with a repeated key.
pub fn check_no_duplicate_keys(bytes: &[u8]) -> Result<(), ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    NoDupes
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| ApiError::InvalidRequest(format!("invalid JSON: {e}")))
}

/// Walks a JSON document, failing on a repeated key in any object.
struct NoDupes;

impl<'de> DeserializeSeed<'de> for NoDupes {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

impl<'de> Visitor<'de> for NoDupes {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i128<E>(self, _: i128) -> Result<(), E> {
        Ok(())
    }
    fn visit_u128<E>(self, _: u128) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(NoDupes)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        while a.next_element_seed(NoDupes)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        // Bodies are small: a linear scan beats hashing for a few keys.
        let mut seen: Vec<Cow<'de, str>> = Vec::new();
        while let Some(k) = m.next_key_seed(Key)? {
            if seen.contains(&k) {
                return Err(de::Error::custom(format_args!("duplicate key `{k}`")));
            }
            if seen.len() > 64 {
                // Big objects (attributes): switch to a sorted check.
                seen.push(k);
                let mut sorted: Vec<&str> = seen.iter().map(|c| c.as_ref()).collect();
                sorted.sort_unstable();
                if sorted.windows(2).any(|w| w[0] == w[1]) {
                    return Err(de::Error::custom("duplicate key"));
                }
                return rest_of_map(m, seen);
            }
            seen.push(k);
            m.next_value_seed(NoDupes)?;
        }
        Ok(())
    }
}

fn rest_of_map<'de, A: MapAccess<'de>>(mut m: A, seen: Vec<Cow<'de, str>>) -> Result<(), A::Error> {
    let mut set: std::collections::HashSet<Cow<'de, str>> = seen.into_iter().collect();
    m.next_value_seed(NoDupes)?;
    while let Some(k) = m.next_key_seed(Key)? {
        if !set.insert(k) {
            return Err(de::Error::custom("duplicate key"));
        }
        m.next_value_seed(NoDupes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_found_at_any_depth() {
        assert!(check_no_duplicate_keys(br#"{"a":1,"b":{"c":1,"d":[{"e":1}]}}"#).is_ok());
        assert!(check_no_duplicate_keys(br#"{"a":1,"a":2}"#).is_err());
        assert!(check_no_duplicate_keys(br#"{"a":{"x":1,"x":1}}"#).is_err());
        assert!(check_no_duplicate_keys(br#"[{"x":1,"x":1}]"#).is_err());
        assert!(check_no_duplicate_keys(br#"{"a\u0041":1,"aA":2}"#).is_err());
        let mut big = String::from("{");
        for i in 0..200 {
            big.push_str(&format!("\"k{i}\":{i},"));
        }
        assert!(check_no_duplicate_keys(format!("{big}\"k0\":1}}").as_bytes()).is_err());
        assert!(check_no_duplicate_keys(format!("{big}\"z\":1}}").as_bytes()).is_ok());
        assert!(check_no_duplicate_keys(b"{").is_err());
        assert!(check_no_duplicate_keys(b"{} x").is_err());
    }
}
