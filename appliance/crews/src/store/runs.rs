//! Runs and their journal as rows, and the events a run's changes owe the bus.

use std::collections::BTreeMap;

use daarion_bus::events::{
    AgentRunCompleted, AgentRunFailed, AgentRunProgress, AgentRunRequested, AttachmentOrigin,
    RunUsage,
};
use daarion_crews_client::{Budget, Run, RunState, Step, StepKind, Stop};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::ListScope;
use crate::{CrewsError, outbox};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub id: Uuid,
    pub crew: String,
    pub crew_version: i32,
    pub user_id: Uuid,
    pub agent_id: String,
    pub session_id: Option<Uuid>,
    pub state: String,
    pub inputs: Json<BTreeMap<String, String>>,
    pub task: String,
    pub budget: Json<Budget>,
    pub usage: Json<RunUsage>,
    pub tasks_done: i32,
    pub tasks_total: i32,
    pub result: Option<String>,
    pub stop: Option<Json<Stop>>,
    pub question: Option<String>,
    pub origin: Option<Json<AttachmentOrigin>>,
    pub trace_id: Option<String>,
    pub started_by: String,
    pub lease_holder: Option<String>,
    pub lease_until: Option<OffsetDateTime>,
    pub cancel_requested: bool,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
}

impl RunRow {
    pub fn state(&self) -> RunState {
        RunState::parse(&self.state).unwrap_or(RunState::Failed)
    }

    pub fn run(&self, steps: Vec<Step>) -> Run {
        Run {
            id: self.id,
            crew: self.crew.clone(),
            crew_version: self.crew_version as u32,
            user_id: self.user_id,
            agent_id: self.agent_id.clone(),
            session_id: self.session_id,
            state: self.state(),
            inputs: self.inputs.0.clone(),
            task: self.task.clone(),
            budget: self.budget.0.clone(),
            usage: self.usage.0,
            tasks_done: self.tasks_done as u32,
            tasks_total: self.tasks_total as u32,
            result: self.result.clone(),
            stop: self.stop.as_ref().map(|s| s.0.clone()),
            question: self.question.clone(),
            origin: self.origin.as_ref().map(|o| o.0.clone()),
            trace_id: self.trace_id.clone(),
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            steps,
        }
    }

    /// The lease is someone else's and still running.
    pub fn leased_by_other(&self, worker: &str, now: OffsetDateTime) -> Option<&str> {
        match (&self.lease_holder, self.lease_until) {
            (Some(holder), Some(until)) if holder != worker && until > now => Some(holder),
            _ => None,
        }
    }

    pub fn requested(&self) -> AgentRunRequested {
        AgentRunRequested {
            run_id: self.id,
            crew: self.crew.clone(),
            task: self.task.clone(),
            user_id: self.user_id,
            agent_id: self.agent_id.clone(),
            session_id: self.session_id,
            inputs: self.inputs.0.clone(),
            origin: self.origin.as_ref().map(|o| o.0.clone()),
        }
    }

    pub fn progress(&self, line: String, question: Option<String>) -> AgentRunProgress {
        AgentRunProgress {
            run_id: self.id,
            crew: self.crew.clone(),
            user_id: self.user_id,
            done: self.tasks_done as u32,
            total: self.tasks_total as u32,
            line,
            question,
            usage: self.usage.0,
            origin: self.origin.as_ref().map(|o| o.0.clone()),
        }
    }

    pub fn completed(&self) -> AgentRunCompleted {
        AgentRunCompleted {
            run_id: self.id,
            crew: self.crew.clone(),
            user_id: self.user_id,
            result: self.result.clone().unwrap_or_default(),
            usage: self.usage.0,
            origin: self.origin.as_ref().map(|o| o.0.clone()),
        }
    }

    pub fn failed(&self) -> AgentRunFailed {
        let stop = self.stop.as_ref().map(|s| s.0.clone());
        AgentRunFailed {
            run_id: self.id,
            crew: self.crew.clone(),
            user_id: self.user_id,
            reason: stop.as_ref().map(|s| s.detail.clone()).unwrap_or_default(),
            stop: stop.map(|s| s.code.as_str().to_owned()).unwrap_or_default(),
            usage: self.usage.0,
            origin: self.origin.as_ref().map(|o| o.0.clone()),
        }
    }

