//! Helpers shared by the layer's in-process tests: an app behind
//! `SessionLayer` on a manual clock, and requests as a browser sends them.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use sessionkit::MemoryStore;
use sessionkit::http::{Session, SessionError, SessionLayer};
use sessionkit::{EngineKeys, SessionManager, ValidateRequest, Validation};
use sessionkit_core::{ManualClock, Millis, Policy, Subject, TenantId};
use tower::ServiceExt;

pub const START: i64 = 1_767_225_600_000;
pub const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";

pub struct App {
    pub router: Router,
    pub engine: Arc<SessionManager<MemoryStore>>,
    pub clock: ManualClock,
}

pub async fn visit(session: Session) -> Result<String, SessionError> {
    let n = session.get::<u64>("visits").unwrap_or(0) + 1;
    session.insert("visits", n).await?;
    Ok(n.to_string())
}

pub async fn peek(session: Session) -> String {
    format!(
        "tracked={} id={} subject={} visits={}",
        session.is_tracked(),
        session.id().map(|i| i.to_string()).unwrap_or_default(),
        session
            .subject()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        session.get::<u64>("visits").unwrap_or(0),
    )
}

pub async fn login(session: Session) -> Result<String, SessionError> {
    session
        .login(Subject::new("user-1").unwrap(), &["visits"])
        .await?;
    Ok(session.id().unwrap().to_string())
}

pub async fn logout(session: Session) -> Result<(), SessionError> {
    session.logout().await
}

pub async fn csrf(session: Session) -> String {
    session.csrf_token().unwrap_or_default()
}

pub async fn ip(session: Session) -> Result<String, SessionError> {
    session.insert("seen", true).await?;
    Ok(session
        .record()
        .and_then(|r| r.client.ip)
        .map(|ip| ip.to_string())
        .unwrap_or_default())
}

pub async fn app_with(
    layer: impl FnOnce(SessionLayer<MemoryStore>) -> SessionLayer<MemoryStore>,
) -> App {
    let policy = Policy::builder()
        .anonymous_idle_timeout_secs(3600)
        .anonymous_absolute_timeout_secs(7 * 86_400)
        .build()
        .unwrap();
    let routes = Router::new()
        .route("/", get(visit).post(visit))
        .route("/static/app.js", get(peek))
        .route("/api/peek", get(peek))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/ip", post(ip));
    custom_with(routes, policy, layer).await
}

/// `routes` (plus `/peek` and `/csrf`) behind a default layer, on an
/// engine with `policy`.
pub async fn custom(routes: Router, policy: Policy) -> App {
    custom_with(routes, policy, |l| l).await
}

/// `routes` (plus `/peek` and `/csrf`) behind the layer `layer` makes, on
/// an engine with `policy` and a manual clock.
pub async fn custom_with(
    routes: Router,
    policy: Policy,
    layer: impl FnOnce(SessionLayer<MemoryStore>) -> SessionLayer<MemoryStore>,
) -> App {
    let clock = ManualClock::new(Millis::from_millis(START));
    let engine = Arc::new(
        SessionManager::builder(MemoryStore::new(), EngineKeys::generate().unwrap())
            .with_policy(policy)
            .with_clock(clock.clone())
            .build()
            .await
            .unwrap(),
    );
    let router = routes
        .route("/peek", get(peek))
        .route("/csrf", get(csrf))
        .layer(layer(SessionLayer::new(Arc::clone(&engine))));
    App {
        router,
        engine,
        clock,
    }
}

pub async fn app() -> App {
    app_with(|l| l).await
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The session cookie this response sets: `Some("")` when it clears it.
    pub fn cookie(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .find(|v| v.starts_with("__Host-session="))
            .map(|v| {
                v["__Host-session=".len()..]
                    .split(';')
                    .next()
                    .unwrap()
                    .to_owned()
            })
    }

    pub fn set_cookie_header(&self) -> String {
        self.headers
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

pub fn request(method: Method, path: &str, cookie: Option<&str>) -> axum::http::request::Builder {
    let mut b = Request::builder()
        .method(method.clone())
        .uri(path)
        .header(header::USER_AGENT, BROWSER);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, format!("theme=dark; __Host-session={c}"));
    }
    if method != Method::GET {
        b = b.header("sec-fetch-site", "same-origin");
    }
    b
}

/// A browser request authenticated by `Authorization: Bearer <token>`.
pub fn bearer(method: Method, path: &str, token: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::USER_AGENT, BROWSER)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

pub async fn send(app: &App, req: Request<Body>) -> Reply {
    let res = app.router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

pub async fn get_(app: &App, path: &str, cookie: Option<&str>) -> Reply {
    send(
        app,
        request(Method::GET, path, cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

pub async fn csrf_token(app: &App, cookie: &str) -> String {
    get_(app, "/csrf", Some(cookie)).await.body
}

pub async fn post_(app: &App, path: &str, cookie: Option<&str>) -> Reply {
    let mut b = request(Method::POST, path, cookie);
    if let Some(c) = cookie {
        b = b.header("x-csrf-token", csrf_token(app, c).await);
    }
    send(app, b.body(Body::empty()).unwrap()).await
}

pub async fn live(app: &App, token: &str) -> bool {
    matches!(
        app.engine
            .validate(TenantId::DEFAULT, token, &ValidateRequest::default())
            .await
            .unwrap(),
        Validation::Valid { .. }
    )
}
