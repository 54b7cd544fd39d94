//! The OpenAPI document served at `/openapi.json`. It is assembled from the same annotated
//! handlers that build the router (utoipa-axum's `routes!`), so a route cannot exist without
//! its documentation or the other way round.

use daarion_http::{ErrorBody, ErrorEnvelope};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::session::SESSION_COOKIE;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "DAARION control plane",
        description = "Agents, versioned prompts, RBAC policy, typed config and flags, quotas. \
            Every endpoint needs a bearer token (the appliance's admin token or an API token \
            with scopes) or an admin session cookie plus X-CSRF-Token for changes."
    ),
    modifiers(&Security),
    security(("bearer" = []), ("session" = [])),
    components(schemas(ErrorEnvelope, ErrorBody)),
    tags(
        (name = "agents"), (name = "prompts"), (name = "policy"), (name = "config"),
        (name = "quotas"), (name = "auth")
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        daarion_http::openapi::add_bearer(openapi);
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(SESSION_COOKIE))),
        );
    }
}
