//! `Attributes::from_json` against `from_value` of the parsed value, and
//! each way it refuses text.

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::attributes::{AttributeError, AttributeLimits, Attributes};

fn lim(max_bytes: usize, max_depth: usize) -> AttributeLimits {
    AttributeLimits {
        max_bytes,
        max_depth,
    }
}

fn from_json(text: &str) -> Result<Attributes, AttributeError> {
    Attributes::from_json(text, &AttributeLimits::default())
}

#[test]
fn compact_in_input_order() {
    let a = from_json(" {\n \"b\" : 1 ,\t\"a\" : [ 1 , { } , [ ] , null , true , false ] }\r\n")
        .unwrap();
    assert_eq!(a.as_json(), r#"{"b":1,"a":[1,{},[],null,true,false]}"#);
    assert!(from_json("{}").unwrap().is_empty());
    assert!(from_json(" { } ").unwrap().is_empty());
}

#[test]
fn strings_and_numbers_as_serde_json_writes_them() {
    // Keys already sorted, so from_value's text is comparable byte for byte.
    let text = r#"{"a":"x\u0041\/\n\u00e9é\ud83d\ude00\u001f\"\\","b":1e2,"c":-0,"d":18446744073709551616,
        "e":-9223372036854775808,"f":1.5E-7,"g":18446744073709551615,"h":0.1,"i":-12,"j":1E+300}"#;
    let v: Value = serde_json::from_str(text).unwrap();
    let want = Attributes::from_value(&v, &AttributeLimits::default()).unwrap();
    assert_eq!(from_json(text).unwrap().as_json(), want.as_json());
}

#[test]
fn anything_but_an_object_is_not_an_object() {
    for text in [
        "[]", "[{}]", "3", "-1.5", "\"x\"", "null", " true ", "\n[1, 2]",
    ] {
        assert_eq!(
            from_json(text),
            Err(AttributeError::NotAnObject),
            "{text:?}"
        );
    }
}

#[test]
fn invalid_json_and_trailing_text_are_refused() {
    for text in [
        "",
        "   ",
        "{",
        "{} x",
        "{}{}",
        "{},",
        r#"{"a":}"#,
        r#"{"a":1,}"#,
        "{'a':1}",
        "x",
        "[1,",
        r#"{"a":1e400}"#,
        r#"{"a":"\ud800"}"#,
        r#"{"a":01}"#,
        r#"{a:1}"#,
        "{\"a\":\"\u{1}\"}",
    ] {
        assert!(
            matches!(from_json(text), Err(AttributeError::InvalidJson { .. })),
            "{text:?}: {:?}",
            from_json(text)
        );
    }
    let e = from_json("{} x").unwrap_err();
    assert!(e.to_string().contains("not valid JSON"), "{e}");
}

