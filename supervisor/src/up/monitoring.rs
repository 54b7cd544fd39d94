//! Prometheus and Alertmanager as units: where their binaries and the shipped rules are, and
//! the configuration the supervisor writes for them under `<data_dir>/monitoring/`.
//!
//! The shipped `monitoring/` directory (rules, Alertmanager config) is looked up, first found
//! wins: `$DAARION_MONITORING_DIR`, `monitoring/` beside the `daarion` binary,
//! `/usr/share/daarion/monitoring` (where the installer puts it), then the source tree this
//! binary was built from (development and tests).

use std::path::{Path, PathBuf};

use anyhow::Context;
use daarion_config::{Config, ServiceName};
use serde_json::{Value, json};

use super::probe::dial;
use super::unit::Spawn;

pub const INSTALLED_DIR: &str = "/usr/share/daarion/monitoring";

/// What Alertmanager's shipped config names, replaced by this box's values.
const SHIPPED_GATEWAY: &str = "http://127.0.0.1:9300";
const SHIPPED_WEBHOOK_SECRET: &str = "/etc/daarion/secrets/alertmanager-webhook";

/// Everything the two units need, found; or why monitoring is off.
#[derive(Debug, Clone)]
pub struct Monitoring {
    pub prometheus: PathBuf,
    pub alertmanager: PathBuf,
    pub shipped: PathBuf,
}

