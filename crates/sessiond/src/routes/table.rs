//! Every route of the server, once: its method, its path template and its
//! operation name. The router registers exactly these rows
//! ([`crate::app::router`]), and the metrics label a request with the
//! operation of the row it matched ([`operation`]), so a route cannot be
//! served without a label, nor a label name a route that is not served.

use axum::http::Method;
use axum::routing::MethodFilter;

/// The methods the routes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `GET` (also answers `HEAD`).
    Get,
    /// `POST`.
    Post,
    /// `PATCH`.
    Patch,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
}

impl Verb {
    /// The router's filter for this method.
    #[must_use]
    pub const fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Patch => MethodFilter::PATCH,
            Verb::Put => MethodFilter::PUT,
            Verb::Delete => MethodFilter::DELETE,
        }
    }

    /// The method, as `http` names it.
    #[must_use]
    pub const fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Patch => Method::PATCH,
            Verb::Put => Method::PUT,
            Verb::Delete => Method::DELETE,
        }
    }

    /// Whether a request with `m` is routed to this method (`HEAD` is
    /// answered by `GET`).
    #[must_use]
    pub fn matches(self, m: &Method) -> bool {
        match self {
            Verb::Get => m == Method::GET || m == Method::HEAD,
            Verb::Post => m == Method::POST,
            Verb::Patch => m == Method::PATCH,
            Verb::Put => m == Method::PUT,
            Verb::Delete => m == Method::DELETE,
        }
    }
}

/// Defines [`Operation`] and its labels from one list.
macro_rules! operations {
    ($( $(#[$doc:meta])* $variant:ident => $label:literal, )*) => {
        /// What a route does: the `operation` label of the request metrics.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Operation {
            $( $(#[$doc])* $variant, )*
        }

        impl Operation {
            /// Every operation, in declaration order: `ALL[o.index()] == o`.
            pub const ALL: &'static [Operation] = &[$(Operation::$variant),*];

            /// The metric label.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Operation::$variant => $label, )*
                }
            }
        }
    };
}

operations! {
    /// `POST /v1/sessions`.
    Create => "create",
    /// `POST /v1/sessions/validate`.
    Validate => "validate",
    /// `POST /v1/sessions/upgrade`.
    Upgrade => "upgrade",
    /// `POST /v1/sessions/revoke`.
    Logout => "logout",
    /// `GET /v1/sessions/{id}`.
    Get => "get",
    /// `DELETE /v1/sessions/{id}`.
    Delete => "delete",
    /// `PATCH /v1/sessions/{id}/attributes`.
    PatchAttributes => "patch_attributes",
    /// `GET /v1/subjects`.
    ListSubjects => "list_subjects",
    /// `GET /v1/subjects/{subject}/sessions`.
    ListSubject => "list_subject",
    /// `DELETE /v1/subjects/{subject}/sessions`.
    RevokeSubject => "revoke_subject",
    /// `GET /v1/subjects/{subject}/sessions/{id}`.
    GetForSubject => "get_for_subject",
    /// `DELETE /v1/subjects/{subject}/sessions/{id}`.
    DeleteForSubject => "delete_for_subject",
    /// `GET /v1/stats`.
    Stats => "stats",
    /// `POST /v1/purge`.
    Purge => "purge",
    /// `GET /v1/api-keys`.
    ListApiKeys => "list_api_keys",
    /// `POST /v1/api-keys`.
    CreateApiKey => "create_api_key",
    /// `GET /v1/api-keys/{id}`.
    GetApiKey => "get_api_key",
    /// `DELETE /v1/api-keys/{id}`.
    RevokeApiKey => "revoke_api_key",
    /// `POST /v1/api-keys/{id}/rotate`.
    RotateApiKey => "rotate_api_key",
    /// `POST /v1/tokens/refresh`.
    Refresh => "refresh",
    /// `POST /v1/tokens/introspect`.
    Introspect => "introspect",
    /// `GET /.well-known/jwks.json`.
    Jwks => "jwks",
    /// `GET /v1/keys`.
    ListSigningKeys => "list_signing_keys",
    /// `POST /v1/keys/rotate`.
    RotateSigningKeys => "rotate_signing_keys",
    /// `PUT /v1/upstream/{provider}`.
    PutGrant => "put_grant",
    /// `POST /v1/upstream/{provider}/token`.
    UpstreamToken => "upstream_token",
    /// `DELETE /v1/upstream/{provider}`.
    DeleteGrant => "delete_grant",
    /// `GET /healthz`.
    Healthz => "healthz",
    /// `GET /readyz`.
    Readyz => "readyz",
    /// `GET /metrics`.
    Metrics => "metrics",
    /// `GET /openapi.json`.
    OpenApi => "openapi",
    /// No route matched (404), or a method the path does not serve (405).
    Other => "other",
}

impl Operation {
    /// The position of this operation in [`Operation::ALL`].
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Whether requests of this operation are counted and timed: the
    /// operations endpoints (probes, scrapes) are not, so that they do not
    /// drown the API's figures.
    #[must_use]
    pub const fn is_metered(self) -> bool {
        !matches!(
            self,
            Operation::Healthz | Operation::Readyz | Operation::Metrics | Operation::OpenApi
        )
    }
}

/// One route: method, path template (axum syntax), operation.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// The method.
    pub verb: Verb,
    /// The path template, as the router and `MatchedPath` spell it.
    pub path: &'static str,
    /// What it does.
    pub operation: Operation,
}

