//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! annotations and the wire types. A test checks it against the router.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{admin, sessions, subjects};
use crate::{error, ops, wire};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "sessiond", description = "The sessiond v1 API (DESIGN.md §7)"),
    paths(
        sessions::create, sessions::validate, sessions::upgrade, sessions::revoke_token,
        sessions::get_session, sessions::patch_attributes, sessions::delete_session,
        subjects::list_subjects, subjects::list, subjects::get_one, subjects::revoke_one, subjects::revoke_all,
        admin::stats, admin::purge, admin::list_keys, admin::get_key, admin::create_key,
        admin::revoke_key,
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
/// `insufficient_scope`, 408 `request_timeout` (bodies), 503
/// `store_unavailable` and 500 `internal_error`.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |text: &str| {
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
        let common = [
            (
                "401",
                "unauthenticated: the API key is missing, wrong or revoked",
            ),
            ("403", "insufficient_scope: the API key lacks the scope"),
            ("408", "request_timeout: the body did not arrive in time"),
            ("500", "internal_error"),
            ("503", "store_unavailable (with Retry-After)"),
        ];
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            let ops = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ];
            for op in ops.into_iter().flatten() {
                for (status, text) in common {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error(text).into());
                }
            }
        }
    }
}
