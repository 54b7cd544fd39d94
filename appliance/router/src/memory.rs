//! The memory API, the router's only way to users, sessions, messages and facts.

use std::time::Duration;

use daarion_telemetry::TraceContext;
use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("memory API unreachable: {0}")]
    Unavailable(String),
    #[error("memory API answered HTTP {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("unexpected answer from the memory API: {0}")]
    Protocol(String),
}

#[derive(Debug, Clone, Deserialize)]
pub struct Session {
    pub id: Uuid,
    pub user_id: Uuid,
    pub agent_id: String,
    pub chat: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StoredMessage {
    pub id: Uuid,
    pub role: String,
    pub content: String,
    #[serde(default)]
    pub versions: Value,
    pub tool_calls: Option<Value>,
    pub tool_call_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Fact {
    pub id: Uuid,
    pub agent_id: Option<String>,
    pub content: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Hit {
    pub kind: String,
    pub id: Uuid,
    pub content: String,
    pub why: String,
}

/// What the router stores of a turn; `None` fields are left out.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub role: &'static str,
    pub content: String,
    pub agent_id: Option<String>,
    pub model: Option<String>,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    pub trace_id: Option<String>,
    pub versions: Value,
    pub tool_calls: Option<Value>,
    pub tool_call_id: Option<String>,
}

/// Cheap to clone. Speaks with the appliance's root token: the router acts for every user.
#[derive(Clone)]
pub struct MemoryClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl MemoryClient {
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> MemoryClient {
        MemoryClient {
            base: base.into().trim_end_matches('/').to_owned(),
            token: token.into(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .no_proxy()
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, MemoryError> {
        let trace = TraceContext::current_or_new().child();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("traceparent", trace.to_header());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| MemoryError::Unavailable(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| MemoryError::Unavailable(e.to_string()))?;
        if !(200..300).contains(&status) {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| text.chars().take(200).collect());
            return Err(if status >= 500 {
                MemoryError::Unavailable(format!("HTTP {status}: {message}"))
            } else {
                MemoryError::Refused { status, message }
            });
        }
        serde_json::from_str(&text).map_err(|e| MemoryError::Protocol(e.to_string()))
    }

    /// For readiness: the memory service answers its health check.
    pub async fn ping(&self) -> Result<(), MemoryError> {
        self.http
            .get(format!("{}/health", self.base))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map(|_| ())
            .map_err(|e| MemoryError::Unavailable(e.to_string()))
    }

    /// The user behind a channel identity, created on first contact.
    pub async fn resolve(
        &self,
        channel: &str,
        external_id: &str,
        display_name: &str,
    ) -> Result<Uuid, MemoryError> {
        let answer: Value = self
            .call(
                Method::POST,
                "/v1/identities/resolve",
                Some(json!({"channel": channel, "external_id": external_id, "display_name": display_name})),
            )
            .await?;
        serde_json::from_value(answer["user_id"].clone())
            .map_err(|e| MemoryError::Protocol(e.to_string()))
    }

    /// The user's display name; `Refused { status: 404 }` when there is no such user.
    pub async fn display_name(&self, user: Uuid) -> Result<String, MemoryError> {
        let answer: Value = self
            .call(Method::GET, &format!("/v1/users/{user}"), None)
            .await?;
        Ok(answer["user"]["display_name"]
            .as_str()
            .unwrap_or("")
            .to_owned())
    }

    pub async fn open_session(
        &self,
        user: Uuid,
        agent: &str,
        chat: &str,
    ) -> Result<Session, MemoryError> {
        self.call(
            Method::POST,
            "/v1/sessions/open",
            Some(json!({"user_id": user, "agent_id": agent, "chat": chat})),
        )
        .await
    }

    pub async fn end_session(&self, session: Uuid) -> Result<Session, MemoryError> {
        self.call(Method::POST, &format!("/v1/sessions/{session}/end"), None)
            .await
    }

    /// The last `limit` messages, oldest first.
    pub async fn history(
        &self,
        session: Uuid,
        limit: u32,
    ) -> Result<Vec<StoredMessage>, MemoryError> {
        self.call(
            Method::GET,
            &format!("/v1/sessions/{session}/messages?limit={limit}"),
            None,
        )
        .await
    }

    pub async fn add_message(
        &self,
        session: Uuid,
        message: NewMessage,
    ) -> Result<StoredMessage, MemoryError> {
        let mut body = json!({
            "role": message.role,
            "content": message.content,
            "versions": if message.versions.is_null() { json!({}) } else { message.versions },
        });
        let optional = [
            ("agent_id", message.agent_id.map(Value::from)),
            ("model", message.model.map(Value::from)),
            ("prompt_tokens", message.prompt_tokens.map(Value::from)),
            (
                "completion_tokens",
                message.completion_tokens.map(Value::from),
            ),
            ("trace_id", message.trace_id.map(Value::from)),
            ("tool_calls", message.tool_calls),
            ("tool_call_id", message.tool_call_id.map(Value::from)),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                body[key] = value;
            }
        }
        self.call(
            Method::POST,
            &format!("/v1/sessions/{session}/messages"),
            Some(body),
        )
        .await
    }

    /// The user's current facts.
    pub async fn facts(&self, user: Uuid) -> Result<Vec<Fact>, MemoryError> {
        self.call(Method::GET, &format!("/v1/users/{user}/facts"), None)
            .await
    }

    pub async fn add_fact(
        &self,
        user: Uuid,
        content: &str,
        agent: &str,
        source_message: Option<Uuid>,
    ) -> Result<Fact, MemoryError> {
        self.call(
            Method::POST,
            &format!("/v1/users/{user}/facts"),
            Some(
                json!({"content": content, "agent_id": agent, "source_message_id": source_message}),
            ),
        )
        .await
    }

    /// Stores `subject —relation→ object` in the user's graph (idempotent).
    pub async fn relate(
        &self,
        user: Uuid,
        subject: (&str, &str),
        relation: &str,
        object: (&str, &str),
        source_message: Option<Uuid>,
    ) -> Result<Value, MemoryError> {
        self.call(
            Method::POST,
            "/v1/graph/relations",
            Some(json!({
                "user_id": user,
                "from": {"kind": subject.0, "name": subject.1},
                "relation": relation,
                "to": {"kind": object.0, "name": object.1},
                "source_message_id": source_message,
            })),
        )
        .await
    }

    /// What the user's graph holds around the best match for `name`: `None` when nothing
    /// matches.
    pub async fn explore(&self, user: Uuid, name: &str) -> Result<Option<Value>, MemoryError> {
        let url = reqwest::Url::parse_with_params(
            "http://memory/v1/graph/nodes",
            &[
                ("user_id", user.to_string()),
                ("q", name.to_owned()),
                ("limit", "1".into()),
            ],
        )
        .map_err(|e| MemoryError::Protocol(e.to_string()))?;
        let found: Vec<Value> = self
            .call(
                Method::GET,
                &format!("{}?{}", url.path(), url.query().unwrap_or("")),
                None,
            )
            .await?;
        let Some(id) = found.first().and_then(|n| n["id"].as_str()) else {
            return Ok(None);
        };
        let around: Value = self
            .call(
                Method::GET,
                &format!("/v1/graph/nodes/{id}/neighbourhood?depth=2&limit=50"),
                None,
            )
            .await?;
        Ok(Some(around))
    }

    /// Hybrid search (words and meaning) over the user's messages, facts and document chunks.
    pub async fn search(
        &self,
        user: Uuid,
        query: &str,
        limit: u32,
    ) -> Result<Vec<Hit>, MemoryError> {
        let url = reqwest::Url::parse_with_params(
            "http://memory/v1/search",
            &[
                ("user_id", user.to_string()),
                ("q", query.to_owned()),
                ("limit", limit.to_string()),
            ],
        )
        .map_err(|e| MemoryError::Protocol(e.to_string()))?;
        let path = format!("{}?{}", url.path(), url.query().unwrap_or(""));
        self.call(Method::GET, &path, None).await
    }
}
