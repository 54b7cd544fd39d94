//! Attacks from the security review (issue #21), each reproduced against the real service and
//! shown not to get through: a graph query that pins PostgreSQL, unbounded message metadata,
//! NUL characters that PostgreSQL refuses, and a user-confined token that reached every user.

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

/// Issue #21, High 2: a `memory:user` token read and wrote every user's data, because the
/// user it acted for was whatever `X-Daarion-Acting-For` said. A token now names its user when
/// minted; the header can repeat it, never change it.
#[tokio::test]
async fn a_token_minted_for_a_user_reaches_that_user_only_whatever_the_header_says() {
    let memory = Memory::start().await;
    let ann = memory.user("confined-ann").await;
    let bob = memory.user("confined-bob").await;
    let facts = |user: &str| format!("/v1/users/{user}/facts");
    let root = memory.root();
    root.post(&facts(&ann), json!({"content": "likes tea"}))
        .await
        .expect(201);
    root.post(&facts(&bob), json!({"content": "bob's secret garden"}))
        .await
        .expect(201);

    // Minting one without naming its user is refused: it would reach no one, or everyone.
    let (status, body) = memory
        .plane
        .post(
            "/auth/tokens",
            json!({"name": "unbound", "scopes": ["memory:user"]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");

    let token = memory.plane.user_token(&ann, &[]).await;
    let as_ann = || memory.with_token(&token);
    // Its own user's data, whether the header names her or not.
    let own = as_ann().get(&facts(&ann)).await.expect(200);
    assert!(own.to_string().contains("likes tea"), "{own}");
    as_ann()
        .acting_for(&ann)
        .get(&facts(&ann))
        .await
        .expect(200);
    as_ann()
        .post(&facts(&ann), json!({"content": "likes green tea"}))
        .await
        .expect(201);

    // Bob's: without the header, with it naming Bob, with it naming Ann.
    let bob_search = format!("/v1/search?user_id={bob}&q=garden");
    for (why, header) in [
        ("no header", None),
        ("the header names bob", Some(bob.as_str())),
        ("the header names ann", Some(ann.as_str())),
    ] {
        let caller = || match header {
            Some(user) => as_ann().acting_for(user),
            None => as_ann(),
        };
        for path in [facts(&bob), bob_search.clone(), format!("/v1/users/{bob}")] {
            let answer = caller().get(&path).await;
            assert_eq!(answer.status, 403, "{why}: GET {path}: {}", answer.body);
            assert!(!answer.body.to_string().contains("garden"), "{why}: leaked");
        }
        let answer = caller()
            .post(&facts(&bob), json!({"content": "planted by ann"}))
            .await;
        assert_eq!(answer.status, 403, "{why}: write: {}", answer.body);
    }
    let written = root.get(&facts(&bob)).await.expect(200);
    assert!(!written.to_string().contains("planted"), "{written}");

    // Broad callers (the router, the gateway) still narrow themselves with the header.
    let reader = memory.token(&["memory:read"]).await;
    memory
        .with_token(&reader)
        .get(&facts(&bob))
        .await
        .expect(200);
    memory
        .with_token(&reader)
        .acting_for(&ann)
        .get(&facts(&bob))
        .await
        .expect(403);
    memory.stop().await;
}
