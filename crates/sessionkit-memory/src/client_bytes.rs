//! Client info as bytes inside a record, so that a session with an IP and
//! a user agent costs their bytes, not a side-table entry and two heap
//! strings: an IP (tag, then 4 or 16 bytes), a fingerprint (tag, then 32
//! bytes), the user agent and the device name (each a 16-bit length plus
//! one, 0 for none, then the bytes).

use std::net::IpAddr;

use sessionkit_core::client::{ClientInfo, Fingerprint};

/// `c` as bytes; `None` when it is empty or a field is too long for a
/// 16-bit length (the caller keeps it elsewhere).
pub(super) fn encode(c: &ClientInfo) -> Option<Vec<u8>> {
    if c.is_empty() {
        return None;
    }
    let ua = c.user_agent.as_deref().map(str::as_bytes);
    let device = c.device.as_deref().map(str::as_bytes);
    let mut out = Vec::with_capacity(
        1 + 16 + 1 + 32 + 2 + ua.map_or(0, <[u8]>::len) + 2 + device.map_or(0, <[u8]>::len),
    );
    match c.ip {
        None => out.push(0),
        Some(IpAddr::V4(a)) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
        }
        Some(IpAddr::V6(a)) => {
            out.push(6);
            out.extend_from_slice(&a.octets());
        }
    }
    match c.fingerprint {
        None => out.push(0),
        Some(Fingerprint(f)) => {
            out.push(1);
            out.extend_from_slice(&f);
        }
    }
    for text in [ua, device] {
        let n = match text {
            None => 0,
            Some(t) => u16::try_from(t.len() + 1).ok()?,
        };
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(text.unwrap_or_default());
    }
    Some(out)
}

/// The client info in `b` (what [`encode`] wrote), or `None` when the
/// bytes are not exactly that: an unknown tag, a short field, bad UTF-8 or
/// bytes left over. Never a partial answer: a fingerprint that does not
/// decode must not read as "no fingerprint" (that would unbind the session).
pub(super) fn decode(b: &[u8]) -> Option<ClientInfo> {
    let mut r = Reader(b);
    let ip = match r.byte()? {
        0 => None,
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(r.take(4)?).ok()?)),
        6 => Some(IpAddr::from(<[u8; 16]>::try_from(r.take(16)?).ok()?)),
        _ => return None,
    };
    let fingerprint = match r.byte()? {
        0 => None,
        1 => Some(Fingerprint(<[u8; 32]>::try_from(r.take(32)?).ok()?)),
        _ => return None,
    };
    let user_agent = r.text()?;
    let device = r.text()?;
    r.0.is_empty().then_some(ClientInfo {
        ip,
        user_agent,
        device,
        fingerprint,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// An optional text: `Some(None)` when absent, `None` when unreadable.
    fn text(&mut self) -> Option<Option<String>> {
        let n = self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))?;
        let Some(len) = n.checked_sub(1) else {
            return Some(None);
        };
        let t = self.take(usize::from(len))?;
        std::str::from_utf8(t).ok().map(|t| Some(t.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_of_client_info_round_trips() {
        let full = ClientInfo {
            ip: Some("2001:db8::7".parse().unwrap()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
            device: Some("Firefox on Linux".into()),
            fingerprint: Some(Fingerprint([9; 32])),
        };
        let shapes = [
            full.clone(),
            ClientInfo {
                ip: Some("203.0.113.9".parse().unwrap()),
                ..ClientInfo::default()
            },
            ClientInfo {
                user_agent: Some(String::new()),
                ..ClientInfo::default()
            },
            ClientInfo {
                device: Some("phone".into()),
                fingerprint: Some(Fingerprint([1; 32])),
                ..ClientInfo::default()
            },
        ];
        for c in shapes {
            let b = encode(&c).unwrap();
            assert_eq!(decode(&b), Some(c));
        }
        assert_eq!(encode(&ClientInfo::default()), None);
        let long = ClientInfo {
            user_agent: Some("x".repeat(70_000)),
            ..ClientInfo::default()
        };
        assert_eq!(encode(&long), None);
        // Truncated, extended or re-tagged bytes do not decode, and never
        // panic: nothing reads as a client without its fingerprint.
        let b = encode(&full).unwrap();
        for n in 0..b.len() {
            assert_eq!(decode(&b[..n]), None, "{n} bytes");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(decode(&longer), None);
        let mut retagged = b;
        retagged[17] = 2;
        assert_eq!(decode(&retagged), None);
    }
}