    /// Writes the event this row's (final or paused) state owes the bus.
    pub async fn announce(&self, tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
        let trace = self.trace_id.as_deref();
        match self.state() {
            RunState::Queued => outbox::record(tx, trace, self.requested()).await,
            RunState::Completed => outbox::record(tx, trace, self.completed()).await,
            RunState::Failed | RunState::Cancelled => {
                outbox::record(tx, trace, self.failed()).await
            }
            RunState::WaitingInput => {
                let question = self.question.clone().unwrap_or_default();
                let line = format!(
                    "{}/{} · waiting for your answer",
                    self.tasks_done, self.tasks_total
                );
                outbox::record(tx, trace, self.progress(line, Some(question))).await
            }
            RunState::Running => Ok(()),
        }
    }
}

/// A run about to be recorded.
pub struct NewRun {
    pub id: Uuid,
    pub crew: String,
    pub crew_version: u32,
    pub user_id: Uuid,
    pub agent_id: String,
    pub session_id: Option<Uuid>,
    pub state: RunState,
    pub inputs: BTreeMap<String, String>,
    pub task: String,
    pub budget: Budget,
    pub tasks_total: u32,
    pub stop: Option<Stop>,
    pub origin: Option<AttachmentOrigin>,
    pub trace_id: Option<String>,
    pub started_by: String,
}

pub async fn insert(tx: &mut Transaction<'_, Postgres>, new: NewRun) -> Result<RunRow, CrewsError> {
    let final_ = new.state.is_final();
    Ok(sqlx::query_as(
        "INSERT INTO crew_runs (id, crew, crew_version, user_id, agent_id, session_id, state, inputs, \
             task, budget, tasks_total, stop, origin, trace_id, started_by, finished_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                 CASE WHEN $16 THEN clock_timestamp() END) \
         RETURNING *",
    )
    .bind(new.id)
    .bind(new.crew)
    .bind(new.crew_version as i32)
    .bind(new.user_id)
    .bind(new.agent_id)
    .bind(new.session_id)
    .bind(new.state.as_str())
    .bind(Json(new.inputs))
    .bind(new.task)
    .bind(Json(new.budget))
    .bind(new.tasks_total as i32)
    .bind(new.stop.map(Json))
    .bind(new.origin.map(Json))
    .bind(new.trace_id)
    .bind(new.started_by)
    .bind(final_)
    .fetch_one(&mut **tx)
    .await?)
}

