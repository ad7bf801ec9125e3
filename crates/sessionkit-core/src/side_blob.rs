//! The blob in which the shared stores (Redis and PostgreSQL) keep what a
//! live session has beside its header — its client info, its login's
//! [`Assurance`] and its upstream [`Grants`] — all dropped together when it
//! becomes a tombstone: a format byte, then postcard. Format 1 holds the
//! client info alone; format 2 (written when the record has an assurance
//! and no grants) adds the level and methods; format 3 (written when it has
//! grants) holds the client info, an optional assurance and the grants. All
//! are frozen: a later change gets a new format byte, and every format ever
//! written is still read. Anything that does not decode, or decodes to a
//! value the model refuses, is `None` (the store reports corruption).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::assurance::Assurance;
use crate::client::{ClientInfo, Fingerprint};
use crate::upstream::Grants;

/// Client info alone.
const FORMAT_CLIENT: u8 = 1;
/// Client info, then the assurance.
const FORMAT_ASSURANCE: u8 = 2;
/// Client info, an optional assurance, then the grants.
const FORMAT_GRANTS: u8 = 3;

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

/// What a live record keeps in the blob.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    /// Client info.
    pub client: &'a ClientInfo,
    /// The login's assurance, when not the default.
    pub assurance: Option<&'a Assurance>,
    /// Upstream grants, when any.
    pub grants: Option<&'a Grants>,
}

/// What [`decode`] reads back.
pub type Decoded = (ClientInfo, Option<Box<Assurance>>, Option<Box<Grants>>);

/// The stored blob of a live session's side data.
#[must_use]
pub fn encode(side: Side<'_>) -> Vec<u8> {
    let c = side.client;
    let v = ClientV1 {
        ip: c.ip.map(|ip| match ip {
            IpAddr::V4(a) => IpV1::V4(a.octets()),
            IpAddr::V6(a) => IpV1::V6(a.octets()),
        }),
        user_agent: c.user_agent.clone(),
        device: c.device.clone(),
        fingerprint: c.fingerprint.map(|f| f.0),
    };
    let assurance = side.assurance.map(|a| AssuranceV2 {
        aal: a.aal(),
        amr: a.amr().to_vec(),
    });
    // Serialising these plain structs into a Vec does not fail.
    let body = |format: u8| postcard::to_extend(&v, vec![format]).unwrap_or_default();
    match (assurance, side.grants) {
        (None, None) => body(FORMAT_CLIENT),
        (Some(a), None) => postcard::to_extend(&a, body(FORMAT_ASSURANCE)).unwrap_or_default(),
        (a, Some(g)) => {
            let mut out = postcard::to_extend(&a, body(FORMAT_GRANTS)).unwrap_or_default();
            out.extend(g.to_bytes());
            out
        }
    }
}

/// Decodes a blob written by [`encode`] (any format): the client info and,
/// when one was stated, the assurance (never the default one).
#[must_use]
pub fn decode(b: &[u8]) -> Option<Decoded> {
    let (&format, rest) = b.split_first()?;
    if !(FORMAT_CLIENT..=FORMAT_GRANTS).contains(&format) {
        return None;
    }
    let (v, rest): (ClientV1, &[u8]) = postcard::take_from_bytes(rest).ok()?;
    let checked = |a: AssuranceV2| {
        Assurance::new(a.aal, a.amr)
            .ok()
            .filter(|a| !a.is_default())
            .map(Box::new)
    };
    let (assurance, grants, rest) = match format {
        FORMAT_CLIENT => (None, None, rest),
        FORMAT_ASSURANCE => {
            let (a, rest): (AssuranceV2, &[u8]) = postcard::take_from_bytes(rest).ok()?;
            (Some(checked(a)?), None, rest)
        }
        _ => {
            let (a, rest): (Option<AssuranceV2>, &[u8]) = postcard::take_from_bytes(rest).ok()?;
            let a = match a {
                None => None,
                Some(a) => Some(checked(a)?),
            };
            let (g, rest) = Grants::take_from_bytes(rest)?;
            (a, Some(Box::new(g)), rest)
        }
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
    Some((c, assurance, grants))
}

/// The two side blobs a store that compares whole blobs (Redis,
/// PostgreSQL) needs for a grant swap on `rec` (as just read): the blob as
/// it is and the blob with `req.grants`. Only the grants of a live record
/// ever change its blob, so comparing blobs compares grants. `Err` is the
/// answer when nothing is to be written (not live, other grants).
pub fn grant_swap_blobs(
    mut rec: crate::SessionRecord,
    req: crate::store::GrantSwapRequest,
) -> Result<(Vec<u8>, Vec<u8>), crate::store::GrantSwap> {
    use crate::store::GrantSwap;
    if !rec.is_live(req.now) {
        return Err(GrantSwap::NotLive);
    }
    if rec.grants != req.expected {
        return Err(GrantSwap::Changed(Box::new(rec)));
    }
    let expected = encode(rec.side());
    rec.grants = req.grants;
    Ok((expected, encode(rec.side())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Millis;
    use crate::upstream::SealedGrant;

    fn side<'a>(
        client: &'a ClientInfo,
        assurance: Option<&'a Assurance>,
        grants: Option<&'a Grants>,
    ) -> Vec<u8> {
        encode(Side {
            client,
            assurance,
            grants,
        })
    }

    #[test]
    fn every_format_round_trips_and_refuses_damage() {
        let c = ClientInfo {
            ip: Some("10.0.0.1".parse().unwrap()),
            user_agent: Some("ua".into()),
            device: None,
            fingerprint: Some(Fingerprint([3; 32])),
        };
        let b = side(&c, None, None);
        assert_eq!(b[0], FORMAT_CLIENT);
        assert_eq!(decode(&b), Some((c.clone(), None, None)));
        let a = Assurance::new(2, vec!["pwd".into(), "hwk".into()]).unwrap();
        let b = side(&c, Some(&a), None);
        assert_eq!(b[0], FORMAT_ASSURANCE);
        assert_eq!(
            decode(&b),
            Some((c.clone(), Some(Box::new(a.clone())), None))
        );
        let g = Grants(vec![SealedGrant {
            provider: "idp".into(),
            key_id: 1,
            sealed: vec![5; 40],
            lease: None,
            not_before: Millis::from_millis(0),
            dead: false,
        }]);
        for assurance in [None, Some(&a)] {
            let b = side(&c, assurance, Some(&g));
            assert_eq!(b[0], FORMAT_GRANTS);
            let want = (
                c.clone(),
                assurance.cloned().map(Box::new),
                Some(Box::new(g.clone())),
            );
            assert_eq!(decode(&b), Some(want));
            for cut in 0..b.len() {
                assert_eq!(decode(&b[..cut]), None, "cut at {cut}");
            }
            let mut extra = b.clone();
            extra.push(0);
            assert_eq!(decode(&extra), None);
        }
        // The default assurance and empty grants are never stored, so
        // never read back.
        assert_eq!(
            decode(&side(&c, Some(&Assurance::DEFAULT_LOGIN), None)),
            None
        );
        assert_eq!(decode(&side(&c, None, Some(&Grants::default()))), None);
        assert_eq!(decode(&[9, 0]), None);
    }
}
