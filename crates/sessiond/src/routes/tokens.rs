//! Tokens: refresh (`/v1/tokens/refresh`), introspection
//! (`/v1/tokens/introspect`), the public keys (`/.well-known/jwks.json`)
//! and the signing keys for operators (`/v1/keys`, `/v1/keys/rotate`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sessionkit::{IssuedPair, RefreshResult};
use sessionkit_core::Millis;

use crate::app::AppState;
use crate::backend::ServedStore;
use crate::error::{ApiError, ErrorBody};
use crate::http::json::JsonBody;
use crate::http::{Authorized, scope};
use crate::idtext::IdText;
use crate::wire::{
    IntrospectRequestBody, Introspection, PairResponse, RefreshRequestBody, SessionOut,
    SigningKeyList, SigningKeyOut,
};

/// How long clients may cache the JWKS: short enough that a rotated key is
/// picked up well within an access token's lifetime.
const JWKS_MAX_AGE_SECS: u32 = 300;

/// The wire form of an issued pair.
pub(crate) fn pair_body<'a, S: ServedStore>(
    st: &AppState<S>,
    pair: &'a IssuedPair,
) -> PairResponse<'a> {
    PairResponse {
        session: SessionOut::from_record(&pair.session),
        access_token: &pair.access_token,
        access_expires_at: pair.access_expires_at.rfc3339(),
        refresh_token: &pair.refresh_token,
        csrf_token: st.engine().csrf_token(&pair.session.id),
        evicted: pair.evicted.iter().map(ToString::to_string).collect(),
    }
}

/// Exchange a refresh token for a new pair (rotation with reuse detection).
#[utoipa::path(post, path = "/v1/tokens/refresh", tag = "tokens",
    request_body = RefreshRequestBody,
    responses(
        (status = 200, description = "A new pair (the same pair again for a retry inside the grace window)", body = PairResponse),
        (status = 400, description = "invalid_request (access tokens not configured, bad body)", body = ErrorBody),
        (status = 401, description = "invalid_token, session_expired, refresh_token_reused (the session is revoked) or unauthenticated", body = ErrorBody),
        (status = 503, description = "store_unavailable", body = ErrorBody),
    ),
    security(("api_key" = ["sessions:write"])))]
pub async fn refresh<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Write>,
    JsonBody(body): JsonBody<RefreshRequestBody>,
) -> Result<Response, ApiError> {
    match st
        .engine()
        .refresh(caller.tenant, &body.refresh_token)
        .await?
    {
        RefreshResult::Refreshed(pair) => Ok(super::json_response(&pair_body(&st, &pair))),
        RefreshResult::Reused => Err(ApiError::RefreshTokenReused),
        RefreshResult::Expired(_) => Err(ApiError::SessionExpired),
        RefreshResult::Invalid => Err(ApiError::InvalidToken),
    }
}

/// Whether a token is live, shaped like RFC 7662 (for gateways). Any token
/// that is not live answers `{"active": false}` and nothing else.
#[utoipa::path(post, path = "/v1/tokens/introspect", tag = "tokens",
    request_body = IntrospectRequestBody,
    responses(
        (status = 200, description = "`active` and, when live, `sub`, `sid`, `exp`, `iat`, `token_type`", body = Introspection),
        (status = 401, description = "unauthenticated", body = ErrorBody),
        (status = 503, description = "store_unavailable", body = ErrorBody),
    ),
    security(("api_key" = ["sessions:validate"])))]
pub async fn introspect<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Validate>,
    JsonBody(body): JsonBody<IntrospectRequestBody>,
) -> Result<Response, ApiError> {
    let found = st.engine().introspect(caller.tenant, &body.token).await?;
    let json = match &found {
        Some(i) => super::json_response(&Introspection {
            active: true,
            sub: i.session.subject.as_ref().map(|s| s.as_str()),
            sid: Some(IdText::new(&i.session.id)),
            exp: Some(i.exp),
            iat: Some(i.iat),
            token_type: Some(i.token_type),
        }),
        None => super::json_response(&Introspection {
            active: false,
            sub: None,
            sid: None,
            exp: None,
            iat: None,
            token_type: None,
        }),
    };
    Ok(json)
}

