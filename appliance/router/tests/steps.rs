//! Crew steps (`/v1/steps/llm`, `/v1/steps/tool`) against the real control plane, memory,
//! Redis and NATS with a scripted provider: answers with usage, quota charged, replays by key,
//! policy, quota (GPU-seconds included) and bounds refusals, and who may call.

mod helpers;

use std::time::Duration;

use daarion_llm::testing::{Reply, openai_answer, sse};
use helpers::{Stack, event};
use reqwest::Method;
use serde_json::{Value, json};

impl Stack {
    /// Posts a step with `token` (none: no credential); the status and the JSON body.
    async fn step_as(&self, token: Option<&str>, kind: &str, body: &Value) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/v1/steps/{kind}", self.router_url))
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn step(&self, kind: &str, body: &Value) -> (u16, Value) {
        let root = self.plane.root.clone();
        self.step_as(Some(&root), kind, body).await
    }

    async fn usage_now(&self, user: &str) -> Value {
        let (status, quota) = self.plane.get(&format!("/quotas/{user}")).await;
        assert_eq!(status, 200, "{quota}");
        quota["usage"].clone()
    }

    async fn limit(&self, user: &str, limits: Value) {
        self.control(Method::PUT, &format!("/quotas/limits/user/{user}"), limits)
            .await;
    }
}

fn llm_step(user: &str, key: &str) -> Value {
    json!({"user_id": user, "agent_id": "a", "idempotency_key": key,
           "messages": [{"role": "system", "content": "You research."},
                        {"role": "user", "content": "Compare the suppliers."}]})
}

fn slow_answer(text: &str) -> Reply {
    Reply::Stream {
        chunks: sse(&[
            json!({"choices": [{"index": 0, "delta": {"content": text}}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 7}}),
        ]),
        gap: Duration::from_millis(150),
        stall: false,
    }
}

#[tokio::test]
async fn an_llm_step_answers_with_usage_charges_the_quota_and_runs_once_per_key() {
    let stack = Stack::start(false).await;
    let fake = stack.fake().await;
    fake.always(slow_answer("supplier B"));
    stack.agent("a", "You are a.", None, None).await;
    let user = stack.user("30").await;

    let mut body = llm_step(&user, "run-1/research");
    body["tools"] = json!(["remember_fact"]);
    body["json_schema"] = json!({"type": "object", "properties": {"best": {"type": "string"}}});
    let (status, first) = stack.step("llm", &body).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["content"], "supplier B");
    assert_eq!(
        (first["provider"].as_str(), first["model"].as_str()),
        (Some("fake"), Some("m"))
    );
    assert_eq!(first["usage"]["prompt_tokens"], 30);
    assert_eq!(first["usage"]["completion_tokens"], 7);
    // 30 × 1000 + 7 × 2000 per million.
    assert!(
        (first["usage"]["cost"].as_f64().unwrap() - 0.044).abs() < 1e-9,
        "{first}"
    );
    assert_eq!(
        first["usage"]["gpu_seconds"], 0.0,
        "a remote model holds no GPU here"
    );
    assert_eq!(first["replayed"], false);
    let sent = &fake.bodies()[0];
    assert_eq!(sent["tools"][0]["function"]["name"], "remember_fact");
    assert!(
        sent["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("JSON schema"),
        "{sent}"
    );
    let usage = stack.usage_now(&user).await;
    assert_eq!(
        usage["tokens_today"], 37,
        "settled at what was used: {usage}"
    );
    assert_eq!(usage["requests_this_minute"], 1);

    let (status, again) = stack.step("llm", &body).await;
    assert_eq!(status, 200);
    assert_eq!(again["replayed"], true);
    assert_eq!(again["content"], first["content"]);
    assert_eq!(again["usage"], first["usage"]);
    assert_eq!(fake.count(), 1, "a replay calls no model");
    assert_eq!(
        stack.usage_now(&user).await["tokens_today"],
        37,
        "nor charges"
    );

    // Two calls at once with one key: one runs, the other waits for its answer.
    let body = llm_step(&user, "run-1/compare");
    let (a, b) = tokio::join!(stack.step("llm", &body), stack.step("llm", &body));
    assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
    let replayed = [&a.1, &b.1]
        .iter()
        .filter(|v| v["replayed"] == true)
        .count();
    assert_eq!(replayed, 1, "{a:?} {b:?}");
    assert_eq!(fake.count(), 2, "the provider saw the step once");
    assert_eq!(stack.usage_now(&user).await["tokens_today"], 74);
    stack.stop().await;
}

