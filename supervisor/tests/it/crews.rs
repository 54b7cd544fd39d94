//! Crew runs through the installed shape of the appliance: the crews service and the crews
//! worker as units of the supervisor, every step a call through the real router to a scripted
//! OpenAI-compatible server (or to SmolLM2 through the swapper); the worker killed with SIGKILL
//! in the middle of a run; budgets and the user's quota; a run started by an agent's tool call.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use futures::StreamExt;
use nix::sys::signal::Signal;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::appliance::{Appliance, free_port};

/// What the scripted model answers to one request.
#[derive(Clone)]
enum Answer {
    /// A text answer, sent after `delay`.
    Text { text: String, delay: Duration },
    /// A native tool call.
    Call { name: String, arguments: Value },
}

fn text(text: &str) -> Answer {
    Answer::Text {
        text: text.to_owned(),
        delay: Duration::ZERO,
    }
}

type Script = Arc<dyn Fn(&Value) -> Answer + Send + Sync>;

/// An OpenAI-compatible server that answers each request by what it asks (runs proceed in
/// parallel, so a fixed order of replies would not do), recording every body.
#[derive(Clone)]
struct Model {
    script: Script,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Model {
    async fn serve(
        script: impl Fn(&Value) -> Answer + Send + Sync + 'static,
    ) -> (Model, SocketAddr) {
        let model = Model {
            script: Arc::new(script),
            seen: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(complete))
            .with_state(model.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (model, addr)
    }

    /// How many requests' last user message contains `marker`.
    fn asked(&self, marker: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|b| last_user(b).contains(marker))
            .count()
    }

    fn bodies(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }
}

/// Each answer costs this much, so sums can be checked exactly.
const PROMPT_TOKENS: u64 = 10;
const COMPLETION_TOKENS: u64 = 5;

async fn complete(State(model): State<Model>, body: Bytes) -> axum::response::Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    model.seen.lock().unwrap().push(body.clone());
    let delta = match (model.script)(&body) {
        Answer::Text { text, delay } => {
            tokio::time::sleep(delay).await;
            json!({"role": "assistant", "content": text})
        }
        Answer::Call { name, arguments } => json!({"role": "assistant", "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function",
             "function": {"name": name, "arguments": arguments.to_string()}}]}),
    };
    let finish = if delta.get("tool_calls").is_some() {
        "tool_calls"
    } else {
        "stop"
    };
    let frames: String = [
        json!({"choices": [{"index": 0, "delta": delta, "finish_reason": null}]}),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}),
        json!({"choices": [], "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS}}),
    ]
    .iter()
    .map(|c| format!("data: {c}\n\n"))
    .chain(std::iter::once("data: [DONE]\n\n".to_owned()))
    .collect();
    ([("content-type", "text/event-stream")], frames).into_response()
}

