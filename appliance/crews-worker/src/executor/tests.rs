//! The executor against a scripted model and an in-memory journal that keeps the contract
//! (a key is written once; the stored step answers a repeat).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use daarion_crews_client::worker::{Claim, Finish, HeartbeatAnswer, Outcome, Recorded, StepRecord};
use daarion_crews_client::{
    Budget, CrewAgent, CrewSpec, CrewTask, Process, Run, RunState, RunUsage, Step, StepKind,
    StopCode,
};
use daarion_router_client::{
    StepRequest, StepResponse, StepToolCall, StepUsage, ToolRequest, ToolResponse,
};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Control, Executor, Interrupted, Settings, human_key};
use crate::ports::{Journal, JournalError, StepError, Steps};

#[derive(Debug, Clone)]
enum Say {
    Text(&'static str),
    Owned(String),
    Tool(&'static str, Value),
}

/// Answers by the first rule whose pattern is in the request's system prompt or first user
/// message; each rule's answers are taken in order, the last one repeated.
#[derive(Default)]
struct Model {
    rules: Mutex<Vec<(String, VecDeque<Say>)>>,
    delay: Duration,
    seen: Mutex<Vec<(StepRequest, Instant, Instant)>>,
    tools: Mutex<Vec<ToolRequest>>,
    usage: StepUsage,
}

impl Model {
    fn new(rules: &[(&str, &[Say])]) -> Model {
        Model {
            rules: Mutex::new(
                rules
                    .iter()
                    .map(|(p, says)| (p.to_string(), says.iter().cloned().collect()))
                    .collect(),
            ),
            usage: StepUsage {
                prompt_tokens: 10,
                completion_tokens: 5,
                cost: 0.01,
                gpu_seconds: 1.0,
            },
            ..Model::default()
        }
    }

    fn requests(&self) -> Vec<StepRequest> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(r, _, _)| r.clone())
            .collect()
    }

    fn keys(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .map(|r| r.idempotency_key.split_once('/').unwrap().1.to_owned())
            .collect()
    }

    /// The requests whose subject has `pattern`.
    fn asked(&self, pattern: &str) -> Vec<StepRequest> {
        self.requests()
            .into_iter()
            .filter(|r| subject(r).contains(pattern))
            .collect()
    }
}

fn subject(r: &StepRequest) -> String {
    r.messages
        .iter()
        .take(2)
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn all_text(r: &StepRequest) -> String {
    r.messages
        .iter()
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

impl Steps for Model {
    fn llm<'a>(
        &'a self,
        request: &'a StepRequest,
    ) -> BoxFuture<'a, Result<StepResponse, StepError>> {
        Box::pin(async move {
            let start = Instant::now();
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            let say = {
                let mut rules = self.rules.lock().unwrap();
                let text = subject(request);
                let rule = rules
                    .iter_mut()
                    .find(|(p, _)| text.contains(p.as_str()))
                    .unwrap_or_else(|| panic!("no rule for: {text}"));
                if rule.1.len() > 1 {
                    rule.1.pop_front().unwrap()
                } else {
                    rule.1[0].clone()
                }
            };
            self.seen
                .lock()
                .unwrap()
                .push((request.clone(), start, Instant::now()));
            let (content, tool_calls) = match say {
                Say::Text(t) => (t.to_owned(), Vec::new()),
                Say::Owned(t) => (t, Vec::new()),
                Say::Tool(name, arguments) => (
                    String::new(),
                    vec![StepToolCall {
                        id: "c1".into(),
                        name: name.into(),
                        arguments,
                    }],
                ),
            };
            Ok(StepResponse {
                content,
                tool_calls,
                provider: "fake".into(),
                model: "fake-1".into(),
                usage: self.usage,
                replayed: false,
            })
        })
    }

    fn tool<'a>(
        &'a self,
        request: &'a ToolRequest,
    ) -> BoxFuture<'a, Result<ToolResponse, StepError>> {
        Box::pin(async move {
            self.tools.lock().unwrap().push(request.clone());
            Ok(ToolResponse {
                output: json!(format!("{} found: 3 suppliers", request.name)),
                ok: true,
                usage: StepUsage::default(),
                replayed: false,
            })
        })
    }
}

