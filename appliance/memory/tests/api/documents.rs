//! Documents: chunked, indexed and found by meaning; bad ones store nothing.

use daarion_memory_client::{Document, DocumentWithChunks};
use serde_json::json;

use crate::helpers::memory::with_embeddings;

#[tokio::test]
async fn documents_are_chunked_indexed_and_found_and_bad_ones_store_nothing() {
    let (memory, stop, swapper) = with_embeddings().await;
    let user = memory.user("7301").await;
    let documents = format!("/v1/users/{user}/documents");

    let garden =
        "Tomatoes need six to eight hours of sun and deep watering twice a week. ".repeat(9);
    let bread =
        "Knead the dough for ten minutes, then let it rise until doubled in size. ".repeat(9);
    let text = format!("{garden}\n\n{bread}");
    let document: Document = memory
        .root()
        .post(&documents, json!({"title": "Notes", "content": text}))
        .await
        .expect_as(201);
    let chunks = document.chunks;
    assert!(chunks >= 2, "{document:?}");
    assert_eq!(document.bytes as usize, text.len());
    memory
        .index_until("every chunk indexed", |s| {
            s.count("chunk", "indexed") == chunks
        })
        .await;

    let listed: Vec<Document> = memory.root().get(&documents).await.expect_as(200);
    assert_eq!(listed[0].indexed, chunks, "{listed:?}");
    assert_eq!(listed[0].pending, 0);
    let one: DocumentWithChunks = memory
        .root()
        .get(&format!("/v1/documents/{}", document.id))
        .await
        .expect_as(200);
    assert_eq!(one.chunks.len() as i64, chunks);
    assert!(one.chunks.iter().all(|c| c.state == "indexed"));
    assert!(one.chunks[0].content.starts_with("Tomatoes"));

    // A paraphrase with no word of the bread chunk finds it by meaning.
    let hits = memory
        .root()
        .get(&format!(
            "/v1/search?user_id={user}&q=how%20should%20I%20bake%20a%20loaf"
        ))
        .await
        .body;
    assert_eq!(hits[0]["kind"], "chunk", "{hits}");
    assert!(
        hits[0]["content"].as_str().unwrap().contains("dough"),
        "{hits}"
    );
    assert!(
        hits[0]["matched_by"]
            .as_array()
            .unwrap()
            .contains(&json!("meaning"))
    );

    // Bad documents: refused, nothing stored.
    let before = memory.count("SELECT count(*) FROM chunks").await;
    for (body, expected) in [
        (json!({"title": "", "content": "x"}), 422),
        (json!({"title": "blank", "content": "   \n "}), 422),
        (
            json!({"title": "huge", "content": "y".repeat(3 * 1024 * 1024)}),
            413,
        ),
        (json!({"title": "t", "content": "x", "colour": "red"}), 422),
    ] {
        let refused = memory.root().post(&documents, body).await.expect(expected);
        assert!(refused["error"]["message"].is_string(), "{refused}");
    }
    memory
        .root()
        .post(
            "/v1/users/00000000-0000-7000-8000-000000000001/documents",
            json!({"title": "t", "content": "x"}),
        )
        .await
        .expect(404);
    assert_eq!(memory.count("SELECT count(*) FROM chunks").await, before);
    assert_eq!(memory.count("SELECT count(*) FROM documents").await, 1);

    // Another user's documents are not this caller's to read.
    let stranger = memory.user("7302").await;
    let token = memory.plane.user_token(&stranger, &[]).await;
    memory
        .with_token(&token)
        .acting_for(&stranger)
        .get(&documents)
        .await
        .expect(403);
    stop.cancel();
    swapper.await.unwrap();
    memory.stop().await;
}
