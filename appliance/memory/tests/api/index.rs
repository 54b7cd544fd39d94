//! The vector index: what cannot be embedded now waits, with its reason, and is indexed later.

use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::helpers::memory::{Memory, embeddings_on};

#[tokio::test]
async fn items_stored_while_embeddings_are_down_wait_with_their_error_and_are_indexed_after_a_restart()
 {
    let nowhere = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nowhere_addr = nowhere.local_addr().unwrap();
    // Nothing answers there.
    drop(nowhere);
    let mut memory = Memory::start_with(|c| {
        c.swapper.listen = nowhere_addr;
        c.models.embedding_model = "minilm".into();
    })
    .await;
    let user = memory.user("7101").await;
    memory
        .root()
        .post(
            &format!("/v1/users/{user}/facts"),
            json!({"content": "allergic to peanuts"}),
        )
        .await
        .expect(201);
    let mut recorded = 0;
    for _ in 0..200 {
        recorded = memory
            .count("SELECT count(*) FROM index_state WHERE kind = 'fact' AND state = 'pending' AND attempts >= 1 AND error LIKE '%not reachable%'")
            .await;
        if recorded == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        recorded, 1,
        "still pending, with the attempt and its reason"
    );
    // Search still answers, by words.
    let hits = memory
        .root()
        .get(&format!("/v1/search?user_id={user}&q=peanuts"))
        .await
        .expect(200);
    assert_eq!(hits[0]["matched_by"], json!(["words"]));

    // The service goes down with the item unindexed and comes back with the swapper up: the
    // item is still due (made due now rather than after its backoff) and gets indexed.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let swapper_addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let swapper = embeddings_on(&memory.plane.config, listener, stop.clone()).await;
    memory
        .count("WITH due AS (UPDATE index_state SET next_attempt_at = now() RETURNING 1) SELECT count(*) FROM due")
        .await;
    memory
        .restart_with(|c| {
            c.swapper.listen = swapper_addr;
            c.models.embedding_model = "minilm".into();
        })
        .await;
    let status = memory
        .index_until("the fact indexed", |s| s.count("fact", "indexed") == 1)
        .await;
    assert_eq!(status.vectors.messages, 1);
    let hits = memory
        .root()
        .get(&format!("/v1/search?user_id={user}&q=nut%20allergy"))
        .await
        .body;
    assert_eq!(hits[0]["matched_by"], json!(["meaning"]), "{hits}");
    stop.cancel();
    swapper.await.unwrap();
    memory.stop().await;
}