/// The journal as the crews service keeps it.
#[derive(Default)]
struct Memory {
    steps: Mutex<Vec<Step>>,
    cancel: AtomicBool,
    /// Writes accepted before the service "goes away".
    fail_after: Mutex<Option<usize>>,
    writes: AtomicUsize,
}

impl Memory {
    fn steps(&self) -> Vec<Step> {
        self.steps.lock().unwrap().clone()
    }

    fn add(&self, key: &str, kind: StepKind, output: Value) {
        let mut steps = self.steps.lock().unwrap();
        let seq = steps.len() as u32 + 1;
        steps.push(step(seq, key, kind, output, RunUsage::default()));
    }
}

fn step(seq: u32, key: &str, kind: StepKind, output: Value, usage: RunUsage) -> Step {
    Step {
        run_id: Uuid::nil(),
        seq,
        key: key.into(),
        kind,
        task: None,
        agent: None,
        tool: None,
        model: None,
        input: Value::Null,
        output,
        error: None,
        usage,
        duration_ms: 0,
        at: OffsetDateTime::now_utc(),
    }
}

impl Journal for Memory {
    fn record<'a>(&'a self, record: StepRecord) -> BoxFuture<'a, Result<Recorded, JournalError>> {
        Box::pin(async move {
            if let Some(max) = *self.fail_after.lock().unwrap()
                && self.writes.load(Ordering::SeqCst) >= max
            {
                return Err(JournalError::Unavailable("connection refused".into()));
            }
            self.writes.fetch_add(1, Ordering::SeqCst);
            let mut steps = self.steps.lock().unwrap();
            let cancel = self.cancel.load(Ordering::SeqCst);
            if let Some(existing) = steps.iter().find(|s| s.key == record.key) {
                return Ok(Recorded {
                    step: existing.clone(),
                    created: false,
                    cancel,
                });
            }
            let mut new = step(
                steps.len() as u32 + 1,
                &record.key,
                record.kind,
                record.output,
                record.usage,
            );
            new.task = record.task;
            new.agent = record.agent;
            new.input = json!({ "progress": record.progress });
            steps.push(new.clone());
            Ok(Recorded {
                step: new,
                created: true,
                cancel,
            })
        })
    }

    fn heartbeat(&self, _: u32) -> BoxFuture<'_, Result<HeartbeatAnswer, JournalError>> {
        Box::pin(async move {
            Ok(HeartbeatAnswer {
                cancel: false,
                lease_until: OffsetDateTime::now_utc(),
            })
        })
    }

    fn finish(&self, _: Finish) -> BoxFuture<'_, Result<(), JournalError>> {
        Box::pin(async { Ok(()) })
    }
}

fn agent(key: &str, role: &str) -> CrewAgent {
    CrewAgent {
        key: key.into(),
        role: role.into(),
        goal: format!("be a good {role}"),
        backstory: String::new(),
        llm: None,
        tools: Vec::new(),
        allow_delegation: false,
        max_iter: 5,
        max_rpm: None,
        max_retry_limit: 2,
    }
}

fn task(key: &str, agent: &str, description: &str) -> CrewTask {
    CrewTask {
        key: key.into(),
        description: description.into(),
        expected_output: "a paragraph".into(),
        agent: Some(agent.into()),
        context: Vec::new(),
        tools: Vec::new(),
        async_execution: false,
        human_input: false,
        output_json: None,
        guardrail: None,
    }
}

fn crew(agents: Vec<CrewAgent>, tasks: Vec<CrewTask>) -> CrewSpec {
    CrewSpec {
        id: "suppliers".into(),
        name: String::new(),
        description: String::new(),
        process: Process::Sequential,
        agent: None,
        manager_llm: None,
        agents,
        tasks,
        budget: Budget::default(),
    }
}

