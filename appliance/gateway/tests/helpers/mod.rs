//! The gateway in-process in front of the router's whole test stack (control plane, memory,
//! router, fake LLM providers, optionally the real swapper), with a local server that speaks
//! the Telegram Bot API in place of Telegram.

#![allow(dead_code)]

#[path = "../../../router/tests/helpers/mod.rs"]
pub mod stack;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};
use stack::Stack;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// One Bot API call as the fake received it.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub body: Value,
    /// The body as sent (multipart for uploads and `setWebhook`).
    pub raw: String,
    pub at: Instant,
}

/// A local Bot API: records every call, answers like Telegram, and refuses with
/// `429 retry_after` on demand.
#[derive(Clone, Default)]
pub struct FakeTelegram {
    pub calls: Arc<Mutex<Vec<Call>>>,
    /// Methods to refuse once each with `retry_after` seconds.
    flood: Arc<Mutex<Vec<(String, u32)>>>,
    next_id: Arc<Mutex<i64>>,
    /// Files by file id, served by getFile and the file download path.
    files: Arc<Mutex<std::collections::HashMap<String, Vec<u8>>>>,
    /// Updates waiting for getUpdates (long polling).
    pending: Arc<Mutex<Vec<Value>>>,
    /// Refuse the next formatted (HTML) message as Telegram does with broken markup.
    pub refuse_html: Arc<std::sync::atomic::AtomicBool>,
}

