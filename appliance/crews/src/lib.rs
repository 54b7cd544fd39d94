//! Crews (:9010): crew definitions and their runs.
//!
//! Definitions are versioned like prompts (diff, rollback) and import from a CrewAI project's
//! YAML with every key this appliance does not use reported. A run records the crew version it
//! started with and its budget; the crews worker holds it by a lease and journals every step
//! here (`/v1/worker/…`) before anything follows from it, so a run resumes after a crash from
//! its last finished step. Every state change and the `agent.run.*` event announcing it are
//! written in one transaction (the outbox), and live run events stream over SSE.

mod api;
mod auth;
mod budget;
mod error;
mod hub;
mod import;
mod metrics;
mod openapi;
mod outbox;
mod store;
mod validate;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use daarion_bus::{Bus, BusCheck};
use daarion_client::ServiceCheck;
use daarion_config::Config;
use daarion_control_client::{ControlClient, Introspector};
use daarion_db::{PgCheck, PgPool};
use daarion_telemetry::Readiness;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::CrewsError;
pub use import::MAX_YAML_BYTES;
pub use outbox::relay;

/// Shared by every handler.
#[derive(Clone)]
pub struct App {
    pub pool: PgPool,
    pub root_token: Arc<str>,
    pub introspector: Introspector,
    /// `[crews.budget]`: limits a run has when neither its crew nor its request sets them.
    pub defaults: Arc<budget::Defaults>,
    pub hub: hub::Hub,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "no root token at {0}: the crews service checks callers with the control plane using it"
    )]
    NoRootToken(String),
    #[error(transparent)]
    Db(#[from] daarion_db::DbError),
    #[error(transparent)]
    Bus(#[from] daarion_bus::BusError),
    #[error(transparent)]
    Serve(#[from] daarion_http::ServeError),
}

pub fn routes(app: App) -> Router {
    use api::{defs, runs, worker};
    let router = Router::new()
        .route("/v1/crews", get(defs::list))
        .route("/v1/crews/import", post(defs::import))
        .route(
            "/v1/crews/{id}",
            get(defs::get).put(defs::put).delete(defs::delete),
        )
        .route("/v1/crews/{id}/versions", get(defs::versions))
        .route("/v1/crews/{id}/diff", get(defs::diff))
        .route("/v1/crews/{id}/rollback", post(defs::rollback))
        .route("/v1/crews/{id}/runs", post(runs::start))
        .route("/v1/runs", get(runs::list))
        .route("/v1/runs/{id}", get(runs::get))
        .route("/v1/runs/{id}/events", get(runs::events))
        .route("/v1/runs/{id}/cancel", post(runs::cancel))
        .route("/v1/runs/{id}/resume", post(runs::resume))
        .route("/v1/runs/{id}/rerun", post(runs::rerun))
        .route("/v1/worker/runs/{id}/claim", post(worker::claim))
        .route("/v1/worker/runs/{id}/steps", post(worker::record))
        .route("/v1/worker/runs/{id}/heartbeat", post(worker::heartbeat))
        .route("/v1/worker/runs/{id}/finish", post(worker::finish))
        // PostgreSQL stores no NUL: refused as a 422 naming the field, not a 500 from the INSERT.
        .route_layer(axum::middleware::from_fn(daarion_http::refuse_nul))
        .with_state(app);
    daarion_http::openapi::with_document(router, openapi::document())
}

/// Runs the crews service until `shutdown`: connects, migrates, relays its outbox, serves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let root = config.supervisor.root_token().ok_or_else(|| {
        StartError::NoRootToken(config.supervisor.admin_token_file.display().to_string())
    })?;
    let control_url = format!("http://{}", config.control_plane.dial());
    let pool = daarion_db::open(&config.database).await?;
    let bus = Bus::connect(&config.bus, "crews").await?;
    bus.ensure_topology().await?;
    let control = ControlClient::new(
        control_url.clone(),
        root.clone(),
        std::time::Duration::from_secs(30),
    );
    let app = App {
        pool: pool.clone(),
        introspector: Introspector::new(&control_url, root.clone()),
        root_token: Arc::from(root),
        defaults: Arc::new(budget::Defaults::from_config(&config)),
        hub: hub::Hub::default(),
    };
    let readiness = Readiness::new()
        .with_check(PgCheck(pool.clone()))
        .with_check(BusCheck(bus.clone()))
        .with_check(ServiceCheck("control-plane", control.service().clone()));
    let background = {
        let (pool, changed, shutdown) = (pool.clone(), app.hub.changed.clone(), shutdown.clone());
        tokio::spawn(async move {
            tokio::join!(
                outbox::run(pool.clone(), bus, shutdown.clone()),
                metrics::refresh_runs(pool, changed, shutdown)
            );
        })
    };
    let served = daarion_http::serve_app(
        "crews",
        routes(app),
        readiness,
        &config.http,
        listener,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    let _ = background.await;
    pool.close().await;
    served?;
    Ok(())
}
