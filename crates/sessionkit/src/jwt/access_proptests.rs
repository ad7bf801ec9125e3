//! Property tests of verification: no input panics it, and no change to a
//! valid token gets through.

use std::sync::LazyLock;

use proptest::prelude::*;

use super::tests::{ALGS, NOW, claims, expect, ring};
use super::*;

/// One ring and valid token per algorithm, for the property tests.
static FIXTURE: LazyLock<Vec<(KeyRing, String)>> = LazyLock::new(|| {
    ALGS.iter()
        .map(|&alg| {
            let r = ring(alg);
            let t = r.sign_access(&claims()).unwrap();
            (r, t)
        })
        .collect()
});

proptest! {
    #[test]
    fn never_panics_on_arbitrary_text(s in any::<String>(), t in "[A-Za-z0-9_.=-]{0,400}") {
        for (r, _) in FIXTURE.iter() {
            let _ = r.verify_access(&s, &expect(), NOW);
            prop_assert!(r.verify_access(&t, &expect(), NOW).is_err());
        }
    }

    /// Any change to a valid token is refused, and nothing panics.
    #[test]
    fn mutations_of_a_valid_token_are_invalid(
        which in 0usize..3,
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        op in 0u8..4,
    ) {
        let (r, token) = &FIXTURE[which];
        let mut bytes = token.as_bytes().to_vec();
        let i = at.index(bytes.len());
        match op {
            0 => bytes[i] = byte,
            1 => bytes[i] ^= 1 << (byte % 8),
            2 => bytes.truncate(i),
            _ => bytes.insert(i, byte),
        }
        let mutated = String::from_utf8_lossy(&bytes).into_owned();
        let got = r.verify_access(&mutated, &expect(), NOW);
        if mutated == *token {
            prop_assert!(got.is_ok());
        } else {
            prop_assert_eq!(got, Err(AccessError::Invalid));
        }
    }
}
