//! Admin routes (scope `admin`): stats, purge, and API keys. The API-key
//! routes follow the style of the rest of the v1 API (docs/api.md):
//! keys are created in the caller's tenant (an admin of the `default`
//! tenant may name another one); the secret is shown once.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sessionkit_core::TenantId;

use crate::api_keys::{ApiKeyInfo, Scope, Scopes};
use crate::app::AppState;
use crate::backend::ServedStore;
use crate::error::{ApiError, ErrorBody};
use crate::http::json::JsonBody;
use crate::http::{Authorized, PathParams, scope};
use crate::wire::{
    ApiKeyList, ApiKeyOut, CreateApiKeyRequest, CreatedApiKey, Purged, RotateApiKeyRequest, Stats,
    StoreStats,
};

fn key_out(i: &ApiKeyInfo) -> ApiKeyOut {
    ApiKeyOut {
        id: i.id.clone(),
        name: i.name.clone(),
        scopes: i.scopes.names(),
        created_at: i.created_at.to_rfc3339(),
        expires_at: i.expires_at.map(|t| t.to_rfc3339()),
        last_used_at: i.last_used.get().map(|t| t.to_rfc3339()),
    }
}

/// Session counts of the caller's tenant.
#[utoipa::path(get, path = "/v1/stats", tag = "admin",
    responses((status = 200, description = "Counts", body = Stats),
              (status = 403, description = "insufficient_scope", body = ErrorBody)),
    security(("api_key" = ["admin"])))]
pub async fn stats<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Admin>,
) -> Result<Json<Stats>, ApiError> {
    let tenant = caller.tenant;
    let c = st.engine().counts(tenant).await?;
    Ok(Json(Stats {
        live: c.active,
        anonymous: c.anonymous,
        subjects: c.subjects,
        store: StoreStats {
            kind: st.options().store_kind,
            approximate: c.approximate,
        },
    }))
}

/// Remove expired sessions and tombstones now, in every tenant: an
/// operator action, so only an admin key of the `default` tenant may.
#[utoipa::path(post, path = "/v1/purge", tag = "admin",
    responses((status = 200, description = "How many records went", body = Purged),
              (status = 403, description = "insufficient_scope", body = ErrorBody)),
    security(("api_key" = ["admin"])))]
pub async fn purge<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Admin>,
) -> Result<Json<Purged>, ApiError> {
    if caller.tenant != sessionkit_core::TenantId::DEFAULT {
        return Err(ApiError::InsufficientScope("admin of the default tenant"));
    }
    let purged = st.engine().purge_expired().await?;
    Ok(Json(Purged { purged }))
}

/// List the API keys of the caller's tenant (never their secrets).
#[utoipa::path(get, path = "/v1/api-keys", tag = "admin",
    responses((status = 200, description = "Keys", body = ApiKeyList)),
    security(("api_key" = ["admin"])))]
pub async fn list_keys<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Admin>,
) -> Result<Json<ApiKeyList>, ApiError> {
    let tenant = caller.tenant;
    Ok(Json(ApiKeyList {
        api_keys: st.api_keys().list(tenant).iter().map(key_out).collect(),
    }))
}

/// One API key.
#[utoipa::path(get, path = "/v1/api-keys/{id}", tag = "admin",
    params(("id" = String, Path, description = "Key id")),
    responses((status = 200, description = "The key", body = ApiKeyOut),
              (status = 404, description = "not_found", body = ErrorBody)),
    security(("api_key" = ["admin"])))]
pub async fn get_key<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Admin>,
    PathParams(id): PathParams<String>,
) -> Result<Json<ApiKeyOut>, ApiError> {
    let tenant = caller.tenant;
    st.api_keys()
        .list(tenant)
        .iter()
        .find(|k| k.id == id)
        .map(|k| Json(key_out(k)))
        .ok_or_else(|| ApiError::NotFound("no such API key".into()))
}

/// Create an API key in the caller's tenant.
#[utoipa::path(post, path = "/v1/api-keys", tag = "admin",
    request_body = CreateApiKeyRequest,
    responses((status = 201, description = "Created; the secret is shown once", body = CreatedApiKey),
              (status = 400, description = "invalid_request", body = ErrorBody)),
    security(("api_key" = ["admin"])))]