pub async fn get<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<Option<RunRow>, CrewsError> {
    Ok(sqlx::query_as("SELECT * FROM crew_runs WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?)
}

pub async fn get_or_404(pool: &PgPool, id: Uuid) -> Result<RunRow, CrewsError> {
    get(pool, id)
        .await?
        .ok_or_else(|| CrewsError::NotFound(format!("run {id}")))
}

/// The run, locked until `tx` ends.
pub async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<Option<RunRow>, CrewsError> {
    Ok(
        sqlx::query_as("SELECT * FROM crew_runs WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

pub struct Filter {
    pub state: Option<RunState>,
    pub user_id: Option<Uuid>,
    pub crew: Option<String>,
    pub limit: u32,
}

/// Newest first.
pub async fn list(
    pool: &PgPool,
    filter: &Filter,
    scope: &ListScope,
) -> Result<Vec<RunRow>, CrewsError> {
    let (scope_user, started_by) = match scope {
        ListScope::All => (None, None),
        ListScope::User(u) => (Some(*u), None),
        ListScope::StartedBy(name) => (None, Some(name.as_str())),
    };
    Ok(sqlx::query_as(
        "SELECT * FROM crew_runs \
         WHERE ($1::text IS NULL OR state = $1) AND ($2::uuid IS NULL OR user_id = $2) \
           AND ($3::text IS NULL OR crew = $3) AND ($4::uuid IS NULL OR user_id = $4) \
           AND ($5::text IS NULL OR started_by = $5) \
         ORDER BY created_at DESC, id LIMIT $6",
    )
    .bind(filter.state.map(RunState::as_str))
    .bind(filter.user_id)
    .bind(filter.crew.as_deref())
    .bind(scope_user)
    .bind(started_by)
    .bind(i64::from(filter.limit))
    .fetch_all(pool)
    .await?)
}

#[derive(sqlx::FromRow)]
struct StepRow {
    run_id: Uuid,
    seq: i32,
    key: String,
    kind: String,
    task: Option<String>,
    agent: Option<String>,
    tool: Option<String>,
    model: Option<String>,
    input: Value,
    output: Value,
    error: Option<String>,
    usage: Json<RunUsage>,
    duration_ms: i64,
    at: OffsetDateTime,
}

impl From<StepRow> for Step {
    fn from(r: StepRow) -> Step {
        Step {
            run_id: r.run_id,
            seq: r.seq as u32,
            key: r.key,
            kind: serde_json::from_value(Value::String(r.kind)).unwrap_or(StepKind::Llm),
            task: r.task,
            agent: r.agent,
            tool: r.tool,
            model: r.model,
            input: r.input,
            output: r.output,
            error: r.error,
            usage: r.usage.0,
            duration_ms: r.duration_ms.max(0) as u64,
            at: r.at,
        }
    }
}

pub fn kind_str(kind: StepKind) -> String {
    match serde_json::to_value(kind) {
        Ok(Value::String(s)) => s,
        _ => "llm".into(),
    }
}

pub async fn steps<'e>(db: impl PgExecutor<'e>, run: Uuid) -> Result<Vec<Step>, CrewsError> {
    Ok(
        sqlx::query_as::<_, StepRow>("SELECT * FROM crew_run_steps WHERE run_id = $1 ORDER BY seq")
            .bind(run)
            .fetch_all(db)
            .await?
            .into_iter()
            .map(Step::from)
            .collect(),
    )
}

pub async fn step_by_key(
    tx: &mut Transaction<'_, Postgres>,
    run: Uuid,
    key: &str,
) -> Result<Option<Step>, CrewsError> {
    Ok(
        sqlx::query_as::<_, StepRow>("SELECT * FROM crew_run_steps WHERE run_id = $1 AND key = $2")
            .bind(run)
            .bind(key)
            .fetch_optional(&mut **tx)
            .await?
            .map(Step::from),
    )
}

pub struct NewStep<'a> {
    pub key: &'a str,
    pub kind: StepKind,
    pub task: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub tool: Option<&'a str>,
    pub model: Option<&'a str>,
    pub input: &'a Value,
    pub output: &'a Value,
    pub error: Option<&'a str>,
    pub usage: RunUsage,
    pub duration_ms: u64,
}

/// Appends a step (the run must be locked by `tx`, which keeps `seq` gapless).
pub async fn insert_step(
    tx: &mut Transaction<'_, Postgres>,
    run: Uuid,
    step: NewStep<'_>,
) -> Result<Step, CrewsError> {
    let row: StepRow = sqlx::query_as(
        "INSERT INTO crew_run_steps (run_id, seq, key, kind, task, agent, tool, model, input, output, \
             error, usage, duration_ms) \
         VALUES ($1, (SELECT coalesce(max(seq), 0) + 1 FROM crew_run_steps WHERE run_id = $1), \
                 $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING *",
    )
    .bind(run)
    .bind(step.key)
    .bind(kind_str(step.kind))
    .bind(step.task)
    .bind(step.agent)
    .bind(step.tool)
    .bind(step.model)
    .bind(step.input)
    .bind(step.output)
    .bind(step.error)
    .bind(Json(step.usage))
    .bind(i64::try_from(step.duration_ms).unwrap_or(i64::MAX))
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.into())
}

/// Adds a step's usage to the run's.
pub fn add_usage(total: &mut RunUsage, step: &RunUsage) {
    total.prompt_tokens += step.prompt_tokens;
    total.completion_tokens += step.completion_tokens;
    total.cost += step.cost;
    total.gpu_seconds += step.gpu_seconds;
    total.steps += step.steps;
}

/// Counts by state, for the gauge.
pub async fn counts(pool: &PgPool) -> Result<Vec<(String, i64)>, CrewsError> {
    Ok(
        sqlx::query_as("SELECT state, count(*) FROM crew_runs GROUP BY state")
            .fetch_all(pool)
            .await?,
    )
}
