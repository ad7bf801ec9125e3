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
        subjects::list, subjects::get_one, subjects::revoke_one, subjects::revoke_all,
        admin::stats, admin::purge, admin::list_keys, admin::get_key, admin::create_key,
        admin::revoke_key,
        ops::healthz, ops::readyz, ops::metrics, ops::openapi,
    ),
    components(schemas(error::ErrorBody, wire::SessionOut, wire::ClientOut)),
    modifiers(&BearerAuth),
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
