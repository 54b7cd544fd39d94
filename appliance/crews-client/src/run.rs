//! A run of a crew, its journal of steps, and the events the API streams while it runs.

use std::collections::BTreeMap;

use daarion_bus::events::{AttachmentOrigin, RunUsage};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::spec::Budget;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Queued,
    Running,
    /// A `human_input` task waits for its user's answer (`POST /v1/runs/{id}/resume`).
    WaitingInput,
    Completed,
    Failed,
    Cancelled,
}

impl RunState {
    pub const ALL: [RunState; 6] = [
        RunState::Queued,
        RunState::Running,
        RunState::WaitingInput,
        RunState::Completed,
        RunState::Failed,
        RunState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::WaitingInput => "waiting_input",
            RunState::Completed => "completed",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RunState> {
        RunState::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Nothing more happens to it unless someone resumes or re-runs it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunState::Completed | RunState::Failed | RunState::Cancelled
        )
    }
}

/// Why a run stopped without completing. The same codes are `agent.run.failed`'s `stop` and the
/// `reason` label of `daarion_crews_runs_stopped_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopCode {
    /// Budgets.
    Tokens,
    Cost,
    GpuSeconds,
    Steps,
    WallTime,
    /// A task reached its agent's `max_iter` without an answer.
    MaxIter,
    /// Hierarchical delegation went round in a circle or past its bounds.
    DelegationLoop,
    Cancelled,
    /// Policy or quota refused a step.
    Refused,
    /// The crew or its inputs cannot run (unknown crew, missing input, unknown agent).
    Invalid,
    /// A provider or tool kept failing, or the output never passed its guardrail.
    Failed,
}

impl StopCode {
    pub const ALL: [StopCode; 11] = [
        StopCode::Tokens,
        StopCode::Cost,
        StopCode::GpuSeconds,
        StopCode::Steps,
        StopCode::WallTime,
        StopCode::MaxIter,
        StopCode::DelegationLoop,
        StopCode::Cancelled,
        StopCode::Refused,
        StopCode::Invalid,
        StopCode::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StopCode::Tokens => "tokens",
            StopCode::Cost => "cost",
            StopCode::GpuSeconds => "gpu_seconds",
            StopCode::Steps => "steps",
            StopCode::WallTime => "wall_time",
            StopCode::MaxIter => "max_iter",
            StopCode::DelegationLoop => "delegation_loop",
            StopCode::Cancelled => "cancelled",
            StopCode::Refused => "refused",
            StopCode::Invalid => "invalid",
            StopCode::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<StopCode> {
        StopCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// A budget ran out (the user is told which).
    pub fn is_budget(self) -> bool {
        matches!(
            self,
            StopCode::Tokens
                | StopCode::Cost
                | StopCode::GpuSeconds
                | StopCode::Steps
                | StopCode::WallTime
        )
    }
}

/// Why a run stopped: the code, and words for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stop {
    pub code: StopCode,
    pub detail: String,
}

/// `POST /v1/crews/{id}/runs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// Values for the crew's `{placeholder}`s.
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
    /// What to do, in words, when the crew's tasks take a `{task}` input or as extra context.
    #[serde(default)]
    pub task: String,
    /// Whose run it is (charged to their quota); a user-confined credential may name only its
    /// own user, and defaults to it.
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// The agent whose chain and policy apply when the crew names none.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Tighter limits than the crew's for this run.
    #[serde(default)]
    pub budget: Option<Budget>,
    #[serde(default)]
    pub origin: Option<AttachmentOrigin>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunCreated {
    pub run: Run,
}

/// `POST /v1/runs/{id}/resume`: the answer to a waiting run's question (empty or `ok`: go on
/// as it is), or going on with a failed or cancelled run from its last finished step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeRequest {
    #[serde(default)]
    pub answer: Option<String>,
    /// Raised limits for a run that stopped on its budget.
    #[serde(default)]
    pub budget: Option<Budget>,
}

/// `POST /v1/runs/{id}/rerun`: a new run of the same crew version with the same inputs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rerun {
    /// Run the crew's newest version instead of the one the old run used.
    #[serde(default)]
    pub latest: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: Uuid,
    pub crew: String,
    pub crew_version: u32,
    pub user_id: Uuid,
    pub agent_id: String,
    #[serde(default)]
    pub session_id: Option<Uuid>,
    pub state: RunState,
    pub inputs: BTreeMap<String, String>,
    pub task: String,
    /// The limits this run has, defaults filled in.
    pub budget: Budget,
    pub usage: RunUsage,
    /// Tasks finished, of the crew's.
    pub tasks_done: u32,
    pub tasks_total: u32,
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub stop: Option<Stop>,
    /// What a waiting run asks its user.
    #[serde(default)]
    pub question: Option<String>,
    #[serde(default)]
    pub origin: Option<AttachmentOrigin>,
    /// The trace of the turn (or API call) that started it.
    #[serde(default)]
    pub trace_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// `GET /v1/runs/{id}` fills it; lists leave it empty.
    #[serde(default)]
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// A model call.
    Llm,
    /// A tool call.
    Tool,
    /// A task's accepted output.
    TaskOutput,
    /// The manager handed work to an agent (or asked it a question).
    Delegation,
    /// The user's answer to a `human_input` question.
    HumanInput,
    /// A guardrail or `output_json` check.
    Guardrail,
    /// Earlier outputs summarised for a task's context.
    Summary,
}

/// One entry of a run's journal, written before anything follows from it. `key` names the step
/// within the run (`t2/i3/llm`): the worker, resuming, takes a step whose key is in the journal
/// from the journal instead of doing it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub run_id: Uuid,
    /// Order of writing, from 1.
    pub seq: u32,
    pub key: String,
    pub kind: StepKind,
    /// The task's key and the agent's (when the step belongs to one).
    #[serde(default)]
    pub task: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub tool: Option<String>,
    /// The model that answered (for `llm`).
    #[serde(default)]
    pub model: Option<String>,
    /// What went in (messages, arguments), bounded for the transcript view.
    pub input: Value,
    /// What came out: the step's result as the worker needs it to resume.
    pub output: Value,
    #[serde(default)]
    pub error: Option<String>,
    pub usage: daarion_bus::events::RunUsage,
    pub duration_ms: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// `GET /v1/runs/{id}/events` (server-sent events, `event:` is the variant's name): the run as
/// it is when the stream opens (`snapshot`), then every step and state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    Snapshot {
        run: Box<Run>,
    },
    Step {
        step: Box<Step>,
    },
    State {
        state: RunState,
        #[serde(default)]
        stop: Option<Stop>,
        #[serde(default)]
        question: Option<String>,
        #[serde(default)]
        result: Option<String>,
        usage: RunUsage,
        /// Tasks finished so far.
        #[serde(default)]
        tasks_done: u32,
    },
}
