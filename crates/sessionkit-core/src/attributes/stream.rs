//! [`Attributes::from_json`](super::Attributes::from_json): raw JSON text
//! checked and re-encoded compactly in one streaming pass, without building
//! a `serde_json::Value` tree.
//!
//! serde_json's deserializer drives a visitor that writes each token into
//! the output as it arrives; strings and numbers are written by serde_json's
//! own serializer, so the text is what `serde_json::to_string` of the same
//! value would write, except that keys keep their input order (a `Value`
//! sorts them). Depth, size and repeated keys are checked on the way: an
//! oversized object is abandoned as soon as it passes the cap.

use std::fmt;
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{AttributeError, AttributeLimits};

/// Keys of one object are compared one by one up to this many; past it,
/// through a hash table (so a big object costs linear time, not quadratic).
const LINEAR_KEYS: usize = 8;

/// Checks `text` (a JSON object) against `lim` and returns its compact
/// encoding.
pub(super) fn encode(text: &str, lim: &AttributeLimits) -> Result<String, AttributeError> {
    let first = text
        .bytes()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(b'{') {
        // Not an object: say so when it is valid JSON, else that it is not.
        return match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => Err(AttributeError::NotAnObject),
            Err(e) => Err(invalid(&e)),
        };
    }
    let mut enc = Encoder {
        out: Vec::with_capacity(text.len().min(lim.max_bytes)),
        lim: *lim,
        err: None,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let done = Node {
        enc: &mut enc,
        depth: 1,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    if let Some(e) = enc.err {
        return Err(e);
    }
    if let Err(e) = done {
        return Err(invalid(&e));
    }
    // Every byte written came from a `&str` or from serde_json's
    // serializer, so this cannot fail; if it did, it is an error, not a
    // panic.
    String::from_utf8(enc.out).map_err(|_| AttributeError::InvalidJson {
        reason: "not UTF-8".into(),
    })
}

fn invalid(e: &serde_json::Error) -> AttributeError {
    AttributeError::InvalidJson {
        reason: e.to_string(),
    }
}

/// The output and what the checks need while the text is walked.
struct Encoder {
    /// Compact JSON written so far.
    out: Vec<u8>,
    lim: AttributeLimits,
    /// Why the walk stopped, when a check (not the syntax) stopped it.
    err: Option<AttributeError>,
}

impl Encoder {
    /// Records why the walk stops and returns the error that stops it.
    fn fail<E: de::Error>(&mut self, e: AttributeError) -> E {
        self.err = Some(e);
        E::custom("attributes refused")
    }

    /// Fails once the output passes the cap (it only grows, so the first
    /// time it does is the time to stop).
    fn fits<E: de::Error>(&mut self) -> Result<(), E> {
        if self.out.len() > self.lim.max_bytes {
            let e = AttributeError::TooLarge {
                size: self.out.len(),
                max: self.lim.max_bytes,
            };
            return Err(self.fail(e));
        }
        Ok(())
    }

    /// Writes `v` as serde_json writes it (numbers, escaped strings).
    fn write<E: de::Error, T: serde::Serialize + ?Sized>(&mut self, v: &T) -> Result<(), E> {
        if let Err(e) = serde_json::to_writer(&mut self.out, v) {
            return Err(self.fail(AttributeError::InvalidJson {
                reason: e.to_string(),
            }));
        }
        self.fits()
    }

    /// Writes a string, refusing it before writing when it cannot fit
    /// (its encoding is at least its length plus two quotes).
    fn write_str<E: de::Error>(&mut self, s: &str) -> Result<(), E> {
        let least = self.out.len().saturating_add(s.len()).saturating_add(2);
        if least > self.lim.max_bytes {
            let e = AttributeError::TooLarge {
                size: least,
                max: self.lim.max_bytes,
            };
            return Err(self.fail(e));
        }
        self.write(s)
    }

    fn push<E: de::Error>(&mut self, b: u8) -> Result<(), E> {
        self.out.push(b);
        self.fits()
    }

    /// Refuses a container that would sit at `depth`.
    fn enter<E: de::Error>(&mut self, depth: usize, open: u8) -> Result<(), E> {
        if depth > self.lim.max_depth {
            let e = AttributeError::TooDeep {
                max: self.lim.max_depth,
            };
            return Err(self.fail(e));
        }
        self.push(open)
    }

    /// Refuses the key just written at `key` if `seen` (the keys of the
    /// same object) already has it; otherwise adds it.
    fn check_key<E: de::Error>(&mut self, seen: &mut SeenKeys, key: Span) -> Result<(), E> {
        if seen.insert(&self.out, key) {
            return Ok(());
        }
        let key = String::from_utf8_lossy(&self.out[key.0..key.1]).into_owned();
        Err(self.fail(AttributeError::DuplicateKey { key }))
    }
}

/// Where a key was written in the output: `out[.0...1]`, escaped and
/// quoted, so equal keys are equal bytes (serde_json escapes one way only).
pub(super) type Span = (usize, usize);

/// The keys of one object so far. The first [`LINEAR_KEYS`] sit in an
/// inline array and are compared one by one (no allocation for the small
/// objects attributes mostly are); past that they move into a hash table
/// with a random seed, so a big object costs linear time, not quadratic.
pub(super) struct SeenKeys {
    few: [Span; LINEAR_KEYS],
    len: usize,
    many: Option<(HashTable<Span>, RandomState)>,
}

impl SeenKeys {
    pub(super) fn new() -> Self {
        SeenKeys {
            few: [(0, 0); LINEAR_KEYS],
            len: 0,
            many: None,
        }
    }

    /// Adds `key`; false if the object already has it.
    pub(super) fn insert(&mut self, out: &[u8], key: Span) -> bool {
        let bytes = |k: &Span| out.get(k.0..k.1).unwrap_or_default();
        let new = bytes(&key);
        if let Some((table, hasher)) = &mut self.many {
            let h = hasher.hash_one(new);
            if table.find(h, |k| bytes(k) == new).is_some() {
                return false;
            }
            table.insert_unique(h, key, |k| hasher.hash_one(bytes(k)));
            return true;
        }
        let few = &self.few[..self.len];
        if few.iter().any(|k| bytes(k) == new) {
            return false;
        }
        if self.len < LINEAR_KEYS {
            self.few[self.len] = key;
            self.len += 1;
            return true;
        }
        let hasher = RandomState::new();
        let mut table = HashTable::with_capacity(4 * LINEAR_KEYS);
        for k in few.iter().chain([&key]) {
            table.insert_unique(hasher.hash_one(bytes(k)), *k, |k| hasher.hash_one(bytes(k)));
        }
        self.many = Some((table, hasher));
        true
    }
}

/// One JSON value, written into the encoder; `depth` is the depth it has
/// if it is an object or an array (the top-level object is 1).
struct Node<'e> {
    enc: &'e mut Encoder,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.enc.write(&v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.enc.write(&v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.enc.write(&v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.enc.write(&v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.enc.write_str(v)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.enc.write(&())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Node { enc, depth } = self;
        enc.enter(depth, b'[')?;
        let mut first = true;
        loop {
            let mark = enc.out.len();
            if !first {
                enc.push(b',')?;
            }
            let next = Node {
                enc: &mut *enc,
                depth: depth + 1,
            };
            if seq.next_element_seed(next)?.is_none() {
                enc.out.truncate(mark);
                break;
            }
            first = false;
        }
        enc.push(b']')
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Node { enc, depth } = self;
        enc.enter(depth, b'{')?;
        let mut seen = SeenKeys::new();
        let mut first = true;
        loop {
            let mark = enc.out.len();
            if !first {
                enc.push(b',')?;
            }
            let start = enc.out.len();
            if map.next_key_seed(Key { enc: &mut *enc })?.is_none() {
                enc.out.truncate(mark);
                break;
            }
            first = false;
            let key = (start, enc.out.len());
            enc.check_key(&mut seen, key)?;
            enc.push(b':')?;
            map.next_value_seed(Node {
                enc: &mut *enc,
                depth: depth + 1,
            })?;
        }
        enc.push(b'}')
    }
}

/// An object key, written as an escaped string.
struct Key<'e> {
    enc: &'e mut Encoder,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.enc.write_str(v)
    }
}

#[cfg(test)]
mod tests;
