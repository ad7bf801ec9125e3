//! Session ids as text on the stack, serialised without allocating (the
//! validate response carries one).

/// A session id in its hyphenated lowercase form, on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IdText([u8; 36]);

impl IdText {
    /// Formats an id.
    #[must_use]
    pub fn new(id: &sessionkit_core::SessionId) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 36];
        let mut at = 0;
        for (i, byte) in id.as_bytes().iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                at += 1;
            }
            out[at] = HEX[usize::from(byte >> 4)];
            out[at + 1] = HEX[usize::from(byte & 0xf)];
            at += 2;
        }
        IdText(out)
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::fmt::Debug for IdText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for IdText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_display() {
        for _ in 0..100 {
            let id = sessionkit_core::SessionId::generate();
            assert_eq!(IdText::new(&id).as_str(), id.to_string());
        }
    }
}
