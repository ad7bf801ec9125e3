//! The blob in which the shared stores (Redis and PostgreSQL) keep a live
//! session's client info and its login's [`Assurance`]: a format byte, then
//! postcard. Format 1 holds the client info alone; format 2 (written only
//! when the record has an assurance) adds the level and methods. Both are
//! frozen: a later change gets a new format byte, and every format ever
//! written is still read. Anything that does not decode, or decodes to a
//! value the model refuses, is `None` (the store reports corruption).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::assurance::Assurance;
use crate::client::{ClientInfo, Fingerprint};

/// Client info alone.
const FORMAT_CLIENT: u8 = 1;
/// Client info, then the assurance.
const FORMAT_ASSURANCE: u8 = 2;

/// Client info, format 1 (frozen).
#[derive(Serialize, Deserialize)]
struct ClientV1 {
    ip: Option<IpV1>,
    user_agent: Option<String>,
    device: Option<String>,
    fingerprint: Option<[u8; 32]>,
}

/// An IP address, format 1 (frozen variant order).
#[derive(Serialize, Deserialize)]
enum IpV1 {
    V4([u8; 4]),
    V6([u8; 16]),
}

/// A login's assurance, format 2 (frozen).
#[derive(Serialize, Deserialize)]
struct AssuranceV2 {
    aal: u8,
    amr: Vec<String>,
}

/// The stored blob of a live session's client info and assurance.
#[must_use]
pub fn encode(c: &ClientInfo, assurance: Option<&Assurance>) -> Vec<u8> {
    let v = ClientV1 {
        ip: c.ip.map(|ip| match ip {
            IpAddr::V4(a) => IpV1::V4(a.octets()),
            IpAddr::V6(a) => IpV1::V6(a.octets()),
        }),
        user_agent: c.user_agent.clone(),
        device: c.device.clone(),
        fingerprint: c.fingerprint.map(|f| f.0),
    };
    let format = if assurance.is_some() {
        FORMAT_ASSURANCE
    } else {
        FORMAT_CLIENT
    };
    // Serialising these plain structs into a Vec does not fail.
    let mut out = postcard::to_extend(&v, vec![format]).unwrap_or_default();
    if let Some(a) = assurance {
        let a = AssuranceV2 {
            aal: a.aal(),
            amr: a.amr().to_vec(),
        };
        out = postcard::to_extend(&a, out).unwrap_or_default();
    }
    out
}

/// Decodes a blob written by [`encode`] (any format): the client info and,
/// when one was stated, the assurance (never the default one).
#[must_use]
pub fn decode(b: &[u8]) -> Option<(ClientInfo, Option<Box<Assurance>>)> {
    let (&format, rest) = b.split_first()?;
    if format != FORMAT_CLIENT && format != FORMAT_ASSURANCE {
        return None;
    }
    let (v, rest): (ClientV1, &[u8]) = postcard::take_from_bytes(rest).ok()?;
    let (assurance, rest) = if format == FORMAT_ASSURANCE {
        let (a, rest): (AssuranceV2, &[u8]) = postcard::take_from_bytes(rest).ok()?;
        let a = Assurance::new(a.aal, a.amr)
            .ok()
            .filter(|a| !a.is_default())?;
        (Some(Box::new(a)), rest)
    } else {
        (None, rest)
    };
    if !rest.is_empty() {
        return None;
    }
    let c = ClientInfo {
        ip: v.ip.map(|ip| match ip {
            IpV1::V4(a) => IpAddr::V4(Ipv4Addr::from(a)),
            IpV1::V6(a) => IpAddr::V6(Ipv6Addr::from(a)),
        }),
        user_agent: v.user_agent,
        device: v.device,
        fingerprint: v.fingerprint.map(Fingerprint),
    };
    c.validate().ok()?;
    Some((c, assurance))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_round_trip_and_refuse_damage() {
        let c = ClientInfo {
            ip: Some("10.0.0.1".parse().unwrap()),
            user_agent: Some("ua".into()),
            device: None,
            fingerprint: Some(Fingerprint([3; 32])),
        };
        let b = encode(&c, None);
        assert_eq!(b[0], FORMAT_CLIENT);
        assert_eq!(decode(&b), Some((c.clone(), None)));
        let a = Assurance::new(2, vec!["pwd".into(), "hwk".into()]).unwrap();
        let b = encode(&c, Some(&a));
        assert_eq!(b[0], FORMAT_ASSURANCE);
        assert_eq!(decode(&b), Some((c.clone(), Some(Box::new(a)))));
        for cut in 0..b.len() {
            assert_eq!(decode(&b[..cut]), None, "cut at {cut}");
        }
        let mut extra = b.clone();
        extra.push(0);
        assert_eq!(decode(&extra), None);
        // The default assurance is never stored, so never read back.
        assert_eq!(decode(&encode(&c, Some(&Assurance::DEFAULT_LOGIN))), None);
        assert_eq!(decode(&[9, 0]), None);
    }
}
