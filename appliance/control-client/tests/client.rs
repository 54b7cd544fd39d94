//! The client against a real control plane, PostgreSQL, Redis and NATS.

use std::time::{Duration, Instant};

use daarion_control_client::{ClientError, ControlClient, Usage};
use daarion_control_plane::testing::Plane;
use daarion_policy::Action;
use daarion_settings::{AgentSettings, GroupMode, Routing, TelegramBot, TelegramMode};
use serde_json::json;

const ONE_REQUEST: Usage = Usage {
    requests: 1,
    tokens: 0,
    gpu_seconds: 0.0,
    cost: 0.0,
};

async fn seeded() -> Plane {
    let plane = Plane::start().await;
    let (status, body) = plane
        .post("/agents", json!({"id": "helper", "name": "Helper"}))
        .await;
    assert_eq!(status, 201, "{body}");
    plane
        .post("/prompts/helper", json!({"content": "You are helpful."}))
        .await;
    plane
        .put(
            "/policy/helper",
            json!({"document": {"roles": {"user": {"use": true, "tools": {"allow": ["search_memory"]}}}}}),
        )
        .await;
    plane
        .put("/users/alice/roles", json!({"roles": ["user"]}))
        .await;
    plane
        .put(
            "/config/flags.voice_replies",
            json!({"value": {"enabled": true, "allow": ["alice"], "rollout_percent": 0}}),
        )
        .await;
    plane
}

