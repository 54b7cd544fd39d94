//! The client against a real control plane, PostgreSQL, Redis and NATS.

use std::time::{Duration, Instant};

use daarion_control_client::{ClientError, ControlClient};
use daarion_control_plane::testing::Plane;
use daarion_policy::Action;
use serde_json::json;

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

#[tokio::test]
async fn a_change_reaches_the_cache_over_nats_within_a_second() {
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
    let seen = loop {
        let prompt = client.active_prompt("helper").await.unwrap();
        if prompt.version == 2 {
            break changed.elapsed();
        }
        assert!(
            changed.elapsed() < Duration::from_secs(5),
            "never invalidated"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    println!(
        "figure: prompt change to client cache: {} ms",
        seen.as_millis()
    );
    assert!(seen < Duration::from_secs(1), "{seen:?}");

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
        assert!(started.elapsed() < Duration::from_secs(5));
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
        client.config("routing.main").await,
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
        client.consume("alice", &json!({"requests": 1})).await,
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
    consumer
        .consume("alice", &json!({"requests": 1}))
        .await
        .unwrap();
    assert!(matches!(
        consumer.consume("alice", &json!({"requests": 1})).await,
        Err(ClientError::QuotaExceeded(m)) if m.contains("requests_per_minute")
    ));
    plane.stop().await;
}
