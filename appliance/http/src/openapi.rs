//! What every service's OpenAPI document shares: the bearer scheme its calls need, and the open
//! route that serves the document generated from the same annotated handlers as its routes.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// Declares the `bearer` security scheme (the appliance's admin token or an API token).
pub fn add_bearer(openapi: &mut OpenApi) {
    openapi
        .components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
}

/// `router` with `GET /openapi.json` serving `document`, open like `/health`: the document
/// describes the API, it grants nothing.
pub fn with_document<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    document: OpenApi,
) -> Router<S> {
    let document = Arc::new(document);
    router.route(
        "/openapi.json",
        get(move || {
            let document = document.clone();
            async move { axum::Json(document.as_ref().clone()) }
        }),
    )
}
