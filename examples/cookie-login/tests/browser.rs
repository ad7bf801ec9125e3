//! The example in a real browser: Debian's headless Chromium, driven
//! through chromedriver's WebDriver API. It checks what only a browser can:
//! that it keeps the `__Host-` cookie (`Secure`, on `http://localhost`), that
//! script cannot read it (`HttpOnly`), and that a page on another site
//! cannot make it click (CSRF).
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian packages
//! `chromium`, `chromium-driver`). Skipped with a notice when they are
//! missing, except under `CI=true`, where that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// A desktop browser's user agent: headless Chromium's own says
/// "HeadlessChrome", which the layer rightly takes for a bot.
const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";

struct Driver {
    child: Child,
    url: String,
    http: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Driver {
    async fn start() -> Driver {
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http.get(format!("{url}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-agent={UA}"),
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let mut d = Driver {
            child,
            url,
            http,
            session: String::new(),
            _profile: profile,
        };
        let v = d.call("POST", "/session", caps).await;
        d.session = v["sessionId"]
            .as_str()
            .expect("a WebDriver session")
            .to_owned();
        d
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.url);
        let req = match method {
            "POST" => self.http.post(url).json(&body),
            "DELETE" => self.http.delete(url),
            _ => self.http.get(url),
        };
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(v["value"].get("error").is_none(), "WebDriver {path}: {v}");
        v["value"].clone()
    }

    async fn open(&self, url: &str) {
        let path = format!("/session/{}/url", self.session);
        self.call("POST", &path, json!({"url": url})).await;
    }

    async fn text(&self) -> String {
        self.js("return document.body.innerText", json!([]))
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn js(&self, script: &str, args: Value) -> Value {
        let path = format!("/session/{}/execute/sync", self.session);
        self.call("POST", &path, json!({"script": script, "args": args}))
            .await
    }

    /// Runs `script`, which ends by calling `done(value)`.
    async fn js_async(&self, script: &str) -> Value {
        let path = format!("/session/{}/execute/async", self.session);
        let script = format!("const done = arguments[arguments.length - 1]; {script}");
        self.call("POST", &path, json!({"script": script, "args": []}))
            .await
    }

    /// POSTs `path` from the current page; returns the status.
    async fn post(&self, path: &str, body: &str, with_csrf: bool) -> u64 {
        let csrf = if with_csrf {
            r#"document.querySelector('meta[name="csrf-token"]').content"#
        } else {
            r#""""#
        };
        let script = format!(
            r#"fetch({path:?}, {{method: "POST", body: {body:?}, headers: {{"X-CSRF-Token": {csrf},
               "Content-Type": "application/x-www-form-urlencoded"}}}})
               .then(r => done(r.status), e => done(String(e)))"#
        );
        self.js_async(&script).await.as_u64().unwrap_or(0)
    }
}

fn browser_available() -> bool {
    let there =
        std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists();
    if !there {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "skipped: no {CHROMIUM} / {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
        );
    }
    there
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_keeps_the_cookie_and_another_site_cannot_use_it() {
    if !browser_available() {
        return;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = example_cookie_login::app().await.unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });
    // `localhost` is a secure context, so the Secure cookie is kept over
    // plain HTTP; 127.0.0.1 is another site.
    let site = format!("http://localhost:{port}/");
    let other_site = format!("http://127.0.0.1:{port}/");

    let d = Driver::start().await;
    d.open(&site).await;
    assert!(d.text().await.contains("Hello, a visitor. Clicks: 0."));
    assert_eq!(d.post("/click", "", true).await, 200);
    d.open(&site).await;
    assert!(
        d.text().await.contains("Clicks: 1."),
        "the browser kept the session cookie"
    );
    assert_eq!(
        d.js("return document.cookie", json!([])).await,
        "",
        "HttpOnly: script cannot read it"
    );

    // Same origin but without the session's CSRF token: refused.
    assert_eq!(d.post("/click", "", false).await, 403);

    // A page on another site posts to the app with the browser's cookies.
    d.open(&other_site).await;
    let sent = d
        .js_async(&format!(
            r#"fetch({:?}, {{method: "POST", mode: "no-cors", credentials: "include"}})
               .then(() => done("sent"), e => done(String(e)))"#,
            format!("{site}click")
        ))
        .await;
    assert_eq!(sent, "sent");
    d.open(&site).await;
    assert!(
        d.text().await.contains("Clicks: 1."),
        "the cross-site post changed nothing"
    );

    // Log in (an upgrade: the counter is kept), then out.
    assert_eq!(d.post("/login", "name=ada", true).await, 200);
    d.open(&site).await;
    assert!(
        d.text().await.contains("Hello, ada. Clicks: 1."),
        "{}",
        d.text().await
    );
    assert_eq!(d.post("/logout", "", true).await, 200);
    d.open(&site).await;
    assert!(d.text().await.contains("Hello, a visitor. Clicks: 0."));
    d.call("DELETE", &format!("/session/{}", d.session), json!({}))
        .await;
}
