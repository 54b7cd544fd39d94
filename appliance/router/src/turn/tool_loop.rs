//! The conversation of one turn: the model is called, runs the tools it asks for (each step
//! stored and streamed), and is called again with their results until it answers or the
//! step limit is reached.

use std::sync::Arc;

use daarion_llm::{ChatRequest, Message, Role, ToolCall};
use daarion_memory_client::NewMessage;
use daarion_router_client::Event;
use serde_json::{Value, json};
use uuid::Uuid;

use super::admitted::Admitted;
use super::answer::finish;
use super::chain::call_model;
use super::prompt;
use super::quota::{Spent, call_reservation, reserve};
use super::sink::Sink;
use crate::tools::{Media, ToolContext};
use crate::{App, RouterError, metrics};

/// `Ok(false)` when the answer was cut short.
pub async fn converse(
    app: &App,
    turn: &mut Admitted,
    sink: &mut Sink,
    spent: &mut Spent,
) -> Result<bool, RouterError> {
    let base = NewMessage {
        agent_id: Some(turn.agent.id.clone()),
        trace_id: Some(turn.trace_id.clone()),
        versions: turn.versions.clone(),
        ..NewMessage::default()
    };
    let question = app
        .memory
        .add_message(
            turn.session.id,
            NewMessage {
                role: "user".into(),
                content: turn.text.clone(),
                versions: question_versions(turn),
                ..base.clone()
            },
        )
        .await?;
    let mut messages = prompt::build(app, turn, question.id, sink, spent).await?;
    let tool_specs: Vec<Value> = turn
        .tools
        .iter()
        .filter_map(|t| app.toolbox.spec(t))
        .collect();
    let ctx = tool_context(app, turn, question.id);
    let mut steps = 0;
    let mut calls_made = 0;
    loop {
        if calls_made > 0 {
            // Every further call is reserved like the first; no reservation, no call.
            let next = call_reservation(
                &turn.settings,
                &turn.links,
                turn.settings.max_tokens,
                &app.gpu,
            );
            reserve(&app.control, turn.user_id, next).await?;
            turn.reserved += next;
        }
        calls_made += 1;
        let offer_tools = steps < turn.settings.max_tool_steps && !tool_specs.is_empty();
        let request = ChatRequest {
            model: String::new(),
            messages: messages.clone(),
            tools: if offer_tools {
                tool_specs.clone()
            } else {
                Vec::new()
            },
            temperature: turn.settings.temperature,
            max_tokens: Some(turn.settings.max_tokens),
        };
        let outcome = call_model(&turn.links, &request, sink, true).await?;
        spent.add(&turn.links[outcome.link], &outcome, &app.gpu);
        let wants_tools = offer_tools && !outcome.tool_calls.is_empty();
        if !wants_tools || outcome.interrupted.is_some() {
            return finish(app, turn, &base, outcome, spent, steps, sink).await;
        }
        steps += 1;
        app.memory
            .add_message(
                turn.session.id,
                NewMessage {
                    role: "assistant".into(),
                    content: outcome.content.clone(),
                    model: Some(turn.links[outcome.link].id()),
                    tool_calls: Some(stored_calls(&outcome.tool_calls)),
                    ..base.clone()
                },
            )
            .await?;
        let mut call_message = Message::new(Role::Assistant, outcome.content.clone());
        call_message.tool_calls = outcome.tool_calls.clone();
        messages.push(call_message);
        for call in &outcome.tool_calls {
            let result = tool_step(app, turn, &ctx, &base, call, sink).await?;
            messages.push(result);
        }
        if !sink.is_open() {
            return Ok(false);
        }
    }
}

