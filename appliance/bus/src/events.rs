//! The payload of every event on the bus, one type per event family, shared by the producer and
//! every consumer so a renamed field fails to compile instead of being dropped at run time.
//!
//! Each type names its family ([`Event::TYPE`], the subject without prefix or qualifier) and the
//! payload schema this build writes ([`Event::SCHEMA_VERSION`]). The rules for a change:
//!
//! - Adding an optional field (`#[serde(default)]`) keeps the version: older consumers ignore it
//!   (no type here denies unknown fields except where stated) and newer ones read old events.
//! - Anything else (a field renamed, removed, retyped, or made required) bumps the version.
//!   A consumer dead-letters an event written with a newer version than it knows instead of
//!   misreading it ([`crate::consume`]); the operator sees it under `deadletter.<consumer>`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A payload type of one event family.
pub trait Event: Serialize + DeserializeOwned {
    /// The family: the subject without the bus prefix and without qualifying tokens
    /// (`memory.store` for `memory.store.chunk`).
    const TYPE: &'static str;
    /// The payload schema this build writes and the newest it can read.
    const SCHEMA_VERSION: u32;
}

/// Any event, payload unread: for tools and tests that look at envelopes without interpreting
/// them. It matches every family and every schema version.
impl Event for Value {
    const TYPE: &'static str = "";
    const SCHEMA_VERSION: u32 = u32::MAX;
}

/// Whether an envelope's `type` belongs to `family` (itself, or it with qualifying tokens).
pub fn in_family(event_type: &str, family: &str) -> bool {
    family.is_empty()
        || event_type
            .strip_prefix(family)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

// ---------------------------------------------------------------------------------------------
// MESSAGES

/// `message.received.telegram`: a Telegram update as Telegram sent it, queued by the gateway's
/// webhook (or long poll) for its own consumer, which handles updates in order per chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageReceivedTelegram {
    /// The bot (its name in the appliance's config) that received the update.
    pub bot: String,
    /// The update as the Bot API delivered it; the gateway normalises it when handling.
    pub update: Value,
}

impl Event for MessageReceivedTelegram {
    const TYPE: &'static str = "message.received.telegram";
    const SCHEMA_VERSION: u32 = 1;
}

/// `message.processed`: the router stored an agent's answer. The usage-recorder counts it into
/// `usage_records` (tokens, cost, GPU-seconds per user, agent and model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageProcessed {
    pub user_id: Uuid,
    pub agent_id: String,
    /// The stored answer and its session.
    #[serde(default)]
    pub message_id: Option<Uuid>,
    #[serde(default)]
    pub session_id: Option<Uuid>,
    /// The provider and model that gave the answer (after any fallback).
    pub provider: String,
    pub model: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    #[serde(default)]
    pub cost: f64,
    #[serde(default = "usd")]
    pub currency: String,
    #[serde(default)]
    pub gpu_seconds: f64,
    /// Model calls made for tools before the answer.
    #[serde(default)]
    pub tool_steps: u32,
    /// The prompt, policy and config versions the turn ran with.
    #[serde(default)]
    pub versions: Value,
}

fn usd() -> String {
    "USD".into()
}

impl Event for MessageProcessed {
    const TYPE: &'static str = "message.processed";
    const SCHEMA_VERSION: u32 = 1;
}

/// `message.sent.<channel>`: an answer was delivered to the user (the Telegram message ids it
/// took, for edits and audits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageSent {
    pub bot: String,
    pub chat_id: i64,
    /// The channel's ids of the messages the answer was split into, in order.
    pub telegram_message_ids: Vec<i32>,
    /// The agent that answered, when the router said.
    #[serde(default)]
    pub agent: Option<String>,
    /// The stored answer in memory, when there is one.
    #[serde(default)]
    pub message_id: Option<Uuid>,
    /// The router's trace of the turn (the gateway's own trace is the envelope's).
    #[serde(default)]
    pub router_trace_id: Option<String>,
}

impl Event for MessageSent {
    const TYPE: &'static str = "message.sent";
    const SCHEMA_VERSION: u32 = 1;
}

// ---------------------------------------------------------------------------------------------
// MEMORY

/// `memory.store.<kind>`: an item (a message, fact or document chunk) waits to be embedded and
/// indexed; published by memory's relay from `index_state`, consumed by its memory-indexer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryStore {
    /// `message`, `fact` or `chunk` (also the subject's qualifier).
    pub kind: String,
    pub id: Uuid,
}

impl Event for MemoryStore {
    const TYPE: &'static str = "memory.store";
    const SCHEMA_VERSION: u32 = 1;
}

/// `memory.indexed`: an item's vector is stored and searchable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryIndexed {
    pub kind: String,
    pub id: Uuid,
    /// The vector collection it went to (`messages`, `chunks`).
    pub collection: String,
    /// The embedding model that made the vector.
    pub model: String,
}

