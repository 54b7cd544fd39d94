//! What `/v1/route` streams: one event per step of a turn, as Server-Sent Events whose `event:`
//! is [`Event::name`] and whose `data:` is the event as JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
        /// The HTTP status when the router refused the request itself (a 413 for a text too
        /// long): set by [`crate::RouterClient::route`], never streamed by the router, whose
        /// errors mid-turn come after a 200.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_tag_is_the_sse_name() {
        let events = [
            Event::Start {
                trace_id: "t".into(),
                agent: "helper".into(),
                user_id: Uuid::nil(),
                session_id: Uuid::nil(),
                versions: serde_json::json!({"prompt": 3}),
            },
            Event::Token { text: "hi".into() },
            Event::ToolCall {
                id: "c1".into(),
                name: "calculator".into(),
                arguments: "{}".into(),
            },
            Event::ToolResult {
                id: "c1".into(),
                name: "calculator".into(),
                ok: true,
                content: "2".into(),
            },
            Event::Media {
                mime: "audio/ogg".into(),
                data: "T2dnUw==".into(),
            },
            Event::Message {
                id: Uuid::nil(),
                content: "hi".into(),
                provider: "local".into(),
                model: "m".into(),
                interrupted: false,
            },
            Event::Usage {
                prompt_tokens: 1,
                completion_tokens: 2,
                cost: 0.5,
                currency: "USD".into(),
                gpu_seconds: 0.25,
            },
            Event::Refused {
                code: "quota".into(),
                reason: "enough".into(),
            },
            Event::Ignored {
                reason: "not addressed".into(),
            },
            Event::Error {
                code: "llm_failed".into(),
                message: "down".into(),
                status: None,
            },
            Event::Error {
                code: "payload_too_large".into(),
                message: "long".into(),
                status: Some(413),
            },
        ];
        for event in events {
            let wire = serde_json::to_value(&event).unwrap();
            assert_eq!(wire["type"], event.name(), "{wire}");
            assert_eq!(serde_json::from_value::<Event>(wire).unwrap(), event);
        }
    }

    #[test]
    fn a_streamed_error_carries_no_status() {
        let wire = serde_json::to_value(Event::Error {
            code: "llm_failed".into(),
            message: "down".into(),
            status: None,
        })
        .unwrap();
        assert_eq!(
            wire,
            serde_json::json!({"type": "error", "code": "llm_failed", "message": "down"})
        );
    }
}
