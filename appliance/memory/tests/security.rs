//! Attacks from the security review (issue #21), each reproduced against the real service and
//! shown not to get through: a graph query that pins PostgreSQL, unbounded message metadata,
//! and NUL characters that PostgreSQL refuses.

#[path = "helpers/mod.rs"]
mod helpers;

use std::time::{Duration, Instant};

use daarion_memory_client::Session;
use serde_json::{Value, json};

use helpers::memory::{Memory, strings};

fn message_of(answer: &Value) -> &str {
    answer["error"]["message"].as_str().unwrap_or_default()
}

/// A 22-node clique has billions of simple paths of length 6: enumerating them all pinned
/// PostgreSQL long after the HTTP request gave up. Breadth first, each relation is seen once.
#[tokio::test]
async fn a_path_query_in_a_22_node_clique_finishes_quickly_with_the_shortest_path() {
    let memory = Memory::start().await;
    let user = memory.user("clique").await;
    let root = memory.root();
    let name = |i: usize| format!("N{i:02}");
    for i in 0..22 {
        for j in i + 1..22 {
            root.post(
                "/v1/graph/relations",
                json!({"user_id": user, "from": {"kind": "person", "name": name(i)},
                       "relation": "knows", "to": {"kind": "person", "name": name(j)}}),
            )
            .await
            .expect(201);
        }
    }
    root.post(
        "/v1/graph/relations",
        json!({"user_id": user, "from": {"kind": "person", "name": "Far"},
               "relation": "knows", "to": {"kind": "person", "name": "Away"}}),
    )
    .await
    .expect(201);
    let (first, last, far) = (
        node(&memory, &user, "N00").await,
        node(&memory, &user, "N21").await,
        node(&memory, &user, "Far").await,
    );

    let started = Instant::now();
    let path = root
        .get(&format!(
            "/v1/graph/path?from={first}&to={last}&max_depth=6"
        ))
        .await
        .expect(200);
    assert_eq!(strings(&path["nodes"], "name"), ["N00", "N21"]);
    assert_eq!(path["edges"].as_array().unwrap().len(), 1);
    // Unreachable: every path of the clique would be walked before answering none.
    let none = root
        .get(&format!("/v1/graph/path?from={first}&to={far}&max_depth=6"))
        .await
        .expect(200);
    assert_eq!(none, Value::Null);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    memory.stop().await;
}

async fn node(memory: &Memory, user: &str, name: &str) -> String {
    let found = memory
        .root()
        .get(&format!("/v1/graph/nodes?user_id={user}&q={name}"))
        .await
        .expect(200);
    found[0]["id"].as_str().unwrap().to_owned()
}

async fn session(memory: &Memory, external_id: &str) -> Session {
    let user = memory.user(external_id).await;
    memory
        .root()
        .post(
            "/v1/sessions/open",
            json!({"user_id": user, "agent_id": "helper", "chat": "tg:1"}),
        )
        .await
        .expect_as(200)
}

#[tokio::test]
async fn every_metadata_field_of_a_message_is_bounded_and_named_when_refused() {
    let memory = Memory::start().await;
    let session = session(&memory, "metadata").await;
    let path = format!("/v1/sessions/{}/messages", session.id);
    let root = memory.root();
    let big = "x".repeat(70 * 1024);
    for (field, body) in [
        (
            "versions",
            json!({"role": "assistant", "content": "hi", "versions": {"prompt": big}}),
        ),
        (
            "tool_calls",
            json!({"role": "assistant", "content": "hi", "tool_calls": [{"name": big}]}),
        ),
        (
            "model",
            json!({"role": "assistant", "content": "hi", "model": "m".repeat(300)}),
        ),
        (
            "trace_id",
            json!({"role": "assistant", "content": "hi", "trace_id": "t".repeat(200)}),
        ),
        (
            "agent_id",
            json!({"role": "assistant", "content": "hi", "agent_id": "a".repeat(65)}),
        ),
    ] {
        let refused = root.post(&path, body).await.expect(422);
        assert!(
            message_of(&refused).starts_with(field),
            "{field}: {refused}"
        );
    }
    assert_eq!(
        memory.count("SELECT count(*) FROM messages").await,
        0,
        "nothing oversized was stored"
    );
    // At the limits, all is well.
    root.post(
        &path,
        json!({"role": "assistant", "content": "hi", "model": "m".repeat(256),
               "trace_id": "t".repeat(128), "agent_id": "a".repeat(64),
               "versions": {"prompt": 3}, "tool_calls": [{"name": "search"}]}),
    )
    .await
    .expect(201);

    let user = session.user_id;
    let fact = root
        .post(
            &format!("/v1/users/{user}/facts"),
            json!({"content": "likes tea"}),
        )
        .await
        .expect(201);
    let id = fact["id"].as_str().unwrap();
    let refused = root
        .post(
            &format!("/v1/facts/{id}/forget"),
            json!({"reason": "r".repeat(501)}),
        )
        .await
        .expect(422);
    assert!(message_of(&refused).starts_with("reason"), "{refused}");
    let refused = root
        .post(
            &format!("/v1/facts/{id}/supersede"),
            json!({"content": "likes coffee", "reason": "r".repeat(501)}),
        )
        .await
        .expect(422);
    assert!(message_of(&refused).starts_with("reason"), "{refused}");
    memory.stop().await;
}

/// PostgreSQL refuses `\0` in `text` and `jsonb`: it was a 500 from the INSERT.
#[tokio::test]
async fn a_nul_character_anywhere_is_a_422_naming_the_field() {
    let memory = Memory::start().await;
    let session = session(&memory, "nul").await;
    let user = session.user_id;
    let root = memory.root();
    let cases = [
        (
            format!("/v1/users/{user}/facts"),
            json!({"content": "a\u{0}b"}),
            "content",
        ),
        (
            "/v1/identities/resolve".to_owned(),
            json!({"channel": "telegram", "external_id": "a\u{0}b", "display_name": "x"}),
            "external_id",
        ),
        (
            format!("/v1/sessions/{}/messages", session.id),
            json!({"role": "user", "content": "hi", "versions": {"k": ["ok", "a\u{0}"]}}),
            "versions.k[1]",
        ),
    ];
    for (path, body, field) in cases {
        let refused = root.post(&path, body).await.expect(422);
        assert_eq!(
            message_of(&refused),
            format!("{field}: must not contain a NUL character"),
            "{path}"
        );
    }
    let refused = root
        .get(&format!("/v1/search?user_id={user}&q=a%00b"))
        .await
        .expect(422);
    assert!(message_of(&refused).starts_with("q:"), "{refused}");
    // Without a credential the body is never looked at.
    memory
        .anonymous()
        .post(
            &format!("/v1/users/{user}/facts"),
            json!({"content": "a\u{0}b"}),
        )
        .await
        .expect(401);
    assert_eq!(memory.count("SELECT count(*) FROM facts").await, 0);
    memory.stop().await;
}
