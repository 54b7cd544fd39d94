//! One model call of a crew step: the same policy (the agent's `use`, the model, the tools),
//! quota (reserved at the most the call can use, settled with what it used) and fallback chain
//! as a turn's call, without a conversation in memory around it.

use daarion_control_client::Usage;
use daarion_llm::{ChatRequest, Message, Role, ToolCall};
use daarion_policy::Action;
use daarion_router_client::{StepMessage, StepRequest, StepResponse, StepToolCall, StepUsage};
use serde_json::Value;
use tokio::sync::mpsc;

use super::who::{StepAgent, admit};
use crate::context::message_tokens;
use crate::gpu::TOKEN_SECONDS;
use crate::providers::Link;
use crate::turn::quota::{Spent, refused, release, reserve, settle};
use crate::turn::{Sink, allowed_links, call_model, qualified};
use crate::{App, RouterError};

fn role(name: &str) -> Role {
    match name {
        "system" => Role::System,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        _ => Role::User,
    }
}

fn message(m: &StepMessage) -> Message {
    let mut out = Message::new(role(&m.role), m.content.clone());
    out.tool_call_id = m.tool_call_id.clone();
    out.tool_calls = m
        .tool_calls
        .iter()
        .map(|c| ToolCall {
            id: c.id.clone(),
            name: c.name.clone(),
            arguments: match &c.arguments {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            },
        })
        .collect();
    out
}

/// The model's calls with their arguments parsed (kept as text when they are not JSON, for
/// the caller to tell the model).
fn step_calls(calls: Vec<ToolCall>) -> Vec<StepToolCall> {
    calls
        .into_iter()
        .map(|c| StepToolCall {
            arguments: serde_json::from_str(&c.arguments)
                .unwrap_or(Value::String(c.arguments.clone())),
            id: c.id,
            name: c.name,
        })
        .collect()
}

/// Until the model client sends `response_format`, the schema is asked for in words.
fn schema_instruction(schema: &Value) -> Message {
    Message::new(
        Role::System,
        format!(
            "Answer with one JSON value only, no prose and no code fence, matching this JSON schema: {schema}"
        ),
    )
}

/// The links this step may use: the agent's chain as the user may use it, or the one model the
/// step names, which must itself be allowed.
async fn links(app: &App, who: &StepAgent, step: &StepRequest) -> Result<Vec<Link>, RouterError> {
    let user = step.user_id.to_string();
    let wanted = match &step.model {
        Some(model) => {
            let link = qualified(model);
            let decided = app
                .control
                .decide(&user, &who.agent.id, &Action::Model(&link))
                .await?;
            if !decided.decision.allow {
                return Err(refused(
                    "policy",
                    format!(
                        "The model `{link}` is not allowed for this user with {}.",
                        who.agent.name
                    ),
                ));
            }
            vec![link]
        }
        None => allowed_links(app, &user, &who.agent, &who.settings).await?,
    };
    app.providers.links(&app.control, &wanted).await
}

/// The definitions of the tools offered: unknown names are the caller's mistake (422), tools the
/// user may not use are refused (403).
async fn tools(app: &App, who: &StepAgent, step: &StepRequest) -> Result<Vec<Value>, RouterError> {
    let user = step.user_id.to_string();
    let mut specs = Vec::with_capacity(step.tools.len());
    for name in &step.tools {
        let spec = app.toolbox.spec(name).ok_or_else(|| {
            RouterError::invalid("tools", format!("there is no tool named `{name}`"))
        })?;
        let decided = app
            .control
            .decide(&user, &who.agent.id, &Action::Tool(name))
            .await?;
        if !decided.decision.allow {
            return Err(refused(
                "policy",
                format!("The tool `{name}` is not allowed for this user."),
            ));
        }
        specs.push(spec);
    }
    Ok(specs)
}

/// The most the call can use: its prompt and all it may write, at the dearest link; the GPU
/// time of the slowest local link for as many tokens.
fn reservation(app: &App, links: &[Link], messages: &[Message], max_tokens: u32) -> Usage {
    let tokens = messages
        .iter()
        .map(message_tokens)
        .sum::<u32>()
        .saturating_add(max_tokens);
    Usage {
        requests: 1,
        tokens: u64::from(tokens),
        gpu_seconds: links
            .iter()
            .filter(|l| l.local)
            .map(|l| {
                app.gpu
                    .estimate(&l.id(), f64::from(max_tokens), TOKEN_SECONDS)
            })
            .fold(0.0, f64::max),
        cost: links
            .iter()
            .filter_map(|l| l.price.as_ref().map(|p| p.most_for(tokens)))
            .fold(0.0, f64::max),
    }
}

pub async fn run(app: &App, step: StepRequest) -> Result<StepResponse, RouterError> {
    let who = admit(app, step.user_id, &step.agent_id).await?;
    let links = links(app, &who, &step).await?;
    let tool_specs = tools(app, &who, &step).await?;
    let mut messages: Vec<Message> = step.messages.iter().map(message).collect();
    if let Some(schema) = &step.json_schema {
        messages.insert(0, schema_instruction(schema));
    }
    let max_tokens = step
        .max_tokens
        .unwrap_or(who.settings.max_tokens)
        .min(who.settings.context_tokens);
    let reserved = reservation(app, &links, &messages, max_tokens);
    reserve(&app.control, step.user_id, reserved).await?;
    let request = ChatRequest {
        model: String::new(),
        messages,
        tools: tool_specs,
        temperature: who.settings.temperature,
        max_tokens: Some(max_tokens),
    };
    // Nothing is streamed: the sink is never written to.
    let mut sink = Sink::new(mpsc::channel(1).0);
    let outcome = match call_model(&links, &request, &mut sink, false).await {
        Ok(outcome) => outcome,
        Err(e) => {
            release(&app.control, step.user_id, reserved).await;
            return Err(e);
        }
    };
    let link = &links[outcome.link];
    let mut spent = Spent::default();
    spent.add(link, &outcome, &app.gpu);
    settle(&app.control, step.user_id, reserved, spent.as_usage()).await;
    if let Some(why) = outcome.interrupted {
        // Half an answer is no step: the caller retries it (the time it took is charged).
        return Err(RouterError::Llm(why));
    }
    Ok(StepResponse {
        content: outcome.content,
        tool_calls: step_calls(outcome.tool_calls),
        provider: link.provider_name.clone(),
        model: link.model.clone(),
        usage: StepUsage {
            prompt_tokens: u64::from(spent.usage.prompt_tokens),
            completion_tokens: u64::from(spent.usage.completion_tokens),
            cost: spent.cost,
            gpu_seconds: spent.gpu_seconds,
        },
        replayed: false,
    })
}
