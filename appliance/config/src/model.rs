//! The typed configuration tree. Field documentation lives in the shipped `daarion.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub general: GeneralConfig,
    pub telemetry: TelemetryConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub bus: BusConfig,
    pub http: HttpConfig,
    pub models: ModelsConfig,
    pub supervisor: SupervisorConfig,
    pub control_plane: ServiceConfig,
    pub gateway: ServiceConfig,
    pub router: ServiceConfig,
    pub swapper: ServiceConfig,
    pub ingest: IngestConfig,
    pub parser: ParserConfig,
    pub crews: CrewsConfig,
    pub crews_worker: CrewsWorkerConfig,
    pub memory: MemoryConfig,
    pub monitoring: MonitoringConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneralConfig {
    pub data_dir: PathBuf,
    pub models_dir: PathBuf,
    /// Where `file:` secret references resolve (`daarion_control_client::resolve_secret_in`).
    pub secrets_dir: PathBuf,
    pub min_free_disk_mb: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Text,
    Json,
    Journald,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    pub log_level: String,
    /// An OTLP/HTTP collector (`http://host:4318`) that receives every span as well; empty: none.
    pub otlp_endpoint: String,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
    pub migrate_on_start: bool,
    pub statement_timeout_ms: u64,
}

impl DatabaseConfig {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }

    pub fn statement_timeout(&self) -> Duration {
        Duration::from_millis(self.statement_timeout_ms)
    }
}

/// The URL may carry a password: Debug shows it redacted so it never reaches a log.
impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("migrate_on_start", &self.migrate_on_start)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .finish()
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    pub url: String,
    pub key_prefix: String,
    /// A file holding the Redis password (`requirepass`, or the `daarion` ACL user's when the
    /// URL names that user); empty when the URL says everything.
    #[serde(default)]
    pub password_file: std::path::PathBuf,
}

impl RedisConfig {
    /// `url` with the password from `password_file` in it, for every connection the appliance
    /// opens. A password already in the URL wins (the operator said it there).
    pub fn connection_url(&self) -> std::io::Result<String> {
        let Some(password) = read_secret_file(&self.password_file)? else {
            return Ok(self.url.clone());
        };
        Ok(with_password(&self.url, &password))
    }
}

/// `redis://host/0` → `redis://:PASSWORD@host/0`, `redis://user@host` → `redis://user:PASSWORD@host`
/// (percent-encoded); URLs without an authority (unix sockets) get `?password=`.
fn with_password(url: &str, password: &str) -> String {
    let encoded: String = password
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    if scheme.contains("unix") || rest.starts_with('/') {
        let sep = if rest.contains('?') { '&' } else { '?' };
        return format!("{scheme}://{rest}{sep}pass={encoded}");
    }
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, _)) if userinfo.contains(':') => url.to_owned(),
        Some((user, host)) => format!("{scheme}://{user}:{encoded}@{host}{path}"),
        None => format!("{scheme}://:{encoded}@{authority}{path}"),
    }
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("password_file", &self.password_file)
            .finish()
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    pub url: String,
    pub bundled: bool,
    pub prefix: String,
    pub max_deliveries: i64,
    pub ack_wait_secs: u64,
    pub duplicate_window_secs: u64,
    pub max_age_days: u64,
    pub connect_timeout_secs: u64,
    pub retry_backoff_ms: u64,
    /// One password file per NATS user (`<dir>/<service>`); empty: connect without credentials.
    #[serde(default)]
    pub credentials_dir: std::path::PathBuf,
}

impl BusConfig {
    /// Where the per-service NATS passwords live, when the bus needs them.
    pub fn credentials(&self) -> Option<&std::path::Path> {
        (!self.credentials_dir.as_os_str().is_empty()).then_some(self.credentials_dir.as_path())
    }
}

impl std::fmt::Debug for BusConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusConfig")
            .field("url", &redact_url(&self.url))
            .field("bundled", &self.bundled)
            .field("prefix", &self.prefix)
            .field("max_deliveries", &self.max_deliveries)
            .field("ack_wait_secs", &self.ack_wait_secs)
            .field("duplicate_window_secs", &self.duplicate_window_secs)
            .field("max_age_days", &self.max_age_days)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("retry_backoff_ms", &self.retry_backoff_ms)
            .field("credentials_dir", &self.credentials_dir)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub request_timeout_secs: u64,
    pub body_limit_bytes: usize,
    pub shutdown_grace_secs: u64,
}

impl HttpConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    pub manifests_dir: PathBuf,
    pub budget_mb: u64,
    pub reserve_mb: u64,
    pub queue_limit: usize,
    pub llama_worker: PathBuf,
    pub whisper_worker: PathBuf,
    pub tts_worker: PathBuf,
    pub sd_worker: PathBuf,
    pub threads: u32,
    /// The embedding model (a manifest id) the memory service indexes and searches with.
    pub embedding_model: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisorConfig {
    pub admin_listen: SocketAddr,
    pub admin_token_file: PathBuf,
    pub nats_server: PathBuf,
    pub ready_timeout_secs: u64,
    pub stop_grace_secs: u64,
    pub health_interval_secs: u64,
    pub health_failures: u32,
    pub max_restarts: u32,
    pub restart_window_secs: u64,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    pub log_ring_lines: usize,
}

