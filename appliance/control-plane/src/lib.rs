//! Control plane (:9200): policy and configuration, kept apart from the data plane.
//!
//! This build manages agents (`/agents`) and their versioned system prompts (`/prompts`), and the
//! API tokens that guard every endpoint (`/auth/tokens`). Each change is validated, versioned,
//! audited (`audit.action` with before/after) and announced on `control.changed.<kind>` through a
//! transactional outbox, so it is never applied without its audit event.

pub mod accounts;
pub mod admins;
pub mod agents;
mod app;
pub mod auth;
pub mod changes;
pub mod config;
pub mod defaults;
mod error;
mod login_guard;
mod metrics;
mod openapi;
pub mod policy;
pub mod principal;
pub mod prompts;
pub mod quotas;
pub mod session;
pub mod testing;

use std::sync::Arc;

use axum::Router;
use daarion_bus::{Bus, BusCheck};
use daarion_config::Config;
use daarion_db::PgCheck;
use daarion_db::redis::RedisCheck;
use daarion_telemetry::Readiness;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use app::App;
pub use daarion_control_client::Announcement;
pub use error::ControlError;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] daarion_db::DbError),
    #[error(transparent)]
    Bus(#[from] daarion_bus::BusError),
    #[error(transparent)]
    Serve(#[from] daarion_http::ServeError),
    #[error(transparent)]
    Redis(#[from] daarion_db::redis::RedisError),
    #[error("first-run defaults: {0}")]
    Defaults(#[from] sqlx::Error),
}

/// The API routes, every one behind authentication except login and logout, and the OpenAPI
/// document generated from the same handlers.
pub fn routes(app: App) -> Router {
    let (router, openapi) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(agents::list, agents::create))
        .routes(routes!(agents::get, agents::update))
        .routes(routes!(prompts::list, prompts::create))
        .routes(routes!(prompts::active))
        .routes(routes!(prompts::diff))
        .routes(routes!(prompts::get))
        .routes(routes!(prompts::activate))
        .routes(routes!(policy::list_roles, policy::create_role))
        .routes(routes!(policy::get_user_roles, policy::set_user_roles))
        .routes(routes!(policy::get_policy, policy::put_policy))
        .routes(routes!(policy::policy_versions))
        .routes(routes!(policy::decide_endpoint))
        .routes(routes!(config::list))
        .routes(routes!(config::get, config::put))
        .routes(routes!(config::versions))
        .routes(routes!(config::evaluate_flag))
        .routes(routes!(quotas::status))
        .routes(routes!(quotas::consume))
        .routes(routes!(quotas::settle))
        .routes(routes!(quotas::set_limits))
        .routes(routes!(auth::list_tokens, auth::create_token))
        .routes(routes!(auth::revoke_token))
        .routes(routes!(auth::introspect))
        .routes(routes!(auth::whoami))
        .routes(routes!(admins::list, admins::add))
        .routes(routes!(accounts::change_password))
        .routes(routes!(accounts::sign_out_everywhere))
        .routes(routes!(accounts::disable))
        .routes(routes!(accounts::enable))
        .routes(routes!(accounts::end_sessions))
        // Innermost: only a session that authentication accepted has its idle deadline moved.
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            session::touch,
        ))
        // Inside authentication: an unauthenticated caller learns nothing about its body.
        .route_layer(axum::middleware::from_fn(daarion_http::refuse_nul))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::authenticate,
        ))
        // Outside authentication: an expired API token is revoked before it is looked up.
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            session::expire_token,
        ))
        // The only routes without a credential: getting one, and giving it up (logout still
        // needs the session's CSRF token, checked in the handler).
        .merge(
            OpenApiRouter::new()
                .routes(routes!(admins::login))
                .routes(routes!(admins::logout))
                .route_layer(axum::middleware::from_fn(daarion_http::refuse_nul))
                // A login is a username and a password: nothing near the 25 MiB default.
                .route_layer(axum::middleware::from_fn(admins::limit_login_body)),
        )
        .with_state(app)
        .split_for_parts();
    daarion_http::openapi::with_document(router, openapi)
}

/// Runs the control plane until `shutdown`, with the first-run defaults.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    run_with(config, listener, shutdown, defaults::Defaults::Apply).await
}

/// Runs the control plane until `shutdown`; `defaults` says whether a first start adds the
/// default agent.
pub async fn run_with(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
    defaults: defaults::Defaults,
) -> Result<(), StartError> {
    let pool = daarion_db::open(&config.database).await?;
    if defaults == defaults::Defaults::Apply {
        defaults::apply(&pool, &config.models.manifests_dir).await?;
    }
    let redis = daarion_db::redis::connect(&config.redis.url).await?;
    let bus = Bus::connect(&config.bus, "control-plane").await?;
    bus.ensure_topology().await?;
    let app = App {
        root_token: match config.supervisor.root_token() {
            Some(token) => Some(Arc::from(token)),
            None => {
                tracing::warn!(path = %config.supervisor.admin_token_file.display(), "no root token: only API tokens are accepted");
                None
            }
        },
        config: Arc::new(config),
        pool,
        bus,
        changes: changes::Changes::default(),
        redis,
        login: login_guard::LoginGuard::default(),
    };
    let relay = tokio::spawn(app.changes.clone().relay(
        app.pool.clone(),
        app.bus.clone(),
        shutdown.clone(),
    ));
    let sweeper = tokio::spawn(session::sweeper(app.pool.clone(), shutdown.clone()));
    let readiness = Readiness::new()
        .with_check(PgCheck(app.pool.clone()))
        .with_check(BusCheck(app.bus.clone()))
        .with_check(RedisCheck(app.redis.clone()));
    let served = daarion_http::serve_app(
        "control-plane",
        routes(app.clone()),
        readiness,
        &app.config.http,
        listener,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    let _ = relay.await;
    let _ = sweeper.await;
    app.pool.close().await;
    served?;
    Ok(())
}
