//! Crew runs as a Telegram user sees them: the real gateway, control plane, memory, router,
//! Redis and NATS, the local Bot API server, and `agent.run.*` events published on the bus as
//! the crews service's outbox publishes them. `/runs`, `/cancel` and answers to a run's
//! question call a local server speaking the crews service's API (the `daarion-crews-client`
//! contract), which records what it was asked and with which credential.

mod helpers;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use daarion_bus::events::{
    AgentRunCompleted, AgentRunFailed, AgentRunProgress, AgentRunRequested, AttachmentOrigin,
    RunUsage,
};
use daarion_bus::{Bus, Envelope};
use daarion_llm::testing::openai_answer;
use helpers::stack::Stack;
use helpers::{FakeTelegram, test_limits, text_update};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The crews service as far as the gateway uses it: a user's runs, cancel and resume.
#[derive(Clone)]
struct FakeCrews {
    token: String,
    runs: Arc<Mutex<Vec<Value>>>,
    /// Every call: method and path, and the query or body.
    calls: Arc<Mutex<Vec<(String, Value)>>>,
}

impl FakeCrews {
    fn add(&self, user: Uuid, crew: &str, state: &str) -> Uuid {
        let id = Uuid::now_v7();
        self.runs.lock().unwrap().push(json!({
            "id": id, "crew": crew, "crew_version": 1, "user_id": user, "agent_id": "a",
            "state": state, "inputs": {}, "task": "", "budget": {}, "usage": {},
            "tasks_done": 1, "tasks_total": 3,
            "created_at": time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339).unwrap(),
        }));
        id
    }

    fn calls(&self, what: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| c == what)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn record(&self, headers: &HeaderMap, what: String, detail: Value) -> Result<(), StatusCode> {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if bearer != Some(self.token.as_str()) {
            return Err(StatusCode::UNAUTHORIZED);
        }
        self.calls.lock().unwrap().push((what, detail));
        Ok(())
    }

    /// Moves run `id` from `from` (any unfinished state when `None`) to `to`; 409 otherwise.
    fn change(&self, id: Uuid, from: Option<&str>, to: &str) -> Result<Value, StatusCode> {
        let mut runs = self.runs.lock().unwrap();
        let run = runs
            .iter_mut()
            .find(|r| r["id"] == json!(id))
            .ok_or(StatusCode::NOT_FOUND)?;
        let state = run["state"].as_str().unwrap().to_owned();
        let allowed = match from {
            Some(from) => state == from,
            None => ["queued", "running", "waiting_input"].contains(&state.as_str()),
        };
        if !allowed {
            return Err(StatusCode::CONFLICT);
        }
        run["state"] = json!(to);
        Ok(run.clone())
    }

    async fn serve(&self) -> std::net::SocketAddr {
        async fn list(
            State(f): State<FakeCrews>,
            headers: HeaderMap,
            Query(q): Query<std::collections::HashMap<String, String>>,
        ) -> Result<Json<Value>, StatusCode> {
            f.record(&headers, "list".into(), json!(q))?;
            let runs = f.runs.lock().unwrap().clone();
            let user = q.get("user_id").map(|u| json!(u));
            Ok(Json(json!(
                runs.into_iter()
                    .filter(|r| user.as_ref().is_none_or(|u| r["user_id"] == *u))
                    .collect::<Vec<_>>()
            )))
        }
        async fn cancel(
            State(f): State<FakeCrews>,
            headers: HeaderMap,
            Path(id): Path<Uuid>,
        ) -> Result<Json<Value>, StatusCode> {
            f.record(&headers, "cancel".into(), json!(id))?;
            f.change(id, None, "cancelled").map(Json)
        }
        async fn resume(
            State(f): State<FakeCrews>,
            headers: HeaderMap,
            Path(id): Path<Uuid>,
            Json(body): Json<Value>,
        ) -> Result<Json<Value>, StatusCode> {
            f.record(&headers, "resume".into(), json!({"run": id, "body": body}))?;
            f.change(id, Some("waiting_input"), "running").map(Json)
        }
        let app = Router::new()
            .route("/v1/runs", get(list))
            .route("/v1/runs/{id}/cancel", post(cancel))
            .route("/v1/runs/{id}/resume", post(resume))
            .with_state(self.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }
}

/// The gateway with bot `mainbot` bound to agent `a`, and the crews service at `crews` (off
/// when `None`).
struct Crewed {
    stack: Stack,
    telegram: FakeTelegram,
    crews: FakeCrews,
    bus: Bus,
    url: String,
    secret: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    dir: std::path::PathBuf,
}

