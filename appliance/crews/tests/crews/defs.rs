use reqwest::Method;
use serde_json::{Value, json};

use crate::stack::{Stack, spec};

#[tokio::test]
async fn definitions_are_versioned_diffed_rolled_back_and_audited() {
    let stack = Stack::start().await;
    let mut audit = stack.events("audit.>").await;
    let v1 = stack.crew("suppliers").await;
    assert_eq!(v1["version"], 1);
    let (event, _) = audit.next("audit.action").await;
    assert_eq!(event["payload"]["action"], "crew.save");
    assert_eq!(event["payload"]["target"], "crew:suppliers");
    assert_eq!(
        stack.crew("suppliers").await["version"],
        1,
        "an unchanged save is no version"
    );
    let mut changed = spec("suppliers");
    changed["agents"][0]["goal"] = json!("Find prices of {topic}");
    let v2 = stack
        .ok(Method::PUT, "/v1/crews/suppliers", Some(changed))
        .await;
    assert_eq!(v2["version"], 2);
    let versions = stack
        .ok(Method::GET, "/v1/crews/suppliers/versions", None)
        .await;
    assert_eq!(versions.as_array().unwrap().len(), 2);
    let diff = stack
        .ok(Method::GET, "/v1/crews/suppliers/diff?from=1&to=2", None)
        .await;
    let diff = diff["diff"].as_str().unwrap();
    let changed = |sign: char, text: &str| {
        diff.lines()
            .any(|l| l.starts_with(sign) && l.contains("\"goal\"") && l.contains(text))
    };
    assert!(changed('-', "Find facts about {topic}"), "{diff}");
    assert!(changed('+', "Find prices of {topic}"), "{diff}");
    assert!(diff.starts_with("--- v1\n+++ v2\n"), "{diff}");
    let v3 = stack
        .ok(
            Method::POST,
            "/v1/crews/suppliers/rollback",
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(v3["version"], 3);
    assert_eq!(v3["spec"], v1["spec"]);
    assert_eq!(v3["note"], "rollback to version 1");
    let list = stack.ok(Method::GET, "/v1/crews", None).await;
    assert_eq!(list[0]["version"], 3);
    assert_eq!(list[0]["versions"], 3);
    assert_eq!(list[0]["tasks"], 2);
    let (status, _) = stack
        .root(Method::DELETE, "/v1/crews/suppliers", None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = stack.root(Method::GET, "/v1/crews/suppliers", None).await;
    assert_eq!(status, 404);
    assert_eq!(
        stack.crew("suppliers").await["version"],
        4,
        "saving revives it"
    );
    let (status, _) = stack
        .root(Method::GET, "/v1/crews/suppliers/diff?from=1&to=9", None)
        .await;
    assert_eq!(status, 404);
    stack.stop().await;
}

#[tokio::test]
async fn invalid_definitions_are_422_naming_the_field() {
    let stack = Stack::start().await;
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &str); 10] = [
        ("id mismatch", |s| s["id"] = json!("other"), "id"),
        (
            "unknown agent",
            |s| s["tasks"][0]["agent"] = json!("ghost"),
            "tasks.research.agent",
        ),
        (
            "later context",
            |s| s["tasks"][0]["context"] = json!(["write"]),
            "tasks.research.context",
        ),
        (
            "unknown context",
            |s| s["tasks"][1]["context"] = json!(["nope"]),
            "tasks.write.context",
        ),
        (
            "duplicate task",
            |s| s["tasks"][1]["key"] = json!("research"),
            "appears twice",
        ),
        (
            "duplicate agent",
            |s| s["agents"][1]["key"] = json!("researcher"),
            "appears twice",
        ),
        (
            "too many agents",
            |s| {
                s["agents"] = json!(
                    (0..33)
                        .map(|i| json!({"key": format!("a{i}"), "role": "r", "goal": "g"}))
                        .collect::<Vec<_>>()
                )
            },
            "agents",
        ),
        ("NUL", |s| s["agents"][0]["goal"] = json!("a\u{0}b"), ""),
        (
            "huge text",
            |s| s["tasks"][0]["description"] = json!("x".repeat(20_000)),
            "tasks.research.description",
        ),
        (
            "unknown field",
            |s| s["agents"][0]["verbose"] = json!(true),
            "verbose",
        ),
    ];
    for (what, edit, mention) in cases {
        let mut body = spec("c1");
        edit(&mut body);
        let (status, answer) = stack.root(Method::PUT, "/v1/crews/c1", Some(body)).await;
        assert_eq!(status, 422, "{what}: {answer}");
        let message = answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
            + answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(mention), "{what}: {answer}");
    }
    let (status, _) = stack.root(Method::GET, "/v1/crews/c1", None).await;
    assert_eq!(status, 404, "nothing was stored");
    stack.stop().await;
}