fn settings() -> Settings {
    Settings {
        context_tokens: 1000,
        max_delegations: 5,
        max_delegation_depth: 2,
        max_human_rounds: 3,
    }
}

fn claim(spec: &CrewSpec, budget: Budget, journal: &Memory) -> Claim {
    Claim {
        run: Run {
            id: Uuid::from_u128(7),
            crew: spec.id.clone(),
            crew_version: 1,
            user_id: Uuid::from_u128(1),
            agent_id: "helper".into(),
            session_id: None,
            state: RunState::Running,
            inputs: BTreeMap::new(),
            task: String::new(),
            budget,
            usage: RunUsage::default(),
            tasks_done: 0,
            tasks_total: spec.tasks.len() as u32,
            result: None,
            stop: None,
            question: None,
            origin: None,
            trace_id: None,
            created_at: OffsetDateTime::now_utc(),
            started_at: Some(OffsetDateTime::now_utc()),
            finished_at: None,
            steps: journal.steps(),
        },
        spec: spec.clone(),
        lease_until: OffsetDateTime::now_utc(),
    }
}

async fn execute_with(
    spec: &CrewSpec,
    budget: Budget,
    settings: Settings,
    model: &Arc<Model>,
    journal: &Arc<Memory>,
) -> Result<Outcome, Interrupted> {
    let executor = Executor::new(
        claim(spec, budget, journal),
        model.clone(),
        journal.clone(),
        settings,
        Control::default(),
        "test-worker".into(),
    );
    executor.execute().await
}

async fn execute(spec: &CrewSpec, model: &Arc<Model>, journal: &Arc<Memory>) -> Outcome {
    execute_with(spec, Budget::default(), settings(), model, journal)
        .await
        .expect("not interrupted")
}

fn completed(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Completed { result } => result,
        other => panic!("not completed: {other:?}"),
    }
}

fn stopped(outcome: &Outcome) -> StopCode {
    match outcome {
        Outcome::Failed { stop } => stop.code,
        other => panic!("not stopped: {other:?}"),
    }
}

fn three_tasks() -> CrewSpec {
    let mut c = task("compare", "writer", "Compare the suppliers");
    c.context = vec!["research".into()];
    crew(
        vec![agent("researcher", "Researcher"), agent("writer", "Writer")],
        vec![
            task("research", "researcher", "Research the suppliers"),
            task("draft", "writer", "Draft a note"),
            c,
        ],
    )
}

