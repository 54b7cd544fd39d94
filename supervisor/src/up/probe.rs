//! How the supervisor asks a unit "are you ready?" and "are you alive?".

use std::net::SocketAddr;
use std::time::Duration;

use daarion_config::{BusConfig, Config};

use super::plan::UnitName;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub enum Probe {
    /// A DAARION service (`GET /ready`, `GET /health`) or Prometheus and Alertmanager
    /// (`GET /-/ready`, `GET /-/healthy`).
    Http {
        base: String,
        ready: &'static str,
        alive: &'static str,
        client: reqwest::Client,
    },
    /// The bundled nats-server: ready when JetStream answers, alive while the port accepts.
    Nats { bus: BusConfig, addr: SocketAddr },
}

/// `nats://host:port` → the socket address, defaulting the port to 4222.
pub fn nats_addr(url: &str) -> Result<SocketAddr, String> {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let hostport = rest
        .rsplit('@')
        .next()
        .unwrap_or(rest)
        .trim_end_matches('/');
    let with_port = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:4222")
    };
    let with_port = with_port.replace("localhost", "127.0.0.1");
    with_port
        .parse()
        .map_err(|e| format!("bus.url `{url}` is not host:port for the bundled server: {e}"))
}

/// Where to reach a listen address: 0.0.0.0 and :: are dialled on loopback.
pub fn dial(listen: SocketAddr) -> SocketAddr {
    if listen.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), listen.port())
    } else {
        listen
    }
}

impl Probe {
    pub fn for_unit(name: UnitName, config: &Config) -> Result<Probe, String> {
        Ok(match name {
            UnitName::Nats => {
                let mut bus = config.bus.clone();
                bus.connect_timeout_secs = PROBE_TIMEOUT.as_secs();
                Probe::Nats {
                    addr: nats_addr(&bus.url)?,
                    bus,
                }
            }
            UnitName::Service(s) => Probe::http(
                format!("http://{}", config.service(s).dial()),
                "/ready",
                "/health",
            ),
            UnitName::Prometheus => Probe::http(
                format!("http://{}", dial(config.monitoring.prometheus_listen)),
                "/-/ready",
                "/-/healthy",
            ),
            UnitName::Alertmanager => Probe::http(
                format!("http://{}", dial(config.monitoring.alertmanager_listen)),
                "/-/ready",
                "/-/healthy",
            ),
        })
    }

    fn http(base: String, ready: &'static str, alive: &'static str) -> Probe {
        Probe::Http {
            base,
            ready,
            alive,
            client: daarion_client::http_client(daarion_client::Timeouts::total(PROBE_TIMEOUT)),
        }
    }

    pub async fn ready(&self) -> Result<(), String> {
        match self {
            Probe::Http {
                base,
                ready,
                client,
                ..
            } => get_ok(client, &format!("{base}{ready}")).await,
            // Ready means the streams and consumers exist too: with per-service NATS users only
            // the supervisor may declare them, and the services that start next wait for them.
            Probe::Nats { bus, .. } => {
                let bus = daarion_bus::Bus::connect(bus, "supervisor-probe")
                    .await
                    .map_err(|e| e.to_string())?;
                bus.ensure_topology()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }

    pub async fn alive(&self) -> Result<(), String> {
        match self {
            Probe::Http {
                base,
                alive,
                client,
                ..
            } => get_ok(client, &format!("{base}{alive}")).await,
            Probe::Nats { addr, .. } => {
                tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr))
                    .await
                    .map_err(|_| format!("{addr} did not accept within {PROBE_TIMEOUT:?}"))?
                    .map(|_| ())
                    .map_err(|e| format!("{addr}: {e}"))
            }
        }
    }
}

async fn get_ok(client: &reqwest::Client, url: &str) -> Result<(), String> {
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("{url} answered {}", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_urls_become_addresses() {
        assert_eq!(
            nats_addr("nats://127.0.0.1:4333").unwrap().to_string(),
            "127.0.0.1:4333"
        );
        assert_eq!(
            nats_addr("nats://localhost").unwrap().to_string(),
            "127.0.0.1:4222"
        );
        assert_eq!(
            nats_addr("nats://u:p@127.0.0.1:5000").unwrap().to_string(),
            "127.0.0.1:5000"
        );
        assert!(nats_addr("nats://some-host:1").is_err());
    }
}
