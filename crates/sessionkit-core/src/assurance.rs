//! How strongly a session's subject authenticated: the authenticator
//! assurance level (`aal`, NIST SP 800-63B) and the authentication methods
//! (`amr`, RFC 8176 values such as `pwd`, `otp`, `hwk`).
//!
//! A session without a subject has level 0 and no methods. A login that
//! states nothing has level 1 and no methods ([`Assurance::DEFAULT_LOGIN`]):
//! the stores keep nothing for it, so only a login that states more costs
//! any space. Step-up asks for a minimum level
//! (`ValidateRequest::min_aal` in `sessionkit`); a lower one answers
//! "re-authenticate", and an upgrade to a higher level rotates the token.

use std::fmt;

/// The highest level (NIST AAL3).
pub const MAX_AAL: u8 = 3;
/// Most methods one login may name.
pub const MAX_METHODS: usize = 8;
/// Longest method name, in bytes.
pub const MAX_METHOD_LEN: usize = 32;

/// Why an [`Assurance`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssuranceError {
    /// The level is not 1, 2 or 3.
    #[error("aal must be an integer from 1 to {MAX_AAL}")]
    Level,
    /// Too many methods.
    #[error("amr may name at most {MAX_METHODS} methods")]
    TooMany,
    /// A method name is empty, too long or has a character outside
    /// `A-Z a-z 0-9 _ - . :`.
    #[error(
        "each amr value must be 1 to {MAX_METHOD_LEN} characters of A-Z, a-z, 0-9, '_', '-', '.', ':'"
    )]
    Method,
    /// A method is named twice.
    #[error("amr names a method twice")]
    Duplicate,
}

/// The level and methods of one login. Always valid: build it with
/// [`Assurance::new`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Assurance {
    aal: u8,
    amr: Vec<String>,
}

impl Assurance {
    /// What a login that states nothing gets: level 1, no methods.
    pub const DEFAULT_LOGIN: Assurance = Assurance {
        aal: 1,
        amr: Vec::new(),
    };

    /// A checked assurance: `aal` from 1 to [`MAX_AAL`]; at most
    /// [`MAX_METHODS`] distinct method names, each 1 to [`MAX_METHOD_LEN`]
    /// bytes of `A-Z a-z 0-9 _ - . :`. Order is kept.
    pub fn new(aal: u8, amr: Vec<String>) -> Result<Self, AssuranceError> {
        if !(1..=MAX_AAL).contains(&aal) {
            return Err(AssuranceError::Level);
        }
        if amr.len() > MAX_METHODS {
            return Err(AssuranceError::TooMany);
        }
        for (i, m) in amr.iter().enumerate() {
            let ok_char = |c: u8| c.is_ascii_alphanumeric() || b"_-.:".contains(&c);
            if m.is_empty() || m.len() > MAX_METHOD_LEN || !m.bytes().all(ok_char) {
                return Err(AssuranceError::Method);
            }
            if amr[..i].contains(m) {
                return Err(AssuranceError::Duplicate);
            }
        }
        Ok(Assurance { aal, amr })
    }

    /// The level: 1 to [`MAX_AAL`].
    #[must_use]
    pub fn aal(&self) -> u8 {
        self.aal
    }

    /// The methods, in the order given.
    #[must_use]
    pub fn amr(&self) -> &[String] {
        &self.amr
    }

    /// Whether this is [`Assurance::DEFAULT_LOGIN`] (stores keep nothing
    /// for it).
    #[must_use]
    pub fn is_default(&self) -> bool {
        *self == Self::DEFAULT_LOGIN
    }

    /// `None` for the default (what a record keeps), else itself, boxed.
    #[must_use]
    pub fn into_stored(self) -> Option<Box<Assurance>> {
        (!self.is_default()).then(|| Box::new(self))
    }
}

impl fmt::Debug for Assurance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Assurance")
            .field("aal", &self.aal)
            .field("amr", &self.amr)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn accepts_levels_and_rfc8176_methods() {
        let a = Assurance::new(2, s(&["pwd", "otp"])).unwrap();
        assert_eq!(a.aal(), 2);
        assert_eq!(a.amr(), ["pwd", "otp"]);
        assert!(!a.is_default());
        assert!(Assurance::new(1, vec![]).unwrap().is_default());
        assert!(Assurance::new(1, vec![]).unwrap().into_stored().is_none());
        assert!(Assurance::new(3, s(&["hwk", "urn:x:y-1.2_z"])).is_ok());
    }

    #[test]
    fn refuses_what_it_cannot_keep() {
        assert_eq!(Assurance::new(0, vec![]), Err(AssuranceError::Level));
        assert_eq!(Assurance::new(4, vec![]), Err(AssuranceError::Level));
        assert_eq!(
            Assurance::new(1, s(&["pwd", "pwd"])),
            Err(AssuranceError::Duplicate)
        );
        assert_eq!(Assurance::new(1, s(&[""])), Err(AssuranceError::Method));
        assert_eq!(
            Assurance::new(1, s(&["p w d"])),
            Err(AssuranceError::Method)
        );
        assert_eq!(
            Assurance::new(1, s(&["p\u{202e}"])),
            Err(AssuranceError::Method)
        );
        assert_eq!(
            Assurance::new(1, vec!["x".repeat(33)]),
            Err(AssuranceError::Method)
        );
        let nine: Vec<String> = (0..9).map(|i| format!("m{i}")).collect();
        assert_eq!(Assurance::new(1, nine), Err(AssuranceError::TooMany));
    }
}
