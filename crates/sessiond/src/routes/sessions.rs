//! `/v1/sessions…`: create, validate, upgrade, logout by token, read,
//! patch attributes, delete by id.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sessionkit::{
    Issue, NewSession, PatchResult, TokenRevocation, UpgradeResult, ValidateRequest, Validation,
};
use sessionkit_core::store::RevokeOutcome;
use sessionkit_core::{RevokeReason, SessionRecord};

use super::{parse_id, parse_subject};
use crate::app::AppState;
use crate::backend::ServedStore;
use crate::error::{ApiError, ErrorBody};
use crate::http::json::{JsonBody, MergePatchBody};
use crate::http::{Authorized, PathParams, scope};
use crate::wire::{
    CreateRequest, CreatedResponse, IssueKind, RevokeRequestBody, SessionOut, SessionResponse,
    UpgradeRequestBody, ValidateRequestBody, ValidatedResponse, assurance_in,
};

/// `{session}` with `ETag: "<version>"`.
pub(crate) fn session_with_etag(rec: &SessionRecord) -> Response {
    let mut res = Json(SessionResponse {
        session: SessionOut::from_record(rec),
    })
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", rec.version)) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

/// A TTL override as an integer; floats and integers beyond 64 bits are
/// 400 naming the field (the engine checks the range: 1..=policy).
fn ttl(field: &str, n: Option<serde_json::Number>) -> Result<Option<i128>, ApiError> {
    let Some(n) = n else { return Ok(None) };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i128::from(i)));
    }
    if let Some(u) = n.as_u64() {
        return Ok(Some(i128::from(u)));
    }
    let why = if n.as_f64().is_some_and(|f| f.fract() == 0.0) {
        "out of range"
    } else {
        "must be an integer number of seconds"
    };
    Err(ApiError::field(field, why))
}

/// Create a session.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions",
    request_body = CreateRequest,
    responses(
        (status = 201, description = "Created; `Location` names it", body = CreatedResponse),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "unauthenticated", body = ErrorBody),
        (status = 403, description = "insufficient_scope", body = ErrorBody),
        (status = 409, description = "session_limit_reached", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_media_type", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
        (status = 503, description = "store_unavailable", body = ErrorBody),
    ),
    security(("api_key" = ["sessions:write"])))]
pub async fn create<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Write>,
    JsonBody(body): JsonBody<CreateRequest>,
) -> Result<Response, ApiError> {
    st.options().rate_limits.create(&caller.key.id)?;
    let tenant = caller.tenant;
    let subject = body
        .subject
        .as_deref()
        .map(|s| parse_subject("subject", s))
        .transpose()?;
    let client = body
        .client
        .map(|c| c.into_client())
        .transpose()?
        .unwrap_or_default();
    let req = NewSession {
        subject,
        attributes: body.attributes,
        client,
        idle_timeout_secs: ttl("idle_timeout_secs", body.idle_timeout_secs)?,
        absolute_timeout_secs: ttl("absolute_timeout_secs", body.absolute_timeout_secs)?,
        assurance: assurance_in(body.aal, body.amr)?,
    };
    let (mut res, id) = match body.issue.unwrap_or_default() {
        IssueKind::Session => {
            let created = st.engine().create(tenant, req).await?;
            let body = CreatedResponse {
                session: SessionOut::from_record(&created.session),
                token: created.token.expose_secret(),
                csrf_token: st.engine().csrf_token(&created.session.id),
                evicted: created.evicted.iter().map(ToString::to_string).collect(),
            };
            let res = (StatusCode::CREATED, Json(body)).into_response();
            (res, created.session.id)
        }
        IssueKind::Pair => {
            let pair = st.engine().create_pair(tenant, req).await?;
            let body = super::tokens::pair_body(&st, &pair);
            let res = (StatusCode::CREATED, Json(body)).into_response();
            (res, pair.session.id)
        }
    };
    let location = format!("/v1/sessions/{id}");
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// Validate a session token.
#[utoipa::path(post, path = "/v1/sessions/validate", tag = "sessions",
    request_body = ValidateRequestBody,
    responses(
        (status = 200, description = "Live", body = ValidatedResponse),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "invalid_token, session_expired, token_expired (an access JWT past its exp), reauthentication_required (max_age_secs or min_aal) or unauthenticated", body = ErrorBody),
        (status = 403, description = "csrf_failed or insufficient_scope", body = ErrorBody),
        (status = 503, description = "store_unavailable", body = ErrorBody),
    ),
    security(("api_key" = ["sessions:validate"])))]
