//! Attachments: one record per user and content, moved through its states by the parser's
//! calls (an earlier attempt's refused), its text searchable only once parsed, every change
//! announced on the bus in order, and deletion taking everything with it (audited).

use std::time::Duration;

use daarion_memory_client::{Attachment, AttachmentState, Created, Deleted, DocumentWithChunks};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::memory::{Memory, with_embeddings};

/// A hex SHA-256 (any 64 hex digits: the memory API records, it does not hash).
fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn new_attachment(user: &str, sha256: &str) -> Value {
    json!({
        "user_id": user, "name": "report.pdf", "format": "pdf", "mime": "application/pdf",
        "bytes": 2048, "sha256": sha256,
        "origin": {"channel": "telegram", "bot": "main", "chat_id": 42, "message_id": 7}
    })
}

async fn create(memory: &Memory, user: &str, sha256: &str) -> Attachment {
    let created: Created = memory
        .root()
        .post("/v1/attachments", new_attachment(user, sha256))
        .await
        .expect_as(201);
    assert!(created.created);
    created.attachment
}

/// Two pages with words nothing else in the test has.
fn pages(attempt: i32) -> Value {
    json!({"attempt": attempt, "first_ordinal": 0, "sections": [
        {"locator": {"kind": "page", "page": 1}, "headings": ["Budget"],
         "text": "The zanzibarian budget grew by nine percent this year."},
        {"locator": {"kind": "page", "page": 2}, "text": "Quarterly xylophone purchases were paused.", "ocr": true}
    ]})
}

/// What the parser does with attachment `base` (`/v1/attachments/{id}`), first attempt: both
/// pages' sections, then `parsed`.
async fn read_by_parser(memory: &Memory, base: &str) {
    memory
        .root()
        .post(&format!("{base}/sections"), pages(1))
        .await
        .expect(200);
    memory
        .root()
        .post(&format!("{base}/parsed"), json!({"attempt": 1, "pages": 2}))
        .await
        .expect(200);
}

async fn words(memory: &Memory, user: &str, q: &str) -> Value {
    memory
        .root()
        .get(&format!("/v1/search?user_id={user}&q={q}"))
        .await
        .expect(200)
}

#[tokio::test]
async fn one_record_per_user_and_content_and_bad_input_is_a_422() {
    let memory = Memory::start().await;
    let ann = memory.user("8101").await;
    let bob = memory.user("8102").await;

    let first = create(&memory, &ann, &sha(1)).await;
    assert_eq!(first.state, AttachmentState::Received);
    assert_eq!(first.attempt, 1);
    assert_eq!(first.origin.as_ref().unwrap().chat_id, Some(42));
    let again: Created = memory
        .root()
        .post("/v1/attachments", new_attachment(&ann, &sha(1)))
        .await
        .expect_as(200);
    assert!(!again.created);
    assert_eq!(again.attachment.id, first.id);
    // The same content from another user is that user's own record.
    let bobs = create(&memory, &bob, &sha(1)).await;
    assert_ne!(bobs.id, first.id);
    assert_eq!(
        memory
            .count("SELECT count(*) FROM attachments WHERE sha256 = repeat('01', 32)")
            .await,
        2
    );

    let listed: Vec<Attachment> = memory
        .root()
        .get(&format!("/v1/attachments?user_id={ann}&state=received"))
        .await
        .expect_as(200);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, first.id);
    let none: Vec<Attachment> = memory
        .root()
        .get(&format!("/v1/attachments?user_id={ann}&state=parsed"))
        .await
        .expect_as(200);
    assert!(none.is_empty());

    let before = memory.count("SELECT count(*) FROM attachments").await;
    for (change, field) in [
        (json!({"name": "bad\u{0}name"}), "name"),
        (json!({"name": "  "}), "name"),
        (json!({"format": "exe"}), "format"),
        (json!({"sha256": "abc"}), "sha256"),
        (json!({"sha256": "z".repeat(64)}), "sha256"),
        (json!({"bytes": 0}), "bytes"),
        (json!({"colour": "red"}), "colour"),
    ] {
        let mut body = new_attachment(&ann, &sha(9));
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let refused = memory
            .root()
            .post("/v1/attachments", body)
            .await
            .expect(422);
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field),
            "{field}: {refused}"
        );
    }
    assert_eq!(
        memory.count("SELECT count(*) FROM attachments").await,
        before
    );
    memory.stop().await;
}

