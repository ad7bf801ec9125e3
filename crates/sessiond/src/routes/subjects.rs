//! `/v1/subjects/{subject}/sessions…`: a subject's device list, one of its
//! sessions, and revocation (one, all, or all but one). Use these for any
//! session id that came from an end user: an id of another subject is
//! `not_found`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sessionkit::manager::MAX_PAGE;
use sessionkit_core::RevokeReason;
use sessionkit_core::store::{RevokeOutcome, RevokeSubjectOutcome};

use super::sessions::session_with_etag;
use super::{cursor, parse_id, parse_subject};
use crate::app::AppState;
use crate::backend::ServedStore;
use crate::error::{ApiError, ErrorBody};
use crate::http::{Authorized, PathParams, QueryPairs, scope};
use crate::wire::{
    RevokedCount, SessionList, SessionOut, SessionResponse, SubjectList, SubjectOut,
};

/// Default page size.
pub const DEFAULT_LIMIT: usize = 100;

fn parse_limit(v: Option<&str>) -> Result<usize, ApiError> {
    let Some(v) = v else {
        return Ok(DEFAULT_LIMIT);
    };
    let bad = || ApiError::field("limit", format!("must be an integer from 1 to {MAX_PAGE}"));
    if v.is_empty() || v.len() > 5 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match v.parse::<usize>() {
        Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        _ => Err(bad()),
    }
}

/// A subject's live sessions, newest first.
#[utoipa::path(get, path = "/v1/subjects/{subject}/sessions", tag = "subjects",
    params(
        ("subject" = String, Path, description = "Percent-encoded subject (`/` as `%2F`)"),
        ("limit" = Option<usize>, Query, description = "1..=1000, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page", body = SessionList),
        (status = 400, description = "invalid_request", body = ErrorBody),
    ),
    security(("api_key" = ["sessions:read"])))]
pub async fn list<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Read>,
    PathParams(subject): PathParams<String>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let tenant = caller.tenant;
    let subject = parse_subject("subject", &subject)?;
    let allowed = ["limit", "cursor"];
    let limit = parse_limit(q.one("limit", &allowed)?)?;
    let after = q.one("cursor", &allowed)?.map(cursor::decode).transpose()?;
    let page = st.engine().list(tenant, &subject, after, limit).await?;
    Ok(Json(SessionList {
        sessions: page.sessions.iter().map(SessionOut::from_record).collect(),
        next_cursor: page.next.as_ref().map(cursor::encode),
    })
    .into_response())
}

/// The subjects with a live session ("who is logged in"), in byte order,
/// each with its number of live sessions.
#[utoipa::path(get, path = "/v1/subjects", tag = "subjects",
    params(
        ("limit" = Option<usize>, Query, description = "1..=1000, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page", body = SubjectList),
        (status = 400, description = "invalid_request", body = ErrorBody),
    ),
    security(("api_key" = ["sessions:read"])))]
pub async fn list_subjects<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Read>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let allowed = ["limit", "cursor"];
    let limit = parse_limit(q.one("limit", &allowed)?)?;
    let after = q
        .one("cursor", &allowed)?
        .map(cursor::decode_subject)
        .transpose()?;
    let page = st
        .engine()
        .list_subjects(caller.tenant, after.as_ref(), limit)
        .await?;
    Ok(Json(SubjectList {
        subjects: page
            .subjects
            .iter()
            .map(|(s, n)| SubjectOut {
                subject: s.as_str(),
                sessions: *n,
            })
            .collect(),
        next_cursor: page.next.as_ref().map(cursor::encode_subject),
    })
    .into_response())
}

/// One live session of a subject.
#[utoipa::path(get, path = "/v1/subjects/{subject}/sessions/{id}", tag = "subjects",
    params(
        ("subject" = String, Path, description = "Percent-encoded subject"),
        ("id" = String, Path, description = "Session id"),
    ),
    responses(
        (status = 200, description = "The session, with `ETag`", body = SessionResponse),
        (status = 404, description = "not_found unless the id belongs to the subject", body = ErrorBody),
    ),
    security(("api_key" = ["sessions:read"])))]
pub async fn get_one<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Read>,
    PathParams((subject, id)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    let tenant = caller.tenant;
    let subject = parse_subject("subject", &subject)?;
    let id = parse_id("id", &id)?;
    match st.engine().get_for_subject(tenant, &subject, id).await? {
        Some(rec) => Ok(session_with_etag(&rec)),
        None => Err(ApiError::session_not_found()),
    }
}

/// Revoke one session of a subject.
#[utoipa::path(delete, path = "/v1/subjects/{subject}/sessions/{id}", tag = "subjects",
    params(
        ("subject" = String, Path, description = "Percent-encoded subject"),
        ("id" = String, Path, description = "Session id"),
    ),
    responses(
        (status = 204, description = "Revoked (or revoked already)"),
        (status = 404, description = "not_found unless the id belongs to the subject", body = ErrorBody),
    ),
    security(("api_key" = ["sessions:write"])))]
pub async fn revoke_one<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Write>,
    PathParams((subject, id)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant = caller.tenant;
    let subject = parse_subject("subject", &subject)?;
    let id = parse_id("id", &id)?;
    match st
        .engine()
        .revoke_for_subject(tenant, &subject, id, RevokeReason::Admin)
        .await?
    {
        RevokeOutcome::Revoked { .. } | RevokeOutcome::AlreadyRevoked => Ok(StatusCode::NO_CONTENT),
        RevokeOutcome::NotFound => Err(ApiError::session_not_found()),
    }
}

/// Revoke every session of a subject, or all but `except`.
#[utoipa::path(delete, path = "/v1/subjects/{subject}/sessions", tag = "subjects",
    params(
        ("subject" = String, Path, description = "Percent-encoded subject"),
        ("except" = Option<String>, Query, description = "A live session of the subject to keep"),
    ),
    responses(
        (status = 200, description = "How many were revoked", body = RevokedCount),
        (status = 404, description = "not_found: `except` is not a live session of the subject; nothing revoked", body = ErrorBody),
    ),
    security(("api_key" = ["sessions:write"])))]
pub async fn revoke_all<S: ServedStore>(
    State(st): State<AppState<S>>,
    caller: Authorized<scope::Write>,
    PathParams(subject): PathParams<String>,
    q: QueryPairs,
) -> Result<Json<RevokedCount>, ApiError> {
    let tenant = caller.tenant;
    let subject = parse_subject("subject", &subject)?;
    let except = q
        .one("except", &["except"])?
        .map(|s| parse_id("except", s))
        .transpose()?;
    match st.engine().revoke_subject(tenant, &subject, except).await? {
        RevokeSubjectOutcome::Revoked { count } => Ok(Json(RevokedCount { revoked: count })),
        RevokeSubjectOutcome::ExceptNotLive => Err(ApiError::NotFound(
            "`except` is not a live session of this subject; nothing was revoked".into(),
        )),
    }
}
