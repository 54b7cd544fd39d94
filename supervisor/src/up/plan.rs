//! Which units run, and in which order: the seed's dependency graph, cut down to what is
//! enabled, laid out in tiers that start one after another.

use daarion_config::{Config, ServiceName};

/// Something the supervisor runs as a child process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnitName {
    /// The bundled nats-server (only with `bus.bundled = true`).
    Nats,
    Service(ServiceName),
    /// Debian's Prometheus (only with `monitoring.enabled = true`).
    Prometheus,
    /// Debian's Alertmanager (only with `monitoring.enabled = true`).
    Alertmanager,
}

impl UnitName {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitName::Nats => "nats",
            UnitName::Service(s) => s.as_str(),
            UnitName::Prometheus => "prometheus",
            UnitName::Alertmanager => "alertmanager",
        }
    }

    pub fn parse(s: &str) -> Option<UnitName> {
        match s {
            "nats" => Some(UnitName::Nats),
            "prometheus" => Some(UnitName::Prometheus),
            "alertmanager" => Some(UnitName::Alertmanager),
            _ => s.parse().ok().map(UnitName::Service),
        }
    }
}

impl std::fmt::Display for UnitName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The services a service needs ready before it starts (the event bus comes first for all).
fn service_deps(name: ServiceName) -> &'static [ServiceName] {
    use ServiceName::*;
    match name {
        Memory | ControlPlane | Swapper => &[],
        Router => &[Memory, ControlPlane, Swapper],
        Gateway | Crews | CrewsWorker => &[Router],
        Ingest | Parser => &[Memory],
    }
}

/// Enabled units grouped in start order: every unit's dependencies are in earlier tiers.
pub fn tiers(config: &Config) -> Vec<Vec<UnitName>> {
    let enabled: Vec<ServiceName> = ServiceName::ALL
        .into_iter()
        .filter(|s| config.service(*s).enabled)
        .collect();
    let mut tiers: Vec<Vec<UnitName>> = Vec::new();
    if config.bus.bundled {
        tiers.push(vec![UnitName::Nats]);
    }
    let mut placed: Vec<ServiceName> = Vec::new();
    while placed.len() < enabled.len() {
        let tier: Vec<ServiceName> = enabled
            .iter()
            .copied()
            .filter(|s| !placed.contains(s))
            .filter(|s| {
                service_deps(*s)
                    .iter()
                    .all(|d| placed.contains(d) || !enabled.contains(d))
            })
            .collect();
        // The graph above is acyclic, so every round places at least one service.
        assert!(!tier.is_empty(), "service dependency cycle");
        placed.extend(&tier);
        tiers.push(tier.into_iter().map(UnitName::Service).collect());
    }
    // Last: their first scrape finds every service up, and nothing waits for them.
    if config.monitoring.enabled {
        tiers.push(vec![UnitName::Alertmanager, UnitName::Prometheus]);
    }
    tiers
}

#[cfg(test)]
mod tests {
    use super::*;
    use ServiceName::*;

    fn all_enabled() -> Config {
        let mut config = Config::defaults();
        for s in ServiceName::ALL {
            match s {
                ControlPlane => config.control_plane.enabled = true,
                Gateway => config.gateway.enabled = true,
                Router => config.router.enabled = true,
                Swapper => config.swapper.enabled = true,
                Ingest => config.ingest.enabled = true,
                Parser => config.parser.enabled = true,
                Crews => config.crews.enabled = true,
                CrewsWorker => config.crews_worker.enabled = true,
                Memory => config.memory.enabled = true,
            }
        }
        config
    }

    #[test]
    fn seed_order_bus_then_data_then_router_then_edges() {
        let mut config = all_enabled();
        config.bus.bundled = true;
        let tiers = tiers(&config);
        assert_eq!(tiers[0], vec![UnitName::Nats]);
        let pos = |s: ServiceName| {
            tiers
                .iter()
                .position(|t| t.contains(&UnitName::Service(s)))
                .unwrap()
        };
        for s in [Memory, ControlPlane, Swapper] {
            assert_eq!(pos(s), 1, "{s}");
        }
        assert_eq!(pos(Router), 2);
        for s in [Gateway, Crews, CrewsWorker] {
            assert!(pos(s) > pos(Router), "{s}");
        }
        for s in [Ingest, Parser] {
            assert!(pos(s) > pos(Memory), "{s}");
        }
    }

    #[test]
    fn monitoring_starts_last_and_only_when_enabled() {
        let mut config = all_enabled();
        config.monitoring.enabled = true;
        let tiers = tiers(&config);
        assert_eq!(
            tiers.last().unwrap(),
            &vec![UnitName::Alertmanager, UnitName::Prometheus]
        );
        config.monitoring.enabled = false;
        let tiers = super::tiers(&config);
        assert!(
            tiers
                .iter()
                .flatten()
                .all(|u| matches!(u, UnitName::Service(_)))
        );
    }

    #[test]
    fn disabled_dependencies_do_not_block() {
        let mut config = Config::defaults();
        config.monitoring.enabled = false;
        config.router.enabled = true;
        config.gateway.enabled = false;
        config.memory.enabled = false;
        config.control_plane.enabled = false;
        config.swapper.enabled = false;
        config.ingest.enabled = false;
        config.parser.enabled = false;
        config.crews.enabled = false;
        config.crews_worker.enabled = false;
        let tiers = tiers(&config);
        assert_eq!(tiers, vec![vec![UnitName::Service(Router)]]);
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(UnitName::parse("nats"), Some(UnitName::Nats));
        assert_eq!(UnitName::parse("memory"), Some(UnitName::Service(Memory)));
        assert_eq!(UnitName::parse("prometheus"), Some(UnitName::Prometheus));
        assert_eq!(
            UnitName::parse("alertmanager"),
            Some(UnitName::Alertmanager)
        );
        assert_eq!(UnitName::parse("nope"), None);
    }
}
