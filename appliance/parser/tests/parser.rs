//! The parser on the real stack (control plane, memory, NATS, the blob store, poppler): files
//! recorded through memory's API are read into chunks that say where they came from; the same
//! event twice adds nothing; an unreadable file fails with its reason and nothing of it is
//! searchable; a parser stopped mid-document is finished by the next one, nothing doubled.

mod helpers;

use daarion_bus::events::AttachmentCreated;
use daarion_bus::{Bus, Envelope};
use daarion_memory_client::{Attachment, AttachmentState};
use helpers::Stack;
use helpers::pdf::{page_text, text_pdf};

/// Publishes the attachment's `attachment.created` again, as a redelivery or a duplicate would.
async fn announce_again(stack: &Stack, a: &Attachment) {
    let bus = Bus::connect(&stack.config.bus, "parser-test")
        .await
        .unwrap();
    let event = AttachmentCreated {
        attachment_id: a.id,
        user_id: a.user_id,
        name: a.name.clone(),
        mime: a.mime.clone(),
        bytes: a.bytes as u64,
        sha256: a.sha256.clone(),
        format: a.format.clone(),
        attempt: a.attempt as u32,
        origin: None,
    };
    bus.publish(&Envelope::new(
        "attachment.created.pdf",
        "parser-test",
        event,
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn a_text_pdf_is_read_page_by_page_and_the_same_event_twice_adds_nothing() {
    let stack = Stack::start().await;
    let parser = stack.parser().await;
    let a = stack.upload("report.pdf", "pdf", text_pdf(3)).await;

    let parsed = stack.finished(a.id, 60).await;
    assert!(
        matches!(
            parsed.state,
            AttachmentState::Parsed | AttachmentState::Indexed
        ),
        "{parsed:?}"
    );
    assert_eq!(parsed.pages, Some(3));
    assert_eq!(parsed.error, None);
    for k in 1..=3 {
        let on_page = stack
            .chunks(
                &parsed,
                &format!("locator = '{{\"kind\":\"page\",\"page\":{k}}}'::jsonb"),
            )
            .await;
        assert_eq!(on_page, 1, "page {k}");
        let says = stack
            .chunks(&parsed, &format!("content LIKE '%{}%'", page_text(k)))
            .await;
        assert_eq!(says, 1, "page {k}'s text");
    }
    let before = stack.chunks(&parsed, "true").await;
    assert_eq!(before, 3);

    announce_again(&stack, &parsed).await;
    // Handled (and dropped) by the time a later file is parsed: each file is its own key, but
    // the consumer takes messages in stream order.
    let later = stack.upload("later.pdf", "pdf", text_pdf(1)).await;
    stack.finished(later.id, 60).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let again = stack.memory.attachment(a.id).await.unwrap();
    assert_eq!(stack.chunks(&again, "true").await, before);
    assert_eq!(again.state, parsed.state);
    assert_eq!(again.pages, Some(3));

    let jobs: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v1/jobs", parser.url))
        .bearer_auth(&stack.plane.root)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jobs, serde_json::json!([]), "nothing in hand once parsed");
    let anonymous = reqwest::get(format!("{}/v1/jobs", parser.url))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    parser.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn a_corrupt_pdf_fails_with_its_reason_and_nothing_of_it_is_searchable() {
    let stack = Stack::start().await;
    let parser = stack.parser().await;
    let mut broken = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R".to_vec();
    broken.extend(std::iter::repeat_n(b'\xff', 2000));
    let a = stack.upload("broken.pdf", "pdf", broken).await;

    let failed = stack.finished(a.id, 60).await;
    assert_eq!(failed.state, AttachmentState::Failed, "{failed:?}");
    let reason = failed.error.clone().unwrap_or_default();
    assert!(!reason.is_empty(), "a reason a person can read: {failed:?}");
    assert_eq!(stack.chunks(&failed, "true").await, 0);

    parser.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn a_parser_stopped_mid_document_is_finished_by_the_next_with_nothing_doubled() {
    // Read by OCR (about half a second a page): text layers come 25 pages a run, too fast
    // to stop midway.
    const PAGES: usize = 12;
    let stack = Stack::start().await;
    let first = stack.parser().await;
    let ocr = daarion_memory_client::ParseOptions {
        force_ocr: true,
        ..Default::default()
    };
    let a = stack
        .upload_with("long.pdf", "pdf", text_pdf(PAGES), ocr)
        .await;

    let midway = stack
        .until(a.id, 120, |a| {
            a.state == AttachmentState::Parsing && a.progress.is_some_and(|p| p.done >= 3)
                || a.state != AttachmentState::Received && a.state != AttachmentState::Parsing
        })
        .await;
    assert_eq!(
        midway.state,
        AttachmentState::Parsing,
        "read to the end before it could be stopped; make the document longer"
    );
    first.stop().await;
    let stopped = stack.memory.attachment(a.id).await.unwrap();
    assert_eq!(stopped.state, AttachmentState::Parsing, "{stopped:?}");
    let partial = stack.chunks(&stopped, "true").await;
    assert!(partial < PAGES as i64, "{partial} chunks before the stop");

    let second = stack.parser().await;
    let parsed = stack.finished(a.id, 180).await;
    assert!(
        matches!(
            parsed.state,
            AttachmentState::Parsed | AttachmentState::Indexed
        ),
        "{parsed:?}"
    );
    assert_eq!(parsed.pages, Some(PAGES as i32));
    assert_eq!(stack.chunks(&parsed, "true").await, PAGES as i64);
    let distinct_pages = stack
        .plane
        .count(&format!(
            "SELECT count(DISTINCT locator) FROM chunks WHERE document_id = '{}'",
            parsed.document_id.unwrap()
        ))
        .await;
    assert_eq!(distinct_pages, PAGES as i64);

    second.stop().await;
    stack.stop().await;
}

/// A read that keeps failing for a passing reason is retried until `bus.max_deliveries`; the
/// last try records the failure (retryable), so the attachment never stays `parsing` while its
/// message sits in the dead letters.
#[tokio::test]
async fn the_last_try_of_a_passing_failure_records_it_and_a_retry_then_reads_it() {
    let mut stack = Stack::start().await;
    stack.config.bus.max_deliveries = 1;
    let content = text_pdf(1);
    // Recorded before any parser runs; then its blob made unreadable (a directory in its
    // place: reading it is an I/O error, which a repaired disk would cure).
    let a = stack.upload("flaky.pdf", "pdf", content.clone()).await;
    let blob = stack
        .blobs
        .path(&daarion_blobs::Sha256Hex::parse(&a.sha256).unwrap())
        .expect("the tests' blob store is local");
    std::fs::remove_file(&blob).unwrap();
    std::fs::create_dir(&blob).unwrap();
    let parser = stack.parser().await;
    let failed = stack.finished(a.id, 60).await;
    assert_eq!(failed.state, AttachmentState::Failed, "{failed:?}");
    let reason = failed.error.clone().unwrap_or_default();
    assert!(reason.contains("gave up after 1 tries"), "{reason}");

    // The cause fixed, a retry reads it.
    std::fs::remove_dir(&blob).unwrap();
    std::fs::write(&blob, &content).unwrap();
    stack
        .memory
        .retry_attachment(a.id, &Default::default())
        .await
        .unwrap();
    let read = stack
        .until(a.id, 60, |a| {
            a.attempt == 2 && matches!(a.state, AttachmentState::Parsed | AttachmentState::Indexed)
        })
        .await;
    assert_eq!(read.pages, Some(1), "{read:?}");
    parser.stop().await;
    stack.stop().await;
}