impl Crewed {
    async fn start(crews_on: bool) -> Crewed {
        let stack = Stack::start(false).await;
        let telegram = FakeTelegram::default();
        let api_url = telegram.serve().await;
        let dir = std::env::temp_dir().join(format!("daarion-gw-runs-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = format!("s{}", Uuid::new_v4().simple());
        for (file, value) in [("token", "123:TESTTOKEN"), ("secret", secret.as_str())] {
            let path = dir.join(file);
            std::fs::write(&path, value).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        stack.agent("a", "You are a.", None, None).await;
        stack
            .config(
                "telegram.mainbot",
                json!({"token_ref": "file:token", "webhook_secret_ref": "file:secret",
                       "api_url": api_url, "agent": "a"}),
            )
            .await;
        let crews = FakeCrews {
            token: stack.plane.root.clone(),
            runs: Arc::default(),
            calls: Arc::default(),
        };
        let mut config = stack.plane.config.clone();
        config.memory.listen = stack
            .memory_url
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        config.router.listen = stack
            .router_url
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        config.swapper.listen = stack.swapper;
        config.general.secrets_dir = dir.clone();
        config.ingest.enabled = false;
        config.crews.enabled = crews_on;
        config.crews.listen = crews.serve().await;
        let bus = Bus::connect(&config.bus, "test").await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = daarion_gateway::app(config, test_limits()).await.unwrap();
        let shutdown = CancellationToken::new();
        let serve = daarion_gateway::serve(app, listener, shutdown.clone());
        let task = tokio::spawn(async move { serve.await.unwrap() });
        for _ in 0..200 {
            if let Ok(r) = stack.http.get(format!("{url}/ready")).send().await
                && r.status().is_success()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Crewed {
            stack,
            telegram,
            crews,
            bus,
            url,
            secret,
            shutdown,
            task,
            dir,
        }
    }

    /// A private text message from Telegram user `user` in `chat`.
    async fn message(&self, chat: i64, user: i64, text: &str) {
        let response = self
            .stack
            .http
            .post(format!("{}/telegram/mainbot/webhook", self.url))
            .header("x-telegram-bot-api-secret-token", &self.secret)
            .json(&text_update(chat, user, text, false))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{text}");
    }

    /// The DAARION user behind Telegram user `telegram_id`.
    async fn user(&self, telegram_id: i64) -> Uuid {
        self.stack
            .user(&telegram_id.to_string())
            .await
            .parse()
            .unwrap()
    }

    async fn publish<E: daarion_bus::events::Event + serde::Serialize>(&self, event: E) {
        self.bus
            .publish(&Envelope::event("crews", event))
            .await
            .unwrap();
    }

    /// Waits until `cond` holds for the Bot API calls (at most 60 s).
    async fn until(&self, what: &str, cond: impl Fn(&FakeTelegram) -> bool) {
        for _ in 0..1200 {
            if cond(&self.telegram) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "timed out waiting for {what}; calls: {:?}",
            self.telegram.texts()
        );
    }

    /// The messages sent to `chat`, as sent (before any edit).
    fn sent(&self, chat: i64) -> Vec<String> {
        self.telegram
            .calls("sendMessage")
            .into_iter()
            .filter(|c| c.body["chat_id"].as_i64() == Some(chat))
            .map(|c| c.body["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn edits(&self, chat: i64) -> Vec<String> {
        self.telegram
            .calls("editMessageText")
            .into_iter()
            .filter(|c| c.body["chat_id"].as_i64() == Some(chat))
            .map(|c| c.body["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
        let _ = std::fs::remove_dir_all(&self.dir);
        self.stack.stop().await;
    }
}

fn telegram(chat: i64) -> Option<AttachmentOrigin> {
    Some(AttachmentOrigin {
        channel: "telegram".into(),
        bot: Some("mainbot".into()),
        chat_id: Some(chat),
        message_id: Some(5),
    })
}

fn progress(run: Uuid, user: Uuid, done: u32, line: &str, chat: i64) -> AgentRunProgress {
    AgentRunProgress {
        run_id: run,
        crew: "research".into(),
        user_id: user,
        done,
        total: 3,
        line: line.into(),
        question: None,
        usage: RunUsage::default(),
        origin: telegram(chat),
    }
}

fn completed(run: Uuid, user: Uuid, result: &str, chat: i64) -> AgentRunCompleted {
    AgentRunCompleted {
        run_id: run,
        crew: "research".into(),
        user_id: user,
        result: result.into(),
        usage: RunUsage::default(),
        origin: telegram(chat),
    }
}

/// Lets the consumer catch up on anything it should not do (a second message, an edit).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

#[tokio::test]
async fn progress_is_one_edited_message_and_the_result_comes_once_like_an_answer() {
    let gw = Crewed::start(true).await;
    let (run, user, chat) = (Uuid::now_v7(), Uuid::now_v7(), 301);
    // The worker's request is not the gateway's business.
    gw.publish(AgentRunRequested {
        run_id: run,
        crew: "research".into(),
        task: "compare".into(),
        user_id: user,
        agent_id: "a".into(),
        session_id: None,
        inputs: Default::default(),
        origin: telegram(chat),
    })
    .await;
    for (done, line) in [
        (1, "1/3 · researcher: supplier A"),
        (2, "2/3 · researcher: supplier B"),
        (3, "3/3 · writer: the comparison"),
    ] {
        gw.publish(progress(run, user, done, line, chat)).await;
    }
    let result = "**A** is cheapest; _B_ ships fastest.";
    // Published twice, as two relays of the outbox would: told once.
    for _ in 0..2 {
        gw.publish(completed(run, user, result, chat)).await;
    }
    gw.until("the progress marked done", |t| {
        t.shown(chat).first().map(String::as_str) == Some("✅ research: done")
    })
    .await;
    settle().await;
    assert_eq!(
        gw.sent(chat),
        [
            "⏳ research: 1/3 · researcher: supplier A",
            "<b>A</b> is cheapest; <i>B</i> ships fastest."
        ],
        "one progress message, then the result formatted like any answer"
    );
    assert_eq!(
        gw.edits(chat),
        [
            "⏳ research: 2/3 · researcher: supplier B",
            "⏳ research: 3/3 · writer: the comparison",
            "✅ research: done",
        ]
    );
    // Progress arriving after the end (a redelivery) changes nothing.
    gw.publish(progress(run, user, 2, "2/3 · late", chat)).await;
    settle().await;
    assert_eq!(gw.sent(chat).len(), 2);
    assert_eq!(gw.edits(chat).len(), 3);
    gw.stop().await;
}

#[tokio::test]
async fn a_stopped_run_is_told_why_and_runs_from_elsewhere_are_not_told() {
    let gw = Crewed::start(true).await;
    let user = Uuid::now_v7();
    let failed =
        |chat: i64, stop: &str, reason: &str, origin: Option<AttachmentOrigin>| AgentRunFailed {
            run_id: Uuid::now_v7(),
            crew: "research".into(),
            user_id: user,
            reason: reason.into(),
            stop: stop.into(),
            usage: RunUsage::default(),
            origin: origin.or_else(|| telegram(chat)),
        };
    let admin = Some(AttachmentOrigin {
        channel: "admin".into(),
        ..AttachmentOrigin::default()
    });
    gw.publish(failed(310, "tokens", "x", admin)).await;
    // An API-started run has no origin at all.
    gw.publish(AgentRunFailed {
        origin: None,
        ..failed(310, "failed", "y", None)
    })
    .await;
    for (chat, stop, reason, said) in [
        (
            311,
            "tokens",
            "200000 of 200000 tokens used",
            "The research run stopped: it reached its token budget (200000 of 200000 tokens used).",
        ),
        (
            312,
            "wall_time",
            "",
            "The research run stopped: it reached its time budget.",
        ),
        (
            313,
            "delegation_loop",
            "manager → analyst → manager",
            "The research run failed: manager → analyst → manager",
        ),
    ] {
        gw.publish(failed(chat, stop, reason, None)).await;
        gw.until(said, |t| t.shown(chat) == [said]).await;
    }
    settle().await;
    assert!(gw.sent(310).is_empty(), "{:?}", gw.sent(310));
    gw.stop().await;
}

#[tokio::test]
async fn a_question_is_asked_and_the_users_next_message_resumes_the_run() {
    let gw = Crewed::start(true).await;
    let fake = gw.stack.fake().await;
    fake.always(openai_answer("an ordinary answer"));
    let chat = 320;
    let user = gw.user(7).await;
    let run = gw.crews.add(user, "research", "waiting_input");
    let mut asking = progress(run, user, 1, "1/3 · waiting for you", chat);
    asking.question = Some("Which year's prices?".into());
    gw.publish(asking).await;
    let question =
        "❓ research asks:\nWhich year's prices?\n\nYour next message here is the answer.";
    gw.until("the question", |t| t.shown(chat) == [question])
        .await;

    gw.message(chat, 7, "Use 2024").await;
    gw.until("the confirmation", |t| {
        t.shown(chat).last().map(String::as_str) == Some("Got it — the crew continues.")
    })
    .await;
    let resumed = gw.crews.calls("resume");
    assert_eq!(
        resumed,
        [json!({"run": run, "body": {"answer": "Use 2024", "budget": null}})]
    );
    assert!(
        fake.bodies().is_empty(),
        "the answer did not go to the agent"
    );

    // Answered: the next message is an ordinary one.
    gw.message(chat, 7, "thanks").await;
    gw.until("the agent's answer", |t| {
        t.shown(chat).last().map(String::as_str) == Some("an ordinary answer")
    })
    .await;
    assert_eq!(gw.crews.calls("resume").len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn someone_else_in_the_chat_does_not_answer_a_run_and_a_stale_question_lets_go() {
    let gw = Crewed::start(true).await;
    let fake = gw.stack.fake().await;
    fake.always(openai_answer("an ordinary answer"));
    let chat = 330;
    let owner = gw.user(7).await;
    let run = gw.crews.add(owner, "research", "waiting_input");
    let mut asking = progress(run, owner, 1, "1/3", chat);
    asking.question = Some("Which year?".into());
    gw.publish(asking).await;
    gw.until("the question", |t| t.shown(chat).len() == 1).await;

    // User 8 writes in the same chat: theirs goes to the agent, the run keeps waiting.
    gw.message(chat, 8, "hello").await;
    gw.until("the agent's answer", |t| {
        t.shown(chat).get(1).map(String::as_str) == Some("an ordinary answer")
    })
    .await;
    assert!(gw.crews.calls("resume").is_empty());

    // Answered meanwhile in the admin UI: the owner's message is an ordinary one.
    gw.crews
        .change(run, Some("waiting_input"), "running")
        .unwrap();
    gw.message(chat, 7, "2024").await;
    gw.until("the agent's answer", |t| {
        t.shown(chat).get(2).map(String::as_str) == Some("an ordinary answer")
    })
    .await;
    assert_eq!(gw.crews.calls("resume").len(), 1, "tried once, refused");
    assert_eq!(gw.telegram.shown(chat).len(), 3);
    gw.stop().await;
}

#[tokio::test]
async fn runs_lists_and_cancel_stops_only_the_askers_own_runs() {
    let gw = Crewed::start(true).await;
    let chat = 340;
    let (me, other) = (gw.user(7).await, gw.user(8).await);
    let done = gw.crews.add(me, "digest", "completed");
    let running = gw.crews.add(me, "research", "running");
    let theirs = gw.crews.add(other, "secret", "running");
    let short = |id: Uuid| id.simple().to_string()[24..].to_owned();

    gw.message(chat, 7, "/runs").await;
    gw.until("the list", |t| t.shown(chat).len() == 1).await;
    let list = gw.telegram.shown(chat)[0].clone();
    assert!(
        list.contains(&format!(
            "{} · research — running, 1/3 tasks",
            short(running)
        )),
        "{list}"
    );
    assert!(
        list.contains(&format!("{} · digest — done", short(done))),
        "{list}"
    );
    assert!(
        !list.contains("secret") && !list.contains(&short(theirs)),
        "{list}"
    );
    let listed = gw.crews.calls("list");
    assert_eq!(
        listed[0]["user_id"],
        json!(me.to_string()),
        "asked for this user's runs only"
    );

    // Another user's run, named by its id: not found, not touched.
    gw.message(chat, 7, &format!("/cancel {}", short(theirs)))
        .await;
    gw.until("the refusal", |t| t.shown(chat).len() == 2).await;
    assert_eq!(
        gw.telegram.shown(chat)[1],
        format!("You have no crew run {}. /runs lists them.", short(theirs))
    );
    gw.message(chat, 7, &format!("/cancel {}", short(done)))
        .await;
    gw.until("already finished", |t| t.shown(chat).len() == 3)
        .await;
    assert!(gw.telegram.shown(chat)[2].contains("has already finished"));
    assert!(gw.crews.calls("cancel").is_empty());

    // `/cancel` alone: the latest unfinished run of mine.
    gw.message(chat, 7, "/cancel").await;
    gw.until("the cancel", |t| t.shown(chat).len() == 4).await;
    assert_eq!(
        gw.telegram.shown(chat)[3],
        format!("Cancelled {} · research.", short(running))
    );
    assert_eq!(gw.crews.calls("cancel"), [json!(running)]);
    gw.message(chat, 7, "/cancel").await;
    gw.until("nothing left", |t| t.shown(chat).len() == 5).await;
    assert_eq!(gw.telegram.shown(chat)[4], "You have no running crew runs.");
    gw.stop().await;
}

#[tokio::test]
async fn with_crews_off_the_commands_say_so() {
    let gw = Crewed::start(false).await;
    for (i, command) in ["/runs", "/cancel", "/cancel abcd1234"]
        .into_iter()
        .enumerate()
    {
        gw.message(350, 7, command).await;
        gw.until(command, |t| t.shown(350).len() == i + 1).await;
        assert_eq!(
            gw.telegram.shown(350)[i],
            "Crew runs are off on this appliance."
        );
    }
    assert!(gw.crews.calls.lock().unwrap().is_empty());
    gw.stop().await;
}