#[tokio::test]
async fn sequential_tasks_see_earlier_outputs_or_only_their_context() {
    let model = Arc::new(Model::new(&[
        (
            "Research the",
            &[Say::Text("Final Answer: ACME is cheapest")],
        ),
        ("Draft a", &[Say::Text("Final Answer: DRAFT-NOTE")]),
        ("Compare the", &[Say::Text("Final Answer: ACME wins")]),
    ]));
    let journal = Arc::new(Memory::default());
    let outcome = execute(&three_tasks(), &model, &journal).await;
    assert_eq!(completed(&outcome), "ACME wins");
    let draft = &model.asked("Draft a")[0];
    assert!(all_text(draft).contains("ACME is cheapest"));
    let compare = &model.asked("Compare the")[0];
    assert!(all_text(compare).contains("ACME is cheapest"));
    assert!(
        !all_text(compare).contains("DRAFT-NOTE"),
        "context names only `research`"
    );
    let progress: Vec<String> = journal
        .steps()
        .iter()
        .filter(|s| s.kind == StepKind::TaskOutput)
        .map(|s| s.input["progress"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        progress,
        [
            "1/3 · Researcher: research",
            "2/3 · Writer: draft",
            "3/3 · Writer: compare"
        ]
    );
    assert_eq!(
        model.requests()[0].idempotency_key,
        format!("{}/t0/h0/r0/i0/llm", Uuid::from_u128(7))
    );
}

#[tokio::test]
async fn earlier_outputs_over_the_budget_are_summarised_once() {
    let long = format!("Final Answer: {}", "price list ".repeat(200));
    let model = Arc::new(Model::new(&[
        ("Research the", &[Say::Owned(long)]),
        ("You condense", &[Say::Text("SUMMARY: ACME cheapest")]),
        ("Draft a", &[Say::Text("Final Answer: note")]),
    ]));
    let spec = crew(
        vec![agent("researcher", "Researcher"), agent("writer", "Writer")],
        vec![
            task("research", "researcher", "Research the suppliers"),
            task("draft", "writer", "Draft a note"),
        ],
    );
    let journal = Arc::new(Memory::default());
    let small = Settings {
        context_tokens: 100,
        ..settings()
    };
    execute_with(&spec, Budget::default(), small, &model, &journal)
        .await
        .unwrap();
    assert_eq!(model.asked("You condense").len(), 1);
    let draft = all_text(&model.asked("Draft a")[0]);
    assert!(draft.contains("SUMMARY: ACME cheapest"));
    assert!(!draft.contains("price list price list"));
    assert!(
        journal
            .steps()
            .iter()
            .any(|s| s.key == "sum/t1" && s.kind == StepKind::Summary)
    );

    // Under the budget: no summary.
    let model = Arc::new(Model::new(&[
        ("Research the", &[Say::Text("Final Answer: short")]),
        ("Draft a", &[Say::Text("Final Answer: note")]),
    ]));
    execute(&spec, &model, &Arc::new(Memory::default())).await;
    assert!(model.asked("You condense").is_empty());
}

#[tokio::test]
async fn async_branches_run_in_parallel_and_join() {
    let mut model = Model::new(&[
        ("Price at A", &[Say::Text("Final Answer: A costs 10")]),
        ("Price at B", &[Say::Text("Final Answer: B costs 12")]),
        ("Compare the", &[Say::Text("Final Answer: A wins")]),
    ]);
    model.delay = Duration::from_millis(200);
    let model = Arc::new(model);
    let mut a = task("a", "researcher", "Price at A");
    a.async_execution = true;
    let mut b = task("b", "researcher", "Price at B");
    b.async_execution = true;
    let mut c = task("compare", "writer", "Compare the prices");
    c.context = vec!["a".into(), "b".into()];
    let spec = crew(
        vec![agent("researcher", "Researcher"), agent("writer", "Writer")],
        vec![a, b, c],
    );
    let journal = Arc::new(Memory::default());
    let started = Instant::now();
    let outcome = execute(&spec, &model, &journal).await;
    assert_eq!(completed(&outcome), "A wins");
    let seen = model.seen.lock().unwrap().clone();
    let span = |p: &str| {
        seen.iter()
            .find(|(r, _, _)| subject(r).contains(p))
            .map(|(_, s, e)| (*s, *e))
            .unwrap()
    };
    let ((sa, ea), (sb, eb), (sc, _)) =
        (span("Price at A"), span("Price at B"), span("Compare the"));
    assert!(sa < eb && sb < ea, "the branches overlap in time");
    assert!(sc >= ea && sc >= eb, "the join waits for both");
    let compare = all_text(&model.asked("Compare the")[0]);
    assert!(compare.contains("A costs 10") && compare.contains("B costs 12"));
    assert!(
        started.elapsed() < Duration::from_millis(580),
        "took {:?}",
        started.elapsed()
    );
}

fn hierarchical(agents: Vec<CrewAgent>) -> CrewSpec {
    let mut spec = crew(
        agents,
        vec![CrewTask {
            agent: None,
            ..task("report", "x", "Write the supplier report")
        }],
    );
    spec.process = Process::Hierarchical;
    spec
}

#[tokio::test]
async fn hierarchical_delegation_works_and_loops_are_cut() {
    // Delegation that goes well.
    let model = Arc::new(Model::new(&[
        (
            "Crew Manager",
            &[
                Say::Tool(
                    "delegate_work",
                    json!({"agent": "researcher", "task": "find prices", "context": "three suppliers"}),
                ),
                Say::Text("Final Answer: report: ACME 10"),
            ],
        ),
        ("find prices", &[Say::Text("Final Answer: ACME 10")]),
    ]));
    let journal = Arc::new(Memory::default());
    let outcome = execute(
        &hierarchical(vec![agent("researcher", "Researcher")]),
        &model,
        &journal,
    )
    .await;
    assert_eq!(completed(&outcome), "report: ACME 10");
    let delegation = journal
        .steps()
        .into_iter()
        .find(|s| s.kind == StepKind::Delegation)
        .unwrap();
    assert_eq!(delegation.key, "t0/h0/r0/i0/tool/0");
    assert_eq!(delegation.output["answer"], "ACME 10");
    let manager_second = &model.asked("Crew Manager")[1];
    assert!(
        all_text(manager_second).contains("ACME 10"),
        "the manager sees the coworker's answer"
    );

    // The manager delegates the same work again: stopped.
    let model = Arc::new(Model::new(&[
        (
            "Crew Manager",
            &[Say::Tool(
                "delegate_work",
                json!({"agent": "researcher", "task": "find prices"}),
            )],
        ),
        ("find prices", &[Say::Text("Final Answer: ACME 10")]),
    ]));
    let outcome = execute(
        &hierarchical(vec![agent("researcher", "Researcher")]),
        &model,
        &Arc::new(Memory::default()),
    )
    .await;
    assert_eq!(stopped(&outcome), StopCode::DelegationLoop);
    assert_eq!(
        model.asked("find prices").len(),
        1,
        "the repeat never reached the coworker"
    );

    // A → B → A: researcher hands to writer, who hands back to researcher.
    let mut researcher = agent("researcher", "Researcher");
    researcher.allow_delegation = true;
    let mut writer = agent("writer", "Writer");
    writer.allow_delegation = true;
    let model = Arc::new(Model::new(&[
        (
            "Crew Manager",
            &[Say::Tool(
                "delegate_work",
                json!({"agent": "researcher", "task": "find prices"}),
            )],
        ),
        (
            "find prices",
            &[Say::Text(
                "Action: delegate_work\nAction Input: {\"agent\": \"writer\", \"task\": \"write it up\"}",
            )],
        ),
        (
            "write it up",
            &[Say::Text(
                "Action: delegate_work\nAction Input: {\"agent\": \"researcher\", \"task\": \"check it\"}",
            )],
        ),
    ]));
    let spec = hierarchical(vec![researcher, writer]);
    let settings = Settings {
        max_delegation_depth: 5,
        ..settings()
    };
    let outcome = execute_with(
        &spec,
        Budget::default(),
        settings,
        &model,
        &Arc::new(Memory::default()),
    )
    .await
    .unwrap();
    match outcome {
        Outcome::Failed { stop } => {
            assert_eq!(stop.code, StopCode::DelegationLoop);
            assert!(
                stop.detail
                    .contains("manager → researcher → writer → researcher"),
                "{}",
                stop.detail
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_failed_guardrail_is_retried_with_its_reason() {
    let model = Arc::new(Model::new(&[
        (
            "Research the",
            &[
                Say::Text("Final Answer: ACME"),
                Say::Text("Final Answer: ACME at 10 USD, BOLT at 12 USD"),
            ],
        ),
        (
            "You check",
            &[Say::Text("FAIL: no prices given"), Say::Text("PASS")],
        ),
    ]));
    let mut t = task("research", "researcher", "Research the suppliers");
    t.guardrail = Some("every supplier has a price".into());
    let spec = crew(vec![agent("researcher", "Researcher")], vec![t]);
    let journal = Arc::new(Memory::default());
    let outcome = execute(&spec, &model, &journal).await;
    assert_eq!(completed(&outcome), "ACME at 10 USD, BOLT at 12 USD");
    let retry = &model.asked("Research the")[1];
    assert!(all_text(retry).contains("no prices given"));
    assert_eq!(
        retry.idempotency_key.split_once('/').unwrap().1,
        "t0/h0/r1/i0/llm"
    );

    // Never passing: the task fails after 1 + max_retry_limit tries.
    let model = Arc::new(Model::new(&[
        ("Research the", &[Say::Text("Final Answer: ACME")]),
        ("You check", &[Say::Text("FAIL: still no prices")]),
    ]));
    let outcome = execute(&spec, &model, &Arc::new(Memory::default())).await;
    assert_eq!(stopped(&outcome), StopCode::Failed);
    assert_eq!(model.asked("Research the").len(), 3);
}

#[tokio::test]
async fn output_json_is_validated_and_retried() {
    let model = Arc::new(Model::new(&[(
        "Research the",
        &[
            Say::Text("Final Answer: ACME is cheapest"),
            Say::Text("Final Answer: {\"cheapest\": \"ACME\"}"),
            Say::Text("Final Answer: ```json\n{\"cheapest\": \"ACME\", \"price\": 10}\n```"),
        ],
    )]));
    let mut t = task("research", "researcher", "Research the suppliers");
    t.output_json = Some(
        json!({"type": "object", "required": ["cheapest", "price"], "properties": {"price": {"type": "number"}}}),
    );
    let spec = crew(vec![agent("researcher", "Researcher")], vec![t]);
    let journal = Arc::new(Memory::default());
    let outcome = execute(&spec, &model, &journal).await;
    assert!(completed(&outcome).contains("\"price\": 10"));
    let asked = model.asked("Research the");
    assert_eq!(asked.len(), 3);
    assert!(all_text(&asked[1]).contains("not JSON"));
    assert!(all_text(&asked[2]).contains("$.price is required"));
    let checks = journal
        .steps()
        .iter()
        .filter(|s| s.kind == StepKind::Guardrail)
        .count();
    assert_eq!(checks, 3);
}

#[tokio::test]
async fn malformed_output_is_reasked_once_then_taken() {
    let mut researcher = agent("researcher", "Researcher");
    researcher.tools = vec!["web_search".into()];
    researcher.max_iter = 10;
    let spec = crew(
        vec![researcher],
        vec![task("research", "researcher", "Research the suppliers")],
    );
    let model = Arc::new(Model::new(&[(
        "Research the",
        &[Say::Text("ACME, I think")],
    )]));
    let outcome = execute(&spec, &model, &Arc::new(Memory::default())).await;
    assert_eq!(completed(&outcome), "ACME, I think");
    let asked = model.asked("Research the");
    assert_eq!(asked.len(), 2, "one re-ask, not max_iter");
    assert!(all_text(&asked[1]).contains("could not be read"));

    // Repaired instead: a tool call with a bare-string input, then the answer.
    let model = Arc::new(Model::new(&[(
        "Research the",
        &[
            Say::Text("Action: web_search\nAction Input: cheap suppliers"),
            Say::Text("Final Answer: done"),
        ],
    )]));
    let outcome = execute(&spec, &model, &Arc::new(Memory::default())).await;
    assert_eq!(completed(&outcome), "done");
    assert_eq!(
        model.tools.lock().unwrap()[0].arguments,
        json!({"input": "cheap suppliers"})
    );
}

#[tokio::test]
async fn max_iter_forces_a_final_answer_then_stops() {
    let mut researcher = agent("researcher", "Researcher");
    researcher.tools = vec!["web_search".into()];
    researcher.max_iter = 2;
    let spec = crew(
        vec![researcher],
        vec![task("research", "researcher", "Research the suppliers")],
    );
    let model = Arc::new(Model::new(&[(
        "Research the",
        &[Say::Tool("web_search", json!({"q": "x"}))],
    )]));
    let outcome = execute(&spec, &model, &Arc::new(Memory::default())).await;
    // The forced request offers no tools; a model that still asks for one has no answer.
    assert_eq!(stopped(&outcome), StopCode::MaxIter);
    assert_eq!(model.requests().len(), 3);
    assert!(model.requests()[2].tools.is_empty());

    let model = Arc::new(Model::new(&[(
        "Research the",
        &[
            Say::Tool("web_search", json!({})),
            Say::Tool("web_search", json!({})),
            Say::Text("Final Answer: best guess"),
        ],
    )]));
    let outcome = execute(&spec, &model, &Arc::new(Memory::default())).await;
    assert_eq!(completed(&outcome), "best guess");
}

#[tokio::test]
async fn each_budget_stops_the_run_with_its_code() {
    let spec = three_tasks();
    let cases = [
        (
            Budget {
                max_tokens: Some(30),
                ..Budget::default()
            },
            StopCode::Tokens,
            2,
        ),
        (
            Budget {
                max_cost: Some(0.015),
                ..Budget::default()
            },
            StopCode::Cost,
            2,
        ),
        (
            Budget {
                max_gpu_seconds: Some(1.0),
                ..Budget::default()
            },
            StopCode::GpuSeconds,
            1,
        ),
        (
            Budget {
                max_steps: Some(2),
                ..Budget::default()
            },
            StopCode::Steps,
            2,
        ),
    ];
    for (budget, code, calls) in cases {
        let model = Arc::new(Model::new(&[("", &[Say::Text("Final Answer: ok")])]));
        let outcome = execute_with(
            &spec,
            budget,
            settings(),
            &model,
            &Arc::new(Memory::default()),
        )
        .await
        .unwrap();
        assert_eq!(stopped(&outcome), code);
        assert_eq!(model.requests().len(), calls, "{code:?}");
    }
    // Wall time, from when the run started.
    let model = Arc::new(Model::new(&[("", &[Say::Text("Final Answer: ok")])]));
    let journal = Arc::new(Memory::default());
    let mut c = claim(
        &spec,
        Budget {
            max_wall_secs: Some(60),
            ..Budget::default()
        },
        &journal,
    );
    c.run.started_at = Some(OffsetDateTime::now_utc() - time::Duration::minutes(2));
    let executor = Executor::new(
        c,
        model.clone(),
        journal,
        settings(),
        Control::default(),
        "w".into(),
    );
    assert_eq!(
        stopped(&executor.execute().await.unwrap()),
        StopCode::WallTime
    );
    assert!(model.requests().is_empty());
}

#[tokio::test]
async fn a_cancel_seen_in_the_journal_stops_the_run() {
    let model = Arc::new(Model::new(&[("", &[Say::Text("Final Answer: ok")])]));
    let journal = Arc::new(Memory::default());
    journal.cancel.store(true, Ordering::SeqCst);
    let outcome = execute(&three_tasks(), &model, &journal).await;
    assert_eq!(stopped(&outcome), StopCode::Cancelled);
    assert_eq!(model.requests().len(), 1);
}

#[tokio::test]
async fn human_input_pauses_and_resumes_with_feedback() {
    let model = Arc::new(Model::new(&[
        (
            "Research the",
            &[
                Say::Text("Final Answer: long list"),
                Say::Text("Final Answer: short list"),
            ],
        ),
        ("Draft a", &[Say::Text("Final Answer: note")]),
    ]));
    let mut t = task("research", "researcher", "Research the suppliers");
    t.human_input = true;
    let spec = crew(
        vec![agent("researcher", "Researcher"), agent("writer", "Writer")],
        vec![t, task("draft", "writer", "Draft a note")],
    );
    let journal = Arc::new(Memory::default());
    match execute(&spec, &model, &journal).await {
        Outcome::WaitingInput { question } => assert!(
            question.starts_with("long list") && question.contains("reply with changes, or ok")
        ),
        other => panic!("{other:?}"),
    }
    journal.add(
        &human_key("research", 1),
        StepKind::HumanInput,
        json!({"answer": "make it shorter"}),
    );
    match execute(&spec, &model, &journal).await {
        Outcome::WaitingInput { question } => assert!(question.starts_with("short list")),
        other => panic!("{other:?}"),
    }
    let revision = &model.asked("Research the")[1];
    assert!(all_text(revision).contains("make it shorter"));
    journal.add(&human_key("research", 2), StepKind::HumanInput, json!("ok"));
    let outcome = execute(&spec, &model, &journal).await;
    assert_eq!(completed(&outcome), "note");
    assert!(all_text(&model.asked("Draft a")[0]).contains("short list"));
    let keys = model.keys();
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        keys.len(),
        unique.len(),
        "no model call repeated across the pauses: {keys:?}"
    );
}

#[tokio::test]
async fn a_resumed_run_repeats_no_journalled_step() {
    let mut researcher = agent("researcher", "Researcher");
    researcher.tools = vec!["web_search".into()];
    let model = Arc::new(Model::new(&[
        (
            "Research the",
            &[
                Say::Tool("web_search", json!({"q": "suppliers"})),
                Say::Text("Final Answer: ACME"),
            ],
        ),
        ("Draft a", &[Say::Text("Final Answer: DRAFT")]),
        ("Compare the", &[Say::Text("Final Answer: ACME wins")]),
    ]));
    let mut spec = three_tasks();
    spec.agents[0] = researcher;
    let journal = Arc::new(Memory::default());
    // The crews service goes away after four writes: llm, tool, llm, output of task 1.
    *journal.fail_after.lock().unwrap() = Some(4);
    let first = execute_with(&spec, Budget::default(), settings(), &model, &journal).await;
    assert!(
        matches!(first, Err(Interrupted::Unavailable(_))),
        "{first:?}"
    );
    let journalled: Vec<String> = journal.steps().iter().map(|s| s.key.clone()).collect();
    assert_eq!(journalled.len(), 4);
    let calls_before = model.requests().len();
    let tools_before = model.tools.lock().unwrap().len();

    *journal.fail_after.lock().unwrap() = None;
    let outcome = execute(&spec, &model, &journal).await;
    assert_eq!(completed(&outcome), "ACME wins");
    let again: Vec<String> = model.keys()[calls_before..].to_vec();
    for key in &journalled {
        assert!(!again.contains(key), "{key} reached the model again");
    }
    assert_eq!(
        model.tools.lock().unwrap().len(),
        tools_before,
        "the tool ran once"
    );
    let keys: Vec<String> = journal.steps().iter().map(|s| s.key.clone()).collect();
    let mut unique = keys.clone();
    unique.dedup();
    assert_eq!(keys, unique, "every step journalled once");
    assert_eq!(
        journal
            .steps()
            .iter()
            .filter(|s| s.kind == StepKind::TaskOutput)
            .count(),
        3
    );
}

#[tokio::test]
async fn refused_steps_stop_with_refused() {
    struct Refusing;
    impl Steps for Refusing {
        fn llm<'a>(&'a self, _: &'a StepRequest) -> BoxFuture<'a, Result<StepResponse, StepError>> {
            Box::pin(async { Err(StepError::Refused("quota exhausted".into())) })
        }
        fn tool<'a>(
            &'a self,
            _: &'a ToolRequest,
        ) -> BoxFuture<'a, Result<ToolResponse, StepError>> {
            Box::pin(async { Err(StepError::Refused("no".into())) })
        }
    }
    let journal = Arc::new(Memory::default());
    let executor = Executor::new(
        claim(&three_tasks(), Budget::default(), &journal),
        Arc::new(Refusing),
        journal,
        settings(),
        Control::default(),
        "w".into(),
    );
    assert_eq!(
        stopped(&executor.execute().await.unwrap()),
        StopCode::Refused
    );
}
