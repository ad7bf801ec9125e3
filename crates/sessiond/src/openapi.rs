//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! annotations and the wire types. A test checks it against the router.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorCode;
use crate::routes::{admin, sessions, subjects, tokens, upstream};
use crate::{error, ops, wire};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "sessiond", description = "The sessiond v1 API"),
    paths(
        sessions::create, sessions::validate, sessions::upgrade, sessions::revoke_token,
        sessions::get_session, sessions::patch_attributes, sessions::delete_session,
        subjects::list_subjects, subjects::list, subjects::get_one, subjects::revoke_one, subjects::revoke_all,
        admin::stats, admin::purge, admin::list_keys, admin::get_key, admin::create_key,
        admin::revoke_key, admin::rotate_key,
        tokens::refresh, tokens::introspect, tokens::jwks, tokens::list_keys, tokens::rotate_keys,
        upstream::put_grant, upstream::token, upstream::delete_grant,
        ops::healthz, ops::readyz, ops::metrics, ops::openapi,
    ),
    components(schemas(error::ErrorBody, wire::SessionOut, wire::ClientOut)),
    modifiers(&BearerAuth, &CommonErrors),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Adds the answers every authenticated `/v1` operation can give, in one
/// place instead of on each handler: 401 `unauthenticated`, 403
/// `insufficient_scope`, 408 `request_timeout` (bodies), 500
/// `internal_error`, 503 `store_unavailable`, and on writes 507
/// `insufficient_storage`. Statuses and codes come from [`ErrorCode`].
struct CommonErrors;

/// The common answers: the code, what it means here, and whether only
/// writes (not `GET`) can give it.
const COMMON: [(ErrorCode, &str, bool); 6] = [
    (
        ErrorCode::Unauthenticated,
        "the API key is missing, wrong or revoked",
        false,
    ),
    (
        ErrorCode::InsufficientScope,
        "the API key lacks the scope",
        false,
    ),
    (
        ErrorCode::RequestTimeout,
        "the body did not arrive in time",
        false,
    ),
    (ErrorCode::Internal, "a fault on the server's side", false),
    (
        ErrorCode::StoreUnavailable,
        "the store is down or cannot write (with Retry-After)",
        false,
    ),
    (
        ErrorCode::InsufficientStorage,
        "the store is out of room; retrying will not help",
        true,
    ),
];

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |text: String| {
            ResponseBuilder::new()
                .description(text)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            let ops = [
                (item.get.as_mut(), false),
                (item.post.as_mut(), true),
                (item.put.as_mut(), true),
                (item.patch.as_mut(), true),
                (item.delete.as_mut(), true),
            ];
            for (op, writes) in ops {
                let Some(op) = op else { continue };
                for (code, text, writes_only) in COMMON {
                    if writes_only && !writes {
                        continue;
                    }
                    op.responses
                        .responses
                        .entry(code.status().as_u16().to_string())
                        .or_insert_with(|| error(format!("{}: {text}", code.as_str())).into());
                }
            }
        }
    }
}