/// The public keys that verify access tokens (a JWK Set). No API key.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "tokens",
    responses((status = 200, description = "`{keys: [...]}`, with `Cache-Control: max-age`")))]
pub async fn jwks<S: ServedStore>(State(st): State<AppState<S>>) -> Response {
    let set = st
        .engine()
        .jwks()
        .unwrap_or_else(|| serde_json::json!({ "keys": [] }));
    let mut res = super::json_response(&set);
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={JWKS_MAX_AGE_SECS}")) {
        res.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    res
}

/// The signing keys are server-wide: only an admin of the `default`
/// tenant may see or rotate them.
fn default_tenant_only(caller: &Authorized<scope::Admin>) -> Result<(), ApiError> {
    if caller.tenant == sessionkit_core::TenantId::DEFAULT {
        Ok(())
    } else {
        Err(ApiError::InsufficientScope("admin of the default tenant"))
    }
}

fn key_list<S: ServedStore>(st: &AppState<S>) -> SigningKeyList {
    let ring = st.engine().key_ring();
    let keys = ring
        .map(|r| r.keys())
        .unwrap_or_default()
        .into_iter()
        .map(|k| SigningKeyOut {
            alg: k.alg.as_str(),
            created_at: Millis::from_millis(k.created_at.saturating_mul(1000)).rfc3339(),
            retires_at: k
                .retires_at
                .map(|t| Millis::from_millis(t.saturating_mul(1000)).rfc3339()),
            active: k.active,
            kid: k.kid,
        })
        .collect();
    SigningKeyList { keys }
}

/// The signing keys (never their secrets). Only an admin of the `default`
/// tenant: the keys are server-wide.
#[utoipa::path(get, path = "/v1/keys", tag = "admin", operation_id = "list_signing_keys",
    responses((status = 200, description = "The keys, oldest first", body = SigningKeyList),
              (status = 403, description = "insufficient_scope", body = ErrorBody)),
    security(("api_key" = ["admin"])))]
pub async fn list_keys<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Admin>,
) -> Result<Json<SigningKeyList>, ApiError> {
    default_tenant_only(&caller)?;
    Ok(Json(key_list(&st)))
}

/// Rotate the signing key: new tokens carry the new `kid`; the old key
/// keeps verifying until its grace ends. Only an admin of the `default`
/// tenant.
#[utoipa::path(post, path = "/v1/keys/rotate", tag = "admin",
    responses((status = 200, description = "The keys after the rotation", body = SigningKeyList),
              (status = 400, description = "invalid_request (HS256 keys come from the configuration)", body = ErrorBody),
              (status = 403, description = "insufficient_scope", body = ErrorBody)),
    security(("api_key" = ["admin"])))]
pub async fn rotate_keys<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Admin>,
) -> Result<Response, ApiError> {
    default_tenant_only(&caller)?;
    let Some(keys) = st.options().signing_keys.as_ref() else {
        return Err(ApiError::InvalidRequest(
            "access tokens are not configured".into(),
        ));
    };
    // One rotation at a time, from reading the ring to putting the new one
    // in force (no await in between).
    let _one_at_a_time = keys
        .rotation
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(ring) = st.engine().key_ring() else {
        return Err(ApiError::InvalidRequest(
            "access tokens are not configured".into(),
        ));
    };
    let now = st.engine().now().as_millis().div_euclid(1000);
    let new = keys.rotate(&ring, now).map_err(|e| match e {
        crate::signing_keys::RotateError::Configured => ApiError::InvalidRequest(e.to_string()),
        crate::signing_keys::RotateError::Failed => ApiError::Internal,
    })?;
    st.engine()
        .set_key_ring(new)
        .map_err(|_| ApiError::Internal)?;
    tracing::info!("signing key rotated");
    Ok((StatusCode::OK, Json(key_list(&st))).into_response())
}
