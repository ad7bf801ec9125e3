//! Session attributes: a JSON object kept as compact JSON text, with caps on
//! its size and depth, and RFC 7396 merge patches.
//!
//! Kept as text so that reading a session (the hot path) never re-parses it,
//! and so that a record costs its bytes, not a tree of allocations.
//!
//! Two ways in: [`Attributes::from_json`] takes raw JSON text (a create
//! request's attributes, straight from the request body) and checks and
//! re-encodes it in one streaming pass, without building a tree; it keeps
//! the keys in their input order and refuses a repeated key.
//! [`Attributes::from_value`] takes a `serde_json::Value` (a merge patch's
//! result, tests); a `Value` sorts its keys, so its text has them sorted.
//! Nothing depends on the order of keys.
//!
//! ```
//! use sessionkit_core::attributes::{Attributes, AttributeLimits};
//! use serde_json::json;
//! let lim = AttributeLimits::default();
//! let a = Attributes::from_value(&json!({"cart": 3, "theme": "dark"}), &lim).unwrap();
//! let b = a.merge_patch(&json!({"theme": null, "lang": "de"}), &lim).unwrap();
//! assert_eq!(b.to_value(), json!({"cart": 3, "lang": "de"}));
//!
//! let c = Attributes::from_json(r#"{ "theme": "dark", "cart": 3 }"#, &lim).unwrap();
//! assert_eq!(c.as_json(), r#"{"theme":"dark","cart":3}"#);
//! ```

mod plain;
mod stream;

use std::fmt;

use serde_json::{Map, Value};

/// Caps on the attributes of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeLimits {
    /// Largest compact JSON encoding, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting (the top-level object is depth 1).
    pub max_depth: usize,
}

impl Default for AttributeLimits {
    fn default() -> Self {
        AttributeLimits {
            max_bytes: 16 * 1024,
            max_depth: 16,
        }
    }
}

/// Why attributes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttributeError {
    /// Not a JSON object (a merge patch must be one too).
    #[error("attributes must be a JSON object")]
    NotAnObject,
    /// Larger than the cap.
    #[error("attributes are {size} bytes, over the cap of {max}")]
    TooLarge {
        /// Encoded size. [`Attributes::from_json`] stops encoding as soon as
        /// the cap is passed, so from it this is how far it got (already
        /// over the cap), not the whole object's size.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// Nested deeper than the cap.
    #[error("attributes nest deeper than {max} levels")]
    TooDeep {
        /// The cap.
        max: usize,
    },
    /// Text that is not valid JSON (or has something after the object).
    #[error("attributes are not valid JSON: {reason}")]
    InvalidJson {
        /// serde_json's account of what is wrong, and where.
        reason: String,
    },
    /// An object names the same key twice (serde_json would keep the last
    /// value silently; attributes refuse it).
    #[error("attributes have a duplicate key: {key}")]
    DuplicateKey {
        /// The key, as JSON text (quoted and escaped).
        key: String,
    },
    /// A key or string holds U+0000, which some stores cannot keep
    /// (PostgreSQL `jsonb`): refused everywhere, so every store accepts the
    /// same attributes.
    #[error("attributes may not contain U+0000 (\\u0000)")]
    NulCharacter,
    /// Stored text that is not a JSON object (a corrupt record).
    #[error("stored attributes are not a JSON object")]
    Corrupt,
}

/// Whether compact JSON text holds an escaped U+0000 (`\u0000`) in a key
/// or string: a backslash that is not itself escaped, then `u0000`. (Raw
/// control characters are not valid JSON, so this is the only spelling.)
fn has_nul(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if b.get(i + 1) == Some(&b'u') && b.get(i + 2..i + 6) == Some(&b"0000"[..]) {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// JSON read by serde_json's own parser, every string unescaped and
/// every number parsed, building nothing: what [`Attributes::from_stored`]
/// checks stored text with. (A `RawValue` or `IgnoredAny` only skips
/// strings and numbers, so it takes an unpaired surrogate escape or a
/// float out of range, which no JSON parser reads back.)
struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Checked)
    }
}

impl<'de> serde::de::Visitor<'de> for Checked {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

/// A session's attributes: always a JSON object, stored compactly.
/// Shared, not copied: a clone costs a reference count.
#[derive(Clone, PartialEq, Eq)]
pub struct Attributes(std::sync::Arc<str>);

impl Attributes {
    /// `{}`.
    #[must_use]
    pub fn empty() -> Self {
        Attributes("{}".into())
    }

