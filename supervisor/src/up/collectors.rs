//! What the supervisor measures about the box itself, every 15 s: whether the stores answer,
//! free disk, and the GPU through NVML. Read by Prometheus from the supervisor's `/metrics`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use daarion_config::Config;
use daarion_gpu::Gpus;
use sqlx::PgPool;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::metrics::{
    DEPENDENCY_UP, DISK_FREE, DISK_TOTAL, GPU_MEMORY_TOTAL, GPU_MEMORY_USED, GPU_POWER,
    GPU_PRESENT, GPU_TEMPERATURE, GPU_UP, GPU_UTILIZATION,
};

/// The bus statistics poll and the alert rules' `for:` assume this period.
pub const INTERVAL: Duration = Duration::from_secs(15);
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

pub fn spawn(
    config: Config,
    gpus: Arc<Gpus>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let consumers = tokio::spawn(bus_stats(config.bus.clone(), stop.clone()));
    tokio::spawn(async move {
        let _consumers = AbortOnDrop(consumers);
        let mut stores = Stores::default();
        let mut ticker = tokio::time::interval(INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let (postgres, redis, nats) = tokio::join!(
                stores.postgres(&config),
                redis_ping(&config.redis.url),
                nats_info(&config.bus.url),
            );
            for (dependency, result) in [("postgres", postgres), ("redis", redis), ("nats", nats)] {
                if let Err(error) = &result {
                    tracing::debug!(dependency, %error, "dependency probe failed");
                }
                DEPENDENCY_UP
                    .with_label_values(&[dependency])
                    .set(i64::from(result.is_ok()));
            }
            for dir in [&config.general.data_dir, &config.general.models_dir] {
                disk(dir);
            }
            let gpus = gpus.clone();
            // NVML calls block.
            let _ = tokio::task::spawn_blocking(move || gpu(&gpus)).await;
        }
    })
}

