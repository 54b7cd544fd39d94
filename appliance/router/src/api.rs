//! The HTTP API: `/v1/route` for channels (a normalised message in, the turn's events out as
//! Server-Sent Events), and an OpenAI-compatible `/v1/chat/completions` where the model is an
//! agent id, so any OpenAI client can talk to an agent.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use daarion_llm::{Message, Role};
use daarion_router_client::{ChatKind, Event, Inbound, Picture, ResetResponse, UserRef};
use daarion_telemetry::TraceContext;
use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::auth::Caller;
use crate::error::OpenAiError;
use crate::turn::{self, Admission, Admitted};
use crate::{App, RouterError, metrics};

/// Runs an admitted turn in its own task (it finishes and stores its answer even if the client
/// leaves early) and returns its events.
fn spawn_turn(app: &App, turn: Admitted) -> BoxStream<'static, Event> {
    let (tx, rx) = mpsc::channel(64);
    let task_app = app.clone();
    let work = TraceContext::current_or_new()
        .scope(async move { turn::run(&task_app, turn, tx).await })
        .instrument(tracing::Span::current());
    app.turns.spawn(work);
    stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) }).boxed()
}

fn sse<S>(events: S) -> Response
where
    S: Stream<Item = Event> + Send + 'static,
{
    let frames = events.map(|event| {
        Ok::<_, Infallible>(
            SseEvent::default()
                .event(event.name())
                .json_data(&event)
                .unwrap_or_else(|_| SseEvent::default().event("error")),
        )
    });
    Sse::new(frames)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// `POST /v1/route`: refusals and ignored messages are events too, so a channel has one path
/// for everything a user should be told; only bad requests are HTTP errors.
pub async fn route(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Json(inbound): Json<Inbound>,
) -> Result<Response, RouterError> {
    caller.may_route()?;
    match turn::admit(&app, inbound, None).await {
        Ok(Admission::Go(turn)) => Ok(sse(spawn_turn(&app, *turn))),
        Ok(Admission::Ignored(reason)) => {
            metrics::TURNS.with_label_values(&["ignored"]).inc();
            Ok(sse(stream::iter([Event::Ignored { reason }])))
        }
        Err(RouterError::Refused(r)) => {
            metrics::TURNS.with_label_values(&["refused"]).inc();
            Ok(sse(stream::iter([Event::Refused {
                code: r.code.into(),
                reason: r.reason,
            }])))
        }
        Err(e) => Err(e),
    }
}

/// `POST /v1/sessions/reset`: the same message shape as `/v1/route`; ends the session the
/// next message of that chat would continue.
pub async fn reset_session(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Json(inbound): Json<Inbound>,
) -> Result<Json<ResetResponse>, RouterError> {
    caller.may_route()?;
    Ok(Json(turn::reset(&app, inbound).await?))
}

#[derive(Debug, Deserialize)]
pub struct WireMessage {
    role: String,
    #[serde(default)]
    content: Value,
}

/// The request fields the router honours; the rest of OpenAI's (sampling settings and the
/// like) belong to the agent's configuration and are ignored.
#[derive(Debug, Deserialize)]
pub struct Completion {
    model: String,
    messages: Vec<WireMessage>,
    #[serde(default)]
    stream: bool,
    user: Option<String>,
}

/// A string, or text parts (`[{"type": "text", "text": …}]`).
fn text_of(content: &Value) -> Result<String, RouterError> {
    let (text, pictures) = parts_of(content)?;
    if !pictures.is_empty() {
        return Err(RouterError::invalid(
            "messages",
            "pictures are read from the last user message only",
        ));
    }
    Ok(text)
}

/// A message's text, and its pictures: `image_url` parts with inline
/// `data:image/…;base64,` URLs (the router fetches nothing from the network).
fn parts_of(content: &Value) -> Result<(String, Vec<Picture>), RouterError> {
    match content {
        Value::String(s) => Ok((s.clone(), Vec::new())),
        Value::Null => Ok((String::new(), Vec::new())),
        Value::Array(parts) => {
            let (mut texts, mut pictures) = (Vec::new(), Vec::new());
            for p in parts {
                match p["type"].as_str() {
                    Some("text") if p["text"].is_string() => {
                        texts.push(p["text"].as_str().unwrap_or_default())
                    }
                    Some("image_url") => {
                        let url = p["image_url"]["url"].as_str().unwrap_or_default();
                        let picture = url
                            .strip_prefix("data:")
                            .and_then(|rest| rest.split_once(";base64,"))
                            .map(|(mime, data)| Picture {
                                mime: mime.to_owned(),
                                data: data.to_owned(),
                            })
                            .ok_or_else(|| {
                                RouterError::invalid(
                                    "messages",
                                    "an image_url must be an inline data:image/…;base64, URL",
                                )
                            })?;
                        pictures.push(picture);
                    }
                    _ => {
                        return Err(RouterError::invalid(
                            "messages",
                            "content parts must be text or image_url",
                        ));
                    }
                }
            }
            Ok((texts.join("\n"), pictures))
        }
        _ => Err(RouterError::invalid(
            "messages",
            "content must be a string or content parts",
        )),
    }
}

fn inbound_of(
    caller: &Caller,
    request: &Completion,
) -> Result<(Inbound, Vec<Message>), RouterError> {
    let last = request
        .messages
        .iter()
        .rposition(|m| m.role == "user")
        .ok_or_else(|| RouterError::invalid("messages", "there is no user message"))?;
    let (mut text, images) = parts_of(&request.messages[last].content)?;
    // A picture without words still asks something; the model sees that one came.
    if text.trim().is_empty() && !images.is_empty() {
        text = "(a picture)".into();
    }
    let mut history = Vec::new();
    for m in &request.messages[..last] {
        // The agent's system prompt is the operator's; a client cannot replace it.
        let role = match m.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "system" | "developer" => continue,
            other => {
                return Err(RouterError::invalid(
                    "messages",
                    format!("role `{other}` is not supported here"),
                ));
            }
        };
        history.push(Message::new(role, text_of(&m.content)?));
    }
    let (external_id, operator) = match caller {
        Caller::Root | Caller::Token { admin: true, .. } => match &request.user {
            Some(user) => (user.clone(), false),
            None => ("operator".to_owned(), true),
        },
        // A token speaks only for itself, whatever `user` it names.
        Caller::Token { name, .. } => (format!("token:{name}"), false),
    };
    let inbound = Inbound {
        channel: "api".into(),
        bot: None,
        chat_id: "openai".into(),
        chat_kind: ChatKind::Private,
        user: UserRef::Identity {
            external_id: external_id.chars().take(128).collect(),
            display_name: String::new(),
        },
        text,
        agent: Some(request.model.clone()),
        addressed: true,
        voice: false,
        images,
        operator,
    };
    Ok((inbound, history))
}

