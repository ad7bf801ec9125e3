//! A small JSON API on access JWTs and rotating refresh tokens, with the
//! sessionkit engine in process (no sessiond):
//!
//! - `POST /login` `{username, password}` → `{access_token,
//!   access_expires_at, refresh_token}` (a session issued as a pair);
//! - `GET /me` with `Authorization: Bearer <access JWT>` → `{subject,
//!   session_id}`;
//! - `POST /refresh` `{refresh_token}` → a new pair (the refresh token
//!   rotates; replaying an old one after the grace revokes the session);
//! - `POST /logout` with `Authorization: Bearer <any token of the
//!   session>` → 204;
//! - `GET /.well-known/jwks.json` → the public keys, for services that
//!   verify access tokens offline.
//!
//! ```sh
//! cargo run -p jwt-api     # listens on 127.0.0.1:3001 (PORT overrides)
//! ```
//!
//! Why not [`SessionLayer`](sessionkit::http::SessionLayer) for `/me`? It
//! does accept a bearer access JWT (validation dispatches JWTs), but a
//! handler behind it sees only "no session" for an expired token, an
//! invalid one or none at all; this API answers them differently
//! (`error_description="expired"` tells the client to refresh), so the
//! [`Authenticated`] extractor calls `engine.validate` itself.
//!
//! The user table is a hard-coded demo: see the README.

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use sessionkit::jwt::KeyRing;
use sessionkit::jwt::SigningAlgorithm;
use sessionkit::{
    AccessConfig, EngineError, EngineKeys, IssuedPair, MemoryStore, NewSession, RefreshResult,
    SessionManager, TokenRevocation, ValidateRequest, Validation,
};
use sessionkit_core::crypto::{ct_eq, tagged_sha256};
use sessionkit_core::{Clock, SessionRecord, Subject, TenantId};

/// The engine this API runs on: sessions in a [`MemoryStore`] (gone at
/// restart, like the signing key).
pub type Engine = SessionManager<MemoryStore>;

/// `iss` of the access tokens.
pub const ISSUER: &str = "jwt-api-example";
/// `aud` of the access tokens: the services that accept them.
pub const AUDIENCE: &str = "jwt-api";

/// The sessions' tenant (one app, one tenant).
const TENANT: TenantId = TenantId::DEFAULT;

/// The demo users: `(username, password)`. A real app keeps a password
/// *hash* (argon2, scrypt) per user in its database.
const USERS: &[(&str, &str)] = &[("ada", "lovelace-1815"), ("grace", "hopper-1906")];

/// An engine issuing EdDSA access tokens (10 minutes) and refresh tokens
/// (30 s grace for a retried refresh), with a fresh signing key, on
/// `clock` (`SystemClock` in the binary, a `ManualClock` in tests).
pub async fn engine(clock: impl Clock) -> Result<Engine, Box<dyn std::error::Error>> {
    let now_secs = clock.now().as_millis().div_euclid(1000);
    let ring = KeyRing::generate(SigningAlgorithm::EdDSA, now_secs)?;
    let config = AccessConfig {
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
        ..AccessConfig::default()
    };
    Ok(
        SessionManager::builder(MemoryStore::new(), EngineKeys::generate()?)
            .with_clock(clock)
            .with_access_tokens(ring, config)
            .build()
            .await?,
    )
}

/// The API's routes on `engine`.
pub fn app(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/refresh", post(refresh))
        .route("/logout", post(logout))
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(engine)
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

async fn login(
    State(engine): State<Arc<Engine>>,
    Json(form): Json<Login>,
) -> Result<Response, ApiError> {
    if !password_ok(&form.username, &form.password) {
        return Err(ApiError::BadCredentials);
    }
    let subject = Subject::new(&form.username).map_err(|_| ApiError::BadCredentials)?;
    let pair = engine
        .create_pair(TENANT, NewSession::for_subject(subject))
        .await?;
    Ok(pair_response(&pair))
}

/// Whether `username` / `password` is a demo user, checked against every
/// entry without an early exit (constant time: the answer's timing tells
/// neither which user exists nor how much of a password matched).
fn password_ok(username: &str, password: &str) -> bool {
    let h = |tag: &[u8], s: &str| tagged_sha256(tag, &[s.as_bytes()]);
    let (name, pass) = (h(b"user", username), h(b"pass", password));
    let mut ok = false;
    for (u, p) in USERS {
        // `&` and `|`, not `&&` and `||`: every comparison runs.
        ok |= ct_eq(&name, &h(b"user", u)) & ct_eq(&pass, &h(b"pass", p));
    }
    ok
}

/// `{access_token, access_expires_at, refresh_token}`, never cached.
fn pair_response(pair: &IssuedPair) -> Response {
    let body = json!({
        "access_token": pair.access_token,
        "access_expires_at": pair.access_expires_at.rfc3339(),
        "refresh_token": pair.refresh_token,
    });
    no_store((StatusCode::OK, Json(body)).into_response())
}

/// A request whose bearer access JWT is valid and whose session is live.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The session the token belongs to.
    pub session: SessionRecord,
}

