//! Sessions and their messages: `/v1/sessions…`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// A message bigger than this is a document; it goes through ingest, not into the history.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The roles a stored message may have.
pub const ROLES: [&str; 4] = ["system", "user", "assistant", "tool"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    pub id: Uuid,
    pub user_id: Uuid,
    pub agent_id: String,
    pub chat: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
}

/// `POST /v1/sessions` (always a new one) and `POST /v1/sessions/open` (the open one of this
/// user, agent and chat, or a new one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    pub user_id: Uuid,
    /// 1 to 64 bytes.
    pub agent_id: String,
    /// The conversation's place (`tg:<chat id>`), at most 128 bytes; empty for none.
    #[serde(default)]
    pub chat: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredMessage {
    pub id: Uuid,
    pub session_id: Uuid,
    pub role: String,
    pub content: String,
    pub agent_id: Option<String>,
    pub model: Option<String>,
    pub prompt_tokens: Option<i32>,
    pub completion_tokens: Option<i32>,
    pub trace_id: Option<String>,
    /// The prompt, policy and config versions (and other markers) the message was made with.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub versions: Value,
    /// On an assistant message: the tool calls the model made.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub tool_calls: Option<Value>,
    /// On a tool message: the call it answers.
    pub tool_call_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `POST /v1/sessions/{id}/messages`. `None` fields are not sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// One of [`ROLES`].
    pub role: String,
    /// At most [`MAX_MESSAGE_BYTES`].
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// An object of names to versions; absent or `null` is stored as `{}`.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub versions: Value,
    /// Only on assistant messages: an array of tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub tool_calls: Option<Value>,
    /// Required on tool messages and only there: 1 to 128 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl NewMessage {
    /// A message with only its role and text; set the other fields as needed.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> NewMessage {
        NewMessage {
            role: role.into(),
            content: content.into(),
            ..NewMessage::default()
        }
    }
}

/// `GET /v1/sessions/{id}/messages?limit=`: the last `limit` messages (clamped to 1–500),
/// oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct MessagesQuery {
    #[serde(default = "fifty")]
    pub limit: i64,
}

fn fifty() -> i64 {
    50
}

impl Default for MessagesQuery {
    fn default() -> Self {
        MessagesQuery { limit: fifty() }
    }
}