    /// Checks raw JSON text, which must be one object, and encodes it
    /// compactly, in one pass and without building a `Value` tree.
    ///
    /// Refused: anything but an object ([`AttributeError::NotAnObject`]),
    /// invalid JSON or anything after the object
    /// ([`AttributeError::InvalidJson`]), a repeated key in any object
    /// ([`AttributeError::DuplicateKey`]), nesting deeper than
    /// `lim.max_depth` ([`AttributeError::TooDeep`]; the top-level object
    /// is depth 1) and a compact encoding over `lim.max_bytes`
    /// ([`AttributeError::TooLarge`], reported as soon as the encoding
    /// passes the cap). When the text breaks both caps, the one met first
    /// is reported. Nesting beyond serde_json's own recursion limit (127
    /// levels) is [`AttributeError::InvalidJson`] whatever the cap.
    ///
    /// The text is what [`Attributes::from_value`] of the parsed value
    /// would give (numbers and string escapes written by serde_json, so of
    /// the same length), except that the keys keep their input order.
    ///
    /// Plain text (no string escapes, integers only: what attributes
    /// nearly always are) is copied in one scan without its whitespace;
    /// anything else, and every refusal, goes through serde_json.
    pub fn from_json(text: &str, lim: &AttributeLimits) -> Result<Self, AttributeError> {
        match plain::encode(text, lim) {
            // Plain text has no escapes, so no U+0000.
            Some(t) => Ok(Attributes(t.into())),
            None => {
                let t = stream::encode(text, lim)?;
                if has_nul(&t) {
                    return Err(AttributeError::NulCharacter);
                }
                Ok(Attributes(t.into()))
            }
        }
    }

    /// Checks and encodes a JSON value, which must be an object. Its keys
    /// come out sorted (a `Value`'s map is ordered by key).
    pub fn from_value(v: &Value, lim: &AttributeLimits) -> Result<Self, AttributeError> {
        let Value::Object(map) = v else {
            return Err(AttributeError::NotAnObject);
        };
        Self::from_map(map, lim)
    }

    /// Checks and encodes a JSON object.
    pub fn from_map(
        map: &Map<String, Value>,
        lim: &AttributeLimits,
    ) -> Result<Self, AttributeError> {
        if depth_of_map(map) > lim.max_depth {
            return Err(AttributeError::TooDeep { max: lim.max_depth });
        }
        // Serialising a Map of Values cannot fail (string keys only).
        let text = serde_json::to_string(map).map_err(|_| AttributeError::NotAnObject)?;
        if text.len() > lim.max_bytes {
            return Err(AttributeError::TooLarge {
                size: text.len(),
                max: lim.max_bytes,
            });
        }
        if has_nul(&text) {
            return Err(AttributeError::NulCharacter);
        }
        Ok(Attributes(text.into()))
    }

    /// Rebuilds attributes from stored text, checking it is an object.
    /// Reads it with serde_json's parser without building a tree (this
    /// runs for every record when a durable store opens): text that
    /// [`Attributes::to_map`] could not read back (an unpaired surrogate
    /// escape, a float out of range) is refused, not read as `{}`.
    pub fn from_stored(text: &str) -> Result<Self, AttributeError> {
        match serde_json::from_str::<&serde_json::value::RawValue>(text) {
            Ok(raw)
                if raw.get().starts_with('{')
                    && serde_json::from_str::<Checked>(raw.get()).is_ok() =>
            {
                Ok(Attributes(raw.get().into()))
            }
            _ => Err(AttributeError::Corrupt),
        }
    }

    /// Rebuilds attributes from text a store kept byte for byte from
    /// [`Attributes::as_json`] (the memory store, in its own memory). Text
    /// that crossed a disk or a network goes through
    /// [`Attributes::from_stored`] instead, which checks it.
    #[must_use]
    pub fn from_trusted_json(text: &str) -> Self {
        Attributes(text.into())
    }

    /// The compact JSON text.
    #[must_use]
    pub fn as_json(&self) -> &str {
        &self.0
    }

    /// Size of the compact JSON text in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether this is `{}`.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        &*self.0 == "{}"
    }

