//! Ingest (:8100): takes a user's file and makes it an attachment.
//!
//! `POST /v1/attachments` streams the body into the content-addressed blob store (never a
//! whole file in memory; refused past `ingest.max_bytes`), types it from its bytes (refusing
//! what no parser reads), and records it on the memory API with the caller's own credential;
//! memory publishes `attachment.created` from its outbox for the parser. The other routes read,
//! retry and delete those records, again as the caller, and serve the stored bytes.

mod api;
mod auth;
mod error;
mod metrics;
mod openapi;
mod upload;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use daarion_blobs::BlobStore;
use daarion_client::ServiceCheck;
use daarion_config::Config;
use daarion_control_client::Introspector;
use daarion_memory_client::MemoryClient;
use daarion_telemetry::Readiness;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::IngestError;

/// What a multipart upload may carry beyond the file itself (its fields and boundaries).
const MULTIPART_SLACK: u64 = 1024 * 1024;

/// Shared by every handler.
#[derive(Clone)]
pub struct App {
    pub blobs: BlobStore,
    /// The memory API with the root token; each request uses it with the caller's credential.
    pub memory: MemoryClient,
    pub root_token: Arc<str>,
    pub introspector: Introspector,
    /// The largest file accepted, in bytes.
    pub max_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no root token at {0}: ingest checks callers with the control plane using it")]
    NoRootToken(String),
    #[error("blob store: {0}")]
    Blobs(#[from] daarion_blobs::BlobError),
    #[error(transparent)]
    Serve(#[from] daarion_http::ServeError),
}

pub fn routes(app: App) -> Router {
    let limit =
        usize::try_from(app.max_bytes.saturating_add(MULTIPART_SLACK)).unwrap_or(usize::MAX);
    let router = Router::new()
        .route(
            "/v1/attachments",
            post(upload::upload)
                .layer(DefaultBodyLimit::max(limit))
                .get(api::list),
        )
        .route("/v1/attachments/{id}", get(api::get).delete(api::delete))
        .route("/v1/attachments/{id}/retry", post(api::retry))
        .route("/v1/attachments/{id}/content", get(api::content))
        .with_state(app);
    daarion_http::openapi::with_document(router, openapi::document())
}

/// Ingest's state from its configuration.
pub fn app(config: &Config) -> Result<App, StartError> {
    let root = config.supervisor.root_token().ok_or_else(|| {
        StartError::NoRootToken(config.supervisor.admin_token_file.display().to_string())
    })?;
    let control_url = format!("http://{}", config.control_plane.dial());
    Ok(App {
        blobs: BlobStore::from_config(&config.ingest.blobs, &config.general.data_dir)?,
        memory: MemoryClient::new(format!("http://{}", config.memory.dial()), root.clone()),
        introspector: Introspector::new(&control_url, root.clone()),
        root_token: Arc::from(root),
        max_bytes: config.ingest.max_bytes,
    })
}

/// Runs ingest until `shutdown`.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let app = app(&config)?;
    let readiness =
        Readiness::new().with_check(ServiceCheck("memory", app.memory.service().clone()));
    // The service-wide body limit and timeout are for small JSON calls; uploads need room for
    // the largest file and the time a slow link takes to send it.
    let mut http = config.http.clone();
    http.body_limit_bytes = http
        .body_limit_bytes
        .max(usize::try_from(app.max_bytes.saturating_add(MULTIPART_SLACK)).unwrap_or(usize::MAX));
    http.request_timeout_secs = http.request_timeout_secs.max(600);
    daarion_http::serve_app("ingest", routes(app), readiness, &http, listener, shutdown).await?;
    Ok(())
}
