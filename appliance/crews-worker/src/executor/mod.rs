//! Executes one claimed run against [`Steps`] and [`Journal`].
//!
//! # Step keys
//!
//! Every step has a key that depends only on the crew and on earlier journalled outputs, so a
//! resumed run walks the same keys; before any call the executor looks its key up in the
//! journal and, when it is there, takes the recorded output instead of calling again. A step is
//! journalled before anything follows from it (its output is only used once written).
//!
//! | key | kind | what |
//! |---|---|---|
//! | `sum/t<i>` | summary | earlier outputs summarised for task `i`'s context |
//! | `t<i>/h<h>/r<r>/i<n>/llm` | llm | the agent's `n`-th model call on task `i` (`h`: revision after the user's feedback, `r`: retry after a failed check) |
//! | `t<i>/h<h>/r<r>/i<n>/tool/<c>` | tool / delegation | the `c`-th tool call that model call asked for |
//! | `<tool key>/a/i<n>/llm`, `<tool key>/a/…` | llm, tool | the coworker's own steps within a delegation |
//! | `t<i>/h<h>/r<r>/final/llm` | llm | the forced final answer after `max_iter` calls |
//! | `t<i>/h<h>/r<r>/json` | guardrail | the `output_json` check |
//! | `t<i>/h<h>/r<r>/guard` | guardrail | the model's guardrail verdict |
//! | `t<i>/h<h>/out` | task_output | the task's output, with the progress line |
//! | `human/<task key>/<round>` | human_input | the user's answer (written by the crews service) |
//!
//! # Parse errors
//!
//! A model answer that is neither native tool calls nor readable ReAct text is shown its parse
//! error once; a second unreadable answer in a row is taken as the final answer as it is (a
//! small model that will not follow the format usually still answered), so no task spends its
//! `max_iter` on the same mistake.

mod agent;
mod plan;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use daarion_crews_client::worker::{Claim, Outcome, StepRecord};
use daarion_crews_client::{CrewSpec, Process, Run, RunUsage, Step, StepKind, Stop, StopCode};
use daarion_router_client::{StepRequest, StepResponse, ToolRequest, ToolResponse};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::budget;
use crate::metrics::{STEPS, step_seconds};
use crate::ports::{Journal, JournalError, StepError, Steps};

/// The journal key of the user's answer to a `human_input` task's `round`-th question (from 1).
pub const HUMAN_INPUT_KEY: &str = "human/{task}/{round}";

pub fn human_key(task: &str, round: u32) -> String {
    HUMAN_INPUT_KEY
        .replace("{task}", task)
        .replace("{round}", &round.to_string())
}

/// What the worker's configuration sets for every run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub context_tokens: u32,
    pub max_delegations: u32,
    pub max_delegation_depth: u32,
    /// Questions one `human_input` task may ask before its last revision is taken.
    pub max_human_rounds: u32,
}

/// Signals from outside the executor, checked before every call (a call in flight finishes).
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// Someone cancelled the run (seen in a heartbeat).
    pub cancel: CancellationToken,
    /// Another worker took the run.
    pub lease_lost: CancellationToken,
    /// This worker is stopping: leave the run leased for another to resume.
    pub shutdown: CancellationToken,
}

/// Why a run left the executor without an outcome: it is resumed later from its journal.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Interrupted {
    #[error("{0}")]
    Unavailable(String),
    #[error("another worker holds the run")]
    LeaseLost,
    #[error("the worker is shutting down")]
    Shutdown,
}

/// How a piece of the run ended early.
#[derive(Debug)]
pub(crate) enum Halt {
    Stop(Stop),
    Wait(String),
    Interrupt(Interrupted),
}

pub(crate) fn stop(code: StopCode, detail: impl Into<String>) -> Halt {
    Halt::Stop(Stop {
        code,
        detail: detail.into(),
    })
}

impl From<JournalError> for Halt {
    fn from(e: JournalError) -> Halt {
        match e {
            JournalError::LeaseLost => Halt::Interrupt(Interrupted::LeaseLost),
            JournalError::Unavailable(m) => Halt::Interrupt(Interrupted::Unavailable(m)),
            JournalError::Refused(m) => {
                stop(StopCode::Failed, format!("the journal refused a step: {m}"))
            }
        }
    }
}

impl From<StepError> for Halt {
    fn from(e: StepError) -> Halt {
        match e {
            StepError::Refused(m) => stop(StopCode::Refused, format!("A step was refused: {m}")),
            StepError::Failed(m) => stop(StopCode::Failed, format!("A step failed: {m}")),
            StepError::Unreachable(m) => Halt::Interrupt(Interrupted::Unavailable(m)),
        }
    }
}

/// Where a step belongs, for its journal entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct Owner {
    pub task: Option<String>,
    pub agent: Option<String>,
}

pub struct Executor {
    steps: Arc<dyn Steps>,
    journal: Arc<dyn Journal>,
    settings: Settings,
    control: Control,
    worker: String,
    run: Run,
    spec: CrewSpec,
    journalled: Mutex<HashMap<String, Step>>,
    usage: Mutex<RunUsage>,
    rpm: Mutex<HashMap<String, std::collections::VecDeque<tokio::time::Instant>>>,
    tasks_done: AtomicU32,
    delegations: AtomicU32,
    started: Instant,
    elapsed_before: u64,
}

