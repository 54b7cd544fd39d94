//! The control plane against the real PostgreSQL and NATS.

mod helpers;

use std::time::{Duration, Instant};

use futures::StreamExt;
use helpers::Plane;
use reqwest::Method;
use serde_json::{Value, json};

async fn agent(plane: &Plane, id: &str) {
    let (status, body) = plane
        .post("/agents", json!({"id": id, "name": format!("Agent {id}")}))
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn every_endpoint_needs_a_token_and_scopes_are_enforced() {
    let plane = Plane::start().await;
    agent(&plane, "helper").await;
    for (method, path) in [
        (Method::GET, "/agents"),
        (Method::POST, "/agents"),
        (Method::GET, "/prompts/helper"),
        (Method::POST, "/prompts/helper"),
        (Method::POST, "/prompts/helper/1/activate"),
        (Method::GET, "/auth/tokens"),
    ] {
        let (status, body) = plane.call(method.clone(), path, None, None).await;
        assert_eq!(status, 401, "{method} {path} without a token: {body}");
        assert_eq!(body["error"]["code"], "unauthorized");
        let (status, _) = plane
            .call(method.clone(), path, Some("dcp_wrong"), None)
            .await;
        assert_eq!(status, 401, "{method} {path} with a wrong token");
    }

    let reader = plane.token(&["read"]).await;
    let (status, _) = plane
        .call(Method::GET, "/agents", Some(&reader), None)
        .await;
    assert_eq!(status, 200);
    let (status, body) = plane
        .call(
            Method::POST,
            "/prompts/helper",
            Some(&reader),
            Some(json!({"content": "You are helpful."})),
        )
        .await;
    assert_eq!(status, 403, "a read token cannot change prompts: {body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, _) = plane
        .call(
            Method::POST,
            "/agents",
            Some(&reader),
            Some(json!({"id": "x", "name": "X"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = plane
        .call(Method::GET, "/auth/tokens", Some(&reader), None)
        .await;
    assert_eq!(status, 403, "only admins see tokens");

    let prompter = plane.token(&["prompts:write"]).await;
    let (status, _) = plane
        .call(
            Method::POST,
            "/prompts/helper",
            Some(&prompter),
            Some(json!({"content": "You are helpful."})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = plane
        .call(
            Method::PATCH,
            "/agents/helper",
            Some(&prompter),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 403, "prompts:write does not cover agents");

    // Bad token requests store nothing; a revoked token stops working at once.
    let before = plane.count("SELECT count(*) FROM api_tokens").await;
    let (status, body) = plane
        .post("/auth/tokens", json!({"name": "x", "scopes": ["root"]}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(plane.count("SELECT count(*) FROM api_tokens").await, before);
    let (_, tokens) = plane.get("/auth/tokens").await;
    let id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "test-read")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !tokens.to_string().contains(&reader),
        "secrets never listed"
    );
    let (status, _) = plane
        .call(
            Method::DELETE,
            &format!("/auth/tokens/{id}"),
            Some(&plane.root),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = plane
        .call(Method::GET, "/agents", Some(&reader), None)
        .await;
    assert_eq!(status, 401);
    plane.stop().await;
}

#[tokio::test]
async fn agents_are_validated_and_bad_input_stores_nothing() {
    let plane = Plane::start().await;
    let (status, body) = plane
        .post(
            "/agents",
            json!({"id": "helper", "name": "Helper", "default_model": "local-chat", "telegram_bot": "helper_bot"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["revision"], 1);

    for (input, code, status_code) in [
        (json!({"id": "helper", "name": "Again"}), "conflict", 409),
        (json!({"id": "Bad Id", "name": "X"}), "invalid", 422),
        (json!({"id": "ok", "name": ""}), "invalid", 422),
        (
            json!({"id": "other", "name": "O", "telegram_bot": "helper_bot"}),
            "conflict",
            409,
        ),
        (
            json!({"id": "x", "name": "X", "colour": "blue"}),
            "invalid_body",
            422,
        ),
    ] {
        let (status, body) = plane.post("/agents", input.clone()).await;
        assert_eq!(status, status_code, "{input} → {body}");
        assert_eq!(body["error"]["code"], code, "{input} → {body}");
    }
    let malformed = reqwest::Client::new()
        .post(plane.url("/agents"))
        .bearer_auth(&plane.root)
        .header("content-type", "application/json")
        .body("{\"id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(plane.count("SELECT count(*) FROM agents").await, 1);

    let (status, _) = plane.get("/agents/nope").await;
    assert_eq!(status, 404);
    let (status, body) = plane
        .call(
            Method::PATCH,
            "/agents/helper",
            Some(&plane.root),
            Some(json!({"name": "Helper 2", "telegram_bot": ""})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revision"], 2);
    assert_eq!(body["telegram_bot"], Value::Null);
    assert_eq!(body["default_model"], "local-chat", "untouched fields stay");
    plane.stop().await;
}

#[tokio::test]
async fn prompt_history_rollback_and_diff() {
    let plane = Plane::start().await;
    agent(&plane, "helper").await;
    let texts = [
        "You are helpful.\nAnswer briefly.\n",
        "You are helpful.\nAnswer briefly.\nGreet {{user}} by name.\n",
        "You are very helpful.\nGreet {{user}} by name.\n",
    ];
    for (i, text) in texts.iter().enumerate() {
        let (status, body) = plane
            .post(
                "/prompts/helper",
                json!({"content": text, "comment": format!("v{}", i + 1)}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["version"], i + 1);
        assert_eq!(body["author"], "root");
    }
    let (_, active) = plane.get("/prompts/helper/active").await;
    assert_eq!(active["version"], 3);
    assert_eq!(
        active["variables"],
        json!(["user"]),
        "taken from the placeholders"
    );

    // Rollback to v1: history stays, v1 is active.
    let (status, _) = plane.post("/prompts/helper/1/activate", json!({})).await;
    assert_eq!(status, 200);
    let (_, active) = plane.get("/prompts/helper/active").await;
    assert_eq!(active["version"], 1);
    assert_eq!(active["content"], texts[0]);
    let (_, listing) = plane.get("/prompts/helper").await;
    assert_eq!(listing["active"], 1);
    assert_eq!(listing["versions"].as_array().unwrap().len(), 3);
    let (_, v2) = plane.get("/prompts/helper/2").await;
    assert_eq!(v2["comment"], "v2");

    let (status, diff) = plane.get("/prompts/helper/diff?from=1&to=3").await;
    assert_eq!(status, 200, "{diff}");
    assert_eq!(diff["added_lines"], 2);
    assert_eq!(diff["removed_lines"], 2);
    let unified = diff["unified"].as_str().unwrap();
    assert!(unified.contains("--- v1"), "{unified}");
    assert!(unified.contains("-Answer briefly."), "{unified}");
    assert!(unified.contains("+Greet {{user}} by name."), "{unified}");

    // Bad input: 4xx, and neither history nor the active version moves.
    let huge = "x".repeat(daarion_control_plane::prompts::MAX_PROMPT_BYTES + 1);
    for (path, input, status_code) in [
        ("/prompts/helper", json!({"content": huge}), 413),
        (
            "/prompts/helper",
            json!({"content": "Hi {{user}}", "variables": []}),
            422,
        ),
        ("/prompts/helper", json!({"content": "Hi {{user"}), 422),
        ("/prompts/helper", json!({"content": "   "}), 422),
        ("/prompts/nobody", json!({"content": "Hi"}), 404),
        ("/prompts/helper/9/activate", json!({}), 404),
    ] {
        let (status, body) = plane.post(path, input).await;
        assert_eq!(status, status_code, "{path}: {body}");
    }
    assert_eq!(
        plane
            .count("SELECT count(*) FROM prompt_versions WHERE agent_id = 'helper'")
            .await,
        3
    );
    let (_, active) = plane.get("/prompts/helper/active").await;
    assert_eq!(active["version"], 1);
    let (status, _) = plane.get("/prompts/helper/diff?from=1&to=9").await;
    assert_eq!(status, 404);

    // The history cannot be rewritten, even from inside the database.
    let rewrite = sqlx::query("UPDATE prompt_versions SET content = 'evil'")
        .execute(&plane.db.pool)
        .await;
    assert!(rewrite.unwrap_err().to_string().contains("append-only"));
    plane.stop().await;
}

#[tokio::test]
async fn concurrent_versions_get_distinct_numbers() {
    let plane = Plane::start().await;
    agent(&plane, "busy").await;
    let plane = std::sync::Arc::new(plane);
    let mut tasks = Vec::new();
    for i in 0..10 {
        let plane = plane.clone();
        tasks.push(tokio::spawn(async move {
            plane
                .post(
                    "/prompts/busy",
                    json!({"content": format!("version text {i}")}),
                )
                .await
        }));
    }
    let mut versions = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 201, "{body}");
        versions.push(body["version"].as_i64().unwrap());
    }
    versions.sort();
    assert_eq!(versions, (1..=10).collect::<Vec<_>>());
    let plane = std::sync::Arc::into_inner(plane).unwrap();
    plane.stop().await;
}

#[tokio::test]
async fn changes_are_audited_and_announced_within_a_second() {
    let plane = Plane::start().await;
    let subject = plane.bus.bus.naming().subject("control.changed.>");
    let mut announcements = plane.bus.bus.client().subscribe(subject).await.unwrap();
    plane.bus.bus.client().flush().await.unwrap();

    agent(&plane, "helper").await;
    let started = Instant::now();
    plane
        .post("/prompts/helper", json!({"content": "Be kind."}))
        .await;
    let mut got = Vec::new();
    while got.len() < 2 {
        let message = tokio::time::timeout(Duration::from_secs(5), announcements.next())
            .await
            .expect("announcement within 5 s")
            .unwrap();
        let event: Value = serde_json::from_slice(&message.payload).unwrap();
        got.push((message.subject.to_string(), event));
    }
    let prompt = got
        .iter()
        .find(|(s, _)| s.ends_with("control.changed.prompt"))
        .expect("a prompt announcement");
    println!(
        "figure: prompt change to announcement: {} ms",
        started.elapsed().as_millis()
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(prompt.1["payload"]["id"], "helper");
    assert_eq!(prompt.1["payload"]["version"], 1);

    plane
        .post("/prompts/helper", json!({"content": "Be brief."}))
        .await;
    plane.post("/prompts/helper/1/activate", json!({})).await;

    // The audit trail: every change, in order, with before/after, on the AUDIT stream.
    let js = plane.bus.bus.jetstream();
    let stream_name = plane.bus.bus.naming().stream("AUDIT");
    let mut actions = Vec::new();
    for _ in 0..100 {
        let mut stream = js.get_stream(&stream_name).await.unwrap();
        let count = stream.info().await.unwrap().state.messages;
        if count >= 4 {
            actions.clear();
            for seq in 1..=count {
                let m = stream.get_raw_message(seq).await.unwrap();
                let event: Value = serde_json::from_slice(&m.payload).unwrap();
                actions.push(event);
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let names: Vec<&str> = actions
        .iter()
        .map(|e| e["payload"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "agent.create",
            "prompt.create",
            "prompt.create",
            "prompt.activate"
        ]
    );
    let rollback = actions.last().unwrap();
    assert_eq!(rollback["payload"]["before"]["active"], 2);
    assert_eq!(rollback["payload"]["after"]["active"], 1);
    assert_eq!(rollback["payload"]["actor"], "root");
    assert_eq!(rollback["source"], "control-plane");
    // Nothing left behind in the outbox.
    assert_eq!(plane.count("SELECT count(*) FROM control_outbox").await, 0);
    plane.stop().await;
}
