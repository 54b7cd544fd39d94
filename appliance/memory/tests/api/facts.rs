//! Facts: superseded, never overwritten; forgetting ends validity and is audited.

use std::sync::Arc;

use daarion_memory_client::Fact;
use serde_json::json;

use crate::helpers::memory::{Answer, Memory, ids};

#[tokio::test]
async fn facts_are_superseded_never_overwritten_and_forgetting_is_audited() {
    let memory = Memory::start().await;
    let alice = memory.user("3001").await;
    let facts = format!("/v1/users/{alice}/facts");
    let first: Fact = memory
        .root()
        .post(&facts, json!({"content": "lives in Lyon"}))
        .await
        .expect_as(201);
    let first_id = first.id.to_string();

    // Two clients supersede the same fact at once: exactly one wins.
    let memory = Arc::new(memory);
    let mut racers = Vec::new();
    for city in ["Paris", "Nice"] {
        let (memory, id) = (memory.clone(), first_id.clone());
        racers.push(tokio::spawn(async move {
            memory
                .root()
                .post(
                    &format!("/v1/facts/{id}/supersede"),
                    json!({"content": format!("lives in {city}"), "reason": "moved"}),
                )
                .await
        }));
    }
    let mut outcomes: Vec<Answer> = Vec::new();
    for r in racers {
        outcomes.push(r.await.unwrap());
    }
    let winners: Vec<&Answer> = outcomes.iter().filter(|a| a.status == 201).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    assert!(outcomes.iter().any(|a| a.status == 409));
    let second: Fact = serde_json::from_value(winners[0].body.clone()).unwrap();
    let second_id = second.id.to_string();
    assert_eq!(second.supersedes, Some(first.id));

    let current = memory.root().get(&facts).await.body;
    assert_eq!(ids(&current), [second_id.as_str()]);
    let all: Vec<Fact> = memory
        .root()
        .get(&format!("{facts}?history=true"))
        .await
        .expect_as(200);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].content, "lives in Lyon");
    assert!(all[0].valid_to.is_some(), "the old fact's validity ended");
    let chain = memory
        .root()
        .get(&format!("/v1/facts/{first_id}/history"))
        .await
        .body;
    assert_eq!(ids(&chain), [first_id.as_str(), second_id.as_str()]);

    // Forget: validity ends, the row stays, the audit log says who and why.
    let forget = format!("/v1/facts/{second_id}/forget");
    let forgotten: Fact = memory
        .root()
        .post(&forget, json!({"reason": "user asked"}))
        .await
        .expect_as(200);
    assert!(forgotten.forgotten);
    memory
        .root()
        .post(&forget, json!({"reason": "again"}))
        .await
        .expect(409);
    let current = memory.root().get(&facts).await.body;
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
    for (body, expected) in [
        (json!({"content": ""}), 422),
        (json!({"content": "x".repeat(5000)}), 413),
        (
            json!({"content": "ok", "source_message_id": "00000000-0000-0000-0000-000000000000"}),
            422,
        ),
    ] {
        memory.root().post(&facts, body).await.expect(expected);
    }
    memory
        .root()
        .post(
            "/v1/users/00000000-0000-0000-0000-000000000000/facts",
            json!({"content": "x"}),
        )
        .await
        .expect(404);
    assert_eq!(memory.count("SELECT count(*) FROM facts").await, 2);
    let memory = Arc::into_inner(memory).unwrap();
    memory.stop().await;
}
