//! The memory REST API in-process, with a real control plane for token checks, on the real
//! PostgreSQL, Redis and NATS.

use std::time::Duration;

mod helpers;

use daarion_control_plane::testing::Plane;
use helpers::falkor::Falkor;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

struct Memory {
    plane: Plane,
    url: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), daarion_memory::MemoryError>>,
    http: reqwest::Client,
}

impl Memory {
    async fn start() -> Memory {
        Memory::start_with(|_| {}).await
    }

    /// With a change to the memory service's configuration.
    async fn start_with(change: impl FnOnce(&mut daarion_config::Config)) -> Memory {
        let plane = Plane::start().await;
        let mut config = plane.config.clone();
        change(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(daarion_memory::run(config, listener, shutdown.clone()));
        let http = reqwest::Client::new();
        for _ in 0..400 {
            if let Ok(r) = http.get(format!("{url}/ready")).send().await
                && r.status().is_success()
            {
                break;
            }
            if task.is_finished() {
                panic!("memory did not start: {:?}", task.await.unwrap());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Memory {
            plane,
            url,
            shutdown,
            task,
            http,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        acting_for: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(user) = acting_for {
            request = request.header("x-daarion-acting-for", user);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn root(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let root = self.plane.root.clone();
        self.call(method, path, Some(&root), None, body).await
    }

    async fn user(&self, external_id: &str) -> String {
        let (status, body) = self
            .root(
                Method::POST,
                "/v1/identities/resolve",
                Some(json!({"channel": "telegram", "external_id": external_id, "display_name": external_id})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["user_id"].as_str().unwrap().to_owned()
    }

    async fn count(&self, sql: &str) -> i64 {
        self.plane.count(sql).await
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
        self.plane.stop().await;
    }

    /// Stops the memory service and starts it again on the same database, bus and data
    /// directory, with `change` made to its configuration.
    async fn restart_with(&mut self, change: impl FnOnce(&mut daarion_config::Config)) {
        self.shutdown.cancel();
        (&mut self.task).await.unwrap().unwrap();
        let mut config = self.plane.config.clone();
        change(&mut config);
        let listener = TcpListener::bind(self.url.trim_start_matches("http://"))
            .await
            .unwrap();
        self.shutdown = CancellationToken::new();
        self.task = tokio::spawn(daarion_memory::run(config, listener, self.shutdown.clone()));
        for _ in 0..200 {
            if let Ok(r) = self.http.get(format!("{}/ready", self.url)).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("memory did not come back");
    }

    /// Polls `GET /v1/index/status` until `done` holds for it.
    async fn index_until(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..600 {
            let (status, body) = self.root(Method::GET, "/v1/index/status", None).await;
            assert_eq!(status, 200, "{body}");
            if done(&body) {
                return body;
            }
            last = body;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("index never reached: {what}; last status {last}");
    }
}

/// How many items of `kind` are in `state` according to an index status answer.
fn indexed(status: &Value, kind: &str, state: &str) -> i64 {
    status["states"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == kind && s["state"] == state)
        .map_or(0, |s| s["count"].as_i64().unwrap())
}

/// A swapper serving MiniLM embeddings with the real llama.cpp worker, on `listener`.
async fn embeddings_on(
    config: &daarion_config::Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let dir = config
        .general
        .data_dir
        .join(format!("swapper-{}", listener.local_addr().unwrap().port()));
    let config = daarion_swapper::testing::config(
        config,
        &dir,
        &[("minilm", "embedding", "all-minilm-l6-v2-f16.gguf", 512)],
    );
    tokio::spawn(async move {
        daarion_swapper::run(config, listener, shutdown)
            .await
            .unwrap();
    })
}

/// A memory service whose embeddings come from a real swapper with MiniLM; the swapper stops
/// when the returned token is cancelled.
async fn with_embeddings() -> (Memory, CancellationToken, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let memory = Memory::start_with(|c| {
        c.swapper.listen = addr;
        c.models.embedding_model = "minilm".into();
    })
    .await;
    let stop = CancellationToken::new();
    let swapper = embeddings_on(&memory.plane.config, listener, stop.clone()).await;
    (memory, stop, swapper)
}

#[tokio::test]
async fn credentials_scopes_and_user_confinement() {
    let memory = Memory::start().await;
    let alice = memory.user("1001").await;
    let bob = memory.user("1002").await;
    let path = format!("/v1/users/{alice}");

    let (status, body) = memory.call(Method::GET, &path, None, None, None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = memory
        .call(Method::GET, &path, Some("dcp_wrong"), None, None)
        .await;
    assert_eq!(status, 401);

    let reader = memory.plane.token(&["memory:read"]).await;
    let (status, body) = memory
        .call(Method::GET, &path, Some(&reader), None, None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["identities"][0]["external_id"], "1001");
    let (status, body) = memory
        .call(
            Method::POST,
            &format!("/v1/users/{alice}/facts"),
            Some(&reader),
            None,
            Some(json!({"content": "likes tea"})),
        )
        .await;
    assert_eq!(status, 403, "a read token cannot write: {body}");

    let unrelated = memory.plane.token(&["prompts:write"]).await;
    let (status, _) = memory
        .call(Method::GET, &path, Some(&unrelated), None, None)
        .await;
    assert_eq!(status, 403, "no memory scope at all");

    // A token acting for users reaches only the one it names.
    let acting = memory.plane.token(&["memory:user"]).await;
    let (status, _) = memory
        .call(Method::GET, &path, Some(&acting), None, None)
        .await;
    assert_eq!(status, 422, "must name the user it acts for");
    let (status, _) = memory
        .call(Method::GET, &path, Some(&acting), Some(&alice), None)
        .await;
    assert_eq!(status, 200);
    let (status, body) = memory
        .call(
            Method::GET,
            &format!("/v1/users/{bob}"),
            Some(&acting),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "other_user");
    let (status, _) = memory
        .call(
            Method::POST,
            &format!("/v1/users/{alice}/facts"),
            Some(&acting),
            Some(&alice),
            Some(json!({"content": "likes tea"})),
        )
        .await;
    assert_eq!(status, 201, "acting for alice may write alice's data");
    let (status, _) = memory
        .call(
            Method::GET,
            &format!("/v1/search?user_id={bob}&q=tea"),
            Some(&acting),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, 403, "nor search another user's data");
    // Even the root token is confined once it names a user.
    let (status, _) = memory
        .call(
            Method::GET,
            &format!("/v1/users/{bob}"),
            Some(&memory.plane.root.clone()),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, 403);
    memory.stop().await;
}

#[tokio::test]
async fn first_contact_creates_one_user_even_when_racing() {
    let memory = std::sync::Arc::new(Memory::start().await);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let memory = memory.clone();
        tasks.push(tokio::spawn(async move { memory.user("race").await }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(memory.count("SELECT count(*) FROM users").await, 1);
    let memory = std::sync::Arc::into_inner(memory).unwrap();
    memory.stop().await;
}

#[tokio::test]
async fn sessions_keep_messages_with_trace_and_versions_and_refuse_bad_input() {
    let memory = Memory::start().await;
    let alice = memory.user("2001").await;
    let (status, session) = memory
        .root(
            Method::POST,
            "/v1/sessions",
            Some(json!({"user_id": alice, "agent_id": "helper", "chat": "tg:2001"})),
        )
        .await;
    assert_eq!(status, 201, "{session}");
    let sid = session["id"].as_str().unwrap().to_owned();
    let messages = format!("/v1/sessions/{sid}/messages");
    for (role, content) in [
        ("user", "What is the capital of France?"),
        ("assistant", "Paris."),
    ] {
        let (status, body) = memory
            .root(
                Method::POST,
                &messages,
                Some(json!({
                    "role": role, "content": content, "agent_id": "helper", "model": "smollm2",
                    "prompt_tokens": 12, "completion_tokens": 3,
                    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                    "versions": {"prompt": 3, "policy": 1}
                })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (_, listed) = memory.root(Method::GET, &messages, None).await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["role"], "user");
    assert_eq!(listed[1]["content"], "Paris.");
    assert_eq!(listed[1]["versions"]["prompt"], 3);
    assert_eq!(listed[1]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");

    // Bad input: 4xx and nothing stored.
    let huge = "x".repeat(daarion_memory::api::MAX_MESSAGE_BYTES + 1);
    for (body, status_code) in [
        (json!({"role": "user", "content": huge}), 413),
        (json!({"role": "wizard", "content": "hi"}), 422),
        (
            json!({"role": "user", "content": "hi", "versions": [1]}),
            422,
        ),
        (json!({"role": "user"}), 422),
    ] {
        let (status, answer) = memory.root(Method::POST, &messages, Some(body)).await;
        assert_eq!(status, status_code, "{answer}");
    }
    let malformed = memory
        .http
        .post(format!("{}{messages}", memory.url))
        .bearer_auth(&memory.plane.root)
        .header("content-type", "application/json")
        .body("{\"role\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let (status, _) = memory
        .root(
            Method::POST,
            "/v1/sessions",
            Some(json!({"user_id": "00000000-0000-0000-0000-000000000000", "agent_id": "helper"})),
        )
        .await;
    assert_eq!(status, 404, "unknown user");
    assert_eq!(memory.count("SELECT count(*) FROM messages").await, 2);

    let (status, _) = memory
        .root(Method::POST, &format!("/v1/sessions/{sid}/end"), None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = memory
        .root(
            Method::POST,
            &messages,
            Some(json!({"role": "user", "content": "still there?"})),
        )
        .await;
    assert_eq!(status, 409, "an ended session takes no more messages");
    memory.stop().await;
}

#[tokio::test]
async fn facts_are_superseded_never_overwritten_and_forgetting_is_audited() {
    let memory = Memory::start().await;
    let alice = memory.user("3001").await;
    let facts = format!("/v1/users/{alice}/facts");
    let (status, first) = memory
        .root(
            Method::POST,
            &facts,
            Some(json!({"content": "lives in Lyon"})),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    let first_id = first["id"].as_str().unwrap().to_owned();

    // Two clients supersede the same fact at once: exactly one wins.
    let memory = std::sync::Arc::new(memory);
    let mut racers = Vec::new();
    for city in ["Paris", "Nice"] {
        let (memory, id) = (memory.clone(), first_id.clone());
        racers.push(tokio::spawn(async move {
            memory
                .root(
                    Method::POST,
                    &format!("/v1/facts/{id}/supersede"),
                    Some(json!({"content": format!("lives in {city}"), "reason": "moved"})),
                )
                .await
        }));
    }
    let mut outcomes = Vec::new();
    for r in racers {
        outcomes.push(r.await.unwrap());
    }
    let winners: Vec<&Value> = outcomes
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    assert!(outcomes.iter().any(|(s, _)| *s == 409));
    let second_id = winners[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(winners[0]["supersedes"], first_id.as_str());

    let (_, current) = memory.root(Method::GET, &facts, None).await;
    assert_eq!(current.as_array().unwrap().len(), 1);
    assert_eq!(current[0]["id"], second_id.as_str());
    let (_, all) = memory
        .root(Method::GET, &format!("{facts}?history=true"), None)
        .await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(all[0]["content"], "lives in Lyon");
    assert!(
        all[0]["valid_to"].is_string(),
        "the old fact's validity ended"
    );
    let (_, chain) = memory
        .root(Method::GET, &format!("/v1/facts/{first_id}/history"), None)
        .await;
    let chain: Vec<&str> = chain
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(chain, vec![first_id.as_str(), second_id.as_str()]);

    // Forget: validity ends, the row stays, the audit log says who and why.
    let (status, body) = memory
        .root(
            Method::POST,
            &format!("/v1/facts/{second_id}/forget"),
            Some(json!({"reason": "user asked"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["forgotten"], true);
    let (status, _) = memory
        .root(
            Method::POST,
            &format!("/v1/facts/{second_id}/forget"),
            Some(json!({"reason": "again"})),
        )
        .await;
    assert_eq!(status, 409);
    let (_, current) = memory.root(Method::GET, &facts, None).await;
    assert!(current.as_array().unwrap().is_empty());
    assert_eq!(
        memory.count("SELECT count(*) FROM facts").await,
        2,
        "nothing deleted"
    );
    assert_eq!(
        memory
            .count("SELECT count(*) FROM audit_log WHERE action = 'fact.forget' AND detail->>'reason' = 'user asked'")
            .await,
        1
    );

    // Bad input stores nothing.
    for (body, code) in [
        (json!({"content": ""}), 422),
        (json!({"content": "x".repeat(5000)}), 413),
        (
            json!({"content": "ok", "source_message_id": "00000000-0000-0000-0000-000000000000"}),
            422,
        ),
    ] {
        let (status, answer) = memory.root(Method::POST, &facts, Some(body)).await;
        assert_eq!(status, code, "{answer}");
    }
    let (status, _) = memory
        .root(
            Method::POST,
            "/v1/users/00000000-0000-0000-0000-000000000000/facts",
            Some(json!({"content": "x"})),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(memory.count("SELECT count(*) FROM facts").await, 2);
    let memory = std::sync::Arc::into_inner(memory).unwrap();
    memory.stop().await;
}

#[tokio::test]
async fn full_text_search_finds_facts_and_messages_and_says_why() {
    let memory = Memory::start().await;
    let alice = memory.user("4001").await;
    let bob = memory.user("4002").await;
    memory
        .root(
            Method::POST,
            &format!("/v1/users/{alice}/facts"),
            Some(json!({"content": "Alice's favourite city is Paris"})),
        )
        .await;
    memory
        .root(
            Method::POST,
            &format!("/v1/users/{bob}/facts"),
            Some(json!({"content": "Bob also loves Paris"})),
        )
        .await;
    let (_, session) = memory
        .root(
            Method::POST,
            "/v1/sessions",
            Some(json!({"user_id": alice, "agent_id": "helper"})),
        )
        .await;
    memory
        .root(
            Method::POST,
            &format!("/v1/sessions/{}/messages", session["id"].as_str().unwrap()),
            Some(json!({"role": "user", "content": "Book a train to Paris tomorrow"})),
        )
        .await;
    let (status, hits) = memory
        .root(
            Method::GET,
            &format!("/v1/search?user_id={alice}&q=paris"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{hits}");
    let hits = hits.as_array().unwrap();
    assert_eq!(hits.len(), 2, "only alice's data: {hits:?}");
    assert_eq!(hits[0]["kind"], "fact", "facts rank above messages");
    assert!(
        hits[0]["why"].as_str().unwrap().contains("<b>Paris</b>"),
        "{:?}",
        hits[0]
    );
    assert_eq!(hits[1]["kind"], "message");
    let (status, _) = memory
        .root(Method::GET, &format!("/v1/search?user_id={alice}&q="), None)
        .await;
    assert_eq!(status, 422);
    memory.stop().await;
}

#[tokio::test]
async fn usage_is_recorded_once_per_event_and_summed_by_time() {
    let memory = Memory::start().await;
    let ann = memory.user("usage-ann").await;
    let bob = memory.user("usage-bob").await;
    let processed = |user: &str, prompt: u32, completion: u32, cost: f64| {
        daarion_bus::Envelope::new(
            "message.processed",
            "router",
            json!({"user_id": user, "agent_id": "helper", "provider": "deepseek", "model": "deepseek-chat",
                   "prompt_tokens": prompt, "completion_tokens": completion, "cost": cost, "currency": "USD",
                   "gpu_seconds": 0.5, "tool_steps": 1}),
        )
    };
    let bus = &memory.plane.bus.bus;
    let first = processed(&ann, 100, 20, 0.01);
    bus.publish(&first).await.unwrap();
    bus.publish(&first).await.unwrap(); // the same event again: counted once
    bus.publish(&processed(&ann, 50, 10, 0.02)).await.unwrap();
    bus.publish(&processed(&bob, 7, 3, 0.0)).await.unwrap();
    // A payload that is not usage goes to the dead letters, not into the table.
    bus.publish(&daarion_bus::Envelope::new(
        "message.processed",
        "router",
        json!({"nonsense": true}),
    ))
    .await
    .unwrap();
    let mut answer = Value::Null;
    for _ in 0..100 {
        let (status, body) = memory
            .root(Method::GET, &format!("/v1/usage?user_id={ann}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        answer = body;
        if answer["total"]["requests"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answer["total"]["requests"], 2, "{answer}");
    assert_eq!(answer["total"]["prompt_tokens"], 150);
    assert_eq!(answer["total"]["completion_tokens"], 30);
    assert!((answer["total"]["cost"].as_f64().unwrap() - 0.03).abs() < 1e-9);
    assert_eq!(answer["buckets"].as_array().unwrap().len(), 1, "one day");
    // Bob's event comes after Ann's on the stream: wait for it too.
    let mut all = Value::Null;
    for _ in 0..100 {
        all = memory
            .root(Method::GET, "/v1/usage?bucket=hour&agent_id=helper", None)
            .await
            .1;
        if all["total"]["requests"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(all["total"]["requests"], 3, "{all}");
    assert_eq!(memory.count("SELECT count(*) FROM usage_records").await, 3);

    // Bad queries and callers.
    let (status, _) = memory
        .root(Method::GET, "/v1/usage?bucket=week", None)
        .await;
    assert_eq!(status, 422);
    let (status, _) = memory
        .root(Method::GET, "/v1/usage?from=yesterday", None)
        .await;
    assert_eq!(status, 422);
    let user_token = memory.plane.token(&["memory:user"]).await;
    let (status, _) = memory
        .call(
            Method::GET,
            &format!("/v1/usage?user_id={ann}"),
            Some(&user_token),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(status, 200, "a user sees their own usage");
    let (status, _) = memory
        .call(
            Method::GET,
            "/v1/usage",
            Some(&user_token),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(status, 403, "but not everyone's");
    memory.stop().await;
}

#[tokio::test]
async fn the_audit_log_is_queried_by_administrators_only() {
    let memory = Memory::start().await;
    let (status, _) = memory
        .plane
        .post("/agents", json!({"id": "audited", "name": "Audited"}))
        .await;
    assert_eq!(status, 201);
    let mut rows = Value::Null;
    for _ in 0..100 {
        let (status, body) = memory
            .root(Method::GET, "/v1/audit?action=agent.create&limit=10", None)
            .await;
        assert_eq!(status, 200, "{body}");
        rows = body;
        if rows.as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let row = &rows[0];
    assert_eq!(row["action"], "agent.create", "{rows}");
    assert_eq!(row["target"], "agent:audited");
    assert_eq!(row["after"]["id"], "audited");
    let at = row["at"].as_str().unwrap();
    let (_, older) = memory
        .root(
            Method::GET,
            &format!("/v1/audit?action=agent.create&before={at}"),
            None,
        )
        .await;
    assert_eq!(older, json!([]), "paging past the only row");
    // With the id too, rows sharing that instant are not skipped.
    let id = row["id"].as_str().unwrap();
    let (_, same) = memory
        .root(
            Method::GET,
            &format!("/v1/audit?action=agent.create&before={at}&before_id=ffffffff-ffff-ffff-ffff-ffffffffffff"),
            None,
        )
        .await;
    assert_eq!(same[0]["id"], id, "{same}");
    let (_, after) = memory
        .root(
            Method::GET,
            &format!("/v1/audit?action=agent.create&before={at}&before_id={id}"),
            None,
        )
        .await;
    assert_eq!(after, json!([]));
    let reader = memory.plane.token(&["memory:read"]).await;
    let (status, _) = memory
        .call(Method::GET, "/v1/audit", Some(&reader), None, None)
        .await;
    assert_eq!(status, 403);
    let admin = memory.plane.token(&["admin"]).await;
    let (status, _) = memory
        .call(Method::GET, "/v1/audit", Some(&admin), None, None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = memory.root(Method::GET, "/v1/audit?limit=0", None).await;
    assert_eq!(status, 422);
    memory.stop().await;
}

#[tokio::test]
async fn the_graph_in_postgres_relates_walks_and_keeps_ended_relations() {
    let memory = Memory::start().await;
    graph_contract(&memory).await;
    assert_eq!(
        memory.count("SELECT count(*) FROM graph_edges").await,
        4,
        "nothing deleted: three relations, and the one renewed after it ended"
    );
    memory.stop().await;
}

#[tokio::test]
async fn the_graph_on_a_bolt_server_keeps_the_same_contract_and_its_outage_is_a_503() {
    let Some(falkor) = Falkor::start().await else {
        return;
    };
    let memory = Memory::start_with(|config| {
        config.memory.graph.url = falkor.url();
        config.memory.graph.database = "contract".into();
        config.memory.graph.timeout_secs = 2;
    })
    .await;
    graph_contract(&memory).await;
    assert_eq!(
        memory.count("SELECT count(*) FROM graph_edges").await,
        0,
        "the graph went to the Bolt server, not to PostgreSQL"
    );

    // The server gone: a clear 503, and the rest of memory keeps answering.
    let user = memory.user("graph-outage").await;
    drop(falkor);
    let (status, body) = memory
        .root(
            Method::POST,
            "/v1/graph/relations",
            Some(
                json!({"user_id": user, "from": {"kind": "person", "name": "A"},
                        "relation": "knows", "to": {"kind": "person", "name": "B"}}),
            ),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["error"]["message"],
        "the knowledge graph is not available"
    );
    let (status, _) = memory
        .root(Method::GET, &format!("/v1/users/{user}"), None)
        .await;
    assert_eq!(status, 200);
    memory.stop().await;
}

/// What every graph backend must do, through the API.
async fn graph_contract(memory: &Memory) {
    let ann = memory.user("graph-ann").await;
    let bob = memory.user("graph-bob").await;
    let relate = |from: (&str, &str), relation: &str, to: (&str, &str)| {
        json!({"user_id": ann, "from": {"kind": from.0, "name": from.1}, "relation": relation,
               "to": {"kind": to.0, "name": to.1}})
    };
    let (status, first) = memory
        .root(
            Method::POST,
            "/v1/graph/relations",
            Some(relate(("person", "Olena"), "sister_of", ("person", "Ann"))),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    let ann_node = first["to"]["id"].as_str().unwrap().to_owned();
    let (status, again) = memory
        .root(
            Method::POST,
            "/v1/graph/relations",
            Some(relate(
                ("person", " olena "),
                "sister_of",
                ("person", "ANN"),
            )),
        )
        .await;
    assert_eq!(
        status, 200,
        "the same relation, differently written, is not stored twice"
    );
    assert_eq!(again["edge"]["id"], first["edge"]["id"]);
    let (_, lives) = memory
        .root(
            Method::POST,
            "/v1/graph/relations",
            Some(relate(("person", "Olena"), "lives_in", ("place", "Lviv"))),
        )
        .await;
    memory
        .root(
            Method::POST,
            "/v1/graph/relations",
            Some(relate(
                ("place", "Lviv"),
                "located_in",
                ("place", "Ukraine"),
            )),
        )
        .await;
    let ukraine = memory
        .root(
            Method::GET,
            &format!("/v1/graph/nodes?user_id={ann}&q=ukr"),
            None,
        )
        .await
        .1[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let names = |v: &Value| {
        let mut n: Vec<String> = v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    let (_, near) = memory
        .root(
            Method::GET,
            &format!("/v1/graph/nodes/{ann_node}/neighbourhood?depth=1"),
            None,
        )
        .await;
    assert_eq!(names(&near), ["Ann", "Olena"]);
    let (_, far) = memory
        .root(
            Method::GET,
            &format!("/v1/graph/nodes/{ann_node}/neighbourhood?depth=3"),
            None,
        )
        .await;
    assert_eq!(names(&far), ["Ann", "Lviv", "Olena", "Ukraine"]);
    assert_eq!(far["edges"].as_array().unwrap().len(), 3);
    let (_, path) = memory
        .root(
            Method::GET,
            &format!("/v1/graph/path?from={ann_node}&to={ukraine}"),
            None,
        )
        .await;
    let chain: Vec<&str> = path["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(chain, ["Ann", "Olena", "Lviv", "Ukraine"]);

    // Ending a relation cuts the path; the relation itself stays, ended.
    let lives_id = lives["edge"]["id"].as_str().unwrap();
    let (status, ended) = memory
        .root(
            Method::POST,
            &format!("/v1/graph/relations/{lives_id}/end"),
            Some(json!({"reason": "moved to Kyiv"})),
        )
        .await;
    assert_eq!(status, 200, "{ended}");
    assert!(ended["ended_at"].is_string());
    let (_, cut) = memory
        .root(
            Method::GET,
            &format!("/v1/graph/path?from={ann_node}&to={ukraine}"),
            None,
        )
        .await;
    assert_eq!(cut, Value::Null);
    // Ending it again changes nothing: the first end, and its reason, stand.
    let (status, again) = memory
        .root(
            Method::POST,
            &format!("/v1/graph/relations/{lives_id}/end"),
            Some(json!({"reason": "another reason"})),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["ended_at"], ended["ended_at"]);
    assert_eq!(again["relation"], "lives_in");
    // The same relation again is a new one; the ended one stays ended.
    let (status, renewed) = memory
        .root(
            Method::POST,
            "/v1/graph/relations",
            Some(relate(("person", "Olena"), "lives_in", ("place", "Lviv"))),
        )
        .await;
    assert_eq!(status, 201, "{renewed}");
    assert_ne!(renewed["edge"]["id"], lives["edge"]["id"]);
    let (_, back) = memory
        .root(
            Method::GET,
            &format!("/v1/graph/path?from={ann_node}&to={ukraine}"),
            None,
        )
        .await;
    assert_eq!(back["edges"].as_array().map(Vec::len), Some(3));
    let (_, ended) = memory
        .root(
            Method::POST,
            &format!(
                "/v1/graph/relations/{}/end",
                renewed["edge"]["id"].as_str().unwrap()
            ),
            Some(json!({"reason": "moved again"})),
        )
        .await;
    assert!(ended["ended_at"].is_string());

    // Each user's graph is their own.
    let token = memory.plane.token(&["memory:user"]).await;
    let (status, _) = memory
        .call(
            Method::GET,
            &format!("/v1/graph/nodes/{ann_node}/neighbourhood"),
            Some(&token),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = memory
        .call(
            Method::GET,
            &format!("/v1/graph/nodes/{ann_node}/neighbourhood"),
            Some(&token),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(status, 200);

    // Bad input.
    let (status, _) = memory
        .root(
            Method::POST,
            "/v1/graph/relations",
            Some(relate(("Person!", "x"), "knows", ("person", "y"))),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = memory
        .root(
            Method::POST,
            "/v1/graph/relations",
            Some(relate(("person", "Ann"), "is", ("person", "ann"))),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = memory
        .root(
            Method::GET,
            &format!("/v1/graph/nodes/{}/neighbourhood", uuid::Uuid::nil()),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = memory
        .root(
            Method::GET,
            &format!("/v1/graph/nodes/{ann_node}/neighbourhood?depth=9"),
            None,
        )
        .await;
    assert_eq!(status, 422);
    let mut from_nowhere = relate(("person", "Ann"), "knows", ("person", "Taras"));
    from_nowhere["source_message_id"] = json!(uuid::Uuid::new_v4());
    let (status, body) = memory
        .root(Method::POST, "/v1/graph/relations", Some(from_nowhere))
        .await;
    assert_eq!(status, 422, "{body}");
    let mut nobody = relate(("person", "Ann"), "knows", ("person", "Taras"));
    nobody["user_id"] = json!(uuid::Uuid::new_v4());
    let (status, _) = memory
        .root(Method::POST, "/v1/graph/relations", Some(nobody))
        .await;
    assert_eq!(status, 422);
    let (_, taras) = memory
        .root(
            Method::GET,
            &format!("/v1/graph/nodes?user_id={ann}&q=taras"),
            None,
        )
        .await;
    assert_eq!(taras, json!([]), "nothing of a refused relation is stored");
}

#[tokio::test]
async fn hot_reads_are_cached_dropped_on_write_and_work_without_redis() {
    let memory = Memory::start().await;
    let ann = memory.user("cache-ann").await;
    let redis = redis::Client::open(memory.plane.config.redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let prefix = memory.plane.config.redis.key_prefix.clone();
    let cached = |key: String| {
        let mut redis = redis.clone();
        async move {
            redis::cmd("EXISTS")
                .arg(key)
                .query_async::<bool>(&mut redis)
                .await
                .unwrap()
        }
    };
    memory
        .root(
            Method::POST,
            &format!("/v1/users/{ann}/facts"),
            Some(json!({"content": "likes tea"})),
        )
        .await;
    let (_, facts) = memory
        .root(Method::GET, &format!("/v1/users/{ann}/facts"), None)
        .await;
    assert_eq!(facts.as_array().unwrap().len(), 1);
    let facts_key = format!("{prefix}memory:facts:{ann}");
    assert!(cached(facts_key.clone()).await, "the read filled the cache");
    let (_, fact) = memory
        .root(
            Method::POST,
            &format!("/v1/users/{ann}/facts"),
            Some(json!({"content": "lives in Lviv"})),
        )
        .await;
    assert!(!cached(facts_key.clone()).await, "the write dropped it");
    let (_, facts) = memory
        .root(Method::GET, &format!("/v1/users/{ann}/facts"), None)
        .await;
    assert_eq!(facts.as_array().unwrap().len(), 2);
    let id = fact["id"].as_str().unwrap();
    memory
        .root(
            Method::POST,
            &format!("/v1/facts/{id}/supersede"),
            Some(json!({"content": "lives in Kyiv", "reason": "moved"})),
        )
        .await;
    let (_, facts) = memory
        .root(Method::GET, &format!("/v1/users/{ann}/facts"), None)
        .await;
    let contents: Vec<&str> = facts
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        ["likes tea", "lives in Kyiv"],
        "superseded at once, not after a TTL"
    );

    let (_, session) = memory
        .root(
            Method::POST,
            "/v1/sessions",
            Some(json!({"user_id": ann, "agent_id": "a"})),
        )
        .await;
    let sid = session["id"].as_str().unwrap();
    for text in ["one", "two"] {
        memory
            .root(
                Method::POST,
                &format!("/v1/sessions/{sid}/messages"),
                Some(json!({"role": "user", "content": text})),
            )
            .await;
    }
    let (_, history) = memory
        .root(
            Method::GET,
            &format!("/v1/sessions/{sid}/messages?limit=100"),
            None,
        )
        .await;
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert!(cached(format!("{prefix}memory:history:{sid}")).await);
    let (_, last) = memory
        .root(
            Method::GET,
            &format!("/v1/sessions/{sid}/messages?limit=1"),
            None,
        )
        .await;
    assert_eq!(
        last[0]["content"], "two",
        "a smaller page from the cached one"
    );
    memory
        .root(
            Method::POST,
            &format!("/v1/sessions/{sid}/messages"),
            Some(json!({"role": "assistant", "content": "three"})),
        )
        .await;
    let (_, history) = memory
        .root(Method::GET, &format!("/v1/sessions/{sid}/messages"), None)
        .await;
    let texts: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["one", "two", "three"]);

    // Every turn resolves its sender, reads the profile and opens the session: all cached.
    let resolve = json!({"channel": "telegram", "external_id": "cache-ann", "display_name": "x"});
    let (_, again) = memory
        .root(Method::POST, "/v1/identities/resolve", Some(resolve))
        .await;
    assert_eq!(again, json!({"user_id": ann, "created": false}));
    assert!(cached(format!("{prefix}memory:identity:telegram:cache-ann")).await);
    let (_, profile) = memory
        .root(Method::GET, &format!("/v1/users/{ann}"), None)
        .await;
    assert_eq!(profile["user"]["display_name"], "cache-ann");
    assert!(cached(format!("{prefix}memory:user:{ann}")).await);
    let (_, cached_profile) = memory
        .root(Method::GET, &format!("/v1/users/{ann}"), None)
        .await;
    assert_eq!(cached_profile, profile);
    let open = json!({"user_id": ann, "agent_id": "helper", "chat": "tg:1"});
    let (_, first) = memory
        .root(Method::POST, "/v1/sessions/open", Some(open.clone()))
        .await;
    let open_key = format!("{prefix}memory:open:{ann}:6:helper:tg:1");
    assert!(cached(open_key.clone()).await);
    let (_, same) = memory
        .root(Method::POST, "/v1/sessions/open", Some(open.clone()))
        .await;
    assert_eq!(same["id"], first["id"]);
    // Ending it drops the cached one: the next open is a new session, at once.
    memory
        .root(
            Method::POST,
            &format!("/v1/sessions/{}/end", first["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(!cached(open_key).await);
    let (_, next) = memory
        .root(Method::POST, "/v1/sessions/open", Some(open))
        .await;
    assert_ne!(next["id"], first["id"]);
    assert!(next["ended_at"].is_null());
    memory.stop().await;

    // Redis gone: the same reads, only slower.
    let memory = Memory::start_with(|c| c.redis.url = "redis://127.0.0.1:1/0".into()).await;
    let bob = memory.user("cache-bob").await;
    let (status, _) = memory
        .root(
            Method::POST,
            &format!("/v1/users/{bob}/facts"),
            Some(json!({"content": "likes coffee"})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, facts) = memory
        .root(Method::GET, &format!("/v1/users/{bob}/facts"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(facts[0]["content"], "likes coffee");
    memory.stop().await;
}

#[tokio::test]
async fn session_state_expires_is_confined_to_its_user_ends_with_the_session_and_survives_redis() {
    let memory = Memory::start_with(|c| c.memory.session_state_max_ttl_secs = 3600).await;
    let ann = memory.user("state-ann").await;
    let bob = memory.user("state-bob").await;
    let (_, session) = memory
        .root(
            Method::POST,
            "/v1/sessions",
            Some(json!({"user_id": ann, "agent_id": "helper"})),
        )
        .await;
    let sid = session["id"].as_str().unwrap().to_owned();
    let state = |key: &str| format!("/v1/sessions/{sid}/state/{key}");

    let (status, put) = memory
        .root(
            Method::PUT,
            &state("pending"),
            Some(json!({"value": {"question": "which city?"}, "ttl_secs": 1})),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    let (status, _) = memory
        .root(
            Method::PUT,
            &state("language"),
            Some(json!({"value": "uk"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, all) = memory
        .root(Method::GET, &format!("/v1/sessions/{sid}/state"), None)
        .await;
    let keys: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["language", "pending"]);
    let (_, one) = memory.root(Method::GET, &state("pending"), None).await;
    assert_eq!(one["value"]["question"], "which city?");
    // The default TTL applies when none is given.
    let (_, language) = memory.root(Method::GET, &state("language"), None).await;
    let expires = time::OffsetDateTime::parse(
        language["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::minutes(59) && left <= time::Duration::hours(1),
        "{left}"
    );

    // Expired: gone from reads at once (cached or not), whatever the sweeper has done.
    let mut gone = false;
    for _ in 0..100 {
        let (status, _) = memory.root(Method::GET, &state("pending"), None).await;
        if status == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "an entry outlived its TTL");
    let (_, all) = memory
        .root(Method::GET, &format!("/v1/sessions/{sid}/state"), None)
        .await;
    assert_eq!(all.as_array().unwrap().len(), 1);

    // Replacing keeps one entry; deleting is idempotent.
    memory
        .root(
            Method::PUT,
            &state("language"),
            Some(json!({"value": "en"})),
        )
        .await;
    let (_, language) = memory.root(Method::GET, &state("language"), None).await;
    assert_eq!(
        language["value"], "en",
        "the write dropped the cached entries"
    );
    assert_eq!(
        memory
            .root(Method::DELETE, &state("language"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        memory
            .root(Method::DELETE, &state("language"), None)
            .await
            .0,
        204
    );

    // Another user's session is out of reach.
    let token = memory.plane.token(&["memory:user"]).await;
    let (status, _) = memory
        .call(
            Method::PUT,
            &state("x"),
            Some(&token),
            Some(&bob),
            Some(json!({"value": 1})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = memory
        .call(
            Method::GET,
            &format!("/v1/sessions/{sid}/state"),
            Some(&token),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = memory
        .call(
            Method::PUT,
            &state("mine"),
            Some(&token),
            Some(&ann),
            Some(json!({"value": [1, 2]})),
        )
        .await;
    assert_eq!(status, 200);

    // Bad input: nothing stored.
    for (key, body, expected) in [
        ("Bad Key", json!({"value": 1}), 422),
        ("ttl", json!({"value": 1, "ttl_secs": 0}), 422),
        ("ttl", json!({"value": 1, "ttl_secs": 3601}), 422),
        ("big", json!({"value": "x".repeat(20_000)}), 413),
        ("unknown", json!({"value": 1, "colour": "red"}), 422),
    ] {
        let (status, body) = memory
            .root(Method::PUT, &state(&key.replace(' ', "%20")), Some(body))
            .await;
        assert_eq!(status, expected, "{key}: {body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    let (status, _) = memory
        .root(
            Method::PUT,
            &format!("/v1/sessions/{}/state/x", uuid::Uuid::new_v4()),
            Some(json!({"value": 1})),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        memory
            .count(&format!(
                "SELECT count(*) FROM session_state WHERE session_id = '{sid}' \
                 AND expires_at > clock_timestamp()"
            ))
            .await,
        1,
        "only `mine` is left (and the expired one, until the sweeper comes)"
    );
    let swept = daarion_memory::api::state::sweep_expired(&memory.plane.db.pool)
        .await
        .unwrap();
    assert!(swept >= 1, "the expired entry is swept");
    assert_eq!(
        memory
            .count(&format!(
                "SELECT count(*) FROM session_state WHERE session_id = '{sid}'"
            ))
            .await,
        1
    );

    // The session ends: its state goes with it, and no more is written.
    memory
        .root(Method::POST, &format!("/v1/sessions/{sid}/end"), None)
        .await;
    let (_, all) = memory
        .root(Method::GET, &format!("/v1/sessions/{sid}/state"), None)
        .await;
    assert_eq!(all, json!([]));
    assert_eq!(
        memory
            .count(&format!(
                "SELECT count(*) FROM session_state WHERE session_id = '{sid}'"
            ))
            .await,
        0,
        "deleted, expired or not"
    );
    let (status, _) = memory
        .root(Method::PUT, &state("late"), Some(json!({"value": 1})))
        .await;
    assert_eq!(status, 409);
    memory.stop().await;

    // Without Redis: the same answers from PostgreSQL.
    let memory = Memory::start_with(|c| c.redis.url = "redis://127.0.0.1:1/0".into()).await;
    let carol = memory.user("state-carol").await;
    let (_, session) = memory
        .root(
            Method::POST,
            "/v1/sessions",
            Some(json!({"user_id": carol, "agent_id": "helper"})),
        )
        .await;
    let path = format!(
        "/v1/sessions/{}/state/step",
        session["id"].as_str().unwrap()
    );
    let (status, _) = memory
        .root(Method::PUT, &path, Some(json!({"value": 2})))
        .await;
    assert_eq!(status, 200);
    let (status, step) = memory.root(Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(step["value"], 2);
    memory.stop().await;
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let memory = Memory::start().await;
    let (status, doc) = memory
        .call(Method::GET, "/openapi.json", None, None, None)
        .await;
    assert_eq!(status, 200, "{doc}");
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for path in [
        "/v1/identities/resolve",
        "/v1/users",
        "/v1/users/{id}",
        "/v1/sessions",
        "/v1/sessions/open",
        "/v1/sessions/{id}",
        "/v1/sessions/{id}/end",
        "/v1/sessions/{id}/messages",
        "/v1/users/{id}/facts",
        "/v1/facts/{id}/supersede",
        "/v1/facts/{id}/forget",
        "/v1/facts/{id}/history",
        "/v1/search",
        "/v1/users/{id}/documents",
        "/v1/documents/{id}",
        "/v1/index/status",
        "/v1/index/retry",
        "/v1/usage",
        "/v1/audit",
        "/v1/sessions/{id}/state",
        "/v1/sessions/{id}/state/{key}",
        "/v1/graph/relations",
        "/v1/graph/relations/{id}/end",
        "/v1/graph/nodes",
        "/v1/graph/nodes/{id}/neighbourhood",
        "/v1/graph/path",
    ] {
        assert!(paths.contains(&path), "{path} missing from {paths:?}");
    }
    assert_eq!(paths.len(), 26, "{paths:?}");
    assert!(doc["components"]["schemas"]["StoredMessage"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // The document is open; the API is not.
    let (status, _) = memory
        .call(Method::GET, "/v1/search?user_id=x&q=y", None, None, None)
        .await;
    assert_eq!(status, 401);
    memory.stop().await;
}

#[tokio::test]
async fn users_are_listed_for_readers_of_everyone_and_filtered() {
    let memory = Memory::start().await;
    let first = memory.user("5001").await;
    let second = memory.user("5002").await;

    let (status, body) = memory.root(Method::GET, "/v1/users", None).await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second.as_str(), first.as_str()], "newest first");
    assert_eq!(body[0]["identities"], json!(["telegram:5002"]));

    let (_, body) = memory.root(Method::GET, "/v1/users?q=5001", None).await;
    assert_eq!(body.as_array().unwrap().len(), 1);
    assert_eq!(body[0]["id"], first.as_str());
    // LIKE's wildcards in the query are plain characters.
    let (_, body) = memory.root(Method::GET, "/v1/users?q=%25", None).await;
    assert_eq!(body, json!([]));

    let (status, body) = memory.root(Method::GET, "/v1/users?limit=0", None).await;
    assert_eq!(status, 422, "{body}");
    let user_token = memory.plane.token(&["memory:user"]).await;
    let (status, _) = memory
        .call(
            Method::GET,
            "/v1/users",
            Some(&user_token),
            Some(&first),
            None,
        )
        .await;
    assert_eq!(status, 403, "a user-scoped caller cannot list everyone");
    memory.stop().await;
}

#[tokio::test]
async fn facts_and_messages_are_found_by_meaning_and_the_index_says_what_made_it() {
    let (memory, swapper_stop, swapper) = with_embeddings().await;

    let olena = memory.user("7001").await;
    let other = memory.user("7002").await;
    let (status, fact) = memory
        .root(
            Method::POST,
            &format!("/v1/users/{olena}/facts"),
            Some(json!({"content": "Olena's favourite colour is teal"})),
        )
        .await;
    assert_eq!(status, 201, "{fact}");
    let (_, session) = memory
        .root(
            Method::POST,
            "/v1/sessions",
            Some(json!({"user_id": olena, "agent_id": "helper", "chat": "tg:7001"})),
        )
        .await;
    let sid = session["id"].as_str().unwrap();
    for (role, content) in [
        (
            "user",
            "Last weekend I went hiking in the Carpathian mountains",
        ),
        ("assistant", "That sounds wonderful!"),
        ("system", "You are a helpful assistant."),
    ] {
        let (status, body) = memory
            .root(
                Method::POST,
                &format!("/v1/sessions/{sid}/messages"),
                Some(json!({"role": role, "content": content})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let status = memory
        .index_until("the fact and two messages indexed", |s| {
            indexed(s, "fact", "indexed") == 1 && indexed(s, "message", "indexed") == 2
        })
        .await;
    assert_eq!(status["model"], "minilm");
    assert_eq!(
        status["vectors"]["messages"], 3,
        "system prompts are not memories: {status}"
    );
    assert_eq!(indexed(&status, "message", "pending"), 0);

    // No word in common with the fact: found by meaning alone.
    let (status, hits) = memory
        .root(
            Method::GET,
            &format!("/v1/search?user_id={olena}&q=which%20hue%20does%20she%20prefer"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{hits}");
    assert_eq!(hits[0]["id"], fact["id"], "{hits}");
    assert_eq!(hits[0]["matched_by"], json!(["meaning"]));
    assert!(hits[0]["similarity"].as_f64().unwrap() > 0.2, "{hits}");

    // Words and meaning agree: both say so, and it ranks first.
    let (_, hits) = memory
        .root(
            Method::GET,
            &format!("/v1/search?user_id={olena}&q=hiking%20in%20the%20mountains"),
            None,
        )
        .await;
    assert!(
        hits[0]["content"].as_str().unwrap().contains("Carpathian"),
        "{hits}"
    );
    assert_eq!(hits[0]["matched_by"], json!(["words", "meaning"]), "{hits}");
    assert!(hits[0]["why"].as_str().unwrap().contains("<b>"), "{hits}");

    // An entity the query names brings its relations from the graph.
    let (status, related) = memory
        .root(
            Method::POST,
            "/v1/graph/relations",
            Some(json!({"user_id": olena, "from": {"kind": "person", "name": "Olena"}, "relation": "lives_in", "to": {"kind": "city", "name": "Kyiv"}})),
        )
        .await;
    assert_eq!(status, 201, "{related}");
    let (_, hits) = memory
        .root(
            Method::GET,
            &format!("/v1/search?user_id={olena}&q=where%20does%20Olena%20live"),
            None,
        )
        .await;
    let relation = hits
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["kind"] == "relation")
        .unwrap_or_else(|| panic!("no graph hit: {hits}"));
    assert_eq!(relation["content"], "Olena lives in Kyiv");
    assert!(
        relation["matched_by"]
            .as_array()
            .unwrap()
            .contains(&json!("graph"))
    );
    assert!(relation["why"].as_str().unwrap().contains("Olena"));

    // Another user's vectors are never searched.
    let (_, hits) = memory
        .root(
            Method::GET,
            &format!("/v1/search?user_id={other}&q=favourite%20colour"),
            None,
        )
        .await;
    assert_eq!(hits, json!([]));

    // The same item's event delivered again (a redelivery) changes nothing.
    let before = memory
        .count("SELECT (extract(epoch FROM updated_at) * 1000000)::bigint FROM index_state WHERE kind = 'fact'")
        .await;
    let again = daarion_bus::Envelope::new(
        "memory.store.fact",
        "test",
        json!({"kind": "fact", "id": fact["id"]}),
    );
    memory.plane.bus.bus.publish(&again).await.unwrap();
    // Events are handled in stream order: once a later item is indexed, the redelivery was seen.
    let (_, probe) = memory
        .root(
            Method::POST,
            &format!("/v1/users/{other}/facts"),
            Some(json!({"content": "a later item, indexed after the redelivery"})),
        )
        .await;
    memory
        .index_until("the later item indexed", |s| {
            indexed(s, "fact", "indexed") == 2
        })
        .await;
    assert!(!probe["id"].is_null());
    assert_eq!(
        memory
            .count("SELECT (extract(epoch FROM updated_at) * 1000000)::bigint FROM index_state WHERE kind = 'fact' AND user_id = (SELECT user_id FROM facts WHERE content LIKE 'Olena%')")
            .await,
        before,
        "indexed once"
    );

    // A superseded fact is history, not an answer.
    let (status, newer) = memory
        .root(
            Method::POST,
            &format!("/v1/facts/{}/supersede", fact["id"].as_str().unwrap()),
            Some(json!({"content": "Olena's favourite colour is now orange", "reason": "she said so"})),
        )
        .await;
    assert_eq!(status, 201, "{newer}");
    memory
        .index_until("the new fact indexed", |s| {
            indexed(s, "fact", "indexed") == 3
        })
        .await;
    let (_, hits) = memory
        .root(
            Method::GET,
            &format!("/v1/search?user_id={olena}&q=which%20hue%20does%20she%20prefer"),
            None,
        )
        .await;
    let ids: Vec<&Value> = hits.as_array().unwrap().iter().map(|h| &h["id"]).collect();
    assert!(
        ids.contains(&&newer["id"]) && !ids.contains(&&fact["id"]),
        "{hits}"
    );

    // Readers of everyone may see the index; a user-scoped caller may not.
    let user_token = memory.plane.token(&["memory:user"]).await;
    let (status, _) = memory
        .call(
            Method::GET,
            "/v1/index/status",
            Some(&user_token),
            Some(&olena),
            None,
        )
        .await;
    assert_eq!(status, 403);

    swapper_stop.cancel();
    swapper.await.unwrap();
    memory.stop().await;
}

#[tokio::test]
async fn items_stored_while_embeddings_are_down_wait_with_their_error_and_are_indexed_after_a_restart()
 {
    let nowhere = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nowhere_addr = nowhere.local_addr().unwrap();
    // Nothing answers there.
    drop(nowhere);
    let mut memory = Memory::start_with(|c| {
        c.swapper.listen = nowhere_addr;
        c.models.embedding_model = "minilm".into();
    })
    .await;
    let user = memory.user("7101").await;
    let (status, _) = memory
        .root(
            Method::POST,
            &format!("/v1/users/{user}/facts"),
            Some(json!({"content": "allergic to peanuts"})),
        )
        .await;
    assert_eq!(status, 201);
    let mut recorded = 0;
    for _ in 0..200 {
        recorded = memory
            .count("SELECT count(*) FROM index_state WHERE kind = 'fact' AND state = 'pending' AND attempts >= 1 AND error LIKE '%not reachable%'")
            .await;
        if recorded == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        recorded, 1,
        "still pending, with the attempt and its reason"
    );
    // Search still answers, by words.
    let (status, hits) = memory
        .root(
            Method::GET,
            &format!("/v1/search?user_id={user}&q=peanuts"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(hits[0]["matched_by"], json!(["words"]));

    // The service goes down with the item unindexed and comes back with the swapper up: the
    // item is still due (made due now rather than after its backoff) and gets indexed.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let swapper_addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let swapper = embeddings_on(&memory.plane.config, listener, stop.clone()).await;
    memory
        .count("WITH due AS (UPDATE index_state SET next_attempt_at = now() RETURNING 1) SELECT count(*) FROM due")
        .await;
    memory
        .restart_with(|c| {
            c.swapper.listen = swapper_addr;
            c.models.embedding_model = "minilm".into();
        })
        .await;
    let status = memory
        .index_until("the fact indexed", |s| indexed(s, "fact", "indexed") == 1)
        .await;
    assert_eq!(status["vectors"]["messages"], 1);
    let (_, hits) = memory
        .root(
            Method::GET,
            &format!("/v1/search?user_id={user}&q=nut%20allergy"),
            None,
        )
        .await;
    assert_eq!(hits[0]["matched_by"], json!(["meaning"]), "{hits}");
    stop.cancel();
    swapper.await.unwrap();
    memory.stop().await;
}

#[tokio::test]
async fn documents_are_chunked_indexed_and_found_and_bad_ones_store_nothing() {
    let (memory, stop, swapper) = with_embeddings().await;
    let user = memory.user("7301").await;

    let garden =
        "Tomatoes need six to eight hours of sun and deep watering twice a week. ".repeat(9);
    let bread =
        "Knead the dough for ten minutes, then let it rise until doubled in size. ".repeat(9);
    let text = format!("{garden}\n\n{bread}");
    let (status, document) = memory
        .root(
            Method::POST,
            &format!("/v1/users/{user}/documents"),
            Some(json!({"title": "Notes", "content": text})),
        )
        .await;
    assert_eq!(status, 201, "{document}");
    let chunks = document["chunks"].as_i64().unwrap();
    assert!(chunks >= 2, "{document}");
    assert_eq!(document["bytes"], text.len());
    memory
        .index_until("every chunk indexed", |s| {
            indexed(s, "chunk", "indexed") == chunks
        })
        .await;

    let (_, listed) = memory
        .root(Method::GET, &format!("/v1/users/{user}/documents"), None)
        .await;
    assert_eq!(listed[0]["indexed"], chunks, "{listed}");
    assert_eq!(listed[0]["pending"], 0);
    let (status, one) = memory
        .root(
            Method::GET,
            &format!("/v1/documents/{}", document["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 200, "{one}");
    let parts = one["chunks"].as_array().unwrap();
    assert_eq!(parts.len() as i64, chunks);
    assert!(parts.iter().all(|c| c["state"] == "indexed"));
    assert!(
        parts[0]["content"]
            .as_str()
            .unwrap()
            .starts_with("Tomatoes")
    );

    // A paraphrase with no word of the bread chunk finds it by meaning.
    let (_, hits) = memory
        .root(
            Method::GET,
            &format!("/v1/search?user_id={user}&q=how%20should%20I%20bake%20a%20loaf"),
            None,
        )
        .await;
    assert_eq!(hits[0]["kind"], "chunk", "{hits}");
    assert!(
        hits[0]["content"].as_str().unwrap().contains("dough"),
        "{hits}"
    );
    assert!(
        hits[0]["matched_by"]
            .as_array()
            .unwrap()
            .contains(&json!("meaning"))
    );

    // Bad documents: refused, nothing stored.
    let before = memory.count("SELECT count(*) FROM chunks").await;
    for (body, expected) in [
        (json!({"title": "", "content": "x"}), 422),
        (json!({"title": "blank", "content": "   \n "}), 422),
        (
            json!({"title": "huge", "content": "y".repeat(3 * 1024 * 1024)}),
            413,
        ),
        (json!({"title": "t", "content": "x", "colour": "red"}), 422),
    ] {
        let (status, answer) = memory
            .root(
                Method::POST,
                &format!("/v1/users/{user}/documents"),
                Some(body),
            )
            .await;
        assert_eq!(status, expected, "{answer}");
        assert!(answer["error"]["message"].is_string(), "{answer}");
    }
    let (status, _) = memory
        .root(
            Method::POST,
            &format!("/v1/users/{}/documents", uuid_like()),
            Some(json!({"title": "t", "content": "x"})),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(memory.count("SELECT count(*) FROM chunks").await, before);
    assert_eq!(memory.count("SELECT count(*) FROM documents").await, 1);

    // Another user's documents are not this caller's to read.
    let stranger = memory.user("7302").await;
    let token = memory.plane.token(&["memory:user"]).await;
    let (status, _) = memory
        .call(
            Method::GET,
            &format!("/v1/users/{user}/documents"),
            Some(&token),
            Some(&stranger),
            None,
        )
        .await;
    assert_eq!(status, 403);
    stop.cancel();
    swapper.await.unwrap();
    memory.stop().await;
}

fn uuid_like() -> String {
    "00000000-0000-7000-8000-000000000001".into()
}
