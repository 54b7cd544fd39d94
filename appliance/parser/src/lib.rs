//! Parser (:8101): the `parser-pipeline` consumer. Every `attachment.created` is read into text:
//! the record from the memory API, the file from the blob store ingest wrote it to, its type
//! checked again from its bytes, its text extracted by `daarion_formats` (text layers first,
//! OCR where a page has none), images also described by the swapper's vision model, recordings
//! transcribed by its speech-to-text model. Sections go to memory in batches as they are read,
//! with "page k of n"; then `parsed`, or `failed` with a reason a person can act on.
//!
//! - Up to `parser.workers` attachments at once; each attachment one at a time.
//! - Handling an event twice is handling it once (see [`handle`]); a parser stopped mid-document
//!   leaves the message to be redelivered, and the next one adds only what is missing.
//! - A file that cannot be read is recorded as failed and its message acked (the record says
//!   why); memory, the swapper or the blob store being down is retried with backoff.
//!
//! HTTP: `/health`, `/ready` (bus, memory, blob store, tools), `/metrics` (`daarion_parser_*`)
//! and `GET /v1/jobs`, what is being read now.

mod handle;
mod jobs;
mod media;
mod metrics;
mod ready;
mod write;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use daarion_blobs::{BlobError, BlobStore};
use daarion_bus::events::AttachmentCreated;
use daarion_bus::topology::PARSER_PIPELINE;
use daarion_bus::{Bus, BusCheck};
use daarion_config::Config;
use daarion_control_client::Introspector;
use daarion_formats::Limits;
use daarion_memory_client::{MemoryClient, ParseOptions};
use daarion_swapper_client::SwapperClient;
use daarion_telemetry::Readiness;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use jobs::Job;
pub use ready::{TOOLS, missing_tools};

/// Shared by the consumer's handlers and the HTTP routes.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub bus: Bus,
    pub memory: MemoryClient,
    pub swapper: SwapperClient,
    pub blobs: BlobStore,
    pub jobs: jobs::Jobs,
    root_token: Arc<str>,
    introspector: Introspector,
    /// Scratch space for blobs copied from a bucket and audio made for speech-to-text.
    work_dir: PathBuf,
}

impl App {
    fn limits(&self, options: &ParseOptions) -> Limits {
        handle::limits(&self.config.parser, options)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no root token at {0}: the parser calls memory and the swapper with it")]
    NoRootToken(String),
    #[error(transparent)]
    Bus(#[from] daarion_bus::BusError),
    #[error("cannot open the blob store: {0}")]
    Blobs(#[from] BlobError),
    #[error("cannot prepare the scratch directory {0}: {1}")]
    WorkDir(String, std::io::Error),
    #[error(transparent)]
    Serve(#[from] daarion_http::ServeError),
}

pub fn routes(app: App) -> Router {
    Router::new()
        .route("/v1/jobs", get(jobs::list))
        .with_state(app)
}

/// The parser's state from its configuration.
pub async fn app(config: Config) -> Result<App, StartError> {
    let root = config.supervisor.root_token().ok_or_else(|| {
        StartError::NoRootToken(config.supervisor.admin_token_file.display().to_string())
    })?;
    let bus = Bus::connect(&config.bus, "parser").await?;
    bus.ensure_topology().await?;
    let blobs = BlobStore::from_config(&config.ingest.blobs, &config.general.data_dir)?;
    let work_dir = config.general.data_dir.join("parser");
    // Whatever a parser that was killed left behind.
    let _ = std::fs::remove_dir_all(&work_dir);
    std::fs::create_dir_all(&work_dir)
        .map_err(|e| StartError::WorkDir(work_dir.display().to_string(), e))?;
    let control_url = format!("http://{}", config.control_plane.dial());
    Ok(App {
        memory: MemoryClient::new(format!("http://{}", config.memory.dial()), root.clone()),
        swapper: SwapperClient::new(
            format!("http://{}", config.swapper.dial()),
            Some(root.clone()),
        ),
        introspector: Introspector::new(&control_url, root.clone()),
        root_token: Arc::from(root),
        jobs: jobs::Jobs::default(),
        blobs,
        bus,
        work_dir,
        config: Arc::new(config),
    })
}

pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let app = app(config).await?;
    serve(app, listener, shutdown).await
}

/// Consumes `parser-pipeline` and serves HTTP until `shutdown`. Attachments in hand when it
/// comes stop where they are (what is stored stays) and their messages go back to the queue.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    metrics::register();
    let parser = &app.config.parser;
    if parser.vision_model.is_empty() {
        tracing::warn!(
            "no vision model configured (parser.vision_model): images get their OCR text only"
        );
    }
    let missing = missing_tools(std::env::var_os("PATH").unwrap_or_default());
    if !missing.is_empty() {
        tracing::warn!(missing = %missing.join(", "), "tools missing; files needing them fail");
    }
    let consumer = {
        let app = app.clone();
        let shutdown = shutdown.clone();
        let workers = parser.workers.max(1);
        tokio::spawn(async move {
            let handler_app = app.clone();
            let stop = shutdown.clone();
            daarion_bus::consume_keyed(
                &app.bus,
                PARSER_PIPELINE,
                shutdown,
                workers,
                |e: &AttachmentCreated| e.attachment_id.to_string(),
                move |event| handle::on_created(handler_app.clone(), stop.clone(), event),
            )
            .await
        })
    };
    let readiness = Readiness::new()
        .with_check(BusCheck(app.bus.clone()))
        .with_check(daarion_bus::ConsumersCheck::new(
            &app.bus,
            &[PARSER_PIPELINE],
        ))
        .with_check(ready::MemoryCheck(app.memory.clone()))
        .with_check(ready::BlobCheck(app.blobs.clone()))
        .with_check(ready::ToolsCheck {
            vision: !parser.vision_model.is_empty(),
        })
        .with_timeout(Duration::from_secs(3));
    let served = daarion_http::serve_app(
        "parser",
        routes(app.clone()),
        readiness,
        &app.config.http,
        listener,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    daarion_bus::join_consumer("parser-pipeline", consumer).await;
    served?;
    Ok(())
}
