//! Characters that change how text *looks* without being seen: bidi
//! controls (U+202E makes `gpj.exe` read `exe.jpg`), zero-width characters
//! and line separators. Subjects and device names refuse them (operators
//! read both in device lists and logs); user agents, which the client
//! writes, have them removed.

/// Whether `c` is a control character (C0, C1, DEL) or an invisible
/// formatting character: bidi embeddings, overrides, isolates and marks,
/// zero-width space / joiners / word joiner / BOM, and the line and
/// paragraph separators.
#[must_use]
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'                       // Arabic letter mark
            | '\u{200B}'..='\u{200F}'        // zero-width space, joiners, LRM, RLM
            | '\u{2028}' | '\u{2029}'        // line and paragraph separators
            | '\u{202A}'..='\u{202E}'        // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}'        // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}'        // bidi isolates
            | '\u{FEFF}'                     // zero-width no-break space (BOM)
        )
}

/// `s` without its [`is_hidden`] characters (borrowed when it has none).
#[must_use]
pub fn without_hidden(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().any(is_hidden) {
        std::borrow::Cow::Owned(s.chars().filter(|c| !is_hidden(*c)).collect())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters() {
        for c in [
            '\u{202E}', '\u{200B}', '\u{2028}', '\u{FEFF}', '\u{2066}', '\0', '\u{7F}',
        ] {
            assert!(is_hidden(c), "{c:?}");
        }
        for c in ['a', 'é', '日', ' ', '\u{00A0}'] {
            assert!(!is_hidden(c), "{c:?}");
        }
        assert_eq!(without_hidden("Moz\u{202E}illa\u{200B}"), "Mozilla");
        assert!(matches!(
            without_hidden("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
