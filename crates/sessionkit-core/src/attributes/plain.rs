//! The fast path of [`Attributes::from_json`](super::Attributes::from_json)
//! for *plain* JSON: strings without escapes, integers of at most 18
//! digits, `true`, `false`, `null`, objects and arrays, any whitespace.
//! Attributes are nearly always plain, and for plain text the compact
//! encoding is the input with the whitespace between tokens dropped, so it
//! is copied in one scan instead of being parsed by serde_json and written
//! again token by token.
//!
//! The scan checks the syntax of the plain subset strictly and gives up
//! (`None`) at the first thing it does not know to be plain *and* fine: an
//! escape, a fraction or exponent, a long or `-0` number, a repeated key,
//! nesting past the cap, an encoding over the cap, or a syntax error. The
//! streaming path ([`super::stream`]) then does the work and names the
//! error, so this path never decides a refusal. Its contract, pinned by a
//! differential property test: whenever it returns text, the streaming
//! path returns the same text.

use super::AttributeLimits;
use super::stream::SeenKeys;

/// Deepest nesting this path follows (serde_json's own limit is 128; past
/// it the streaming path must be the one to refuse).
const MAX_DEPTH: usize = 100;
/// Longest integer copied as it is: every 18-digit integer fits `i64` and
/// `u64`, which serde_json writes back digit for digit.
const MAX_DIGITS: usize = 18;

