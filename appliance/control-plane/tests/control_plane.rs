//! The control plane against the real PostgreSQL and NATS.

use std::time::Duration;

use daarion_control_plane::testing::Plane;
use futures::StreamExt;
use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

async fn agent(plane: &Plane, id: &str) {
    let (status, body) = plane
        .post("/agents", json!({"id": id, "name": format!("Agent {id}")}))
        .await;
    assert_eq!(status, 201, "{body}");
}

/// Calls `path` with `token` and asserts the status; `why` names the case in a failure.
async fn expect(
    plane: &Plane,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: u16,
    why: &str,
) -> Value {
    let (got, answer) = plane.call(method.clone(), path, token, body).await;
    assert_eq!(got, status, "{why}: {method} {path} → {answer}");
    answer
}

/// The audit trail: every event on the AUDIT stream, once at least `count` are there.
async fn audit_events(plane: &Plane, count: usize) -> Vec<Value> {
    let js = plane.bus.bus.jetstream();
    let name = plane.bus.bus.naming().stream("AUDIT");
    for _ in 0..100 {
        let mut stream = js.get_stream(&name).await.unwrap();
        let stored = stream.info().await.unwrap().state.messages;
        if stored as usize >= count {
            let mut events = Vec::new();
            for seq in 1..=stored {
                let m = stream.get_raw_message(seq).await.unwrap();
                events.push(serde_json::from_slice(&m.payload).unwrap());
            }
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Vec::new()
}

/// `name=value` of the session cookie a login answer sets.
fn session_of(login: &reqwest::Response) -> String {
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
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
    let prompter = plane.token(&["prompts:write"]).await;
    let prompt = || Some(json!({"content": "You are helpful."}));
    for (token, method, path, body, expected, why) in [
        (
            &reader,
            Method::GET,
            "/agents",
            None,
            200,
            "a read token reads",
        ),
        (
            &reader,
            Method::POST,
            "/prompts/helper",
            prompt(),
            403,
            "a read token cannot change prompts",
        ),
        (
            &reader,
            Method::POST,
            "/agents",
            Some(json!({"id": "x", "name": "X"})),
            403,
            "a read token cannot add agents",
        ),
        (
            &reader,
            Method::GET,
            "/auth/tokens",
            None,
            403,
            "only admins see tokens",
        ),
        (
            &prompter,
            Method::POST,
            "/prompts/helper",
            prompt(),
            201,
            "prompts:write writes prompts",
        ),
        (
            &prompter,
            Method::PATCH,
            "/agents/helper",
            Some(json!({"enabled": false})),
            403,
            "prompts:write does not cover agents",
        ),
    ] {
        let body = expect(&plane, Some(token), method, path, body, expected, why).await;
        if expected == 403 {
            assert_eq!(body["error"]["code"], "forbidden", "{why}: {body}");
        }
    }

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
        .find(|t| {
            t["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("test-read-"))
        })
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !tokens.to_string().contains(&reader),
        "secrets never listed"
    );
    let (status, _) = plane.delete(&format!("/auth/tokens/{id}")).await;
    assert_eq!(status, 204);
    expect(
        &plane,
        Some(&reader),
        Method::GET,
        "/agents",
        None,
        401,
        "revoked",
    )
    .await;
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
        .patch(
            "/agents/helper",
            json!({"name": "Helper 2", "telegram_bot": ""}),
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
    let answers = join_all((0..10).map(|i| {
        plane.post(
            "/prompts/busy",
            json!({"content": format!("version text {i}")}),
        )
    }))
    .await;
    let mut versions = Vec::new();
    for (status, body) in answers {
        assert_eq!(status, 201, "{body}");
        versions.push(body["version"].as_i64().unwrap());
    }
    versions.sort();
    assert_eq!(versions, (1..=10).collect::<Vec<_>>());
    plane.stop().await;
}

#[tokio::test]
async fn changes_are_audited_and_announced() {
    let plane = Plane::start().await;
    let subject = plane.bus.bus.naming().subject("control.changed.>");
    let mut announcements = plane.bus.bus.client().subscribe(subject).await.unwrap();
    plane.bus.bus.client().flush().await.unwrap();

    agent(&plane, "helper").await;
    plane
        .post("/prompts/helper", json!({"content": "Be kind."}))
        .await;
    let mut got = Vec::new();
    while got.len() < 2 {
        // A guard against hanging, not a figure: `cargo bench -p daarion-control-client --bench
        // control` measures how soon a change is announced.
        let message = tokio::time::timeout(Duration::from_secs(30), announcements.next())
            .await
            .expect("announcement within 30 s")
            .unwrap();
        let event: Value = serde_json::from_slice(&message.payload).unwrap();
        got.push((message.subject.to_string(), event));
    }
    let prompt = got
        .iter()
        .find(|(s, _)| s.ends_with("control.changed.prompt"))
        .expect("a prompt announcement");
    assert_eq!(prompt.1["payload"]["id"], "helper");
    assert_eq!(prompt.1["payload"]["version"], 1);

    plane
        .post("/prompts/helper", json!({"content": "Be brief."}))
        .await;
    plane.post("/prompts/helper/1/activate", json!({})).await;

    // The audit trail: every change, in order, with before/after, on the AUDIT stream.
    let actions = audit_events(&plane, 4).await;
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
    // Nothing left behind in the outbox (the relay deletes a row just after publishing it, so
    // the last one may still be going when its event is already on the stream).
    let mut left = -1;
    for _ in 0..100 {
        left = plane.count("SELECT count(*) FROM control_outbox").await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left, 0);
    plane.stop().await;
}

#[tokio::test]
async fn policy_versions_and_decisions_follow_precedence() {
    let plane = Plane::start().await;
    agent(&plane, "helper").await;
    let (status, body) = plane.post("/roles", json!({"name": "beta"})).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = plane.post("/roles", json!({"name": "beta"})).await;
    assert_eq!(status, 409);

    let document = json!({
        "roles": {
            "user": {"use": true, "tools": {"allow": ["search_memory"]}, "models": {"allow": ["local-*"]}},
            "guest": {"use": false},
            "beta": {"tools": {"allow": ["generate_image"]}}
        },
        "users": {"u-banned": {"use": false}}
    });
    let (status, body) = plane
        .put(
            "/policy/helper",
            json!({"document": document, "comment": "first"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["version"], 1);

    let (status, _) = plane
        .put("/users/alice/roles", json!({"roles": ["user", "beta"]}))
        .await;
    assert_eq!(status, 200);
    plane
        .put("/users/u-banned/roles", json!({"roles": ["admin"]}))
        .await;

    let decide = |user: &'static str, action: &'static str, resource: &'static str| {
        let plane = &plane;
        async move {
            let (status, body) = plane
                .post(
                    "/policy/helper/decide",
                    json!({"user_id": user, "action": action, "resource": resource}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            (
                body["allow"].as_bool().unwrap(),
                body["rule"].as_str().unwrap().to_owned(),
                body["policy_version"].as_i64().unwrap(),
            )
        }
    };
    assert_eq!(
        decide("alice", "use", "").await,
        (true, "role:user use=true".into(), 1)
    );
    assert_eq!(
        decide("alice", "tool", "generate_image").await.1,
        "role:beta tools.allow generate_image"
    );
    assert!(!decide("alice", "model", "cloud-x").await.0);
    assert_eq!(
        decide("stranger", "use", "").await.1,
        "role:guest use=false"
    );
    assert_eq!(
        decide("u-banned", "use", "").await.1,
        "user:u-banned use=false",
        "a user entitlement beats even the admin role"
    );

    // Bad input leaves the stored policy as it was.
    for (body, field) in [
        (
            json!({"document": {"roles": {"ghost": {"use": true}}}}),
            "ghost",
        ),
        (
            json!({"document": {"roles": {"user": {"modes": {"allow": ["secret"]}}}}}),
            "modes",
        ),
    ] {
        let (status, error) = plane.put("/policy/helper", body).await;
        assert_eq!(status, 422, "{error}");
        assert!(
            error["error"]["message"].as_str().unwrap().contains(field),
            "{error}"
        );
    }
    let (status, _) = plane.put("/policy/nobody", json!({"document": {}})).await;
    assert_eq!(status, 404);
    let (status, _) = plane
        .put("/users/alice/roles", json!({"roles": ["wizard"]}))
        .await;
    assert_eq!(status, 422);
    let (_, current) = plane.get("/policy/helper").await;
    assert_eq!(current["version"], 1);
    let (_, roles) = plane.get("/users/alice/roles").await;
    assert_eq!(roles["roles"], json!(["beta", "user"]));
    let (status, body) = plane
        .post(
            "/policy/helper/decide",
            json!({"user_id": "a", "action": "fly"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");

    // Disabling the agent denies everyone.
    plane
        .patch("/agents/helper", json!({"enabled": false}))
        .await;
    assert_eq!(decide("alice", "use", "").await.1, "agent disabled");

    let reader = plane.token(&["read"]).await;
    expect(
        &plane,
        Some(&reader),
        Method::PUT,
        "/policy/helper",
        Some(json!({"document": {}})),
        403,
        "a read token cannot change policy",
    )
    .await;
    plane.stop().await;
}

#[tokio::test]
async fn config_is_typed_versioned_and_flags_roll_out_stably() {
    let plane = Plane::start().await;
    agent(&plane, "helper").await;
    let (status, body) = plane
        .put(
            "/config/flags.voice_replies",
            json!({"value": {"enabled": true, "rollout_percent": 30}, "comment": "try"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["version"], 1);

    // Bad input: 4xx and the stored value stays.
    for (key, value, what) in [
        (
            "flags.voice_replies",
            json!({"enabled": true, "rollout_percent": 150}),
            "percent",
        ),
        ("flags.voice_replies", json!({"enabled": "yes"}), "flag"),
        (
            "providers.deepseek",
            json!({"kind": "openai", "base_url": "https://api.deepseek.com", "api_key": "sk-live"}),
            "secret",
        ),
        (
            "routing.main",
            json!({"rules": [{"command": "/x", "agent": "ghost"}]}),
            "ghost",
        ),
        ("Bad Key", json!(1), "key"),
    ] {
        let (status, body) = plane
            .put(
                &format!("/config/{}", key.replace(' ', "%20")),
                json!({"value": value}),
            )
            .await;
        assert_eq!(status, 422, "{key} ({what}): {body}");
    }
    let (_, current) = plane.get("/config/flags.voice_replies").await;
    assert_eq!(current["version"], 1);
    assert_eq!(current["value"]["rollout_percent"], 30);
    let (status, _) = plane.get("/config/nope").await;
    assert_eq!(status, 404);

    let (status, body) = plane
        .put(
            "/config/providers.deepseek",
            json!({"value": {"kind": "openai", "base_url": "https://api.deepseek.com", "api_key_ref": "env:DEEPSEEK_API_KEY", "models": ["deepseek-chat"]}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = plane
        .put(
            "/config/routing.main",
            json!({"value": {"rules": [{"command": "/help", "agent": "helper"}], "default_agent": "helper"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // Stable rollout: the same users are in on every evaluation, about 30% of them.
    let mut enabled = Vec::new();
    for i in 0..200 {
        let (_, body) = plane
            .get(&format!("/flags/voice_replies?user_id=user-{i}"))
            .await;
        enabled.push(body["enabled"].as_bool().unwrap());
    }
    let share = enabled.iter().filter(|e| **e).count();
    assert!((35..=85).contains(&share), "≈60 of 200, got {share}");
    for i in [0, 7, 99] {
        let (_, body) = plane
            .get(&format!("/flags/voice_replies?user_id=user-{i}"))
            .await;
        assert_eq!(body["enabled"].as_bool().unwrap(), enabled[i]);
    }

    // History: a second version, and the first is still there.
    plane
        .put(
            "/config/flags.voice_replies",
            json!({"value": {"enabled": false}}),
        )
        .await;
    let (_, history) = plane.get("/config/flags.voice_replies/versions").await;
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["value"]["rollout_percent"], 30);
    assert_eq!(history[1]["author"], "root");
    let (_, body) = plane.get("/flags/voice_replies?user_id=user-0").await;
    assert_eq!(body["enabled"], false);
    plane.stop().await;
}

#[tokio::test]
async fn quota_of_ten_admits_exactly_ten_of_a_hundred_concurrent_requests() {
    let plane = Plane::start().await;
    let (status, body) = plane
        .put(
            "/quotas/limits/user/alice",
            json!({"tokens_per_day": 10, "requests_per_minute": 1000}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let consumer = plane.token(&["quota:consume"]).await;
    let answers = join_all((0..100).map(|_| {
        plane.call(
            Method::POST,
            "/quotas/alice/consume",
            Some(&consumer),
            Some(json!({"requests": 1, "tokens": 1})),
        )
    }))
    .await;
    let mut allowed = 0;
    let mut refused = 0;
    for (status, body) in answers {
        match status {
            200 => allowed += 1,
            429 => {
                assert_eq!(body["error"]["code"], "quota_exceeded");
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("tokens_per_day")
                );
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((allowed, refused), (10, 90));
    let metrics = reqwest::get(plane.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let refused_total: f64 = metrics
        .lines()
        .find(|l| l.starts_with("daarion_control_quota_checks_total{outcome=\"refused\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no quota metric in:\n{metrics}"));
    assert!(refused_total >= 90.0, "{refused_total}");
    let (_, status) = plane.get("/quotas/alice").await;
    assert_eq!(status["usage"]["tokens_today"], 10);
    assert_eq!(status["usage"]["requests_this_minute"], 10);
    assert_eq!(status["sources"]["tokens_per_day"], "user:alice");

    // Settling gives back what a reservation over-estimated.
    expect(
        &plane,
        Some(&consumer),
        Method::POST,
        "/quotas/alice/settle",
        Some(json!({"reserved": {"tokens": 4}, "actual": {"tokens": 1}})),
        200,
        "settle",
    )
    .await;
    let (_, status) = plane.get("/quotas/alice").await;
    assert_eq!(status["usage"]["tokens_today"], 7);

    // Role limits apply to users without their own; the most generous role wins.
    plane
        .put("/users/bob/roles", json!({"roles": ["user", "operator"]}))
        .await;
    plane
        .put(
            "/quotas/limits/role/user",
            json!({"gpu_seconds_per_day": 60.0}),
        )
        .await;
    plane
        .put(
            "/quotas/limits/role/operator",
            json!({"gpu_seconds_per_day": 600.0}),
        )
        .await;
    let (_, status) = plane.get("/quotas/bob").await;
    assert_eq!(status["limits"]["gpu_seconds_per_day"], 600.0);
    assert_eq!(status["sources"]["gpu_seconds_per_day"], "role:operator");

    // Bad input and missing scope.
    let root = plane.root.clone();
    for (token, method, path, body, status, why) in [
        (
            &root,
            Method::PUT,
            "/quotas/limits/user/alice",
            json!({"tokens_per_day": -5}),
            422,
            "a negative limit",
        ),
        (
            &root,
            Method::PUT,
            "/quotas/limits/role/wizard",
            json!({"tokens_per_day": 5}),
            422,
            "an unknown role",
        ),
    ] {
        expect(&plane, Some(token), method, path, Some(body), status, why).await;
    }
    let (_, status) = plane.get("/quotas/alice").await;
    assert_eq!(status["limits"]["tokens_per_day"], 10, "unchanged");
    for (token, method, path, body, status, why) in [
        (
            &consumer,
            Method::POST,
            "/quotas/alice/consume",
            json!({"cost": -1.0}),
            422,
            "a negative cost",
        ),
        (
            &consumer,
            Method::PUT,
            "/quotas/limits/user/alice",
            json!({"tokens_per_day": 1000000}),
            403,
            "the data plane cannot raise its own limits",
        ),
    ] {
        expect(&plane, Some(token), method, path, Some(body), status, why).await;
    }
    plane.stop().await;
}

#[tokio::test]
async fn admin_login_sessions_and_csrf() {
    let plane = Plane::start().await;
    for (password, status) in [
        ("short", 422),
        ("correct horse battery", 201),
        ("another long password", 409),
    ] {
        let (got, body) = plane
            .post(
                "/auth/admins",
                json!({"username": "alice", "password": password}),
            )
            .await;
        assert_eq!(got, status, "{password}: {body}");
    }

    let http = reqwest::Client::new();
    let login = |username: &'static str, password: &'static str| {
        let http = http.clone();
        let url = plane.url("/auth/login");
        async move {
            http.post(url)
                .json(&json!({"username": username, "password": password}))
                .send()
                .await
                .unwrap()
        }
    };
    for (user, password) in [
        ("alice", "wrong password!!"),
        ("mallory", "correct horse battery"),
    ] {
        let r = login(user, password).await;
        assert_eq!(r.status(), 401, "{user}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["message"], "missing or invalid API token");
    }
    let r = login("alice", "correct horse battery").await;
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let session = session_of(&r);
    let body: Value = r.json().await.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();

    let helper = || Some(json!({"id": "helper", "name": "Helper"}));
    let as_session = |method: Method, path: &str, csrf: Option<&str>, body: Option<Value>| {
        let mut request = http
            .request(method, plane.url(path))
            .header("cookie", session.clone());
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    assert_eq!(as_session(Method::GET, "/agents", None, None).await.0, 200);
    let (status, body) = as_session(Method::POST, "/agents", None, helper()).await;
    assert_eq!(status, 403, "a state change without the CSRF token");
    assert_eq!(body["error"]["code"], "csrf");
    assert_eq!(plane.count("SELECT count(*) FROM agents").await, 0);
    let (status, _) = as_session(Method::POST, "/agents", Some(&csrf), helper()).await;
    assert_eq!(status, 201);
    let (_, versions) = plane.get("/agents/helper").await;
    assert_eq!(versions["id"], "helper");

    // Logout (with the CSRF token: a cross-site page cannot sign the admin out) ends it; an
    // expired session is refused too.
    assert_eq!(
        as_session(Method::POST, "/auth/logout", None, None).await.0,
        403
    );
    assert_eq!(
        as_session(Method::POST, "/auth/logout", Some(&csrf), None)
            .await
            .0,
        204
    );
    assert_eq!(as_session(Method::GET, "/agents", None, None).await.0, 401);
    let again = session_of(&login("alice", "correct horse battery").await);
    sqlx::query("UPDATE admin_sessions SET expires_at = now() - interval '1 minute'")
        .execute(&plane.db.pool)
        .await
        .unwrap();
    let r = http
        .get(plane.url("/agents"))
        .header("cookie", again)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The stored hash is argon2id, never the password.
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM admin_accounts")
        .fetch_one(&plane.db.pool)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$") && !hash.contains("correct horse"));
    plane.stop().await;
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_every_listed_route_needs_a_credential() {
    let plane = Plane::start().await;
    let (status, doc) = plane.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["info"]["title"], "DAARION control plane");
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{method} {path} documents its responses"
            );
            let concrete = path
                .replace("{version}", "1")
                .replace("{id}", "00000000-0000-0000-0000-000000000000")
                .replace(['{', '}'], "");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) = plane
                .call(method.clone(), &concrete, None, Some(json!({})))
                .await;
            if path == "/auth/login" {
                assert_ne!(status, 404, "{method} {path} exists");
            } else if path == "/auth/logout" {
                assert_eq!(status, 204);
            } else {
                assert_eq!(
                    status, 401,
                    "{method} {path} must need a credential: {body}"
                );
            }
        }
    }
    assert!(operations >= 30, "only {operations} operations documented");
    for expected in [
        "/prompts/{agent_id}/{version}/activate",
        "/policy/{agent_id}/decide",
        "/quotas/{user_id}/consume",
        "/config/{key}",
    ] {
        assert!(paths.contains_key(expected), "{expected} missing");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    plane.stop().await;
}

#[tokio::test]
async fn every_kind_of_change_is_audited_with_its_actor() {
    let plane = Plane::start().await;
    agent(&plane, "helper").await;
    let steps: Vec<(Method, &str, Value)> = vec![
        (Method::PATCH, "/agents/helper", json!({"description": "d"})),
        (Method::POST, "/roles", json!({"name": "beta"})),
        (
            Method::PUT,
            "/users/alice/roles",
            json!({"roles": ["beta"]}),
        ),
        (
            Method::PUT,
            "/policy/helper",
            json!({"document": {"roles": {"beta": {"use": true}}}}),
        ),
        (
            Method::PUT,
            "/config/flags.x",
            json!({"value": {"enabled": true}}),
        ),
        (
            Method::PUT,
            "/quotas/limits/role/beta",
            json!({"tokens_per_day": 5}),
        ),
        (
            Method::POST,
            "/auth/admins",
            json!({"username": "bob", "password": "a long enough password"}),
        ),
    ];
    for (method, path, body) in steps {
        let (status, answer) = plane
            .call(method.clone(), path, Some(&plane.root), Some(body))
            .await;
        assert!(status < 300, "{method} {path}: {answer}");
    }
    // Minting a token is a change too; its secret is not needed here.
    plane.token(&["read"]).await;
    let (_, tokens) = plane.get("/auth/tokens").await;
    let id = tokens[0]["id"].as_str().unwrap().to_owned();
    plane.delete(&format!("/auth/tokens/{id}")).await;

    let expected = [
        "agent.create",
        "agent.update",
        "role.create",
        "user.roles",
        "policy.update",
        "config.set",
        "quota.set",
        "admin.create",
        "token.create",
        "token.revoke",
    ];
    let mut actions = Vec::new();
    for event in audit_events(&plane, expected.len()).await {
        assert_eq!(event["payload"]["actor"], "root");
        actions.push(event["payload"]["action"].as_str().unwrap().to_owned());
    }
    assert_eq!(actions, expected);
    plane.stop().await;
}
