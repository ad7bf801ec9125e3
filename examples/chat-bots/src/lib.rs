//! # chat-bots — one login for every bot process
//!
//! A fleet of chat-bot processes (several replicas of one bot, or several
//! bots of one product) must agree on who is logged in: a user who logs in
//! by talking to one replica is logged in on all of them, and a logout on
//! any is a logout everywhere. Each process embeds the sessionkit engine on
//! one shared [`RedisStore`]; nothing about sessions is kept in the
//! process.
//!
//! A chat has no cookie to carry a token, so a session is found by its
//! **subject, the chat account** (`tg:42`): each chat account has at most
//! one session (a new login evicts the old one), holding the app user it
//! logged in as and the user's own key/value data in its attributes.
//!
//! Commands, one per message: `/login <user> <password>`, `/whoami`,
//! `/set <key> <value>`, `/get <key>`, `/logout`, `/stats`.
//!
//! > **Demo only.** The users are a hard-coded table
//! > ([`USERS`]) compared in constant time; a real bot checks a password
//! > hash or asks its auth server.

use std::sync::Arc;

use serde_json::{Value, json};
use sessionkit::{EngineError, NewSession, SessionManager};
use sessionkit_core::{OnSessionLimit, Policy, Subject, TenantId};
use sessionkit_redis::{RedisOptions, RedisStore};
use subtle::ConstantTimeEq as _;

/// The demo users: (user name, password).
pub const USERS: [(&str, &str); 2] = [("ada", "lovelace-1815"), ("grace", "hopper-1906")];

/// The engine every bot process shares through Redis.
pub type Engine = SessionManager<RedisStore>;

/// Connects to Redis at `url`, keys under `prefix`, and builds the engine:
/// one session per chat account, 7 days from login (a chat sends no
/// cookie to slide an idle window with, so idle = absolute).
///
/// # Errors
/// Redis unreachable, or random keys unavailable.
pub async fn engine(url: &str, prefix: &str) -> Result<Engine, Box<dyn std::error::Error>> {
    let store = RedisStore::connect_with(url, prefix, RedisOptions::default()).await?;
    let week = 7 * 24 * 3600;
    let policy = Policy::builder()
        .idle_timeout_secs(week)
        .absolute_timeout_secs(week)
        .max_sessions_per_subject(Some(1), OnSessionLimit::EvictOldest)
        .build()?;
    let keys = sessionkit::EngineKeys::generate()?;
    Ok(SessionManager::builder(store, keys)
        .with_policy(policy)
        .build()
        .await?)
}

fn check_password(user: &str, password: &str) -> bool {
    let mut ok = false;
    for (u, p) in USERS {
        // Every entry is compared, so the time does not say which matched.
        let hit = u.as_bytes().ct_eq(user.as_bytes()) & p.as_bytes().ct_eq(password.as_bytes());
        ok |= bool::from(hit);
    }
    ok
}

/// Answers one chat message from `chat_user` (the platform's account id).
///
/// # Errors
/// The store is unreachable (the caller answers "try again later").
pub async fn handle(engine: &Engine, chat_user: &str, text: &str) -> Result<String, EngineError> {
    let Ok(account) = Subject::new(chat_user) else {
        return Ok("I cannot tell who you are.".into());
    };
    let t = TenantId::DEFAULT;
    let mut words = text.split_whitespace();
    let current = || async {
        let page = engine.list(t, &account, None, 1).await?;
        Ok::<_, EngineError>(page.sessions.into_iter().next())
    };
    Ok(match (words.next(), words.next(), words.next()) {
        (Some("/login"), Some(user), Some(password)) => {
            if !check_password(user, password) {
                return Ok("Wrong user name or password.".into());
            }
            let mut req = NewSession::for_subject(account.clone());
            let attrs = json!({"user": user, "data": {}});
            req.attributes = serde_json::value::to_raw_value(&attrs).ok();
            engine.create(t, req).await?;
            format!("Logged in as {user}, on every bot.")
        }
        (Some("/whoami"), None, None) => match current().await? {
            Some(s) => format!("You are {}.", user_of(s.attributes.as_json())),
            None => "You are not logged in.".into(),
        },
        (Some("/set"), Some(key), Some(value)) => match current().await? {
            Some(s) => {
                let patch = json!({"data": {key: value}});
                engine.patch_attributes(t, s.id, &patch, None).await?;
                format!("Saved {key}.")
            }
            None => "Log in first.".into(),
        },
        (Some("/get"), Some(key), None) => match current().await? {
            Some(s) => {
                let attrs: Value = serde_json::from_str(s.attributes.as_json()).unwrap_or_default();
                match attrs["data"][key].as_str() {
                    Some(v) => format!("{key} = {v}"),
                    None => format!("{key} is not set."),
                }
            }
            None => "Log in first.".into(),
        },
        (Some("/logout"), None, None) => {
            engine.revoke_subject(t, &account, None).await?;
            "Logged out, on every bot.".into()
        }
        (Some("/stats"), None, None) => {
            let c = engine.counts(t).await?;
            format!("{} active sessions, {} logged-in accounts.", c.active, c.subjects)
        }
        _ => "Commands: /login <user> <password>, /whoami, /set <key> <value>, /get <key>, /logout, /stats".into(),
    })
}

fn user_of(attrs: &str) -> String {
    let v: Value = serde_json::from_str(attrs).unwrap_or_default();
    v["user"].as_str().unwrap_or("someone").to_owned()
}

/// The bot's webhook: `POST /update {"chat_user": "...", "text": "..."}`
/// answers `{"reply": "..."}` (a chat platform's webhook, reduced to what
/// the demo needs).
pub fn app(engine: Arc<Engine>) -> axum::Router {
    use axum::Json;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::post;

    #[derive(serde::Deserialize)]
    struct Update {
        chat_user: String,
        text: String,
    }
    async fn update(
        State(engine): State<Arc<Engine>>,
        Json(u): Json<Update>,
    ) -> (StatusCode, Json<Value>) {
        match handle(&engine, &u.chat_user, &u.text).await {
            Ok(reply) => (StatusCode::OK, Json(json!({"reply": reply}))),
            Err(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"reply": "Sorry, try again in a moment.", "error": e.to_string()})),
            ),
        }
    }
    axum::Router::new()
        .route("/update", post(update))
        .with_state(engine)
}
