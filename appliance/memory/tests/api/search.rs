//! Search: by words, by meaning and through the graph, each hit saying how it matched.

use daarion_memory_client::{Fact, Hit, NewFact, NewMessage, NewSession, Session};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::memory::{Memory, with_embeddings};

fn fact(content: &str) -> NewFact {
    NewFact {
        content: content.into(),
        agent_id: None,
        source_message_id: None,
    }
}

/// `GET /v1/search` for `user` and `q` (URL-encoded), as root.
async fn search(memory: &Memory, user: &str, q: &str) -> Value {
    memory
        .root()
        .get(&format!("/v1/search?user_id={user}&q={q}"))
        .await
        .body
}

#[tokio::test]
async fn full_text_search_finds_facts_and_messages_and_says_why() {
    let memory = Memory::start().await;
    let client = memory.client();
    let alice = memory.user("4001").await;
    let bob = memory.user("4002").await;
    let (alice_id, bob_id): (Uuid, Uuid) = (alice.parse().unwrap(), bob.parse().unwrap());
    client
        .new_fact(alice_id, &fact("Alice's favourite city is Paris"))
        .await
        .unwrap();
    client
        .new_fact(bob_id, &fact("Bob also loves Paris"))
        .await
        .unwrap();
    let session = client
        .create_session(&NewSession {
            user_id: alice_id,
            agent_id: "helper".into(),
            chat: String::new(),
        })
        .await
        .unwrap();
    client
        .add_message(
            session.id,
            NewMessage::new("user", "Book a train to Paris tomorrow"),
        )
        .await
        .unwrap();

    let hits: Vec<Hit> = memory
        .root()
        .get(&format!("/v1/search?user_id={alice}&q=paris"))
        .await
        .expect_as(200);
    assert_eq!(hits.len(), 2, "only alice's data: {hits:?}");
    assert_eq!(hits[0].kind, "fact", "facts rank above messages");
    assert!(hits[0].why.contains("<b>Paris</b>"), "{:?}", hits[0]);
    assert_eq!(hits[1].kind, "message");
    memory
        .root()
        .get(&format!("/v1/search?user_id={alice}&q="))
        .await
        .expect(422);
    memory.stop().await;
}

#[tokio::test]
async fn facts_and_messages_are_found_by_meaning_and_the_index_says_what_made_it() {
    let (memory, swapper_stop, swapper) = with_embeddings().await;

    let olena = memory.user("7001").await;
    let other = memory.user("7002").await;
    let fact: Fact = memory
        .root()
        .post(
            &format!("/v1/users/{olena}/facts"),
            json!({"content": "Olena's favourite colour is teal"}),
        )
        .await
        .expect_as(201);
    let session: Session = memory
        .root()
        .post(
            "/v1/sessions",
            json!({"user_id": olena, "agent_id": "helper", "chat": "tg:7001"}),
        )
        .await
        .expect_as(201);
    for (role, content) in [
        (
            "user",
            "Last weekend I went hiking in the Carpathian mountains",
        ),
        ("assistant", "That sounds wonderful!"),
        ("system", "You are a helpful assistant."),
    ] {
        memory
            .root()
            .post(
                &format!("/v1/sessions/{}/messages", session.id),
                json!({"role": role, "content": content}),
            )
            .await
            .expect(201);
    }
    let status = memory
        .index_until("the fact and two messages indexed", |s| {
            s.count("fact", "indexed") == 1 && s.count("message", "indexed") == 2
        })
        .await;
    assert_eq!(status.model.as_deref(), Some("minilm"));
    assert_eq!(
        status.vectors.messages, 3,
        "system prompts are not memories: {status:?}"
    );
    assert_eq!(status.count("message", "pending"), 0);

    // No word in common with the fact: found by meaning alone.
    let hits: Vec<Hit> = memory
        .root()
        .get(&format!(
            "/v1/search?user_id={olena}&q=which%20hue%20does%20she%20prefer"
        ))
        .await
        .expect_as(200);
    assert_eq!(hits[0].id, fact.id, "{hits:?}");
    assert_eq!(hits[0].matched_by, ["meaning"]);
    assert!(hits[0].similarity.unwrap() > 0.2, "{hits:?}");

    // Words and meaning agree: both say so, and it ranks first.
    let hits = search(&memory, &olena, "hiking%20in%20the%20mountains").await;
    assert!(
        hits[0]["content"].as_str().unwrap().contains("Carpathian"),
        "{hits}"
    );
    assert_eq!(hits[0]["matched_by"], json!(["words", "meaning"]), "{hits}");
    assert!(hits[0]["why"].as_str().unwrap().contains("<b>"), "{hits}");

    // An entity the query names brings its relations from the graph.
    memory
        .root()
        .post(
            "/v1/graph/relations",
            json!({"user_id": olena, "from": {"kind": "person", "name": "Olena"}, "relation": "lives_in", "to": {"kind": "city", "name": "Kyiv"}}),
        )
        .await
        .expect(201);
    let hits = search(&memory, &olena, "where%20does%20Olena%20live").await;
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
    assert_eq!(
        search(&memory, &other, "favourite%20colour").await,
        json!([])
    );

    // The same item's event delivered again (a redelivery) changes nothing.
    let fact_indexed_at = "SELECT (extract(epoch FROM updated_at) * 1000000)::bigint FROM index_state WHERE kind = 'fact'";
    let before = memory.count(fact_indexed_at).await;
    let again = daarion_bus::Envelope::new(
        "memory.store.fact",
        "test",
        json!({"kind": "fact", "id": fact.id}),
    );
    memory.plane.bus.bus.publish(&again).await.unwrap();
    // Events are handled in stream order: once a later item is indexed, the redelivery was seen.
    let probe = memory
        .root()
        .post(
            &format!("/v1/users/{other}/facts"),
            json!({"content": "a later item, indexed after the redelivery"}),
        )
        .await
        .body;
    memory
        .index_until("the later item indexed", |s| {
            s.count("fact", "indexed") == 2
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
    let newer: Fact = memory
        .root()
        .post(
            &format!("/v1/facts/{}/supersede", fact.id),
            json!({"content": "Olena's favourite colour is now orange", "reason": "she said so"}),
        )
        .await
        .expect_as(201);
    memory
        .index_until("the new fact indexed", |s| s.count("fact", "indexed") == 3)
        .await;
    let hits: Vec<Hit> = memory
        .root()
        .get(&format!(
            "/v1/search?user_id={olena}&q=which%20hue%20does%20she%20prefer"
        ))
        .await
        .expect_as(200);
    let found: Vec<Uuid> = hits.iter().map(|h| h.id).collect();
    assert!(
        found.contains(&newer.id) && !found.contains(&fact.id),
        "{hits:?}"
    );

    // Readers of everyone may see the index; a user-scoped caller may not.
    let user_token = memory.plane.user_token(&olena, &[]).await;
    memory
        .with_token(&user_token)
        .acting_for(&olena)
        .get("/v1/index/status")
        .await
        .expect(403);

    swapper_stop.cancel();
    swapper.await.unwrap();
    memory.stop().await;
}
