//! `SessionLayer` in front of a real axum router, driven in process with
//! `tower::ServiceExt::oneshot` (docs/http-layer.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use sessionkit::MemoryStore;
use sessionkit::http::{
    CsrfConfig, Session, SessionError, SessionLayer, SkipRules, TrustedProxies,
};
use sessionkit::{EngineKeys, SessionManager};
use sessionkit_core::{ManualClock, Millis, Policy, Subject, TenantId};
use tower::ServiceExt;

mod common;
use common::*;

#[tokio::test]
async fn a_visitor_gets_a_session_only_when_the_app_stores_something() {
    let app = app().await;
    let r = get_(&app, "/peek", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "tracked=true id= subject= visits=0");
    assert_eq!(r.cookie(), None, "reading stores nothing");
    assert_eq!(
        app.engine.counts(TenantId::DEFAULT).await.unwrap().active,
        0
    );

    let r = post_(&app, "/", None).await;
    assert_eq!(r.body, "1");
    let token = r.cookie().expect("a session cookie");
    let set = r.set_cookie_header();
    for part in [
        "HttpOnly",
        "Secure",
        "Path=/",
        "SameSite=Lax",
        "Max-Age=604800",
    ] {
        assert!(set.contains(part), "{set} lacks {part}");
    }
    assert!(!set.contains("Domain"));
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(r.headers[header::VARY], "Cookie");
    assert!(token.starts_with("ses_"));

    let r = post_(&app, "/", Some(&token)).await;
    assert_eq!(r.body, "2");
    assert_eq!(r.cookie(), None, "the same token is kept");
    assert_eq!(r.headers[header::VARY], "Cookie");
    let r = get_(&app, "/peek", Some(&token)).await;
    assert!(r.body.ends_with("visits=2"), "{}", r.body);
    assert_eq!(
        app.engine
            .counts(TenantId::DEFAULT)
            .await
            .unwrap()
            .anonymous,
        1
    );
}