pub async fn validate<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Validate>,
    JsonBody(body): JsonBody<ValidateRequestBody>,
) -> Result<Response, ApiError> {
    let tenant = caller.tenant;
    let client = body.client.map(|c| c.into_client()).transpose()?;
    const MAX_AGE_SECS: u64 = 10 * 366 * 86_400;
    let max_age = match body.max_age_secs {
        None => None,
        Some(s) if s <= MAX_AGE_SECS => Some(sessionkit_core::DurationMs::from_secs(s)),
        Some(_) => {
            return Err(ApiError::field(
                "max_age_secs",
                "from 0 to 316224000 (10 years)",
            ));
        }
    };
    let min_aal = match body.min_aal.map(u8::try_from) {
        None => None,
        Some(Ok(a)) if a <= sessionkit_core::assurance::MAX_AAL => Some(a),
        Some(_) => return Err(ApiError::field("min_aal", "an integer from 0 to 3")),
    };
    let req = ValidateRequest {
        csrf_token: body.csrf_token,
        client,
        max_age,
        min_aal,
    };
    match st.engine().validate(tenant, &body.token, &req).await? {
        Validation::Valid { session } => {
            let csrf = st.engine().csrf_token(&session.id);
            Ok(super::json_response(&ValidatedResponse {
                csrf_token: &csrf,
                session: SessionOut::from_record(&session),
            }))
        }
        Validation::Expired(_) => Err(ApiError::SessionExpired),
        Validation::TokenExpired => Err(ApiError::TokenExpired),
        Validation::Invalid => Err(ApiError::InvalidToken),
        Validation::CsrfFailed => Err(ApiError::CsrfFailed),
        Validation::ReauthenticationRequired => Err(ApiError::ReauthenticationRequired),
    }
}

/// Log in on top of a live session (new id and token; the old token dies).
#[utoipa::path(post, path = "/v1/sessions/upgrade", tag = "sessions",
    request_body = UpgradeRequestBody,
    responses(
        (status = 200, description = "Upgraded", body = CreatedResponse),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "invalid_token, session_expired or unauthenticated", body = ErrorBody),
        (status = 409, description = "session_limit_reached or conflict", body = ErrorBody),
        (status = 503, description = "store_unavailable", body = ErrorBody),
    ),
    security(("api_key" = ["sessions:write"])))]
pub async fn upgrade<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Write>,
    JsonBody(body): JsonBody<UpgradeRequestBody>,
) -> Result<Response, ApiError> {
    let tenant = caller.tenant;
    let subject = parse_subject("subject", &body.subject)?;
    let keep = body.keep_attributes.unwrap_or_default();
    let assurance = assurance_in(body.aal, body.amr)?;
    let result = match body.issue.unwrap_or_default() {
        IssueKind::Session => {
            st.engine()
                .upgrade_as(
                    tenant,
                    &body.token,
                    subject,
                    &keep,
                    assurance,
                    Issue::Session,
                )
                .await?
        }
        IssueKind::Pair => match st
            .engine()
            .upgrade_pair(tenant, &body.token, subject, &keep, assurance)
            .await?
        {
            Ok(pair) => return Ok(Json(super::tokens::pair_body(&st, &pair)).into_response()),
            Err(other) => other,
        },
    };
    match result {
        UpgradeResult::Upgraded(c) => Ok(Json(CreatedResponse {
            session: SessionOut::from_record(&c.session),
            token: c.token.expose_secret(),
            csrf_token: st.engine().csrf_token(&c.session.id),
            evicted: c.evicted.iter().map(ToString::to_string).collect(),
        })
        .into_response()),
        UpgradeResult::Invalid => Err(ApiError::InvalidToken),
        UpgradeResult::Expired(_) => Err(ApiError::SessionExpired),
        UpgradeResult::TokenExpired => Err(ApiError::TokenExpired),
    }
}