#[tokio::test]
async fn a_confined_caller_reaches_only_its_own_users_attachments() {
    let memory = Memory::start().await;
    let ann = memory.user("8201").await;
    let bob = memory.user("8202").await;
    let bobs = create(&memory, &bob, &sha(2)).await;
    let as_ann = memory.plane.user_token(&ann, &[]).await;
    let path = format!("/v1/attachments/{}", bobs.id);

    memory.with_token(&as_ann).get(&path).await.expect(403);
    memory.with_token(&as_ann).delete(&path).await.expect(403);
    memory
        .with_token(&as_ann)
        .post(&format!("{path}/retry"), json!({}))
        .await
        .expect(403);
    memory
        .with_token(&as_ann)
        .get(&format!("/v1/attachments?user_id={bob}"))
        .await
        .expect(403);
    memory
        .with_token(&as_ann)
        .post("/v1/attachments", new_attachment(&bob, &sha(3)))
        .await
        .expect(403);
    // Its own: created, listed (without naming the user), read.
    let own: Created = memory
        .with_token(&as_ann)
        .post("/v1/attachments", new_attachment(&ann, &sha(3)))
        .await
        .expect_as(201);
    let listed: Vec<Attachment> = memory
        .with_token(&as_ann)
        .get("/v1/attachments")
        .await
        .expect_as(200);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, own.attachment.id);
    memory
        .with_token(&as_ann)
        .get(&format!("/v1/attachments/{}", own.attachment.id))
        .await
        .expect(200);
    // Bob's is still there.
    memory.root().get(&path).await.expect(200);
    memory.stop().await;
}

#[tokio::test]
async fn text_is_searchable_only_once_parsed_and_sections_twice_add_nothing() {
    let memory = Memory::start().await;
    let ann = memory.user("8301").await;
    let a = create(&memory, &ann, &sha(4)).await;
    let base = format!("/v1/attachments/{}", a.id);

    let progressing: Attachment = memory
        .root()
        .post(
            &format!("{base}/progress"),
            json!({"attempt": 1, "done": 1, "total": 2}),
        )
        .await
        .expect_as(200);
    assert_eq!(progressing.state, AttachmentState::Parsing);
    assert_eq!(progressing.progress.unwrap().total, Some(2));
    let once: Attachment = memory
        .root()
        .post(&format!("{base}/sections"), pages(1))
        .await
        .expect_as(200);
    let twice: Attachment = memory
        .root()
        .post(&format!("{base}/sections"), pages(1))
        .await
        .expect_as(200);
    assert_eq!(once.chunks, 2);
    assert_eq!(twice.chunks, 2, "a redelivered batch adds nothing");
    assert_eq!(
        words(&memory, &ann, "zanzibarian").await,
        json!([]),
        "nothing partial is searchable"
    );

    let parsed: Attachment = memory
        .root()
        .post(&format!("{base}/parsed"), json!({"attempt": 1, "pages": 2}))
        .await
        .expect_as(200);
    assert_eq!(parsed.state, AttachmentState::Parsed);
    assert_eq!(parsed.pages, Some(2));
    let hits = words(&memory, &ann, "zanzibarian").await;
    assert_eq!(hits[0]["kind"], "chunk", "{hits}");
    assert_eq!(hits[0]["citation"]["title"], "report.pdf", "{hits}");
    assert_eq!(
        hits[0]["citation"]["locator"],
        json!({"kind": "page", "page": 1})
    );
    assert_eq!(hits[0]["citation"]["headings"], json!(["Budget"]));
    assert_eq!(hits[0]["citation"]["attachment_id"], json!(a.id));
    let hits = words(&memory, &ann, "xylophone").await;
    assert_eq!(hits[0]["citation"]["locator"]["page"], 2, "{hits}");
    // The document shows each chunk's place: the admin UI's text page by page.
    let document: DocumentWithChunks = memory
        .root()
        .get(&format!("/v1/documents/{}", parsed.document_id.unwrap()))
        .await
        .expect_as(200);
    let places: Vec<_> = document
        .chunks
        .iter()
        .map(|c| (c.locator.as_ref().map(|l| l.cite()), c.headings.clone()))
        .collect();
    assert_eq!(
        places,
        [
            (Some("p. 1".to_owned()), vec!["Budget".to_owned()]),
            (Some("p. 2".to_owned()), vec![])
        ]
    );
    // Done is done: more sections or a failure now are conflicts; `parsed` again is harmless.
    memory
        .root()
        .post(&format!("{base}/sections"), pages(1))
        .await
        .expect(409);
    memory
        .root()
        .post(
            &format!("{base}/failed"),
            json!({"attempt": 1, "reason": "late"}),
        )
        .await
        .expect(409);
    memory
        .root()
        .post(&format!("{base}/parsed"), json!({"attempt": 1, "pages": 2}))
        .await
        .expect(200);
    memory.stop().await;
}

