//! What the getters answer, and what the control plane announces when something changes.

use daarion_policy::{Decision, PolicyDoc};
use serde::{Deserialize, Serialize};

/// A value and the version of it that served this call.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: i64,
    /// Served from cache past its TTL because the control plane did not answer.
    pub stale: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Prompt {
    pub agent_id: String,
    pub version: i32,
    pub content: String,
    pub variables: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct AgentPolicy {
    pub agent_enabled: bool,
    pub document: PolicyDoc,
}

/// A decision and every version that went into it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionReport {
    pub decision: Decision,
    pub policy_version: i64,
    pub roles: Vec<String>,
    pub stale: bool,
}

/// An agent as the router needs it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub default_model: Option<String>,
    pub telegram_bot: Option<String>,
    pub enabled: bool,
    pub revision: i64,
}

/// The payload of `control.changed.<kind>`, published by the control plane after a change
/// commits and read by every client's cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// `agent`, `prompt`, `policy`, `user_roles`, `config`, `quota` or `role`; a string, so a
    /// kind added later reaches older clients as one they ignore rather than one they reject.
    pub kind: String,
    /// The agent, user, config key or quota scope that changed.
    pub id: String,
    /// The agent revision or prompt version now current.
    pub version: i64,
}