const fn route(verb: Verb, path: &'static str, operation: Operation) -> Route {
    Route {
        verb,
        path,
        operation,
    }
}

/// Every route the server answers (docs/api.md), each with its operation.
pub const ROUTES: &[Route] = &[
    route(Verb::Post, "/v1/sessions", Operation::Create),
    route(Verb::Post, "/v1/sessions/validate", Operation::Validate),
    route(Verb::Post, "/v1/sessions/upgrade", Operation::Upgrade),
    route(Verb::Post, "/v1/sessions/revoke", Operation::Logout),
    route(Verb::Get, "/v1/sessions/{id}", Operation::Get),
    route(Verb::Delete, "/v1/sessions/{id}", Operation::Delete),
    route(
        Verb::Patch,
        "/v1/sessions/{id}/attributes",
        Operation::PatchAttributes,
    ),
    route(Verb::Get, "/v1/subjects", Operation::ListSubjects),
    route(
        Verb::Get,
        "/v1/subjects/{subject}/sessions",
        Operation::ListSubject,
    ),
    route(
        Verb::Delete,
        "/v1/subjects/{subject}/sessions",
        Operation::RevokeSubject,
    ),
    route(
        Verb::Get,
        "/v1/subjects/{subject}/sessions/{id}",
        Operation::GetForSubject,
    ),
    route(
        Verb::Delete,
        "/v1/subjects/{subject}/sessions/{id}",
        Operation::DeleteForSubject,
    ),
    route(Verb::Get, "/v1/stats", Operation::Stats),
    route(Verb::Post, "/v1/purge", Operation::Purge),
    route(Verb::Get, "/v1/api-keys", Operation::ListApiKeys),
    route(Verb::Post, "/v1/api-keys", Operation::CreateApiKey),
    route(Verb::Get, "/v1/api-keys/{id}", Operation::GetApiKey),
    route(Verb::Delete, "/v1/api-keys/{id}", Operation::RevokeApiKey),
    route(
        Verb::Post,
        "/v1/api-keys/{id}/rotate",
        Operation::RotateApiKey,
    ),
    route(Verb::Post, "/v1/tokens/refresh", Operation::Refresh),
    route(Verb::Post, "/v1/tokens/introspect", Operation::Introspect),
    route(Verb::Get, "/.well-known/jwks.json", Operation::Jwks),
    route(Verb::Get, "/v1/keys", Operation::ListSigningKeys),
    route(Verb::Post, "/v1/keys/rotate", Operation::RotateSigningKeys),
    route(Verb::Put, "/v1/upstream/{provider}", Operation::PutGrant),
    route(
        Verb::Post,
        "/v1/upstream/{provider}/token",
        Operation::UpstreamToken,
    ),
    route(
        Verb::Delete,
        "/v1/upstream/{provider}",
        Operation::DeleteGrant,
    ),
    route(Verb::Get, "/healthz", Operation::Healthz),
    route(Verb::Get, "/readyz", Operation::Readyz),
    route(Verb::Get, "/metrics", Operation::Metrics),
    route(Verb::Get, "/openapi.json", Operation::OpenApi),
];

/// The operation of a request by its method and matched path template;
/// [`Operation::Other`] when no row has both (the label never comes from
/// the client's own text).
#[must_use]
pub fn operation(method: &Method, matched_path: &str) -> Operation {
    ROUTES
        .iter()
        .find(|r| r.verb.matches(method) && r.path == matched_path)
        .map_or(Operation::Other, |r| r.operation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_its_own_operation_and_every_operation_a_route() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(seen.insert(r.operation), "{:?} twice", r.operation);
            assert_eq!(operation(&r.verb.method(), r.path), r.operation);
            assert_ne!(r.operation, Operation::Other, "{} has no name", r.path);
        }
        for op in Operation::ALL {
            assert!(
                *op == Operation::Other || seen.contains(op),
                "{op:?} names no route"
            );
        }
        let labels: std::collections::HashSet<&str> =
            Operation::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(labels.len(), Operation::ALL.len());
        for (i, o) in Operation::ALL.iter().enumerate() {
            assert_eq!(o.index(), i);
        }
    }

    #[test]
    fn unknown_requests_are_other() {
        assert_eq!(operation(&Method::PUT, "/v1/sessions"), Operation::Other);
        assert_eq!(operation(&Method::GET, "/v1/nothing"), Operation::Other);
        assert_eq!(operation(&Method::HEAD, "/v1/stats"), Operation::Stats);
    }
}