impl FakeTelegram {
    pub async fn serve(&self) -> String {
        let app = Router::new()
            .route("/{token}/{method}", post(answer))
            .route("/file/{token}/{*path}", axum::routing::get(download))
            .with_state(self.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    /// An update for the bot to fetch with getUpdates.
    pub fn queue_update(&self, update: Value) {
        self.pending.lock().unwrap().push(update);
    }

    /// A file users can send (a voice message); returns its file id.
    pub fn add_file(&self, bytes: Vec<u8>) -> String {
        let id = format!("file-{}", uuid::Uuid::new_v4().simple());
        self.files.lock().unwrap().insert(id.clone(), bytes);
        id
    }

    pub fn flood_once(&self, method: &str, retry_after: u32) {
        self.flood
            .lock()
            .unwrap()
            .push((method.to_owned(), retry_after));
    }

    pub fn calls(&self, method: &str) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// The texts of the messages sent and edited, in order.
    pub fn texts(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.method == "sendMessage" || c.method == "editMessageText")
            .map(|c| c.body["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// What a chat ends up showing: every sent message with its last edit applied.
    pub fn shown(&self, chat: i64) -> Vec<String> {
        let mut shown: Vec<(i64, String)> = Vec::new();
        for c in self.calls.lock().unwrap().iter() {
            if c.body["chat_id"].as_i64() != Some(chat) {
                continue;
            }
            match c.method.as_str() {
                "sendMessage" => shown.push((
                    c.body["__id"].as_i64().unwrap(),
                    c.body["text"].as_str().unwrap().to_owned(),
                )),
                "editMessageText" => {
                    let id = c.body["message_id"].as_i64().unwrap();
                    if let Some(m) = shown.iter_mut().find(|(i, _)| *i == id) {
                        m.1 = c.body["text"].as_str().unwrap().to_owned();
                    }
                }
                _ => {}
            }
        }
        shown.into_iter().map(|(_, t)| t).collect()
    }
}

async fn answer(
    State(fake): State<FakeTelegram>,
    Path((_token, method)): Path<(String, String)>,
    body: Bytes,
) -> impl IntoResponse {
    // Bot API method names are case-insensitive; teloxide sends `SendMessage`.
    let mut chars = method.chars();
    let method: String = chars
        .next()
        .map(|c| c.to_ascii_lowercase())
        .into_iter()
        .chain(chars)
        .collect();
    let raw = String::from_utf8_lossy(&body).into_owned();
    let mut body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    {
        let mut flood = fake.flood.lock().unwrap();
        if let Some(i) = flood.iter().position(|(m, _)| *m == method) {
            let (_, seconds) = flood.remove(i);
            fake.calls.lock().unwrap().push(Call {
                method: format!("{method}:429"),
                body,
                raw,
                at: Instant::now(),
            });
            return (
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                axum::Json(
                    json!({"ok": false, "error_code": 429, "description": format!("Too Many Requests: retry after {seconds}"), "parameters": {"retry_after": seconds}}),
                ),
            );
        }
    }
    if body["parse_mode"] == "HTML"
        && fake
            .refuse_html
            .swap(false, std::sync::atomic::Ordering::SeqCst)
    {
        fake.calls.lock().unwrap().push(Call {
            method: format!("{method}:400"),
            body,
            raw,
            at: Instant::now(),
        });
        return (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"ok": false, "error_code": 400, "description": "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0"}),
            ),
        );
    }
    let chat = body["chat_id"].as_i64().unwrap_or(0);
    let message = |id: i64, text: &Value| {
        json!({"message_id": id, "date": 1_700_000_000, "chat": {"id": chat, "type": "private", "first_name": "U"},
               "from": {"id": 42, "is_bot": true, "first_name": "Test", "username": "test_bot"}, "text": text})
    };
    let result = match method.as_str() {
        "getMe" => json!({"id": 42, "is_bot": true, "first_name": "Test", "username": "test_bot",
                          "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false,
                          "can_connect_to_business": false, "has_main_web_app": false}),
        "sendVoice" | "sendPhoto" => {
            let mut next = fake.next_id.lock().unwrap();
            *next += 1;
            message(*next, &Value::Null)
        }
        "sendMessage" => {
            let mut next = fake.next_id.lock().unwrap();
            *next += 1;
            body["__id"] = json!(*next);
            message(*next, &body["text"])
        }
        "editMessageText" => message(body["message_id"].as_i64().unwrap_or(0), &body["text"]),
        "getUpdates" => {
            let offset = body["offset"].as_i64().unwrap_or(0);
            let ready: Vec<Value> = fake
                .pending
                .lock()
                .unwrap()
                .iter()
                .filter(|u| u["update_id"].as_i64().unwrap_or(0) >= offset)
                .cloned()
                .collect();
            if ready.is_empty() {
                // A short long poll.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            json!(ready)
        }
        "getFile" => {
            let id = body["file_id"].as_str().unwrap_or_default().to_owned();
            let size = fake.files.lock().unwrap().get(&id).map(Vec::len);
            match size {
                Some(size) => {
                    json!({"file_id": id, "file_unique_id": format!("u{id}"), "file_size": size, "file_path": format!("voice/{id}.oga")})
                }
                None => {
                    fake.calls.lock().unwrap().push(Call {
                        method,
                        body,
                        raw,
                        at: Instant::now(),
                    });
                    return (
                        axum::http::StatusCode::BAD_REQUEST,
                        axum::Json(
                            json!({"ok": false, "error_code": 400, "description": "Bad Request: invalid file_id"}),
                        ),
                    );
                }
            }
        }
        _ => json!(true),
    };
    fake.calls.lock().unwrap().push(Call {
        method,
        body,
        raw,
        at: Instant::now(),
    });
    (
        axum::http::StatusCode::OK,
        axum::Json(json!({"ok": true, "result": result})),
    )
}

async fn download(
    State(fake): State<FakeTelegram>,
    Path((_token, path)): Path<(String, String)>,
) -> impl IntoResponse {
    let id = path
        .trim_start_matches("voice/")
        .trim_end_matches(".oga")
        .to_owned();
    match fake.files.lock().unwrap().get(&id) {
        Some(bytes) => (axum::http::StatusCode::OK, bytes.clone()),
        None => (axum::http::StatusCode::NOT_FOUND, Vec::new()),
    }
}

pub struct Gateway {
    pub stack: Stack,
    pub telegram: FakeTelegram,
    pub url: String,
    pub secret: String,
    /// `telegram.mainbot` as configured.
    pub bot: Value,
    /// The configuration the gateway (and ingest, when started) run with.
    pub config: daarion_config::Config,
    pub shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    dir: std::path::PathBuf,
}

/// Who calls the gateway's own API (web chat, pairings).
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    Nobody,
    Bearer(&'a str),
    /// An admin's browser session: its cookie, and the CSRF token it should echo.
    Session {
        cookie: &'a str,
        csrf: Option<&'a str>,
    },
}

/// Fast limits, so tests of ordering and splitting do not wait a second per edit.
pub fn test_limits() -> daarion_gateway::Limits {
    daarion_gateway::Limits {
        private_interval: Duration::from_millis(50),
        group_interval: Duration::from_millis(100),
        global_interval: Duration::from_millis(2),
    }
}

impl Gateway {
    /// The stack, a bot `mainbot` bound to agent `a` (if `agent`), and the gateway.
    pub async fn start(swapper: bool, agent: Option<&str>) -> Gateway {
        Gateway::start_with(swapper, agent, test_limits()).await
    }

    pub async fn start_with(
        swapper: bool,
        agent: Option<&str>,
        limits: daarion_gateway::Limits,
    ) -> Gateway {
        Gateway::start_full(swapper, agent, limits, false).await
    }

    /// With the real ingest service (blobs in a temp directory) and `[ingest]` on, so
    /// documents are kept and their outcomes told.
    pub async fn start_ingest(agent: Option<&str>) -> Gateway {
        Gateway::start_full(false, agent, test_limits(), true).await
    }

    pub async fn start_full(
        swapper: bool,
        agent: Option<&str>,
        limits: daarion_gateway::Limits,
        ingest: bool,
    ) -> Gateway {
        let stack = Stack::start(swapper).await;
        let telegram = FakeTelegram::default();
        let api_url = telegram.serve().await;
        // This gateway's `general.secrets_dir`: its bot's token and webhook secret live here,
        // the only place `file:` references resolve.
        let dir =
            std::env::temp_dir().join(format!("daarion-gw-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = format!("s{}", uuid::Uuid::new_v4().simple());
        for (file, value) in [("token", "123:TESTTOKEN"), ("secret", secret.as_str())] {
            let path = dir.join(file);
            std::fs::write(&path, value).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let mut bot = json!({"token_ref": "file:token",
                             "webhook_secret_ref": "file:secret",
                             "api_url": api_url});
        if let Some(agent) = agent {
            stack
                .agent(agent, &format!("You are {agent}."), None, None)
                .await;
            bot["agent"] = json!(agent);
        }
        stack.config("telegram.mainbot", bot.clone()).await;

        let mut config = stack.plane.config.clone();
        config.memory.listen = stack
            .memory_url
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        config.router.listen = stack
            .router_url
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        config.swapper.listen = stack.swapper;
        config.general.secrets_dir = dir.clone();
        let shutdown = CancellationToken::new();
        // On in the default configuration; these tests choose.
        config.ingest.enabled = ingest;
        if ingest {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            config.ingest.enabled = true;
            config.ingest.listen = listener.local_addr().unwrap();
            config.ingest.blobs.dir = dir.join("blobs");
            let run = daarion_ingest::run(config.clone(), listener, shutdown.clone());
            tokio::spawn(async move { run.await.unwrap() });
            let ingest_url = format!("http://{}", config.ingest.listen);
            for _ in 0..200 {
                if let Ok(r) = stack.http.get(format!("{ingest_url}/ready")).send().await
                    && r.status().is_success()
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        let config_used = config.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut app = daarion_gateway::app(config, limits).await.unwrap();
        app.poll_discovery = Duration::from_millis(200);
        app.poll_timeout = Duration::from_secs(1);
        let serve = daarion_gateway::serve(app, listener, shutdown.clone());
        let task = tokio::spawn(async move { serve.await.unwrap() });
        for _ in 0..200 {
            if let Ok(r) = stack.http.get(format!("{url}/ready")).send().await
                && r.status().is_success()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Gateway {
            stack,
            telegram,
            url,
            secret,
            bot,
            config: config_used,
            shutdown,
            task,
            dir,
        }
    }

    /// Posts an update to the webhook as Telegram would.
    pub async fn post(&self, update: &Value) -> (u16, Value) {
        self.post_raw(serde_json::to_vec(update).unwrap(), Some(&self.secret))
            .await
    }

    pub async fn post_raw(&self, body: Vec<u8>, secret: Option<&str>) -> (u16, Value) {
        let mut request = self
            .stack
            .http
            .post(format!("{}/telegram/mainbot/webhook", self.url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(secret) = secret {
            request = request.header("x-telegram-bot-api-secret-token", secret);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A call to the gateway's own API as `credential`, with a JSON body if given.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        credential: Credential<'_>,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut request = self
            .stack
            .http
            .request(method, format!("{}{path}", self.url));
        match credential {
            Credential::Nobody => {}
            Credential::Bearer(token) => request = request.bearer_auth(token),
            Credential::Session { cookie, csrf } => {
                request = request.header("cookie", cookie);
                if let Some(csrf) = csrf {
                    request = request.header("x-csrf-token", csrf);
                }
            }
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    /// A private text message from user 7 in `chat`, accepted by the webhook.
    pub async fn message(&self, chat: i64, text: &str) {
        let (status, body) = self.post(&text_update(chat, 7, text, false)).await;
        assert_eq!(status, 200, "{text}: {body}");
    }

    /// Waits until one of the messages `chat` shows contains `needle`.
    pub async fn until_shown_containing(&self, chat: i64, needle: &str) {
        self.until(&format!("\"{needle}\" in chat {chat}"), |t| {
            t.shown(chat).iter().any(|m| m.contains(needle))
        })
        .await;
    }

    /// Waits until `cond` holds for the fake's calls (at most 90 s: the tests of this binary run
    /// side by side, several with real models on two cores).
    pub async fn until(&self, what: &str, cond: impl Fn(&FakeTelegram) -> bool) {
        for _ in 0..1800 {
            if cond(&self.telegram) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "timed out waiting for {what}; calls: {:?}",
            self.telegram.calls.lock().unwrap()
        );
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
        let _ = std::fs::remove_dir_all(&self.dir);
        self.stack.stop().await;
    }
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything every test in this binary logs (at debug), from the first call on.
pub fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<Arc<Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    })
    .clone()
}

static NEXT_UPDATE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1000);

/// A Telegram text message update from user `user` in chat `chat`.
pub fn text_update(chat: i64, user: i64, text: &str, group: bool) -> Value {
    let id = NEXT_UPDATE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let chat_json = if group {
        json!({"id": chat, "type": "supergroup", "title": "Team"})
    } else {
        json!({"id": chat, "type": "private", "first_name": "Ann"})
    };
    json!({"update_id": id, "message": {"message_id": id, "date": 1_700_000_000, "chat": chat_json,
           "from": {"id": user, "is_bot": false, "first_name": "Ann", "language_code": "en"}, "text": text}})
}
