//! Memory API (:8000), the seed's single point of access to data.
//!
//! This build holds users and their channel identities, sessions and messages (with trace id,
//! model, token counts and the versions that served them), facts that are superseded rather
//! than overwritten, hybrid search (full-text and vectors, fused by rank; the indexer keeps the
//! vectors, `indexer.rs`), the knowledge graph, and the audit log: the `audit-logger` durable consumer
//! stores every `audit.>` event in the append-only `audit_log`, idempotently on the event id,
//! acking only after the row is committed, and the `ops-logger` does the same for `ops.>` (the
//! supervisor's unit changes, the alerts that fired).

pub mod api;
mod audit;
pub mod cache;
pub mod chunk;
pub mod embed;
mod error;
pub mod graph;
pub mod indexer;
pub mod outbox;
mod rows;
mod usage;

use std::sync::Arc;

use daarion_bus::topology;
use daarion_bus::{Bus, BusCheck};
use daarion_config::Config;
use daarion_db::{PgCheck, PgPool};
use daarion_telemetry::Readiness;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use audit::store_audit;
pub use error::ServiceError;
pub use usage::store_usage;

/// Everything a request handler or consumer of this service needs.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub pool: PgPool,
    pub bus: Bus,
    /// The appliance's root token: accepted as an admin credential, and used to introspect
    /// API tokens at the control plane.
    pub root_token: Option<Arc<str>>,
    /// Checks API tokens at the control plane (absent without a root token to ask with).
    pub introspector: Option<daarion_control_client::Introspector>,
    /// The knowledge graph (PostgreSQL, the embedded default).
    pub graph: Arc<dyn graph::GraphStore>,
    /// Hot reads, when Redis is there.
    pub cache: cache::Cache,
    /// Vectors of messages, facts and chunks (Qdrant's embedded engine by default).
    pub vectors: Arc<dyn daarion_vectors::VectorStore>,
    /// Embeddings through the swapper (absent without a root token to call it with).
    pub embedder: Option<embed::Embedder>,
}

/// The embedded engine under the data directory, or the Qdrant server `memory.qdrant.url` names.
async fn open_vectors(
    config: &Config,
) -> Result<Arc<dyn daarion_vectors::VectorStore>, ServiceError> {
    let qdrant = &config.memory.qdrant;
    if qdrant.url.is_empty() {
        let dir = config.general.data_dir.join("vectors");
        return Ok(Arc::new(daarion_vectors::EdgeStore::open(&dir)?));
    }
    let api_key = daarion_config::read_secret_file(&qdrant.api_key_file).map_err(|e| {
        daarion_vectors::VectorError::Open {
            path: qdrant.api_key_file.display().to_string(),
            message: e.to_string(),
        }
    })?;
    let server = daarion_vectors::ServerStore::connect(
        &qdrant.url,
        api_key,
        &qdrant.collection_prefix,
        std::time::Duration::from_secs(qdrant.timeout_secs),
    )
    .await?;
    Ok(Arc::new(server))
}

/// Runs the memory service until `shutdown`: connects, migrates, starts the consumers, serves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    let pool = daarion_db::open(&config.database).await?;
    let bus = Bus::connect(&config.bus, "memory").await?;
    bus.ensure_topology().await?;
    let cache = cache::Cache::connect(&config.redis.url, &config.redis.key_prefix).await;
    let vectors = open_vectors(&config).await?;
    let graph: Arc<dyn graph::GraphStore> = if config.memory.graph.url.is_empty() {
        Arc::new(graph::postgres::PgGraph::new(pool.clone()))
    } else {
        Arc::new(graph::bolt::BoltGraph::connect(&config.memory.graph).await?)
    };
    let app = App {
        cache,
        vectors,
        embedder: embed::Embedder::from_config(&config),
        introspector: daarion_control_client::Introspector::from_config(&config),
        root_token: config.supervisor.root_token().map(Arc::from),
        config: Arc::new(config),
        graph,
        pool,
        bus,
    };

    let readiness = Readiness::new()
        .with_check(PgCheck(app.pool.clone()))
        .with_check(BusCheck(app.bus.clone()))
        .with_check(daarion_bus::ConsumersCheck::new(&app.bus, &{
            let mut consumers = vec![
                topology::AUDIT_LOGGER,
                topology::OPS_LOGGER,
                topology::USAGE_RECORDER,
            ];
            // Without an embedder (no root token to call the swapper) nothing is indexed.
            if app.embedder.is_some() {
                consumers.push(topology::MEMORY_INDEXER);
            }
            consumers
        }));

    let consumers = {
        let (app, shutdown) = (app.clone(), shutdown.clone());
        tokio::spawn(async move {
            let (logged, recorded, indexed, relayed, ()) = tokio::join!(
                audit::run_logger(app.clone(), shutdown.clone()),
                usage::run_recorder(app.clone(), shutdown.clone()),
                indexer::run(app.clone(), shutdown.clone()),
                outbox::run(app.clone(), shutdown.clone()),
                api::state::sweep(app, shutdown)
            );
            logged.and(recorded).and(indexed).and(relayed)
        })
    };
    let served = daarion_http::serve_app(
        "memory",
        api::routes(app.clone()),
        readiness,
        &app.config.http,
        listener,
        shutdown.clone(),
    )
    .await;
    // Whatever ended the server, the consumers stop with it (after their message in hand).
    shutdown.cancel();
    let consumed = consumers
        .await
        .map_err(|e| ServiceError::Task(e.to_string()))?;
    served?;
    consumed?;
    app.pool.close().await;
    Ok(())
}
