//! The JSON shapes of the v1 API (docs/api.md): request bodies (strict:
//! unknown fields are refused) and responses (clients ignore fields they
//! do not know). Types that carry a secret (a session token, a CSRF token,
//! an API key) deliberately implement no `Debug`, so that no log line can
//! print one.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sessionkit_core::{Assurance, AssuranceError, ClientInfo, SessionRecord};
use utoipa::ToSchema;

use crate::error::ApiError;
use sessionkit_core::Millis;
use sessionkit_core::time::Rfc3339;

use crate::idtext::IdText;

/// Client info sent with a create.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientIn {
    /// Client IP address.
    pub ip: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
    /// Device name chosen by the app.
    pub device: Option<String>,
}

/// Client info sent with a validate (fingerprint binding).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateClientIn {
    /// Client IP address.
    pub ip: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
}

impl ClientIn {
    /// Checks and converts to the engine's client info.
    pub fn into_client(self) -> Result<ClientInfo, ApiError> {
        let ip = match self.ip {
            None => None,
            Some(s) => Some(
                s.parse()
                    .map_err(|_| ApiError::field("client.ip", "not an IP address"))?,
            ),
        };
        let c = ClientInfo {
            ip,
            user_agent: self.user_agent,
            device: self.device,
            fingerprint: None,
        };
        c.validate()
            .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
        Ok(c)
    }
}

/// The assurance a create or upgrade states: `None` when it states
/// neither `aal` nor `amr`.
pub fn assurance_in(
    aal: Option<u64>,
    amr: Option<Vec<String>>,
) -> Result<Option<Assurance>, ApiError> {
    if aal.is_none() && amr.is_none() {
        return Ok(None);
    }
    let level = match aal.map(u8::try_from) {
        None => Assurance::DEFAULT_LOGIN.aal(),
        Some(Ok(a)) => a,
        Some(Err(_)) => 0,
    };
    Assurance::new(level, amr.unwrap_or_default())
        .map(Some)
        .map_err(|e| match e {
            AssuranceError::Level => ApiError::field("aal", "an integer from 1 to 3"),
            other => ApiError::field("amr", other.to_string()),
        })
}

impl ValidateClientIn {
    /// Converts to the engine's client info.
    pub fn into_client(self) -> Result<ClientInfo, ApiError> {
        ClientIn {
            ip: self.ip,
            user_agent: self.user_agent,
            device: None,
        }
        .into_client()
    }
}

/// `POST /v1/sessions`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// Who; omitted or null for an anonymous session.
    pub subject: Option<String>,
    /// Initial attributes (a JSON object). Kept as the raw text of the
    /// body, never built into a tree: the engine checks and encodes it in
    /// one pass (`Attributes::from_json`), refusing a repeated key.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Box<RawValue>>,
    /// Client info.
    pub client: Option<ClientIn>,
    /// A shorter idle timeout than the policy's (1..=policy), seconds.
    #[schema(value_type = Option<i64>)]
    pub idle_timeout_secs: Option<serde_json::Number>,
    /// A shorter absolute timeout than the policy's (1..=policy), seconds.
    #[schema(value_type = Option<i64>)]
    pub absolute_timeout_secs: Option<serde_json::Number>,
    /// `session` (default): a session token; `pair`: an access JWT and a
    /// refresh token instead.
    pub issue: Option<IssueKind>,
    /// With a subject: how strongly it authenticated, 1 to 3 (default 1).
    pub aal: Option<u64>,
    /// With a subject: the authentication methods (RFC 8176 names such as
    /// `pwd`, `otp`, `hwk`; at most 8).
    pub amr: Option<Vec<String>>,
}

/// What a create or upgrade hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// A session token.
    #[default]
    Session,
    /// An access JWT and a refresh token.
    Pair,
}

/// `POST /v1/sessions/validate`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequestBody {
    /// The session token.
    pub token: String,
    /// The CSRF token, for requests that change state.
    pub csrf_token: Option<String>,
    /// The client, for fingerprint binding.
    pub client: Option<ValidateClientIn>,
    /// Step-up: the longest ago the user may have signed in (the session's
    /// `auth_time`), in seconds; older, or an anonymous session, is 401
    /// `reauthentication_required`.
    pub max_age_secs: Option<u64>,
    /// Step-up: the lowest assurance level accepted (0 to 3); a session at
    /// a lower level (anonymous is 0) is 401 `reauthentication_required`.
    pub min_aal: Option<u64>,
}

/// `POST /v1/sessions/upgrade`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeRequestBody {
    /// The token of the live session to log in on top of.
    pub token: String,
    /// The subject now authenticated.
    pub subject: String,
    /// Top-level attributes to carry over (at most 64).
    pub keep_attributes: Option<Vec<String>>,
    /// `session` (default) or `pair`.
    pub issue: Option<IssueKind>,
    /// How strongly the subject authenticated, 1 to 3 (default 1). A
    /// step-up is an upgrade to the same subject at a higher level.
    pub aal: Option<u64>,
    /// The authentication methods (RFC 8176 names; at most 8).
    pub amr: Option<Vec<String>>,
}

