//! The OpenAPI document served at `/openapi.json`, assembled from the same annotated handlers
//! that build the router (utoipa-axum's `routes!`): no route without its documentation.

use utoipa::{Modify, OpenApi};

/// The error body every service answers with, defined once in `daarion-http`.
pub use daarion_http::{ErrorBody, ErrorEnvelope};

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
    components(schemas(ErrorEnvelope, ErrorBody)),
    tags(
        (name = "users"), (name = "sessions"), (name = "attachments"), (name = "facts"), (name = "search"),
        (name = "graph"), (name = "usage"), (name = "audit")
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        daarion_http::openapi::add_bearer(openapi);
    }
}
