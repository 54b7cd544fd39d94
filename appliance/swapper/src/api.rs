//! The OpenAI-compatible API and the swapper's admin routes.

use std::convert::Infallible;
use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::App;
use crate::error::SwapError;
use crate::manifest::Kind;
use crate::metrics::{FIRST_TOKEN, TOKENS, TOKENS_PER_SECOND};
use crate::scheduler::Lease;

/// Root token (everything), or a control-plane API token with `models:use`, or an admin's
/// browser session; admin routes need `admin`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub admin: bool,
}

pub async fn authenticate(
    State(app): State<App>,
    mut request: Request,
    next: Next,
) -> Result<Response, SwapError> {
    let principal = daarion_control_client::identify(
        app.root_token.as_deref(),
        app.introspector.as_ref(),
        request.headers(),
    )
    .await
    .map_err(|e| {
        tracing::warn!(error = %e, "token introspection failed");
        SwapError::AuthUnavailable
    })?
    .ok_or(SwapError::Unauthenticated)?;
    if !principal.has("models:use") {
        return Err(SwapError::Forbidden("models:use"));
    }
    let caller = Caller {
        admin: principal.is_admin(),
    };
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

pub async fn models(State(app): State<App>) -> Json<Value> {
    let data: Vec<Value> = app
        .scheduler
        .manifests()
        .iter()
        .map(|m| json!({"id": m.id, "object": "model", "created": 0, "owned_by": "daarion", "kind": m.kind}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

#[derive(Debug, Deserialize)]
struct ChatMessage {
    role: String,
    content: Value,
}

#[derive(Debug, Deserialize)]
pub struct ChatCompletion {
    model: String,
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<Value>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    temperature: Option<f32>,
    seed: Option<u32>,
    /// llama.cpp's extension: generate exactly `max_tokens`, past end-of-text.
    #[serde(default)]
    ignore_eos: bool,
}

/// The largest image a request may carry, decoded.
pub const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;

/// A message's words and images: OpenAI content is a string, or a list of `text` parts (joined)
/// and `image_url` parts. Images come inline as `data:image/…;base64,…` URLs: the swapper
/// fetches nothing from the network. Each is checked to be base64 of a known image format.
fn content_of(content: &Value) -> Result<(String, Vec<String>), SwapError> {
    match content {
        Value::String(s) => Ok((s.clone(), Vec::new())),
        Value::Null => Ok((String::new(), Vec::new())),
        Value::Array(parts) => {
            let mut text = String::new();
            let mut images = Vec::new();
            for part in parts {
                match part["type"].as_str() {
                    Some("text") => text.push_str(part["text"].as_str().unwrap_or("")),
                    Some("image_url") => {
                        // `{"image_url": {"url": …}}`, or the older bare string.
                        let url = part["image_url"]["url"]
                            .as_str()
                            .or_else(|| part["image_url"].as_str())
                            .ok_or_else(|| {
                                SwapError::BadRequest("an image_url part needs its url".into())
                            })?;
                        images.push(inline_image(url)?);
                    }
                    Some(other) => {
                        return Err(SwapError::BadRequest(format!(
                            "content part `{other}` is not supported (text and image_url are)"
                        )));
                    }
                    None => {
                        return Err(SwapError::BadRequest("content part without a type".into()));
                    }
                }
            }
            Ok((text, images))
        }
        _ => Err(SwapError::BadRequest(
            "message content must be a string or a list of parts".into(),
        )),
    }
}

/// The base64 of an inline image, checked.
fn inline_image(url: &str) -> Result<String, SwapError> {
    use base64::Engine as _;
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(SwapError::BadRequest(
            "images must be inline data: URLs (data:image/png;base64,…); the swapper fetches nothing"
                .into(),
        ));
    };
    let (media, data) = rest
        .split_once(',')
        .ok_or_else(|| SwapError::BadRequest("a data: URL without its data".into()))?;
    if !media.ends_with(";base64") {
        return Err(SwapError::BadRequest(
            "an image data: URL must be base64-encoded".into(),
        ));
    }
    if data.len() > MAX_IMAGE_BYTES / 3 * 4 + 4 {
        return Err(SwapError::BadRequest(format!(
            "an image is larger than {} MiB",
            MAX_IMAGE_BYTES / (1024 * 1024)
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| SwapError::BadRequest(format!("the image is not valid base64: {e}")))?;
    if image_format(&bytes).is_none() {
        return Err(SwapError::BadRequest(
            "the image is not PNG, JPEG, GIF, BMP or WebP".into(),
        ));
    }
    Ok(data.trim().to_owned())
}

/// The format an image's first bytes say it is.
pub fn image_format(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x89, b'P', b'N', b'G', ..] => Some("png"),
        [0xFF, 0xD8, 0xFF, ..] => Some("jpeg"),
        [b'G', b'I', b'F', b'8', ..] => Some("gif"),
        [b'B', b'M', ..] => Some("bmp"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some("webp"),
        _ => None,
    }
}

pub(crate) fn check_kind(app: &App, model: &str, want: Kind) -> Result<(), SwapError> {
    let manifest = app
        .scheduler
        .manifest(model)
        .ok_or_else(|| crate::scheduler::ScheduleError::UnknownModel(model.to_owned()))?;
    if manifest.kind != want {
        let (kind, endpoint) = match manifest.kind {
            Kind::Chat => ("chat", "/v1/chat/completions"),
            Kind::Vision => ("vision", "/v1/chat/completions"),
            Kind::Embedding => ("embedding", "/v1/embeddings"),
            Kind::Stt => ("speech-to-text", "/v1/audio/transcriptions"),
            Kind::Tts => ("text-to-speech", "/v1/audio/speech"),
            Kind::Image => ("image", "/v1/images/generations"),
        };
        return Err(SwapError::WrongKind {
            model: model.to_owned(),
            kind,
            endpoint,
        });
    }
    Ok(())
}

/// Cancels the generation when the client goes away before it ended.
struct CancelOnDrop {
    lease: Option<Lease>,
    id: u64,
    finished: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.finished
            && let Some(lease) = self.lease.take()
        {
            let id = self.id;
            tokio::spawn(async move {
                lease.worker.cancel(id).await;
                drop(lease);
            });
        }
    }
}

/// Holds `model` for one request whose answer is a single `expected` event (anything else is
/// the worker's error), and lets the model go as soon as it has answered.
pub(crate) async fn ask_once(
    app: &App,
    model: &str,
    request: Value,
    expected: &str,
) -> Result<Value, SwapError> {
    let lease = app.scheduler.acquire(model).await?;
    let (_, mut events) = lease
        .worker
        .request(request)
        .await
        .map_err(SwapError::WorkerFailed)?;
    let event = events
        .recv()
        .await
        .ok_or_else(|| SwapError::WorkerFailed("the worker went away".into()))?;
    drop(lease);
    if event["event"] != expected {
        return Err(worker_error(&event));
    }
    Ok(event)
}

pub(crate) fn worker_error(event: &Value) -> SwapError {
    let message = event["message"]
        .as_str()
        .unwrap_or("the worker failed")
        .to_owned();
    match event["code"].as_str() {
        Some("context_length_exceeded") => SwapError::ContextLength(message),
        Some("bad_request" | "template") => SwapError::BadRequest(message),
        Some("bad_audio") => {
            SwapError::BadRequest(format!("unsupported or damaged audio: {message}"))
        }
        Some("bad_image" | "no_vision") => SwapError::BadRequest(message),
        _ => SwapError::WorkerFailed(message),
    }
}

pub async fn chat_completions(
    State(app): State<App>,
    Json(body): Json<ChatCompletion>,
) -> Result<Response, SwapError> {
    if body.messages.is_empty() {
        return Err(SwapError::BadRequest("messages must not be empty".into()));
    }
    let mut messages = Vec::with_capacity(body.messages.len());
    let mut images = 0;
    for m in &body.messages {
        if !["system", "user", "assistant", "tool"].contains(&m.role.as_str()) {
            return Err(SwapError::BadRequest(format!("unknown role `{}`", m.role)));
        }
        let (text, pictures) = content_of(&m.content)?;
        images += pictures.len();
        messages.push(json!({"role": m.role, "content": text, "images": pictures}));
    }
    // A vision model chats too; a chat model is told plainly that it cannot see.
    let sees = app
        .scheduler
        .manifest(&body.model)
        .is_some_and(|m| m.sees());
    if !sees {
        check_kind(&app, &body.model, Kind::Chat)?;
    }
    if images > 0 && !sees {
        return Err(SwapError::BadRequest(format!(
            "model `{}` cannot see images; send them to a vision model (kind = \"vision\")",
            body.model
        )));
    }
    let max_tokens = body
        .max_completion_tokens
        .or(body.max_tokens)
        .unwrap_or(256);
    let lease = app.scheduler.acquire(&body.model).await?;
    let sent = Instant::now();
    let (id, mut events) = lease
        .worker
        .request(json!({
            "op": "chat", "messages": messages, "max_tokens": max_tokens,
            "temperature": body.temperature.unwrap_or(0.0), "seed": body.seed.unwrap_or(0),
            "ignore_eos": body.ignore_eos,
        }))
        .await
        .map_err(SwapError::WorkerFailed)?;
    // The first event tells a bad request (answered as JSON) from a started answer.
    let first = events
        .recv()
        .await
        .ok_or_else(|| SwapError::WorkerFailed("the worker went away".into()))?;
    if first["event"] == "error" {
        return Err(worker_error(&first));
    }
    FIRST_TOKEN
        .with_label_values(&[&body.model])
        .observe(sent.elapsed().as_secs_f64());
    let completion_id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = time::OffsetDateTime::now_utc().unix_timestamp();
    let model = body.model.clone();

    if !body.stream {
        let mut text = String::new();
        let mut event = first;
        let _guard = lease;
        loop {
            match event["event"].as_str() {
                Some("token") => text.push_str(event["text"].as_str().unwrap_or("")),
                Some("done") => {
                    let usage = usage_of(&body.model, &event);
                    return Ok(Json(json!({
                        "id": completion_id, "object": "chat.completion", "created": created, "model": body.model,
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": event["finish_reason"]}],
                        "usage": usage,
                    }))
                    .into_response());
                }
                _ => return Err(worker_error(&event)),
            }
            event = events
                .recv()
                .await
                .ok_or_else(|| SwapError::WorkerFailed("the worker went away".into()))?;
        }
    }

    let include_usage = body
        .stream_options
        .as_ref()
        .is_some_and(|o| o["include_usage"] == true);
    let chunk_model = model.clone();
    let chunk = move |delta: Value, finish: Value| {
        json!({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": chunk_model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let state = Some((
        events,
        Some(first),
        CancelOnDrop {
            lease: Some(lease),
            id,
            finished: false,
        },
        true,
    ));
    let sse = futures::stream::unfold(state, move |state| {
        let chunk = chunk.clone();
        let model = model.clone();
        async move {
            let (mut events, pending, mut guard, first_chunk) = state?;
            let event = match pending {
                Some(e) => Some(e),
                None => events.recv().await,
            };
            let Some(event) = event else {
                guard.finished = true;
                return None;
            };
            let mut out = String::new();
            if first_chunk {
                out.push_str(&format!(
                    "data: {}\n\n",
                    chunk(json!({"role": "assistant", "content": ""}), Value::Null)
                ));
            }
            match event["event"].as_str() {
                Some("token") => {
                    out.push_str(&format!(
                        "data: {}\n\n",
                        chunk(json!({"content": event["text"]}), Value::Null)
                    ));
                    Some((
                        Ok::<_, Infallible>(Bytes::from(out)),
                        Some((events, None, guard, false)),
                    ))
                }
                Some("done") => {
                    guard.finished = true;
                    out.push_str(&format!(
                        "data: {}\n\n",
                        chunk(json!({}), event["finish_reason"].clone())
                    ));
                    let usage = usage_of(&model, &event);
                    if include_usage {
                        let mut last = chunk(json!({}), Value::Null);
                        last["choices"] = json!([]);
                        last["usage"] = usage;
                        out.push_str(&format!("data: {last}\n\n"));
                    }
                    out.push_str("data: [DONE]\n\n");
                    drop(guard);
                    Some((Ok(Bytes::from(out)), None))
                }
                _ => {
                    guard.finished = true;
                    let error = worker_error(&event).to_string();
                    out.push_str(&format!(
                        "data: {}\n\n",
                        json!({"error": {"message": error, "type": "server_error", "code": event["code"]}})
                    ));
                    drop(guard);
                    Some((Ok(Bytes::from(out)), None))
                }
            }
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(sse),
    )
        .into_response())
}

/// The OpenAI usage object of a finished generation, counted in the token metrics.
fn usage_of(model: &str, done: &Value) -> Value {
    let prompt = done["prompt_tokens"].as_u64().unwrap_or(0);
    let completion = done["completion_tokens"].as_u64().unwrap_or(0);
    TOKENS.with_label_values(&[model, "prompt"]).inc_by(prompt);
    let generation_ms = done["generation_ms"].as_f64().unwrap_or(0.0);
    if completion > 0 && generation_ms > 0.0 {
        TOKENS_PER_SECOND
            .with_label_values(&[model])
            .observe(completion as f64 / (generation_ms / 1000.0));
    }
    TOKENS
        .with_label_values(&[model, "completion"])
        .inc_by(completion);
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

#[derive(Debug, Deserialize)]
pub struct Embeddings {
    model: String,
    input: Value,
}

pub async fn embeddings(
    State(app): State<App>,
    Json(body): Json<Embeddings>,
) -> Result<Json<Value>, SwapError> {
    let inputs: Vec<String> = match &body.input {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                SwapError::BadRequest("input must be a string or a list of strings".into())
            })?,
        _ => {
            return Err(SwapError::BadRequest(
                "input must be a string or a non-empty list of strings".into(),
            ));
        }
    };
    if inputs.len() > 256 {
        return Err(SwapError::BadRequest(
            "at most 256 inputs per request".into(),
        ));
    }
    check_kind(&app, &body.model, Kind::Embedding)?;
    let event = ask_once(
        &app,
        &body.model,
        json!({"op": "embed", "input": inputs}),
        "embeddings",
    )
    .await?;
    let tokens = event["prompt_tokens"].as_u64().unwrap_or(0);
    TOKENS
        .with_label_values(&[&body.model, "prompt"])
        .inc_by(tokens);
    let data: Vec<Value> = event["data"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(index, vector)| json!({"object": "embedding", "index": index, "embedding": vector}))
        .collect();
    Ok(Json(json!({
        "object": "list", "data": data, "model": body.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })))
}

pub async fn status(State(app): State<App>) -> Json<Value> {
    let models_dir = &app.config.general.models_dir;
    let present: serde_json::Map<String, Value> = app
        .scheduler
        .manifests()
        .iter()
        // Present means ready to load: a vision model's projector and an image model's
        // parts too; an online voice needs nothing on disk.
        .map(|m| {
            let present = m.files(models_dir).iter().all(|f| f.path.is_file());
            (m.id.clone(), Value::Bool(present))
        })
        .collect();
    Json(json!({
        "budget_bytes": app.scheduler.budget,
        "budget_source": app.budget.source,
        "models": app.scheduler.status(),
        "files_present": present,
        "pulls": app.pulls.snapshot(),
    }))
}

/// `POST /v1/swapper/models/{id}/{load|unload|pin|unpin|pull}` (admin); a pull runs in the
/// background, its progress in `status`.
pub async fn admin(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((model, action)): Path<(String, String)>,
) -> Result<Json<Value>, SwapError> {
    if !caller.admin {
        return Err(SwapError::Forbidden("admin"));
    }
    match action.as_str() {
        "load" => drop(app.scheduler.acquire(&model).await?),
        "unload" => {
            app.scheduler.unload(&model, "operator").await?;
        }
        "pin" => app.scheduler.set_pinned(&model, true)?,
        "unpin" => app.scheduler.set_pinned(&model, false)?,
        "pull" => {
            let manifest = app
                .scheduler
                .manifest(&model)
                .ok_or_else(|| crate::scheduler::ScheduleError::UnknownModel(model.clone()))?;
            if manifest.url.is_none() {
                return Err(SwapError::BadRequest(format!(
                    "model `{model}` has no url in its manifest"
                )));
            }
            let started = app
                .pulls
                .start(manifest, app.config.general.models_dir.clone());
            let done = if started {
                "pull started"
            } else {
                "pull already running"
            };
            return Ok(Json(json!({"model": model, "done": done})));
        }
        other => {
            return Err(SwapError::BadRequest(format!(
                "unknown action `{other}`: load, unload, pin, unpin or pull"
            )));
        }
    }
    Ok(Json(json!({"model": model, "done": action})))
}