/// Log out (revoke by token). 204 for any well-formed token: no oracle.
#[utoipa::path(post, path = "/v1/sessions/revoke", tag = "sessions",
    request_body = RevokeRequestBody,
    responses(
        (status = 204, description = "Done (whether or not a session was live)"),
        (status = 401, description = "invalid_token (malformed) or unauthenticated", body = ErrorBody),
        (status = 503, description = "store_unavailable", body = ErrorBody),
    ),
    security(("api_key" = ["sessions:write"])))]
pub async fn revoke_token<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Write>,
    JsonBody(body): JsonBody<RevokeRequestBody>,
) -> Result<StatusCode, ApiError> {
    let tenant = caller.tenant;
    match st.engine().revoke_token(tenant, &body.token).await? {
        TokenRevocation::Done => Ok(StatusCode::NO_CONTENT),
        TokenRevocation::Malformed => Err(ApiError::InvalidToken),
    }
}

/// Read a live session by id.
#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 200, description = "The session, with `ETag`", body = SessionResponse),
        (status = 400, description = "invalid_request (malformed id)", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
    ),
    security(("api_key" = ["sessions:read"])))]
pub async fn get_session<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Read>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let tenant = caller.tenant;
    let id = parse_id("id", &id)?;
    match st.engine().get(tenant, id).await? {
        Some(rec) => Ok(session_with_etag(&rec)),
        None => Err(ApiError::session_not_found()),
    }
}

fn parse_if_match(h: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(v) = h.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let bad = || ApiError::PreconditionFailed("malformed If-Match (expected \"<version>\")".into());
    let s = v.to_str().map_err(|_| bad())?.trim();
    if s == "*" {
        return Ok(None);
    }
    let inner = s
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .ok_or_else(bad)?;
    if inner.is_empty() || inner.len() > 20 || !inner.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    inner.parse().map(Some).map_err(|_| bad())
}

/// Apply a JSON merge patch to the attributes.
#[utoipa::path(patch, path = "/v1/sessions/{id}/attributes", tag = "sessions",
    params(
        ("id" = String, Path, description = "Session id"),
        ("If-Match" = Option<String>, Header, description = "\"<version>\""),
    ),
    request_body(content = Object, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "Patched, with `ETag`", body = SessionResponse),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 412, description = "precondition_failed", body = ErrorBody),
        (status = 413, description = "payload_too_large (attributes over the cap; nothing written)", body = ErrorBody),
        (status = 415, description = "unsupported_media_type", body = ErrorBody),
    ),
    security(("api_key" = ["sessions:write"])))]
pub async fn patch_attributes<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Write>,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    MergePatchBody(patch): MergePatchBody,
) -> Result<Response, ApiError> {
    let tenant = caller.tenant;
    let id = parse_id("id", &id)?;
    let if_match = parse_if_match(&headers)?;
    match st
        .engine()
        .patch_attributes(tenant, id, &patch, if_match)
        .await?
    {
        PatchResult::Updated(rec) => Ok(session_with_etag(&rec)),
        PatchResult::NotFound => Err(ApiError::session_not_found()),
        PatchResult::PreconditionFailed => Err(ApiError::PreconditionFailed(
            "the session has another version".into(),
        )),
    }
}

/// Revoke a session by id.
#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 204, description = "Revoked (or revoked already)"),
        (status = 404, description = "not_found", body = ErrorBody),
    ),
    security(("api_key" = ["sessions:write"])))]
pub async fn delete_session<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Write>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = caller.tenant;
    let id = parse_id("id", &id)?;
    match st.engine().revoke(tenant, id, RevokeReason::Admin).await? {
        RevokeOutcome::Revoked { .. } | RevokeOutcome::AlreadyRevoked => Ok(StatusCode::NO_CONTENT),
        RevokeOutcome::NotFound => Err(ApiError::session_not_found()),
    }
}
