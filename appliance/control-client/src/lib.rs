//! How data-plane services read the control plane.
//!
//! Every getter returns a [`Versioned`] value: the version that served it (so a trace can record
//! the prompt, policy and config versions behind an answer) and whether it was stale. Values are
//! cached for a TTL; [`ControlClient::watch`] drops entries the moment the control plane
//! announces a change on `control.changed.>`; when the control plane cannot be reached, the last
//! known value keeps being served (marked `stale`) instead of failing the user's request.

mod introspect;
mod secrets;

pub use introspect::{CSRF_HEADER, Introspection, Introspector, Principal, identify};
pub use secrets::{SecretError, resolve_secret};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use daarion_bus::Bus;
use daarion_policy::{Action, Decision, Flag, PolicyDoc, Subject, decide, flag_enabled};
use futures::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("control plane refused the token (HTTP {0})")]
    Unauthorized(u16),
    #[error("control plane unreachable and nothing cached: {0}")]
    Unavailable(String),
    #[error("unexpected answer from the control plane: {0}")]
    Protocol(String),
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    #[error("cannot watch for changes: {0}")]
    Watch(String),
}

/// A value and the version of it that served this call.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: i64,
    /// Served from cache past its TTL because the control plane did not answer.
    pub stale: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Prompt {
    pub agent_id: String,
    pub version: i32,
    pub content: String,
    pub variables: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct AgentPolicy {
    pub agent_enabled: bool,
    pub document: PolicyDoc,
}

/// A decision and every version that went into it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionReport {
    pub decision: Decision,
    pub policy_version: i64,
    pub roles: Vec<String>,
    pub stale: bool,
}

/// An agent as the router needs it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub default_model: Option<String>,
    pub telegram_bot: Option<String>,
    pub enabled: bool,
    pub revision: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Agent(String),
    Prompt(String),
    Policy(String),
    Roles(String),
    Config(String),
}

struct Entry {
    value: Value,
    version: i64,
    fetched: Instant,
}

struct Inner {
    base: String,
    token: String,
    http: reqwest::Client,
    ttl: Duration,
    cache: Mutex<HashMap<Key, Entry>>,
}

/// Cheap to clone; clones share one cache.
#[derive(Clone)]
pub struct ControlClient {
    inner: Arc<Inner>,
}

impl ControlClient {
    /// `base` like `http://127.0.0.1:9200`; `token` needs the `read` scope (and `quota:consume`
    /// for [`ControlClient::consume`]).
    pub fn new(base: impl Into<String>, token: impl Into<String>, ttl: Duration) -> Self {
        ControlClient {
            inner: Arc::new(Inner {
                base: base.into().trim_end_matches('/').to_owned(),
                token: token.into(),
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(3))
                    .no_proxy()
                    .build()
                    .expect("a plain HTTP client builds"),
                ttl,
                cache: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Drops cached entries when the control plane announces a change. Runs until the bus
    /// connection closes; the returned task can be aborted.
    pub async fn watch(&self, bus: &Bus) -> Result<tokio::task::JoinHandle<()>, ClientError> {
        let subject = bus.naming().subject("control.changed.>");
        let mut subscription = bus
            .client()
            .subscribe(subject)
            .await
            .map_err(|e| ClientError::Watch(e.to_string()))?;
        bus.client()
            .flush()
            .await
            .map_err(|e| ClientError::Watch(e.to_string()))?;
        let client = self.clone();
        Ok(tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                match serde_json::from_slice::<daarion_bus::Envelope<Value>>(&message.payload) {
                    Ok(event) => client.invalidate(&event.payload),
                    Err(e) => tracing::warn!(error = %e, "unreadable change announcement"),
                }
            }
        }))
    }