impl Event for MemoryIndexed {
    const TYPE: &'static str = "memory.indexed";
    const SCHEMA_VERSION: u32 = 1;
}

// ---------------------------------------------------------------------------------------------
// AGENT_RUNS
//
// A crew run's life: `requested` (by the router's `start_crew_run` tool, or by the crews API for
// a run it recorded), then `progress` as steps finish or the run waits for its user, then one
// `completed` or `failed`. A run that waited for input and got it is requested again under the
// same `run_id`; the worker resumes it from its journal.

/// What a run has used so far, as its journal sums it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RunUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub cost: f64,
    #[serde(default)]
    pub gpu_seconds: f64,
    /// Model calls and tool calls made.
    #[serde(default)]
    pub steps: u32,
}

impl RunUsage {
    pub fn tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// `agent.run.requested`: a crew run is asked for (or asked to go on after its user answered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRunRequested {
    pub run_id: Uuid,
    /// The crew's id.
    pub crew: String,
    /// What the crew is to do, in the agent's words.
    pub task: String,
    pub user_id: Uuid,
    /// The agent that asked, and its session: where the result goes back.
    pub agent_id: String,
    #[serde(default)]
    pub session_id: Option<Uuid>,
    /// Values for the crew's `{placeholder}`s.
    #[serde(default)]
    pub inputs: std::collections::BTreeMap<String, String>,
    /// The chat that asked, so progress and the result reach it.
    #[serde(default)]
    pub origin: Option<AttachmentOrigin>,
}

impl Event for AgentRunRequested {
    const TYPE: &'static str = "agent.run.requested";
    const SCHEMA_VERSION: u32 = 1;
}

/// `agent.run.progress`: a step finished, or the run waits for its user's answer (`question`).
/// The gateway keeps one message per run up to date with `line`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRunProgress {
    pub run_id: Uuid,
    pub crew: String,
    pub user_id: Uuid,
    /// Tasks finished, and the crew's task count.
    pub done: u32,
    pub total: u32,
    /// One short line for a person: "2/3 · researcher: compare prices".
    pub line: String,
    /// Set when the run waits for its user (a task with `human_input`).
    #[serde(default)]
    pub question: Option<String>,
    #[serde(default)]
    pub usage: RunUsage,
    #[serde(default)]
    pub origin: Option<AttachmentOrigin>,
}

impl Event for AgentRunProgress {
    const TYPE: &'static str = "agent.run.progress";
    const SCHEMA_VERSION: u32 = 1;
}

/// `agent.run.completed`: a crew run finished with a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRunCompleted {
    pub run_id: Uuid,
    pub crew: String,
    pub user_id: Uuid,
    /// The final answer.
    pub result: String,
    #[serde(default)]
    pub usage: RunUsage,
    #[serde(default)]
    pub origin: Option<AttachmentOrigin>,
}

impl Event for AgentRunCompleted {
    const TYPE: &'static str = "agent.run.completed";
    const SCHEMA_VERSION: u32 = 1;
}

/// `agent.run.failed`: a crew run stopped without a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRunFailed {
    pub run_id: Uuid,
    pub crew: String,
    pub user_id: Uuid,
    /// For the user and the operator.
    pub reason: String,
    /// Why, as a code: `tokens`, `cost`, `gpu_seconds`, `steps`, `wall_time`, `max_iter`,
    /// `delegation_loop`, `cancelled`, `refused`, `invalid`, `failed`.
    #[serde(default)]
    pub stop: String,
    #[serde(default)]
    pub usage: RunUsage,
    #[serde(default)]
    pub origin: Option<AttachmentOrigin>,
}

impl Event for AgentRunFailed {
    const TYPE: &'static str = "agent.run.failed";
    const SCHEMA_VERSION: u32 = 1;
}

// ---------------------------------------------------------------------------------------------
// ATTACHMENTS

/// Where a file (or a crew run's request) came from, so the one who sent it can be answered
/// where they sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentOrigin {
    /// `telegram`, `admin` or `api`.
    pub channel: String,
    /// The configured bot that received it (Telegram).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<i64>,
    /// The user's message that carried the file (a reply quotes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<i64>,
}

/// Events written before attempts were counted were of the first.
fn first_attempt() -> u32 {
    1
}

/// `attachment.created.<format>`: a file a user sent is stored (content-addressed) and waits for
/// the parser (again, with the next `attempt`, after a retry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentCreated {
    pub attachment_id: Uuid,
    pub user_id: Uuid,
    /// The file's name as the user gave it.
    pub name: String,
    pub mime: String,
    pub bytes: u64,
    /// Hex SHA-256 of the content: its key in the blob store.
    pub sha256: String,
    /// `daarion_formats::Format` as text (`pdf`, `docx`…), detected from the bytes.
    #[serde(default)]
    pub format: String,
    /// Every call the parser makes for this event carries it; a later retry makes it stale.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    #[serde(default)]
    pub origin: Option<AttachmentOrigin>,
}

