//! One model call or one tool call made on a user's behalf outside a conversation: what the
//! crews worker uses for every step of a crew run, so that a crew's agents go through the same
//! policy, quota, fallback chain, tools and local models as a chat turn.
//!
//! Both calls are idempotent by [`StepRequest::idempotency_key`] / [`ToolRequest::
//! idempotency_key`]: the router keeps each answer for a day and answers a repeat with it
//! (`replayed: true`) without calling the provider or running the tool again. A worker that
//! died after the router answered and before it wrote its journal gets the same answer on
//! resume, and the provider (or a tool's side effect) sees the step once.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The longest idempotency key accepted (`<run id>/<step key>` fits easily).
pub const MAX_IDEMPOTENCY_KEY: usize = 200;
/// Messages in one step request, and the text of all of them together.
pub const MAX_STEP_MESSAGES: usize = 200;
pub const MAX_STEP_TEXT_BYTES: usize = 512 * 1024;

/// A message of a step's conversation, in OpenAI's chat shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    #[serde(default)]
    pub content: String,
    /// An assistant message's tool calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<StepToolCall>,
    /// A `tool` message answers this call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl StepMessage {
    pub fn new(role: &str, content: impl Into<String>) -> StepMessage {
        StepMessage {
            role: role.to_owned(),
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// A tool the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model gave them (an object once parsed).
    pub arguments: Value,
}

/// `POST /v1/steps/llm`: one model call for `user_id` under `agent_id`'s chain, policy and quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRequest {
    pub user_id: Uuid,
    /// The control plane's agent whose model chain, policy and quota apply.
    pub agent_id: String,
    /// A model to use instead of the agent's chain (a crew agent's `llm`): it must be one the
    /// policy lets this user use with this agent, or the step is refused.
    #[serde(default)]
    pub model: Option<String>,
    pub messages: Vec<StepMessage>,
    /// Built-in tools offered to the model, by name; the model's calls come back in
    /// [`StepResponse::tool_calls`] for the caller to run with [`ToolRequest`].
    #[serde(default)]
    pub tools: Vec<String>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Asks for JSON matching this schema (`response_format`), where the provider has it.
    #[serde(default)]
    pub json_schema: Option<Value>,
    /// `<run id>/<step key>`: the same key gets the same answer, once.
    pub idempotency_key: String,
}

/// What a step cost, as the quota was charged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StepUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost: f64,
    /// Measured time the step held a local model (0 for a remote provider).
    pub gpu_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResponse {
    pub content: String,
    #[serde(default)]
    pub tool_calls: Vec<StepToolCall>,
    /// Which link of the chain answered.
    pub provider: String,
    pub model: String,
    pub usage: StepUsage,
    /// This is the stored answer to an earlier call with the same key.
    #[serde(default)]
    pub replayed: bool,
}

/// `POST /v1/steps/tool`: runs one built-in tool for `user_id` as `agent_id` would in a turn
/// (the tool's own model use goes through the same policy and quota).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolRequest {
    pub user_id: Uuid,
    pub agent_id: String,
    #[serde(default)]
    pub session_id: Option<Uuid>,
    pub name: String,
    pub arguments: Value,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResponse {
    /// The tool's result, or `{"error": "..."}` when it failed in a way the model should read.
    pub output: Value,
    pub ok: bool,
    #[serde(default)]
    pub usage: StepUsage,
    #[serde(default)]
    pub replayed: bool,
}
