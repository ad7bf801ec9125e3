//! The session cookie: read from `Cookie`, written as `Set-Cookie` with
//! the `__Host-` prefix (so `Secure`, `Path=/` and no `Domain`: a
//! subdomain cannot set or shadow it), `HttpOnly` and an explicit
//! `SameSite`.

use http::{HeaderMap, HeaderValue, header};

/// The cookie's `SameSite` attribute. `None` is not offered: a session
/// cookie sent on cross-site requests only widens what CSRF can reach.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SameSite {
    /// Sent on top-level navigations from other sites, not on their
    /// subrequests or posts (the default).
    #[default]
    Lax,
    /// Never sent on requests another site starts.
    Strict,
}

impl SameSite {
    fn as_cookie(self) -> cookie::SameSite {
        match self {
            SameSite::Lax => cookie::SameSite::Lax,
            SameSite::Strict => cookie::SameSite::Strict,
        }
    }
}

/// What a request's `Cookie` headers hold of one cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Not there (or not text).
    Absent,
    /// Exactly once: its value.
    One(String),
    /// More than once (across headers or in one): one may have been
    /// planted, and which one is the browser's own cannot be told.
    Duplicate,
}

/// Cookie `name` in the request's `Cookie` headers (`a=1; b=2`, RFC 6265
/// §5.4: pairs split on `;`, name and value trimmed; a request's cookies
/// carry no attributes, so nothing else is parsed).
///
/// Works on bytes: another cookie's value may hold any octet (a UTF-8
/// `café`), and must not hide this one. Only this cookie's value has to be
/// text. Two cookies of that name are [`Lookup::Duplicate`], never "the
/// first wins".
pub(crate) fn find(headers: &HeaderMap, name: &str) -> Lookup {
    let name = name.as_bytes();
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .filter_map(|pair| {
            let eq = pair.iter().position(|&b| b == b'=')?;
            Some((pair[..eq].trim_ascii(), &pair[eq + 1..]))
        })
        .filter(|(n, _)| *n == name);
    let Some((_, v)) = found.next() else {
        return Lookup::Absent;
    };
    if found.next().is_some() {
        return Lookup::Duplicate;
    }
    match std::str::from_utf8(v.trim_ascii()) {
        Ok(v) => Lookup::One(v.trim_matches('"').to_owned()),
        Err(_) => Lookup::Absent,
    }
}

/// `Set-Cookie` for `value`, kept for `max_age_secs`.
pub(crate) fn set(name: &str, value: &str, same_site: SameSite, max_age_secs: i64) -> HeaderValue {
    render(name, value, same_site, max_age_secs.max(0))
}

/// `Set-Cookie` that deletes the cookie.
pub(crate) fn clear(name: &str, same_site: SameSite) -> HeaderValue {
    render(name, "", same_site, 0)
}

fn render(name: &str, value: &str, same_site: SameSite, max_age_secs: i64) -> HeaderValue {
    let c = cookie::Cookie::build((name, value))
        .http_only(true)
        .secure(true)
        .path("/")
        .same_site(same_site.as_cookie())
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build();
    // A name checked at configuration and a base64url token: always a
    // valid header value.
    HeaderValue::from_str(&c.to_string()).unwrap_or(HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_host_prefixed_and_locked_down() {
        let v = set("__Host-session", "ses_abc", SameSite::Lax, 604_800);
        let s = v.to_str().unwrap();
        for part in [
            "__Host-session=ses_abc",
            "HttpOnly",
            "Secure",
            "Path=/",
            "SameSite=Lax",
            "Max-Age=604800",
        ] {
            assert!(s.contains(part), "{s} lacks {part}");
        }
        assert!(!s.contains("Domain"));
        let c = clear("__Host-session", SameSite::Strict);
        let c = c.to_str().unwrap();
        assert!(
            c.contains("Max-Age=0") && c.contains("SameSite=Strict"),
            "{c}"
        );
    }

    #[test]
    fn finds_the_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-session=ses_x"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("__Host-session=ses_y"),
        );
        // Two session cookies (across headers or in one): neither counts.
        assert_eq!(find(&h, "__Host-session"), Lookup::Duplicate);
        assert_eq!(find(&h, "a"), Lookup::One("1".into()));
        assert_eq!(find(&h, "b"), Lookup::Absent);
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("__Host-session=ses_x; __Host-session=ses_x"),
        );
        assert_eq!(find(&h, "__Host-session"), Lookup::Duplicate);
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("x__Host-session=no;novalue; __Host-session = \"ses_q\" "),
        );
        assert_eq!(find(&h, "__Host-session"), Lookup::One("ses_q".into()));
        assert_eq!(find(&h, "novalue"), Lookup::Absent);
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_bytes(b"pref=caf\xc3\xa9; __Host-session=ses_z").unwrap(),
        );
        assert_eq!(find(&h, "__Host-session"), Lookup::One("ses_z".into()));
    }
}