impl Event for AttachmentCreated {
    const TYPE: &'static str = "attachment.created";
    const SCHEMA_VERSION: u32 = 1;
}

/// `attachment.parsed`: the parser extracted the attachment's text into a memory document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentParsed {
    pub attachment_id: Uuid,
    pub user_id: Uuid,
    /// The memory document holding the text.
    pub document_id: Uuid,
    /// Pages (or minutes of a recording) read.
    pub pages: u32,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub format: String,
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    #[serde(default)]
    pub origin: Option<AttachmentOrigin>,
}

impl Event for AttachmentParsed {
    const TYPE: &'static str = "attachment.parsed";
    const SCHEMA_VERSION: u32 = 1;
}

/// `attachment.indexed`: every chunk of the attachment's document is searchable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentIndexed {
    pub attachment_id: Uuid,
    pub user_id: Uuid,
    pub document_id: Uuid,
    pub chunks: u32,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub format: String,
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    #[serde(default)]
    pub origin: Option<AttachmentOrigin>,
}

impl Event for AttachmentIndexed {
    const TYPE: &'static str = "attachment.indexed";
    const SCHEMA_VERSION: u32 = 1;
}

/// `attachment.failed`: the attachment could not be read; nothing of it is searchable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentFailed {
    pub attachment_id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub format: String,
    pub attempt: u32,
    /// For a person: "encrypted PDF", "no text found".
    pub reason: String,
    /// Retrying without a change will not help.
    pub permanent: bool,
    #[serde(default)]
    pub origin: Option<AttachmentOrigin>,
}

impl Event for AttachmentFailed {
    const TYPE: &'static str = "attachment.failed";
    const SCHEMA_VERSION: u32 = 1;
}

// ---------------------------------------------------------------------------------------------
// AUDIT

/// `audit.action` / `audit.error`: who did what to which thing, and the state around it.
/// Stored by the audit-logger in the append-only `audit_log` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// A user id, `admin`, or a service name for automatic actions.
    pub actor: String,
    /// Dotted verb, e.g. `prompt.activate`, `service.restart`.
    pub action: String,
    #[serde(default)]
    pub target: Option<String>,
    /// `ok`, `denied` or `failed`.
    #[serde(default = "ok")]
    pub outcome: String,
    #[serde(default)]
    pub before: Option<serde_json::Value>,
    #[serde(default)]
    pub after: Option<serde_json::Value>,
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
}

fn ok() -> String {
    "ok".into()
}

impl Event for AuditRecord {
    const TYPE: &'static str = "audit";
    const SCHEMA_VERSION: u32 = 1;
}

// ---------------------------------------------------------------------------------------------
// OPS (on the AUDIT stream)

/// `ops.health`: a unit the supervisor runs changed state (ready, failed, restarting…).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpsHealth {
    /// The unit: a service name, `nats`, `prometheus`, `alertmanager`.
    pub unit: String,
    /// `starting`, `ready`, `backoff`, `failed`, `stopped`…
    pub state: String,
    #[serde(default)]
    pub previous: String,
    /// Why it changed, for a person: "exited with status 137", "readiness failed 3 times".
    #[serde(default)]
    pub cause: String,
    #[serde(default)]
    pub restarts: u32,
}

impl Event for OpsHealth {
    const TYPE: &'static str = "ops.health";
    const SCHEMA_VERSION: u32 = 1;
}

/// `ops.alert`: an alert Alertmanager sent to the gateway (firing or resolved).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpsAlert {
    /// `firing` or `resolved`.
    pub status: String,
    pub alertname: String,
    /// `critical`, `warning` or `info`.
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub description: String,
    /// Alertmanager's fingerprint: one alert's firing and resolved events share it.
    #[serde(default)]
    pub fingerprint: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// RFC 3339.
    #[serde(default)]
    pub starts_at: String,
    #[serde(default)]
    pub ends_at: String,
}

impl Event for OpsAlert {
    const TYPE: &'static str = "ops.alert";
    const SCHEMA_VERSION: u32 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        for (event_type, family, inside) in [
            ("memory.store.chunk", "memory.store", true),
            ("memory.store", "memory.store", true),
            ("memory.stored", "memory.store", false),
            ("memory.indexed", "memory.store", false),
            ("audit.action", "audit", true),
            ("anything.at.all", "", true),
        ] {
            assert_eq!(
                in_family(event_type, family),
                inside,
                "{event_type} in {family}"
            );
        }
    }

    #[test]
    fn processed_events_from_older_producers_still_read() {
        let minimal = serde_json::json!({
            "user_id": Uuid::nil(), "agent_id": "a", "provider": "p", "model": "m",
            "prompt_tokens": 1, "completion_tokens": 2
        });
        let read: MessageProcessed = serde_json::from_value(minimal).unwrap();
        assert_eq!(read.currency, "USD");
        assert_eq!(
            (read.cost, read.gpu_seconds, read.tool_steps),
            (0.0, 0.0, 0)
        );
    }
}
