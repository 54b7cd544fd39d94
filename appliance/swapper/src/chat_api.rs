//! `POST /v1/chat/completions` on the chat and vision models: a whole answer, or the answer
//! streamed token by token as server-sent events.

use std::convert::Infallible;
use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use daarion_swapper_client::chat::{
    AssistantMessage, CHAT_COMPLETION, CHAT_COMPLETION_CHUNK, ChatCompletion, ChatCompletionChunk,
    ChatRequest, Choice, ChunkChoice, Delta, StreamError, StreamErrorBody, Usage,
};
use daarion_worker_io::{Chat, ChatMessage, Event, Request};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::App;
use crate::api::{check_kind, worker_error};
use crate::chat_content::content_of;
use crate::error::SwapError;
use crate::manifest::Kind;
use crate::metrics::{FIRST_TOKEN, TOKENS, TOKENS_PER_SECOND};
use crate::scheduler::Lease;
use daarion_worker_io::image_header::MAX_IMAGES_PER_REQUEST;

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

/// The worker's chat request: roles checked, each message's words and images taken apart.
fn worker_chat(body: &ChatRequest<Value>) -> Result<(Chat, usize), SwapError> {
    if body.messages.is_empty() {
        return Err(SwapError::BadRequest("messages must not be empty".into()));
    }
    let mut messages = Vec::with_capacity(body.messages.len());
    let mut images = 0;
    for m in &body.messages {
        if !["system", "user", "assistant", "tool"].contains(&m.role.as_str()) {
            return Err(SwapError::BadRequest(format!("unknown role `{}`", m.role)));
        }
        let (content, pictures) = content_of(&m.content)?;
        images += pictures.len();
        if images > MAX_IMAGES_PER_REQUEST {
            return Err(SwapError::BadRequest(format!(
                "a request may carry at most {MAX_IMAGES_PER_REQUEST} images"
            )));
        }
        messages.push(ChatMessage {
            role: m.role.clone(),
            content,
            images: pictures,
        });
    }
    let chat = Chat {
        id: 0,
        messages,
        max_tokens: body
            .max_completion_tokens
            .or(body.max_tokens)
            .unwrap_or(256),
        temperature: body.temperature.unwrap_or(0.0),
        seed: body.seed.unwrap_or(0),
        ignore_eos: body.ignore_eos,
    };
    Ok((chat, images))
}

async fn next_event(events: &mut UnboundedReceiver<Event>) -> Result<Event, SwapError> {
    events
        .recv()
        .await
        .ok_or_else(|| SwapError::WorkerFailed("the worker went away".into()))
}

pub async fn chat_completions(
    State(app): State<App>,
    Json(body): Json<ChatRequest<Value>>,
) -> Result<Response, SwapError> {
    let (chat, images) = worker_chat(&body)?;
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
    let lease = app.scheduler.acquire(&body.model).await?;
    let sent = Instant::now();
    let (id, mut events) = lease
        .worker
        .request(Request::Chat(chat))
        .await
        .map_err(SwapError::WorkerFailed)?;
    // The first event tells a bad request (answered as JSON) from a started answer.
    let first = next_event(&mut events).await?;
    if let Event::Error { .. } = first {
        return Err(worker_error(&first));
    }
    FIRST_TOKEN
        .with_label_values(&[&body.model])
        .observe(sent.elapsed().as_secs_f64());
    let answer = Answer {
        id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        created: time::OffsetDateTime::now_utc().unix_timestamp(),
        model: body.model,
    };
    if !body.stream {
        let _guard = lease;
        return whole(answer, first, events).await;
    }
    let include_usage = body.stream_options.is_some_and(|o| o.include_usage);
    let guard = CancelOnDrop {
        lease: Some(lease),
        id,
        finished: false,
    };
    Ok(stream(answer, first, events, guard, include_usage))
}

/// What every chunk of one answer repeats.
#[derive(Clone)]
struct Answer {
    id: String,
    created: i64,
    model: String,
}

impl Answer {
    fn chunk(&self, delta: Delta, finish_reason: Option<String>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: CHAT_COMPLETION_CHUNK.into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason,
            }],
            usage: None,
        }
    }
}

