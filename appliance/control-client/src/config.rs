//! Typed config documents: each type knows its key ([`daarion_settings::Setting`]), so callers
//! ask for `config::<Routing>()` or `config_for::<AgentSettings>(id)` and get the document
//! parsed, never a key string and a hand parse.

use daarion_client::segment;
use daarion_policy::{Flag, flag_enabled};
use daarion_settings::{Setting, SingleSetting};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::cache::Key;
use crate::client::ControlClient;
use crate::error::ClientError;
use crate::types::Versioned;

fn version_of(row: &Value) -> i64 {
    row["version"].as_i64().unwrap_or(0)
}

fn parse<T: DeserializeOwned>(key: &str, value: Value) -> Result<T, ClientError> {
    serde_json::from_value(value).map_err(|e| ClientError::Invalid {
        key: key.to_owned(),
        message: e.to_string(),
    })
}

impl ControlClient {
    /// The document the appliance keeps at `T::KEY` (`control.config::<Routing>()`).
    pub async fn config<T: SingleSetting>(&self) -> Result<Versioned<T>, ClientError> {
        self.config_at(T::KEY).await
    }

    /// The document called `name` of a family (`config_for::<AgentSettings>("helper")` reads
    /// `agents.helper`).
    pub async fn config_for<T: Setting>(&self, name: &str) -> Result<Versioned<T>, ClientError> {
        self.config_at(&T::key(name)).await
    }

    async fn config_at<T: DeserializeOwned>(&self, key: &str) -> Result<Versioned<T>, ClientError> {
        let path = format!("/config/{}", segment(key));
        let raw = self
            .cached(Key::Config(key.to_owned()), &path, version_of)
            .await?;
        Ok(Versioned {
            value: parse(key, raw.value["value"].clone())?,
            version: raw.version,
            stale: raw.stale,
        })
    }

    /// Every document of a family by name, each at its current version; never cached (for
    /// discovering what to run, e.g. the bots to poll). A stored value that is not a `T` is
    /// left out with a warning: one broken document must not hide the others.
    pub async fn configs<T: Setting>(&self) -> Result<Vec<(String, Versioned<T>)>, ClientError> {
        let all = self.fetch("/config").await?;
        let rows = all
            .as_array()
            .ok_or_else(|| ClientError::Protocol("/config is not a list".into()))?;
        let mut found = Vec::new();
        for row in rows {
            let Some(key) = row["key"].as_str() else {
                continue;
            };
            let Some(name) = T::name_in(key) else {
                continue;
            };
            match parse::<T>(key, row["value"].clone()) {
                Ok(value) => found.push((
                    name.to_owned(),
                    Versioned {
                        value,
                        version: version_of(row),
                        stale: false,
                    },
                )),
                Err(e) => tracing::warn!(error = %e, "config document left out"),
            }
        }
        Ok(found)
    }

    /// Whether `flags.<name>` is on for `user`, evaluated locally from the cached flag.
    pub async fn flag(&self, name: &str, user: &str) -> Result<Versioned<bool>, ClientError> {
        let flag = self.config_for::<Flag>(name).await?;
        Ok(Versioned {
            value: flag_enabled(name, &flag.value, user),
            version: flag.version,
            stale: flag.stale,
        })
    }
}
