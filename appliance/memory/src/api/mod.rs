//! The memory REST API: users and identities, sessions and messages, facts with history,
//! full-text search, usage over time and the audit log. Every route needs a credential; see [`auth`].

mod audit_log;
pub mod auth;
mod error;
mod facts;
mod graph;
mod search;
mod sessions;
mod usage;
mod users;

use axum::Router;
use axum::routing::{get, post};

pub use error::ApiError;
pub use sessions::MAX_MESSAGE_BYTES;

use crate::App;

pub fn routes(app: App) -> Router {
    Router::new()
        .route("/v1/identities/resolve", post(users::resolve))
        .route("/v1/users/{id}", get(users::get))
        .route("/v1/sessions", post(sessions::create))
        .route("/v1/sessions/open", post(sessions::open))
        .route("/v1/sessions/{id}", get(sessions::get))
        .route("/v1/sessions/{id}/end", post(sessions::end))
        .route(
            "/v1/sessions/{id}/messages",
            get(sessions::messages).post(sessions::add_message),
        )
        .route("/v1/users/{id}/facts", get(facts::list).post(facts::add))
        .route("/v1/facts/{id}/supersede", post(facts::supersede))
        .route("/v1/facts/{id}/forget", post(facts::forget))
        .route("/v1/facts/{id}/history", get(facts::history))
        .route("/v1/search", get(search::search))
        .route("/v1/usage", get(usage::usage))
        .route("/v1/graph/relations", post(graph::relate))
        .route("/v1/graph/relations/{id}/end", post(graph::end))
        .route("/v1/graph/nodes", get(graph::find))
        .route(
            "/v1/graph/nodes/{id}/neighbourhood",
            get(graph::neighbourhood),
        )
        .route("/v1/graph/path", get(graph::path))
        .route("/v1/audit", get(audit_log::audit))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::authenticate,
        ))
        .with_state(app)
}
