//! A small web app with cookie sessions: `SessionLayer` in front of three
//! routes. A visitor's counter lives in an anonymous session made on the
//! first click; "log in" upgrades it (new id and token, the counter kept);
//! "log out" revokes it. Posts carry the session's CSRF token in
//! `X-CSRF-Token`, from script.
//!
//! ```sh
//! cargo run -p example-cookie-login     # then open http://localhost:3000
//! ```
//!
//! `tests/browser.rs` drives it in headless Chromium.
//!
//! Use `localhost`, not `127.0.0.1`: browsers accept the `__Host-` cookie
//! (which is `Secure`) over plain HTTP on `localhost` only.

use std::sync::Arc;

use axum::Router;
use axum::extract::Form;
use axum::response::Html;
use axum::routing::{get, post};
use serde::Deserialize;
use sessionkit::MemoryStore;
use sessionkit::http::{Session, SessionError, SessionLayer};
use sessionkit::{EngineKeys, SessionManager};
use sessionkit_core::Subject;

/// The app's routes behind the layer, on an engine over a `MemoryStore`.
pub async fn app() -> Result<Router, Box<dyn std::error::Error>> {
    let engine = SessionManager::builder(MemoryStore::new(), EngineKeys::generate()?)
        .build()
        .await?;
    Ok(Router::new()
        .route("/", get(page))
        .route("/click", post(click))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .layer(SessionLayer::new(Arc::new(engine))))
}

async fn page(session: Session) -> Html<String> {
    let who = session
        .subject()
        .map_or_else(|| "a visitor".to_owned(), |s| s.as_str().to_owned());
    let clicks = session.get::<u64>("clicks").unwrap_or(0);
    let csrf = session.csrf_token().unwrap_or_default();
    Html(format!(
        r#"<!doctype html><meta charset="utf-8"><title>cookie login</title>
<meta name="csrf-token" content="{csrf}">
<p>Hello, {who}. Clicks: {clicks}.</p>
<button onclick="send('/click')">click</button>
<input id="name" placeholder="user name"> <button onclick="send('/login', 'name=' + encodeURIComponent(document.getElementById('name').value))">log in</button>
<button onclick="send('/logout')">log out</button>
<script>
async function send(path, body) {{
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  await fetch(path, {{ method: "POST", body: body ?? "", headers: {{
    "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded" }} }});
  location.reload();
}}
</script>"#,
        who = escape(&who),
    ))
}

/// Minimal HTML escaping for the user name shown on the page.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn click(session: Session) -> Result<(), SessionError> {
    let n = session.get::<u64>("clicks").unwrap_or(0) + 1;
    session.insert("clicks", n).await
}

#[derive(Deserialize)]
struct Login {
    name: String,
}

async fn login(session: Session, Form(form): Form<Login>) -> Result<(), SessionError> {
    // A real app checks a password here. The subject is an opaque user id.
    let Ok(subject) = Subject::new(form.name.trim()) else {
        return Ok(());
    };
    session.login(subject, &["clicks"]).await
}

async fn logout(session: Session) -> Result<(), SessionError> {
    session.logout().await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";

    async fn call(
        app: &Router,
        method: &str,
        path: &str,
        cookie: &str,
        csrf: &str,
        body: &str,
    ) -> (Option<String>, String) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::USER_AGENT, UA)
            .header(header::COOKIE, cookie)
            .header("sec-fetch-site", "same-origin")
            .header("x-csrf-token", csrf)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert!(
            res.status().is_success(),
            "{method} {path}: {}",
            res.status()
        );
        let set = res
            .headers()
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
        let text = res.into_body().collect().await.unwrap().to_bytes();
        (set, String::from_utf8(text.to_vec()).unwrap())
    }

    fn csrf_of(page: &str) -> String {
        page.split(r#"<meta name="csrf-token" content=""#)
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    }

    #[tokio::test]
    async fn click_log_in_and_out() {
        let app = app().await.unwrap();
        let (_, page) = call(&app, "GET", "/", "", "", "").await;
        assert!(page.contains("Hello, a visitor. Clicks: 0."));
        let (cookie, _) = call(&app, "POST", "/click", "", "", "").await;
        let cookie = cookie.unwrap();
        let (_, page) = call(&app, "GET", "/", &cookie, "", "").await;
        assert!(page.contains("Clicks: 1."), "{page}");
        let csrf = csrf_of(&page);
        let (user, _) = call(&app, "POST", "/login", &cookie, &csrf, "name=ada%3Cb%3E").await;
        let user = user.unwrap();
        assert_ne!(user, cookie);
        let (_, page) = call(&app, "GET", "/", &user, "", "").await;
        assert!(page.contains("Hello, ada&lt;b&gt;. Clicks: 1."), "{page}");
        let csrf = csrf_of(&page);
        let (cleared, _) = call(&app, "POST", "/logout", &user, &csrf, "").await;
        assert_eq!(cleared.as_deref(), Some("__Host-session="));
        let (_, page) = call(&app, "GET", "/", &user, "", "").await;
        assert!(page.contains("Hello, a visitor. Clicks: 0."), "{page}");
    }
}
