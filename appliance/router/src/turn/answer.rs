//! The end of a turn's conversation: the answer stored, announced on the bus, and told to the
//! client with what it cost.

use daarion_bus::Envelope;
use daarion_bus::events::MessageProcessed;
use daarion_memory_client::NewMessage;
use daarion_router_client::Event;
use serde_json::json;
use uuid::Uuid;

use super::admitted::Admitted;
use super::chain::CallOutcome;
use super::quota::Spent;
use super::sink::Sink;
use crate::providers::Link;
use crate::{App, RouterError};

/// Stores and sends the final answer of `outcome`; `base` carries what every message of the
/// turn is stored with. `Ok(false)` when the answer was cut short.
pub async fn finish(
    app: &App,
    turn: &Admitted,
    base: &NewMessage,
    outcome: CallOutcome,
    spent: &Spent,
    steps: u32,
    sink: &mut Sink,
) -> Result<bool, RouterError> {
    let link = &turn.links[outcome.link];
    let mut content = outcome.content;
    if content.trim().is_empty() && outcome.interrupted.is_none() {
        content = if outcome.tool_calls.is_empty() {
            "(no answer)".into()
        } else {
            format!("I stopped after {steps} tool steps without reaching an answer.")
        };
        sink.emit(Event::Token {
            text: content.clone(),
        })
        .await;
    }
    let interrupted = outcome.interrupted.is_some();
    let mut versions = turn.versions.clone();
    if let Some(why) = &outcome.interrupted {
        versions["interrupted"] = json!(why);
    }
    let answer = app
        .memory
        .add_message(
            turn.session.id,
            NewMessage {
                role: "assistant".into(),
                content: content.clone(),
                model: Some(link.id()),
                prompt_tokens: Some(spent.usage.prompt_tokens),
                completion_tokens: Some(spent.usage.completion_tokens),
                versions,
                ..base.clone()
            },
        )
        .await?;
    publish_processed(app, turn, answer.id, link, spent, steps).await;
    sink.emit(Event::Message {
        id: answer.id,
        content,
        provider: link.provider_name.clone(),
        model: link.model.clone(),
        interrupted,
    })
    .await;
    sink.emit(Event::Usage {
        prompt_tokens: spent.usage.prompt_tokens,
        completion_tokens: spent.usage.completion_tokens,
        cost: spent.cost,
        currency: link.currency().to_owned(),
        gpu_seconds: spent.gpu_seconds,
    })
    .await;
    Ok(!interrupted)
}

/// `message.processed`: the answer is stored; other services (indexer, analytics) may act on it.
async fn publish_processed(
    app: &App,
    turn: &Admitted,
    message: Uuid,
    link: &Link,
    spent: &Spent,
    tool_steps: u32,
) {
    let event = Envelope::event(
        "router",
        MessageProcessed {
            user_id: turn.user_id,
            agent_id: turn.agent.id.clone(),
            message_id: Some(message),
            session_id: Some(turn.session.id),
            provider: link.provider_name.clone(),
            model: link.model.clone(),
            prompt_tokens: spent.usage.prompt_tokens,
            completion_tokens: spent.usage.completion_tokens,
            cost: spent.cost,
            currency: link.currency().to_owned(),
            gpu_seconds: spent.gpu_seconds,
            tool_steps,
            versions: turn.versions.clone(),
        },
    );
    if let Err(e) = app.bus.publish(&event).await {
        // The answer is stored; only the notification is lost, and it is logged.
        tracing::error!(error = %e, %message, "cannot publish message.processed");
    }
}
