//! CSRF defence for cookie sessions: every state-changing request whose
//! session comes from the cookie must pass two checks.
//!
//! 1. **Where it comes from.** `Sec-Fetch-Site: same-origin`, or an
//!    `Origin` on the allow-list. A request that sends neither header is
//!    refused. tower-http's `CsrfLayer` lets both of those through, which
//!    is looser than this layer allows (docs/http-layer.md): `Sec-Fetch-Site: none` is the
//!    user typing a URL, which no form post is.
//! 2. **A token bound to the session.** `X-CSRF-Token` must equal
//!    [`Session::csrf_token`](super::Session::csrf_token), an HMAC of the
//!    session id. It is not a naive double submit: no cookie holds it, so a
//!    subdomain that can write cookies cannot forge it.
//!
//! Safe methods (`GET`, `HEAD`, `OPTIONS`, `TRACE`) change nothing and pass.
//! A request authenticated by a bearer token passes too: the browser does
//! not attach that credential on its own. Check 1 also applies to an
//! unsafe request with no session (a login form), against login CSRF.

use http::{HeaderMap, Method, header};

/// The header that carries the session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Origins other than the app's own that may send state-changing requests
/// (the app's own origin passes by `Sec-Fetch-Site: same-origin`; list it
/// too for clients that send only `Origin`).
///
/// ```
/// use sessionkit::http::CsrfConfig;
/// let c = CsrfConfig::default().with_allowed_origin("https://app.example.com/");
/// ```
#[derive(Clone, Debug, Default)]
pub struct CsrfConfig {
    allowed_origins: Vec<String>,
}

impl CsrfConfig {
    /// Allows `origin` (`scheme://host[:port]`; compared without case and
    /// without a trailing slash).
    #[must_use]
    pub fn with_allowed_origin(mut self, origin: &str) -> Self {
        self.allowed_origins
            .push(origin.trim().trim_end_matches('/').to_ascii_lowercase());
        self
    }

    /// Check 1: whether the request comes from the app's own origin or an
    /// allowed one.
    pub(crate) fn origin_ok(&self, headers: &HeaderMap) -> bool {
        if headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"same-origin"))
        {
            return true;
        }
        headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(|o| o.trim().trim_end_matches('/'))
            .is_some_and(|o| {
                self.allowed_origins
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(o))
            })
    }
}

/// Whether `m` may change state.
pub(crate) fn is_unsafe(m: &Method) -> bool {
    !matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn where_a_request_comes_from() {
        let c = CsrfConfig::default().with_allowed_origin("https://App.example.com/");
        assert!(c.origin_ok(&h(&[("sec-fetch-site", "same-origin")])));
        assert!(!c.origin_ok(&h(&[("sec-fetch-site", "same-site")])));
        assert!(!c.origin_ok(&h(&[("sec-fetch-site", "none")])));
        assert!(!c.origin_ok(&h(&[("sec-fetch-site", "cross-site")])));
        assert!(!c.origin_ok(&h(&[])));
        assert!(c.origin_ok(&h(&[("origin", "https://app.example.com")])));
        assert!(c.origin_ok(&h(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://app.example.com")
        ])));
        assert!(!c.origin_ok(&h(&[("origin", "https://evil.example")])));
        assert!(!c.origin_ok(&h(&[("origin", "null")])));
    }

    #[test]
    fn which_methods_change_state() {
        assert!(!is_unsafe(&Method::GET));
        assert!(!is_unsafe(&Method::HEAD));
        assert!(!is_unsafe(&Method::OPTIONS));
        assert!(is_unsafe(&Method::POST));
        assert!(is_unsafe(&Method::DELETE));
        assert!(is_unsafe(&Method::PATCH));
        assert!(is_unsafe(&Method::PUT));
    }
}