/// The compact encoding of `text` if it is plain, fine, and within `lim`.
pub(super) fn encode(text: &str, lim: &AttributeLimits) -> Option<String> {
    let mut s = Scan {
        b: text.as_bytes(),
        i: 0,
        out: Vec::with_capacity(text.len().min(lim.max_bytes)),
        max_bytes: lim.max_bytes,
        max_depth: lim.max_depth.min(MAX_DEPTH),
    };
    s.ws();
    if s.peek()? != b'{' {
        return None;
    }
    s.value(1)?;
    s.ws();
    if s.i != s.b.len() {
        return None;
    }
    // Only whole ASCII tokens and whole strings of a `&str` were copied.
    String::from_utf8(s.out).ok()
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    out: Vec<u8>,
    max_bytes: usize,
    max_depth: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// Copies `n` input bytes from the cursor, if the output stays in the
    /// cap.
    fn copy(&mut self, n: usize) -> Option<()> {
        let end = self.i.checked_add(n)?;
        let bytes = self.b.get(self.i..end)?;
        if self.out.len() + n > self.max_bytes {
            return None;
        }
        self.out.extend_from_slice(bytes);
        self.i = end;
        Some(())
    }

    /// One value at the cursor; `depth` is the depth it has if it is a
    /// container.
    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => self.string(),
            b'-' | b'0'..=b'9' => self.integer(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if !self.b[self.i..].starts_with(word) {
            return None;
        }
        self.copy(word.len())
    }

    /// A string without escapes or control characters, quotes included.
    fn string(&mut self) -> Option<()> {
        let body = self.b.get(self.i + 1..)?;
        let len = body
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if body[len] != b'"' {
            return None;
        }
        self.copy(len + 2)
    }

    /// `-?(0|[1-9][0-9]*)` of at most [`MAX_DIGITS`] digits, not `-0`,
    /// not followed by a fraction or an exponent.
    fn integer(&mut self) -> Option<()> {
        let neg = usize::from(self.peek() == Some(b'-'));
        let digits = self.b[self.i + neg..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let first = *self.b.get(self.i + neg)?;
        let plain = digits > 0
            && digits <= MAX_DIGITS
            && (first != b'0' || (digits == 1 && neg == 0))
            && !matches!(self.b.get(self.i + neg + digits), Some(b'.' | b'e' | b'E'));
        if !plain {
            return None;
        }
        self.copy(neg + digits)
    }

    /// Copies the opening bracket of a container at `depth`; `Some(true)`
    /// when it closes at once with `close` (copied too).
    fn open(&mut self, depth: usize, close: u8) -> Option<bool> {
        if depth > self.max_depth {
            return None;
        }
        self.copy(1)?;
        self.ws();
        if self.peek()? == close {
            self.copy(1)?;
            return Some(true);
        }
        Some(false)
    }

    /// After an element: copies a `,` (`Some(true)`: another follows) or
    /// the container's `close` (`Some(false)`).
    fn next(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let c = self.peek()?;
        if c != b',' && c != close {
            return None;
        }
        self.copy(1)?;
        self.ws();
        Some(c == b',')
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        if self.open(depth, b']')? {
            return Some(());
        }
        loop {
            self.value(depth + 1)?;
            if !self.next(b']')? {
                return Some(());
            }
        }
    }

    fn object(&mut self, depth: usize) -> Option<()> {
        if self.open(depth, b'}')? {
            return Some(());
        }
        let mut seen = SeenKeys::new();
        loop {
            if self.peek()? != b'"' {
                return None;
            }
            let start = self.out.len();
            self.string()?;
            if !seen.insert(&self.out, (start, self.out.len())) {
                return None;
            }
            self.ws();
            if self.peek()? != b':' {
                return None;
            }
            self.copy(1)?;
            self.ws();
            self.value(depth + 1)?;
            if !self.next(b'}')? {
                return Some(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn lim() -> AttributeLimits {
        AttributeLimits::default()
    }

    #[test]
    fn plain_text_is_copied_without_its_whitespace() {
        let text = "{ \"cart\": [101, 202, -3], \"theme\" :\"dark\",\n\t\"f\": {\"b\": true, \"n\": null, \"z\": 0, \"e\": {}, \"a\": []}}";
        let want =
            r#"{"cart":[101,202,-3],"theme":"dark","f":{"b":true,"n":null,"z":0,"e":{},"a":[]}}"#;
        assert_eq!(encode(text, &lim()).as_deref(), Some(want));
        assert_eq!(super::super::stream::encode(text, &lim()).unwrap(), want);
    }

    #[test]
    fn anything_not_plain_or_not_fine_is_left_to_the_streaming_path() {
        for text in [
            r#"{"a":"x\"y"}"#,
            r#"{"a":"\u0041"}"#,
            r#"{"a":1.0}"#,
            r#"{"a":1e3}"#,
            r#"{"a":-0}"#,
            r#"{"a":01}"#,
            r#"{"a":1234567890123456789}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":tru}"#,
            r#"{"a":1,}"#,
            r#"{"a":[1,]}"#,
            r#"{"a" 1}"#,
            r#"{"a":1} x"#,
            "{\"a\":\"\u{1}\"}",
            r#"[1]"#,
            r#"{"a":1"#,
            r#"{"a":"#,
            r#"{"a":-}"#,
            "",
        ] {
            assert_eq!(encode(text, &lim()), None, "{text}");
        }
        let tight = AttributeLimits {
            max_bytes: 8,
            max_depth: 2,
        };
        assert_eq!(encode(r#"{"a":"123"}"#, &tight), None, "over the size cap");
        assert_eq!(encode(r#"{"a":1}"#, &tight).as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(
            encode(r#"{"a":{"b":[]}}"#, &tight),
            None,
            "over the depth cap"
        );
        assert_eq!(
            encode(r#"{"a":{}}"#, &tight).as_deref(),
            Some(r#"{"a":{}}"#)
        );
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            (-1000i64..1000).prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            "[a-z\"\\\\/\u{0}-\u{1f}\u{e9}\u{1f600} ]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-c\"\\\\]{0,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Inserts whitespace and, sometimes, breaks the text: the plain path
    /// must agree with the streaming path whenever it answers at all.
    fn mangle(text: &str, spaces: &[usize], cut: Option<usize>, dup: bool) -> String {
        let mut out = String::new();
        for (i, c) in text.char_indices() {
            if spaces.contains(&i) {
                out.push_str(" \n");
            }
            out.push(c);
        }
        if let Some(at) = cut {
            let mut at = at % (out.len() + 1);
            while !out.is_char_boundary(at) {
                at -= 1;
            }
            out.truncate(at);
        }
        if dup && out.starts_with("{\"") {
            // A repeated first key (when the object has one).
            if let Some(end) = out[1..].find("\":").map(|e| e + 1) {
                let key = out[1..=end].to_owned();
                out = format!("{{{key}:0,{}", &out[1..]);
            }
        }
        out
    }

    proptest! {
        #[test]
        fn whenever_it_answers_it_agrees_with_the_streaming_path(
            v in value(),
            spaces in prop::collection::vec(0usize..64, 0..6),
            cut in prop::option::weighted(0.2, 0usize..200),
            dup in prop::bool::weighted(0.2),
            max_bytes in prop::sample::select(vec![4usize, 16, 40, 16 * 1024]),
            max_depth in 1usize..5,
        ) {
            let v = match v {
                Value::Object(_) => v,
                other => json!({ "k": other }),
            };
            let lim = AttributeLimits { max_bytes, max_depth };
            for text in [serde_json::to_string(&v).unwrap(), serde_json::to_string_pretty(&v).unwrap()] {
                let text = mangle(&text, &spaces, cut, dup);
                if let Some(fast) = encode(&text, &lim) {
                    prop_assert_eq!(super::super::stream::encode(&text, &lim).ok(), Some(fast), "{}", text);
                }
            }
        }
    }
}