impl FromRequestParts<Arc<Engine>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        engine: &Arc<Engine>,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers)?;
        match engine
            .validate(TENANT, token, &ValidateRequest::default())
            .await?
        {
            Validation::Valid { session } => Ok(Authenticated { session }),
            Validation::TokenExpired => Err(ApiError::TokenExpired),
            Validation::Expired(_) => Err(ApiError::SessionExpired),
            Validation::Invalid | Validation::CsrfFailed | Validation::ReauthenticationRequired => {
                Err(ApiError::InvalidToken)
            }
        }
    }
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::NoToken);
    };
    let value = value.to_str().map_err(|_| ApiError::InvalidToken)?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            let token = token.trim();
            if token.is_empty() {
                Err(ApiError::InvalidToken)
            } else {
                Ok(token)
            }
        }
        _ => Err(ApiError::NoToken),
    }
}

async fn me(auth: Authenticated) -> Response {
    let s = auth.session;
    let body = json!({
        "subject": s.subject.as_ref().map(Subject::as_str),
        "session_id": s.id.to_string(),
    });
    no_store(Json(body).into_response())
}

#[derive(Deserialize)]
struct Refresh {
    refresh_token: String,
}

async fn refresh(
    State(engine): State<Arc<Engine>>,
    Json(body): Json<Refresh>,
) -> Result<Response, ApiError> {
    match engine.refresh(TENANT, &body.refresh_token).await? {
        RefreshResult::Refreshed(pair) => Ok(pair_response(&pair)),
        RefreshResult::Reused => Err(ApiError::RefreshReused),
        RefreshResult::Expired(_) => Err(ApiError::SessionExpired),
        RefreshResult::Invalid => Err(ApiError::InvalidToken),
    }
}

/// Logs out the session of the bearer token: its access JWT, or its
/// refresh token (which still works when the access token has expired).
async fn logout(
    State(engine): State<Arc<Engine>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = bearer(&headers)?;
    match engine.revoke_token(TENANT, token).await? {
        // Idempotent, and deliberately silent on whether there was a
        // session: 204 either way.
        TokenRevocation::Done => Ok(StatusCode::NO_CONTENT.into_response()),
        TokenRevocation::Malformed => Err(ApiError::InvalidToken),
    }
}

async fn jwks(State(engine): State<Arc<Engine>>) -> Response {
    match engine.jwks() {
        Some(set) => {
            let mut res = Json(set).into_response();
            // Verifiers may cache it a little; a rotated-in key is
            // published before it signs anything new.
            res.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            res
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Why a request failed, answered as `{"error": code}` (and, for a 401,
/// with `WWW-Authenticate` as RFC 6750 §3 says).
#[derive(Debug)]
#[non_exhaustive]
pub enum ApiError {
    /// No bearer token: 401, `WWW-Authenticate: Bearer` (no error code,
    /// RFC 6750 §3.1).
    NoToken,
    /// Malformed, forged, unknown or revoked token: 401 `invalid_token`.
    InvalidToken,
    /// A genuine access token past its `exp`: 401 `token_expired`,
    /// `error_description="expired"`; the client refreshes.
    TokenExpired,
    /// The session is past its idle or absolute deadline: 401
    /// `session_expired`; the client logs in again.
    SessionExpired,
    /// An old refresh token was replayed: the session is revoked. 401
    /// `refresh_token_reused`.
    RefreshReused,
    /// Unknown user or wrong password: 401 `invalid_credentials`.
    BadCredentials,
    /// The engine failed (store down: 503, fail closed).
    Engine(EngineError),
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError::Engine(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, challenge) = match &self {
            ApiError::NoToken => ("missing_token", "Bearer"),
            ApiError::InvalidToken => ("invalid_token", r#"Bearer error="invalid_token""#),
            ApiError::TokenExpired => (
                "token_expired",
                r#"Bearer error="invalid_token", error_description="expired""#,
            ),
            ApiError::SessionExpired => (
                "session_expired",
                r#"Bearer error="invalid_token", error_description="session expired""#,
            ),
            ApiError::RefreshReused => (
                "refresh_token_reused",
                r#"Bearer error="invalid_token", error_description="refresh token reused""#,
            ),
            ApiError::BadCredentials => ("invalid_credentials", "Bearer"),
            ApiError::Engine(e) => {
                let kind = e.kind();
                if kind.status().is_server_error() {
                    eprintln!("engine error: {e}");
                }
                let mut res =
                    (kind.status(), Json(json!({ "error": kind.code() }))).into_response();
                if let Some(secs) = e.retry_after_secs() {
                    res.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                return no_store(res);
            }
        };
        let mut res = (StatusCode::UNAUTHORIZED, Json(json!({ "error": code }))).into_response();
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
        no_store(res)
    }
}
