//! What a crew is: its agents, its tasks, how they are run and within which budget. The shape
//! follows CrewAI's `agents.yaml` / `tasks.yaml` so a CrewAI project imports as it is
//! ([`ImportRequest`]); what CrewAI has and this appliance does not is reported, never dropped
//! silently ([`ImportReport::unknown_keys`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// `sequential`: tasks in order, each seeing earlier outputs (summarised to a budget) unless it
/// names its `context`; tasks with `async_execution` and their `context` dependencies run as a
/// DAG in parallel. `hierarchical`: a manager model delegates the tasks to the agents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Process {
    #[default]
    Sequential,
    Hierarchical,
}

/// A run's limits. `None` takes the appliance's default (`[crews.budget]`); a run that reaches
/// one stops with that reason ([`crate::StopCode`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gpu_seconds: Option<f64>,
    /// Model and tool calls in the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wall_secs: Option<u64>,
}

/// One agent of a crew (CrewAI's `agents.yaml` entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrewAgent {
    /// Its key in the crew (`researcher`); tasks name it.
    pub key: String,
    pub role: String,
    pub goal: String,
    #[serde(default)]
    pub backstory: String,
    /// A model instead of the run's agent chain (`local/smollm2`, `openai/gpt-4o-mini`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<String>,
    /// Built-in tools it may call (the router's tool names).
    #[serde(default)]
    pub tools: Vec<String>,
    #[serde(default)]
    pub allow_delegation: bool,
    /// Model calls for one task before it must give its answer (CrewAI's default: 20).
    #[serde(default = "default_max_iter")]
    pub max_iter: u32,
    /// Model calls per minute; more wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rpm: Option<u32>,
    /// Retries of a task whose output fails its guardrail or `output_json` (CrewAI's default: 2).
    #[serde(default = "default_max_retry_limit")]
    pub max_retry_limit: u32,
}

fn default_max_iter() -> u32 {
    20
}

fn default_max_retry_limit() -> u32 {
    2
}

/// One task of a crew (CrewAI's `tasks.yaml` entry). `{name}` placeholders in `description`
/// and `expected_output` are filled from the run's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrewTask {
    pub key: String,
    pub description: String,
    #[serde(default)]
    pub expected_output: String,
    /// The agent's key; a hierarchical crew's manager chooses when it is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Tasks whose outputs this one sees (instead of all earlier ones).
    #[serde(default)]
    pub context: Vec<String>,
    /// Tools for this task, replacing the agent's.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Runs beside the tasks after it, until a task needs its output.
    #[serde(default)]
    pub async_execution: bool,
    /// The user sees the output and may ask for changes before the crew goes on.
    #[serde(default)]
    pub human_input: bool,
    /// The output must be JSON matching this schema (retried within `max_retry_limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_json: Option<Value>,
    /// A rule the output must satisfy, checked by the model; a failing output is retried with
    /// the reason, within the agent's `max_retry_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrail: Option<String>,
}

/// A crew as the API takes and gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrewSpec {
    /// `^[a-z0-9][a-z0-9_-]{0,63}$`, what `start_crew_run` names.
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub process: Process,
    /// The control plane's agent whose chain, policy and quota the steps use; empty: the agent
    /// that started the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The manager's model in a hierarchical crew; empty: the agent's chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_llm: Option<String>,
    pub agents: Vec<CrewAgent>,
    pub tasks: Vec<CrewTask>,
    #[serde(default)]
    pub budget: Budget,
}

/// A stored version of a crew. Runs keep the version they started with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrewVersion {
    pub crew: String,
    pub version: u32,
    pub spec: CrewSpec,
    /// Who saved it (`admin`, a user id, a token name).
    pub author: String,
    #[serde(default)]
    pub note: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A crew in a list: its active version and how it is used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrewSummary {
    pub id: String,
    pub name: String,
    pub description: String,
    pub process: Process,
    pub version: u32,
    pub versions: u32,
    pub agents: u32,
    pub tasks: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// `GET /v1/crews/{id}/diff?from=&to=`: a unified diff of two versions' pretty JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionDiff {
    pub from: u32,
    pub to: u32,
    pub diff: String,
}

/// `POST /v1/crews/{id}/rollback`: makes a copy of `version` the newest version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    pub version: u32,
}

/// `POST /v1/crews/import`: a CrewAI project's two YAML files, as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub process: Process,
    pub agents_yaml: String,
    pub tasks_yaml: String,
    /// Only check: report what would be imported, store nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What an import made of the YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    pub spec: CrewSpec,
    /// The stored version (none for a dry run).
    #[serde(default)]
    pub version: Option<u32>,
    /// Keys CrewAI knows or the file has that this appliance does not use, as paths
    /// (`agents.researcher.verbose`), so nothing is dropped silently.
    pub unknown_keys: Vec<String>,
    /// `{placeholder}` names the tasks use: the inputs a run must give.
    pub inputs: Vec<String>,
    /// Other things worth knowing ("llm `gpt-4o` is not a model this appliance has").
    pub warnings: Vec<String>,
}