/// Long enough never to fail a healthy run on a loaded machine; how fast it really is, is
/// measured by `benches/control.rs`.
const HANG_GUARD: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_change_reaches_the_cache_over_nats() {
    let plane = seeded().await;
    let token = plane.token(&["read"]).await;
    // An hour of TTL: only the announcement can make the client see the new version.
    let client = ControlClient::new(plane.url(""), token, Duration::from_secs(3600));
    let watcher = client.watch(&plane.bus.bus).await.unwrap();

    let first = client.active_prompt("helper").await.unwrap();
    assert_eq!((first.version, first.stale), (1, false));
    let report = client
        .decide("alice", "helper", &Action::Tool("search_memory"))
        .await
        .unwrap();
    assert!(report.decision.allow, "{report:?}");
    assert_eq!(report.policy_version, 1);

    let changed = Instant::now();
    plane
        .post(
            "/prompts/helper",
            json!({"content": "You are very helpful."}),
        )
        .await;
    loop {
        let prompt = client.active_prompt("helper").await.unwrap();
        if prompt.version == 2 {
            break;
        }
        assert!(changed.elapsed() < HANG_GUARD, "never invalidated");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Policy and roles are invalidated the same way.
    plane
        .put(
            "/policy/helper",
            json!({"document": {"roles": {"user": {"use": true}}}}),
        )
        .await;
    let started = Instant::now();
    loop {
        let report = client
            .decide("alice", "helper", &Action::Tool("search_memory"))
            .await
            .unwrap();
        if report.policy_version == 2 {
            assert!(!report.decision.allow, "tool no longer granted");
            break;
        }
        assert!(started.elapsed() < HANG_GUARD, "policy never invalidated");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    watcher.abort();
    plane.stop().await;
}

#[tokio::test]
async fn the_client_keeps_serving_while_the_control_plane_is_down() {
    let mut plane = seeded().await;
    let token = plane.token(&["read"]).await;
    let client = ControlClient::new(plane.url(""), token, Duration::from_millis(50));
    let prompt = client.active_prompt("helper").await.unwrap();
    let flag = client.flag("voice_replies", "alice").await.unwrap();
    assert!(flag.value);
    assert!(!client.flag("voice_replies", "bob").await.unwrap().value);
    let decision = client
        .decide("alice", "helper", &Action::Use)
        .await
        .unwrap();
    assert!(decision.decision.allow);

    plane.halt().await;
    tokio::time::sleep(Duration::from_millis(100)).await; // past the TTL
    let stale = client.active_prompt("helper").await.unwrap();
    assert!(stale.stale);
    assert_eq!(stale.value, prompt.value);
    assert_eq!(stale.version, prompt.version);
    let decision = client
        .decide("alice", "helper", &Action::Use)
        .await
        .unwrap();
    assert!(decision.decision.allow && decision.stale);
    assert!(client.flag("voice_replies", "alice").await.unwrap().value);
    // Something never fetched cannot be made up.
    assert!(matches!(
        client.config::<Routing>().await,
        Err(ClientError::Unavailable(_))
    ));
    plane.stop().await;
}

#[tokio::test]
async fn errors_are_told_apart() {
    let plane = seeded().await;
    let reader = plane.token(&["read"]).await;
    let client = ControlClient::new(plane.url(""), reader.clone(), Duration::from_secs(60));
    assert!(matches!(
        client.active_prompt("nobody").await,
        Err(ClientError::NotFound(_))
    ));
    let wrong = ControlClient::new(plane.url(""), "dcp_wrong", Duration::from_secs(60));
    assert!(matches!(
        wrong.active_prompt("helper").await,
        Err(ClientError::Unauthorized(401))
    ));
    // Consuming quota needs its own scope.
    assert!(matches!(
        client.consume("alice", &ONE_REQUEST).await,
        Err(ClientError::Unauthorized(403))
    ));
    plane
        .put(
            "/quotas/limits/user/alice",
            json!({"requests_per_minute": 1}),
        )
        .await;
    let consumer = ControlClient::new(
        plane.url(""),
        plane.token(&["quota:consume"]).await,
        Duration::from_secs(60),
    );
    consumer.consume("alice", &ONE_REQUEST).await.unwrap();
    assert!(matches!(
        consumer.consume("alice", &ONE_REQUEST).await,
        Err(ClientError::QuotaExceeded(m)) if m.contains("requests_per_minute")
    ));
    plane.stop().await;
}

#[tokio::test]
async fn a_path_in_caller_text_stays_in_its_segment() {
    let plane = seeded().await;
    // The root token may list tokens: were `../auth/tokens` to leave its segment, this would
    // read the token list (and fail to parse it) instead of finding no such agent.
    let client = ControlClient::new(plane.url(""), plane.root.clone(), Duration::from_secs(60));
    assert!(matches!(
        client.agent("../auth/tokens").await,
        Err(ClientError::NotFound(m)) if m.contains("../auth/tokens")
    ));
    assert!(matches!(
        client.active_prompt("../auth/tokens").await,
        Err(ClientError::NotFound(_))
    ));
    plane.stop().await;
}

#[tokio::test]
async fn config_documents_and_quotas_travel_typed() {
    let plane = seeded().await;
    plane
        .put(
            "/config/routing.main",
            json!({"value": {"rules": [{"command": "/help", "agent": "helper"}], "default_agent": "helper"}}),
        )
        .await;
    plane
        .put(
            "/config/agents.helper",
            json!({"value": {"max_tool_steps": 2, "group_mode": "always"}}),
        )
        .await;
    let (status, body) = plane
        .put(
            "/config/telegram.mainbot",
            json!({"value": {"token_ref": "env:BOT_TOKEN", "webhook_secret_ref": "env:BOT_SECRET", "agent": "helper", "mode": "polling"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // Written past the control plane's validation, as an older build might have left it.
    sqlx::query(
        "INSERT INTO config_versions (key, version, value, comment, author) \
         VALUES ('telegram.broken', 1, '{\"token\": 1}', '', 'test')",
    )
    .execute(&plane.db.pool)
    .await
    .unwrap();
    let client = ControlClient::new(
        plane.url(""),
        plane.token(&["read", "quota:consume"]).await,
        Duration::from_secs(60),
    );

    let routing = client.config::<Routing>().await.unwrap();
    assert_eq!(routing.version, 1);
    assert_eq!(routing.value.default_agent.as_deref(), Some("helper"));
    let settings = client
        .config_for::<AgentSettings>("helper")
        .await
        .unwrap()
        .value;
    assert_eq!(settings.max_tool_steps, 2);
    assert_eq!(settings.group_mode, GroupMode::Always);
    assert!(matches!(
        client.config_for::<AgentSettings>("nobody").await,
        Err(ClientError::NotFound(_))
    ));
    assert!(matches!(
        client.config_for::<TelegramBot>("broken").await,
        Err(ClientError::Invalid { key, .. }) if key == "telegram.broken"
    ));
    let bots = client.configs::<TelegramBot>().await.unwrap();
    assert_eq!(bots.len(), 1, "the broken one is left out");
    assert_eq!(bots[0].0, "mainbot");
    assert_eq!(bots[0].1.value.mode, TelegramMode::Polling);

    plane
        .put(
            "/quotas/limits/user/alice",
            json!({"tokens_per_day": 100, "cost_per_month": 2.5}),
        )
        .await;
    let reserved = Usage {
        requests: 1,
        tokens: 40,
        ..Usage::default()
    };
    let consumed = client.consume("alice", &reserved).await.unwrap();
    assert!(consumed.allowed);
    assert_eq!(consumed.consumed, reserved);
    let actual = Usage {
        tokens: 15,
        cost: 0.5,
        ..reserved
    };
    let settled = client.settle("alice", &reserved, &actual).await.unwrap();
    assert!(settled.settled);
    assert_eq!(settled.actual, actual);
    let status = client.quota_status("alice").await.unwrap();
    assert_eq!(status.user_id, "alice");
    assert_eq!(status.roles, ["user"]);
    assert_eq!(status.limits.tokens_per_day, Some(100));
    assert_eq!(status.limits.requests_per_minute, None);
    assert_eq!(status.sources.tokens_per_day, "user:alice");
    assert_eq!(status.sources.requests_per_minute, "unlimited");
    assert_eq!(status.usage.tokens_today, 15);
    assert_eq!(status.usage.requests_this_minute, 1);
    assert_eq!(status.usage.cost_this_month, 0.5);
    plane.stop().await;
}
