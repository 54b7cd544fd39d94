//! Router (:9102): turns a normalised message into an answer.
//!
//! For each message it picks the agent (the user's choice, an `@agent` mention, then the
//! control plane's `routing.main`), checks policy and reserves quota through the control-plane
//! client, builds the context (the active prompt version, what memory knows about the user, the
//! session history summarised past the model's context), runs the model down the agent's
//! fallback chain with the built-in tools, streams the answer, stores every step in memory with
//! its trace id and versions, settles the quota, and announces `message.processed`.
//! See [`turn`] for the order of those steps.

mod api;
mod auth;
pub mod context;
mod error;
pub mod gpu;
mod metrics;
pub mod providers;
mod steps;
pub mod tools;
pub mod turn;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use daarion_bus::{Bus, BusCheck};
use daarion_client::ServiceCheck;
use daarion_config::Config;
use daarion_control_client::{ControlClient, Introspector};
use daarion_db::redis::RedisCheck;
use daarion_llm::RetryPolicy;
use daarion_memory_client::MemoryClient;
use daarion_swapper_client::SwapperClient;
use daarion_telemetry::Readiness;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::{Refusal, RouterError};

/// Shared by every handler and turn.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    /// Prompts, policy, settings and quotas, cached and invalidated over the bus.
    pub control: ControlClient,
    pub memory: MemoryClient,
    pub bus: Bus,
    pub providers: Arc<providers::Providers>,
    pub toolbox: Arc<tools::Toolbox>,
    /// Local models' measured speed, for GPU-seconds reservations.
    pub gpu: Arc<gpu::GpuMeter>,
    /// Step answers kept for idempotency, and the locks of steps running.
    pub steps: steps::Journal,
    /// The swapper, for tools that use its models.
    pub swapper: SwapperClient,
    /// The appliance's root token: what the gateway calls with, and what the router uses to
    /// call the other services.
    pub root_token: Arc<str>,
    pub introspector: Introspector,
    /// Running turns, drained on shutdown.
    pub turns: TaskTracker,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no root token at {0}: the router calls the control plane, memory and swapper with it")]
    NoRootToken(String),
    #[error(transparent)]
    Bus(#[from] daarion_bus::BusError),
    #[error(transparent)]
    Redis(#[from] daarion_db::redis::RedisError),
    #[error("cannot watch the control plane for changes: {0}")]
    Watch(String),
    #[error(transparent)]
    Serve(#[from] daarion_http::ServeError),
}

pub fn routes(app: App) -> Router {
    use axum::middleware::from_fn_with_state;
    Router::new()
        .route(
            "/v1/route",
            post(api::route).route_layer(from_fn_with_state(app.clone(), auth::authenticate)),
        )
        .route(
            "/v1/sessions/reset",
            post(api::reset_session)
                .route_layer(from_fn_with_state(app.clone(), auth::authenticate)),
        )
        .route(
            "/v1/chat/completions",
            post(api::chat_completions)
                .route_layer(from_fn_with_state(app.clone(), auth::authenticate_openai)),
        )
        .route(
            "/v1/steps/llm",
            post(steps::llm_step)
                .route_layer(from_fn_with_state(app.clone(), auth::authenticate_steps)),
        )
        .route(
            "/v1/steps/tool",
            post(steps::tool_step)
                .route_layer(from_fn_with_state(app.clone(), auth::authenticate_steps)),
        )
        .with_state(app)
}

/// The router's state from its configuration, connected to the bus.
pub async fn app(config: Config, retry: RetryPolicy) -> Result<App, StartError> {
    let root = config.supervisor.root_token().ok_or_else(|| {
        StartError::NoRootToken(config.supervisor.admin_token_file.display().to_string())
    })?;
    let bus = Bus::connect(&config.bus, "router").await?;
    let redis = daarion_db::redis::connect(&config.redis.url).await?;
    bus.ensure_topology().await?;
    let control = ControlClient::new(
        format!("http://{}", config.control_plane.dial()),
        root.clone(),
        Duration::from_secs(60),
    );
    Ok(App {
        memory: MemoryClient::new(format!("http://{}", config.memory.dial()), root.clone()),
        providers: Arc::new(providers::Providers::new(
            &format!("http://{}/v1", config.swapper.dial()),
            Some(root.clone()),
            retry,
            config.general.secrets_dir.clone(),
        )),
        introspector: Introspector::new(
            &format!("http://{}", config.control_plane.dial()),
            root.clone(),
        ),
        toolbox: Arc::new(tools::Toolbox::builtin()),
        gpu: Arc::new(gpu::GpuMeter::default()),
        steps: steps::Journal::new(redis, &config.redis.key_prefix),
        swapper: SwapperClient::new(
            format!("http://{}", config.swapper.dial()),
            Some(root.clone()),
        ),
        root_token: Arc::from(root),
        control,
        bus,
        config: Arc::new(config),
        turns: TaskTracker::new(),
    })
}

/// Runs the router until `shutdown`, then lets running turns finish within the grace period.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let app = app(config, RetryPolicy::default()).await?;
    serve(app, listener, shutdown).await
}

/// Serves an already built [`App`] (tests and benchmarks build theirs with other retry timings).
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let watcher = app
        .control
        .watch(&app.bus)
        .await
        .map_err(|e| StartError::Watch(e.to_string()))?;
    let readiness = Readiness::new()
        .with_check(BusCheck(app.bus.clone()))
        .with_check(RedisCheck(app.steps.redis()))
        .with_check(ServiceCheck("control-plane", app.control.service().clone()))
        .with_check(ServiceCheck("memory", app.memory.service().clone()));
    // Non-streamed completions wait for the whole answer, model loading included.
    let mut http = app.config.http.clone();
    http.request_timeout_secs = http.request_timeout_secs.max(600);
    let grace = http.shutdown_grace();
    let served = daarion_http::serve_app(
        "router",
        routes(app.clone()),
        readiness,
        &http,
        listener,
        shutdown.clone(),
    )
    .await;
    app.turns.close();
    if tokio::time::timeout(grace, app.turns.wait()).await.is_err() {
        tracing::warn!(
            running = app.turns.len(),
            "turns still running after the grace period; their answers are lost"
        );
    }
    watcher.abort();
    served?;
    Ok(())
}
