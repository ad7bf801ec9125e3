//! The upstream token vault (`/v1/upstream/{provider}`, scope `upstream`):
//! keep a provider's grant with a session, get a fresh access token of it,
//! forget it. Every call names the session by its own token, so a leaked
//! read key cannot dump upstream tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use sessionkit::upstream::{GrantInput, Upstream, UpstreamVault};
use sessionkit_core::{DurationMs, Millis};

use crate::app::AppState;
use crate::backend::ServedStore;
use crate::error::{ApiError, ErrorBody};
use crate::http::json::JsonBody;
use crate::http::{Authorized, PathParams, scope};
use crate::wire::{GrantIn, UpstreamPutBody, UpstreamTokenBody, UpstreamTokenOut};

/// Longest `expires_in` taken (ten years).
const MAX_EXPIRES_IN: u64 = 10 * 366 * 86_400;

fn vault<S: ServedStore>(st: &AppState<S>) -> Result<&UpstreamVault, ApiError> {
    st.options()
        .upstream
        .as_deref()
        .ok_or_else(|| ApiError::NotFound("no upstream providers are configured".into()))
}

/// The answer to a refusal (never `Done`).
fn refusal<T>(u: Upstream<T>) -> ApiError {
    match u {
        Upstream::Done(_) | Upstream::InvalidToken => ApiError::InvalidToken,
        Upstream::SessionExpired => ApiError::SessionExpired,
        Upstream::TokenExpired => ApiError::TokenExpired,
        Upstream::NotFound => ApiError::NotFound("no such provider, or no grant for it".into()),
        Upstream::ReauthenticationRequired => ApiError::ReauthenticationRequired,
        Upstream::Unavailable { retry_after_secs } => {
            ApiError::UpstreamUnavailable { retry_after_secs }
        }
    }
}

fn grant_input(g: GrantIn, now: Millis) -> Result<GrantInput, ApiError> {
    let expires_at = match (g.expires_in, g.expires_at) {
        (Some(s), None) if (1..=MAX_EXPIRES_IN).contains(&s) => {
            now.saturating_add(DurationMs::from_secs(s))
        }
        (None, Some(t)) => {
            let at =
                time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| ApiError::field("grant.expires_at", "not an RFC 3339 time"))?;
            let ms = at.unix_timestamp_nanos() / 1_000_000;
            Millis::from_millis(
                i64::try_from(ms)
                    .map_err(|_| ApiError::field("grant.expires_at", "out of range"))?,
            )
        }
        (Some(_), None) => {
            return Err(ApiError::field("grant.expires_in", "from 1 to 316224000"));
        }
        _ => {
            return Err(ApiError::field(
                "grant.expires_in",
                "give expires_in or expires_at (one of them)",
            ));
        }
    };
    if g.access_token.is_empty() {
        return Err(ApiError::field("grant.access_token", "must not be empty"));
    }
    if g.refresh_token.as_deref() == Some("") {
        return Err(ApiError::field("grant.refresh_token", "must not be empty"));
    }
    Ok(GrantInput {
        access_token: g.access_token,
        refresh_token: g.refresh_token,
        expires_at,
        scope: g.scope,
        id_token: g.id_token,
    })
}

/// Keep a provider's grant with the session of `token`.
#[utoipa::path(put, path = "/v1/upstream/{provider}", tag = "upstream",
    request_body = UpstreamPutBody,
    params(("provider" = String, Path, description = "A configured provider")),
    responses(
        (status = 204, description = "Kept (sealed; any earlier grant of that provider replaced)"),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "invalid_token, session_expired or unauthenticated", body = ErrorBody),
        (status = 404, description = "not_found: no such provider", body = ErrorBody),
        (status = 503, description = "store_unavailable", body = ErrorBody),
    ),
    security(("api_key" = ["upstream"])))]
pub async fn put_grant<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Upstream>,
    PathParams(provider): PathParams<String>,
    JsonBody(body): JsonBody<UpstreamPutBody>,
) -> Result<StatusCode, ApiError> {
    let vault = vault(&st)?;
    let grant = grant_input(body.grant, st.engine().now())?;
    match vault
        .put(st.engine(), caller.tenant, &body.token, &provider, grant)
        .await?
    {
        Upstream::Done(()) => Ok(StatusCode::NO_CONTENT),
        other => Err(refusal(other)),
    }
}

/// A fresh access token of the provider, refreshed when it expires within
/// the provider's buffer (once across every node).
#[utoipa::path(post, path = "/v1/upstream/{provider}/token", tag = "upstream",
    request_body = UpstreamTokenBody,
    params(("provider" = String, Path, description = "A configured provider")),
    responses(
        (status = 200, description = "A valid access token", body = UpstreamTokenOut),
        (status = 401, description = "reauthentication_required (grant dead), invalid_token, session_expired or unauthenticated", body = ErrorBody),
        (status = 404, description = "not_found: no such provider or no grant", body = ErrorBody),
        (status = 503, description = "upstream_unavailable or store_unavailable, with Retry-After", body = ErrorBody),
    ),
    security(("api_key" = ["upstream"])))]
pub async fn token<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Upstream>,
    PathParams(provider): PathParams<String>,
    JsonBody(body): JsonBody<UpstreamTokenBody>,
) -> Result<Response, ApiError> {
    let vault = vault(&st)?;
    match vault
        .token(st.engine(), caller.tenant, &body.token, &provider)
        .await?
    {
        Upstream::Done(a) => Ok(super::json_response(&UpstreamTokenOut {
            access_token: &a.access_token,
            expires_at: a.expires_at.rfc3339(),
            scope: a.scope.as_deref(),
        })),
        other => Err(refusal(other)),
    }
}

/// Forget the provider's grant of the session of `token` (204 whether or
/// not it had one).
#[utoipa::path(delete, path = "/v1/upstream/{provider}", tag = "upstream",
    request_body = UpstreamTokenBody,
    params(("provider" = String, Path, description = "A configured provider")),
    responses(
        (status = 204, description = "Gone"),
        (status = 401, description = "invalid_token, session_expired or unauthenticated", body = ErrorBody),
        (status = 404, description = "not_found: no such provider", body = ErrorBody),
        (status = 503, description = "store_unavailable", body = ErrorBody),
    ),
    security(("api_key" = ["upstream"])))]
pub async fn delete_grant<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Upstream>,
    PathParams(provider): PathParams<String>,
    JsonBody(body): JsonBody<UpstreamTokenBody>,
) -> Result<StatusCode, ApiError> {
    let vault = vault(&st)?;
    match vault
        .delete(st.engine(), caller.tenant, &body.token, &provider)
        .await?
    {
        Upstream::Done(()) => Ok(StatusCode::NO_CONTENT),
        other => Err(refusal(other)),
    }
}
