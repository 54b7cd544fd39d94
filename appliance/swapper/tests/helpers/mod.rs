//! A swapper in-process over the real llama.cpp worker and the real test models.

use std::path::PathBuf;

pub mod edge;

pub use daarion_swapper::testing::test_models;
use std::time::Duration;

use daarion_swapper::testing::ConfigBuilder;
use daarion_swapper_client::SwapperClient;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Polls `check` until it gives a value (every 50 ms, for up to 30 s), and returns it.
pub async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    check: impl Fn() -> F,
) -> T {
    for _ in 0..600 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

pub struct Swapper {
    pub url: String,
    pub root: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), daarion_swapper::StartError>>,
    http: reqwest::Client,
}

/// A directory of manifests for the test models, shared by the swappers of one test.
pub fn workspace() -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("daarion-swapper-{}", uuid::Uuid::new_v4().simple()));
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    for (id, kind, file, ctx) in [
        ("smollm2", "chat", "smollm2-135m-instruct-q4_1.gguf", 1024),
        ("tiny", "chat", "tiny-random-llama.gguf", 512),
        ("minilm", "embedding", "all-minilm-l6-v2-f16.gguf", 512),
        ("whisper", "stt", "ggml-tiny.en.bin", 0),
    ] {
        std::fs::write(
            manifests.join(format!("{id}.toml")),
            format!("id = \"{id}\"\nkind = \"{kind}\"\nfile = \"{file}\"\ncontext = {ctx}\nestimate_mb = 300\nidle_ttl_secs = 3600\n"),
        )
        .unwrap();
    }
    std::fs::write(
        manifests.join("espeak.toml"),
        "id = \"espeak\"\nkind = \"tts\"\nfile = \"/usr/bin/espeak-ng\"\nvoice = \"en-us\"\nestimate_mb = 20\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("admin.token"),
        format!("root-{}\n", uuid::Uuid::new_v4().simple()),
    )
    .unwrap();
    dir
}

impl Swapper {
    pub async fn start(dir: &std::path::Path, budget_mb: u64) -> Swapper {
        // `models.threads` stays the shipped 0 ("all cores"): the workers' own default runs.
        let mut config = ConfigBuilder::new(&daarion_config::Config::defaults(), dir)
            .budget_mb(budget_mb)
            .every_worker()
            .build();
        config.supervisor.admin_token_file = dir.join("admin.token");
        Swapper::serve(config).await
    }

    /// A swapper on `config` (its admin token file written), answering `/health`.
    pub async fn serve(config: daarion_config::Config) -> Swapper {
        let root = config.supervisor.root_token().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(daarion_swapper::run(config, listener, shutdown.clone()));
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if http.get(format!("{url}/health")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Swapper {
            url,
            root,
            shutdown,
            task,
            http,
        }
    }

    /// The swapper as the other services call it.
    pub fn client(&self) -> SwapperClient {
        SwapperClient::new(&self.url, Some(self.root.clone()))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.root)
    }

    pub async fn json(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.post(path).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn status(&self) -> Value {
        self.http
            .get(format!("{}/v1/swapper/status", self.url))
            .bearer_auth(&self.root)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn model(&self, id: &str) -> Value {
        let status = self.status().await;
        status["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
            .unwrap()
    }

    pub async fn loaded(&self) -> Vec<String> {
        let status = self.status().await;
        status["models"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["state"] == "loaded")
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    }

    pub async fn ask(&self, model: &str, question: &str, max_tokens: u32) -> (u16, Value) {
        self.json(
            "/v1/chat/completions",
            json!({"model": model, "messages": [{"role": "user", "content": question}], "max_tokens": max_tokens}),
        )
        .await
    }

    /// Opens a streamed answer; the response's byte stream yields SSE frames.
    pub async fn stream(&self, model: &str, question: &str, max_tokens: u32) -> reqwest::Response {
        let r = self
            .post("/v1/chat/completions")
            .json(&json!({"model": model, "messages": [{"role": "user", "content": question}],
                          "max_tokens": max_tokens, "stream": true, "stream_options": {"include_usage": true}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// Reads SSE frames until `[DONE]` or the end: (content, data frames).
pub async fn drain(response: reqwest::Response) -> (String, Vec<Value>) {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut frames = Vec::new();
    let mut text = String::new();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { break };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let data = frame.trim().trim_start_matches("data:").trim().to_owned();
            if data == "[DONE]" {
                return (text, frames);
            }
            if let Ok(v) = serde_json::from_str::<Value>(&data) {
                if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
                    text.push_str(t);
                }
                frames.push(v);
            }
        }
    }
    (text, frames)
}
