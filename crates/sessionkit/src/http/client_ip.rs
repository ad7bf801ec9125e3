//! The client's IP address: the peer's, or, only when the peer is a
//! trusted proxy, the one the forwarding headers name.
//!
//! Deployment caveat: list exactly the proxies in front of the app. A
//! forwarding header from anyone else is ignored (trusting it from
//! everyone would let any client claim any address).

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// The peer's address, for servers other than axum (which provides
/// `ConnectInfo<SocketAddr>`): insert it into the request's extensions
/// before the layer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The header a trusted proxy names the client in. Only that one is read:
/// a proxy that sets one header passes the other through as the client
/// sent it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For`, each proxy appending the address it saw (the
    /// default).
    #[default]
    XForwardedFor,
    /// `X-Real-IP`, one address, set (overwritten) by the one proxy in
    /// front.
    XRealIp,
    /// `Forwarded` (RFC 7239), each proxy appending an element whose
    /// `for=` names the address it saw; walked as `X-Forwarded-For` is.
    Forwarded,
}

/// The proxies whose forwarding header is believed, and which header that
/// is. Empty by default: the client is the peer.
///
/// Deployment caveat: the proxy must set or overwrite that header (nginx:
/// `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for` or
/// `X-Real-IP $remote_addr`); a client inside a trusted range can still
/// name any address.
///
/// ```
/// use sessionkit::http::{ForwardedHeader, TrustedProxies};
/// let p = TrustedProxies::none()
///     .with("10.0.0.0/8".parse().unwrap())
///     .with_header(ForwardedHeader::XRealIp);
/// assert!(p.trusts("10.1.2.3".parse().unwrap()));
/// assert!(!p.trusts("192.0.2.1".parse().unwrap()));
/// ```
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// Trusts no one.
    #[must_use]
    pub fn none() -> Self {
        TrustedProxies::default()
    }

    /// Also trusts every address in `net` (`127.0.0.1/32`, `10.0.0.0/8`).
    #[must_use]
    pub fn with(mut self, net: IpNet) -> Self {
        self.nets.push(net);
        self
    }

    /// The header the proxies name the client in.
    #[must_use]
    pub fn with_header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// Whether `ip` is one of the trusted proxies.
    #[must_use]
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client's address: the peer's, unless the peer is trusted; then,
    /// with `X-Forwarded-For` or `Forwarded`, the rightmost hop that is not
    /// a trusted proxy (walking from the right, as each proxy appends the address it
    /// saw; a hop that does not parse ends the walk at the last address
    /// that did), or, with `X-Real-IP`, its address. Without the header,
    /// the peer.
    #[must_use]
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if !self.trusts(peer) {
            return Some(peer);
        }
        if self.header == ForwardedHeader::XRealIp {
            let real = headers
                .get("x-real-ip")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_hop);
            return Some(real.unwrap_or(peer));
        }
        let name = match self.header {
            ForwardedHeader::Forwarded => "forwarded",
            _ => "x-forwarded-for",
        };
        let hops: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|hop| match self.header {
                // The element's `for=` (an element without one names no
                // address: the walk stops there).
                ForwardedHeader::Forwarded => hop
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .map_or("", |(_, v)| v.trim().trim_matches('"')),
                _ => hop.trim(),
            })
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            if !self.trusts(client) {
                break;
            }
            match parse_hop(hop) {
                Some(ip) => client = ip,
                None => break,
            }
        }
        Some(client)
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`) as the IPv4 one.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// One hop: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_the_headers_say() {
        let p = TrustedProxies::none();
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-real-ip", "203.0.113.8"),
        ]);
        assert_eq!(
            p.client_ip(Some(ip("198.51.100.1")), &h),
            Some(ip("198.51.100.1"))
        );
    }

    #[test]
    fn a_trusted_peer_is_walked_past_from_the_right() {
        let p = TrustedProxies::none()
            .with("10.0.0.0/8".parse().unwrap())
            .with("127.0.0.1/32".parse().unwrap());
        // client, then a spoofed hop it sent, then our two proxies.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 203.0.113.9"),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        assert_eq!(
            p.client_ip(Some(ip("127.0.0.1")), &h),
            Some(ip("203.0.113.9"))
        );
        // X-Real-IP is not read unless it is the configured header.
        let h = headers(&[("x-real-ip", "203.0.113.7")]);
        assert_eq!(p.client_ip(Some(ip("10.9.9.9")), &h), Some(ip("10.9.9.9")));
        let h = headers(&[("x-forwarded-for", "garbage, 10.0.0.3")]);
        assert_eq!(p.client_ip(Some(ip("10.0.0.1")), &h), Some(ip("10.0.0.3")));
        let h = headers(&[("x-forwarded-for", "[2001:db8::1]:443")]);
        assert_eq!(
            p.client_ip(Some(ip("::ffff:10.0.0.1")), &h),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(p.client_ip(None, &h), None);
    }

    #[test]
    fn forwarded_elements_are_walked_by_their_for() {
        let p = TrustedProxies::none()
            .with("10.0.0.0/8".parse().unwrap())
            .with_header(ForwardedHeader::Forwarded);
        let h = headers(&[
            (
                "forwarded",
                r#"for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https"#,
            ),
            ("forwarded", "For=10.0.0.2;by=10.0.0.9"),
        ]);
        assert_eq!(
            p.client_ip(Some(ip("10.0.0.1")), &h),
            Some(ip("2001:db8:cafe::17"))
        );
        // An obfuscated or unknown hop ends the walk at the last address.
        let h = headers(&[("forwarded", "for=unknown, for=10.0.0.5")]);
        assert_eq!(p.client_ip(Some(ip("10.0.0.1")), &h), Some(ip("10.0.0.5")));
        let h = headers(&[("forwarded", "proto=https"), ("x-forwarded-for", "6.6.6.6")]);
        assert_eq!(p.client_ip(Some(ip("10.0.0.1")), &h), Some(ip("10.0.0.1")));
    }

    #[test]
    fn with_x_real_ip_a_client_sent_x_forwarded_for_is_ignored() {
        let p = TrustedProxies::none()
            .with("10.0.0.0/8".parse().unwrap())
            .with_header(ForwardedHeader::XRealIp);
        // The proxy sets X-Real-IP and passes the client's XFF through.
        let h = headers(&[("x-real-ip", "203.0.113.5"), ("x-forwarded-for", "6.6.6.6")]);
        assert_eq!(
            p.client_ip(Some(ip("10.0.0.1")), &h),
            Some(ip("203.0.113.5"))
        );
        // With X-Forwarded-For configured, a client-sent X-Real-IP is ignored.
        let p = TrustedProxies::none().with("10.0.0.0/8".parse().unwrap());
        let h = headers(&[("x-real-ip", "6.6.6.6")]);
        assert_eq!(p.client_ip(Some(ip("10.0.0.1")), &h), Some(ip("10.0.0.1")));
    }
}
