//! The session cookie, read from the request's `Cookie` headers by
//! `SessionLayer`, must pick the session only when the session cookie is
//! there exactly once and holds the live token, whatever else the headers
//! hold; two session cookies must never count (a state-changing request
//! with two is refused, 400).
//!
//! Driven through the public layer: a `SessionLayer` on a `MemoryStore`
//! engine (manual clock: nothing expires during a run) around a handler
//! that answers with the id of the session it was given. One live session
//! is made once per process, through the layer itself.
//!
//! Input: a flags byte (bit 0: `POST` from the app's own origin, else
//! `GET`; bit 1: with the session's CSRF token), then `Cookie` header
//! values separated by `\n` (a byte no header value may hold). `{tok}` in
//! a value is replaced by the live session's token, so the fuzzer can
//! place the real token anywhere. Values `http` refuses are left out. The
//! answer is checked against a reference reading of the headers (RFC 6265
//! §5.4: pairs split on `;`, names trimmed).
#![no_main]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use sessionkit::http::{PeerAddr, Session, SessionLayer};
use sessionkit::{EngineKeys, MemoryStore, SessionManager};
use sessionkit_core::{ManualClock, Millis};
use tower::util::BoxCloneService;
use tower::{Layer, ServiceExt, service_fn};

const COOKIE: &str = "__Host-session";
const TOKEN_MARK: &[u8] = b"{tok}";
const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";
const START: i64 = 1_767_225_600_000;

type Svc = BoxCloneService<Request<String>, Response<String>, Infallible>;

struct Fixture {
    rt: tokio::runtime::Runtime,
    svc: Svc,
    /// The live session: its token, id and CSRF token.
    token: String,
    id: String,
    csrf: String,
}

/// Answers `<session id>|<csrf token>` (empty when there is no session);
/// `/new` stores an attribute first (so a session is made).
async fn handler(req: Request<String>) -> Result<Response<String>, Infallible> {
    let Some(s) = req.extensions().get::<Session>().cloned() else {
        return Ok(Response::new("no layer".into()));
    };
    if req.uri().path() == "/new" {
        s.insert("n", 1).await.expect("insert");
    }
    let id = s.id().map(|i| i.to_string()).unwrap_or_default();
    Ok(Response::new(format!(
        "{id}|{}",
        s.csrf_token().unwrap_or_default()
    )))
}

fn request(method: Method, path: &str) -> http::request::Builder {
    let b = Request::builder()
        .method(method.clone())
        .uri(path)
        .header(header::USER_AGENT, BROWSER)
        .extension(PeerAddr(SocketAddr::from(([192, 0, 2, 7], 4000))));
    if method == Method::POST {
        b.header("sec-fetch-site", "same-origin")
    } else {
        b
    }
}

impl Fixture {
    fn new() -> Fixture {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let engine = rt.block_on(async {
            SessionManager::builder(MemoryStore::new(), EngineKeys::generate().expect("keys"))
                .with_clock(ManualClock::new(Millis::from_millis(START)))
                .build()
                .await
                .expect("engine")
        });
        let layer = SessionLayer::new(Arc::new(engine));
        let svc = BoxCloneService::new(layer.layer(service_fn(handler)));
        let req = request(Method::POST, "/new")
            .body(String::new())
            .expect("request");
        let res = rt.block_on(svc.clone().oneshot(req)).expect("infallible");
        assert_eq!(res.status(), StatusCode::OK, "{}", res.body());
        let set = res.headers()[header::SET_COOKIE].to_str().expect("text");
        let token = set
            .strip_prefix("__Host-session=")
            .and_then(|s| s.split(';').next())
            .expect("session cookie")
            .to_owned();
        let (id, csrf) = res.body().split_once('|').expect("body");
        assert!(!id.is_empty() && !csrf.is_empty());
        Fixture {
            id: id.to_owned(),
            csrf: csrf.to_owned(),
            rt,
            svc,
            token,
        }
    }
}

thread_local! {
    static FIXTURE: Fixture = Fixture::new();
}

/// What the headers hold of the session cookie, read independently of
/// the layer's code.
enum Expect<'a> {
    Absent,
    One(&'a [u8]),
    Duplicate,
}

/// Strips the spaces and tabs around `b` (the only whitespace a header
/// value can hold).
fn trim(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

fn reference(headers: &[Vec<u8>]) -> Expect<'_> {
    let mut values = headers.iter().flat_map(|h| {
        h.split(|&b| b == b';').filter_map(|pair| {
            let (name, value) = pair.split_at(pair.iter().position(|&b| b == b'=')?);
            (trim(name) == COOKIE.as_bytes()).then_some(&value[1..])
        })
    });
    match (values.next(), values.next()) {
        (None, _) => Expect::Absent,
        (Some(v), None) => Expect::One(v),
        (Some(_), Some(_)) => Expect::Duplicate,
    }
}

/// `h` with every [`TOKEN_MARK`] replaced by `token`.
fn with_token(h: &[u8], token: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(h.len());
    let mut i = 0;
    while i < h.len() {
        if h[i..].starts_with(TOKEN_MARK) {
            out.extend_from_slice(token);
            i += TOKEN_MARK.len();
        } else {
            out.push(h[i]);
            i += 1;
        }
    }
    out
}

fn run(f: &Fixture, data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let post = flags & 1 != 0;
    let with_csrf = flags & 2 != 0;
    let method = if post { Method::POST } else { Method::GET };
    let mut b = request(method, "/");
    if post {
        let csrf = if with_csrf { f.csrf.as_str() } else { "wrong" };
        b = b.header("x-csrf-token", csrf);
    }
    let mut sent = Vec::new();
    for h in rest.split(|&b| b == b'\n') {
        let h = with_token(h, f.token.as_bytes());
        if let Ok(v) = HeaderValue::from_bytes(&h) {
            b = b.header(header::COOKIE, v);
            sent.push(h);
        }
    }
    let req = b.body(String::new()).expect("request");
    let res =
        f.rt.block_on(f.svc.clone().oneshot(req))
            .expect("infallible");
    let status = res.status();
    let id = res.body().split_once('|').map(|(id, _)| id);
    let live = match reference(&sent) {
        Expect::Duplicate if post => {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{sent:?}");
            return;
        }
        Expect::Duplicate | Expect::Absent => false,
        Expect::One(v) => {
            std::str::from_utf8(trim(v)).is_ok_and(|v| v.trim_matches('"') == f.token)
        }
    };
    if live && post && !with_csrf {
        assert_eq!(status, StatusCode::FORBIDDEN, "{sent:?}");
        return;
    }
    assert_eq!(status, StatusCode::OK, "{sent:?}: {}", res.body());
    let want = if live { f.id.as_str() } else { "" };
    assert_eq!(id, Some(want), "{sent:?}");
}

fuzz_target!(|data: &[u8]| {
    FIXTURE.with(|f| run(f, data));
});
