//! The provider-neutral request, stream events and response.

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::LlmError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    /// The wire name, the same in the OpenAI and Ollama protocols.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them: JSON text, not yet validated.
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For `Role::Tool`: which call this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    /// OpenAI-style function definitions, passed through as they are.
    #[serde(default)]
    pub tools: Vec<Value>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

impl Usage {
    pub fn total(&self) -> u32 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// What a streaming call yields: text as it comes, complete tool calls, then one `Done`.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    Token(String),
    ToolCall(ToolCall),
    Done { usage: Usage, finish_reason: String },
}

pub type EventStream = BoxStream<'static, Result<ChatEvent, LlmError>>;

/// The events a parsing task sends, as the stream a provider returns; dropping the stream
/// closes the channel, which stops the task.
pub(crate) fn channel_stream(
    rx: tokio::sync::mpsc::Receiver<Result<ChatEvent, LlmError>>,
) -> EventStream {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) }).boxed()
}

/// One model endpoint. `chat_stream` resolves once the provider accepted the request (status
/// line and headers), so failures before any token are errors of the call, not of the stream.
pub trait Provider: Send + Sync {
    /// For logs, metrics labels and the price table.
    fn name(&self) -> &str;
    fn chat_stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<EventStream, LlmError>>;
    /// Pictures for a prompt (OpenAI's images API), as the encoded files the provider made
    /// (PNG, JPEG or WebP). A provider without an images API refuses.
    fn generate_images(
        &self,
        request: ImageRequest,
    ) -> BoxFuture<'_, Result<Vec<Vec<u8>>, LlmError>> {
        let _ = request;
        let provider = self.name().to_owned();
        Box::pin(async move {
            Err(LlmError::Protocol {
                provider,
                message: "this provider does not generate images".into(),
            })
        })
    }
}

/// What a picture should show, and how many and how big.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRequest {
    pub model: String,
    pub prompt: String,
    /// `WIDTHxHEIGHT`; `None`: the model's default.
    pub size: Option<String>,
    pub n: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    pub finish_reason: String,
}

/// Drains a stream into one response.
pub async fn collect(mut stream: EventStream) -> Result<ChatResponse, LlmError> {
    let mut response = ChatResponse {
        content: String::new(),
        tool_calls: Vec::new(),
        usage: Usage::default(),
        finish_reason: String::new(),
    };
    while let Some(event) = stream.next().await {
        match event? {
            ChatEvent::Token(t) => response.content.push_str(&t),
            ChatEvent::ToolCall(call) => response.tool_calls.push(call),
            ChatEvent::Done {
                usage,
                finish_reason,
            } => {
                response.usage = usage;
                response.finish_reason = finish_reason;
            }
        }
    }
    Ok(response)
}
