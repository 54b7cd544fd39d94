//! Layered configuration shared by every DAARION service.
//!
//! Three layers, later ones winning key by key: the documented default compiled into the binary
//! (`daarion.toml` beside this crate, also what the installer copies to `/etc/daarion/`), the
//! operator's file, and `DAARION__SECTION__KEY` environment variables. The merged tree is then
//! deserialised strictly (unknown keys are errors) and validated; every error names its key.

mod error;
mod layers;
mod model;
mod validate;
pub use model::{read_secret_file, redact_url};

pub use error::ConfigError;
pub use model::{
    BlobsConfig, BusConfig, Config, CrewBudgetConfig, CrewsConfig, CrewsWorkerConfig,
    DatabaseConfig, GeneralConfig, GraphConfig, HttpConfig, IngestConfig, LogFormat, MemoryConfig,
    ModelsConfig, MonitoringConfig, ParserConfig, QdrantConfig, RedisConfig, ServiceConfig,
    ServiceName, SupervisorConfig, TelemetryConfig,
};

use std::path::Path;

/// The shipped default configuration, documented key by key.
pub const DEFAULT_TOML: &str = include_str!("../daarion.toml");

/// Where the operator's file lives unless `--config` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/daarion/daarion.toml";

/// Prefix of environment overrides: `DAARION__BUS__URL` sets `bus.url`.
pub const ENV_PREFIX: &str = "DAARION__";

/// Where the configuration file comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// `/etc/daarion/daarion.toml`; a missing file means "defaults only".
    Default,
    /// A file the operator named: it must exist.
    Explicit(&'a Path),
}

impl Config {
    /// Loads the configuration from the default file layer and the process environment.
    pub fn load(source: Source<'_>) -> Result<Config, ConfigError> {
        Self::load_with_env(source, std::env::vars())
    }

    /// Same as [`Config::load`] with the environment given explicitly, so tests need not touch
    /// the process-wide environment.
    pub fn load_with_env(
        source: Source<'_>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        Self::load_from(Path::new(DEFAULT_PATH), source, env)
    }

    /// [`Config::load_with_env`] with the default file's place given, so tests can put a file
    /// there, or none, without touching `/etc`.
    pub(crate) fn load_from(
        default_path: &Path,
        source: Source<'_>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut tree = layers::parse("compiled-in defaults", DEFAULT_TOML)?;
        let file = match source {
            Source::Default => layers::read_optional(default_path)?,
            Source::Explicit(path) => Some(layers::read_required(path)?),
        };
        if let Some((origin, text)) = file {
            layers::merge(&mut tree, layers::parse(&origin, &text)?);
        }
        layers::merge(&mut tree, layers::from_env(ENV_PREFIX, env)?);
        let mut config: Config = layers::deserialize(tree)?;
        config.validate()?;
        // Folded in once here, so every Redis connection of every service carries it.
        config.redis.url = config
            .redis
            .connection_url()
            .map_err(|source| ConfigError::Read {
                path: config.redis.password_file.clone(),
                source,
            })?;
        Ok(config)
    }

    /// The shipped defaults alone, without reading any file or the environment.
    pub fn defaults() -> Config {
        Self::load_with_env(Source::Explicit(Path::new("/dev/null")), std::iter::empty())
            .expect("the shipped default configuration is valid (tested)")
    }
}

#[cfg(test)]
mod tests;
