//! What a session records about the client that made it: IP, user agent,
//! device name, and an optional fingerprint hash for binding.

use std::net::IpAddr;

/// Longest user agent kept, in bytes (longer ones are refused).
pub const MAX_USER_AGENT: usize = 512;
/// Longest device name kept, in bytes.
pub const MAX_DEVICE: usize = 128;

/// Why client info was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientInfoError {
    /// A field is too long or holds a control character.
    #[error("invalid client.{field}: {why}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        why: &'static str,
    },
}

/// Client information kept with a session (shown in device lists).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientInfo {
    /// The client's IP address.
    pub ip: Option<IpAddr>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// A device name the app chose ("Firefox on Linux").
    pub device: Option<String>,
    /// Hash of the attributes the session is bound to (see [`Fingerprint`]).
    pub fingerprint: Option<Fingerprint>,
}

impl ClientInfo {
    /// Checks the free-text fields.
    pub fn validate(&self) -> Result<(), ClientInfoError> {
        check_text("user_agent", self.user_agent.as_deref(), MAX_USER_AGENT)?;
        check_text("device", self.device.as_deref(), MAX_DEVICE)
    }

    /// Whether nothing is recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ip.is_none()
            && self.user_agent.is_none()
            && self.device.is_none()
            && self.fingerprint.is_none()
    }
}

fn check_text(field: &'static str, v: Option<&str>, max: usize) -> Result<(), ClientInfoError> {
    if let Some(v) = v {
        if v.len() > max {
            return Err(ClientInfoError::Invalid {
                field,
                why: "too long",
            });
        }
        if v.chars().any(char::is_control) {
            return Err(ClientInfoError::Invalid {
                field,
                why: "contains a control character",
            });
        }
        if field == "device" && v.chars().any(crate::text::is_hidden) {
            return Err(ClientInfoError::Invalid {
                field,
                why: "contains an invisible character (bidi control, zero-width, line separator)",
            });
        }
    }
    Ok(())
}

/// A SHA-256 over the client attributes a session is bound to (user agent,
/// and the IP when the policy says so). Not reversible to the inputs.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Computes the fingerprint of a user agent and, optionally, an IP.
    #[must_use]
    pub fn compute(user_agent: Option<&str>, ip: Option<IpAddr>) -> Self {
        let ip = ip.map(|ip| ip.to_string()).unwrap_or_default();
        Fingerprint(crate::crypto::tagged_sha256(
            b"sessionkit/v1/fingerprint\0",
            &[user_agent.unwrap_or("").as_bytes(), b"\0", ip.as_bytes()],
        ))
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}
