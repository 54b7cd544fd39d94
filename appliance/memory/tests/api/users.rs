//! Users: created once at first contact, listed for readers of everyone.

use serde_json::json;

use crate::helpers::memory::{Memory, ids};

#[tokio::test]
async fn first_contact_creates_one_user_even_when_racing() {
    let memory = std::sync::Arc::new(Memory::start().await);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let memory = memory.clone();
        tasks.push(tokio::spawn(async move { memory.user("race").await }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(memory.count("SELECT count(*) FROM users").await, 1);
    let memory = std::sync::Arc::into_inner(memory).unwrap();
    memory.stop().await;
}

#[tokio::test]
async fn users_are_listed_for_readers_of_everyone_and_filtered() {
    let memory = Memory::start().await;
    let first = memory.user("5001").await;
    let second = memory.user("5002").await;

    let listed = memory.root().get("/v1/users").await.expect(200);
    assert_eq!(
        ids(&listed),
        [second.as_str(), first.as_str()],
        "newest first"
    );
    assert_eq!(listed[0]["identities"], json!(["telegram:5002"]));

    let found = memory.root().get("/v1/users?q=5001").await.body;
    assert_eq!(ids(&found), [first.as_str()]);
    // LIKE's wildcards in the query are plain characters.
    let none = memory.root().get("/v1/users?q=%25").await.body;
    assert_eq!(none, json!([]));

    memory.root().get("/v1/users?limit=0").await.expect(422);
    let user_token = memory.plane.user_token(&first, &[]).await;
    let answer = memory
        .with_token(&user_token)
        .acting_for(&first)
        .get("/v1/users")
        .await;
    assert_eq!(
        answer.status, 403,
        "a user-scoped caller cannot list everyone"
    );
    memory.stop().await;
}