/// `POST /v1/chat/completions` with `model` = agent id.
pub async fn chat_completions(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Json(request): Json<Completion>,
) -> Result<Response, OpenAiError> {
    let (inbound, history) = inbound_of(&caller, &request)?;
    let turn = match turn::admit(&app, inbound, Some(history)).await? {
        Admission::Go(turn) => turn,
        Admission::Ignored(reason) => return Err(RouterError::invalid("messages", reason).into()),
    };
    let agent = request.model.clone();
    let events = spawn_turn(&app, *turn);
    let id = format!("chatcmpl-{}", uuid::Uuid::now_v7().simple());
    let created = time::OffsetDateTime::now_utc().unix_timestamp();
    if request.stream {
        return Ok(openai_stream(events, id, created, agent));
    }
    let mut content = String::new();
    let mut usage = json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0});
    let mut finish = "stop";
    let mut events = events;
    while let Some(event) = events.next().await {
        match event {
            Event::Message {
                content: c,
                interrupted,
                ..
            } => {
                content = c;
                if interrupted {
                    finish = "length";
                }
            }
            Event::Usage {
                prompt_tokens,
                completion_tokens,
                ..
            } => {
                usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens});
            }
            Event::Error { message, .. } => return Err(RouterError::Llm(message).into()),
            Event::Refused { code, reason } => {
                let code = if code == "quota" { "quota" } else { "policy" };
                return Err(RouterError::Refused(crate::error::Refusal { code, reason }).into());
            }
            _ => {}
        }
    }
    Ok(Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": agent,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
        "usage": usage,
    }))
    .into_response())
}

fn openai_stream(
    events: BoxStream<'static, Event>,
    id: String,
    created: i64,
    model: String,
) -> Response {
    let chunk = move |delta: Value, finish: Option<&str>| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let frames = events.filter_map(move |event| {
        let frame = match event {
            Event::Start { .. } => Some(chunk(json!({"role": "assistant", "content": ""}), None)),
            Event::Token { text } => Some(chunk(json!({"content": text}), None)),
            Event::Message { interrupted, .. } => Some(chunk(
                json!({}),
                Some(if interrupted { "length" } else { "stop" }),
            )),
            Event::Usage { prompt_tokens, completion_tokens, .. } => {
                let mut last = chunk(json!({}), None);
                last["choices"] = json!([]);
                last["usage"] = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens});
                Some(last)
            }
            Event::Error { code, message, .. } | Event::Refused { code, reason: message } => {
                Some(json!({"error": {"message": message, "type": "server_error", "code": code}}))
            }
            _ => None,
        };
        futures::future::ready(frame.map(|f| Ok::<_, Infallible>(SseEvent::default().data(f.to_string()))))
    });
    let done = stream::once(async { Ok(SseEvent::default().data("[DONE]")) });
    Sse::new(frames.chain(done))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
