//! One model call down the agent's fallback chain.

use std::time::Instant;

use daarion_llm::{ChatEvent, ChatRequest, ToolCall, Usage};
use daarion_router_client::Event;
use futures::StreamExt;

use super::sink::Sink;
use crate::context::{estimate_tokens, message_tokens};
use crate::providers::Link;
use crate::{RouterError, metrics};

pub struct CallOutcome {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    /// Which link of the chain answered.
    pub link: usize,
    pub seconds: f64,
    /// Why the answer stopped early, when it did.
    pub interrupted: Option<String>,
}

/// A link that fails before its first token is skipped for the next; one that fails
/// mid-answer keeps what it said (a half-told answer cannot be taken back). With
/// `stream_tokens` each token goes to the client as it comes.
pub async fn call_model(
    links: &[Link],
    request: &ChatRequest,
    sink: &mut Sink,
    stream_tokens: bool,
) -> Result<CallOutcome, RouterError> {
    let mut failures = Vec::new();
    for (index, link) in links.iter().enumerate() {
        let mut attempt = request.clone();
        attempt.model = link.model.clone();
        let started = Instant::now();
        let mut stream = match link.provider.chat_stream(attempt).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(link = %link.id(), error = %e, "model call failed; trying the next");
                metrics::LLM_FAILURES
                    .with_label_values(&[&link.provider_name])
                    .inc();
                failures.push(format!("{}: {e}", link.id()));
                continue;
            }
        };
        let mut out = CallOutcome {
            content: String::new(),
            tool_calls: Vec::new(),
            usage: Usage::default(),
            link: index,
            seconds: 0.0,
            interrupted: None,
        };
        let mut failed = None;
        while let Some(event) = stream.next().await {
            match event {
                Ok(ChatEvent::Token(text)) => {
                    out.content.push_str(&text);
                    if stream_tokens && !sink.emit(Event::Token { text }).await {
                        out.interrupted = Some("the client went away".into());
                        break;
                    }
                }
                Ok(ChatEvent::ToolCall(call)) => out.tool_calls.push(call),
                Ok(ChatEvent::Done { usage, .. }) => out.usage = usage,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        out.seconds = started.elapsed().as_secs_f64();
        metrics::LLM_SECONDS
            .with_label_values(&[&link.provider_name])
            .observe(out.seconds);
        if let Some(e) = failed {
            metrics::LLM_FAILURES
                .with_label_values(&[&link.provider_name])
                .inc();
            if out.content.is_empty() && out.tool_calls.is_empty() {
                tracing::warn!(link = %link.id(), error = %e, "model failed before answering; trying the next");
                failures.push(format!("{}: {e}", link.id()));
                continue;
            }
            tracing::warn!(link = %link.id(), error = %e, "model failed mid-answer");
            out.interrupted = Some(format!("the model stopped mid-answer: {e}"));
        }
        if out.usage == Usage::default() {
            // A provider that reports no usage is charged by estimate, never for free.
            out.usage = Usage {
                prompt_tokens: request.messages.iter().map(message_tokens).sum(),
                completion_tokens: estimate_tokens(&out.content),
            };
        }
        if index > 0 {
            metrics::FALLBACKS
                .with_label_values(&[&link.provider_name])
                .inc();
        }
        return Ok(out);
    }
    Err(RouterError::Llm(format!(
        "no model could answer: {}",
        failures.join("; ")
    )))
}
