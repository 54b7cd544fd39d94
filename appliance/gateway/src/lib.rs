//! Gateway (:9300): where users reach the agents.
//!
//! Telegram: each bot in the control plane's `telegram.<name>` has a webhook,
//! `POST /telegram/{bot}/webhook`, which checks Telegram's secret token, stores the update on the
//! bus (durable, deduplicated by update id) and answers at once. The `telegram-updates` consumer
//! takes updates off the queue in order per chat and in parallel across chats ([`dispatch`]):
//! commands are answered here ([`commands`]), voice messages and photos are read by the
//! swapper ([`media`]), documents, recordings, videos and photos "to remember" go to the ingest
//! service and their outcome is told when the parser is done ([`attachments`]), everything else
//! goes to the router, and the answer is streamed
//! into the chat by editing one message, within Telegram's rate limits ([`conversation`],
//! [`limiter`]).
//! Bots without a public address use long polling instead ([`polling`]), into the same queue.
//! Crew runs a chat started report there: one edited progress message, their questions, the
//! result or why they stopped, and `/runs` and `/cancel` ([`runs`]).
//! The web chat, `POST /v1/chat`, streams the router's events straight back.

mod alerts;
mod attachments;
mod auth;
pub mod bots;
mod chat_settings;
mod commands;
mod conversation;
mod dispatch;
mod error;
mod files;
pub mod limiter;
pub mod markdown;
mod media;
mod metrics;
pub mod pairing;
mod polling;
mod runs;
pub mod split;
mod telegram;
pub mod update;
mod vision;
mod voice;
mod webchat;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use daarion_bus::events::MessageReceivedTelegram;
use daarion_bus::topology::{
    GATEWAY_AGENT_RUNS, GATEWAY_ATTACHMENT_FAILED, GATEWAY_ATTACHMENT_INDEXED, TELEGRAM_UPDATES,
};
use daarion_bus::{Bus, BusCheck};
use daarion_config::Config;
use daarion_control_client::{ControlClient, Introspector};
use daarion_crews_client::CrewsClient;
use daarion_db::redis::RedisCheck;
use daarion_ingest_client::IngestClient;
use daarion_memory_client::MemoryClient;
use daarion_router_client::RouterClient;
use daarion_swapper_client::SwapperClient;
use daarion_telemetry::Readiness;
use teloxide_core::payloads::SetWebhookSetters;
use teloxide_core::requests::{Request, Requester};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::GatewayError;
pub use limiter::Limits;

/// The largest update accepted; Telegram's are a few kilobytes.
pub const MAX_UPDATE_BYTES: usize = 1024 * 1024;
/// Updates handled at once (each chat one at a time); most of a turn is waiting on the model.
const IN_FLIGHT: usize = 128;

/// Shared by the handlers and the consumer.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub control: ControlClient,
    pub bus: Bus,
    pub redis: redis::aio::ConnectionManager,
    pub bots: Arc<bots::Bots>,
    pub limiter: Arc<limiter::Limiter>,
    limits: Limits,
    pub router: RouterClient,
    /// Who a Telegram user is (pairing, `/status`).
    pub memory: MemoryClient,
    /// Voice messages both ways, and photos described.
    pub swapper: SwapperClient,
    /// Where files users send to keep go; `None` when `[ingest]` is off (they are declined).
    pub ingest: Option<IngestClient>,
    /// Crew runs (`/runs`, `/cancel`, answers to their questions); `None` when `[crews]` is off.
    pub crews: Option<CrewsClient>,
    /// Callers of the gateway's own API showing it are the operator.
    pub root_token: Arc<str>,
    pub introspector: Introspector,
    /// How often the bots in polling mode are looked up.
    pub poll_discovery: Duration,
    /// How long one getUpdates call waits for updates.
    pub poll_timeout: Duration,
}

