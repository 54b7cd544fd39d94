//! Swapper (:8890): every model the appliance runs, loaded on first use and evicted by a
//! memory budget, behind OpenAI-compatible HTTP APIs.
//!
//! This build serves chat and embedding models through llama.cpp workers
//! (`daarion-llama-worker`) and speech-to-text models through whisper.cpp workers
//! (`daarion-whisper-worker`), text to speech through `daarion-tts-worker` and images through
//! stable-diffusion.cpp (`daarion-sd-worker`), one process per loaded model. See [`scheduler`]
//! for the rules.

mod api;
mod audio_api;
pub mod budget;
mod chat_api;
mod chat_content;
pub mod download;
mod error;
mod image_api;
mod ledger;
pub mod manifest;
mod metrics;
mod pulls;
pub mod scheduler;
#[cfg(feature = "testing")]
pub mod testing;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use daarion_config::Config;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::SwapError;

#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    /// How much memory models may fill, and whether it is VRAM or RAM.
    pub budget: budget::Budget,
    pub scheduler: Arc<scheduler::Scheduler>,
    pub root_token: Option<Arc<str>>,
    pub introspector: Option<daarion_control_client::Introspector>,
    /// Model downloads started from the admin API, with their progress.
    pub pulls: pulls::Pulls,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    #[error(
        "the llama.cpp worker `{0}` was not found beside daarion nor on PATH (models.llama_worker)"
    )]
    NoWorker(PathBuf),
    #[error(transparent)]
    Serve(#[from] daarion_http::ServeError),
}

/// `models.llama_worker` as a path: absolute, or a name found beside the running binary, then
/// on PATH.
pub fn find_worker(configured: &Path) -> Option<PathBuf> {
    if configured.components().count() > 1 {
        return configured.is_file().then(|| configured.to_owned());
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(configured)))
        .filter(|p| p.is_file());
    beside.or_else(|| {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|dir| dir.join(configured))
            .find(|p| p.is_file())
    })
}

pub fn routes(app: App) -> Router {
    Router::new()
        .route("/v1/models", get(api::models))
        .route("/v1/chat/completions", post(chat_api::chat_completions))
        .route("/v1/embeddings", post(api::embeddings))
        .route("/v1/audio/transcriptions", post(audio_api::transcriptions))
        .route("/v1/audio/translations", post(audio_api::translations))
        .route("/v1/audio/speech", post(audio_api::speech))
        .route("/v1/images/generations", post(image_api::generations))
        .route("/v1/swapper/status", get(api::status))
        .route("/v1/swapper/models/{id}/{action}", post(api::admin))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            api::authenticate,
        ))
        .with_state(app)
}

pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let manifests = manifest::load_all(&config.models.manifests_dir)?;
    let worker = find_worker(&config.models.llama_worker)
        .ok_or_else(|| StartError::NoWorker(config.models.llama_worker.clone()))?;
    let whisper = find_worker(&config.models.whisper_worker);
    let tts = find_worker(&config.models.tts_worker);
    let sd = find_worker(&config.models.sd_worker);
    if whisper.is_none() && manifests.iter().any(|m| m.kind == manifest::Kind::Stt) {
        tracing::warn!(worker = %config.models.whisper_worker.display(), "the whisper.cpp worker is not installed: speech-to-text models will not load");
    }
    let ledger = ledger::Ledger::open(config.general.data_dir.join("swapper").join("ledger.json"));
    let (budget, vram) = budget::detect(&config);
    tracing::info!(models = manifests.len(), budget_mb = budget.bytes / (1024 * 1024), source = ?budget.source, worker = %worker.display(), "swapper starting");
    let scheduler = scheduler::Scheduler::new(
        manifests,
        ledger,
        budget.bytes,
        config.models.queue_limit,
        scheduler::Workers {
            llama: worker,
            whisper,
            tts,
            sd,
            models_dir: config.general.models_dir.clone(),
            threads: config.models.threads,
        },
        vram,
    );
    let app = App {
        budget,
        introspector: daarion_control_client::Introspector::from_config(&config),
        root_token: config.supervisor.root_token().map(Arc::from),
        scheduler: scheduler.clone(),
        config: Arc::new(config),
        pulls: pulls::Pulls::default(),
    };
    let reaper = tokio::spawn(scheduler.reaper(shutdown.clone()));
    // Generation and loading take longer than ordinary requests.
    let mut http = app.config.http.clone();
    http.request_timeout_secs = http.request_timeout_secs.max(600);
    let served = daarion_http::serve_app(
        "swapper",
        routes(app.clone()),
        daarion_telemetry::Readiness::new(),
        &http,
        listener,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    let _ = reaper.await;
    served?;
    Ok(())
}
