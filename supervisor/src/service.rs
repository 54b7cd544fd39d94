//! `daarion service <name>`: one service in the foreground, bound to its configured address.

use anyhow::Context;
use daarion_config::{Config, ServiceName};
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

type Start = fn(Config, TcpListener, CancellationToken) -> BoxFuture<'static, anyhow::Result<()>>;

/// The one list of the services in this build and how each starts.
fn starter(name: ServiceName) -> Start {
    match name {
        ServiceName::Memory => |config, listener, shutdown| {
            Box::pin(async move { Ok(daarion_memory::run(config, listener, shutdown).await?) })
        },
        ServiceName::ControlPlane => |config, listener, shutdown| {
            Box::pin(
                async move { Ok(daarion_control_plane::run(config, listener, shutdown).await?) },
            )
        },
        ServiceName::Swapper => |config, listener, shutdown| {
            Box::pin(async move { Ok(daarion_swapper::run(config, listener, shutdown).await?) })
        },
        ServiceName::Router => |config, listener, shutdown| {
            Box::pin(async move { Ok(daarion_router::run(config, listener, shutdown).await?) })
        },
        ServiceName::Gateway => |config, listener, shutdown| {
            Box::pin(async move { Ok(daarion_gateway::run(config, listener, shutdown).await?) })
        },
        ServiceName::Parser => |config, listener, shutdown| {
            Box::pin(async move { Ok(daarion_parser::run(config, listener, shutdown).await?) })
        },
        ServiceName::Ingest => |config, listener, shutdown| {
            Box::pin(async move { Ok(daarion_ingest::run(config, listener, shutdown).await?) })
        },
        ServiceName::CrewsWorker => |config, listener, shutdown| {
            Box::pin(
                async move { Ok(daarion_crews_worker::run(config, listener, shutdown).await?) },
            )
        },
        ServiceName::Crews => |config, listener, shutdown| {
            Box::pin(async move { Ok(daarion_crews::run(config, listener, shutdown).await?) })
        },
    }
}

pub async fn run(
    name: ServiceName,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let start = starter(name);
    let addr = config.service(name).listen;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({}.listen)", name.section()))?;
    tracing::info!(service = %name, %addr, "listening");
    start(config, listener, shutdown).await
}
