use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::stack::{Stack, claim, step};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_run_goes_through_the_worker_journal_and_its_events_reach_the_bus() {
    let stack = Stack::start().await;
    stack.crew("suppliers").await;
    let mut bus = stack.events("agent.run.>").await;
    let user = Uuid::new_v4();
    let created = stack
        .ok(
            Method::POST,
            "/v1/crews/suppliers/runs",
            Some(json!({"user_id": user, "inputs": {"topic": "tea"}, "budget": {"max_steps": 5}})),
        )
        .await;
    let run = &created["run"];
    let id = run["id"].as_str().unwrap().to_owned();
    assert_eq!(run["state"], "queued");
    assert_eq!(run["crew_version"], 1);
    assert_eq!(run["tasks_total"], 2);
    assert_eq!(run["budget"]["max_steps"], 5, "the request's tighter limit");
    assert_eq!(
        run["budget"]["max_tokens"], 10_000,
        "the configured default"
    );
    let (requested, traceparent) = bus.next("agent.run.requested").await;
    assert_eq!(requested["payload"]["run_id"], id.as_str());
    assert_eq!(requested["payload"]["inputs"]["topic"], "tea");
    let trace = run["trace_id"].as_str().unwrap();
    assert_eq!(requested["trace_id"], trace);
    assert!(
        traceparent.unwrap().contains(trace),
        "the run's trace in the header"
    );

    let path = |what: &str| format!("/v1/worker/runs/{id}/{what}");
    let claimed = stack
        .ok(
            Method::POST,
            &path("claim"),
            Some(claim("w1", "suppliers", user)),
        )
        .await;
    assert_eq!(claimed["run"]["state"], "running");
    assert_eq!(claimed["spec"]["tasks"][0]["key"], "research");
    let (status, body) = stack
        .root(
            Method::POST,
            &path("claim"),
            Some(claim("w2", "suppliers", user)),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "run_leased"), "{body}");
    let (status, body) = stack
        .root(
            Method::POST,
            &path("steps"),
            Some(step("w2", "t1/i1/llm", "llm", 10)),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "lease_lost"), "{body}");

    let first = stack
        .ok(
            Method::POST,
            &path("steps"),
            Some(step("w1", "t1/i1/llm", "llm", 10)),
        )
        .await;
    assert_eq!(
        (first["created"].clone(), first["step"]["seq"].clone()),
        (json!(true), json!(1))
    );
    let again = stack
        .ok(
            Method::POST,
            &path("steps"),
            Some(step("w1", "t1/i1/llm", "llm", 999)),
        )
        .await;
    assert_eq!(
        again["created"], false,
        "a journalled key is not written again"
    );
    assert_eq!(
        again["step"]["usage"]["prompt_tokens"], 10,
        "the stored step"
    );
    let mut output = step("w1", "t1/output", "task_output", 0);
    output["progress"] = json!("1/2 · researcher: facts found");
    let recorded = stack.ok(Method::POST, &path("steps"), Some(output)).await;
    assert_eq!(recorded["cancel"], false);
    let (progress, _) = bus.next("agent.run.progress").await;
    assert_eq!(progress["payload"]["done"], 1);
    assert_eq!(progress["payload"]["total"], 2);
    assert_eq!(progress["payload"]["line"], "1/2 · researcher: facts found");
    let beat = stack
        .ok(
            Method::POST,
            &path("heartbeat"),
            Some(json!({"worker": "w1", "lease_secs": 30})),
        )
        .await;
    assert_eq!(beat["cancel"], false);
    let finished = stack
        .ok(
            Method::POST,
            &path("finish"),
            Some(
                json!({"worker": "w1", "outcome": {"state": "completed", "result": "Tea is good"}}),
            ),
        )
        .await;
    assert_eq!(finished["state"], "completed");
    let (completed, _) = bus.next("agent.run.completed").await;
    assert_eq!(completed["payload"]["result"], "Tea is good");
    assert_eq!(completed["payload"]["usage"]["prompt_tokens"], 10);
    assert_eq!(completed["payload"]["usage"]["steps"], 1, "one model call");
    let (status, body) = stack
        .root(
            Method::POST,
            &path("claim"),
            Some(claim("w3", "suppliers", user)),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, "run_final"),
        "a redelivered request"
    );
    let run = stack.ok(Method::GET, &format!("/v1/runs/{id}"), None).await;
    assert_eq!(run["steps"].as_array().unwrap().len(), 2);
    assert_eq!(run["tasks_done"], 1);
    assert_eq!(
        run["usage"]["cost"], 1.0,
        "two steps of 0.5, the repeated key not counted"
    );
    let listed = stack
        .ok(Method::GET, "/v1/runs?state=completed&crew=suppliers", None)
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    stack.stop().await;
}

#[tokio::test]
async fn a_claim_for_an_unknown_crew_records_the_run_failed_and_announces_it() {
    let stack = Stack::start().await;
    let mut bus = stack.events("agent.run.>").await;
    let id = Uuid::new_v4();
    let (status, body) = stack
        .root(
            Method::POST,
            &format!("/v1/worker/runs/{id}/claim"),
            Some(claim("w1", "no-such-crew", Uuid::new_v4())),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "run_final"), "{body}");
    let run = stack.ok(Method::GET, &format!("/v1/runs/{id}"), None).await;
    assert_eq!(run["state"], "failed");
    assert_eq!(run["stop"]["code"], "invalid");
    let (failed, _) = bus.next("agent.run.failed").await;
    assert_eq!(failed["payload"]["run_id"], id.to_string());
    assert_eq!(failed["payload"]["stop"], "invalid");
    stack.stop().await;
}