/// Whether monitoring can run on this box: `Err` says why not, for `daarion status`/`doctor`.
pub fn check(config: &Config) -> Result<Monitoring, String> {
    let m = &config.monitoring;
    if !m.enabled {
        return Err("monitoring.enabled = false".into());
    }
    let binary = |path: &Path, key: &str, package: &str| {
        if path.is_file() {
            Ok(path.to_owned())
        } else {
            Err(format!(
                "{} not found (monitoring.{key}); install Debian's `{package}` package",
                path.display()
            ))
        }
    };
    let prometheus = binary(&m.prometheus_bin, "prometheus_bin", "prometheus")?;
    let alertmanager = binary(
        &m.alertmanager_bin,
        "alertmanager_bin",
        "prometheus-alertmanager",
    )?;
    let shipped = shipped_dir().ok_or_else(|| {
        format!(
            "the shipped rules (monitoring/prometheus/rules) are in none of: {}",
            candidates()
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    Ok(Monitoring {
        prometheus,
        alertmanager,
        shipped,
    })
}

fn candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("DAARION_MONITORING_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(bin_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_owned))
    {
        dirs.push(bin_dir.join("monitoring"));
    }
    dirs.push(PathBuf::from(INSTALLED_DIR));
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../monitoring"));
    dirs
}

fn shipped_dir() -> Option<PathBuf> {
    candidates()
        .into_iter()
        .find(|d| d.join("prometheus/rules").is_dir())
}

/// The unit's own data: `<data_dir>/monitoring/`.
fn home(config: &Config) -> PathBuf {
    config.general.data_dir.join("monitoring")
}

/// The scrape jobs: one per enabled unit that serves `/metrics`, named after the unit (the
/// alerts read the job as the `unit` label).
pub fn scrape_jobs(config: &Config) -> Vec<(String, std::net::SocketAddr)> {
    let mut jobs = vec![(
        "supervisor".to_owned(),
        dial(config.supervisor.admin_listen),
    )];
    for service in ServiceName::ALL {
        let section = config.service(service);
        if section.enabled {
            jobs.push((service.as_str().to_owned(), section.dial()));
        }
    }
    jobs.push((
        "alertmanager".to_owned(),
        dial(config.monitoring.alertmanager_listen),
    ));
    jobs.push((
        "prometheus".to_owned(),
        dial(config.monitoring.prometheus_listen),
    ));
    jobs
}

/// prometheus.yml, written as JSON (a subset of YAML): no quoting to get wrong.
pub fn prometheus_config(config: &Config, shipped: &Path) -> Value {
    let interval = format!("{}s", config.monitoring.scrape_interval_secs.max(1));
    let jobs: Vec<Value> = scrape_jobs(config)
        .into_iter()
        .map(|(job, addr)| {
            json!({
                "job_name": job,
                "static_configs": [{"targets": [addr.to_string()]}],
            })
        })
        .collect();
    json!({
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [shipped.join("prometheus/rules/*.yml").display().to_string()],
        "alerting": {"alertmanagers": [{"static_configs": [{
            "targets": [dial(config.monitoring.alertmanager_listen).to_string()],
        }]}]},
        "scrape_configs": jobs,
    })
}

/// The shipped Alertmanager config with this box's gateway address and secrets directory.
pub fn alertmanager_config(config: &Config, shipped: &str) -> String {
    let secret = config.general.secrets_dir.join("alertmanager-webhook");
    shipped
        .replace(
            SHIPPED_GATEWAY,
            &format!("http://{}", config.gateway.dial()),
        )
        .replace(SHIPPED_WEBHOOK_SECRET, &secret.display().to_string())
}

pub fn prometheus_spawn(config: &Config, found: &Monitoring, exe: &Path) -> anyhow::Result<Spawn> {
    let home = home(config);
    let storage = home.join("prometheus");
    std::fs::create_dir_all(&storage).with_context(|| format!("creating {}", storage.display()))?;
    let file = home.join("prometheus.yml");
    let body = serde_json::to_string_pretty(&prometheus_config(config, &found.shipped))?;
    std::fs::write(&file, body).with_context(|| format!("writing {}", file.display()))?;
    Ok(Spawn {
        exe: exe.to_owned(),
        program: found.prometheus.clone(),
        args: vec![
            format!("--config.file={}", file.display()),
            format!("--storage.tsdb.path={}", storage.display()),
            format!(
                "--storage.tsdb.retention.time={}d",
                config.monitoring.retention_days
            ),
            format!(
                "--web.listen-address={}",
                config.monitoring.prometheus_listen
            ),
        ],
    })
}

pub fn alertmanager_spawn(
    config: &Config,
    found: &Monitoring,
    exe: &Path,
) -> anyhow::Result<Spawn> {
    let home = home(config);
    let storage = home.join("alertmanager");
    std::fs::create_dir_all(&storage).with_context(|| format!("creating {}", storage.display()))?;
    let source = found.shipped.join("alertmanager/alertmanager.yml");
    let shipped = std::fs::read_to_string(&source)
        .with_context(|| format!("reading {}", source.display()))?;
    let file = home.join("alertmanager.yml");
    std::fs::write(&file, alertmanager_config(config, &shipped))
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(Spawn {
        exe: exe.to_owned(),
        program: found.alertmanager.clone(),
        args: vec![
            format!("--config.file={}", file.display()),
            format!("--storage.path={}", storage.display()),
            format!(
                "--web.listen-address={}",
                config.monitoring.alertmanager_listen
            ),
            // One box: no gossip port to open or to collide on.
            "--cluster.listen-address=".to_owned(),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let mut config = Config::defaults();
        config.monitoring.enabled = true;
        config.gateway.enabled = true;
        config.gateway.listen = "0.0.0.0:9400".parse().unwrap();
        config.ingest.enabled = false;
        config.crews.enabled = false;
        config.general.secrets_dir = "/srv/secrets".into();
        config
    }

    #[test]
    fn one_job_per_enabled_unit_named_after_it() {
        let config = config();
        let jobs: Vec<String> = scrape_jobs(&config).into_iter().map(|(j, _)| j).collect();
        assert_eq!(jobs.first().map(String::as_str), Some("supervisor"));
        assert!(jobs.contains(&"gateway".to_owned()));
        assert!(
            !jobs.contains(&"ingest".to_owned()),
            "disabled: not scraped"
        );
        assert!(!jobs.contains(&"crews".to_owned()));
        assert_eq!(&jobs[jobs.len() - 2..], ["alertmanager", "prometheus"]);
        let gateway = scrape_jobs(&config)
            .into_iter()
            .find(|(j, _)| j == "gateway")
            .unwrap();
        assert_eq!(
            gateway.1.to_string(),
            "127.0.0.1:9400",
            "dialled on loopback"
        );
    }

    #[test]
    fn prometheus_config_loads_the_shipped_rules_and_scrapes_at_the_interval() {
        let mut config = config();
        config.monitoring.scrape_interval_secs = 2;
        let value = prometheus_config(&config, Path::new("/usr/share/daarion/monitoring"));
        assert_eq!(value["global"]["scrape_interval"], "2s");
        assert_eq!(
            value["rule_files"][0],
            "/usr/share/daarion/monitoring/prometheus/rules/*.yml"
        );
        assert_eq!(
            value["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0],
            config.monitoring.alertmanager_listen.to_string()
        );
    }

    #[test]
    fn alertmanager_config_points_at_this_gateway_and_secret() {
        let shipped = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../monitoring/alertmanager/alertmanager.yml"),
        )
        .unwrap();
        let written = alertmanager_config(&config(), &shipped);
        assert!(!written.contains(SHIPPED_GATEWAY));
        assert!(!written.contains(SHIPPED_WEBHOOK_SECRET));
        assert_eq!(
            written
                .matches("url: http://127.0.0.1:9400/v1/alerts")
                .count(),
            2
        );
        assert!(written.contains("credentials_file: /srv/secrets/alertmanager-webhook"));
    }

    #[test]
    fn missing_binaries_say_which_and_how_to_get_them() {
        let mut config = config();
        config.monitoring.prometheus_bin = "/nonexistent/prometheus".into();
        let why = check(&config).unwrap_err();
        assert!(why.contains("/nonexistent/prometheus"), "{why}");
        assert!(why.contains("monitoring.prometheus_bin"), "{why}");
        config.monitoring.enabled = false;
        assert_eq!(check(&config).unwrap_err(), "monitoring.enabled = false");
    }
}
