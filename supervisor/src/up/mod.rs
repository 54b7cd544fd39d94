//! `daarion up`: the supervisor. Starts every enabled unit in dependency order, keeps them
//! running, serves the admin API, talks to systemd, and stops everything in reverse order.

mod admin;
mod collectors;
mod health;
mod metrics;
pub mod monitoring;
mod monitoring_api;
mod nats_config;
mod plan;
mod policy;
mod probe;
mod proxy;
mod ring;
mod token;
mod traces;
mod unit;
mod web;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use daarion_config::Config;
use daarion_telemetry::Readiness;
use sd_notify::NotifyState;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use plan::UnitName;
use unit::{Spawn, State, Unit, UnitHandle};

/// A unit's task: a supervised child, or a unit that is off on this box.
type Runnable = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs the supervisor until `shutdown` fires, then stops every unit, last-started first.
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let token = token::load_or_create(&config.supervisor.admin_token_file).with_context(|| {
        format!(
            "admin token file {} (supervisor.admin_token_file)",
            config.supervisor.admin_token_file.display()
        )
    })?;
    let admin_listener = TcpListener::bind(config.supervisor.admin_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (supervisor.admin_listen)",
                config.supervisor.admin_listen
            )
        })?;

    let exe = std::env::current_exe().context("locating the daarion binary")?;
    let tiers = plan::tiers(&config);
    // Off rather than fatal: the appliance runs without monitoring, and says why.
    let monitoring = monitoring::check(&config);
    if let (true, Err(reason)) = (config.monitoring.enabled, &monitoring) {
        tracing::warn!(%reason, "monitoring is off");
    }
    let (events, publisher) = health::HealthEvents::spawn(config.bus.clone());
    let mut units: Vec<(usize, Runnable, CancellationToken)> = Vec::new();
    let mut handles: Vec<UnitHandle> = Vec::new();
    for (tier_index, tier) in tiers.iter().enumerate() {
        for name in tier {
            let stop = CancellationToken::new();
            let spawn = match (name, &monitoring) {
                (UnitName::Prometheus | UnitName::Alertmanager, Err(reason)) => {
                    let (task, handle) =
                        unit::off(*name, reason.clone(), &config.supervisor, stop.clone());
                    units.push((tier_index, Box::pin(task), stop));
                    handles.push(handle);
                    continue;
                }
                (UnitName::Prometheus, Ok(found)) => {
                    monitoring::prometheus_spawn(&config, found, &exe)?
                }
                (UnitName::Alertmanager, Ok(found)) => {
                    monitoring::alertmanager_spawn(&config, found, &exe)?
                }
                _ => spawn_for(*name, &config, &exe, config_path.as_ref())?,
            };
            let probe = probe::Probe::for_unit(*name, &config).map_err(anyhow::Error::msg)?;
            let (unit, handle) = Unit::new(
                *name,
                spawn,
                probe,
                &config.supervisor,
                stop.clone(),
                events.clone(),
            );
            units.push((tier_index, Box::pin(unit.run()), stop));
            handles.push(handle);
        }
    }
    drop(events);
    let handles = Arc::new(handles);
    let gpus = Arc::new(daarion_gpu::Gpus::new());
    let collectors_stop = CancellationToken::new();
    let collectors = collectors::spawn(config.clone(), gpus.clone(), collectors_stop.clone());

    let admin_stop = CancellationToken::new();
    let admin = {
        let sessions = daarion_control_client::Introspector::new(
            &format!("http://{}", config.control_plane.dial()),
            token.clone(),
        );
        let state = admin::AdminState {
            units: handles.clone(),
            token: Arc::new(token),
            gpus,
            sessions,
            bus_config: config.bus.clone(),
            bus: Arc::default(),
            monitoring: monitoring_api::MonitoringApi::new(&config.monitoring, handles.clone()),
            traces: traces::TraceSources::new(&config),
        };
        let ready_units = handles.clone();
        let readiness = Readiness::new().with_fn("units", move || {
            let units = ready_units.clone();
            Box::pin(async move { all_ready(&units) })
        });
        // The admin API, the proxy to the services, and the web UI for every other path.
        let routes = admin::routes(state)
            .merge(proxy::routes(proxy::Proxy::new(&config)))
            .route("/", axum::routing::get(web::serve))
            .route("/{*path}", axum::routing::get(web::serve));
        // Uploads to ingest pass through here: its limit, not the shared one, applies.
        let http = proxy::admin_http(&config);
        let app = daarion_http::build_app("supervisor", routes, readiness, &http);
        tracing::info!(addr = %config.supervisor.admin_listen, "admin API listening");
        tokio::spawn(daarion_http::serve(
            admin_listener,
            app,
            admin_stop.clone(),
            config.http.shutdown_grace(),
        ))
    };
    let watchdog = spawn_watchdog(admin_stop.clone());

    // Start tier by tier; a tier starts when the one before it is ready (or has failed).
    let mut tasks: Vec<(usize, CancellationToken, tokio::task::JoinHandle<()>)> = Vec::new();
    let mut units = units.into_iter().peekable();
    for (tier_index, tier) in tiers.iter().enumerate() {
        notify(&[NotifyState::Status(&format!(
            "starting {}",
            tier.iter()
                .map(|u| u.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))]);
        while let Some((_, unit, stop)) = units.next_if(|(t, _, _)| *t == tier_index) {
            tasks.push((tier_index, stop, tokio::spawn(unit)));
        }
        let tier_handles: Vec<&UnitHandle> =
            handles.iter().filter(|h| tier.contains(&h.name)).collect();
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = settled(&tier_handles) => {}
        }
    }
    if !shutdown.is_cancelled() {
        let status = status_line(&handles);
        tracing::info!(%status, "all units started");
        notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
    }

    shutdown.cancelled().await;
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    // Reverse dependency order: edges first, the event bus last. Each unit task stops its
    // child (SIGTERM, grace, SIGKILL on the whole process group) before it returns.
    for tier_index in (0..tiers.len()).rev() {
        let (this_tier, rest): (Vec<_>, Vec<_>) =
            tasks.into_iter().partition(|(t, _, _)| *t == tier_index);
        tasks = rest;
        for (_, stop, _) in &this_tier {
            stop.cancel();
        }
        for (_, _, task) in this_tier {
            let _ = task.await;
        }
    }
    admin_stop.cancel();
    collectors_stop.cancel();
    watchdog.abort();
    let _ = collectors.await;
    // The last events (units stopping) go out if the bus still answers; never wait long.
    if tokio::time::timeout(Duration::from_secs(3), publisher)
        .await
        .is_err()
    {
        tracing::debug!("ops.health publisher still busy at exit");
    }
    match admin.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "admin API shutdown"),
        Err(e) => tracing::warn!(error = %e, "admin API task"),
    }
    tracing::info!("supervisor stopped");
    Ok(())
}

