//! `daarion-memory-client` against the real service: every call the router and the gateway
//! make reads the service's real answers into the contract's types.

use daarion_memory_client::{MemoryError, NewMessage, PutEntry};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::memory::Memory;

#[tokio::test]
async fn the_memory_client_reads_every_answer_the_router_and_gateway_rely_on() {
    let memory = Memory::start().await;
    let client = memory.client();
    client.ping().await.unwrap();

    // The gateway and the router resolve a sender; the router reads the name back.
    let user = client.resolve("telegram", "8001", "Olena").await.unwrap();
    assert_eq!(
        client.resolve("telegram", "8001", "ignored").await.unwrap(),
        user,
        "an identity is one user"
    );
    assert_eq!(client.display_name(user).await.unwrap(), "Olena");
    match client.display_name(Uuid::nil()).await {
        Err(MemoryError::Refused {
            status: 404, code, ..
        }) => assert_eq!(code, "not_found"),
        other => panic!("{other:?}"),
    }

    // A turn: its session, the question and the answer, the history.
    let session = client
        .open_session(user, "helper", "tg:8001")
        .await
        .unwrap();
    assert_eq!(
        client
            .open_session(user, "helper", "tg:8001")
            .await
            .unwrap(),
        session
    );
    let question = client
        .add_message(session.id, NewMessage::new("user", "I moved to Lviv"))
        .await
        .unwrap();
    let answer = client
        .add_message(
            session.id,
            NewMessage {
                agent_id: Some("helper".into()),
                model: Some("smollm2".into()),
                prompt_tokens: Some(12),
                completion_tokens: Some(3),
                versions: json!({"prompt": 2}),
                tool_calls: Some(json!([{"id": "c1", "name": "remember_fact"}])),
                ..NewMessage::new("assistant", "Noted.")
            },
        )
        .await
        .unwrap();
    assert_eq!(answer.versions, json!({"prompt": 2}));
    let history = client.history(session.id, 1).await.unwrap();
    assert_eq!(history, [answer], "the last one");
    let history = client.history(session.id, 100).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        history[0].versions,
        json!({}),
        "no versions is an empty object"
    );

    // The tools: facts, relations, exploring and searching.
    let fact = client
        .add_fact(user, "lives in Lviv", "helper", Some(question.id))
        .await
        .unwrap();
    assert_eq!(fact.source_message_id, Some(question.id));
    assert_eq!(
        client.facts(user).await.unwrap(),
        std::slice::from_ref(&fact)
    );
    let related = client
        .relate(
            user,
            ("person", "Olena"),
            "lives_in",
            ("place", "Lviv"),
            Some(question.id),
        )
        .await
        .unwrap();
    assert!(related.created);
    match client
        .relate(user, ("person", "Olena"), "is", ("person", "olena"), None)
        .await
    {
        Err(MemoryError::Refused {
            status: 422,
            message,
            ..
        }) => {
            assert!(message.contains("two different things"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let around = client.explore(user, "Olena").await.unwrap().unwrap();
    assert_eq!(around.name_of(related.edge.to_node), Some("Lviv"));
    assert_eq!(client.explore(user, "Taras").await.unwrap(), None);
    let hits = client.search(user, "Lviv", 5).await.unwrap();
    assert!(
        hits.iter().any(|h| h.id == fact.id && h.kind == "fact"),
        "{hits:?}"
    );

    // Session state, whatever its key holds.
    let entry = client
        .put_state(
            session.id,
            "pending",
            &PutEntry {
                value: json!({"step": 1}),
                ttl_secs: Some(60),
            },
        )
        .await
        .unwrap();
    assert_eq!(client.state(session.id).await.unwrap(), [entry]);
    match client.state_entry(session.id, "../../users").await {
        Err(MemoryError::Refused { status: 422, .. }) => {}
        other => panic!("a key stays a key: {other:?}"),
    }
    client.delete_state(session.id, "pending").await.unwrap();

    // `/new`: the session ends; it takes no more messages.
    let ended = client.end_session(session.id).await.unwrap();
    assert!(ended.ended_at.is_some());
    match client
        .add_message(session.id, NewMessage::new("user", "still there?"))
        .await
    {
        Err(MemoryError::Refused {
            status: 409, code, ..
        }) => assert_eq!(code, "conflict"),
        other => panic!("{other:?}"),
    }
    let next = client
        .open_session(user, "helper", "tg:8001")
        .await
        .unwrap();
    assert_ne!(next.id, session.id);
    memory.stop().await;
}