impl App {
    /// How often a growing answer is edited: no faster than the chat's own limit.
    pub fn edit_interval(&self, chat: update::Chat) -> Duration {
        if chat.group {
            self.limits.group_interval
        } else {
            self.limits.private_interval
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no root token at {0}: the gateway calls the router and the control plane with it")]
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
    Router::new()
        .route(
            "/telegram/{bot}/webhook",
            post(webhook::receive).layer(DefaultBodyLimit::max(MAX_UPDATE_BYTES)),
        )
        .route("/v1/chat", post(webchat::chat))
        .route("/v1/pairings", axum::routing::get(pairing::list))
        .route("/v1/pairings/{code}/approve", post(pairing::approve))
        .route("/v1/alerts", alerts::route())
        .with_state(app)
}

/// The gateway's state from its configuration; `limits` are Telegram's (tests pass faster ones).
pub async fn app(config: Config, limits: Limits) -> Result<App, StartError> {
    let root = config.supervisor.root_token().ok_or_else(|| {
        StartError::NoRootToken(config.supervisor.admin_token_file.display().to_string())
    })?;
    let bus = Bus::connect(&config.bus, "gateway").await?;
    bus.ensure_topology().await?;
    let redis = daarion_db::redis::connect(&config.redis.url).await?;
    let control_url = format!("http://{}", config.control_plane.dial());
    Ok(App {
        control: ControlClient::new(&control_url, root.clone(), Duration::from_secs(60)),
        introspector: Introspector::new(&control_url, root.clone()),
        router: RouterClient::new(
            format!("http://{}", config.router.dial()),
            Some(root.clone()),
        ),
        memory: MemoryClient::new(format!("http://{}", config.memory.dial()), root.clone()),
        swapper: SwapperClient::new(
            format!("http://{}", config.swapper.dial()),
            Some(root.clone()),
        ),
        ingest: config.ingest.enabled.then(|| {
            IngestClient::new(
                format!("http://{}", config.ingest.dial()),
                Some(root.clone()),
            )
        }),
        crews: config.crews.enabled.then(|| {
            CrewsClient::new(
                format!("http://{}", config.crews.dial()),
                Some(root.clone()),
            )
        }),
        root_token: Arc::from(root),
        bots: Arc::new(bots::Bots::new(config.general.secrets_dir.clone())),
        limiter: Arc::new(limiter::Limiter::new(limits)),
        limits,
        poll_discovery: Duration::from_secs(10),
        poll_timeout: Duration::from_secs(25),
        bus,
        redis,
        config: Arc::new(config),
    })
}

pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let app = app(config, Limits::default()).await?;
    serve(app, listener, shutdown).await
}

/// Serves the webhooks and the web chat, and consumes the update queue, until `shutdown`.
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
    let consumer = {
        let app = app.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let handler_app = app.clone();
            daarion_bus::consume_keyed(
                &app.bus,
                TELEGRAM_UPDATES,
                shutdown,
                IN_FLIGHT,
                |u: &MessageReceivedTelegram| format!("{}:{}", u.bot, update::chat_key(&u.update)),
                move |event| dispatch::on_update(handler_app.clone(), event),
            )
            .await
        })
    };
    let outcomes = attachment_outcomes(&app, &shutdown);
    let runs = {
        let (app, shutdown) = (app.clone(), shutdown.clone());
        tokio::spawn(async move {
            let handler_app = app.clone();
            daarion_bus::consume_keyed(
                &app.bus,
                GATEWAY_AGENT_RUNS,
                shutdown,
                runs::IN_FLIGHT,
                runs::run_key,
                move |event| runs::on_event(handler_app.clone(), event),
            )
            .await
        })
    };
    let poller = tokio::spawn(polling::run(app.clone(), shutdown.clone()));
    let mut consumers = vec![TELEGRAM_UPDATES, GATEWAY_AGENT_RUNS];
    if app.ingest.is_some() {
        consumers.extend([GATEWAY_ATTACHMENT_INDEXED, GATEWAY_ATTACHMENT_FAILED]);
    }
    let readiness = Readiness::new()
        .with_check(BusCheck(app.bus.clone()))
        .with_check(RedisCheck(app.redis.clone()))
        .with_check(daarion_bus::ConsumersCheck::new(&app.bus, &consumers));
    let served = daarion_http::serve_app(
        "gateway",
        routes(app.clone()),
        readiness,
        &app.config.http,
        listener,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    daarion_bus::join_consumer("telegram-updates", consumer).await;
    daarion_bus::join_consumer("agent runs", runs).await;
    for task in outcomes {
        daarion_bus::join_consumer("attachment outcomes", task).await;
    }
    let _ = poller.await;
    watcher.abort();
    served?;
    Ok(())
}

/// With ingest on: the consumers telling Telegram users how their files went.
fn attachment_outcomes(
    app: &App,
    shutdown: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<Result<(), daarion_bus::BusError>>> {
    if app.ingest.is_none() {
        return Vec::new();
    }
    let indexed = {
        let (app, shutdown) = (app.clone(), shutdown.clone());
        tokio::spawn(async move {
            let bus = app.bus.clone();
            daarion_bus::consume(&bus, GATEWAY_ATTACHMENT_INDEXED, shutdown, move |event| {
                attachments::on_indexed(app.clone(), event)
            })
            .await
        })
    };
    let failed = {
        let (app, shutdown) = (app.clone(), shutdown.clone());
        tokio::spawn(async move {
            let bus = app.bus.clone();
            daarion_bus::consume(&bus, GATEWAY_ATTACHMENT_FAILED, shutdown, move |event| {
                attachments::on_failed(app.clone(), event)
            })
            .await
        })
    };
    vec![indexed, failed]
}

/// `daarion telegram set-webhook BOT`: tells Telegram where to deliver the bot's updates
/// (`public_url` + `/telegram/BOT/webhook`) and the secret to send with them.
///
/// It usually runs as root and sends the bot's token to the configured `api_url`: the
/// references are resolved like everywhere else (`daarion_control_client::resolve_secret`),
/// inside the secrets directory only, so no config value can make root read the admin token
/// or any other root-only file and send it away; and only `admin` may change `api_url`,
/// `public_url` or the references themselves.
pub async fn set_webhook(config: &Config, bot: &str) -> Result<String, GatewayError> {
    let root = config
        .supervisor
        .root_token()
        .ok_or_else(|| GatewayError::Misconfigured {
            bot: bot.to_owned(),
            message: "the admin token is not readable (run as root or the daarion user)".into(),
        })?;
    let control = ControlClient::new(
        format!("http://{}", config.control_plane.dial()),
        root,
        Duration::from_secs(1),
    );
    let configured = bots::Bots::new(config.general.secrets_dir.clone())
        .get(&control, bot)
        .await?;
    let public =
        configured
            .settings
            .public_url
            .clone()
            .ok_or_else(|| GatewayError::Misconfigured {
                bot: bot.to_owned(),
                message: format!("telegram.{bot}.public_url is not set"),
            })?;
    let url = format!("{}/telegram/{bot}/webhook", public.trim_end_matches('/'));
    let parsed = reqwest::Url::parse(&url).map_err(|e| GatewayError::Misconfigured {
        bot: bot.to_owned(),
        message: e.to_string(),
    })?;
    configured
        .api
        .set_webhook(parsed)
        .secret_token(configured.secret.clone())
        .send()
        .await
        .map_err(|e| GatewayError::unavailable("the Telegram Bot API", e))?;
    Ok(url)
}
