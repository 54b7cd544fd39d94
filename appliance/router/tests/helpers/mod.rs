//! A whole data plane in-process for the router: the real control plane and memory service on
//! the real PostgreSQL, Redis and NATS (each test on its own schema, key prefix and bus prefix),
//! local servers speaking the OpenAI and Ollama wire protocols for cloud providers, and, where a
//! test asks, the real swapper with SmolLM2 and whisper tiny.en.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use daarion_control_plane::testing::Plane;
use daarion_llm::RetryPolicy;
use daarion_llm::testing::Fake;
use daarion_swapper::testing::ConfigBuilder;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub struct Stack {
    pub plane: Plane,
    pub memory_url: String,
    pub router_url: String,
    /// Where the swapper listens (nothing listens there without one).
    pub swapper: std::net::SocketAddr,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    swapper_dir: Option<PathBuf>,
    /// This stack's `general.secrets_dir`: `file:` key references resolve here only.
    pub secrets_dir: PathBuf,
}

async fn wait_ready(http: &reqwest::Client, url: &str) {
    for _ in 0..400 {
        if let Ok(r) = http.get(format!("{url}/ready")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{url} did not become ready");
}

impl Stack {
    /// Control plane, memory and router; with `swapper`, the real swapper with SmolLM2 as the
    /// `local` provider.
    pub async fn start(swapper: bool) -> Stack {
        let plane = Plane::start().await;
        let http = reqwest::Client::new();
        let shutdown = CancellationToken::new();
        let mut config = plane.config.clone();
        let mut tasks = Vec::new();
        let secrets_dir =
            std::env::temp_dir().join(format!("daarion-secrets-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&secrets_dir).unwrap();
        config.general.secrets_dir = secrets_dir.clone();

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        config.memory.listen = listener.local_addr().unwrap();
        let memory_url = format!("http://{}", config.memory.listen);
        let memory = daarion_memory::run(config.clone(), listener, shutdown.clone());
        tasks.push(tokio::spawn(async move {
            memory.await.unwrap();
        }));
        wait_ready(&http, &memory_url).await;

        let mut swapper_dir = None;
        if swapper {
            let dir = std::env::temp_dir()
                .join(format!("daarion-router-{}", uuid::Uuid::new_v4().simple()));
            let fixture = |name: &str| {
                daarion_swapper::testing::fixture(name)
                    .display()
                    .to_string()
            };
            let sc = ConfigBuilder::new(&config, &dir)
                .model("smollm2", "chat", "smollm2-135m-instruct-q4_1.gguf", 2048)
                .manifest(
                    "whisper",
                    "id = \"whisper-tiny-en\"\nkind = \"stt\"\nfile = \"ggml-tiny.en.bin\"\nestimate_mb = 150\nidle_ttl_secs = 3600\n",
                )
                // SmolLM2 with a random-weight projector: it reads images (as noise) and answers
                // in words, which is what the gateway's photo path needs.
                .manifest(
                    "eyes",
                    &format!(
                        "id = \"eyes\"\nkind = \"vision\"\nfile = \"smollm2-135m-instruct-q4_1.gguf\"\nmmproj = \"{}\"\ncontext = 1024\nestimate_mb = 300\nidle_ttl_secs = 3600\n",
                        fixture("tiny-random-mmproj-smollm2.gguf")
                    ),
                )
                // A tiny random SD 1.x model (pictures of noise, made for real), and an image
                // model whose file was never downloaded: drawing with it fails cleanly.
                .manifest(
                    "sketch",
                    &format!(
                        "id = \"sketch\"\nkind = \"image\"\nfile = \"{}\"\nestimate_mb = 400\n[image]\nsteps = 1\ncfg_scale = 1.0\nwidth = 64\nheight = 64\n",
                        fixture("tiny-random-sd1.safetensors")
                    ),
                )
                .manifest(
                    "paint",
                    "id = \"paint\"\nkind = \"image\"\nfile = \"no-such-flux.gguf\"\nestimate_mb = 100\n",
                )
                .manifest(
                    "espeak",
                    "id = \"espeak-en\"\nkind = \"tts\"\nfile = \"/usr/bin/espeak-ng\"\nvoice = \"en-us\"\nestimate_mb = 20\n",
                )
                .every_worker()
                .build();
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            config.swapper.listen = listener.local_addr().unwrap();
            let run = daarion_swapper::run(sc, listener, shutdown.clone());
            tasks.push(tokio::spawn(async move {
                run.await.unwrap();
            }));
            wait_ready(&http, &format!("http://{}", config.swapper.listen)).await;
            swapper_dir = Some(dir);
        } else {
            // Nothing listens there: a `local/…` link fails to connect.
            config.swapper.listen = "127.0.0.1:9".parse().unwrap();
        }

        let swapper_addr = config.swapper.listen;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        config.router.listen = listener.local_addr().unwrap();
        let router_url = format!("http://{}", config.router.listen);
        let retry = RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(2),
        };
        let app = daarion_router::app(config, retry).await.unwrap();
        let serve = daarion_router::serve(app, listener, shutdown.clone());
        tasks.push(tokio::spawn(async move {
            serve.await.unwrap();
        }));
        wait_ready(&http, &router_url).await;
        Stack {
            plane,
            memory_url,
            router_url,
            swapper: swapper_addr,
            http,
            shutdown,
            tasks,
            swapper_dir,
            secrets_dir,
        }
    }

    /// A control-plane write that must succeed.
    pub async fn control(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let (status, answer) = self
            .plane
            .call(method, path, Some(&self.plane.root.clone()), Some(body))
            .await;
        assert!((200..300).contains(&status), "{path}: {status} {answer}");
        answer
    }

    /// An agent with a prompt, optional settings (`agents.<id>`), and a policy letting every
    /// guest use it with every model and tool unless `policy` says otherwise.
    pub async fn agent(
        &self,
        id: &str,
        prompt: &str,
        settings: Option<Value>,
        policy: Option<Value>,
    ) {
        use reqwest::Method;
        self.control(
            Method::POST,
            "/agents",
            json!({"id": id, "name": format!("Agent {id}"), "default_model": "fake/m"}),
        )
        .await;
        self.control(
            Method::POST,
            &format!("/prompts/{id}"),
            json!({"content": prompt}),
        )
        .await;
        let document = policy.unwrap_or_else(|| {
            json!({"roles": {"guest": {"use": true, "models": {"allow": ["*"]}, "tools": {"allow": ["*"]}, "modes": {"allow": ["*"]}}}})
        });
        self.control(
            Method::PUT,
            &format!("/policy/{id}"),
            json!({"document": document}),
        )
        .await;
        if let Some(settings) = settings {
            self.config(&format!("agents.{id}"), settings).await;
        }
    }

    pub async fn config(&self, key: &str, value: Value) {
        self.control(
            reqwest::Method::PUT,
            &format!("/config/{key}"),
            json!({"value": value}),
        )
        .await;
    }

    /// `providers.<name>` pointing at a fake server's OpenAI (`openai`) or Ollama API.
    pub async fn provider(&self, name: &str, kind: &str, addr: SocketAddr) {
        let base = if kind == "openai" {
            format!("http://{addr}/v1")
        } else {
            format!("http://{addr}")
        };
        self.config(
            &format!("providers.{name}"),
            json!({"kind": kind, "base_url": base, "timeout_secs": 2,
                   "prices": {"m": {"input_per_million": 1000.0, "output_per_million": 2000.0}}}),
        )
        .await;
    }

    /// A fake OpenAI-compatible provider named `fake`.
    pub async fn fake(&self) -> Fake {
        let fake = Fake::default();
        let addr = fake.serve().await;
        self.provider("fake", "openai", addr).await;
        fake
    }

    /// The DAARION user behind a Telegram id (created now if new).
    pub async fn user(&self, external_id: &str) -> String {
        let (status, body) = self
            .memory(
                reqwest::Method::POST,
                "/v1/identities/resolve",
                Some(json!({"channel": "telegram", "external_id": external_id})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["user_id"].as_str().unwrap().to_owned()
    }

    pub async fn memory(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.memory_url))
            .bearer_auth(&self.plane.root);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A Telegram-style private message from `external_id` for agent `a`.
    pub fn message(external_id: &str, text: &str) -> Value {
        json!({"channel": "telegram", "bot": "mainbot", "chat_id": format!("chat-{external_id}"),
               "user": {"external_id": external_id, "display_name": "Ann"}, "text": text,
               "agent": "a"})
    }

    /// The same without a chosen agent: the routing table decides.
    pub fn unrouted(external_id: &str, text: &str) -> Value {
        let mut message = Stack::message(external_id, text);
        message.as_object_mut().unwrap().remove("agent");
        message
    }

    /// Posts to `/v1/route` with `token`; the status and, for 200, every event as (name, data).
    pub async fn route_as(&self, token: &str, body: &Value) -> (u16, Vec<(String, Value)>) {
        let response = self
            .http
            .post(format!("{}/v1/route", self.router_url))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if status != 200 {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            return (status, vec![("http_error".into(), body)]);
        }
        let mut events = Vec::new();
        let mut buffer = String::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(n) = line.strip_prefix("event:") {
                        name = n.trim().to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                if !data.is_empty() {
                    events.push((
                        name,
                        serde_json::from_str(&data).unwrap_or(Value::String(data)),
                    ));
                }
            }
        }
        (status, events)
    }

    /// `POST /v1/chat/completions` with `token` (none: no credential at all).
    pub async fn completions(&self, token: Option<&str>, body: &Value) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/v1/chat/completions", self.router_url))
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// The typed client the gateway uses, with the root token.
    pub fn router_client(&self) -> daarion_router_client::RouterClient {
        daarion_router_client::RouterClient::new(
            self.router_url.clone(),
            Some(self.plane.root.clone()),
        )
    }

    pub async fn route(&self, body: &Value) -> Vec<(String, Value)> {
        let root = self.plane.root.clone();
        let (status, events) = self.route_as(&root, body).await;
        assert_eq!(status, 200, "{events:?}");
        events
    }

    /// The stored messages of a session, oldest first.
    pub async fn session_messages(&self, session: &str) -> Vec<Value> {
        let (status, body) = self
            .memory(
                reqwest::Method::GET,
                &format!("/v1/sessions/{session}/messages?limit=500"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body.as_array().unwrap().clone()
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
        }
        if let Some(dir) = self.swapper_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        let _ = std::fs::remove_dir_all(&self.secrets_dir);
        self.plane.stop().await;
    }
}

/// The event named `name`, which must be there.
pub fn event<'a>(events: &'a [(String, Value)], name: &str) -> &'a Value {
    &events
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} event in {events:?}"))
        .1
}

pub fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

/// Every event named `name`, in order.
pub fn all<'a>(events: &'a [(String, Value)], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, data)| data)
        .collect()
}

/// The session a turn ran in, from its `start` event.
pub fn session_of(events: &[(String, Value)]) -> String {
    event(events, "start")["session_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The user a turn was for, from its `start` event.
pub fn user_of(events: &[(String, Value)]) -> String {
    event(events, "start")["user_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The roles of messages (stored, or in a model request), in order.
pub fn roles(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_owned())
        .collect()
}

/// The streamed text of a turn.
pub fn text(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(n, _)| n == "token")
        .map(|(_, d)| d["text"].as_str().unwrap_or_default())
        .collect()
}
