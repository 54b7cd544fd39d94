use std::path::PathBuf;

/// Why a configuration could not be loaded. Each variant names the file, variable or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin} is not valid TOML: {message}")]
    Syntax { origin: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error("{} config errors:\n  {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Many(Vec<ConfigError>),
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The keys this error is about, for callers that want to point at them.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            ConfigError::Invalid { key, .. } => vec![key.as_str()],
            ConfigError::Many(errors) => errors.iter().flat_map(ConfigError::keys).collect(),
            _ => Vec::new(),
        }
    }
}