#[tokio::test]
async fn steps_are_refused_by_scope_policy_quota_and_bounds_with_json_errors() {
    let stack = Stack::start(false).await;
    let fake = stack.fake().await;
    fake.always(openai_answer("never"));
    let policy = json!({"roles": {"guest": {"use": true, "models": {"allow": ["fake/m", "local/*"]}, "tools": {"allow": ["recall_facts"]}}}});
    stack.agent("a", "You are a.", None, Some(policy)).await;
    let user = stack.user("31").await;
    let ok = llm_step(&user, "run-2/a");

    let user_token = stack.plane.token(&["agents:use"]).await;
    let admin = stack.plane.token(&["admin"]).await;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut body = ok.clone();
        f(&mut body);
        body
    };
    let many: Vec<Value> = (0..201)
        .map(|_| json!({"role": "user", "content": "x"}))
        .collect();
    // (what, credential, body, status, code)
    let cases: Vec<(&str, Option<&str>, Value, u16, &str)> = vec![
        ("no credential", None, ok.clone(), 401, "unauthorized"),
        ("wrong token", Some("nope"), ok.clone(), 401, "unauthorized"),
        (
            "agents:use only",
            Some(&user_token),
            ok.clone(),
            403,
            "forbidden",
        ),
        (
            "model not allowed",
            Some(&admin),
            with(&|b| b["model"] = json!("fake/other")),
            403,
            "refused",
        ),
        (
            "tool not allowed",
            Some(&admin),
            with(&|b| b["tools"] = json!(["remember_fact"])),
            403,
            "refused",
        ),
        (
            "unknown tool",
            Some(&admin),
            with(&|b| b["tools"] = json!(["rm_rf"])),
            422,
            "invalid",
        ),
        (
            "unknown agent",
            Some(&admin),
            with(&|b| b["agent_id"] = json!("nobody")),
            404,
            "unknown_agent",
        ),
        (
            "too many messages",
            Some(&admin),
            with(&|b| b["messages"] = json!(many)),
            413,
            "payload_too_large",
        ),
        (
            "too much text",
            Some(&admin),
            with(&|b| b["messages"][1]["content"] = json!("x".repeat(512 * 1024 + 1))),
            413,
            "payload_too_large",
        ),
        (
            "NUL",
            Some(&admin),
            with(&|b| b["messages"][1]["content"] = json!("a\u{0}b")),
            422,
            "invalid",
        ),
        (
            "long key",
            Some(&admin),
            with(&|b| b["idempotency_key"] = json!("k".repeat(201))),
            422,
            "invalid",
        ),
        (
            "unknown field",
            Some(&admin),
            with(&|b| b["temperature"] = json!(2)),
            422,
            "",
        ),
    ];
    for (what, token, body, status, code) in cases {
        let (got, answer) = stack.step_as(token, "llm", &body).await;
        assert_eq!(got, status, "{what}: {answer}");
        assert!(
            answer["error"]["message"].is_string(),
            "{what}: a JSON error: {answer}"
        );
        if !code.is_empty() {
            assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
        }
    }
    let (status, answer) = stack
        .step_as(Some(&user_token), "tool", &json!({"user_id": user, "agent_id": "a", "name": "recall_facts", "arguments": {}, "idempotency_key": "k"}))
        .await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(fake.count(), 0, "no refused step called a model");

    // Out of tokens: 429 before any model call.
    stack.limit(&user, json!({"tokens_per_day": 10})).await;
    let (status, answer) = stack.step("llm", &ok).await;
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["error"]["code"], "quota_exceeded");
    assert_eq!(fake.count(), 0);

    // Out of GPU-seconds: a local model is refused before it is called (no swapper runs here),
    // while a remote one still answers.
    let gpu_user = stack.user("32").await;
    stack
        .limit(&gpu_user, json!({"gpu_seconds_per_day": 0.0}))
        .await;
    let mut local = llm_step(&gpu_user, "run-3/local");
    local["model"] = json!("local/smollm2");
    let (status, answer) = stack.step("llm", &local).await;
    assert_eq!(status, 429, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gpu_seconds"),
        "{answer}"
    );
    let (status, answer) = stack
        .step("llm", &llm_step(&gpu_user, "run-3/remote"))
        .await;
    assert_eq!(status, 200, "{answer}");
    stack.stop().await;
}