#[tokio::test]
async fn login_upgrades_the_session_and_logout_revokes_it() {
    let app = app().await;
    let anon = post_(&app, "/", None).await.cookie().unwrap();
    let r = post_(&app, "/login", Some(&anon)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let user = r.cookie().expect("a new token");
    assert_ne!(user, anon);
    assert!(
        !live(&app, &anon).await,
        "the anonymous token is dead after login"
    );
    let r = get_(&app, "/peek", Some(&user)).await;
    assert!(
        r.body.contains("subject=user-1 visits=1"),
        "kept attributes: {}",
        r.body
    );

    let r = post_(&app, "/logout", Some(&user)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.cookie().as_deref(), Some(""), "the cookie is cleared");
    assert!(r.set_cookie_header().contains("Max-Age=0"));
    assert!(!live(&app, &user).await);
    // The revoked token gets no session back; its cookie is cleared again.
    let r = get_(&app, "/peek", Some(&user)).await;
    assert_eq!(r.body, "tracked=true id= subject= visits=0");
    assert_eq!(r.cookie().as_deref(), Some(""));
}

#[tokio::test]
async fn login_without_a_session_creates_one_for_the_subject() {
    let app = app().await;
    let r = post_(&app, "/login", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let token = r.cookie().unwrap();
    let r = get_(&app, "/peek", Some(&token)).await;
    assert!(r.body.contains("subject=user-1"), "{}", r.body);
}

#[tokio::test]
async fn an_expired_or_forged_cookie_is_cleared_and_never_revived() {
    let app = app().await;
    let token = post_(&app, "/", None).await.cookie().unwrap();
    app.clock.advance_secs(3601); // past the anonymous idle timeout
    let r = get_(&app, "/peek", Some(&token)).await;
    assert_eq!(r.body, "tracked=true id= subject= visits=0");
    assert_eq!(r.cookie().as_deref(), Some(""));
    // Storing something now makes a new session, not the old one.
    let r = post_(&app, "/", Some(&token)).await;
    assert_eq!(r.body, "1");
    let fresh = r.cookie().unwrap();
    assert!(!fresh.is_empty() && fresh != token);

    for forged in [
        "ses_AAAA",
        "not a token",
        "ses_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let r = get_(&app, "/peek", Some(forged)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.cookie().as_deref(), Some(""), "{forged}");
    }
}

#[tokio::test]
async fn skipped_paths_and_bots_get_no_stored_session() {
    let app = app_with(|l| l.with_skip(SkipRules::default().with_prefix("/api"))).await;
    let token = post_(&app, "/", None).await.cookie().unwrap();
    for path in ["/static/app.js", "/api/peek"] {
        let r = get_(&app, path, Some(&token)).await;
        assert_eq!(r.body, "tracked=false id= subject= visits=0", "{path}");
        assert!(r.headers.get(header::SET_COOKIE).is_none());
        assert!(r.headers.get(header::VARY).is_none());
    }
    let bot = Request::get("/")
        .header(
            header::USER_AGENT,
            "Mozilla/5.0 (compatible; Googlebot/2.1)",
        )
        .body(Body::empty())
        .unwrap();
    let r = send(&app, bot).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "a bot cannot store anything"
    );
    assert!(r.headers.get(header::SET_COOKIE).is_none());
    let no_agent = Request::get("/peek").body(Body::empty()).unwrap();
    assert!(send(&app, no_agent).await.body.starts_with("tracked=false"));
    assert_eq!(
        app.engine.counts(TenantId::DEFAULT).await.unwrap().active,
        1
    );
}

#[tokio::test]
async fn state_changing_requests_need_their_origin_and_the_sessions_csrf_token() {
    let app =
        app_with(|l| l.with_csrf(CsrfConfig::default().with_allowed_origin("https://app.example")))
            .await;
    let token = post_(&app, "/", None).await.cookie().unwrap();
    let csrf = csrf_token(&app, &token).await;
    assert_eq!(csrf.len(), 43, "{csrf}");
    let post = |site: Option<&'static str>, origin: Option<&'static str>, csrf: Option<&str>| {
        let mut b = Request::post("/")
            .header(header::USER_AGENT, BROWSER)
            .header(header::COOKIE, format!("__Host-session={token}"));
        if let Some(s) = site {
            b = b.header("sec-fetch-site", s);
        }
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        if let Some(c) = csrf {
            b = b.header("x-csrf-token", c);
        }
        b.body(Body::empty()).unwrap()
    };
    let cases = [
        (
            Some("same-origin"),
            None,
            Some(csrf.as_str()),
            StatusCode::OK,
        ),
        (
            None,
            Some("https://app.example"),
            Some(csrf.as_str()),
            StatusCode::OK,
        ),
        (Some("same-origin"), None, None, StatusCode::FORBIDDEN),
        (
            Some("same-origin"),
            None,
            Some("wrong"),
            StatusCode::FORBIDDEN,
        ),
        (
            Some("cross-site"),
            None,
            Some(csrf.as_str()),
            StatusCode::FORBIDDEN,
        ),
        (
            Some("none"),
            None,
            Some(csrf.as_str()),
            StatusCode::FORBIDDEN,
        ),
        (
            Some("same-site"),
            None,
            Some(csrf.as_str()),
            StatusCode::FORBIDDEN,
        ),
        (
            None,
            Some("https://evil.example"),
            Some(csrf.as_str()),
            StatusCode::FORBIDDEN,
        ),
        (None, None, Some(csrf.as_str()), StatusCode::FORBIDDEN),
    ];
    let before = get_(&app, "/peek", Some(&token)).await.body;
    let mut ok = 0;
    for (site, origin, c, want) in cases {
        let r = send(&app, post(site, origin, c)).await;
        assert_eq!(r.status, want, "site {site:?} origin {origin:?} csrf {c:?}");
        ok += usize::from(want == StatusCode::OK);
    }
    // Only the accepted posts reached the handler.
    let after = get_(&app, "/peek", Some(&token)).await.body;
    assert!(
        before.ends_with("visits=1") && after.ends_with(&format!("visits={}", 1 + ok)),
        "{before} / {after}"
    );
    // A cross-site login form with no session is refused too (login CSRF).
    let r = send(
        &app,
        Request::post("/login")
            .header(header::USER_AGENT, BROWSER)
            .header("sec-fetch-site", "cross-site")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_bearer_token_is_a_session_without_cookie_or_csrf() {
    let app = app().await;
    let token = post_(&app, "/", None).await.cookie().unwrap();
    let r = send(&app, bearer(Method::POST, "/", &token)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "2");
    assert!(r.headers.get(header::SET_COOKIE).is_none());
    let r = send(&app, bearer(Method::POST, "/login", &token)).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "bearer sessions log in elsewhere"
    );
    // A dead bearer token starts no session (its token would go nowhere).
    let r = send(
        &app,
        bearer(
            Method::POST,
            "/",
            "ses_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.headers.get(header::SET_COOKIE).is_none());
    assert_eq!(
        app.engine.counts(TenantId::DEFAULT).await.unwrap().active,
        1
    );
}

#[tokio::test]
async fn storing_then_logging_in_within_one_request_upgrades_the_new_session() {
    async fn cart_then_login(session: Session) -> Result<String, SessionError> {
        session.insert("cart", 3).await?;
        let anon = session.id().unwrap();
        session
            .login(Subject::new("user-2").unwrap(), &["cart"])
            .await?;
        Ok(format!("{anon} {}", session.id().unwrap()))
    }
    let app = custom(
        Router::new().route("/", post(cart_then_login)),
        Policy::default(),
    )
    .await;
    let r = post_(&app, "/", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (anon, user) = r.body.split_once(' ').unwrap();
    assert_ne!(anon, user);
    let counts = app.engine.counts(TenantId::DEFAULT).await.unwrap();
    assert_eq!(
        (counts.active, counts.anonymous),
        (1, 0),
        "the anonymous session was upgraded, not left behind"
    );
    let token = r.cookie().unwrap();
    let r = get_(&app, "/peek", Some(&token)).await;
    assert!(
        r.body.contains(&format!("id={user} subject=user-2")),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn the_client_ip_comes_through_trusted_proxies_only() {
    let call = |app: &App, peer: &str, xff: &str| {
        let req = Request::post("/ip")
            .header("sec-fetch-site", "same-origin")
            .header(header::USER_AGENT, BROWSER)
            .header("x-forwarded-for", xff)
            .extension(ConnectInfo(peer.parse::<SocketAddr>().unwrap()))
            .body(Body::empty())
            .unwrap();
        let router = app.router.clone();
        async move {
            let res = router.oneshot(req).await.unwrap();
            String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
        }
    };
    let open = app().await;
    assert_eq!(
        call(&open, "198.51.100.7:5000", "203.0.113.9").await,
        "198.51.100.7"
    );
    let proxied = app_with(|l| {
        l.with_trusted_proxies(TrustedProxies::none().with("10.0.0.0/8".parse().unwrap()))
    })
    .await;
    assert_eq!(
        call(&proxied, "10.0.0.1:5000", "203.0.113.9").await,
        "203.0.113.9"
    );
    assert_eq!(
        call(&proxied, "198.51.100.7:5000", "203.0.113.9").await,
        "198.51.100.7"
    );
}

#[tokio::test]
async fn a_custom_cookie_name_keeps_the_host_prefix() {
    let app = app_with(|l| l.with_cookie_name("app").unwrap()).await;
    let r = post_(&app, "/", None).await;
    assert!(
        r.set_cookie_header().starts_with("__Host-app=ses_"),
        "{}",
        r.set_cookie_header()
    );
    assert!(
        SessionLayer::new(Arc::clone(&app.engine))
            .with_cookie_name("a b")
            .is_err()
    );
    assert!(
        SessionLayer::new(Arc::clone(&app.engine))
            .with_cookie_name("")
            .is_err()
    );
}

#[tokio::test]
async fn a_store_that_is_down_fails_the_request_closed() {
    let store = sessionkit_store_tests::OutageStore::default();
    let engine = Arc::new(
        SessionManager::builder(store.clone(), EngineKeys::generate().unwrap())
            .build()
            .await
            .unwrap(),
    );
    let router = Router::new()
        .route("/", get(visit))
        .route("/peek", get(peek))
        // A GET that writes: this test is about the store, not CSRF.
        .layer(SessionLayer::new(engine).with_changes_on_safe_methods(true));
    let call = |cookie: Option<String>, path: &'static str| {
        let mut b = Request::get(path).header(header::USER_AGENT, BROWSER);
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, format!("__Host-session={c}"));
        }
        router.clone().oneshot(b.body(Body::empty()).unwrap())
    };
    let res = call(None, "/").await.unwrap();
    let token = res.headers()[header::SET_COOKIE].to_str().unwrap()["__Host-session=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    store.set_down(true);
    // The session cannot be checked: 503 before the handler runs, never
    // "no session" and never "allow".
    let res = call(Some(token.clone()), "/peek").await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[header::RETRY_AFTER], "1");
    assert!(
        res.headers().get(header::SET_COOKIE).is_none(),
        "the cookie is kept"
    );
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
    // A write with no session to check: the handler's error is 503.
    let res = call(None, "/").await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    store.set_down(false);
    let res = call(Some(token), "/").await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"2", "the session is intact after the outage");
}

#[tokio::test]
async fn a_session_bound_to_its_client_is_refused_to_another() {
    async fn context(session: Session) -> String {
        format!(
            "anonymous={} trace={} ip={}",
            session.is_anonymous(),
            session.trace_id().unwrap_or("-"),
            session
                .client_ip()
                .map(|i| i.to_string())
                .unwrap_or_default(),
        )
    }
    let app = custom(
        Router::new()
            .route("/", post(visit))
            .route("/context", get(context)),
        Policy::builder()
            .fingerprint(sessionkit_core::FingerprintMode::Enforce, false)
            .build()
            .unwrap(),
    )
    .await;
    let token = post_(&app, "/", None).await.cookie().unwrap();
    assert!(
        get_(&app, "/peek", Some(&token))
            .await
            .body
            .ends_with("visits=1")
    );
    // The same cookie from another browser: no session, cookie cleared.
    let other = Request::get("/peek")
        .header(
            header::USER_AGENT,
            "Mozilla/5.0 (Windows NT 10.0) Chrome/140.0",
        )
        .header(header::COOKIE, format!("__Host-session={token}"))
        .body(Body::empty())
        .unwrap();
    let r = send(&app, other).await;
    assert_eq!(r.body, "tracked=true id= subject= visits=0");
    assert_eq!(r.cookie().as_deref(), Some(""));
    // The request context S1's handlers read.
    let req = Request::get("/context")
        .header(header::USER_AGENT, BROWSER)
        .header(header::COOKIE, format!("__Host-session={token}"))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .extension(ConnectInfo(
            "192.0.2.10:4000".parse::<SocketAddr>().unwrap(),
        ))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&app, req).await.body,
        "anonymous=true trace=4bf92f3577b34da6a3ce929d0e0e4736 ip=192.0.2.10"
    );
}

#[tokio::test]
async fn another_cookie_with_any_bytes_does_not_hide_the_session() {
    let app = app().await;
    let token = post_(&app, "/", None).await.cookie().unwrap();
    let mut v = b"pref=caf\xc3\xa9; __Host-session=".to_vec();
    v.extend_from_slice(token.as_bytes());
    let req = Request::get("/peek")
        .header(header::USER_AGENT, BROWSER)
        .header(
            header::COOKIE,
            axum::http::HeaderValue::from_bytes(&v).unwrap(),
        )
        .body(Body::empty())
        .unwrap();
    let r = send(&app, req).await;
    assert!(
        !r.body.contains("id= ") && r.body.ends_with("visits=1"),
        "the session was seen: {}",
        r.body
    );
    assert_eq!(r.cookie(), None, "and its cookie kept");
}

#[tokio::test]
async fn every_tracked_response_varies_by_its_credential() {
    let app = app().await;
    assert_eq!(
        get_(&app, "/peek", None).await.headers[header::VARY],
        "Cookie"
    );
    let token = post_(&app, "/", None).await.cookie().unwrap();
    let r = send(&app, bearer(Method::GET, "/peek", &token)).await;
    let vary: Vec<_> = r.headers.get_all(header::VARY).iter().collect();
    assert_eq!(vary, ["Cookie", "Authorization"]);
}

#[tokio::test]
async fn a_phone_whose_maker_ends_in_bot_can_log_in() {
    let app = app().await;
    let r = send(
        &app,
        Request::post("/login")
            .header(
                header::USER_AGENT,
                "Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36",
            )
            .header("sec-fetch-site", "same-origin")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.cookie().is_some());
}

#[tokio::test]
async fn with_x_real_ip_configured_a_client_sent_x_forwarded_for_is_ignored() {
    let app = app_with(|l| {
        l.with_trusted_proxies(
            TrustedProxies::none()
                .with("10.0.0.0/8".parse().unwrap())
                .with_header(sessionkit::http::ForwardedHeader::XRealIp),
        )
    })
    .await;
    let req = Request::post("/ip")
        .header("sec-fetch-site", "same-origin")
        .header(header::USER_AGENT, BROWSER)
        .header("x-real-ip", "203.0.113.5")
        .header("x-forwarded-for", "6.6.6.6")
        .extension(ConnectInfo("10.0.0.1:5000".parse::<SocketAddr>().unwrap()))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, req).await.body, "203.0.113.5");
}

