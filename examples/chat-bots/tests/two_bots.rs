//! Two bot processes on one Redis (a fresh key prefix, deleted after): a
//! login on one is seen by the other, data set on one is read on the
//! other, a logout on either is a logout on both.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

fn redis_url() -> Option<String> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let up = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
        .is_ok();
    if up {
        return Some(url);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but no Redis answers at {url}"
    );
    eprintln!("NOTICE: no Redis at {url} (set REDIS_URL); chat-bots test skipped");
    None
}

struct Bot {
    child: Child,
    base: String,
}

impl Bot {
    fn start(url: &str, prefix: &str) -> Bot {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat-bots"))
            .env("REDIS_URL", url)
            .env("BOTS_PREFIX", prefix)
            .env("PORT", "0")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .expect("the bot says where it listens")
            .to_owned();
        Bot { child, base }
    }

    async fn say(&self, c: &reqwest::Client, who: &str, text: &str) -> String {
        let r = c
            .post(format!("{}/update", self.base))
            .json(&json!({"chat_user": who, "text": text}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["reply"].as_str().unwrap().to_owned()
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_login_on_one_bot_works_on_every_bot() {
    let Some(url) = redis_url() else { return };
    let prefix = format!("chat-bots-test-{:x}", std::process::id() as u64 * 7919 + 17);
    let (a, b) = (Bot::start(&url, &prefix), Bot::start(&url, &prefix));
    let c = reqwest::Client::new();
    let me = "tg:4242";
    assert_eq!(b.say(&c, me, "/whoami").await, "You are not logged in.");
    assert_eq!(
        a.say(&c, me, "/login ada wrong").await,
        "Wrong user name or password."
    );
    assert_eq!(
        a.say(&c, me, "/login ada lovelace-1815").await,
        "Logged in as ada, on every bot."
    );
    assert_eq!(b.say(&c, me, "/whoami").await, "You are ada.");
    assert_eq!(
        b.say(&c, "tg:other", "/whoami").await,
        "You are not logged in."
    );
    assert_eq!(a.say(&c, me, "/set city London").await, "Saved city.");
    assert_eq!(b.say(&c, me, "/get city").await, "city = London");
    // A second login (as grace) replaces the first: one session per account.
    b.say(&c, me, "/login grace hopper-1906").await;
    assert_eq!(a.say(&c, me, "/whoami").await, "You are grace.");
    assert_eq!(a.say(&c, me, "/get city").await, "city is not set.");
    assert_eq!(
        a.say(&c, me, "/stats").await,
        "1 active sessions, 1 logged-in accounts."
    );
    assert_eq!(b.say(&c, me, "/logout").await, "Logged out, on every bot.");
    assert_eq!(a.say(&c, me, "/whoami").await, "You are not logged in.");
    drop((a, b));
    let mut con = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query(&mut con)
        .unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut con).unwrap();
    }
}
