//! The memory REST API: users and identities, sessions and messages, facts with history,
//! full-text search, usage over time and the audit log. Every route needs a credential; see [`auth`].
//!
//! Request and response bodies are `daarion-memory-client`'s types, the contract every caller
//! compiles against; `crate::rows` reads them from query rows.

pub(crate) mod attachments;
mod audit_log;
pub mod auth;
mod documents;
mod error;
mod facts;
mod graph;
mod index;
mod keys;
mod openapi;
mod search;
mod sessions;
pub mod state;
mod text;
mod usage;
mod users;

use axum::Router;

pub use error::ApiError;
pub use sessions::MAX_MESSAGE_BYTES;

use crate::App;

/// The API routes, every one behind authentication, and the OpenAPI document generated from the
/// same handlers at `/openapi.json` (open, like `/health`).
pub fn routes(app: App) -> Router {
    use utoipa::OpenApi;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;
    let (router, document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(users::resolve))
        .routes(routes!(users::list))
        .routes(routes!(users::get))
        .routes(routes!(sessions::create))
        .routes(routes!(sessions::open))
        .routes(routes!(sessions::get))
        .routes(routes!(sessions::end))
        .routes(routes!(sessions::messages, sessions::add_message))
        .routes(routes!(state::list))
        .routes(routes!(state::get, state::put, state::delete))
        .routes(routes!(facts::list, facts::add))
        .routes(routes!(facts::supersede))
        .routes(routes!(facts::forget))
        .routes(routes!(facts::history))
        .routes(routes!(documents::add, documents::list))
        .routes(routes!(documents::get))
        .routes(routes!(attachments::create, attachments::list))
        .routes(routes!(attachments::get, attachments::delete))
        .routes(routes!(attachments::retry))
        .routes(routes!(attachments::progress))
        .routes(routes!(attachments::sections))
        .routes(routes!(attachments::parsed))
        .routes(routes!(attachments::failed))
        .routes(routes!(search::search))
        .routes(routes!(index::status))
        .routes(routes!(index::retry))
        .routes(routes!(usage::usage))
        .routes(routes!(audit_log::audit))
        .routes(routes!(graph::relate))
        .routes(routes!(graph::end))
        .routes(routes!(graph::find))
        .routes(routes!(graph::neighbourhood))
        .routes(routes!(graph::path))
        // Inside authentication: an unauthenticated caller learns nothing about its body.
        .route_layer(axum::middleware::from_fn(daarion_http::refuse_nul))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::authenticate,
        ))
        .with_state(app)
        .split_for_parts();
    daarion_http::openapi::with_document(router, document)
}