/// `daarion child-exec --parent PID -- PROGRAM ARGS`: see `crate::child_exec`.
fn spawn_for(
    name: UnitName,
    config: &Config,
    exe: &std::path::Path,
    config_path: Option<&PathBuf>,
) -> anyhow::Result<Spawn> {
    Ok(match name {
        UnitName::Nats => {
            let addr = probe::nats_addr(&config.bus.url).map_err(anyhow::Error::msg)?;
            if !addr.ip().is_loopback() {
                bail!("bus.bundled = true needs bus.url on 127.0.0.1, not {addr}");
            }
            let store = config.general.data_dir.join("nats");
            std::fs::create_dir_all(&store)
                .with_context(|| format!("creating the NATS store {}", store.display()))?;
            let server_conf = nats_config::write(config, addr, &store)?;
            Spawn {
                exe: exe.to_owned(),
                program: find_nats_server(&config.supervisor.nats_server)?,
                args: vec!["-c".into(), server_conf.display().to_string()],
            }
        }
        UnitName::Prometheus | UnitName::Alertmanager => {
            bail!("{name} is configured by the monitoring module")
        }
        UnitName::Service(service) => {
            let mut args = Vec::new();
            if let Some(path) = config_path {
                args.push("--config".to_owned());
                args.push(path.display().to_string());
            }
            args.push("service".to_owned());
            args.push(service.as_str().to_owned());
            Spawn {
                exe: exe.to_owned(),
                program: exe.to_owned(),
                args,
            }
        }
    })
}