impl Executor {
    pub fn new(
        claim: Claim,
        steps: Arc<dyn Steps>,
        journal: Arc<dyn Journal>,
        settings: Settings,
        control: Control,
        worker: String,
    ) -> Executor {
        let Claim { mut run, spec, .. } = claim;
        let mut usage = RunUsage::default();
        let mut journalled = HashMap::new();
        for step in std::mem::take(&mut run.steps) {
            budget::add(&mut usage, &step.usage);
            journalled.insert(step.key.clone(), step);
        }
        let elapsed_before = run
            .started_at
            .map(|at| {
                (time::OffsetDateTime::now_utc() - at)
                    .whole_seconds()
                    .max(0) as u64
            })
            .unwrap_or(0);
        Executor {
            steps,
            journal,
            settings,
            control,
            worker,
            run,
            spec,
            journalled: Mutex::new(journalled),
            usage: Mutex::new(usage),
            rpm: Mutex::new(HashMap::new()),
            tasks_done: AtomicU32::new(0),
            delegations: AtomicU32::new(0),
            started: Instant::now(),
            elapsed_before,
        }
    }

    /// Runs the crew to its outcome (completed, stopped, or waiting for its user), or says why
    /// it was interrupted and must be resumed.
    pub async fn execute(&self) -> Result<Outcome, Interrupted> {
        let result = match self.spec.process {
            Process::Sequential => self.tasks(true).await,
            Process::Hierarchical => self.tasks(false).await,
        };
        match result {
            Ok(result) => Ok(Outcome::Completed { result }),
            Err(Halt::Stop(stop)) => Ok(Outcome::Failed { stop }),
            Err(Halt::Wait(question)) => Ok(Outcome::WaitingInput { question }),
            Err(Halt::Interrupt(why)) => Err(why),
        }
    }

    pub fn usage(&self) -> RunUsage {
        *self.usage.lock().expect("usage lock")
    }

    fn lookup(&self, key: &str) -> Option<Step> {
        self.journalled
            .lock()
            .expect("journal lock")
            .get(key)
            .cloned()
    }

    /// Before a call is made: cancelled, interrupted, or out of budget.
    fn admit(&self) -> Result<(), Halt> {
        if self.control.cancel.is_cancelled() {
            return Err(stop(StopCode::Cancelled, "The run was cancelled."));
        }
        if self.control.lease_lost.is_cancelled() {
            return Err(Halt::Interrupt(Interrupted::LeaseLost));
        }
        if self.control.shutdown.is_cancelled() {
            return Err(Halt::Interrupt(Interrupted::Shutdown));
        }
        let elapsed = self.elapsed_before + self.started.elapsed().as_secs();
        match budget::exceeded(&self.run.budget, &self.usage(), elapsed) {
            Some(stop) => Err(Halt::Stop(stop)),
            None => Ok(()),
        }
    }