#[test]
fn depth_is_capped_as_from_value_caps_it() {
    let l = lim(1024, 2);
    for ok in [r#"{"a":{"b":1}}"#, r#"{"a":[1,2]}"#, r#"{"a":1,"b":{}}"#] {
        assert!(Attributes::from_json(ok, &l).is_ok(), "{ok}");
    }
    for deep in [
        r#"{"a":{"b":{}}}"#,
        r#"{"a":[[1]]}"#,
        r#"{"x":1,"a":[{"b":[]}]}"#,
    ] {
        assert_eq!(
            Attributes::from_json(deep, &l),
            Err(AttributeError::TooDeep { max: 2 }),
            "{deep}"
        );
    }
    assert_eq!(
        Attributes::from_json(r#"{"a":[]}"#, &lim(1024, 1)),
        Err(AttributeError::TooDeep { max: 1 })
    );
    assert!(Attributes::from_json(r#"{"a":1}"#, &lim(1024, 1)).is_ok());
    // Hostile nesting is refused at the cap, long before any stack limit.
    let hostile = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(
        from_json(&hostile),
        Err(AttributeError::TooDeep { max: 16 })
    );
}

#[test]
fn size_is_capped_and_the_encoding_stops_early() {
    let text = r#"{ "a" : "0123456789" }"#; // compact: {"a":"0123456789"}, 18 bytes
    assert_eq!(Attributes::from_json(text, &lim(18, 4)).unwrap().len(), 18);
    assert!(matches!(
        Attributes::from_json(text, &lim(17, 4)),
        Err(AttributeError::TooLarge { max: 17, size }) if size > 17
    ));
    // A huge array: refused as soon as the cap is passed.
    let huge = format!("{{\"a\":[{}1]}}", "1,".repeat(500_000));
    match Attributes::from_json(&huge, &lim(100, 4)) {
        Err(AttributeError::TooLarge { size, max: 100 }) => assert!(size <= 102, "{size}"),
        other => panic!("{other:?}"),
    }
    // A huge string is refused before it is copied.
    let long = format!("{{\"a\":\"{}\"}}", "x".repeat(1 << 20));
    assert!(matches!(
        Attributes::from_json(&long, &lim(100, 4)),
        Err(AttributeError::TooLarge { max: 100, .. })
    ));
    // Shrinking escapes count as what they encode to.
    let escaped = format!("{{\"a\":\"{}\"}}", "\\u0041".repeat(10));
    assert_eq!(
        Attributes::from_json(&escaped, &lim(18, 4)).unwrap().len(),
        18
    );
}

#[test]
fn repeated_keys_are_refused_at_any_depth() {
    for text in [
        r#"{"a":1,"a":2}"#,
        r#"{"a":1,"b":2,"a":1}"#,
        r#"{"x":{"k":1,"k":2}}"#,
        r#"{"x":[{"k":1,"k":1}]}"#,
        r#"{"aA":1,"a\u0041":2}"#,
        r#"{"\n":1,"\u000a":2}"#,
    ] {
        assert!(
            matches!(from_json(text), Err(AttributeError::DuplicateKey { .. })),
            "{text}: {:?}",
            from_json(text)
        );
    }
    assert_eq!(
        from_json(r#"{"a":1,"a":2}"#),
        Err(AttributeError::DuplicateKey {
            key: "\"a\"".into()
        })
    );
    assert_eq!(
        from_json(r#"{"a":1,"a":2}"#).unwrap_err().to_string(),
        r#"attributes have a duplicate key: "a""#
    );
    // The same key in different objects is fine.
    for text in [
        r#"{"x":{"k":1},"y":{"k":2},"k":3}"#,
        r#"{"k":{"k":{"k":[{"k":1},{"k":2}]}}}"#,
    ] {
        assert!(from_json(text).is_ok(), "{text}");
    }
}

/// An object of `n` keys `k0…`, then `extra` keys, as text.
fn object(n: usize, extra: &[&str]) -> String {
    let mut members: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{i}")).collect();
    members.extend(extra.iter().map(|k| format!("\"{k}\":0")));
    format!("{{{}}}", members.join(","))
}

#[test]
fn repeated_keys_are_found_in_objects_of_any_size() {
    for n in 1..40 {
        assert!(from_json(&object(n, &[])).is_ok(), "{n}");
        for dup in [0, n / 2, n - 1] {
            let k = format!("k{dup}");
            let text = object(n, &[&k]);
            assert_eq!(
                from_json(&text),
                Err(AttributeError::DuplicateKey {
                    key: format!("\"{k}\"")
                }),
                "{text}"
            );
        }
    }
    // A big object around big and small ones: each keeps its own keys.
    let inner = object(20, &[]);
    let small = object(3, &[]);
    let text = format!(
        "{{{},\"in\":{inner},\"sm\":{small},\"last\":{inner}}}",
        (0..12)
            .map(|i| format!("\"k{i}\":1"))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert!(from_json(&text).is_ok(), "{text}");
    let text = format!("{}{}", &text[..text.len() - 1], ",\"in\":1}");
    assert!(matches!(
        from_json(&text),
        Err(AttributeError::DuplicateKey { .. })
    ));
    // Many keys, none repeated: linear time, not quadratic.
    let big = object(100_000, &[]);
    assert_eq!(
        Attributes::from_json(&big, &lim(1 << 24, 4)).unwrap().len(),
        big.len()
    );
}

#[test]
fn same_value_as_from_value() {
    let v = json!({"cart": [101, 202, 303], "theme": "dark", "flags": {"beta": true, "n": 7}});
    let text = serde_json::to_string_pretty(&v).unwrap();
    let a = from_json(&text).unwrap();
    assert_eq!(a.to_value(), v);
    assert_eq!(
        a,
        Attributes::from_value(&v, &AttributeLimits::default()).unwrap()
    );
}

/// A JSON document with its numbers kept as the text they were written as
/// and its keys in order (and unique within each object).
#[derive(Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

/// How a document is written out.
#[derive(Debug, Clone, Copy)]
struct Style {
    /// Whitespace around every token.
    ws: &'static str,
    /// Escape every character outside printable ASCII (and `/`) as `\uXXXX`.
    escape_all: bool,
}

fn render_str(s: &str, style: Style, out: &mut String) {
    if !style.escape_all {
        out.push_str(&serde_json::to_string(s).unwrap());
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
}

fn render(j: &J, style: Style, out: &mut String) {
    let ws = style.ws;
    match j {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Num(n) => out.push_str(n),
        J::Str(s) => render_str(s, style, out),
        J::Arr(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(ws);
                render(x, style, out);
                out.push_str(ws);
            }
            out.push(']');
        }
        J::Obj(members) => {
            out.push('{');
            for (i, (k, x)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(ws);
                render_str(k, style, out);
                out.push_str(ws);
                out.push(':');
                out.push_str(ws);
                render(x, style, out);
                out.push_str(ws);
            }
            out.push('}');
        }
    }
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f}")),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        any::<f32>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:E}")),
        "-?[1-9][0-9]{19,30}",
        "-?(0|[1-9][0-9]{0,6})(\\.[0-9]{1,10})?([eE][+-]?[0-9]{1,2})?",
        Just("-0".to_string()),
        Just("-0.0".to_string()),
        Just("0e0".to_string()),
    ]
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{0,3}",
        any::<String>(),
        "[\\x00-\\x1f\"\\\\/é€😀 a]{0,6}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof!["[a-c]{1,2}", string()]
}

/// Keeps the first of each key.
fn unique(members: Vec<(String, J)>) -> J {
    let mut seen = std::collections::HashSet::new();
    J::Obj(
        members
            .into_iter()
            .filter(|(k, _)| seen.insert(k.clone()))
            .collect(),
    )
}

fn json() -> impl Strategy<Value = J> {
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        number().prop_map(J::Num),
        string().prop_map(J::Str),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(J::Arr),
            prop::collection::vec((key(), inner), 0..6).prop_map(unique),
        ]
    })
}