#[tokio::test]
async fn insert_login_logout_insert_in_one_request_leaves_one_live_session() {
    async fn seq(session: Session) -> Result<String, SessionError> {
        session.insert("a", 1).await?;
        session.login(Subject::new("u").unwrap(), &["a"]).await?;
        session.logout().await?;
        session.insert("c", 2).await?;
        Ok(session.is_anonymous().to_string())
    }
    let app = custom(Router::new().route("/", post(seq)), Policy::default()).await;
    let r = post_(&app, "/", None).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "true"));
    assert_eq!(r.headers.get_all(header::SET_COOKIE).iter().count(), 1);
    let token = r.cookie().unwrap();
    assert!(live(&app, &token).await);
    let c = app.engine.counts(TenantId::DEFAULT).await.unwrap();
    assert_eq!((c.active, c.anonymous), (1, 1));
}

mod any_input {
    //! Invariant 9 at the layer: no header a client sends makes it panic,
    //! and none gets a session it was not given.
    use super::*;
    use proptest::prelude::*;

    fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
        // Visible ASCII, spaces and tabs, and the high octets a header may
        // carry (HeaderValue refuses control characters).
        proptest::collection::vec(
            prop_oneof![0x20u8..0x7f, Just(b'\t'), 0x80u8..=0xff],
            0..120,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn any_headers_get_an_answer(
            cookie in header_bytes(),
            auth in header_bytes(),
            origin in header_bytes(),
            site in header_bytes(),
            csrf in header_bytes(),
            xff in header_bytes(),
            trace in header_bytes(),
            ua in header_bytes(),
            post in any::<bool>(),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let app = app_with(|l| {
                    l.with_trusted_proxies(TrustedProxies::none().with("0.0.0.0/0".parse().unwrap()))
                })
                .await;
                let mut b = Request::builder()
                    .method(if post { Method::POST } else { Method::GET })
                    .uri("/")
                    .extension(ConnectInfo("10.0.0.1:1".parse::<SocketAddr>().unwrap()));
                for (name, v) in [
                    (header::COOKIE.as_str(), &cookie),
                    (header::AUTHORIZATION.as_str(), &auth),
                    (header::ORIGIN.as_str(), &origin),
                    ("sec-fetch-site", &site),
                    ("x-csrf-token", &csrf),
                    ("x-forwarded-for", &xff),
                    ("traceparent", &trace),
                    (header::USER_AGENT.as_str(), &ua),
                ] {
                    if let Ok(v) = axum::http::HeaderValue::from_bytes(v) {
                        b = b.header(name, v);
                    }
                }
                let r = send(&app, b.body(Body::empty()).unwrap()).await;
                // Whatever came in, no session existed to be found: a write
                // made a new one or was refused, and nothing else is live.
                let active = app.engine.counts(TenantId::DEFAULT).await.unwrap().active;
                prop_assert!(active <= 1, "{} sessions", active);
                prop_assert!(
                    [200, 400, 403].contains(&r.status.as_u16()),
                    "status {}", r.status
                );
                Ok(())
            })?;
        }
    }
}