/// What the tools may touch for this turn; `question` is the stored user message, which facts
/// remembered now point back to.
fn tool_context(app: &App, turn: &Admitted, question: Uuid) -> ToolContext {
    ToolContext {
        memory: app.memory.clone(),
        bus: app.bus.clone(),
        user_id: turn.user_id,
        agent_id: turn.agent.id.clone(),
        session_id: Some(turn.session.id),
        source_message: Some(question),
        origin: Some(turn.origin.clone()),
        swapper: app.swapper.clone(),
        tts_model: turn.settings.tts_model.clone(),
        media: Default::default(),
        images: Arc::new(turn.images.clone()),
        vision_model: turn.settings.vision_model.clone(),
        image_model: turn.settings.image_model.clone(),
        providers: app.providers.clone(),
        control: app.control.clone(),
        gpu: app.gpu.clone(),
        charged: Default::default(),
    }
}

/// The turn's versions, and what kind of question it was: a voice message's transcript, or
/// one with pictures (the pictures themselves are not kept; that there were some is).
fn question_versions(turn: &Admitted) -> Value {
    let mut v = turn.versions.clone();
    if turn.voice {
        v["input"] = json!("voice");
    }
    if !turn.images.is_empty() {
        v["images"] = json!(turn.images.len());
    }
    v
}

fn stored_calls(calls: &[ToolCall]) -> Value {
    serde_json::to_value(calls).unwrap_or(Value::Null)
}

/// One tool call: announced, run, its result stored and streamed with any media it made; the
/// result is what the model reads next.
async fn tool_step(
    app: &App,
    turn: &Admitted,
    ctx: &ToolContext,
    base: &NewMessage,
    call: &ToolCall,
    sink: &mut Sink,
) -> Result<Message, RouterError> {
    sink.emit(Event::ToolCall {
        id: call.id.clone(),
        name: call.name.clone(),
        arguments: call.arguments.clone(),
    })
    .await;
    let (ok, content) = run_tool(app, turn, ctx, call).await;
    app.memory
        .add_message(
            turn.session.id,
            NewMessage {
                role: "tool".into(),
                content: content.clone(),
                tool_call_id: Some(call.id.clone()),
                ..base.clone()
            },
        )
        .await?;
    sink.emit(Event::ToolResult {
        id: call.id.clone(),
        name: call.name.clone(),
        ok,
        content: content.clone(),
    })
    .await;
    let made: Vec<Media> = ctx.take_media();
    for media in made {
        use base64::Engine;
        sink.emit(Event::Media {
            mime: media.mime.into(),
            data: base64::engine::general_purpose::STANDARD.encode(&media.bytes),
        })
        .await;
    }
    let mut result = Message::new(Role::Tool, content);
    result.tool_call_id = Some(call.id.clone());
    Ok(result)
}

/// Policy, then the schema, then the tool under its timeout. The text is for the model.
async fn run_tool(
    app: &App,
    turn: &Admitted,
    ctx: &ToolContext,
    call: &ToolCall,
) -> (bool, String) {
    let name = call.name.as_str();
    let label = app
        .toolbox
        .names()
        .find(|n| *n == name)
        .unwrap_or("unknown");
    let (ok, content, outcome) = if !turn.tools.contains(&name) {
        let why = if label == "unknown" {
            format!("there is no tool named `{name}`")
        } else {
            format!("the tool `{name}` is not allowed for this user")
        };
        (false, why, "refused")
    } else {
        match app.toolbox.check(name, &call.arguments) {
            Err(why) => (false, why, "invalid"),
            Ok(arguments) => {
                let limit = std::time::Duration::from_secs(turn.settings.tool_timeout_secs);
                match tokio::time::timeout(limit, app.toolbox.call(name, ctx, arguments)).await {
                    Ok(Ok(value)) => (true, value.to_string(), "ok"),
                    Ok(Err(why)) => (false, why, "failed"),
                    Err(_) => (
                        false,
                        format!("the tool did not finish within {} s", limit.as_secs()),
                        "timeout",
                    ),
                }
            }
        }
    };
    metrics::TOOL_CALLS
        .with_label_values(&[label, outcome])
        .inc();
    tracing::info!(tool = name, outcome, "tool call");
    (ok, content)
}