fn not_an_object() -> impl Strategy<Value = J> {
    prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        number().prop_map(J::Num),
        string().prop_map(J::Str),
        prop::collection::vec(json(), 0..4).prop_map(J::Arr),
    ]
}

fn object_doc() -> impl Strategy<Value = J> {
    prop::collection::vec((key(), json()), 0..8).prop_map(unique)
}

fn style() -> impl Strategy<Value = Style> {
    (
        prop::sample::select(vec!["", " ", "\n  ", "\r\n\t", "  \n"]),
        any::<bool>(),
    )
        .prop_map(|(ws, escape_all)| Style { ws, escape_all })
}

fn limits() -> impl Strategy<Value = AttributeLimits> {
    prop_oneof![
        Just(AttributeLimits::default()),
        (2usize..400, 1usize..8).prop_map(|(b, d)| lim(b, d)),
    ]
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn from_json_agrees_with_from_value(doc in object_doc(), style in style(), lim in limits()) {
        let mut text = String::new();
        render(&doc, style, &mut text);
        let v: Value = serde_json::from_str(&text).unwrap();
        let want = Attributes::from_value(&v, &lim);
        let got = Attributes::from_json(&text, &lim);
        match (&want, &got) {
            (Ok(w), Ok(g)) => {
                // Same length: as compact, with the same tokens.
                prop_assert_eq!(g.len(), w.len());
                // The same value. Both texts are parsed back: serde_json's
                // default float parsing is not exact (no `float_roundtrip`),
                // so `v` itself may differ from a parse of its own text in
                // the last bit of a float; from_value's text does too.
                prop_assert_eq!(g.to_value(), w.to_value());
            }
            (Err(AttributeError::NulCharacter), Err(AttributeError::NulCharacter)) => {}
            (Err(AttributeError::TooDeep { max: a }), Err(AttributeError::TooDeep { max: b })) => {
                prop_assert_eq!(a, b);
            }
            (
                Err(AttributeError::TooLarge { max: a, .. }),
                Err(AttributeError::TooLarge { max: b, size }),
            ) => {
                prop_assert_eq!(a, b);
                prop_assert!(*size > *b);
            }
            (Err(AttributeError::TooDeep { .. }), Err(AttributeError::TooLarge { .. }))
            | (Err(AttributeError::TooLarge { .. }), Err(AttributeError::TooDeep { .. })) => {
                // Both caps broken: each reports the one it met first.
                // The size of the compact text (NUL or not).
                let size = serde_json::to_string(&v).unwrap().len();
                prop_assert!(size > lim.max_bytes && depth(&v) > lim.max_depth);
            }
            _ => prop_assert!(false, "from_value {:?}, from_json {:?}", want, got),
        }
    }

    #[test]
    fn not_an_object_agrees(doc in not_an_object(), style in style()) {
        let mut text = String::new();
        render(&doc, style, &mut text);
        let v: Value = serde_json::from_str(&text).unwrap();
        let lim = AttributeLimits::default();
        prop_assert_eq!(Attributes::from_value(&v, &lim), Err(AttributeError::NotAnObject));
        prop_assert_eq!(Attributes::from_json(&text, &lim), Err(AttributeError::NotAnObject));
    }

    #[test]
    fn garbage_never_panics(text in "[\\[\\]{}\",:0-9a-z\\\\ .eE+-]{0,40}") {
        let lim = AttributeLimits { max_bytes: 64, max_depth: 3 };
        if let Ok(a) = Attributes::from_json(&text, &lim) {
            let v: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(a.to_value(), v);
        }
    }
}