#[tokio::test]
async fn failure_drops_the_text_and_a_retry_makes_the_old_attempt_stale() {
    let memory = Memory::start().await;
    let ann = memory.user("8401").await;
    let a = create(&memory, &ann, &sha(5)).await;
    let base = format!("/v1/attachments/{}", a.id);
    memory
        .root()
        .post(&format!("{base}/sections"), pages(1))
        .await
        .expect(200);
    let failed: Attachment = memory
        .root()
        .post(
            &format!("{base}/failed"),
            json!({"attempt": 1, "reason": "encrypted PDF", "permanent": true}),
        )
        .await
        .expect_as(200);
    assert_eq!(failed.state, AttachmentState::Failed);
    assert_eq!(failed.error.as_deref(), Some("encrypted PDF"));
    assert_eq!((failed.chunks, failed.document_id), (0, None));
    let user_chunks = format!("SELECT count(*) FROM chunks WHERE user_id = '{ann}'");
    assert_eq!(memory.count(&user_chunks).await, 0);

    let retried: Attachment = memory
        .root()
        .post(
            &format!("{base}/retry"),
            json!({"options": {"force_ocr": true}}),
        )
        .await
        .expect_as(200);
    assert_eq!(retried.state, AttachmentState::Received);
    assert_eq!(retried.attempt, 2);
    assert!(retried.options.force_ocr);
    assert_eq!(retried.error, None);
    // The first attempt's parser, still at work somewhere, is told no at every step.
    for (step, body) in [
        ("progress", json!({"attempt": 1, "done": 1})),
        ("sections", pages(1)),
        ("parsed", json!({"attempt": 1, "pages": 2})),
        ("failed", json!({"attempt": 1, "reason": "x"})),
    ] {
        let refused = memory
            .root()
            .post(&format!("{base}/{step}"), body)
            .await
            .expect(409);
        assert!(refused["error"]["message"].is_string(), "{refused}");
    }
    assert_eq!(memory.count(&user_chunks).await, 0);
    memory
        .root()
        .post(&format!("{base}/sections"), pages(2))
        .await
        .expect(200);
    assert_eq!(memory.count(&user_chunks).await, 2);
    memory.stop().await;
}