fn last_user(body: &Value) -> String {
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn final_answer(output: &str) -> String {
    format!("Thought: I know it now.\nFinal Answer: {output}")
}

/// One task's marker (in its description) and the output the model gives for it.
const TASKS: [(&str, &str); 3] = [
    ("TASK-ONE", "supplier A ships in 3 days"),
    ("TASK-TWO", "supplier B is cheaper by 12%"),
    ("TASK-THREE", "choose supplier B"),
];

/// Answers each crew task with its output (the first marker found in the request's last user
/// message); `slow` delays one task's answer.
fn crew_script(slow: Option<(&'static str, Duration)>) -> impl Fn(&Value) -> Answer {
    move |body| {
        let asked = last_user(body);
        for (marker, output) in TASKS {
            if asked.contains(marker) {
                let delay = match slow {
                    Some((m, d)) if m == marker => d,
                    _ => Duration::ZERO,
                };
                return Answer::Text {
                    text: final_answer(output),
                    delay,
                };
            }
        }
        text(&final_answer("nothing asked"))
    }
}

fn three_tasks(id: &str, budget: Value) -> Value {
    json!({
        "id": id,
        "name": "Suppliers",
        "agent": "helper",
        "agents": [
            {"key": "analyst", "role": "Analyst", "goal": "Compare suppliers"}
        ],
        "tasks": TASKS.iter().enumerate().map(|(i, (marker, _))| json!({
            "key": format!("t{}", i + 1),
            "description": format!("{marker}: step {} of the comparison", i + 1),
            "expected_output": "one line",
            "agent": "analyst"
        })).collect::<Vec<_>>(),
        "budget": budget
    })
}

/// An appliance with the crews service and worker on free ports, not yet started.
async fn appliance() -> Appliance {
    let mut app = Appliance::new().await;
    app.set("DAARION__CREWS__ENABLED", "true");
    app.set(
        "DAARION__CREWS__LISTEN",
        format!("127.0.0.1:{}", free_port()),
    );
    app.set("DAARION__CREWS_WORKER__ENABLED", "true");
    app.set(
        "DAARION__CREWS_WORKER__LISTEN",
        format!("127.0.0.1:{}", free_port()),
    );
    app
}

fn url(app: &Appliance, listen_key: &str) -> String {
    let addr = &app
        .env
        .iter()
        .find(|(k, _)| k == listen_key)
        .unwrap_or_else(|| panic!("{listen_key} set"))
        .1;
    format!("http://{addr}")
}

/// A call with the root token straight to a service (`base` its URL); the status and body.
async fn call(app: &Appliance, method: Method, url: String, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .request(method, url)
        .bearer_auth(app.token());
    if !body.is_null() {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn crews(app: &Appliance, method: Method, path: &str, body: Value) -> Value {
    let (status, answer) = call(
        app,
        method,
        format!("{}{path}", url(app, "DAARION__CREWS__LISTEN")),
        body,
    )
    .await;
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

/// The `helper` agent on the scripted provider (`fake/m`), usable by every guest with every
/// tool; `tools` are those offered in a chat turn.
async fn helper(app: &Appliance, model: &str, tools: Value) {
    app.root(
        Method::POST,
        "/api/control/agents",
        json!({"id": "helper", "name": "Helper", "default_model": model}),
    )
    .await;
    app.root(
        Method::POST,
        "/api/control/prompts/helper",
        json!({"content": "You help with suppliers."}),
    )
    .await;
    app.root(
        Method::PUT,
        "/api/control/policy/helper",
        json!({"document": {"roles": {"guest": {"use": true, "models": {"allow": ["*"]}, "tools": {"allow": ["*"]}, "modes": {"allow": ["*"]}}}}}),
    )
    .await;
    app.root(
        Method::PUT,
        "/api/control/config/agents.helper",
        json!({"value": {"models": [model], "max_tokens": 64, "tools": tools, "temperature": 0.0}}),
    )
    .await;
}

async fn provider(app: &Appliance, addr: SocketAddr) {
    app.root(
        Method::PUT,
        "/api/control/config/providers.fake",
        json!({"value": {"kind": "openai", "base_url": format!("http://{addr}/v1"), "timeout_secs": 60,
                         "prices": {"m": {"input_per_million": 1000.0, "output_per_million": 2000.0}}}}),
    )
    .await;
}

async fn user(app: &Appliance, external_id: &str) -> String {
    app.root(
        Method::POST,
        "/api/memory/v1/identities/resolve",
        json!({"channel": "telegram", "external_id": external_id, "display_name": "Ann"}),
    )
    .await["user_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The appliance up with the crews units and the scripted model as `fake/m`.
async fn started(model: Option<SocketAddr>, ack_wait: Option<&str>) -> Appliance {
    let mut app = appliance().await;
    if let Some(secs) = ack_wait {
        app.set("DAARION__BUS__ACK_WAIT_SECS", secs);
        // A killed worker's run is taken over once its lease has run out.
        app.set("DAARION__CREWS_WORKER__LEASE_SECS", "9");
    }
    app.start();
    app.wait_all_ready(Duration::from_secs(120)).await;
    if let Some(addr) = model {
        provider(&app, addr).await;
        helper(&app, "fake/m", json!([])).await;
    }
    app
}

async fn start_run(app: &Appliance, crew: &str, user: &str) -> String {
    let created = crews(
        app,
        Method::POST,
        &format!("/v1/crews/{crew}/runs"),
        json!({"user_id": user, "task": "compare the suppliers"}),
    )
    .await;
    let run = if created["run"].is_object() {
        &created["run"]
    } else {
        &created
    };
    run["id"].as_str().expect("a run id").to_owned()
}

async fn run(app: &Appliance, id: &str) -> Value {
    crews(app, Method::GET, &format!("/v1/runs/{id}"), Value::Null).await
}

/// Polls a run until `done` holds.
async fn until(
    app: &Appliance,
    id: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let r = run(app, id).await;
        if done(&r) {
            return r;
        }
        assert!(
            started.elapsed() < within,
            "the run never got there: {r}\nlog:\n{}",
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn finished(r: &Value) -> bool {
    matches!(
        r["state"].as_str(),
        Some("completed" | "failed" | "cancelled")
    )
}

/// Each journalled step's key once; the keys in order of writing.
fn keys_once(r: &Value) -> Vec<String> {
    let keys: Vec<String> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap().to_owned())
        .collect();
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        keys.len(),
        "a step journalled twice: {keys:?}"
    );
    keys
}

/// The bus's events of one subject, as published.
async fn events(app: &Appliance, subject: &str) -> async_nats::Subscriber {
    let client = async_nats::connect(&app.nats_url).await.unwrap();
    let sub = client.subscribe(subject.to_owned()).await.unwrap();
    client.flush().await.unwrap();
    sub
}

async fn next_event(sub: &mut async_nats::Subscriber, run_id: &str, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let message = tokio::time::timeout_at(deadline, sub.next())
            .await
            .unwrap_or_else(|_| panic!("no event for run {run_id} within {within:?}"))
            .expect("subscribed");
        let envelope: Value = serde_json::from_slice(&message.payload).unwrap();
        if envelope.to_string().contains(run_id) {
            return envelope;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sequential_crew_passes_each_output_on_and_journals_every_step_once() {
    let (model, addr) = Model::serve(crew_script(None)).await;
    let app = started(Some(addr), None).await;
    crews(
        &app,
        Method::PUT,
        "/v1/crews/trio",
        three_tasks("trio", json!({})),
    )
    .await;
    let ann = user(&app, "crews-1").await;

    let id = start_run(&app, "trio", &ann).await;
    let done = until(&app, &id, Duration::from_secs(60), finished).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["result"], TASKS[2].1, "the last task's output");
    assert_eq!(done["tasks_done"], 3);
    let keys = keys_once(&done);
    let llm = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "llm")
        .count();
    assert_eq!(llm, 3, "one model call per task: {keys:?}");
    for (marker, _) in TASKS {
        assert_eq!(model.asked(marker), 1, "{marker} asked once");
    }
    let second = model
        .bodies()
        .into_iter()
        .find(|b| last_user(b).contains("TASK-TWO"))
        .unwrap();
    assert!(
        second.to_string().contains(TASKS[0].1),
        "task 2 sees task 1's output: {second}"
    );
    assert_eq!(done["usage"]["steps"], 3, "{done}");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_run_resumes_it_after_its_restart_without_repeating_a_finished_step() {
    // Task 2's answer takes long enough for the kill to land while it is asked.
    let (model, addr) = Model::serve(crew_script(Some(("TASK-TWO", Duration::from_secs(6))))).await;
    // The held message comes back after ack_wait; the run's lease (9 s here) must end first.
    let app = started(Some(addr), Some("3")).await;
    crews(
        &app,
        Method::PUT,
        "/v1/crews/trio",
        three_tasks("trio", json!({})),
    )
    .await;
    let ann = user(&app, "crews-2").await;

    let id = start_run(&app, "trio", &ann).await;
    let waited = Instant::now();
    while model.asked("TASK-TWO") == 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "task 2 never asked; log:\n{}",
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let worker = app.unit("crews-worker").await;
    let old = worker["pid"].as_i64().expect("a pid") as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(old), Signal::SIGKILL).unwrap();
    let killed_at = run(&app, &id).await;
    assert_eq!(killed_at["state"], "running", "killed mid-run: {killed_at}");
    app.wait_unit("crews-worker", Duration::from_secs(60), |u| {
        u["state"] == "ready" && u["pid"].as_i64().is_some_and(|p| p as i32 != old)
    })
    .await;

    let done = until(&app, &id, Duration::from_secs(150), finished).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["result"], TASKS[2].1);
    let keys = keys_once(&done);
    let llm: Vec<&Value> = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "llm")
        .collect();
    assert_eq!(llm.len(), 3, "{keys:?}");
    // Task 1 had finished before the kill: its request was never made again. Task 2's was in
    // flight (the router may finish it and answer the retry from its key, or call again).
    assert_eq!(model.asked("TASK-ONE"), 1, "task 1 once");
    assert_eq!(model.asked("TASK-THREE"), 1, "task 3 once");
    assert!((1..=2).contains(&model.asked("TASK-TWO")));
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_past_its_step_budget_stops_with_steps_and_the_quota_holds_what_its_steps_used() {
    let (_model, addr) = Model::serve(crew_script(None)).await;
    let app = started(Some(addr), None).await;
    crews(
        &app,
        Method::PUT,
        "/v1/crews/tight",
        three_tasks("tight", json!({"max_steps": 2})),
    )
    .await;
    let ann = user(&app, "crews-3").await;
    let mut failed = events(&app, "agent.run.failed").await;

    let id = start_run(&app, "tight", &ann).await;
    let done = until(&app, &id, Duration::from_secs(60), finished).await;
    assert_eq!(done["state"], "failed", "{done}");
    assert_eq!(done["stop"]["code"], "steps", "{done}");
    let event = next_event(&mut failed, &id, Duration::from_secs(10)).await;
    assert_eq!(event["payload"]["stop"], "steps", "{event}");
    assert!(
        !event["payload"]["reason"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{event}"
    );

    let steps = done["steps"].as_array().unwrap();
    let tokens: u64 = steps
        .iter()
        .map(|s| {
            s["usage"]["prompt_tokens"].as_u64().unwrap()
                + s["usage"]["completion_tokens"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(tokens, 2 * (PROMPT_TOKENS + COMPLETION_TOKENS), "{done}");
    let quota = app
        .root(
            Method::GET,
            &format!("/api/control/quotas/{ann}"),
            Value::Null,
        )
        .await;
    assert_eq!(quota["usage"]["tokens_today"], tokens, "{quota}");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_starting_a_crew_run_with_its_tool_gets_a_real_run_to_completion() {
    let (model, addr) = Model::serve(|body: &Value| {
        let offered = body["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["function"]["name"] == "start_crew_run"));
        let answered = body["messages"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["role"] == "tool"));
        match (offered, answered) {
            (true, false) => Answer::Call {
                name: "start_crew_run".into(),
                arguments: json!({"crew": "trio", "task": "compare the suppliers"}),
            },
            (true, true) => text("I started a crew run; the result will follow."),
            _ => crew_script(None)(body),
        }
    })
    .await;
    let app = started(Some(addr), None).await;
    app.root(
        Method::PUT,
        "/api/control/config/agents.helper",
        json!({"value": {"models": ["fake/m"], "max_tokens": 64, "tools": ["start_crew_run"], "temperature": 0.0}}),
    )
    .await;
    crews(
        &app,
        Method::PUT,
        "/v1/crews/trio",
        three_tasks("trio", json!({})),
    )
    .await;
    let mut completed = events(&app, "agent.run.completed").await;

    let (status, turn) = {
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("{}/v1/route", url(&app, "DAARION__ROUTER__LISTEN")))
            .bearer_auth(app.token())
            .json(&json!({"channel": "telegram", "bot": "mainbot", "chat_id": "40004",
                          "user": {"external_id": "crews-4", "display_name": "Ann"},
                          "text": "research these three suppliers and compare them", "agent": "helper"}))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    assert_eq!(status, 200, "{turn}");
    let run_id = turn
        .split("\"run_id\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_owned)
        .or_else(|| {
            // The tool's answer reaches the model as the tool message; read the id there.
            model.bodies().iter().find_map(|b| {
                b["messages"].as_array()?.iter().find_map(|m| {
                    let content = m["content"].as_str()?;
                    let v: Value = serde_json::from_str(content).ok()?;
                    (m["role"] == "tool").then(|| v["run_id"].as_str().map(str::to_owned))?
                })
            })
        })
        .unwrap_or_else(|| panic!("a run id from the tool: {turn}"));

    let event = next_event(&mut completed, &run_id, Duration::from_secs(60)).await;
    assert_eq!(event["payload"]["result"], TASKS[2].1, "{event}");
    // The chat that asked, so the gateway can answer there (Telegram ids are numbers).
    assert_eq!(event["payload"]["origin"]["chat_id"], 40004, "{event}");
    let done = run(&app, &run_id).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["crew"], "trio");
    assert_eq!(done["agent_id"], "helper");
    keys_once(&done);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_task_crew_runs_on_the_local_smollm2_and_charges_gpu_seconds() {
    let mut app = appliance().await;
    app.with_swapper();
    app.start();
    app.wait_all_ready(Duration::from_secs(180)).await;
    helper(&app, "local/smollm2", json!([])).await;
    crews(
        &app,
        Method::PUT,
        "/v1/crews/solo",
        json!({"id": "solo", "agent": "helper",
               "agents": [{"key": "writer", "role": "Writer", "goal": "Name a colour", "max_iter": 2}],
               "tasks": [{"key": "t1", "description": "Name one colour.", "expected_output": "a colour", "agent": "writer"}]}),
    )
    .await;
    let ann = user(&app, "crews-5").await;

    let id = start_run(&app, "solo", &ann).await;
    let done = until(&app, &id, Duration::from_secs(300), finished).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert!(
        !done["result"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .is_empty(),
        "{done}"
    );
    assert!(
        done["usage"]["gpu_seconds"].as_f64().unwrap() > 0.0,
        "local model time charged: {done}"
    );
    keys_once(&done);
    app.cleanup().await;
}
