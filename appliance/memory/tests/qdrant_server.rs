//! The memory API's vector tests once more, with `memory.qdrant.url` pointing at the Qdrant
//! server `DAARION_TEST_QDRANT_URL` names (`tests/setup.sh` starts it): messages, facts and
//! chunks indexed and found by hybrid search, scopes held, the index surviving a restart. The
//! test files are the API suite's own, unchanged; only the helpers' `vectors` module differs
//! (`helpers/qdrant.rs`: a collection prefix per service, dropped when it stops). Under `CI=true`
//! a missing server fails; outside CI the tests fall back to the embedded engine and say so.

mod helpers {
    // The API suite's helpers; each test binary uses a different part of them.
    #![allow(dead_code)]
    pub mod memory;
    #[path = "qdrant.rs"]
    pub mod vectors;
}

#[path = "api/documents.rs"]
mod documents;
#[path = "api/index.rs"]
mod index;
#[path = "api/search.rs"]
mod search;

use daarion_vectors::{Collection, VectorStore as _};
use serde_json::json;

/// The tests above would pass on the embedded engine too: this one shows the vectors are on the
/// server, under the service's prefix, and only there.
#[tokio::test]
async fn the_vectors_are_on_the_server() {
    let (memory, stop, swapper) = helpers::memory::with_embeddings().await;
    let user = memory.user("7401").await;
    memory
        .root()
        .post(
            &format!("/v1/users/{user}/facts"),
            json!({"content": "keeps bees on the roof"}),
        )
        .await
        .expect(201);
    memory
        .index_until("the fact indexed", |s| s.count("fact", "indexed") == 1)
        .await;
    if let Some(server) = memory.vectors.server() {
        let user = user.parse().unwrap();
        assert_eq!(
            server
                .count(Collection::Messages, Some(user))
                .await
                .unwrap(),
            1
        );
        assert!(
            !memory
                .plane
                .config
                .general
                .data_dir
                .join("vectors")
                .exists(),
            "no embedded engine was opened"
        );
    }
    stop.cancel();
    swapper.await.unwrap();
    memory.stop().await;
}