/// `Authorization: Bearer <access JWT>`: the layer validates it like a
/// session token (signature, then the session's liveness), so a revoke
/// works at once; an expired access token is no session.
#[cfg(feature = "jwt")]
#[tokio::test]
async fn a_bearer_access_jwt_is_the_session_until_it_is_revoked() {
    use sessionkit::jwt::{KeyRing, SigningAlgorithm};
    let clock = ManualClock::new(Millis::from_millis(START));
    let ring = KeyRing::generate(SigningAlgorithm::EdDSA, START / 1000).unwrap();
    let engine = Arc::new(
        SessionManager::builder(MemoryStore::new(), EngineKeys::generate().unwrap())
            .with_clock(clock.clone())
            .with_access_tokens(ring, sessionkit::AccessConfig::default())
            .build()
            .await
            .unwrap(),
    );
    let router = Router::new()
        .route("/peek", get(peek))
        .layer(SessionLayer::new(Arc::clone(&engine)));
    let app = App {
        router,
        engine: Arc::clone(&engine),
        clock: clock.clone(),
    };
    let pair = engine
        .create_pair(
            TenantId::DEFAULT,
            sessionkit::NewSession::for_subject(Subject::new("ann").unwrap()),
        )
        .await
        .unwrap();
    let r = send(&app, bearer(Method::GET, "/peek", &pair.access_token)).await;
    assert_eq!(
        r.body,
        format!("tracked=true id={} subject=ann visits=0", pair.session.id)
    );
    // A token signed by another key is no session.
    let other = KeyRing::generate(SigningAlgorithm::EdDSA, START / 1000).unwrap();
    let stranger = SessionManager::builder(MemoryStore::new(), EngineKeys::generate().unwrap())
        .with_clock(clock.clone())
        .with_access_tokens(other, sessionkit::AccessConfig::default())
        .build()
        .await
        .unwrap()
        .create_pair(TenantId::DEFAULT, sessionkit::NewSession::anonymous())
        .await
        .unwrap();
    let r = send(&app, bearer(Method::GET, "/peek", &stranger.access_token)).await;
    assert!(
        r.body.starts_with("tracked=true id= subject="),
        "{}",
        r.body
    );
    // Revoked by its refresh token: the access token dies at once.
    engine
        .revoke_token(TenantId::DEFAULT, &pair.refresh_token)
        .await
        .unwrap();
    let r = send(&app, bearer(Method::GET, "/peek", &pair.access_token)).await;
    assert!(
        r.body.starts_with("tracked=true id= subject="),
        "{}",
        r.body
    );
}

