//! Session attributes from JSON text a client sends (a create request's
//! attributes) and the RFC 7396 merge patches of `PATCH`, under the
//! default limits (16 KiB, depth 16): never a panic, and never a result
//! that disagrees with serde_json.
//!
//! Input: `<document>` or `<document>\0<patch>` (a NUL byte cannot be in
//! JSON text, so it splits the two), as lossy UTF-8; without a patch, the
//! document is also its own patch.
//!
//! - `Attributes::from_json` of the document is checked against
//!   serde_json: what it accepts, serde_json parses to the same object,
//!   `Attributes::from_value` of that object accepts with text of the
//!   same length, and `from_json` of its own text gives that text back;
//!   what it refuses while `from_value` of serde_json's reading accepts
//!   must be a repeated key (which serde_json silently collapses).
//! - `Attributes::from_stored` (what the durable stores decode) of the
//!   document.
//! - `Attributes::merge_patch` (what the engine's `patch_attributes`
//!   calls) of the patch onto the decoded attributes (`{}` when refused),
//!   checked against a reference merge of serde_json values and the caps.
//! - `Attributes::get` of every key, and `retain_named`, on the result.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sessionkit_core::{AttributeError, AttributeLimits, Attributes};

/// RFC 7396 §2 MergePatch(Target, Patch), written from the RFC.
fn reference_merge(target: Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    let mut t = match target {
        Value::Object(t) => t,
        _ => serde_json::Map::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            let old = t.remove(k).unwrap_or(Value::Null);
            t.insert(k.clone(), reference_merge(old, v));
        }
    }
    Value::Object(t)
}

/// What any accepted attributes must satisfy.
fn check_accepted(a: &Attributes, lim: &AttributeLimits) {
    assert!(a.len() <= lim.max_bytes, "{} bytes", a.len());
    let v: Value = serde_json::from_str(a.as_json()).expect("own text is JSON");
    assert!(v.is_object());
    assert_eq!(a.to_value(), v);
    assert!(Attributes::from_stored(a.as_json()).is_ok());
    let again = Attributes::from_json(a.as_json(), lim).expect("own text accepted");
    assert_eq!(again.as_json(), a.as_json());
    let map = a.to_map();
    for (k, v) in &map {
        assert_eq!(a.get::<Value>(k).as_ref(), Some(v), "key {k:?}");
    }
    if let Some(first) = map.keys().next() {
        let kept = a.retain_named(std::slice::from_ref(first));
        assert_eq!(kept.to_map().len(), 1);
    }
}

fn from_json(text: &str, lim: &AttributeLimits) -> Attributes {
    let got = Attributes::from_json(text, lim);
    let parsed = serde_json::from_str::<Value>(text);
    match &got {
        Ok(a) => {
            let v = parsed.expect("from_json accepted what serde_json refuses");
            assert_eq!(a.to_value(), v);
            let b = Attributes::from_value(&v, lim).expect("from_value refuses it");
            assert_eq!(b.len(), a.len(), "{} vs {}", a.as_json(), b.as_json());
            check_accepted(a, lim);
        }
        Err(e) => {
            if let Ok(v) = &parsed
                && Attributes::from_value(v, lim).is_ok()
            {
                assert!(
                    matches!(e, AttributeError::DuplicateKey { .. }),
                    "from_json refused ({e}) what from_value accepts"
                );
            }
        }
    }
    if let Ok(s) = Attributes::from_stored(text) {
        assert!(matches!(
            serde_json::from_str::<Value>(s.as_json()),
            Ok(Value::Object(_))
        ));
    }
    got.unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let lim = AttributeLimits::default();
    let (doc, patch) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, data),
    };
    let base = from_json(&String::from_utf8_lossy(doc), &lim);
    let Ok(p) = serde_json::from_str::<Value>(&String::from_utf8_lossy(patch)) else {
        return;
    };
    match base.merge_patch(&p, &lim) {
        Ok(merged) => {
            assert_eq!(merged.to_value(), reference_merge(base.to_value(), &p));
            check_accepted(&merged, &lim);
        }
        Err(AttributeError::NotAnObject) => assert!(!p.is_object()),
        Err(_) => {}
    }
});
