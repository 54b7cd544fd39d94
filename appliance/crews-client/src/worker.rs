//! The crews worker's calls that keep a run's journal (`/v1/worker/runs/…`, `service_write`
//! scope). The crews service owns the tables; the worker holds a run by a lease it renews, and
//! every write names the worker, so a worker that was paused past its lease (and whose run
//! another worker took) is refused (`409 lease_lost`) instead of writing beside it.
//!
//! Refusals the worker acts on, by error code: `run_final` (the run is finished or cancelled:
//! a redelivered request, dropped; also the answer to a claim of an unknown run whose crew does
//! not exist, which the service records as failed `invalid` and announces), `run_leased`
//! (another live worker holds it: retried later), `waiting_input` (it waits for its user:
//! dropped until resumed), `lease_lost`.
//!
//! Scope: the worker's calls need a service credential: the root token, an `admin` token, or a
//! `crews:write` token bound to no user.
//!
//! Human input: `finish` with [`Outcome::WaitingInput`] pauses the run. When its user answers
//! (`POST /v1/runs/{id}/resume`), the service journals a `human_input` step under the key
//! [`human_input_key`]`(task, round)` = `human/<task key>/<round>`, where `task` is the task of
//! the last step the run journalled before it paused (`run` when none had a task) and `round`
//! counts that task's answers from 1; its `output` is `{"answer": "<text>"}` (empty or `ok`:
//! go on as it is) and its `input` `{"question": …}`. Then the run is queued and requested
//! again; the worker, claiming it, finds the answer in the journal under that key.
//!
//! Usage: a step's `usage` is added to the run's; an `llm` or `tool` step whose `usage.steps`
//! is 0 counts as one step.

use std::collections::BTreeMap;

use daarion_bus::events::AttachmentOrigin;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::run::{Run, Step, StepKind, Stop};
use crate::spec::CrewSpec;

pub const RUN_FINAL: &str = "run_final";
pub const RUN_LEASED: &str = "run_leased";
pub const WAITING_INPUT: &str = "waiting_input";
pub const LEASE_LOST: &str = "lease_lost";

/// The journal key of the user's `round`-th answer (from 1) to task `task`'s question.
pub fn human_input_key(task: &str, round: u32) -> String {
    format!("human/{task}/{round}")
}

/// `POST /v1/worker/runs/{id}/claim`: takes (or creates, for a request that came over the bus
/// without a record) the run and leases it to `worker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// This worker process (`host:pid:start`), the lease's holder.
    pub worker: String,
    pub lease_secs: u32,
    /// From `agent.run.requested`, for a run the crews service has not recorded yet.
    pub crew: String,
    #[serde(default)]
    pub task: String,
    pub user_id: Uuid,
    pub agent_id: String,
    #[serde(default)]
    pub session_id: Option<Uuid>,
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
    #[serde(default)]
    pub origin: Option<AttachmentOrigin>,
    #[serde(default)]
    pub trace_id: Option<String>,
}

/// A claimed run: its record with every step journalled so far, and the crew version it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub run: Run,
    pub spec: CrewSpec,
    #[serde(with = "time::serde::rfc3339")]
    pub lease_until: OffsetDateTime,
}

/// `POST /v1/worker/runs/{id}/steps`: one journal entry. A key already journalled is not
/// written again: the answer carries the stored step (`created: false`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRecord {
    pub worker: String,
    pub key: String,
    pub kind: StepKind,
    #[serde(default)]
    pub task: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub tool: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    pub input: Value,
    pub output: Value,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub usage: daarion_bus::events::RunUsage,
    pub duration_ms: u64,
    /// For a `task_output` step: the progress line the user sees ("2/3 · researcher: …"); the
    /// service publishes `agent.run.progress` with it in the same transaction.
    #[serde(default)]
    pub progress: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    pub step: Step,
    pub created: bool,
    /// Someone asked to cancel the run: stop at once and finish it as cancelled.
    pub cancel: bool,
}

/// `POST /v1/worker/runs/{id}/heartbeat`: renews the lease while a long step runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub worker: String,
    pub lease_secs: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatAnswer {
    pub cancel: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub lease_until: OffsetDateTime,
}

/// How a run ends (or pauses, for its user).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Outcome {
    Completed { result: String },
    Failed { stop: Stop },
    WaitingInput { question: String },
}

/// `POST /v1/worker/runs/{id}/finish`: the run's end (and the lease's). The service writes the
/// state and its `agent.run.completed|failed|progress` event in one transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finish {
    pub worker: String,
    pub outcome: Outcome,
}