fn fixture(name: &str, file: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[tokio::test]
async fn crewai_projects_import_round_trip_with_unknown_keys_reported() {
    let stack = Stack::start().await;
    let cases: [(&str, &[&str], &[&str]); 3] = [
        (
            "latest_ai_development",
            &[
                "agents.researcher.verbose",
                "agents.reporting_analyst.verbose",
                "tasks.reporting_task.output_file",
            ],
            &["current_year", "topic"],
        ),
        (
            "trip_planner",
            &["agents.travel_concierge.memory", "tasks.plan_task.callback"],
            &["cities", "interests", "origin", "range"],
        ),
        (
            "job_posting",
            &["tasks.review_and_edit_job_posting_task.output_file"],
            &[
                "company_description",
                "company_domain",
                "hiring_needs",
                "specific_benefits",
            ],
        ),
    ];
    for (name, unknown, inputs) in cases {
        let id = name.replace('_', "-");
        let request = json!({"id": id, "agents_yaml": fixture(name, "agents.yaml"),
                             "tasks_yaml": fixture(name, "tasks.yaml"), "dry_run": true});
        let dry = stack
            .ok(Method::POST, "/v1/crews/import", Some(request.clone()))
            .await;
        assert_eq!(
            dry["version"],
            Value::Null,
            "{name}: a dry run stores nothing"
        );
        assert_eq!(dry["unknown_keys"], json!(unknown), "{name}");
        assert_eq!(dry["inputs"], json!(inputs), "{name}");
        let (status, _) = stack
            .root(Method::GET, &format!("/v1/crews/{id}"), None)
            .await;
        assert_eq!(status, 404, "{name}");
        let mut request = request;
        request["dry_run"] = json!(false);
        let imported = stack
            .ok(Method::POST, "/v1/crews/import", Some(request.clone()))
            .await;
        assert_eq!(imported["version"], 1, "{name}");
        let stored = stack
            .ok(Method::GET, &format!("/v1/crews/{id}"), None)
            .await;
        assert_eq!(stored["spec"], dry["spec"], "{name}: stored as imported");
        // The stored spec saved back as it is is the same version: it round-trips.
        let again = stack
            .ok(
                Method::PUT,
                &format!("/v1/crews/{id}"),
                Some(stored["spec"].clone()),
            )
            .await;
        assert_eq!(again["version"], 1, "{name}");
    }
    let trip = stack.ok(Method::GET, "/v1/crews/trip-planner", None).await;
    let plan = &trip["spec"]["tasks"][2];
    assert_eq!(plan["context"], json!(["identify_task", "gather_task"]));
    assert_eq!(plan["human_input"], true);
    assert!(plan["guardrail"].as_str().unwrap().contains("seven days"));
    assert_eq!(trip["spec"]["tasks"][1]["async_execution"], true);
    assert_eq!(trip["spec"]["agents"][0]["max_rpm"], 10);
    assert_eq!(trip["spec"]["agents"][2]["max_retry_limit"], 3);
    let job = stack.ok(Method::GET, "/v1/crews/job-posting", None).await;
    assert_eq!(
        job["spec"]["tasks"][2]["output_json"]["required"],
        json!(["title", "body"])
    );
    assert_eq!(job["spec"]["agents"][1]["llm"], "openai/gpt-4o-mini");
    let bad = json!({"id": "bad", "agents_yaml": "a:\n  role: R\n  goal: G\n",
                     "tasks_yaml": "t:\n  description: D\n  agent: ghost\n"});
    let (status, body) = stack
        .root(Method::POST, "/v1/crews/import", Some(bad))
        .await;
    assert_eq!(status, 422, "{body}");
    stack.stop().await;
}
