//! Sessions and their messages.

use daarion_memory_client::{Session, StoredMessage};
use serde_json::json;

use crate::helpers::memory::Memory;

#[tokio::test]
async fn sessions_keep_messages_with_trace_and_versions_and_refuse_bad_input() {
    let memory = Memory::start().await;
    let alice = memory.user("2001").await;
    let session: Session = memory
        .root()
        .post(
            "/v1/sessions",
            json!({"user_id": alice, "agent_id": "helper", "chat": "tg:2001"}),
        )
        .await
        .expect_as(201);
    let messages = format!("/v1/sessions/{}/messages", session.id);
    for (role, content) in [
        ("user", "What is the capital of France?"),
        ("assistant", "Paris."),
    ] {
        let message = json!({
            "role": role, "content": content, "agent_id": "helper", "model": "smollm2",
            "prompt_tokens": 12, "completion_tokens": 3,
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "versions": {"prompt": 3, "policy": 1}
        });
        memory.root().post(&messages, message).await.expect(201);
    }
    let listed: Vec<StoredMessage> = memory.root().get(&messages).await.expect_as(200);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].role, "user");
    assert_eq!(listed[1].content, "Paris.");
    assert_eq!(listed[1].versions["prompt"], 3);
    assert_eq!(
        listed[1].trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );

    // Bad input: 4xx and nothing stored.
    let huge = "x".repeat(daarion_memory::api::MAX_MESSAGE_BYTES + 1);
    for (body, expected) in [
        (json!({"role": "user", "content": huge}), 413),
        (json!({"role": "wizard", "content": "hi"}), 422),
        (
            json!({"role": "user", "content": "hi", "versions": [1]}),
            422,
        ),
        (json!({"role": "user"}), 422),
    ] {
        memory.root().post(&messages, body).await.expect(expected);
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
    let answer = memory
        .root()
        .post(
            "/v1/sessions",
            json!({"user_id": "00000000-0000-0000-0000-000000000000", "agent_id": "helper"}),
        )
        .await;
    assert_eq!(answer.status, 404, "unknown user");
    assert_eq!(memory.count("SELECT count(*) FROM messages").await, 2);

    memory
        .root()
        .post(&format!("/v1/sessions/{}/end", session.id), None)
        .await
        .expect(200);
    let answer = memory
        .root()
        .post(
            &messages,
            json!({"role": "user", "content": "still there?"}),
        )
        .await;
    assert_eq!(
        answer.status, 409,
        "an ended session takes no more messages"
    );
    memory.stop().await;
}