pub async fn create_key<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Admin>,
    JsonBody(body): JsonBody<CreateApiKeyRequest>,
) -> Result<Response, ApiError> {
    let own = caller.tenant;
    let tenant = match body.tenant.as_deref() {
        None => own,
        Some(t) => {
            let t = TenantId::new(t).map_err(|e| ApiError::field("tenant", e))?;
            // Tenants are provisioned by the operator only.
            if t != own && own != TenantId::DEFAULT {
                return Err(ApiError::InsufficientScope("admin of the default tenant"));
            }
            t
        }
    };
    let mut scopes = Vec::new();
    for s in &body.scopes {
        scopes.push(Scope::parse(s).ok_or_else(|| {
            ApiError::field(
                "scopes",
                "each must be sessions:validate, sessions:read, sessions:write or admin",
            )
        })?);
    }
    let scopes = Scopes::of(&scopes);
    if scopes.is_empty() {
        return Err(ApiError::field("scopes", "at least one scope is required"));
    }
    if let Some(n) = &body.name
        && (n.len() > 128 || n.chars().any(char::is_control))
    {
        return Err(ApiError::field(
            "name",
            "at most 128 bytes, no control characters",
        ));
    }
    const MAX_LIFE_SECS: u64 = 10 * 366 * 86_400;
    let now = st.engine().now();
    let expires_at = match body.expires_in_secs {
        None => None,
        Some(s) if (1..=MAX_LIFE_SECS).contains(&s) => {
            Some(now.saturating_add(sessionkit_core::DurationMs::from_secs(s)))
        }
        Some(_) => {
            return Err(ApiError::field(
                "expires_in_secs",
                "from 1 to 316224000 (10 years)",
            ));
        }
    };
    let created = st
        .api_keys()
        .create(tenant, scopes, body.name, expires_at, now)
        .map_err(|e| {
            tracing::error!(error = %e, "cannot store API keys");
            ApiError::Internal
        })?;
    tracing::info!(key_id = %created.info.id, "API key created");
    let location = format!("/v1/api-keys/{}", created.info.id);
    let mut res = (
        StatusCode::CREATED,
        Json(CreatedApiKey {
            api_key: key_out(&created.info),
            key: created.secret,
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// Rotate an API key of the caller's tenant: a new key with the same
/// tenant, scopes and name; the old one keeps working for `overlap_secs`.
#[utoipa::path(post, path = "/v1/api-keys/{id}/rotate", tag = "admin",
    params(("id" = String, Path, description = "Key id")),
    request_body = RotateApiKeyRequest,
    responses((status = 201, description = "The new key; its secret is shown once", body = CreatedApiKey),
              (status = 400, description = "invalid_request", body = ErrorBody),
              (status = 404, description = "not_found", body = ErrorBody)),
    security(("api_key" = ["admin"])))]
pub async fn rotate_key<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Admin>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<RotateApiKeyRequest>,
) -> Result<Response, ApiError> {
    const MAX_OVERLAP_SECS: u64 = 30 * 86_400;
    let overlap = body.overlap_secs.unwrap_or(86_400);
    if overlap > MAX_OVERLAP_SECS {
        return Err(ApiError::field(
            "overlap_secs",
            "from 0 to 2592000 (30 days)",
        ));
    }
    let now = st.engine().now();
    let rotated = st
        .api_keys()
        .rotate(
            caller.tenant,
            &id,
            sessionkit_core::DurationMs::from_secs(overlap),
            now,
        )
        .map_err(|e| {
            tracing::error!(error = %e, "cannot store API keys");
            ApiError::Internal
        })?
        .ok_or_else(|| ApiError::NotFound("no such API key".into()))?;
    tracing::info!(old_key_id = %id, key_id = %rotated.info.id, overlap_secs = overlap, "API key rotated");
    let location = format!("/v1/api-keys/{}", rotated.info.id);
    let mut res = (
        StatusCode::CREATED,
        Json(CreatedApiKey {
            api_key: key_out(&rotated.info),
            key: rotated.secret,
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// Revoke an API key of the caller's tenant.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "admin",
    params(("id" = String, Path, description = "Key id")),
    responses((status = 204, description = "Revoked"),
              (status = 404, description = "not_found", body = ErrorBody)),
    security(("api_key" = ["admin"])))]
pub async fn revoke_key<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Admin>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = caller.tenant;
    match st.api_keys().revoke(tenant, &id) {
        Ok(true) => {
            tracing::info!(key_id = %id.chars().take(64).collect::<String>(), "API key revoked");
            Ok(StatusCode::NO_CONTENT)
        }
        Ok(false) => Err(ApiError::NotFound("no such API key".into())),
        Err(e) => {
            tracing::error!(error = %e, "cannot store API keys");
            Err(ApiError::Internal)
        }
    }
}
