//! The worker's own cost per step: the real crews service (journal in PostgreSQL, outbox to
//! NATS) and the real worker consuming `agent.run.requested`, with an instant in-process model
//! in place of the router, so what is measured is everything a step costs besides the model.
//!
//! Prints a table: overhead per step (p50/p99), runs/s, 100 concurrent 5-step runs against
//! 100 × one run and against the slowest of them, and the time to resume a run from its journal
//! after its worker died mid-run. The reference column is the same runs executed one after
//! another, which is what CrewAI's `kickoff_async` does with its runs.
//!
//! `cargo bench -p daarion-crews-worker --bench crews` (PostgreSQL and NATS as for the tests).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use daarion_bus::Envelope;
use daarion_bus::events::AgentRunRequested;
use daarion_bus::topology::CREWAI_WORKER;
use daarion_control_plane::testing::Plane;
use daarion_crews_client::{CrewsClient, Run, RunRequest, RunState};
use daarion_crews_worker::ports::{StepError, Steps};
use daarion_crews_worker::{Scheduler, Settings, Worker};
use daarion_router_client::{StepRequest, StepResponse, StepUsage, ToolRequest, ToolResponse};
use futures::StreamExt;
use futures::future::BoxFuture;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const TASKS: usize = 5;
const CONCURRENT: usize = 100;
const SEQUENTIAL: usize = 30;

/// Answers at once; keeps each call's start and end so the model's time is known exactly.
#[derive(Default)]
struct Instant0 {
    /// Per run: (start, end) of each model call.
    calls: Mutex<std::collections::HashMap<String, Vec<(Instant, Instant)>>>,
    llm_nanos: AtomicU64,
    /// While set, a run's third call never answers: its worker dies with it in flight.
    hang: AtomicBool,
}

impl Steps for Instant0 {
    fn llm<'a>(
        &'a self,
        request: &'a StepRequest,
    ) -> BoxFuture<'a, Result<StepResponse, StepError>> {
        Box::pin(async move {
            let run = request
                .idempotency_key
                .split('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            let made = self.calls.lock().unwrap().get(&run).map_or(0, Vec::len);
            if made >= 2 && self.hang.load(Ordering::SeqCst) {
                futures::future::pending::<()>().await;
            }
            let start = Instant::now();
            let response = StepResponse {
                content: format!(
                    "Thought: done\nFinal Answer: output of {}",
                    request.idempotency_key
                ),
                tool_calls: Vec::new(),
                provider: "instant".into(),
                model: "m".into(),
                usage: StepUsage {
                    prompt_tokens: 10,
                    completion_tokens: 5,
                    cost: 0.0,
                    gpu_seconds: 0.0,
                },
                replayed: false,
            };
            let end = Instant::now();
            self.llm_nanos
                .fetch_add((end - start).as_nanos() as u64, Ordering::Relaxed);
            self.calls
                .lock()
                .unwrap()
                .entry(run)
                .or_default()
                .push((start, end));
            Ok(response)
        })
    }

    fn tool<'a>(
        &'a self,
        _request: &'a ToolRequest,
    ) -> BoxFuture<'a, Result<ToolResponse, StepError>> {
        Box::pin(async move {
            Ok(ToolResponse {
                output: json!("ok"),
                ok: true,
                usage: StepUsage::default(),
                replayed: false,
            })
        })
    }
}

struct Bench {
    plane: Plane,
    client: CrewsClient,
    steps: Arc<Instant0>,
    user: Uuid,
    shutdown: CancellationToken,
}

fn worker(bench: &Bench, name: &str, shutdown: CancellationToken) -> Worker {
    Worker {
        crews: bench.client.clone(),
        steps: bench.steps.clone(),
        scheduler: Scheduler::new(CONCURRENT, CONCURRENT),
        settings: Settings {
            context_tokens: 1500,
            max_delegations: 20,
            max_delegation_depth: 3,
            max_human_rounds: 3,
        },
        name: name.to_owned(),
        lease_secs: daarion_crews_worker::LEASE_SECS,
        shutdown,
    }
}

fn consume(
    bench: &Bench,
    worker: Worker,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let bus = bench.plane.bus.bus.clone();
    tokio::spawn(async move {
        let _ = daarion_bus::consume_keyed(
            &bus,
            CREWAI_WORKER,
            shutdown,
            CONCURRENT * 2,
            |r: &AgentRunRequested| r.run_id.to_string(),
            move |event| {
                let worker = worker.clone();
                async move { worker.handle(event).await }
            },
        )
        .await;
    })
}

