//! Session state: values with a TTL, confined to the session's user, gone with the session.

use std::time::Duration;

use daarion_memory_client::{Entry, Session};
use serde_json::json;

use crate::helpers::memory::{Memory, strings};

#[tokio::test]
async fn session_state_expires_is_confined_to_its_user_ends_with_the_session_and_survives_redis() {
    let memory = Memory::start_with(|c| c.memory.session_state_max_ttl_secs = 3600).await;
    let ann = memory.user("state-ann").await;
    let bob = memory.user("state-bob").await;
    let session: Session = memory
        .root()
        .post(
            "/v1/sessions",
            json!({"user_id": ann, "agent_id": "helper"}),
        )
        .await
        .expect_as(201);
    let sid = session.id;
    let all_state = format!("/v1/sessions/{sid}/state");
    let state = |key: &str| format!("/v1/sessions/{sid}/state/{key}");
    let root = memory.root();

    root.put(
        &state("pending"),
        json!({"value": {"question": "which city?"}, "ttl_secs": 1}),
    )
    .await
    .expect(200);
    root.put(&state("language"), json!({"value": "uk"}))
        .await
        .expect(200);
    let all = root.get(&all_state).await.body;
    assert_eq!(strings(&all, "key"), ["language", "pending"]);
    let one = root.get(&state("pending")).await.body;
    assert_eq!(one["value"]["question"], "which city?");
    // The default TTL applies when none is given.
    let language: Entry = root.get(&state("language")).await.expect_as(200);
    let left = language.expires_at - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::minutes(59) && left <= time::Duration::hours(1),
        "{left}"
    );

    // Expired: gone from reads at once (cached or not), whatever the sweeper has done.
    let mut gone = false;
    for _ in 0..100 {
        if root.get(&state("pending")).await.status == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "an entry outlived its TTL");
    let all = root.get(&all_state).await.body;
    assert_eq!(all.as_array().unwrap().len(), 1);

    // Replacing keeps one entry; deleting is idempotent.
    root.put(&state("language"), json!({"value": "en"})).await;
    let language = root.get(&state("language")).await.body;
    assert_eq!(
        language["value"], "en",
        "the write dropped the cached entries"
    );
    for _ in 0..2 {
        root.delete(&state("language")).await.expect(204);
    }

    // Another user's session is out of reach; its own user's is not.
    let token = memory.plane.user_token(&ann, &[]).await;
    let as_user = |user: &str| memory.with_token(&token).acting_for(user);
    as_user(&bob)
        .put(&state("x"), json!({"value": 1}))
        .await
        .expect(403);
    as_user(&bob).get(&all_state).await.expect(403);
    as_user(&ann)
        .put(&state("mine"), json!({"value": [1, 2]}))
        .await
        .expect(200);

    // Bad input: nothing stored.
    for (key, body, expected) in [
        ("Bad Key", json!({"value": 1}), 422),
        ("ttl", json!({"value": 1, "ttl_secs": 0}), 422),
        ("ttl", json!({"value": 1, "ttl_secs": 3601}), 422),
        ("big", json!({"value": "x".repeat(20_000)}), 413),
        ("unknown", json!({"value": 1, "colour": "red"}), 422),
    ] {
        let answer = root.put(&state(&key.replace(' ', "%20")), body).await;
        assert_eq!(answer.status, expected, "{key}: {}", answer.body);
        assert!(
            answer.body["error"]["message"].is_string(),
            "{}",
            answer.body
        );
    }
    root.put(
        &format!("/v1/sessions/{}/state/x", uuid::Uuid::new_v4()),
        json!({"value": 1}),
    )
    .await
    .expect(404);
    let stored = |live_only: bool| {
        let live = if live_only {
            " AND expires_at > clock_timestamp()"
        } else {
            ""
        };
        format!("SELECT count(*) FROM session_state WHERE session_id = '{sid}'{live}")
    };
    assert_eq!(
        memory.count(&stored(true)).await,
        1,
        "only `mine` is left (and the expired one, until the sweeper comes)"
    );
    let swept = daarion_memory::api::state::sweep_expired(&memory.plane.db.pool)
        .await
        .unwrap();
    assert!(swept >= 1, "the expired entry is swept");
    assert_eq!(memory.count(&stored(false)).await, 1);

    // The session ends: its state goes with it, and no more is written.
    root.post(&format!("/v1/sessions/{sid}/end"), None).await;
    assert_eq!(root.get(&all_state).await.body, json!([]));
    assert_eq!(
        memory.count(&stored(false)).await,
        0,
        "deleted, expired or not"
    );
    root.put(&state("late"), json!({"value": 1}))
        .await
        .expect(409);
    memory.stop().await;

    // Without Redis: the same answers from PostgreSQL.
    let memory = Memory::start_with(|c| c.redis.url = "redis://127.0.0.1:1/0".into()).await;
    let carol = memory.user("state-carol").await;
    let session: Session = memory
        .root()
        .post(
            "/v1/sessions",
            json!({"user_id": carol, "agent_id": "helper"}),
        )
        .await
        .expect_as(201);
    let path = format!("/v1/sessions/{}/state/step", session.id);
    memory
        .root()
        .put(&path, json!({"value": 2}))
        .await
        .expect(200);
    let step = memory.root().get(&path).await.expect(200);
    assert_eq!(step["value"], 2);
    memory.stop().await;
}