impl SupervisorConfig {
    /// The appliance's root token (the admin token file), which services accept as an admin
    /// credential and use to call each other. `None` when the file is missing or unreadable.
    pub fn root_token(&self) -> Option<String> {
        std::fs::read_to_string(&self.admin_token_file)
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
    }

    pub fn ready_timeout(&self) -> Duration {
        Duration::from_secs(self.ready_timeout_secs)
    }
    pub fn stop_grace(&self) -> Duration {
        Duration::from_secs(self.stop_grace_secs)
    }
    pub fn health_interval(&self) -> Duration {
        Duration::from_secs(self.health_interval_secs)
    }
    pub fn restart_window(&self) -> Duration {
        Duration::from_secs(self.restart_window_secs)
    }
}

/// The memory service: where it listens and which stores it uses besides PostgreSQL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub qdrant: QdrantConfig,
    pub graph: GraphConfig,
    /// The longest a session-state entry may live, and the TTL of one stored without its own.
    pub session_state_max_ttl_secs: u64,
    pub session_state_default_ttl_secs: u64,
}

impl MemoryConfig {
    /// Where it listens, as for every other service.
    pub fn service(&self) -> ServiceConfig {
        ServiceConfig {
            enabled: self.enabled,
            listen: self.listen,
        }
    }

    pub fn dial(&self) -> SocketAddr {
        self.service().dial()
    }
}

/// A Qdrant server for vectors; empty `url` keeps them in the embedded engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QdrantConfig {
    pub url: String,
    pub api_key_file: PathBuf,
    pub collection_prefix: String,
    pub timeout_secs: u64,
}

/// A Bolt graph server (Neo4j 5, FalkorDB); empty `url` keeps the graph in PostgreSQL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphConfig {
    pub url: String,
    pub user: String,
    pub password_file: PathBuf,
    pub database: String,
    pub timeout_secs: u64,
}

/// Reads a secret file named in the config; `None` when no file is named.
pub fn read_secret_file(path: &std::path::Path) -> std::io::Result<Option<String>> {
    if path.as_os_str().is_empty() {
        return Ok(None);
    }
    Ok(Some(std::fs::read_to_string(path)?.trim().to_owned()))
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
}

impl ServiceConfig {
    /// Where to reach the service: one listening on 0.0.0.0 or :: is dialled on loopback.
    pub fn dial(&self) -> SocketAddr {
        if self.listen.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), self.listen.port())
        } else {
            self.listen
        }
    }
}

/// `[ingest]`: the upload service (:8100) and the blob store it writes files to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// The largest file accepted, in bytes.
    pub max_bytes: u64,
    pub blobs: BlobsConfig,
}

impl IngestConfig {
    pub fn service(&self) -> ServiceConfig {
        ServiceConfig {
            enabled: self.enabled,
            listen: self.listen,
        }
    }

    pub fn dial(&self) -> SocketAddr {
        self.service().dial()
    }
}

/// `[parser]`: the parser service (:8101), which reads every attachment into text. It opens the
/// blob store `[ingest.blobs]` names, the one ingest writes to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParserConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Attachments read at once; each may run a tool (pdftotext, tesseract, ffmpeg) at a time.
    pub workers: usize,
    /// Longer documents fail at once with "too many pages: N > max_pages".
    pub max_pages: u32,
    /// Tesseract languages for pages without a text layer and images, e.g. `ukr+rus+eng`.
    pub ocr_languages: String,
    /// One run of an external tool (a page, a recording) longer than this is stopped.
    pub tool_timeout_secs: u64,
    /// Address space one external tool may use, in MiB.
    pub tool_memory_mb: u64,
    /// The swapper's speech-to-text model for audio and video; empty: recordings fail saying so.
    pub stt_model: String,
    /// The swapper's vision model describing images next to their OCR text; empty: images get
    /// their OCR text only (and the parser says so once at start and in `/ready`'s detail).
    pub vision_model: String,
}

impl ParserConfig {
    pub fn service(&self) -> ServiceConfig {
        ServiceConfig {
            enabled: self.enabled,
            listen: self.listen,
        }
    }

    pub fn dial(&self) -> SocketAddr {
        self.service().dial()
    }
}

/// `[ingest.blobs]`: where file contents are kept, by their SHA-256. The local directory by
/// default; an S3-compatible bucket when `s3_bucket` is set. Keys are read from files, so no
/// secret sits in the config.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobsConfig {
    /// Empty: `general.data_dir/blobs`.
    pub dir: PathBuf,
    pub s3_bucket: String,
    pub s3_endpoint: String,
    pub s3_region: String,
    pub s3_access_key_file: PathBuf,
    pub s3_secret_key_file: PathBuf,
}