/// The bus's consumer and stream gauges (`daarion_bus::stats`), polled here, once for the whole
/// appliance: a service's own deliveries cannot show that it is stuck. The bundled NATS may start
/// after this task, so connecting is retried until it answers.
async fn bus_stats(config: daarion_config::BusConfig, stop: CancellationToken) {
    use daarion_bus::{stats, topology};
    let bus = loop {
        match daarion_bus::Bus::connect(&config, "supervisor-stats").await {
            Ok(bus) => break bus,
            Err(error) => tracing::debug!(%error, "bus stats: NATS not reachable yet"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(INTERVAL) => {}
        }
    };
    stats::watch(
        bus,
        topology::CONSUMERS.to_vec(),
        topology::STREAMS.to_vec(),
        stats::EVERY,
        stop,
    )
    .await;
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The PostgreSQL pool, kept between probes (one connection) and dropped when a probe fails.
#[derive(Default)]
struct Stores {
    pool: Option<PgPool>,
}

impl Stores {
    async fn postgres(&mut self, config: &Config) -> Result<(), String> {
        let attempt = async {
            if self.pool.is_none() {
                let mut database = config.database.clone();
                database.max_connections = 1;
                database.migrate_on_start = false;
                self.pool = Some(
                    daarion_db::connect(&database)
                        .await
                        .map_err(|e| e.to_string())?,
                );
            }
            let pool = self.pool.as_ref().ok_or("no pool")?;
            sqlx::query_scalar::<_, i32>("SELECT 1")
                .fetch_one(pool)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let result = tokio::time::timeout(PROBE_TIMEOUT, attempt)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {PROBE_TIMEOUT:?}")));
        if result.is_err() {
            self.pool = None;
        }
        result
    }
}

async fn redis_ping(url: &str) -> Result<(), String> {
    let attempt = async {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let pong: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(format!("PING answered {pong:?}"))
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {PROBE_TIMEOUT:?}")))
}

/// A NATS server greets every connection with `INFO {…}`: reading it is the protocol check.
async fn nats_info(url: &str) -> Result<(), String> {
    let target = nats_target(url);
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(&target)
            .await
            .map_err(|e| format!("{target}: {e}"))?;
        let mut greeting = [0u8; 5];
        stream
            .read_exact(&mut greeting)
            .await
            .map_err(|e| format!("{target}: {e}"))?;
        if &greeting == b"INFO " {
            Ok(())
        } else {
            Err(format!("{target} does not speak NATS"))
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {PROBE_TIMEOUT:?}")))
}

/// `nats://user:pass@host:port,nats://…` → `host:port` of the first server (port 4222 if none).
fn nats_target(url: &str) -> String {
    let first = url.split(',').next().unwrap_or(url).trim();
    let rest = first.split_once("://").map(|(_, r)| r).unwrap_or(first);
    let hostport = rest
        .rsplit('@')
        .next()
        .unwrap_or(rest)
        .trim_end_matches('/');
    if hostport
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        hostport.to_owned()
    } else {
        format!("{hostport}:4222")
    }
}

/// The data dir may not exist yet: measure the filesystem it will be on.
fn existing_ancestor(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

fn disk(dir: &Path) {
    let label = dir.display().to_string();
    match nix::sys::statvfs::statvfs(&existing_ancestor(dir)) {
        Ok(stats) => {
            let block = stats.fragment_size();
            let free = stats.blocks_available().saturating_mul(block);
            let total = stats.blocks().saturating_mul(block);
            DISK_FREE
                .with_label_values(&[&label])
                .set(i64::try_from(free).unwrap_or(i64::MAX));
            DISK_TOTAL
                .with_label_values(&[&label])
                .set(i64::try_from(total).unwrap_or(i64::MAX));
        }
        Err(error) => tracing::warn!(path = %label, %error, "statvfs failed"),
    }
}

fn gpu(gpus: &Gpus) {
    let report = gpus.snapshot();
    GPU_PRESENT.set(i64::from(!report.devices.is_empty() || nvidia_on_pci()));
    GPU_UP.set(i64::from(!report.devices.is_empty()));
    for device in &report.devices {
        let index = device.index.to_string();
        let label = [index.as_str()];
        GPU_MEMORY_USED
            .with_label_values(&label)
            .set(i64::try_from(device.used_bytes).unwrap_or(i64::MAX));
        GPU_MEMORY_TOTAL
            .with_label_values(&label)
            .set(i64::try_from(device.total_bytes).unwrap_or(i64::MAX));
        if let Some(pct) = device.utilization_pct {
            GPU_UTILIZATION
                .with_label_values(&label)
                .set(f64::from(pct) / 100.0);
        }
        if let Some(celsius) = device.temperature_c {
            GPU_TEMPERATURE
                .with_label_values(&label)
                .set(i64::from(celsius));
        }
        if let Some(mw) = device.power_mw {
            GPU_POWER
                .with_label_values(&label)
                .set(f64::from(mw) / 1000.0);
        }
    }
}

/// An NVIDIA display or 3D controller on the PCI bus: the box has a GPU even when NVML (the
/// driver) does not answer, which is what GpuLost is about.
fn nvidia_on_pci() -> bool {
    let Ok(devices) = std::fs::read_dir("/sys/bus/pci/devices") else {
        return false;
    };
    devices.flatten().any(|d| {
        let read = |f: &str| std::fs::read_to_string(d.path().join(f)).unwrap_or_default();
        read("vendor").trim() == "0x10de" && read("class").trim().starts_with("0x03")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_urls_become_targets() {
        for (url, target) in [
            ("nats://127.0.0.1:4333", "127.0.0.1:4333"),
            ("nats://localhost", "localhost:4222"),
            ("nats://u:p@bus.lan:5000/", "bus.lan:5000"),
            ("nats://a:1,nats://b:2", "a:1"),
        ] {
            assert_eq!(nats_target(url), target, "{url}");
        }
    }

    #[tokio::test]
    async fn a_port_that_does_not_speak_nats_is_down() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut socket, _) = listener.accept().await.unwrap();
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n").await;
        });
        let result = nats_info(&format!("nats://{addr}")).await;
        assert!(result.unwrap_err().contains("does not speak NATS"));
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        assert!(
            nats_info(&format!("nats://127.0.0.1:{port}"))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn the_real_nats_answers() {
        nats_info("nats://127.0.0.1:4222").await.unwrap();
    }

    #[test]
    fn disk_of_a_directory_not_created_yet_is_its_filesystem() {
        let dir = std::env::temp_dir().join("daarion-not-there/deeper");
        disk(&dir);
        let label = dir.display().to_string();
        let free = DISK_FREE.with_label_values(&[&label]).get();
        let total = DISK_TOTAL.with_label_values(&[&label]).get();
        assert!(total > 0 && free > 0 && free <= total, "{free} of {total}");
    }
}
