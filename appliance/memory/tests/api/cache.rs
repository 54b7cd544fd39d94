//! Hot reads go through Redis, every write drops what it changed at once, and without Redis
//! the same reads are answered from PostgreSQL.

use daarion_memory_client::{Fact, Session};
use serde_json::json;

use crate::helpers::memory::{Memory, strings};

#[tokio::test]
async fn hot_reads_are_cached_dropped_on_write_and_work_without_redis() {
    let memory = Memory::start().await;
    let ann = memory.user("cache-ann").await;
    let root = memory.root();
    let redis = redis::Client::open(memory.plane.config.redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let prefix = memory.plane.config.redis.key_prefix.clone();
    let cached = |key: String| {
        let mut redis = redis.clone();
        async move {
            redis::cmd("EXISTS")
                .arg(key)
                .query_async::<bool>(&mut redis)
                .await
                .unwrap()
        }
    };

    // Facts: the read fills the cache, a write drops it, a supersede shows at once.
    let facts = format!("/v1/users/{ann}/facts");
    root.post(&facts, json!({"content": "likes tea"})).await;
    let current = root.get(&facts).await.body;
    assert_eq!(current.as_array().unwrap().len(), 1);
    let facts_key = format!("{prefix}memory:facts:{ann}");
    assert!(cached(facts_key.clone()).await, "the read filled the cache");
    let fact: Fact = root
        .post(&facts, json!({"content": "lives in Lviv"}))
        .await
        .expect_as(201);
    assert!(!cached(facts_key.clone()).await, "the write dropped it");
    let current = root.get(&facts).await.body;
    assert_eq!(current.as_array().unwrap().len(), 2);
    root.post(
        &format!("/v1/facts/{}/supersede", fact.id),
        json!({"content": "lives in Kyiv", "reason": "moved"}),
    )
    .await;
    let current = root.get(&facts).await.body;
    assert_eq!(
        strings(&current, "content"),
        ["likes tea", "lives in Kyiv"],
        "superseded at once, not after a TTL"
    );

    // History: a smaller page from the cached one, and a new message shows at once.
    let session: Session = root
        .post("/v1/sessions", json!({"user_id": ann, "agent_id": "a"}))
        .await
        .expect_as(201);
    let messages = format!("/v1/sessions/{}/messages", session.id);
    for text in ["one", "two"] {
        root.post(&messages, json!({"role": "user", "content": text}))
            .await;
    }
    let history = root.get(&format!("{messages}?limit=100")).await.body;
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert!(cached(format!("{prefix}memory:history:{}", session.id)).await);
    let last = root.get(&format!("{messages}?limit=1")).await.body;
    assert_eq!(
        last[0]["content"], "two",
        "a smaller page from the cached one"
    );
    root.post(&messages, json!({"role": "assistant", "content": "three"}))
        .await;
    let history = root.get(&messages).await.body;
    assert_eq!(strings(&history, "content"), ["one", "two", "three"]);

    // Every turn resolves its sender, reads the profile and opens the session: all cached.
    let resolve = json!({"channel": "telegram", "external_id": "cache-ann", "display_name": "x"});
    let again = root
        .post("/v1/identities/resolve", resolve)
        .await
        .expect(200);
    assert_eq!(again, json!({"user_id": ann, "created": false}));
    assert!(cached(format!("{prefix}memory:identity:telegram:cache-ann")).await);
    let profile = root.get(&format!("/v1/users/{ann}")).await.body;
    assert_eq!(profile["user"]["display_name"], "cache-ann");
    assert!(cached(format!("{prefix}memory:user:{ann}")).await);
    let cached_profile = root.get(&format!("/v1/users/{ann}")).await.body;
    assert_eq!(cached_profile, profile);
    let open = json!({"user_id": ann, "agent_id": "helper", "chat": "tg:1"});
    let first = root.post("/v1/sessions/open", open.clone()).await.body;
    let open_key = format!("{prefix}memory:open:{ann}:6:helper:tg:1");
    assert!(cached(open_key.clone()).await);
    let same = root.post("/v1/sessions/open", open.clone()).await.body;
    assert_eq!(same["id"], first["id"]);
    // Ending it drops the cached one: the next open is a new session, at once.
    root.post(
        &format!("/v1/sessions/{}/end", first["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert!(!cached(open_key).await);
    let next = root.post("/v1/sessions/open", open).await.body;
    assert_ne!(next["id"], first["id"]);
    assert!(next["ended_at"].is_null());
    memory.stop().await;

    // Redis gone: the same reads, only slower.
    let memory = Memory::start_with(|c| c.redis.url = "redis://127.0.0.1:1/0".into()).await;
    let bob = memory.user("cache-bob").await;
    let facts = format!("/v1/users/{bob}/facts");
    memory
        .root()
        .post(&facts, json!({"content": "likes coffee"}))
        .await
        .expect(201);
    let current = memory.root().get(&facts).await.expect(200);
    assert_eq!(current[0]["content"], "likes coffee");
    memory.stop().await;
}