impl BlobsConfig {
    pub fn is_s3(&self) -> bool {
        !self.s3_bucket.is_empty()
    }
}

/// `[crews]`: crew definitions and runs (:9010), and the budget a run gets when neither the
/// crew nor the request sets one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrewsConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub budget: CrewBudgetConfig,
}

impl CrewsConfig {
    pub fn service(&self) -> ServiceConfig {
        ServiceConfig {
            enabled: self.enabled,
            listen: self.listen,
        }
    }

    pub fn dial(&self) -> SocketAddr {
        self.service().dial()
    }
}

/// `[crews.budget]`: a run's default limits; 0 means no limit of that kind (wall time and steps
/// always have one).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrewBudgetConfig {
    pub max_tokens: u64,
    pub max_cost: f64,
    pub max_gpu_seconds: f64,
    pub max_steps: u32,
    pub max_wall_secs: u64,
}

/// `[crews_worker]`: the worker (:9011) that executes runs from `agent.run.requested`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrewsWorkerConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Runs executed at once across all users.
    pub concurrency: usize,
    /// Runs of one user executed at once; the rest wait their turn.
    pub per_user: usize,
    /// Earlier tasks' outputs handed to a task without `context` are summarised to fit this many
    /// tokens (estimated).
    pub context_tokens: u32,
    /// Hierarchical process: delegations per run, and how deep a delegation may nest.
    pub max_delegations: u32,
    pub max_delegation_depth: u32,
    /// How long a claimed run stays with its worker without a heartbeat: after a crash, how long
    /// the run waits before another worker takes it over.
    pub lease_secs: u32,
}

impl CrewsWorkerConfig {
    pub fn service(&self) -> ServiceConfig {
        ServiceConfig {
            enabled: self.enabled,
            listen: self.listen,
        }
    }

    pub fn dial(&self) -> SocketAddr {
        self.service().dial()
    }
}

/// `[monitoring]`: Prometheus and Alertmanager run by the supervisor, and where alerts go.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringConfig {
    pub enabled: bool,
    pub prometheus_listen: SocketAddr,
    pub alertmanager_listen: SocketAddr,
    pub prometheus_bin: PathBuf,
    pub alertmanager_bin: PathBuf,
    /// How long Prometheus keeps samples, in days.
    pub retention_days: u32,
    pub scrape_interval_secs: u64,
    /// The control plane's Telegram bot (`telegram.<name>`) that sends alerts; empty: the only
    /// configured bot.
    pub operator_bot: String,
    /// Telegram chat ids that receive alerts.
    pub operator_chats: Vec<i64>,
}

/// Every service the supervisor knows, by its config section and command-line name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceName {
    ControlPlane,
    Gateway,
    Router,
    Swapper,
    Ingest,
    Parser,
    Crews,
    CrewsWorker,
    Memory,
}

impl ServiceName {
    pub const ALL: [ServiceName; 9] = [
        ServiceName::ControlPlane,
        ServiceName::Gateway,
        ServiceName::Router,
        ServiceName::Swapper,
        ServiceName::Ingest,
        ServiceName::Parser,
        ServiceName::Crews,
        ServiceName::CrewsWorker,
        ServiceName::Memory,
    ];

    /// The name used on the command line, in logs, metrics labels and NATS `source` fields.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::ControlPlane => "control-plane",
            ServiceName::Gateway => "gateway",
            ServiceName::Router => "router",
            ServiceName::Swapper => "swapper",
            ServiceName::Ingest => "ingest",
            ServiceName::Parser => "parser",
            ServiceName::Crews => "crews",
            ServiceName::CrewsWorker => "crews-worker",
            ServiceName::Memory => "memory",
        }
    }

    /// The config section holding this service's settings.
    pub fn section(self) -> &'static str {
        match self {
            ServiceName::ControlPlane => "control_plane",
            ServiceName::CrewsWorker => "crews_worker",
            other => other.as_str(),
        }
    }
}

impl std::fmt::Display for ServiceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ServiceName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceName::ALL
            .into_iter()
            .find(|n| n.as_str() == s || n.section() == s)
            .ok_or_else(|| {
                let known: Vec<_> = ServiceName::ALL.iter().map(|n| n.as_str()).collect();
                format!("unknown service `{s}` (known: {})", known.join(", "))
            })
    }
}

impl Config {
    pub fn service(&self, name: ServiceName) -> ServiceConfig {
        match name {
            ServiceName::ControlPlane => self.control_plane,
            ServiceName::Gateway => self.gateway,
            ServiceName::Router => self.router,
            ServiceName::Swapper => self.swapper,
            ServiceName::Ingest => self.ingest.service(),
            ServiceName::Parser => self.parser.service(),
            ServiceName::Crews => self.crews.service(),
            ServiceName::CrewsWorker => self.crews_worker.service(),
            ServiceName::Memory => self.memory.service(),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                url.to_owned()
            }
        }
        None => url.to_owned(),
    }
}
