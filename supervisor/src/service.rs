//! `daarion service <name>`: one service in the foreground, bound to its configured address.

use anyhow::{Context, bail};
use daarion_config::{Config, ServiceName};
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

type Start = fn(Config, TcpListener, CancellationToken) -> BoxFuture<'static, anyhow::Result<()>>;

/// The one list of the services in this build and how each starts.
fn starter(name: ServiceName) -> Option<Start> {
    match name {
        ServiceName::Memory => Some(|config, listener, shutdown| {
            Box::pin(async move { Ok(daarion_memory::run(config, listener, shutdown).await?) })
        }),
        ServiceName::ControlPlane => Some(|config, listener, shutdown| {
            Box::pin(
                async move { Ok(daarion_control_plane::run(config, listener, shutdown).await?) },
            )
        }),
        ServiceName::Swapper => Some(|config, listener, shutdown| {
            Box::pin(async move { Ok(daarion_swapper::run(config, listener, shutdown).await?) })
        }),
        ServiceName::Router => Some(|config, listener, shutdown| {
            Box::pin(async move { Ok(daarion_router::run(config, listener, shutdown).await?) })
        }),
        ServiceName::Gateway => Some(|config, listener, shutdown| {
            Box::pin(async move { Ok(daarion_gateway::run(config, listener, shutdown).await?) })
        }),
        ServiceName::Parser => Some(|config, listener, shutdown| {
            Box::pin(async move { Ok(daarion_parser::run(config, listener, shutdown).await?) })
        }),
        ServiceName::Ingest => Some(|config, listener, shutdown| {
            Box::pin(async move { Ok(daarion_ingest::run(config, listener, shutdown).await?) })
        }),
        ServiceName::CrewsWorker => Some(|config, listener, shutdown| {
            Box::pin(
                async move { Ok(daarion_crews_worker::run(config, listener, shutdown).await?) },
            )
        }),
        ServiceName::Crews => Some(|config, listener, shutdown| {
            Box::pin(async move { Ok(daarion_crews::run(config, listener, shutdown).await?) })
        }),
    }
}

/// Whether this build contains the service's crate.
pub fn built(name: ServiceName) -> bool {
    starter(name).is_some()
}

pub async fn run(
    name: ServiceName,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Some(start) = starter(name) else {
        bail!("service `{name}` is not in this build yet");
    };
    let addr = config.service(name).listen;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({}.listen)", name.section()))?;
    tracing::info!(service = %name, %addr, "listening");
    start(config, listener, shutdown).await
}
