//! `daarion service <name>`: one service in the foreground, bound to its configured address.

use anyhow::{Context, bail};
use daarion_config::{Config, ServiceName};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Whether this build contains the service's crate.
pub fn built(name: ServiceName) -> bool {
    matches!(
        name,
        ServiceName::Memory | ServiceName::ControlPlane | ServiceName::Swapper
    )
}

pub async fn run(
    name: ServiceName,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if !built(name) {
        bail!("service `{name}` is not in this build yet");
    }
    let addr = config.service(name).listen;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({}.listen)", name.section()))?;
    tracing::info!(service = %name, %addr, "listening");
    match name {
        ServiceName::Memory => daarion_memory::run(config, listener, shutdown).await?,
        ServiceName::ControlPlane => daarion_control_plane::run(config, listener, shutdown).await?,
        other => unreachable!("`{other}` passed built()"),
    }
    Ok(())
}