    /// The attributes as a JSON object.
    #[must_use]
    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::from_str::<Value>(&self.0) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    /// The top-level attribute `key`, deserialised as `T`: one pass over
    /// the text that skips the other values without building them. `None`
    /// if absent or not a `T`.
    ///
    /// ```
    /// use sessionkit_core::Attributes;
    /// let a = Attributes::from_json(r#"{"cart":[1,2],"visits":3}"#, &Default::default()).unwrap();
    /// assert_eq!(a.get::<u64>("visits"), Some(3));
    /// assert_eq!(a.get::<Vec<u8>>("cart"), Some(vec![1, 2]));
    /// assert_eq!(a.get::<u64>("cart"), None);
    /// assert_eq!(a.get::<u64>("none"), None);
    /// ```
    #[must_use]
    pub fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
        struct Field<'k, T>(&'k str, std::marker::PhantomData<T>);
        impl<'de, T: serde::de::DeserializeOwned> Visitor<'de> for Field<'_, T> {
            type Value = Option<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
                // The rest of the object is still read (skipped): the
                // deserializer checks that the text ends where it should.
                let mut found = None;
                while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if found.is_none() && k == self.0 {
                        // Of another shape: `None`, as if absent.
                        found = map.next_value::<Value>().ok();
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(found.and_then(|v| T::deserialize(v).ok()))
            }
        }
        let mut de = serde_json::Deserializer::from_str(&self.0);
        de.deserialize_map(Field(key, std::marker::PhantomData))
            .ok()
            .flatten()
    }

    /// The attributes as a JSON value.
    #[must_use]
    pub fn to_value(&self) -> Value {
        Value::Object(self.to_map())
    }

    /// Applies an RFC 7396 merge patch (which must itself be an object) and
    /// checks the result against the caps.
    pub fn merge_patch(
        &self,
        patch: &Value,
        lim: &AttributeLimits,
    ) -> Result<Self, AttributeError> {
        let Value::Object(p) = patch else {
            return Err(AttributeError::NotAnObject);
        };
        if depth_of_map(p) > lim.max_depth {
            return Err(AttributeError::TooDeep { max: lim.max_depth });
        }
        let mut target = Value::Object(self.to_map());
        merge(&mut target, patch);
        Self::from_value(&target, lim)
    }

    /// Keeps only the named top-level attributes (absent names are ignored).
    #[must_use]
    pub fn retain_named(&self, names: &[String]) -> Self {
        if names.is_empty() {
            return Attributes::empty();
        }
        let mut map = self.to_map();
        map.retain(|k, _| names.iter().any(|n| n == k));
        match serde_json::to_string(&map) {
            Ok(t) => Attributes(t.into()),
            Err(_) => Attributes::empty(),
        }
    }
}

impl Default for Attributes {
    fn default() -> Self {
        Attributes::empty()
    }
}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Attributes({} bytes)", self.0.len())
    }
}

/// RFC 7396 §2 MergePatch(Target, Patch).
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

