//! The memory service in-process, with a real control plane for token checks, on the real
//! PostgreSQL, Redis and NATS; requests to it as one caller or another, and their answers.

use std::time::Duration;

use daarion_control_plane::testing::Plane;
use daarion_memory_client::{IndexStatus, MemoryClient, Resolved};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub struct Memory {
    pub plane: Plane,
    pub url: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), daarion_memory::ServiceError>>,
    pub http: reqwest::Client,
    /// Where its vectors are: the embedded engine, or a Qdrant server in that test binary.
    pub vectors: super::vectors::Vectors,
}

/// An answer: its status and its body (JSON, or the text as a JSON string).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The body, once the status is `status` (the body tells why when it is not).
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        self.body
    }

    /// The body read as the contract's type `T`, once the status is `status`.
    #[track_caller]
    pub fn expect_as<T: serde::de::DeserializeOwned>(self, status: u16) -> T {
        let body = self.expect(status);
        serde_json::from_value(body.clone())
            .unwrap_or_else(|e| panic!("not the contract's shape ({e}): {body}"))
    }
}

/// Requests as one caller: a credential (or none) and, optionally, the user it acts for.
pub struct Caller<'a> {
    memory: &'a Memory,
    token: Option<String>,
    acting_for: Option<String>,
}

impl Caller<'_> {
    /// The same caller confined to `user` (`X-Daarion-Acting-For`).
    pub fn acting_for(mut self, user: &str) -> Self {
        self.acting_for = Some(user.to_owned());
        self
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self
            .memory
            .http
            .request(method, format!("{}{path}", self.memory.url));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(user) = &self.acting_for {
            request = request.header("x-daarion-acting-for", user);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    /// `body`: a JSON value, or `None` for a request without one.
    pub async fn post(&self, path: &str, body: impl Into<Option<Value>>) -> Answer {
        self.send(Method::POST, path, body.into()).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(Method::DELETE, path, None).await
    }
}

impl Memory {
    pub async fn start() -> Memory {
        Memory::start_with(|_| {}).await
    }

    /// With a change to the memory service's configuration.
    pub async fn start_with(change: impl FnOnce(&mut daarion_config::Config)) -> Memory {
        let plane = Plane::start().await;
        let vectors = super::vectors::Vectors::new().await;
        let mut config = plane.config.clone();
        vectors.configure(&mut config);
        change(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(daarion_memory::run(config, listener, shutdown.clone()));
        let http = reqwest::Client::new();
        for _ in 0..400 {
            if let Ok(r) = http.get(format!("{url}/ready")).send().await
                && r.status().is_success()
            {
                break;
            }
            if task.is_finished() {
                panic!("memory did not start: {:?}", task.await.unwrap());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Memory {
            plane,
            url,
            shutdown,
            task,
            http,
            vectors,
        }
    }

    /// The appliance's root token.
    pub fn root(&self) -> Caller<'_> {
        self.with_token(&self.plane.root)
    }

    /// No credential at all.
    pub fn anonymous(&self) -> Caller<'_> {
        Caller {
            memory: self,
            token: None,
            acting_for: None,
        }
    }

    pub fn with_token(&self, token: &str) -> Caller<'_> {
        Caller {
            memory: self,
            token: Some(token.to_owned()),
            acting_for: None,
        }
    }

    /// An API token with `scopes`, minted by the control plane.
    pub async fn token(&self, scopes: &[&str]) -> String {
        self.plane.token(scopes).await
    }

    /// The memory client callers link, with the root token.
    pub fn client(&self) -> MemoryClient {
        MemoryClient::new(&self.url, &self.plane.root)
    }

    /// The user of a Telegram identity (`external_id` is also the display name).
    pub async fn user(&self, external_id: &str) -> String {
        let resolved: Resolved = self
            .root()
            .post(
                "/v1/identities/resolve",
                json!({"channel": "telegram", "external_id": external_id, "display_name": external_id}),
            )
            .await
            .expect_as(200);
        resolved.user_id.to_string()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        self.plane.count(sql).await
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
        self.vectors.clean().await;
        self.plane.stop().await;
    }

    /// Stops the memory service and starts it again on the same database, bus and data
    /// directory, with `change` made to its configuration.
    pub async fn restart_with(&mut self, change: impl FnOnce(&mut daarion_config::Config)) {
        self.shutdown.cancel();
        (&mut self.task).await.unwrap().unwrap();
        let mut config = self.plane.config.clone();
        self.vectors.configure(&mut config);
        change(&mut config);
        let listener = TcpListener::bind(self.url.trim_start_matches("http://"))
            .await
            .unwrap();
        self.shutdown = CancellationToken::new();
        self.task = tokio::spawn(daarion_memory::run(config, listener, self.shutdown.clone()));
        for _ in 0..200 {
            if let Ok(r) = self.http.get(format!("{}/ready", self.url)).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("memory did not come back");
    }

    /// Polls `GET /v1/index/status` until `done` holds for it.
    pub async fn index_until(
        &self,
        what: &str,
        done: impl Fn(&IndexStatus) -> bool,
    ) -> IndexStatus {
        let mut last = Value::Null;
        for _ in 0..600 {
            let body = self.root().get("/v1/index/status").await.expect(200);
            let status: IndexStatus = serde_json::from_value(body.clone())
                .unwrap_or_else(|e| panic!("not an index status ({e}): {body}"));
            if done(&status) {
                return status;
            }
            last = body;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("index never reached: {what}; last status {last}");
    }

    /// Polls `GET path` as root (each answer a 200) until `done` holds for its body.
    pub async fn poll_until(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let mut body = Value::Null;
        for _ in 0..100 {
            body = self.root().get(path).await.expect(200);
            if done(&body) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        body
    }
}

/// A swapper serving MiniLM embeddings with the real llama.cpp worker, on `listener`.
pub async fn embeddings_on(
    config: &daarion_config::Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let dir = config
        .general
        .data_dir
        .join(format!("swapper-{}", listener.local_addr().unwrap().port()));
    let config = daarion_swapper::testing::config(
        config,
        &dir,
        &[("minilm", "embedding", "all-minilm-l6-v2-f16.gguf", 512)],
    );
    tokio::spawn(async move {
        daarion_swapper::run(config, listener, shutdown)
            .await
            .unwrap();
    })
}

/// A memory service whose embeddings come from a real swapper with MiniLM; the swapper stops
/// when the returned token is cancelled.
pub async fn with_embeddings() -> (Memory, CancellationToken, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let memory = Memory::start_with(|c| {
        c.swapper.listen = addr;
        c.models.embedding_model = "minilm".into();
    })
    .await;
    let stop = CancellationToken::new();
    let swapper = embeddings_on(&memory.plane.config, listener, stop.clone()).await;
    (memory, stop, swapper)
}

/// The ids in a JSON array of objects, in order.
pub fn ids(list: &Value) -> Vec<&str> {
    strings(list, "id")
}

/// One string field of each object in a JSON array, in order.
pub fn strings<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|item| item[field].as_str().unwrap())
        .collect()
}
