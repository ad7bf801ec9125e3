//! Identifiers: [`TenantId`], [`SessionId`] and [`Subject`].
//!
//! All three are validated when built, so a value of one of these types is
//! always well-formed. None of them is a secret.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Empty, too long, or a character outside the allowed set.
    #[error("invalid {what}: {why}")]
    Invalid {
        /// Which identifier.
        what: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// The tenant a record belongs to: 1–31 bytes of `[a-z0-9_-]`.
/// Copy and allocation-free, so it costs nothing on the hot path.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TenantId {
    len: u8,
    bytes: [u8; TenantId::MAX_LEN],
}

impl TenantId {
    /// Longest tenant name, in bytes.
    pub const MAX_LEN: usize = 31;

    /// The tenant every record belongs to unless told otherwise.
    pub const DEFAULT: TenantId = TenantId {
        len: 7,
        bytes: *b"default\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
    };

    /// Validates a tenant name.
    pub fn new(s: &str) -> Result<Self, IdError> {
        let err = |why| IdError::Invalid {
            what: "tenant",
            why,
        };
        if s.is_empty() {
            return Err(err("empty"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(err("longer than 31 bytes"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(err("only a-z, 0-9, '-' and '_' are allowed"));
        }
        let mut bytes = [0u8; Self::MAX_LEN];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Ok(TenantId {
            len: s.len() as u8,
            bytes,
        })
    }

    /// The tenant name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Built only from validated ASCII, so this never fails.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

/// Hashes the name only (as a `str` hashes), not the unused tail of the
/// fixed buffer: every index keyed by tenant hashes a few bytes, not 32.
/// Consistent with `Eq`: the tail is always zero.
impl std::hash::Hash for TenantId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Default for TenantId {
    fn default() -> Self {
        TenantId::DEFAULT
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({:?})", self.as_str())
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TenantId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TenantId::new(s)
    }
}

/// The public, non-secret handle of a session: a UUID v7. Shown in device
/// lists and used to revoke one session; never a credential.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Uuid);

impl SessionId {
    /// A fresh, time-ordered id.
    #[must_use]
    pub fn generate() -> Self {
        SessionId(Uuid::now_v7())
    }

    /// Rebuilds an id from its 16 bytes (as stored).
    #[must_use]
    pub const fn from_bytes(b: [u8; 16]) -> Self {
        SessionId(Uuid::from_bytes(b))
    }

    /// The 16 bytes of the id.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// The id as a `u128` (big-endian), so ids order by creation time.
    #[must_use]
    pub const fn as_u128(&self) -> u128 {
        self.0.as_u128()
    }

    /// Parses the hyphenated lowercase form only (`0190…-…`): one spelling
    /// per id, so an id from a path can be compared byte for byte.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let err = IdError::Invalid {
            what: "session id",
            why: "not a hyphenated lowercase UUID",
        };
        if s.len() != 36 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err);
        }
        let u = Uuid::try_parse(s).map_err(|_| err.clone())?;
        Ok(SessionId(u))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0.hyphenated())
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl FromStr for SessionId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionId::parse(s)
    }
}

/// Who a session belongs to: 1–255 bytes of UTF-8 with no control
/// characters, compared byte for byte and never normalised.
///
/// Shared, not copied: a clone costs a reference count.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject(std::sync::Arc<str>);

impl Subject {
    /// Longest subject, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Validates a subject.
    pub fn new(s: &str) -> Result<Self, IdError> {
        let err = |why| IdError::Invalid {
            what: "subject",
            why,
        };
        if s.is_empty() {
            return Err(err("empty"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(err("longer than 255 bytes"));
        }
        if s.chars().any(crate::text::is_hidden) {
            return Err(err(
                "contains a control character or an invisible one (bidi control, zero-width, line separator)",
            ));
        }
        Ok(Subject(s.into()))
    }

    /// Validates a subject read back as bytes (a store's own copy): the
    /// same rules as [`Subject::new`], with a fast path for printable ASCII.
    ///
    /// # Errors
    /// [`IdError::Invalid`] if the bytes are not a valid subject.
    pub fn from_bytes(b: &[u8]) -> Result<Self, IdError> {
        if !b.is_empty() && b.len() <= Self::MAX_LEN && b.iter().all(|c| (0x20..0x7f).contains(c)) {
            // Printable ASCII: UTF-8 with no control character.
            if let Ok(s) = std::str::from_utf8(b) {
                return Ok(Subject(s.into()));
            }
        }
        let s = std::str::from_utf8(b).map_err(|_| IdError::Invalid {
            what: "subject",
            why: "not UTF-8",
        })?;
        Self::new(s)
    }

    /// The subject.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subject({:?})", &*self.0)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Subject {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Subject::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_rules() {
        assert_eq!(TenantId::new("default").unwrap(), TenantId::DEFAULT);
        assert_eq!(TenantId::DEFAULT.as_str(), "default");
        assert!(TenantId::new("").is_err());
        assert!(TenantId::new("Acme").is_err());
        assert!(TenantId::new("a b").is_err());
        assert!(TenantId::new(&"a".repeat(32)).is_err());
        assert!(TenantId::new(&"a".repeat(31)).is_ok());
    }

    #[test]
    fn subject_rules() {
        assert!(Subject::new("user-1").is_ok());
        assert!(Subject::new("ünïcødé/with slash").is_ok());
        assert!(Subject::new("").is_err());
        assert!(Subject::new("a\0b").is_err());
        assert!(Subject::new("a\nb").is_err());
        assert!(Subject::new("a\u{7f}b").is_err());
        assert!(Subject::new(&"x".repeat(255)).is_ok());
        assert!(Subject::new(&"x".repeat(256)).is_err());
        // Never normalised: composed and decomposed forms differ.
        assert_ne!(
            Subject::new("é").unwrap(),
            Subject::new("e\u{301}").unwrap()
        );
    }

    #[test]
    fn session_id_one_spelling() {
        let id = SessionId::generate();
        let s = id.to_string();
        assert_eq!(SessionId::parse(&s).unwrap(), id);
        assert!(SessionId::parse(&s.to_uppercase()).is_err());
        assert!(SessionId::parse(&s.replace('-', "")).is_err());
        assert!(SessionId::parse(&format!("{{{s}}}")).is_err());
        assert!(SessionId::parse("").is_err());
    }
}