/// `POST /v1/sessions/revoke`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequestBody {
    /// The token to log out.
    pub token: String,
}

/// Client info of a session.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientOut<'a> {
    /// Client IP address.
    pub ip: Option<String>,
    /// User agent.
    pub user_agent: Option<&'a str>,
    /// Device name.
    pub device: Option<&'a str>,
}

/// A session. Borrows from the record: building it allocates only for
/// the client IP.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionOut<'a> {
    /// Public id (UUID v7).
    #[schema(value_type = String)]
    pub id: IdText,
    /// Subject; null when anonymous.
    pub subject: Option<&'a str>,
    /// RFC 3339 UTC with milliseconds.
    #[schema(value_type = String)]
    pub created_at: Rfc3339,
    /// Last activity written.
    #[schema(value_type = String)]
    pub last_seen_at: Rfc3339,
    /// Idle deadline.
    #[schema(value_type = String)]
    pub idle_expires_at: Rfc3339,
    /// Absolute deadline.
    #[schema(value_type = String)]
    pub expires_at: Rfc3339,
    /// Last authentication; null when anonymous.
    #[schema(value_type = Option<String>)]
    pub auth_time: Option<Rfc3339>,
    /// The app's data (a JSON object).
    #[schema(value_type = Object)]
    pub attributes: &'a RawValue,
    /// Client info.
    pub client: ClientOut<'a>,
    /// ≥ 1; changes when attributes, subject or auth level change.
    pub version: u64,
    /// Authenticator assurance level: 0 when anonymous, else 1 to 3.
    pub aal: u8,
    /// Authentication methods of the login (RFC 8176 names); empty when
    /// none were stated.
    pub amr: &'a [String],
}

fn empty_object() -> &'static RawValue {
    serde_json::from_str::<&RawValue>("{}").unwrap_or_else(|_| empty_object_slow())
}

#[cold]
fn empty_object_slow() -> &'static RawValue {
    // Unreachable: `{}` parses. Leaks one tiny box if it ever runs.
    Box::leak(serde_json::value::to_raw_value(&serde_json::Map::new()).unwrap_or_default())
}

impl<'a> SessionOut<'a> {
    /// The wire form of a record.
    #[must_use]
    pub fn from_record(r: &'a SessionRecord) -> Self {
        let attributes = serde_json::from_str::<&RawValue>(r.attributes.as_json())
            .unwrap_or_else(|_| empty_object());
        SessionOut {
            id: IdText::new(&r.id),
            subject: r.subject.as_ref().map(|s| s.as_str()),
            created_at: r.created_at.rfc3339(),
            last_seen_at: r.last_seen_at.rfc3339(),
            idle_expires_at: r.idle_expires_at().rfc3339(),
            expires_at: r.expires_at.rfc3339(),
            auth_time: r.auth_time.map(Millis::rfc3339),
            attributes,
            client: ClientOut {
                ip: r.client.ip.map(|i| i.to_string()),
                user_agent: r.client.user_agent.as_deref(),
                device: r.client.device.as_deref(),
            },
            version: r.version,
            aal: r.aal(),
            amr: r.amr(),
        }
    }
}

/// `{session}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse<'a> {
    /// The session.
    pub session: SessionOut<'a>,
}

/// `{session, token, csrf_token}`: create and upgrade.
#[derive(Serialize, ToSchema)]
pub struct CreatedResponse<'a> {
    /// The session.
    pub session: SessionOut<'a>,
    /// The bearer token: shown this once.
    pub token: String,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// Ids of the subject's sessions this one displaced at the
    /// per-subject cap (already revoked); absent when none was.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evicted: Vec<String>,
}

/// `{session, access_token, access_expires_at, refresh_token, csrf_token}`:
/// create and upgrade with `"issue": "pair"`, and refresh.
#[derive(Serialize, ToSchema)]
pub struct PairResponse<'a> {
    /// The session.
    pub session: SessionOut<'a>,
    /// The access JWT (short-lived).
    pub access_token: &'a str,
    /// When it expires.
    #[schema(value_type = String)]
    pub access_expires_at: Rfc3339,
    /// The refresh token: single use, shown this once.
    pub refresh_token: &'a str,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// Ids of the subject's sessions a create or upgrade displaced at the
    /// per-subject cap (already revoked); absent when none was.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evicted: Vec<String>,
}

/// `POST /v1/tokens/refresh`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequestBody {
    /// The refresh token.
    pub refresh_token: String,
}

/// `POST /v1/tokens/introspect` (shaped like RFC 7662).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntrospectRequestBody {
    /// Any token: a session token or an access JWT.
    pub token: String,
}

/// The answer to an introspection: `{"active": false}` for any token that
/// is not live, nothing more.
#[derive(Serialize, ToSchema)]
pub struct Introspection<'a> {
    /// Whether the token is live now.
    pub active: bool,
    /// The subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<&'a str>,
    /// The session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub sid: Option<IdText>,
    /// When the session expires (unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// When the session was created (unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// `access_token` or `session_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
}

