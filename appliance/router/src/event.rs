//! What `/v1/route` streams: one event per step of a turn, as Server-Sent Events.

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The turn was admitted: who, which agent, which session, and the versions behind it.
    Start {
        trace_id: String,
        agent: String,
        user_id: Uuid,
        session_id: Uuid,
        versions: Value,
    },
    Token {
        text: String,
    },
    ToolCall {
        id: String,
        name: String,
        arguments: String,
    },
    ToolResult {
        id: String,
        name: String,
        ok: bool,
        content: String,
    },
    /// Media a tool made for the user (a voice message), base64-encoded.
    Media {
        mime: String,
        data: String,
    },
    /// The stored answer.
    Message {
        id: Uuid,
        content: String,
        provider: String,
        model: String,
        /// The answer was cut short (the client left, or the model failed mid-answer).
        interrupted: bool,
    },
    Usage {
        prompt_tokens: u32,
        completion_tokens: u32,
        cost: f64,
        currency: String,
        gpu_seconds: f64,
    },
    /// Policy or quota said no; `reason` is for the user.
    Refused {
        code: String,
        reason: String,
    },
    /// A group message not addressed to the agent.
    Ignored {
        reason: String,
    },
    Error {
        code: String,
        message: String,
    },
}

impl Event {
    /// The SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Start { .. } => "start",
            Event::Token { .. } => "token",
            Event::ToolCall { .. } => "tool_call",
            Event::ToolResult { .. } => "tool_result",
            Event::Media { .. } => "media",
            Event::Message { .. } => "message",
            Event::Usage { .. } => "usage",
            Event::Refused { .. } => "refused",
            Event::Ignored { .. } => "ignored",
            Event::Error { .. } => "error",
        }
    }
}