    fn invalidate(&self, announcement: &Value) {
        let kind = announcement["kind"].as_str().unwrap_or_default();
        let id = announcement["id"].as_str().unwrap_or_default().to_owned();
        let keys = match kind {
            "prompt" => vec![Key::Prompt(id)],
            "policy" => vec![Key::Policy(id)],
            // The policy answer carries the agent's enabled flag.
            "agent" => vec![
                Key::Policy(id.clone()),
                Key::Prompt(id.clone()),
                Key::Agent(id),
            ],
            "user_roles" => vec![Key::Roles(id)],
            "config" => vec![Key::Config(id)],
            _ => return,
        };
        let mut cache = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            cache.remove(&key);
        }
        tracing::debug!(kind, "control-plane cache entry dropped");
    }

    /// Forgets a user's cached roles now (after this process changed them itself, rather than
    /// waiting for the announcement).
    pub fn forget_roles(&self, user: &str) {
        self.inner
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&Key::Roles(user.to_owned()));
    }

    async fn fetch(&self, path: &str) -> Result<Value, ClientError> {
        let response = self
            .inner
            .http
            .get(format!("{}{path}", self.inner.base))
            .bearer_auth(&self.inner.token)
            .send()
            .await
            .map_err(|e| ClientError::Unavailable(e.to_string()))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        match status.as_u16() {
            200..=299 => Ok(body),
            404 => Err(ClientError::NotFound(
                body["error"]["message"].as_str().unwrap_or(path).to_owned(),
            )),
            401 | 403 => Err(ClientError::Unauthorized(status.as_u16())),
            s if s >= 500 => Err(ClientError::Unavailable(format!("HTTP {s}"))),
            s => Err(ClientError::Protocol(format!("HTTP {s}: {body}"))),
        }
    }

    /// The cached value when fresh; else a fetch; else (control plane down) the stale value.
    async fn cached(
        &self,
        key: Key,
        path: &str,
        version_of: fn(&Value) -> i64,
    ) -> Result<Versioned<Value>, ClientError> {
        {
            let cache = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = cache.get(&key)
                && entry.fetched.elapsed() < self.inner.ttl
            {
                return Ok(Versioned {
                    value: entry.value.clone(),
                    version: entry.version,
                    stale: false,
                });
            }
        }
        match self.fetch(path).await {
            Ok(value) => {
                let version = version_of(&value);
                self.inner
                    .cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(
                        key,
                        Entry {
                            value: value.clone(),
                            version,
                            fetched: Instant::now(),
                        },
                    );
                Ok(Versioned {
                    value,
                    version,
                    stale: false,
                })
            }
            Err(ClientError::Unavailable(reason)) => {
                let cache = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
                match cache.get(&key) {
                    Some(entry) => {
                        tracing::warn!(%reason, path, "control plane unreachable; serving the last known value");
                        Ok(Versioned {
                            value: entry.value.clone(),
                            version: entry.version,
                            stale: true,
                        })
                    }
                    None => Err(ClientError::Unavailable(reason)),
                }
            }
            Err(other) => {
                self.inner
                    .cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key);
                Err(other)
            }
        }
    }

    async fn typed<T: DeserializeOwned>(
        &self,
        key: Key,
        path: &str,
        version_of: fn(&Value) -> i64,
    ) -> Result<Versioned<T>, ClientError> {
        let raw = self.cached(key, path, version_of).await?;
        Ok(Versioned {
            value: serde_json::from_value(raw.value)
                .map_err(|e| ClientError::Protocol(e.to_string()))?,
            version: raw.version,
            stale: raw.stale,
        })
    }

    /// For a dependant's readiness: the control plane answers its health check.
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.inner
            .http
            .get(format!("{}/health", self.inner.base))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map(|_| ())
            .map_err(|e| ClientError::Unavailable(e.to_string()))
    }

    pub async fn agent(&self, id: &str) -> Result<Versioned<Agent>, ClientError> {
        self.typed(Key::Agent(id.to_owned()), &format!("/agents/{id}"), |v| {
            v["revision"].as_i64().unwrap_or(0)
        })
        .await
    }

    pub async fn active_prompt(&self, agent: &str) -> Result<Versioned<Prompt>, ClientError> {
        self.typed(
            Key::Prompt(agent.to_owned()),
            &format!("/prompts/{agent}/active"),
            |v| v["version"].as_i64().unwrap_or(0),
        )
        .await
    }

    pub async fn policy(&self, agent: &str) -> Result<Versioned<AgentPolicy>, ClientError> {
        self.typed(
            Key::Policy(agent.to_owned()),
            &format!("/policy/{agent}"),
            |v| v["version"].as_i64().unwrap_or(0),
        )
        .await
    }

    pub async fn roles(&self, user: &str) -> Result<Versioned<Vec<String>>, ClientError> {
        let raw = self
            .cached(
                Key::Roles(user.to_owned()),
                &format!("/users/{user}/roles"),
                |_| 0,
            )
            .await?;
        Ok(Versioned {
            value: serde_json::from_value(raw.value["roles"].clone())
                .map_err(|e| ClientError::Protocol(e.to_string()))?,
            version: raw.version,
            stale: raw.stale,
        })
    }

    pub async fn config(&self, key: &str) -> Result<Versioned<Value>, ClientError> {
        let raw = self
            .cached(
                Key::Config(key.to_owned()),
                &format!("/config/{key}"),
                |v| v["version"].as_i64().unwrap_or(0),
            )
            .await?;
        Ok(Versioned {
            value: raw.value["value"].clone(),
            version: raw.version,
            stale: raw.stale,
        })
    }

    /// Every config key starting with `prefix`, with its current value and version; never
    /// cached (for discovering what to run, e.g. the bots to poll).
    pub async fn config_keys(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, Value, i64)>, ClientError> {
        let all = self.fetch("/config").await?;
        Ok(all
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|row| {
                let key = row["key"].as_str()?;
                key.starts_with(prefix).then(|| {
                    (
                        key.to_owned(),
                        row["value"].clone(),
                        row["version"].as_i64().unwrap_or(0),
                    )
                })
            })
            .collect())
    }

    /// Sets a user's roles with the caller's own credential, so the audit log names who did it:
    /// `credential` holds the caller's `Authorization` header, or the `Cookie` and
    /// `X-CSRF-Token` of an admin's browser session.
    pub async fn set_roles_as(
        &self,
        credential: &reqwest::header::HeaderMap,
        user: &str,
        roles: &[String],
    ) -> Result<Value, ClientError> {
        let mut request = self
            .inner
            .http
            .put(format!("{}/users/{user}/roles", self.inner.base));
        for name in [
            reqwest::header::AUTHORIZATION.as_str(),
            reqwest::header::COOKIE.as_str(),
            CSRF_HEADER,
        ] {
            if let Some(value) = credential.get(name) {
                request = request.header(name, value);
            }
        }
        let response = request
            .json(&serde_json::json!({"roles": roles}))
            .send()
            .await
            .map_err(|e| ClientError::Unavailable(e.to_string()))?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match status {
            200..=299 => Ok(body),
            401 | 403 => Err(ClientError::Unauthorized(status)),
            s if s >= 500 => Err(ClientError::Unavailable(format!("HTTP {s}"))),
            _ => Err(ClientError::Protocol(
                body["error"]["message"]
                    .as_str()
                    .unwrap_or("refused")
                    .to_owned(),
            )),
        }
    }

    /// Whether `flags.<name>` is on for `user`, evaluated locally from the cached flag.
    pub async fn flag(&self, name: &str, user: &str) -> Result<Versioned<bool>, ClientError> {
        let raw = self.config(&format!("flags.{name}")).await?;
        let flag: Flag =
            serde_json::from_value(raw.value).map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(Versioned {
            value: flag_enabled(name, &flag, user),
            version: raw.version,
            stale: raw.stale,
        })
    }

    /// The decision for `user` on `agent`, from cached policy and roles: no round trip when warm.
    pub async fn decide(
        &self,
        user: &str,
        agent: &str,
        action: &Action<'_>,
    ) -> Result<DecisionReport, ClientError> {
        let policy = self.policy(agent).await?;
        let roles = self.roles(user).await?;
        let subject = Subject {
            user_id: user.to_owned(),
            roles: roles.value.clone(),
        };
        Ok(DecisionReport {
            decision: decide(
                &subject,
                policy.value.agent_enabled,
                &policy.value.document,
                action,
            ),
            policy_version: policy.version,
            roles: roles.value,
            stale: policy.stale || roles.stale,
        })
    }

    /// The user's limits and what they used (for `/status`); never cached.
    pub async fn quota_status(&self, user: &str) -> Result<Value, ClientError> {
        self.fetch(&format!("/quotas/{user}")).await
    }

    /// Reserves `usage` against the user's quotas: `Err(QuotaExceeded)` names the budget.
    /// Never cached: quotas are enforced by the control plane alone.
    pub async fn consume(&self, user: &str, usage: &Value) -> Result<(), ClientError> {
        self.quota_call(user, "consume", usage).await
    }

    /// Replaces a reservation made with [`ControlClient::consume`] by what was really used.
    pub async fn settle(
        &self,
        user: &str,
        reserved: &Value,
        actual: &Value,
    ) -> Result<(), ClientError> {
        let body = serde_json::json!({"reserved": reserved, "actual": actual});
        self.quota_call(user, "settle", &body).await
    }

    async fn quota_call(&self, user: &str, verb: &str, body: &Value) -> Result<(), ClientError> {
        let response = self
            .inner
            .http
            .post(format!("{}/quotas/{user}/{verb}", self.inner.base))
            .bearer_auth(&self.inner.token)
            .json(body)
            .send()
            .await
            .map_err(|e| ClientError::Unavailable(e.to_string()))?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let message = || body["error"]["message"].as_str().unwrap_or("").to_owned();
        match status {
            200 => Ok(()),
            429 => Err(ClientError::QuotaExceeded(message())),
            401 | 403 => Err(ClientError::Unauthorized(status)),
            s if s >= 500 => Err(ClientError::Unavailable(message())),
            _ => Err(ClientError::Protocol(message())),
        }
    }
}