/// Two `Authorization` headers, or two session cookies: neither counts
/// (fail closed, never "the first wins").
#[tokio::test]
async fn duplicated_credentials_count_for_nothing() {
    let app = app().await;
    let token = post_(&app, "/", None).await.cookie().unwrap();
    let mut req = bearer(Method::GET, "/peek", &token);
    req.headers_mut().append(
        header::AUTHORIZATION,
        "Bearer ses_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            .parse()
            .unwrap(),
    );
    let r = send(&app, req).await;
    assert!(r.body.starts_with("tracked=true id= "), "{}", r.body);
    let req = request(Method::GET, "/peek", None)
        .header(
            header::COOKIE,
            format!("__Host-session={token}; __Host-session={token}"),
        )
        .body(Body::empty())
        .unwrap();
    let r = send(&app, req).await;
    assert!(r.body.starts_with("tracked=true id= "), "{}", r.body);
    // One of each still works.
    let r = send(&app, bearer(Method::GET, "/peek", &token)).await;
    assert!(!r.body.starts_with("tracked=true id= "), "{}", r.body);
}

#[tokio::test]
async fn a_sensitive_handler_asks_for_a_step_up_which_rotates_the_cookie() {
    async fn transfer(session: Session) -> Result<&'static str, SessionError> {
        session.require_aal(2)?;
        Ok("sent")
    }
    async fn step_up(session: Session) -> Result<String, SessionError> {
        let user = session
            .subject()
            .ok_or(SessionError::ReauthenticationRequired)?;
        let two = sessionkit_core::Assurance::new(2, vec!["pwd".into(), "otp".into()]).unwrap();
        session.login_with(user, &["cart"], two).await?;
        let rec = session.record().unwrap();
        Ok(format!("{} {:?}", rec.aal(), rec.amr()))
    }
    let app = custom(
        Router::new()
            .route("/transfer", post(transfer))
            .route("/step-up", post(step_up))
            .route("/login", post(login)),
        Policy::default(),
    )
    .await;
    let user = post_(&app, "/login", None).await.cookie().unwrap();
    let r = post_(&app, "/transfer", Some(&user)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("reauthentication_required"), "{}", r.body);
    let r = post_(&app, "/step-up", Some(&user)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, r#"2 ["pwd", "otp"]"#);
    let strong = r.cookie().expect("a new token at the higher level");
    assert_ne!(strong, user);
    assert!(!live(&app, &user).await, "the weaker token died");
    let r = post_(&app, "/transfer", Some(&strong)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "sent"));
    // Anonymous: level 0.
    let r = post_(&app, "/transfer", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
