//! The crews service in-process in front of a control plane on the real PostgreSQL and NATS
//! (each test its own schema and subject prefix), and the bus as a subscriber sees it.

use std::time::Duration;

use daarion_control_plane::testing::Plane;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub struct Stack {
    pub plane: Plane,
    pub url: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
}

/// Events of one subject pattern, as published (envelope and `traceparent`).
pub struct Events {
    sub: async_nats::Subscriber,
}

impl Events {
    /// The next event of `event_type` (others skipped), within five seconds.
    pub async fn next(&mut self, event_type: &str) -> (Value, Option<String>) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let message = tokio::time::timeout_at(deadline, self.sub.next())
                .await
                .unwrap_or_else(|_| panic!("no {event_type} event within 5 s"))
                .expect("subscription open");
            let envelope: Value = serde_json::from_slice(&message.payload).unwrap();
            if envelope["type"] == event_type {
                let trace = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("traceparent"))
                    .map(|v| v.to_string());
                return (envelope, trace);
            }
        }
    }
}

impl Stack {
    pub async fn start() -> Stack {
        let plane = Plane::start().await;
        let http = reqwest::Client::new();
        let shutdown = CancellationToken::new();
        let mut config = plane.config.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        config.crews.listen = listener.local_addr().unwrap();
        config.crews.budget.max_tokens = 10_000;
        config.crews.budget.max_steps = 40;
        let url = format!("http://{}", config.crews.listen);
        tokio::spawn(daarion_crews::run(config, listener, shutdown.clone()));
        for _ in 0..400 {
            if let Ok(r) = http.get(format!("{url}/ready")).send().await
                && r.status().is_success()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Stack {
            plane,
            url,
            http,
            shutdown,
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.plane.stop().await;
    }

    pub async fn events(&self, pattern: &str) -> Events {
        let bus = &self.plane.bus.bus;
        let sub = bus
            .client()
            .subscribe(bus.naming().subject(pattern))
            .await
            .unwrap();
        bus.client().flush().await.unwrap();
        Events { sub }
    }

    /// One call with `token` (None: no credential): its status and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn root(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let root = self.plane.root.clone();
        self.call(method, path, Some(&root), body).await
    }

    /// As root, expecting a success.
    pub async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.root(method, path, body).await;
        assert!((200..300).contains(&status), "{path}: {status} {body}");
        body
    }

    /// Saves a two-task crew `id` (a researcher, then a writer seeing its output).
    pub async fn crew(&self, id: &str) -> Value {
        self.ok(Method::PUT, &format!("/v1/crews/{id}"), Some(spec(id)))
            .await
    }
}

pub fn spec(id: &str) -> Value {
    json!({
        "id": id,
        "name": "Suppliers",
        "agent": "helper",
        "agents": [
            {"key": "researcher", "role": "Researcher", "goal": "Find facts about {topic}"},
            {"key": "writer", "role": "Writer", "goal": "Write it up", "tools": ["web_search"]}
        ],
        "tasks": [
            {"key": "research", "description": "Research {topic}", "expected_output": "facts", "agent": "researcher"},
            {"key": "write", "description": "Write a report", "agent": "writer", "context": ["research"], "human_input": true}
        ],
        "budget": {"max_steps": 30}
    })
}

/// A claim body for `crew` by `worker`.
pub fn claim(worker: &str, crew: &str, user: uuid::Uuid) -> Value {
    json!({"worker": worker, "lease_secs": 60, "crew": crew, "user_id": user, "agent_id": "helper",
           "inputs": {"topic": "tea"}})
}

pub fn step(worker: &str, key: &str, kind: &str, tokens: u64) -> Value {
    json!({"worker": worker, "key": key, "kind": kind, "task": "research", "agent": "researcher",
           "input": {"messages": ["hi"]}, "output": {"text": format!("out {key}")},
           "usage": {"prompt_tokens": tokens, "completion_tokens": 1, "cost": 0.5},
           "duration_ms": 3})
}