/// One signing key, as `GET /v1/keys` lists it (never its secret).
#[derive(Serialize, ToSchema)]
pub struct SigningKeyOut {
    /// Key id (`kid`).
    pub kid: String,
    /// `EdDSA`, `ES256` or `HS256`.
    pub alg: &'static str,
    /// When it was made.
    #[schema(value_type = String)]
    pub created_at: Rfc3339,
    /// When it stops verifying; null while in service.
    #[schema(value_type = Option<String>)]
    pub retires_at: Option<Rfc3339>,
    /// Whether it signs new tokens.
    pub active: bool,
}

/// `{keys: [...]}`.
#[derive(Serialize, ToSchema)]
pub struct SigningKeyList {
    /// The keys, oldest first.
    pub keys: Vec<SigningKeyOut>,
}

/// `{session, csrf_token}`: validate.
#[derive(Serialize, ToSchema)]
pub struct ValidatedResponse<'a> {
    /// The session.
    pub session: SessionOut<'a>,
    /// The session's CSRF token.
    pub csrf_token: &'a str,
}

/// `{sessions, next_cursor}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList<'a> {
    /// Newest first.
    pub sessions: Vec<SessionOut<'a>>,
    /// Opaque; null on the last page.
    pub next_cursor: Option<String>,
}

/// One subject with a live session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectOut<'a> {
    /// The subject.
    pub subject: &'a str,
    /// How many live sessions it has.
    pub sessions: u64,
}

/// `{subjects: [...], next_cursor}`: who is logged in.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectList<'a> {
    /// In byte order of the subject.
    pub subjects: Vec<SubjectOut<'a>>,
    /// Opaque; null on the last page.
    pub next_cursor: Option<String>,
}

/// `{revoked: n}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedCount {
    /// How many sessions were revoked.
    pub revoked: u64,
}

/// Store figures in stats.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoreStats {
    /// Store kind (`embedded`, `memory`).
    pub kind: &'static str,
    /// Whether the counts are approximate.
    pub approximate: bool,
}

/// `GET /v1/stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    /// Active sessions (not revoked, not yet purged).
    pub live: u64,
    /// Of which anonymous.
    pub anonymous: u64,
    /// Subjects with at least one active session.
    pub subjects: u64,
    /// The store.
    pub store: StoreStats,
}

/// `POST /v1/purge`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Purged {
    /// Records removed.
    pub purged: usize,
}

/// `POST /v1/api-keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// Scopes: `sessions:validate`, `sessions:read`, `sessions:write`, `admin`.
    pub scopes: Vec<String>,
    /// The tenant of the new key; only an admin key of the `default`
    /// (operator) tenant may name another one. Default: the caller's.
    pub tenant: Option<String>,
    /// A label.
    pub name: Option<String>,
    /// The key stops working this many seconds from now (1 to 10 years'
    /// worth); omitted: never.
    pub expires_in_secs: Option<u64>,
}

/// `POST /v1/api-keys/{id}/rotate`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateApiKeyRequest {
    /// How long the old key keeps working, in seconds (0 to 30 days;
    /// default one day).
    pub overlap_secs: Option<u64>,
}

/// An API key (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyOut {
    /// Public id.
    pub id: String,
    /// Label.
    pub name: Option<String>,
    /// Scopes.
    pub scopes: Vec<&'static str>,
    /// RFC 3339.
    pub created_at: String,
    /// When it stops working (RFC 3339); absent: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// When it was last used, to the minute (RFC 3339); absent: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
}

/// `{api_key, key}`: the secret is shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// The key's info.
    pub api_key: ApiKeyOut,
    /// The secret.
    pub key: String,
}

/// `{api_keys}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    /// Oldest first.
    pub api_keys: Vec<ApiKeyOut>,
}

/// `/healthz` and `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `ready`.
    pub status: &'static str,
    /// Store latency in milliseconds (readyz).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_latency_ms: Option<f64>,
}

/// A provider's grant, as the app got it at its login callback.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantIn {
    /// The access token.
    pub access_token: String,
    /// The refresh token (without one, the grant dies with its access
    /// token).
    pub refresh_token: Option<String>,
    /// Seconds the access token lives (or `expires_at`).
    pub expires_in: Option<u64>,
    /// When the access token expires, RFC 3339 (or `expires_in`).
    pub expires_at: Option<String>,
    /// Granted scopes.
    pub scope: Option<String>,
    /// The ID token: only its `sub` is kept, to check refreshes.
    pub id_token: Option<String>,
}

/// `PUT /v1/upstream/{provider}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamPutBody {
    /// Any token of the session (session token, refresh token, access JWT).
    pub token: String,
    /// The provider's grant.
    pub grant: GrantIn,
}

/// `POST /v1/upstream/{provider}/token` and `DELETE /v1/upstream/{provider}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTokenBody {
    /// Any token of the session.
    pub token: String,
}

/// A fresh upstream access token.
#[derive(Serialize, ToSchema)]
pub struct UpstreamTokenOut<'a> {
    /// The provider's access token.
    pub access_token: &'a str,
    /// When it expires.
    #[schema(value_type = String)]
    pub expires_at: Rfc3339,
    /// Its scopes, if known.
    pub scope: Option<&'a str>,
}