#[tokio::test]
async fn a_tool_step_has_its_side_effect_once_per_key() {
    let stack = Stack::start(false).await;
    stack.agent("a", "You are a.", None, None).await;
    let user = stack.user("33").await;
    let remember = json!({"user_id": user, "agent_id": "a", "name": "remember_fact",
                          "arguments": {"fact": "prefers supplier B"}, "idempotency_key": "run-4/t1"});
    let (status, first) = stack.step("tool", &remember).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["ok"], true);
    assert_eq!(first["output"]["remembered"], "prefers supplier B");
    assert_eq!(first["replayed"], false);
    let (status, again) = stack.step("tool", &remember).await;
    assert_eq!(status, 200);
    assert_eq!(again["replayed"], true);
    assert_eq!(again["output"], first["output"]);
    let (status, facts) = stack
        .memory(Method::GET, &format!("/v1/users/{user}/facts"), None)
        .await;
    assert_eq!(status, 200, "{facts}");
    assert_eq!(
        facts.as_array().unwrap().len(),
        1,
        "remembered once: {facts}"
    );

    // Arguments the schema refuses are the model's to correct: an answer, not an HTTP error.
    let mut bad = remember.clone();
    bad["arguments"] = json!({"fact": 3});
    bad["idempotency_key"] = json!("run-4/t2");
    let (status, answer) = stack.step("tool", &bad).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], false);
    assert!(
        answer["output"]["error"]
            .as_str()
            .unwrap()
            .contains("/fact"),
        "{answer}"
    );
    let mut unknown = remember.clone();
    unknown["name"] = json!("format_disk");
    let (status, answer) = stack.step("tool", &unknown).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("invalid")),
        "{answer}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn gpu_seconds_are_reserved_for_local_models_and_tools_and_settled_as_measured() {
    let stack = Stack::start(false).await;
    let fake = stack.fake().await;
    fake.always(openai_answer("ok"));
    stack
        .agent(
            "local",
            "You are local.",
            Some(json!({"models": ["local/smollm2"], "tools": []})),
            None,
        )
        .await;
    let only_fake = json!({"roles": {"guest": {"use": true, "models": {"allow": ["fake/*"]}, "tools": {"allow": ["*"]}, "modes": {"allow": ["*"]}}}});
    stack
        .agent(
            "a",
            "You are a.",
            Some(json!({"tts_model": "espeak-en"})),
            Some(only_fake),
        )
        .await;
    stack
        .agent(
            "b",
            "You are b.",
            Some(json!({"tts_model": "espeak-en"})),
            None,
        )
        .await;
    let spent = stack.user("34").await;
    stack
        .limit(&spent, json!({"gpu_seconds_per_day": 0.0}))
        .await;

    // A turn on a local model: refused before the model is called.
    let mut message = Stack::message("34", "hi");
    message["agent"] = json!("local");
    let events = stack.route(&message).await;
    assert_eq!(event(&events, "refused")["code"], "quota", "{events:?}");
    // A tool's model use: refused the same way, told to the model as the tool's failure.
    let speak = |user: &str, agent: &str, key: &str| {
        json!({"user_id": user, "agent_id": agent, "name": "speak",
               "arguments": {"text": "Hello there"}, "idempotency_key": key})
    };
    let (status, answer) = stack.step("tool", &speak(&spent, "b", "run-5/speak")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], false);
    assert!(
        answer["output"]["error"]
            .as_str()
            .unwrap()
            .contains("gpu_seconds"),
        "{answer}"
    );
    assert_eq!(answer["usage"]["gpu_seconds"], 0.0, "nothing ran");
    // And the per-model policy applies to it: agent `a` may use fake models only.
    let user = stack.user("35").await;
    let (_, answer) = stack.step("tool", &speak(&user, "a", "run-6/speak")).await;
    assert_eq!(answer["ok"], false);
    assert!(
        answer["output"]["error"]
            .as_str()
            .unwrap()
            .contains("not allowed"),
        "{answer}"
    );
    assert_eq!(stack.usage_now(&user).await["gpu_seconds_today"], 0.0);

    // Allowed and within budget: the swapper (absent here) fails, and the time it took is
    // what the counter holds, not the estimate that was reserved.
    stack
        .limit(&user, json!({"gpu_seconds_per_day": 100.0}))
        .await;
    let (_, answer) = stack
        .step("tool", &speak(&user, "b", "run-6/speak-b"))
        .await;
    assert_eq!(answer["ok"], false, "{answer}");
    let measured = answer["usage"]["gpu_seconds"].as_f64().unwrap();
    assert!(measured > 0.0 && measured < 5.0, "{answer}");
    let counted = stack.usage_now(&user).await["gpu_seconds_today"]
        .as_f64()
        .unwrap();
    assert!(
        (counted - measured).abs() <= 0.001,
        "{counted} counted, {measured} measured"
    );
    stack.stop().await;
}
