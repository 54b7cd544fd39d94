//! The OpenAPI document served at `/openapi.json`, assembled from the same annotated handlers
//! that build the router (utoipa-axum's `routes!`): no route without its documentation.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every error answer: `{"error": {"code", "message", "trace_id"}}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorEnvelope {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// Stable, for programs: `unauthorized`, `forbidden`, `other_user`, `not_found`, `invalid`…
    code: String,
    /// For people.
    message: String,
    /// The trace to look up in the logs.
    trace_id: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "DAARION memory",
        description = "The appliance's single access point to its data: users and identities, \
            sessions and messages, facts with history, search, the knowledge graph, usage and the \
            audit log. Every call needs a bearer token: the appliance's admin token, or an API token \
            with memory:read / memory:write (any user) or memory:user (only the user named in \
            X-Daarion-Acting-For)."
    ),
    modifiers(&Security),
    security(("bearer" = [])),
    components(schemas(ErrorEnvelope, ErrorDetail)),
    tags(
        (name = "users"), (name = "sessions"), (name = "facts"), (name = "search"),
        (name = "graph"), (name = "usage"), (name = "audit")
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
