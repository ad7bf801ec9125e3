//! The layer's own answers: a request refused before the handler runs gets
//! a fixed status, `Cache-Control: no-store` and a short JSON body naming
//! why (`{"error":"csrf_failed","message":"…"}`).
//!
//! The body is made from this module's fixed strings only: nothing the
//! client sent is ever echoed back.

use http::{HeaderValue, Response, StatusCode, header};

use crate::ErrorKind;

/// Why the layer refused a request before its handler ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A state-changing request from neither the app's own origin
    /// (`Sec-Fetch-Site: same-origin`) nor an allowed `Origin`.
    OriginNotAllowed,
    /// A state-changing cookie request whose `X-CSRF-Token` is missing or
    /// not the session's.
    CsrfFailed,
    /// A state-changing request with more than one session cookie: which
    /// one is the browser's own cannot be told.
    DuplicateSessionCookie,
    /// The engine could not check the session (a store that is down: 503
    /// with `Retry-After`).
    Engine(ErrorKind),
}

impl Refusal {
    /// Every refusal, each engine kind once (for tests and docs).
    #[cfg(test)]
    pub(crate) fn all() -> Vec<Refusal> {
        let mut v = vec![
            Refusal::OriginNotAllowed,
            Refusal::CsrfFailed,
            Refusal::DuplicateSessionCookie,
        ];
        v.extend(ErrorKind::ALL.map(Refusal::Engine));
        v
    }

    /// The status it is answered with.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Refusal::OriginNotAllowed | Refusal::CsrfFailed => StatusCode::FORBIDDEN,
            Refusal::DuplicateSessionCookie => StatusCode::BAD_REQUEST,
            Refusal::Engine(kind) => kind.status(),
        }
    }

    /// The stable code of the body's `error` field.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Refusal::OriginNotAllowed => "origin_not_allowed",
            Refusal::CsrfFailed => "csrf_failed",
            Refusal::DuplicateSessionCookie => "duplicate_session_cookie",
            Refusal::Engine(kind) => kind.code(),
        }
    }

    /// One sentence for a person reading the answer.
    fn message(self) -> &'static str {
        match self {
            Refusal::OriginNotAllowed => {
                "a state-changing request must come from this site (Sec-Fetch-Site: same-origin) or an allowed Origin"
            }
            Refusal::CsrfFailed => {
                "the X-CSRF-Token header is missing or does not match the session"
            }
            Refusal::DuplicateSessionCookie => "the request carries more than one session cookie",
            Refusal::Engine(ErrorKind::StoreUnavailable) => {
                "the session store is unavailable; retry later"
            }
            Refusal::Engine(_) => "the session could not be checked",
        }
    }

    /// The answer, with its JSON body.
    pub(crate) fn response<B: From<String>>(self) -> Response<B> {
        let body = serde_json::json!({ "error": self.code(), "message": self.message() });
        let mut res = Response::new(B::from(body.to_string()));
        *res.status_mut() = self.status();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Refusal::Engine(kind) = self
            && kind == ErrorKind::StoreUnavailable
        {
            h.insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::error::STORE_RETRY_AFTER_SECS),
            );
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_says_why_in_json() {
        for r in Refusal::all() {
            let res: Response<String> = r.response();
            assert_eq!(res.status(), r.status(), "{r:?}");
            assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
            assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
            let body: serde_json::Value = serde_json::from_str(res.body()).unwrap_or_default();
            assert_eq!(body["error"], r.code(), "{r:?}");
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        let res: Response<String> = Refusal::Engine(ErrorKind::StoreUnavailable).response();
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
        assert_eq!(Refusal::CsrfFailed.status(), StatusCode::FORBIDDEN);
        assert_eq!(Refusal::OriginNotAllowed.status(), StatusCode::FORBIDDEN);
    }
}