#[tokio::test]
async fn cancel_resume_with_an_answer_and_rerun() {
    let stack = Stack::start().await;
    stack.crew("suppliers").await;
    let mut bus = stack.events("agent.run.>").await;
    let user = Uuid::new_v4();
    let start = json!({"user_id": user, "inputs": {"topic": "tea"}});
    let run = stack
        .ok(Method::POST, "/v1/crews/suppliers/runs", Some(start))
        .await;
    let id = run["run"]["id"].as_str().unwrap().to_owned();
    bus.next("agent.run.requested").await;
    let cancelled = stack
        .ok(Method::POST, &format!("/v1/runs/{id}/cancel"), None)
        .await;
    assert_eq!(cancelled["state"], "cancelled");
    let (failed, _) = bus.next("agent.run.failed").await;
    assert_eq!(failed["payload"]["stop"], "cancelled");
    let (status, body) = stack
        .root(Method::POST, &format!("/v1/runs/{id}/cancel"), None)
        .await;
    assert_eq!((status, code(&body)), (409, "run_final"));

    let resumed = stack
        .ok(
            Method::POST,
            &format!("/v1/runs/{id}/resume"),
            Some(json!({"budget": {"max_steps": 35}})),
        )
        .await;
    assert_eq!(resumed["state"], "queued");
    assert_eq!(resumed["budget"]["max_steps"], 35, "raised");
    bus.next("agent.run.requested").await;
    let path = |what: &str| format!("/v1/worker/runs/{id}/{what}");
    stack
        .ok(
            Method::POST,
            &path("claim"),
            Some(claim("w1", "suppliers", user)),
        )
        .await;
    stack
        .ok(
            Method::POST,
            &path("steps"),
            Some(step("w1", "t1/i1/llm", "llm", 5)),
        )
        .await;
    let waiting = stack
        .ok(
            Method::POST,
            &path("finish"),
            Some(json!({"worker": "w1", "outcome": {"state": "waiting_input", "question": "Shorter?"}})),
        )
        .await;
    assert_eq!(waiting["state"], "waiting_input");
    let (asked, _) = bus.next("agent.run.progress").await;
    assert_eq!(asked["payload"]["question"], "Shorter?");
    let (status, body) = stack
        .root(
            Method::POST,
            &path("claim"),
            Some(claim("w1", "suppliers", user)),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "waiting_input"));
    stack
        .ok(
            Method::POST,
            &format!("/v1/runs/{id}/resume"),
            Some(json!({"answer": "yes, shorter"})),
        )
        .await;
    bus.next("agent.run.requested").await;
    let claimed = stack
        .ok(
            Method::POST,
            &path("claim"),
            Some(claim("w2", "suppliers", user)),
        )
        .await;
    let human = claimed["run"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "human_input")
        .expect("the answer is journalled")
        .clone();
    assert_eq!(human["key"], "human/research/1");
    assert_eq!(human["output"]["answer"], "yes, shorter");
    assert_eq!(human["input"]["question"], "Shorter?");

    let asked = stack
        .ok(Method::POST, &format!("/v1/runs/{id}/cancel"), None)
        .await;
    assert_eq!(asked["state"], "running", "a running run is asked to stop");
    let recorded = stack
        .ok(
            Method::POST,
            &path("steps"),
            Some(step("w2", "t1/i2/llm", "llm", 1)),
        )
        .await;
    assert_eq!(recorded["cancel"], true, "the worker is told");
    let stopped = stack
        .ok(
            Method::POST,
            &path("finish"),
            Some(json!({"worker": "w2", "outcome": {"state": "failed",
                        "stop": {"code": "cancelled", "detail": "cancelled by the user"}}})),
        )
        .await;
    assert_eq!(stopped["state"], "cancelled");

    let again = stack
        .ok(
            Method::POST,
            &format!("/v1/runs/{id}/rerun"),
            Some(json!({})),
        )
        .await;
    assert_ne!(again["id"], id.as_str());
    assert_eq!(again["state"], "queued");
    assert_eq!(again["inputs"]["topic"], "tea");
    assert_eq!(again["user_id"], user.to_string());
    stack.stop().await;
}

#[tokio::test]
async fn live_events_show_the_snapshot_then_steps_then_the_end() {
    let stack = Stack::start().await;
    stack.crew("suppliers").await;
    let user = Uuid::new_v4();
    let run = stack
        .ok(
            Method::POST,
            "/v1/crews/suppliers/runs",
            Some(json!({"user_id": user, "inputs": {"topic": "tea"}})),
        )
        .await;
    let id = run["run"]["id"].as_str().unwrap().to_owned();
    let response = stack
        .http
        .get(format!("{}/v1/runs/{id}/events", stack.url))
        .bearer_auth(&stack.plane.root)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    let mut read_until = async |needle: &str, seen: &mut String| {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while !seen.contains(needle) {
            let chunk = tokio::time::timeout_at(deadline, body.next())
                .await
                .unwrap_or_else(|_| panic!("no `{needle}` in: {seen}"))
                .expect("stream open")
                .unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    read_until("event: snapshot", &mut seen).await;
    let path = |what: &str| format!("/v1/worker/runs/{id}/{what}");
    stack
        .ok(
            Method::POST,
            &path("claim"),
            Some(claim("w1", "suppliers", user)),
        )
        .await;
    stack
        .ok(
            Method::POST,
            &path("steps"),
            Some(step("w1", "t1/i1/llm", "llm", 5)),
        )
        .await;
    read_until("event: step", &mut seen).await;
    assert!(seen.contains("t1/i1/llm"), "{seen}");
    stack
        .ok(
            Method::POST,
            &path("finish"),
            Some(json!({"worker": "w1", "outcome": {"state": "completed", "result": "done"}})),
        )
        .await;
    read_until("\"state\":\"completed\"", &mut seen).await;
    stack.stop().await;
}
