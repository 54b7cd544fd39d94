//! `daarion doctor`: one line per dependency with a verdict, for an operator at a terminal.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use daarion_config::{Config, redact_url};
use serde_json::json;

const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Ok,
    Warn,
    Fail,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }
}

struct Line {
    check: &'static str,
    verdict: Verdict,
    detail: String,
    millis: u128,
}

async fn timed<F>(check: &'static str, fut: F) -> Line
where
    F: Future<Output = (Verdict, String)>,
{
    let started = Instant::now();
    let (verdict, detail) = match tokio::time::timeout(CHECK_TIMEOUT, fut).await {
        Ok(result) => result,
        Err(_) => (Verdict::Fail, format!("no answer within {CHECK_TIMEOUT:?}")),
    };
    Line {
        check,
        verdict,
        detail,
        millis: started.elapsed().as_millis(),
    }
}

pub async fn run(config: &Config, as_json: bool) -> ExitCode {
    let lines = tokio::join!(
        timed("postgres", postgres(config)),
        timed("redis", redis(config)),
        timed("nats", nats(config)),
        timed("disk", async { disk(config) }),
        timed("gpu", async { gpu() }),
        timed("models", async { models(config) }),
        timed("monitoring", async { monitoring(config) }),
    );
    let lines = [
        lines.0, lines.1, lines.2, lines.3, lines.4, lines.5, lines.6,
    ];
    let worst = lines.iter().map(|l| l.verdict).max().unwrap_or(Verdict::Ok);
    let failing = lines.iter().filter(|l| l.verdict == Verdict::Fail).count();
    let warnings = lines.iter().filter(|l| l.verdict == Verdict::Warn).count();

    if as_json {
        let checks: Vec<_> = lines
            .iter()
            .map(|l| json!({"check": l.check, "verdict": l.verdict.label().to_ascii_lowercase(), "detail": l.detail, "millis": l.millis}))
            .collect();
        println!(
            "{}",
            json!({"healthy": worst != Verdict::Fail, "checks": checks})
        );
    } else {
        println!("{:<10} {:<7} DETAIL", "CHECK", "VERDICT");
        for l in &lines {
            println!(
                "{:<10} {:<7} {} ({} ms)",
                l.check,
                l.verdict.label(),
                l.detail,
                l.millis
            );
        }
        println!();
        match worst {
            Verdict::Fail => println!(
                "verdict: {failing} failing, {warnings} warnings: the appliance cannot run"
            ),
            Verdict::Warn => println!("verdict: ready to run, {warnings} warnings"),
            Verdict::Ok => println!("verdict: all checks passed"),
        }
    }
    if worst == Verdict::Fail {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn postgres(config: &Config) -> (Verdict, String) {
    let url = redact_url(&config.database.url);
    let pool = match daarion_db::connect(&config.database).await {
        Ok(pool) => pool,
        Err(e) => return (Verdict::Fail, e.to_string()),
    };
    let version = match daarion_db::check(&pool).await {
        Ok(v) => v,
        Err(e) => return (Verdict::Fail, format!("{url}: {e}")),
    };
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
    let pending = daarion_db::MIGRATOR
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .count();
    if pending > 0 {
        (
            Verdict::Warn,
            format!("{version} at {url}; {pending} migrations pending (run `daarion migrate`)"),
        )
    } else {
        (
            Verdict::Ok,
            format!("{version} at {url}; schema up to date"),
        )
    }
}

async fn redis(config: &Config) -> (Verdict, String) {
    let url = redact_url(&config.redis.url);
    let result = async {
        let client = redis::Client::open(config.redis.url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await?;
        Ok::<_, redis::RedisError>((pong, info))
    }
    .await;
    match result {
        Ok((pong, info)) if pong == "PONG" => {
            let version = info
                .lines()
                .find_map(|l| l.strip_prefix("redis_version:"))
                .unwrap_or("?")
                .trim()
                .to_owned();
            if redis_is_open(&config.redis.url).await {
                (
                    Verdict::Warn,
                    format!(
                        "Redis {version} at {url}: Redis accepts connections without a password \
                         (anyone on this box reads and poisons cached histories and facts; \
                         set requirepass and redis.password_file)"
                    ),
                )
            } else {
                (Verdict::Ok, format!("Redis {version} at {url}"))
            }
        }
        Ok((pong, _)) => (Verdict::Fail, format!("{url} answered {pong:?} to PING")),
        Err(e) => (Verdict::Fail, format!("{url}: {e}")),
    }
}

async fn nats(config: &Config) -> (Verdict, String) {
    let bus = match daarion_bus::Bus::connect(&config.bus, "doctor").await {
        Ok(bus) => bus,
        Err(e) => return (Verdict::Fail, e.to_string()),
    };
    let url = redact_url(&config.bus.url);
    let server = bus.client().server_info();
    let mut missing = Vec::new();
    for spec in daarion_bus::topology::STREAMS {
        let name = bus.naming().stream(spec.name);
        if bus.jetstream().get_stream(&name).await.is_err() {
            missing.push(name);
        }
    }
    let head = format!("nats-server {} with JetStream at {url}", server.version);
    if nats_is_open(&config.bus).await {
        return (
            Verdict::Warn,
            format!(
                "{head}: NATS accepts connections without credentials (anyone on this box reads \
                 conversations and forges events; set bus.credentials_dir)"
            ),
        );
    }
    if missing.is_empty() {
        (Verdict::Ok, format!("{head}; all streams present"))
    } else {
        (
            Verdict::Warn,
            format!(
                "{head}; streams not created yet: {} (services create them at start)",
                missing.join(", ")
            ),
        )
    }
}

/// Whether `url`'s Redis answers `PING` to a client that gives no user and no password.
async fn redis_is_open(url: &str) -> bool {
    let Ok(mut info) = redis::IntoConnectionInfo::into_connection_info(url) else {
        return false;
    };
    info.redis.username = None;
    info.redis.password = None;
    let attempt = async {
        let client = redis::Client::open(info)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    matches!(
        tokio::time::timeout(CHECK_TIMEOUT / 2, attempt).await,
        Ok(Ok(pong)) if pong == "PONG"
    )
}

/// Whether the NATS server lets a connection without credentials use JetStream.
async fn nats_is_open(bus: &daarion_config::BusConfig) -> bool {
    let mut anonymous = bus.clone();
    anonymous.credentials_dir = PathBuf::new();
    anonymous.connect_timeout_secs = anonymous.connect_timeout_secs.min(2);
    daarion_bus::Bus::connect(&anonymous, "doctor")
        .await
        .is_ok()
}

/// The data dir may not exist before install; measure the filesystem it will live on.
fn existing_ancestor(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

fn disk(config: &Config) -> (Verdict, String) {
    let dir = &config.general.data_dir;
    let probe = existing_ancestor(dir);
    match nix::sys::statvfs::statvfs(&probe) {
        Ok(stats) => {
            let free_mb = stats.blocks_available() * stats.fragment_size() / (1 << 20);
            let total_mb = stats.blocks() * stats.fragment_size() / (1 << 20);
            let detail = format!(
                "{} MiB free of {} MiB on {} (for {})",
                free_mb,
                total_mb,
                probe.display(),
                dir.display()
            );
            if free_mb < config.general.min_free_disk_mb {
                (
                    Verdict::Fail,
                    format!(
                        "{detail}; below general.min_free_disk_mb = {}",
                        config.general.min_free_disk_mb
                    ),
                )
            } else {
                (Verdict::Ok, detail)
            }
        }
        Err(e) => (Verdict::Fail, format!("{}: {e}", probe.display())),
    }
}

fn gpu() -> (Verdict, String) {
    let report = daarion_gpu::Gpus::new().snapshot();
    let verdict = if report.devices.is_empty() {
        Verdict::Warn
    } else {
        Verdict::Ok
    };
    (verdict, report.summary())
}

/// Prometheus and Alertmanager: off is a warning, never a failure (the appliance runs without).
fn monitoring(config: &Config) -> (Verdict, String) {
    let m = &config.monitoring;
    match crate::up::monitoring::check(config) {
        Ok(found) => (
            Verdict::Ok,
            format!(
                "Prometheus on {} and Alertmanager on {}, rules from {}",
                m.prometheus_listen,
                m.alertmanager_listen,
                found.shipped.display()
            ),
        ),
        Err(reason) => (Verdict::Warn, format!("monitoring is off: {reason}")),
    }
}

/// The catalogue against the files on disk, and the worker that would run them.
fn models(config: &Config) -> (Verdict, String) {
    use daarion_swapper::manifest::{FileState, check_file, load_all};
    let manifests = match load_all(&config.models.manifests_dir) {
        Ok(m) => m,
        Err(e) => return (Verdict::Fail, e.to_string()),
    };
    let worker = daarion_swapper::find_worker(&config.models.llama_worker);
    if config.swapper.enabled && worker.is_none() {
        return (
            Verdict::Fail,
            format!(
                "the llama.cpp worker `{}` is not installed (models.llama_worker)",
                config.models.llama_worker.display()
            ),
        );
    }
    use daarion_swapper::manifest::Kind;
    let backends = [
        (
            Kind::Stt,
            &config.models.whisper_worker,
            "models.whisper_worker",
        ),
        (Kind::Tts, &config.models.tts_worker, "models.tts_worker"),
        (Kind::Image, &config.models.sd_worker, "models.sd_worker"),
    ];
    for (kind, worker, key) in backends {
        if config.swapper.enabled
            && manifests.iter().any(|m| m.kind == kind)
            && daarion_swapper::find_worker(worker).is_none()
        {
            return (
                Verdict::Fail,
                format!(
                    "the {} worker `{}` is not installed ({key})",
                    kind.backend(),
                    worker.display()
                ),
            );
        }
    }
    if manifests.is_empty() {
        return (
            Verdict::Warn,
            format!(
                "no model manifests in {}",
                config.models.manifests_dir.display()
            ),
        );
    }
    let missing: Vec<&str> = manifests
        .iter()
        .filter(|m| {
            m.files(&config.general.models_dir)
                .iter()
                .any(|f| matches!(check_file(f, false), Ok(FileState::Missing) | Err(_)))
        })
        .map(|m| m.id.as_str())
        .collect();
    let summary = format!(
        "{} models in the catalogue, {} present in {}",
        manifests.len(),
        manifests.len() - missing.len(),
        config.general.models_dir.display()
    );
    if missing.is_empty() {
        (Verdict::Ok, summary)
    } else {
        (
            Verdict::Warn,
            format!(
                "{summary}; missing: {} (daarion models pull)",
                missing.join(", ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Redis and NATS of the test machine need no credentials: doctor must say so.
    #[tokio::test]
    async fn open_redis_and_nats_are_warnings() {
        let mut config = Config::defaults();
        if let Ok(url) = std::env::var("DAARION_TEST_REDIS_URL") {
            config.redis.url = url;
        }
        config.bus.url = daarion_bus::testing::nats_url();
        let (verdict, detail) = redis(&config).await;
        assert_eq!(verdict, Verdict::Warn, "{detail}");
        assert!(
            detail.contains("Redis accepts connections without a password"),
            "{detail}"
        );
        let (verdict, detail) = nats(&config).await;
        assert_eq!(verdict, Verdict::Warn, "{detail}");
        assert!(detail.contains("without credentials"), "{detail}");
    }

    #[tokio::test]
    async fn the_open_check_ignores_the_urls_password() {
        // The question is whether someone WITHOUT the password gets in: a password in the URL
        // must not make an open Redis look closed, and no Redis at all is not "open".
        assert!(redis_is_open("redis://:whatever@127.0.0.1:6379/0").await);
        assert!(!redis_is_open("redis://127.0.0.1:1/0").await);
    }
}
