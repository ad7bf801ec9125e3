//! The layer's hardening, in process: duplicated session cookies, state
//! changes on safe methods, the skip heuristics on unsafe methods, the
//! layer's refusal bodies and the per-client limit on anonymous sessions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::num::NonZeroU32;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path};
use axum::http::{Method, Request, StatusCode, header};
use axum::routing::{get, post};
use sessionkit::http::{CreationRateLimit, CsrfConfig, Session, SessionError, SkipRules};
use sessionkit_core::{Policy, Subject, TenantId};

mod common;
use common::*;

/// The JSON body of a layer refusal: its `error` code, after checking the
/// `Content-Type`.
fn error_code(r: &Reply) -> String {
    assert_eq!(
        r.headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap()),
        Some("application/json"),
        "{}",
        r.body
    );
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    v["error"].as_str().unwrap().to_owned()
}

/// A POST with the given `Cookie` headers, from the app's own origin, with
/// `csrf` as its token.
fn post_with_cookies(path: &str, cookies: &[String], csrf: &str) -> Request<Body> {
    let mut b = request(Method::POST, path, None).header("x-csrf-token", csrf);
    for c in cookies {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

/// Two session cookies, in one header or across two: on a state-changing
/// request the layer refuses (400) before the handler runs; on a safe one
/// neither counts (no session). Never "the first wins", and neither cookie
/// is cleared (that could leave only a planted one).
#[tokio::test]
async fn two_session_cookies_fail_closed() {
    let app = app().await;
    let token = post_(&app, "/", None).await.cookie().unwrap();
    let csrf = csrf_token(&app, &token).await;
    let other = post_(&app, "/", None).await.cookie().unwrap();
    let before = get_(&app, "/peek", Some(&token)).await.body;
    for cookies in [
        vec![format!("__Host-session={token}; __Host-session={other}")],
        vec![format!("__Host-session={other}; __Host-session={token}")],
        vec![
            format!("__Host-session={token}"),
            format!("__Host-session={other}"),
        ],
        vec![
            format!("a=1; __Host-session={token}"),
            format!("__Host-session={token}"),
        ],
    ] {
        let r = send(&app, post_with_cookies("/", &cookies, &csrf)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{cookies:?}");
        assert_eq!(error_code(&r), "duplicate_session_cookie");
        assert!(r.headers.get(header::SET_COOKIE).is_none(), "{cookies:?}");
        // A safe request: no session is picked.
        let mut b = request(Method::GET, "/peek", None);
        for c in &cookies {
            b = b.header(header::COOKIE, c);
        }
        let r = send(&app, b.body(Body::empty()).unwrap()).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, "tracked=true id= subject= visits=0", "{cookies:?}");
        assert!(r.headers.get(header::SET_COOKIE).is_none(), "{cookies:?}");
    }
    // Nothing reached the handler: the session is as it was, and no
    // session was made.
    assert_eq!(get_(&app, "/peek", Some(&token)).await.body, before);
    assert_eq!(
        app.engine.counts(TenantId::DEFAULT).await.unwrap().active,
        2
    );
    // One cookie still works.
    let r = send(
        &app,
        post_with_cookies("/", &[format!("__Host-session={token}")], &csrf),
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "2"));
}

/// The layer's 403s say why, in JSON, and never repeat what the client
/// sent.
#[tokio::test]
async fn refusals_say_why_without_echoing_the_request() {
    let app =
        app_with(|l| l.with_csrf(CsrfConfig::default().with_allowed_origin("https://app.example")))
            .await;
    let token = post_(&app, "/", None).await.cookie().unwrap();
    let evil = "https://evil.example/<script>";
    let r = send(
        &app,
        Request::post("/")
            .header(header::USER_AGENT, BROWSER)
            .header(header::ORIGIN, evil)
            .header(header::COOKIE, format!("__Host-session={token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&r), "origin_not_allowed");
    assert!(!r.body.contains("evil") && !r.body.contains(&token));
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");

    let forged = "forged-<b>-token";
    let r = send(
        &app,
        request(Method::POST, "/", Some(&token))
            .header("x-csrf-token", forged)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&r), "csrf_failed");
    assert!(!r.body.contains("forged") && !r.body.contains(&token));
    let r = send(
        &app,
        request(Method::POST, "/", Some(&token))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(error_code(&r), "csrf_failed");
}

/// The static-asset guesses (a dot in the last segment, `/static`, …)
/// never skip a state-changing request: `POST /users/john.doe` keeps its
/// session and its CSRF check.
#[tokio::test]
async fn a_state_change_is_never_skipped_as_a_static_asset() {
    let routes = Router::new()
        .route("/users/{name}", get(peek).post(visit))
        .route("/static/upload", post(visit))
        .route("/hooks/in", post(peek));
    let app = custom_with(routes, Policy::default(), |l| {
        l.with_skip(SkipRules::default().with_prefix("/hooks"))
    })
    .await;
    let token = post_(&app, "/users/john.doe", None).await.cookie().unwrap();
    for path in ["/users/john.doe", "/static/upload"] {
        // Cross-site: refused before the handler.
        let r = send(
            &app,
            Request::post(path)
                .header(header::USER_AGENT, BROWSER)
                .header("sec-fetch-site", "cross-site")
                .header(header::COOKIE, format!("__Host-session={token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(error_code(&r), "origin_not_allowed");
        // Same origin without the session's token: refused too.
        let r = send(
            &app,
            request(Method::POST, path, Some(&token))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(error_code(&r), "csrf_failed");
        // With it, the handler sees the session.
        let r = post_(&app, path, Some(&token)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
    assert!(
        get_(&app, "/peek", Some(&token))
            .await
            .body
            .ends_with("visits=3")
    );
    // A safe request there is still skipped, and so is a state change under
    // a prefix the app named.
    let r = get_(&app, "/users/john.doe", Some(&token)).await;
    assert!(r.body.starts_with("tracked=false"), "{}", r.body);
    let r = send(
        &app,
        Request::post("/hooks/in")
            .header(header::USER_AGENT, BROWSER)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.starts_with("tracked=false"), "{}", r.body);
}

/// Every session write a handler tries on `GET`, `HEAD` or `OPTIONS`
/// (no CSRF check guards them) returns `SafeMethod`, and nothing is
/// written: no session made, none changed, none revoked, no cookie.
#[tokio::test]
async fn a_safe_method_cannot_change_the_session() {
    async fn write(session: Session, Path(op): Path<String>) -> Result<String, SessionError> {
        let r = match op.as_str() {
            "insert" => session.insert("visits", 99).await,
            "remove" => session.remove("visits").await,
            "login" => session.login(Subject::new("mallory").unwrap(), &[]).await,
            _ => session.logout().await,
        };
        match r {
            Err(SessionError::SafeMethod) => Err(SessionError::SafeMethod),
            Err(e) => Ok(format!("unexpected error {e}")),
            Ok(()) => Ok("written".to_owned()),
        }
    }
    let app = custom(
        Router::new()
            .route("/", post(visit))
            .route("/w/{op}", axum::routing::any(write)),
        Policy::default(),
    )
    .await;
    let token = post_(&app, "/", None).await.cookie().unwrap();
    let before = get_(&app, "/peek", Some(&token)).await.body;
    for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
        for op in ["insert", "remove", "login", "logout"] {
            for cookie in [None, Some(token.as_str())] {
                let r = send(
                    &app,
                    request(method.clone(), &format!("/w/{op}"), cookie)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await;
                let what = format!("{method} {op} cookie={}", cookie.is_some());
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.body);
                assert!(r.headers.get(header::SET_COOKIE).is_none(), "{what}");
                if method != Method::HEAD {
                    assert_eq!(error_code(&r), "change_on_safe_method", "{what}");
                }
            }
        }
    }
    assert!(live(&app, &token).await, "not logged out");
    assert_eq!(get_(&app, "/peek", Some(&token)).await.body, before);
    let c = app.engine.counts(TenantId::DEFAULT).await.unwrap();
    assert_eq!((c.active, c.anonymous), (1, 1), "nothing made, no login");
    // The same writes on POST go through.
    let r = post_(&app, "/w/insert", Some(&token)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "written"));
}

/// `with_changes_on_safe_methods(true)`: the app's explicit (dangerous)
/// opt-in lets a `GET` write.
#[tokio::test]
async fn an_app_may_opt_in_to_changes_on_safe_methods() {
    let app = custom_with(
        Router::new().route("/", get(visit)),
        Policy::default(),
        |l| l.with_changes_on_safe_methods(true),
    )
    .await;
    let r = get_(&app, "/", None).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "1"));
    let token = r.cookie().unwrap();
    let r = get_(&app, "/", Some(&token)).await;
    assert_eq!(r.body, "2");
    // Off (the default), the same app refuses.
    let app = custom(Router::new().route("/", get(visit)), Policy::default()).await;
    let r = get_(&app, "/", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.cookie(), None);
    assert_eq!(
        app.engine.counts(TenantId::DEFAULT).await.unwrap().active,
        0
    );
}

/// A POST from `peer` that stores something (creating a session when
/// there is none).
fn post_from(peer: &str, path: &str) -> Request<Body> {
    request(Method::POST, path, None)
        .extension(ConnectInfo(peer.parse::<SocketAddr>().unwrap()))
        .body(Body::empty())
        .unwrap()
}

/// One client may start a burst of 30 anonymous sessions, then 10 a
/// second (the default). Over that the write creates nothing and the
/// handler sees `RateLimited` (429 with `Retry-After` when it returns it,
/// or goes on without a session); refusals are counted; other clients and
/// logins are not held back.
#[tokio::test]
async fn anonymous_sessions_are_rate_limited_per_client() {
    async fn lenient(session: Session) -> String {
        match session.insert("seen", true).await {
            Err(SessionError::RateLimited { .. }) => "no session".to_owned(),
            other => format!("{other:?}"),
        }
    }
    let mut kept = None;
    let app = custom_with(
        Router::new()
            .route("/", post(visit))
            .route("/lenient", post(lenient))
            .route("/login", post(login)),
        Policy::default(),
        |l| {
            kept = Some(l.clone());
            l
        },
    )
    .await;
    let layer = kept.unwrap();
    for i in 0..30 {
        let r = send(&app, post_from("198.51.100.7:4000", "/")).await;
        assert_eq!(r.status, StatusCode::OK, "session {i}");
        assert!(r.cookie().is_some());
    }
    let r = send(&app, post_from("198.51.100.7:4001", "/")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers[header::RETRY_AFTER], "1");
    assert_eq!(error_code(&r), "rate_limited");
    assert_eq!(r.cookie(), None, "nothing was created");
    // A handler may go on without a session instead.
    let r = send(&app, post_from("198.51.100.7:4002", "/lenient")).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "no session"));
    assert_eq!(r.cookie(), None);
    assert_eq!(layer.rate_limited_creations(), 2);
    let c = app.engine.counts(TenantId::DEFAULT).await.unwrap();
    assert_eq!(c.anonymous, 30);
    // Another client, and a login from the limited one, go through.
    let r = send(&app, post_from("198.51.100.8:4000", "/")).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(&app, post_from("198.51.100.7:4003", "/login")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.cookie().is_some());
    // One second later: ten more.
    app.clock.advance_secs(1);
    for i in 0..10 {
        let r = send(&app, post_from("198.51.100.7:4000", "/")).await;
        assert_eq!(r.status, StatusCode::OK, "refilled session {i}");
    }
    let r = send(&app, post_from("198.51.100.7:4000", "/")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(layer.rate_limited_creations(), 3);
}

/// The limit can be changed or turned off.
#[tokio::test]
async fn the_creation_limit_is_configurable() {
    let app = custom_with(
        Router::new().route("/", post(visit)),
        Policy::default(),
        |l| l.with_creation_rate_limit(None),
    )
    .await;
    for _ in 0..60 {
        let r = send(&app, post_from("198.51.100.7:4000", "/")).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let one = NonZeroU32::MIN;
    let app = custom_with(
        Router::new().route("/", post(visit)),
        Policy::default(),
        |l| l.with_creation_rate_limit(Some(CreationRateLimit::new(one, one))),
    )
    .await;
    assert_eq!(
        send(&app, post_from("198.51.100.7:4000", "/")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, post_from("198.51.100.7:4000", "/")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}
