//! [`ControlClient`]: cached getters for agents, prompts, policy and roles, kept fresh by the
//! control plane's announcements and served stale while it is down.

use std::sync::Arc;
use std::time::Duration;

use daarion_bus::{Bus, Envelope};
use daarion_client::reqwest::{Method, header};
use daarion_client::{Service, Timeouts, http_client, segment};
use daarion_policy::{Action, Subject, decide};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::cache::{Cache, Key};
use crate::error::ClientError;
use crate::introspect::CSRF_HEADER;
use crate::types::{Agent, AgentPolicy, Announcement, DecisionReport, Prompt, Versioned};

/// How long one call to the control plane may take: it is on the box, and a caller waiting
/// longer is better served by the stale value.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

struct Inner {
    service: Service,
    ttl: Duration,
    cache: Cache,
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
        let http = http_client(Timeouts::total(CALL_TIMEOUT));
        ControlClient {
            inner: Arc::new(Inner {
                service: Service::new("the control plane", base, Some(token.into()), http),
                ttl,
                cache: Cache::default(),
            }),
        }
    }

    pub fn service(&self) -> &Service {
        &self.inner.service
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
                match serde_json::from_slice::<Envelope<Announcement>>(&message.payload) {
                    Ok(event) => client.inner.cache.invalidate(&event.payload),
                    Err(e) => tracing::warn!(error = %e, "unreadable change announcement"),
                }
            }
        }))
    }

    /// Forgets a user's cached roles now (after this process changed them itself, rather than
    /// waiting for the announcement).
    pub fn forget_roles(&self, user: &str) {
        self.inner.cache.remove(&Key::Roles(user.to_owned()));
    }

    /// `GET path`, uncached. `path` is built from trusted parts and [`segment`]s.
    pub(crate) async fn fetch(&self, path: &str) -> Result<Value, ClientError> {
        let service = self.service();
        Ok(service.json(service.request(Method::GET, path)).await?)
    }

    /// The cached value when fresh; else a fetch; else (control plane down) the stale value.
    pub(crate) async fn cached(
        &self,
        key: Key,
        path: &str,
        version_of: fn(&Value) -> i64,
    ) -> Result<Versioned<Value>, ClientError> {
        let cache = &self.inner.cache;
        if let Some((value, version)) = cache.fresh(&key, self.inner.ttl) {
            return Ok(Versioned {
                value,
                version,
                stale: false,
            });
        }
        match self.fetch(path).await {
            Ok(value) => {
                let version = version_of(&value);
                cache.put(key, value.clone(), version);
                Ok(Versioned {
                    value,
                    version,
                    stale: false,
                })
            }
            Err(ClientError::Unavailable(reason)) => match cache.last(&key) {
                Some((value, version)) => {
                    tracing::warn!(%reason, path, "control plane unreachable; serving the last known value");
                    Ok(Versioned {
                        value,
                        version,
                        stale: true,
                    })
                }
                None => Err(ClientError::Unavailable(reason)),
            },
            Err(other) => {
                cache.remove(&key);
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
        Ok(self.service().ping().await?)
    }

    pub async fn agent(&self, id: &str) -> Result<Versioned<Agent>, ClientError> {
        let path = format!("/agents/{}", segment(id));
        self.typed(Key::Agent(id.to_owned()), &path, |v| {
            v["revision"].as_i64().unwrap_or(0)
        })
        .await
    }

    pub async fn active_prompt(&self, agent: &str) -> Result<Versioned<Prompt>, ClientError> {
        let path = format!("/prompts/{}/active", segment(agent));
        self.typed(Key::Prompt(agent.to_owned()), &path, |v| {
            v["version"].as_i64().unwrap_or(0)
        })
        .await
    }

    pub async fn policy(&self, agent: &str) -> Result<Versioned<AgentPolicy>, ClientError> {
        let path = format!("/policy/{}", segment(agent));
        self.typed(Key::Policy(agent.to_owned()), &path, |v| {
            v["version"].as_i64().unwrap_or(0)
        })
        .await
    }

    pub async fn roles(&self, user: &str) -> Result<Versioned<Vec<String>>, ClientError> {
        let path = format!("/users/{}/roles", segment(user));
        let raw = self
            .cached(Key::Roles(user.to_owned()), &path, |_| 0)
            .await?;
        Ok(Versioned {
            value: serde_json::from_value(raw.value["roles"].clone())
                .map_err(|e| ClientError::Protocol(e.to_string()))?,
            version: raw.version,
            stale: raw.stale,
        })
    }

    /// Sets a user's roles with the caller's own credential, so the audit log names who did it:
    /// `credential` holds the caller's `Authorization` header, or the `Cookie` and
    /// `X-CSRF-Token` of an admin's browser session.
    pub async fn set_roles_as(
        &self,
        credential: &header::HeaderMap,
        user: &str,
        roles: &[String],
    ) -> Result<Value, ClientError> {
        // Not this client's own token: the change must be the caller's.
        let service = self.service().with_token(None);
        let mut request = service.request(Method::PUT, &format!("/users/{}/roles", segment(user)));
        for name in [
            header::AUTHORIZATION.as_str(),
            header::COOKIE.as_str(),
            CSRF_HEADER,
        ] {
            if let Some(value) = credential.get(name) {
                request = request.header(name, value);
            }
        }
        let request = request.json(&serde_json::json!({"roles": roles}));
        Ok(service.json(request).await?)
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
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use daarion_settings::AgentSettings;

    use super::*;
    use crate::quota::Usage;

    /// A control plane that only records the paths it was asked for, and knows nothing.
    async fn recorder() -> (String, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(uri.path().to_owned());
                (
                    axum::http::StatusCode::NOT_FOUND,
                    axum::Json(
                        serde_json::json!({"error": {"code": "not_found", "message": "no"}}),
                    ),
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), seen)
    }

    #[tokio::test]
    async fn caller_text_cannot_steer_a_request_to_another_endpoint() {
        let (base, seen) = recorder().await;
        let client = ControlClient::new(base, "root", Duration::from_secs(60));
        let evil = "../auth/tokens";
        let deeper = "../../auth/tokens";
        let not_found = |r: Result<(), ClientError>| {
            assert!(matches!(r, Err(ClientError::NotFound(_))), "{r:?}");
        };
        not_found(client.agent(evil).await.map(drop));
        not_found(client.active_prompt(evil).await.map(drop));
        not_found(client.policy(evil).await.map(drop));
        not_found(client.roles(deeper).await.map(drop));
        not_found(client.config_for::<AgentSettings>(deeper).await.map(drop));
        not_found(client.flag(deeper, "alice").await.map(drop));
        not_found(client.quota_status(evil).await.map(drop));
        not_found(client.consume(deeper, &Usage::default()).await.map(drop));
        not_found(
            client
                .settle(deeper, &Usage::default(), &Usage::default())
                .await
                .map(drop),
        );
        not_found(
            client
                .set_roles_as(&header::HeaderMap::new(), deeper, &[])
                .await
                .map(drop),
        );
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                "/agents/%2E%2E%2Fauth%2Ftokens",
                "/prompts/%2E%2E%2Fauth%2Ftokens/active",
                "/policy/%2E%2E%2Fauth%2Ftokens",
                "/users/%2E%2E%2F%2E%2E%2Fauth%2Ftokens/roles",
                "/config/agents%2E%2E%2E%2F%2E%2E%2Fauth%2Ftokens",
                "/config/flags%2E%2E%2E%2F%2E%2E%2Fauth%2Ftokens",
                "/quotas/%2E%2E%2Fauth%2Ftokens",
                "/quotas/%2E%2E%2F%2E%2E%2Fauth%2Ftokens/consume",
                "/quotas/%2E%2E%2F%2E%2E%2Fauth%2Ftokens/settle",
                "/users/%2E%2E%2F%2E%2E%2Fauth%2Ftokens/roles",
            ]
        );
    }
}