async fn start() -> Bench {
    let plane = Plane::start().await;
    let mut config = plane.config.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    config.crews.listen = listener.local_addr().unwrap();
    config.crews.budget.max_steps = 0;
    config.crews.budget.max_tokens = 0;
    let shutdown = CancellationToken::new();
    tokio::spawn(daarion_crews::run(
        config.clone(),
        listener,
        shutdown.clone(),
    ));
    let client = CrewsClient::new(
        format!("http://{}", config.crews.listen),
        Some(plane.root.clone()),
    );
    let http = reqwest::Client::new();
    for _ in 0..400 {
        if let Ok(r) = http
            .get(format!("http://{}/ready", config.crews.listen))
            .send()
            .await
            && r.status().is_success()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let spec = json!({
        "id": "bench", "agent": "helper",
        "agents": [{"key": "analyst", "role": "Analyst", "goal": "Answer"}],
        "tasks": (1..=TASKS).map(|i| json!({"key": format!("t{i}"), "description": format!("Step {i}"),
                                             "expected_output": "one line", "agent": "analyst"}))
            .collect::<Vec<_>>()
    });
    client
        .save(&serde_json::from_value(spec).unwrap())
        .await
        .expect("crew saved");
    Bench {
        plane,
        client,
        steps: Arc::new(Instant0::default()),
        user: Uuid::now_v7(),
        shutdown,
    }
}

async fn start_run(bench: &Bench) -> Uuid {
    let request = RunRequest {
        user_id: Some(bench.user),
        agent_id: Some("helper".into()),
        task: "bench".into(),
        ..RunRequest::default()
    };
    bench
        .client
        .start("bench", &request)
        .await
        .expect("run started")
        .id
}

async fn finished(bench: &Bench, id: Uuid) -> Run {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let run = bench.client.run(id).await.expect("run read");
        if matches!(
            run.state,
            RunState::Completed | RunState::Failed | RunState::Cancelled
        ) {
            assert_eq!(run.state, RunState::Completed, "{:?}", run.stop);
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "run {id} stuck in {:?}",
            run.state
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn seconds(run: &Run) -> f64 {
    (run.finished_at.unwrap() - run.created_at).as_seconds_f64()
}

/// Gaps between one run's model calls: what a step costs besides its call.
fn gaps(bench: &Bench, run: Uuid) -> Vec<f64> {
    let calls = bench.steps.calls.lock().unwrap();
    let calls = calls.get(&run.to_string()).cloned().unwrap_or_default();
    calls
        .windows(2)
        .map(|w| (w[1].0 - w[0].1).as_secs_f64() * 1000.0)
        .collect()
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[at]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let bench = start().await;
    let consumer_stop = bench.shutdown.child_token();
    let consumer = consume(
        &bench,
        worker(&bench, "bench-1", consumer_stop.clone()),
        consumer_stop.clone(),
    );

    // Warm-up (connections, prepared statements).
    for _ in 0..3 {
        let id = start_run(&bench).await;
        finished(&bench, id).await;
    }

    // One run at a time: per-step overhead and the sequential reference.
    let mut gap_ms = Vec::new();
    let mut run_overhead_ms = Vec::new();
    let mut one_run = Vec::new();
    let sequential = Instant::now();
    for _ in 0..SEQUENTIAL {
        let before = bench.steps.llm_nanos.load(Ordering::Relaxed);
        let id = start_run(&bench).await;
        let run = finished(&bench, id).await;
        let llm = (bench.steps.llm_nanos.load(Ordering::Relaxed) - before) as f64 / 1e9;
        gap_ms.extend(gaps(&bench, id));
        run_overhead_ms.push((seconds(&run) - llm) * 1000.0 / TASKS as f64);
        one_run.push(seconds(&run));
    }
    let sequential = sequential.elapsed().as_secs_f64();
    let one = one_run.iter().sum::<f64>() / one_run.len() as f64;

    // 100 at once.
    // Told by the bus, not by polling: 100 pollers would load the journal's database as much
    // as the runs do.
    let bus = &bench.plane.bus.bus;
    let mut done = bus
        .client()
        .subscribe(bus.naming().subject("agent.run.completed"))
        .await
        .unwrap();
    bus.client().flush().await.unwrap();
    let parallel = Instant::now();
    let ids: Vec<Uuid> =
        futures::future::join_all((0..CONCURRENT).map(|_| start_run(&bench))).await;
    let mut left: std::collections::HashSet<String> = ids.iter().map(Uuid::to_string).collect();
    while !left.is_empty() {
        let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(60), done.next()).await
        else {
            let mut states = std::collections::BTreeMap::<String, usize>::new();
            for id in &ids {
                let run = bench.client.run(*id).await.unwrap();
                *states
                    .entry(format!(
                        "{:?} {} steps {:?}",
                        run.state,
                        run.steps.len(),
                        run.stop
                    ))
                    .or_default() += 1;
            }
            panic!("{} runs never finished: {states:#?}", left.len());
        };
        let envelope: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        left.remove(envelope["payload"]["run_id"].as_str().unwrap_or_default());
    }
    let parallel = parallel.elapsed().as_secs_f64();
    let mut runs = Vec::new();
    for id in &ids {
        runs.push(finished(&bench, *id).await);
    }
    let slowest = runs.iter().map(seconds).fold(0.0, f64::max);
    let mut parallel_gaps: Vec<f64> = ids.iter().flat_map(|id| gaps(&bench, *id)).collect();

    // A worker dies with a call in flight; another (the same host and name, as after a restart
    // by the supervisor) gets the redelivered request and resumes from the journal.
    bench.steps.hang.store(true, Ordering::SeqCst);
    let id = start_run(&bench).await;
    loop {
        let run = bench.client.run(id).await.unwrap();
        if run.steps.len() >= 2 * 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Let tasks 1–2 finish, so the third call is in flight when the worker goes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    consumer.abort();
    let _ = consumer.await;
    bench.steps.hang.store(false, Ordering::SeqCst);
    let run = bench.client.run(id).await.unwrap();
    let journalled = run.steps.len();
    let redelivered = Envelope::event(
        "bench",
        AgentRunRequested {
            run_id: id,
            crew: run.crew.clone(),
            task: run.task.clone(),
            user_id: run.user_id,
            agent_id: run.agent_id.clone(),
            session_id: None,
            inputs: run.inputs.clone(),
            origin: None,
        },
    );
    let resumed = Instant::now();
    let second = worker(&bench, "bench-1", bench.shutdown.child_token());
    second.handle(redelivered).await.expect("resumed");
    let resume = resumed.elapsed().as_secs_f64();
    let after = finished(&bench, id).await;

    let p50 = percentile(&mut gap_ms, 0.5);
    let p99 = percentile(&mut gap_ms, 0.99);
    let r50 = percentile(&mut run_overhead_ms, 0.5);
    let r99 = percentile(&mut run_overhead_ms, 0.99);
    let pp50 = percentile(&mut parallel_gaps, 0.5);
    let pp99 = percentile(&mut parallel_gaps, 0.99);
    println!(
        "\ncrews worker, {TASKS}-task sequential crew, instant model (journal: crews service + PostgreSQL, bus: NATS)\n"
    );
    println!(
        "{:<58} {:>14} {:>26}",
        "measure", "DAARION", "reference: one after another"
    );
    println!("{}", "-".repeat(100));
    println!(
        "{:<58} {:>11.2} ms {:>26}",
        "overhead per step p50 (between model calls)", p50, "same"
    );
    println!(
        "{:<58} {:>11.2} ms {:>26}",
        "overhead per step p99 (between model calls)", p99, "same"
    );
    println!(
        "{:<58} {:>11.2} ms {:>26}",
        "run overhead / steps p50 (request → finished)", r50, "same"
    );
    println!(
        "{:<58} {:>11.2} ms {:>26}",
        "run overhead / steps p99 (request → finished)", r99, "same"
    );
    println!(
        "{:<58} {:>11.2} ms {:>26}",
        "overhead per step p50 / p99 with 100 at once",
        pp50,
        format!("p99 {pp99:.2} ms")
    );
    println!(
        "{:<58} {:>11.1} ms {:>26}",
        "one run (mean of sequential)",
        one * 1000.0,
        ""
    );
    println!(
        "{:<58} {:>12.1}/s {:>24.1}/s",
        "runs/s",
        CONCURRENT as f64 / parallel,
        SEQUENTIAL as f64 / sequential
    );
    println!(
        "{:<58} {:>12.3} s {:>25.3} s",
        "100 concurrent 5-step runs: wall time",
        parallel,
        one * CONCURRENT as f64
    );
    println!(
        "{:<58} {:>13.3} s {:>26}",
        "  slowest single run among them", slowest, ""
    );
    println!(
        "{:<58} {:>13.2}× {:>26}",
        "  wall / slowest single run",
        parallel / slowest,
        ""
    );
    println!(
        "{:<58} {:>13.3} s {:>26}",
        format!("resume after the worker died ({journalled} steps journalled)"),
        resume,
        ""
    );
    println!(
        "\nresumed run: {:?}, {} steps journalled, {} model calls made for it (5 tasks)",
        after.state,
        after.steps.len(),
        bench
            .steps
            .calls
            .lock()
            .unwrap()
            .get(&id.to_string())
            .map_or(0, Vec::len)
    );
    println!(
        "goal: ≤ 5 ms overhead per step: {}",
        if p50 <= 5.0 {
            "met (p50)"
        } else {
            "NOT met (p50)"
        }
    );
    bench.shutdown.cancel();
    bench.plane.stop().await;
}
