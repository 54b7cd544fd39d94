//! The crews worker (:9011): consumes `agent.run.requested` (`crewai-worker`), claims each run
//! from the crews service, and executes it ([`executor`]) with every model and tool call made
//! through the router and journalled before anything follows from it, so a run survives a
//! crash of this process without repeating a finished step. Runs execute in parallel up to
//! `crews_worker.concurrency`, at most `per_user` of one user's at once ([`scheduler`]).

mod budget;
mod consumer;
pub mod executor;
mod metrics;
pub mod ports;
mod react;
pub mod scheduler;
mod schema;

use std::sync::Arc;

use axum::Router;
use daarion_bus::topology::CREWAI_WORKER;
use daarion_bus::{Bus, BusCheck, ConsumersCheck};
use daarion_client::ServiceCheck;
use daarion_config::Config;
use daarion_crews_client::CrewsClient;
use daarion_router_client::RouterClient;
use daarion_telemetry::Readiness;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use consumer::{LEASE_SECS, Worker};
pub use executor::{Control, Executor, Interrupted, Settings};
pub use scheduler::Scheduler;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no root token at {0}: the worker calls the crews service and the router with it")]
    NoRootToken(String),
    #[error(transparent)]
    Bus(#[from] daarion_bus::BusError),
    #[error(transparent)]
    Serve(#[from] daarion_http::ServeError),
}

/// Messages pulled and held at once: more than run, so a user's queued runs cannot keep
/// another user's request from being read.
fn in_flight(config: &Config) -> usize {
    (config.crews_worker.concurrency * 8).max(16)
}

/// Runs the worker until `shutdown`: pulling stops, steps in flight finish their call, and
/// the runs stay leased to resume elsewhere once the lease ends.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let root = config.supervisor.root_token().ok_or_else(|| {
        StartError::NoRootToken(config.supervisor.admin_token_file.display().to_string())
    })?;
    let bus = Bus::connect(&config.bus, "crews-worker").await?;
    bus.ensure_topology().await?;
    let crews = CrewsClient::new(
        format!("http://{}", config.crews.dial()),
        Some(root.clone()),
    );
    let router = RouterClient::new(format!("http://{}", config.router.dial()), Some(root));
    let cw = &config.crews_worker;
    let worker = Worker {
        crews: crews.clone(),
        steps: Arc::new(router.clone()),
        scheduler: Scheduler::new(cw.concurrency, cw.per_user),
        lease_secs: cw.lease_secs,
        settings: Settings {
            context_tokens: cw.context_tokens,
            max_delegations: cw.max_delegations,
            max_delegation_depth: cw.max_delegation_depth,
            max_human_rounds: 3,
        },
        name: format!(
            "{}:{}:{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
            std::process::id(),
            time::OffsetDateTime::now_utc().unix_timestamp()
        ),
        shutdown: shutdown.clone(),
    };
    let consumer = {
        let bus = bus.clone();
        let shutdown = shutdown.clone();
        let max = in_flight(&config);
        tokio::spawn(async move {
            daarion_bus::consume_keyed(
                &bus,
                CREWAI_WORKER,
                shutdown,
                max,
                // Each run is its own key: runs proceed in parallel; the scheduler is fair.
                |r: &daarion_bus::events::AgentRunRequested| r.run_id.to_string(),
                move |event| {
                    let worker = worker.clone();
                    async move { worker.handle(event).await }
                },
            )
            .await
        })
    };
    let readiness = Readiness::new()
        .with_check(BusCheck(bus.clone()))
        .with_check(ConsumersCheck::new(&bus, &[CREWAI_WORKER]))
        .with_check(ServiceCheck("crews", crews.service().clone()))
        .with_check(ServiceCheck("router", router.service().clone()));
    let served = daarion_http::serve_app(
        "crews-worker",
        Router::new(),
        readiness,
        &config.http,
        listener,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    daarion_bus::join_consumer("crewai-worker", consumer).await;
    served?;
    Ok(())
}

#[cfg(test)]
mod scheduler_tests;