/// The tokens gathered into one answer.
async fn whole(
    answer: Answer,
    first: Event,
    mut events: UnboundedReceiver<Event>,
) -> Result<Response, SwapError> {
    let mut text = String::new();
    let mut event = first;
    loop {
        match event {
            Event::Token { text: piece, .. } => text.push_str(&piece),
            Event::Done {
                finish_reason,
                prompt_tokens,
                completion_tokens,
                generation_ms,
                ..
            } => {
                let usage = usage_of(
                    &answer.model,
                    prompt_tokens,
                    completion_tokens,
                    generation_ms,
                );
                return Ok(Json(ChatCompletion {
                    id: answer.id,
                    object: CHAT_COMPLETION.into(),
                    created: answer.created,
                    model: answer.model,
                    choices: vec![Choice {
                        index: 0,
                        message: AssistantMessage {
                            role: "assistant".into(),
                            content: text,
                        },
                        finish_reason,
                    }],
                    usage,
                })
                .into_response());
            }
            other => return Err(worker_error(&other)),
        }
        event = next_event(&mut events).await?;
    }
}

/// One server-sent event.
fn frame(data: &impl Serialize) -> String {
    // The wire types always serialise (no maps with non-string keys, no custom impls).
    format!(
        "data: {}\n\n",
        serde_json::to_string(data).unwrap_or_default()
    )
}

/// The answer as server-sent events, a chunk per token; the generation is cancelled if the
/// client goes away first.
fn stream(
    answer: Answer,
    first: Event,
    events: UnboundedReceiver<Event>,
    guard: CancelOnDrop,
    include_usage: bool,
) -> Response {
    let state = Some((events, Some(first), guard, true));
    let sse = futures::stream::unfold(state, move |state| {
        let answer = answer.clone();
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
                let opening = Delta {
                    role: Some("assistant".into()),
                    content: Some(String::new()),
                };
                out.push_str(&frame(&answer.chunk(opening, None)));
            }
            match event {
                Event::Token { text, .. } => {
                    let delta = Delta {
                        role: None,
                        content: Some(text),
                    };
                    out.push_str(&frame(&answer.chunk(delta, None)));
                    Some((
                        Ok::<_, Infallible>(Bytes::from(out)),
                        Some((events, None, guard, false)),
                    ))
                }
                Event::Done {
                    finish_reason,
                    prompt_tokens,
                    completion_tokens,
                    generation_ms,
                    ..
                } => {
                    guard.finished = true;
                    out.push_str(&frame(&answer.chunk(Delta::default(), Some(finish_reason))));
                    let usage = usage_of(
                        &answer.model,
                        prompt_tokens,
                        completion_tokens,
                        generation_ms,
                    );
                    if include_usage {
                        let mut last = answer.chunk(Delta::default(), None);
                        last.choices.clear();
                        last.usage = Some(usage);
                        out.push_str(&frame(&last));
                    }
                    out.push_str("data: [DONE]\n\n");
                    drop(guard);
                    Some((Ok(Bytes::from(out)), None))
                }
                other => {
                    guard.finished = true;
                    let code = match &other {
                        Event::Error { code, .. } => Some(code.clone()),
                        _ => None,
                    };
                    let error = StreamError {
                        error: StreamErrorBody {
                            message: worker_error(&other).to_string(),
                            kind: "server_error".into(),
                            code,
                        },
                    };
                    out.push_str(&frame(&error));
                    drop(guard);
                    Some((Ok(Bytes::from(out)), None))
                }
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(sse),
    )
        .into_response()
}

/// The OpenAI usage object of a finished generation, counted in the token metrics.
fn usage_of(model: &str, prompt: u64, completion: u64, generation_ms: f64) -> Usage {
    TOKENS.with_label_values(&[model, "prompt"]).inc_by(prompt);
    if completion > 0 && generation_ms > 0.0 {
        TOKENS_PER_SECOND
            .with_label_values(&[model])
            .observe(completion as f64 / (generation_ms / 1000.0));
    }
    TOKENS
        .with_label_values(&[model, "completion"])
        .inc_by(completion);
    Usage::new(prompt, completion)
}