    /// `max_rpm`: waits until `who` may make another call this minute.
    async fn throttle(&self, who: &str, max_rpm: Option<u32>) {
        let Some(max) = max_rpm.filter(|m| *m > 0) else {
            return;
        };
        let window = std::time::Duration::from_secs(60);
        loop {
            let wait = {
                let mut rpm = self.rpm.lock().expect("rpm lock");
                let calls = rpm.entry(who.to_owned()).or_default();
                let now = tokio::time::Instant::now();
                while calls
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= window)
                {
                    calls.pop_front();
                }
                if calls.len() < max as usize {
                    calls.push_back(now);
                    return;
                }
                window - now.duration_since(*calls.front().expect("full window"))
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Writes a step; the stored step is what counts (another attempt may have written it).
    async fn record(&self, record: StepRecord) -> Result<Step, Halt> {
        let recorded = self.journal.record(record).await?;
        if recorded.created {
            let mut usage = self.usage.lock().expect("usage lock");
            budget::add(&mut usage, &recorded.step.usage);
        }
        self.journalled
            .lock()
            .expect("journal lock")
            .insert(recorded.step.key.clone(), recorded.step.clone());
        if recorded.cancel {
            self.control.cancel.cancel();
            return Err(stop(StopCode::Cancelled, "The run was cancelled."));
        }
        Ok(recorded.step)
    }

    fn step_record(
        &self,
        key: &str,
        kind: StepKind,
        owner: &Owner,
        input: Value,
        output: Value,
    ) -> StepRecord {
        StepRecord {
            worker: self.worker.clone(),
            key: key.to_owned(),
            kind,
            task: owner.task.clone(),
            agent: owner.agent.clone(),
            tool: None,
            model: None,
            input,
            output,
            error: None,
            usage: RunUsage::default(),
            duration_ms: 0,
            progress: None,
        }
    }

    /// A step that calls nothing (an output, a check, a delegation's result): journalled once.
    async fn note(&self, record: StepRecord) -> Result<Value, Halt> {
        if let Some(step) = self.lookup(&record.key) {
            STEPS
                .with_label_values(&[kind_label(record.kind), "replayed"])
                .inc();
            return Ok(step.output);
        }
        STEPS
            .with_label_values(&[kind_label(record.kind), "made"])
            .inc();
        Ok(self.record(record).await?.output)
    }

    /// One model call under `key`, or its journalled answer.
    async fn llm(
        &self,
        key: &str,
        kind: StepKind,
        owner: &Owner,
        max_rpm: Option<u32>,
        mut request: StepRequest,
    ) -> Result<StepResponse, Halt> {
        if let Some(step) = self.lookup(key) {
            STEPS
                .with_label_values(&[kind_label(kind), "replayed"])
                .inc();
            return decode(key, step.output);
        }
        self.admit()?;
        self.throttle(owner.agent.as_deref().unwrap_or("manager"), max_rpm)
            .await;
        self.admit()?;
        request.idempotency_key = format!("{}/{key}", self.run.id);
        let timer = step_seconds(kind_label(kind)).start_timer();
        let started = Instant::now();
        let response = self.steps.llm(&request).await?;
        let mut record = self.step_record(
            key,
            kind,
            owner,
            json!({ "messages": transcript(&request), "tools": request.tools, "model": request.model }),
            serde_json::to_value(&response).unwrap_or(Value::Null),
        );
        record.model = Some(response.model.clone());
        record.usage = RunUsage {
            prompt_tokens: response.usage.prompt_tokens,
            completion_tokens: response.usage.completion_tokens,
            cost: response.usage.cost,
            gpu_seconds: response.usage.gpu_seconds,
            steps: 1,
        };
        record.duration_ms = started.elapsed().as_millis() as u64;
        let step = self.record(record).await?;
        timer.observe_duration();
        STEPS.with_label_values(&[kind_label(kind), "made"]).inc();
        decode(key, step.output)
    }

    /// One tool call under `key`, or its journalled answer.
    async fn tool(
        &self,
        key: &str,
        owner: &Owner,
        name: &str,
        arguments: Value,
    ) -> Result<ToolResponse, Halt> {
        if let Some(step) = self.lookup(key) {
            STEPS.with_label_values(&["tool", "replayed"]).inc();
            return decode(key, step.output);
        }
        self.admit()?;
        let request = ToolRequest {
            user_id: self.run.user_id,
            agent_id: self.agent_id(),
            session_id: self.run.session_id,
            name: name.to_owned(),
            arguments: arguments.clone(),
            idempotency_key: format!("{}/{key}", self.run.id),
        };
        let timer = step_seconds("tool").start_timer();
        let started = Instant::now();
        let response = self.steps.tool(&request).await?;
        let mut record = self.step_record(
            key,
            StepKind::Tool,
            owner,
            arguments,
            serde_json::to_value(&response).unwrap_or(Value::Null),
        );
        record.tool = Some(name.to_owned());
        record.error = (!response.ok).then(|| bounded(&response.output.to_string(), 500));
        record.usage = RunUsage {
            prompt_tokens: response.usage.prompt_tokens,
            completion_tokens: response.usage.completion_tokens,
            cost: response.usage.cost,
            gpu_seconds: response.usage.gpu_seconds,
            steps: 1,
        };
        record.duration_ms = started.elapsed().as_millis() as u64;
        let step = self.record(record).await?;
        timer.observe_duration();
        STEPS.with_label_values(&["tool", "made"]).inc();
        decode(key, step.output)
    }

    /// The control plane's agent whose chain, policy and quota apply.
    fn agent_id(&self) -> String {
        self.spec
            .agent
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| self.run.agent_id.clone())
    }

    fn request(
        &self,
        model: Option<String>,
        messages: Vec<daarion_router_client::StepMessage>,
        tools: Vec<String>,
    ) -> StepRequest {
        StepRequest {
            user_id: self.run.user_id,
            agent_id: self.agent_id(),
            model,
            messages,
            tools,
            max_tokens: None,
            json_schema: None,
            idempotency_key: String::new(),
        }
    }

    fn next_task_done(&self) -> u32 {
        self.tasks_done.fetch_add(1, Ordering::SeqCst) + 1
    }
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, output: Value) -> Result<T, Halt> {
    serde_json::from_value(output).map_err(|e| {
        stop(
            StopCode::Failed,
            format!("the journal's entry {key} cannot be read back: {e}"),
        )
    })
}

fn kind_label(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Llm => "llm",
        StepKind::Tool => "tool",
        StepKind::TaskOutput => "task_output",
        StepKind::Delegation => "delegation",
        StepKind::HumanInput => "human_input",
        StepKind::Guardrail => "guardrail",
        StepKind::Summary => "summary",
    }
}

/// A request's messages as the transcript keeps them: the last ones, each cut short.
fn transcript(request: &StepRequest) -> Value {
    let skip = request.messages.len().saturating_sub(12);
    Value::Array(
        request.messages[skip..]
            .iter()
            .map(|m| json!({ "role": m.role, "content": bounded(&m.content, 4000), "tool_calls": m.tool_calls }))
            .collect(),
    )
}

pub(crate) fn bounded(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests;