#[tokio::test]
async fn delete_takes_the_text_with_it_says_whether_the_blob_is_free_and_is_audited() {
    let memory = Memory::start().await;
    let ann = memory.user("8501").await;
    let bob = memory.user("8502").await;
    let anns = create(&memory, &ann, &sha(6)).await;
    let bobs = create(&memory, &bob, &sha(6)).await;
    let base = format!("/v1/attachments/{}", anns.id);
    read_by_parser(&memory, &base).await;

    let deleted: Deleted = memory.root().delete(&base).await.expect_as(200);
    assert!(!deleted.blob_unreferenced, "Bob still has the same content");
    memory.root().get(&base).await.expect(404);
    for table in ["chunks", "documents"] {
        let sql = format!("SELECT count(*) FROM {table} WHERE user_id = '{ann}'");
        assert_eq!(memory.count(&sql).await, 0, "{table}");
    }
    assert_eq!(
        memory
            .count(&format!(
                "SELECT count(*) FROM index_state WHERE user_id = '{ann}'"
            ))
            .await,
        0
    );
    assert_eq!(words(&memory, &ann, "zanzibarian").await, json!([]));
    let last: Deleted = memory
        .root()
        .delete(&format!("/v1/attachments/{}", bobs.id))
        .await
        .expect_as(200);
    assert!(last.blob_unreferenced);

    let audit = memory
        .poll_until("/v1/audit?action=attachment.delete", |b| {
            b.as_array().is_some_and(|a| a.len() == 2)
        })
        .await;
    let audited = audit.as_array().unwrap();
    assert_eq!(audited.len(), 2, "{audit}");
    assert!(
        audited
            .iter()
            .any(|r| r["target"] == format!("attachment:{}", anns.id)),
        "{audit}"
    );
    memory.stop().await;
}

/// Attachment events on the bus, as they arrive, until `n` are in.
async fn events(sub: &mut async_nats::Subscriber, n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    while got.len() < n {
        let message = tokio::time::timeout(Duration::from_secs(30), sub.next())
            .await
            .unwrap_or_else(|_| panic!("only {} events: {got:?}", got.len()))
            .unwrap();
        got.push(serde_json::from_slice::<Value>(&message.payload).unwrap());
    }
    got
}

#[tokio::test]
async fn parsed_then_indexed_when_every_chunk_is_and_the_bus_hears_it_in_order() {
    let (memory, stop, swapper) = with_embeddings().await;
    let bus = &memory.plane.bus.bus;
    let mut sub = bus
        .client()
        .subscribe(bus.naming().subject("attachment.>"))
        .await
        .unwrap();
    let ann = memory.user("8601").await;
    let a = create(&memory, &ann, &sha(7)).await;
    let base = format!("/v1/attachments/{}", a.id);
    // The chunks may be indexed before the parser is done; only `parsed` lets the state move.
    read_by_parser(&memory, &base).await;
    let indexed = memory.poll_until(&base, |b| b["state"] == "indexed").await;
    assert_eq!(indexed["state"], "indexed", "{indexed}");
    assert_eq!(indexed["indexed"], 2);

    let got = events(&mut sub, 3).await;
    let types: Vec<&str> = got.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "attachment.created.pdf",
            "attachment.parsed",
            "attachment.indexed"
        ]
    );
    for event in &got {
        assert_eq!(event["payload"]["attachment_id"], json!(a.id));
        assert_eq!(event["payload"]["attempt"], 1);
        assert_eq!(event["payload"]["origin"]["chat_id"], 42);
    }
    assert_eq!(got[1]["payload"]["pages"], 2);
    assert_eq!(got[2]["payload"]["chunks"], 2);

    // Found by meaning too, and only the ready text: a second attachment still being read
    // is indexed (its vectors exist) but never an answer.
    let b = create(&memory, &ann, &sha(8)).await;
    memory
        .root()
        .post(
            &format!("/v1/attachments/{}/sections", b.id),
            json!({"attempt": 1, "first_ordinal": 0, "sections": [
                {"locator": {"kind": "whole"}, "text": "The zanzibarian budget was cut in half."}
            ]}),
        )
        .await
        .expect(200);
    memory
        .index_until("the unfinished attachment's chunk indexed", |s| {
            s.count("chunk", "indexed") == 3
        })
        .await;
    let hits = memory
        .root()
        .get(&format!(
            "/v1/search?user_id={ann}&q=how%20did%20spending%20change"
        ))
        .await
        .expect(200);
    let ids: Vec<&str> = hits
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["kind"] == "chunk")
        .map(|h| h["citation"]["attachment_id"].as_str().unwrap())
        .collect();
    assert!(!ids.is_empty(), "{hits}");
    assert!(ids.iter().all(|id| *id == a.id.to_string()), "{hits}");

    stop.cancel();
    swapper.await.unwrap();
    memory.stop().await;
}