fn depth_of_map(m: &Map<String, Value>) -> usize {
    // Iterative, so hostile nesting cannot overflow the stack here.
    let mut max = 1;
    let mut stack: Vec<(&Value, usize)> = m.values().map(|v| (v, 2)).collect();
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Object(o) => {
                max = max.max(d);
                stack.extend(o.values().map(|c| (c, d + 1)));
            }
            Value::Array(a) => {
                max = max.max(d);
                stack.extend(a.iter().map(|c| (c, d + 1)));
            }
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    #[test]
    fn u0000_is_refused_wherever_it_comes_from() {
        let lim = AttributeLimits::default();
        for text in [
            r#"{"a":"x\u0000y"}"#,
            r#"{"k\u0000":1}"#,
            r#"{"a":{"b":["\u0000"]}}"#,
        ] {
            assert_eq!(
                Attributes::from_json(text, &lim),
                Err(AttributeError::NulCharacter),
                "{text}"
            );
        }
        let v: Value = serde_json::from_str(r#"{"a":"\u0000"}"#).unwrap();
        assert_eq!(
            Attributes::from_value(&v, &lim),
            Err(AttributeError::NulCharacter)
        );
        let base = Attributes::from_json(r#"{"a":1}"#, &lim).unwrap();
        assert_eq!(
            base.merge_patch(&v, &lim),
            Err(AttributeError::NulCharacter)
        );
        // An escaped backslash then "u0000" is text, not U+0000.
        assert!(Attributes::from_json(r#"{"a":"\\u0000"}"#, &lim).is_ok());
        assert!(Attributes::from_json(r#"{"a":"\u0001"}"#, &lim).is_ok());
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7396_examples() {
        let lim = AttributeLimits::default();
        let a = Attributes::from_value(&json!({"a":"b","c":{"d":"e","f":"g"}}), &lim).unwrap();
        let b = a
            .merge_patch(&json!({"a":"z","c":{"f":null}}), &lim)
            .unwrap();
        assert_eq!(b.to_value(), json!({"a":"z","c":{"d":"e"}}));
        assert_eq!(
            a.merge_patch(&json!([1]), &lim),
            Err(AttributeError::NotAnObject)
        );
    }

    #[test]
    fn caps() {
        let lim = AttributeLimits {
            max_bytes: 20,
            max_depth: 2,
        };
        assert!(Attributes::from_value(&json!({"a": "x".repeat(30)}), &lim).is_err());
        assert!(Attributes::from_value(&json!({"a": {"b": 1}}), &lim).is_ok());
        assert_eq!(
            Attributes::from_value(&json!({"a": {"b": {"c": 1}}}), &lim),
            Err(AttributeError::TooDeep { max: 2 })
        );
        assert_eq!(
            Attributes::from_value(&json!(3), &lim),
            Err(AttributeError::NotAnObject)
        );
    }

    #[test]
    fn stored_text_is_checked() {
        assert!(Attributes::from_stored(r#"{"a":[1,{"b":null}]}"#).is_ok());
        assert!(Attributes::from_stored(" {} ").unwrap().is_empty());
        for bad in ["", "[]", "3", "{", r#"{"a":}"#, "{} x"] {
            assert_eq!(
                Attributes::from_stored(bad),
                Err(AttributeError::Corrupt),
                "{bad:?}"
            );
        }
    }

    /// Found by the `attributes` fuzz target: serde_json's syntax check
    /// takes an unpaired surrogate escape and a float out of range, its
    /// parser does not, so such text read back as `{}` (`to_map`),
    /// silently. Refused as corrupt.
    #[test]
    fn stored_text_json_cannot_read_back_is_corrupt() {
        for bad in [
            // The fuzzer's inputs (minimized): a plain code unit then a
            // lone low surrogate; a float out of range.
            r#"{"name":"caf\u00af\u00e9 \"90123456\ud66d\ude00"}"#,
            r#"{"price":1.5e567890}"#,
            r#"{"a":[-1e309]}"#,
            r#"{"a":"\udc00"}"#,
            r#"{"a":"\ud83d"}"#,
            r#"{"a":"\ud83dx"}"#,
            r#"{"a":"\ud83d\u0041"}"#,
            r#"{"\ud83d":1}"#,
            r#"{"a":"\ud83d\ude00\ude00"}"#,
        ] {
            assert!(serde_json::from_str::<Value>(bad).is_err(), "{bad}");
            assert_eq!(
                Attributes::from_stored(bad),
                Err(AttributeError::Corrupt),
                "{bad}"
            );
        }
        for good in [
            r#"{"a":"\ud83d\ude00","b":"\\ud83d","c":"\\\ud83d\ude00x"}"#,
            r#"{"a":"\u00e9\uD83D\uDE00\uffff"}"#,
        ] {
            let a = Attributes::from_stored(good).unwrap();
            assert_eq!(a.to_value(), serde_json::from_str::<Value>(good).unwrap());
        }
    }

    /// Found by the `attributes` fuzz target: a float read back from the
    /// text it was written as must be the same float (serde_json parses
    /// floats exactly only with its `float_roundtrip` feature; without it,
    /// a value could come back one unit in the last place off, and every
    /// merge patch moved the floats it did not touch).
    #[test]
    fn floats_survive_their_text() {
        let lim = AttributeLimits::default();
        let big = "555555555555555555555555555555521";
        let exact: f64 = big.parse().unwrap();
        let a = Attributes::from_json(&format!(r#"{{"d":[{big},2],"x":0.1}}"#), &lim).unwrap();
        assert_eq!(a.get::<Vec<f64>>("d"), Some(vec![exact, 2.0]));
        let mut b = a.clone();
        for n in 0..3 {
            b = b.merge_patch(&json!({ "n": n }), &lim).unwrap();
            assert_eq!(b.get::<Vec<f64>>("d"), Some(vec![exact, 2.0]));
            assert_eq!(b.get::<f64>("x"), Some(0.1));
        }
    }

    #[test]
    fn retain() {
        let lim = AttributeLimits::default();
        let a = Attributes::from_value(&json!({"cart":1,"theme":2,"x":3}), &lim).unwrap();
        let names = vec!["cart".to_string(), "missing".to_string()];
        assert_eq!(a.retain_named(&names).to_value(), json!({"cart":1}));
        assert!(a.retain_named(&[]).is_empty());
    }
}