/// The configured nats-server, or the one on PATH when the configured file is not there (a box
/// where Debian's or a hand-installed server is used).
fn find_nats_server(configured: &std::path::Path) -> anyhow::Result<PathBuf> {
    if configured.is_file() {
        return Ok(configured.to_owned());
    }
    let name = configured
        .file_name()
        .map(|n| n.to_owned())
        .unwrap_or_else(|| "nats-server".into());
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(&name))
            .find(|candidate| candidate.is_file())
    });
    match on_path {
        Some(found) => {
            if configured.components().count() > 1 {
                tracing::warn!(configured = %configured.display(), using = %found.display(), "supervisor.nats_server not found; using the one on PATH");
            }
            Ok(found)
        }
        None => bail!(
            "nats-server not found at {} (supervisor.nats_server) nor on PATH; run the installer or set bus.bundled = false",
            configured.display()
        ),
    }
}

fn all_ready(units: &[UnitHandle]) -> Result<String, String> {
    let not_ready: Vec<String> = units
        .iter()
        .map(UnitHandle::snapshot)
        .filter(|s| !matches!(s.state, State::Ready | State::Off))
        .map(|s| format!("{} is {:?}", s.name, s.state).to_lowercase())
        .collect();
    if not_ready.is_empty() {
        Ok(format!("{} units ready", units.len()))
    } else {
        Err(not_ready.join(", "))
    }
}

/// Waits until every unit of a tier is ready or has been given up on.
async fn settled(units: &[&UnitHandle]) {
    loop {
        if units.iter().all(|u| {
            matches!(
                u.snapshot().state,
                State::Ready | State::Failed | State::Off
            )
        }) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn status_line(units: &[UnitHandle]) -> String {
    let snapshots: Vec<_> = units.iter().map(UnitHandle::snapshot).collect();
    let ready = snapshots.iter().filter(|s| s.state == State::Ready).count();
    let failed: Vec<&str> = snapshots
        .iter()
        .filter(|s| s.state == State::Failed)
        .map(|s| s.name.as_str())
        .collect();
    if failed.is_empty() {
        format!("{ready}/{} units ready", snapshots.len())
    } else {
        format!(
            "{ready}/{} units ready; failed: {}",
            snapshots.len(),
            failed.join(", ")
        )
    }
}

/// Tells systemd (when it started us with Type=notify); a no-op elsewhere. The send never
/// blocks: should the receiver stop reading (its queue holds only
/// `net.unix.max_dgram_qlen` datagrams, 10 by default), a notification is dropped rather than
/// stalling the supervisor.
fn notify(states: &[NotifyState]) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let message: String = states.iter().map(|s| format!("{s}\n")).collect();
    let sent = (|| -> std::io::Result<usize> {
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        let path = path.to_string_lossy();
        let addr = match path.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
            None => SocketAddr::from_pathname(path.as_ref())?,
        };
        socket.send_to_addr(message.as_bytes(), &addr)
    })();
    match sent {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            tracing::debug!("systemd is not reading notifications; one dropped");
        }
        Err(e) => tracing::warn!(error = %e, "sd_notify failed"),
    }
}

/// Pings systemd's watchdog at half its interval while the supervisor's runtime is alive.
fn spawn_watchdog(stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(interval) = sd_notify::watchdog_enabled() else {
            return;
        };
        let mut ticker = tokio::time::interval(interval / 2);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => notify(&[NotifyState::Watchdog]),
            }
        }
    })
}
