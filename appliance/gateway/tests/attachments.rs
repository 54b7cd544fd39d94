//! Files sent to the bot: the real gateway, ingest service, memory API, PostgreSQL, Redis and
//! NATS, with the local Bot API server serving `getFile` and the file. The test plays the
//! parser through memory's own parser routes (progress, sections, parsed, failed), so the
//! outcome events come from memory's outbox as in production.

mod helpers;

use std::time::Duration;

use daarion_bus::Envelope;
use daarion_bus::events::{AttachmentIndexed, AttachmentOrigin};
use daarion_ingest_client::{Attachment, AttachmentState, AttachmentsQuery, IngestClient, Origin};
use daarion_llm::testing::openai_answer;
use daarion_memory_client::{
    Locator, MemoryClient, NewSections, ParseDone, ParseFailed, ReportProgress, Section,
};
use helpers::{Gateway, text_update};
use serde_json::{Value, json};
use uuid::Uuid;

/// A small PDF with one page of text per entry: what ingest types as `pdf` and `pdftotext`
/// reads.
pub fn pdf(pages: &[&str]) -> Vec<u8> {
    daarion_formats::testing::text_pdf(pages)
}

static NEXT_MESSAGE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(5000);

/// A private message from user 7 in `chat` carrying `file` as a document.
fn document_update(chat: i64, file: Value) -> (Value, i64) {
    let mut update = text_update(chat, 7, "", false);
    let id = NEXT_MESSAGE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let message = update["message"].as_object_mut().unwrap();
    message.remove("text");
    message.insert("message_id".into(), json!(id));
    message.insert("document".into(), file);
    (update, id)
}

fn memory(gw: &Gateway) -> MemoryClient {
    MemoryClient::new(gw.stack.memory_url.clone(), gw.stack.plane.root.clone())
}

fn ingest(gw: &Gateway) -> IngestClient {
    IngestClient::new(
        format!("http://{}", gw.config.ingest.listen),
        Some(gw.stack.plane.root.clone()),
    )
}

/// Sends `bytes` as document `name` in `chat`; returns the message id carrying it.
async fn send_document(gw: &Gateway, chat: i64, name: &str, bytes: Vec<u8>) -> i64 {
    let size = bytes.len();
    let file_id = gw.telegram.add_file(bytes);
    let (update, id) = document_update(
        chat,
        json!({"file_id": file_id, "file_unique_id": "u", "file_name": name, "file_size": size}),
    );
    let (status, body) = gw.post(&update).await;
    assert_eq!(status, 200, "{body}");
    id
}

/// The attachment user 7 has under `name`, once ingest has it.
async fn attachment_named(gw: &Gateway, name: &str) -> Attachment {
    let user: Uuid = gw.stack.user("7").await.parse().unwrap();
    let query = AttachmentsQuery {
        user_id: Some(user),
        ..AttachmentsQuery::default()
    };
    for _ in 0..400 {
        let all = ingest(gw).attachments(&query).await.unwrap();
        if let Some(a) = all.into_iter().find(|a| a.name == name) {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no attachment {name}");
}

/// Memory's parser routes, as the parser calls them: the text of each page, then done.
async fn parse_as_the_parser(gw: &Gateway, a: &Attachment, pages: &[&str]) {
    let memory = memory(gw);
    let attempt = a.attempt;
    let total = u32::try_from(pages.len()).unwrap();
    memory
        .attachment_progress(
            a.id,
            &ReportProgress {
                attempt,
                done: 0,
                total: Some(total),
            },
        )
        .await
        .unwrap();
    let sections = pages
        .iter()
        .enumerate()
        .map(|(i, text)| Section {
            locator: Locator::Page {
                page: u32::try_from(i).unwrap() + 1,
            },
            headings: Vec::new(),
            text: (*text).to_owned(),
            ocr: false,
        })
        .collect();
    memory
        .attachment_sections(
            a.id,
            &NewSections {
                attempt,
                first_ordinal: 0,
                sections,
            },
        )
        .await
        .unwrap();
    memory
        .attachment_parsed(
            a.id,
            &ParseDone {
                attempt,
                pages: total,
            },
        )
        .await
        .unwrap();
}

/// The messages sent to `chat` containing `needle`, as the fake Bot API received them.
fn sent_containing(gw: &Gateway, chat: i64, needle: &str) -> Vec<Value> {
    gw.telegram
        .calls("sendMessage")
        .into_iter()
        .filter(|c| c.body["chat_id"].as_i64() == Some(chat))
        .filter(|c| c.body["text"].as_str().is_some_and(|t| t.contains(needle)))
        .map(|c| c.body)
        .collect()
}

#[tokio::test]
async fn a_document_is_kept_with_its_origin_told_once_when_read_and_cited_in_answers() {
    let gw = Gateway::start_ingest(Some("a")).await;
    let fake = gw.stack.fake().await;
    fake.always(openai_answer("It grew 12% (report.pdf, p. 3)."));
    let chat = 601;
    let pages = [
        "Introduction to the annual report",
        "Our team and our offices",
        "Revenue grew by twelve percent in the northern region",
    ];
    let message = send_document(&gw, chat, "report.pdf", pdf(&pages)).await;
    gw.until_shown_containing(chat, "Received, reading report.pdf…")
        .await;
    let received = &sent_containing(&gw, chat, "Received, reading")[0];
    assert_eq!(received["reply_parameters"]["message_id"], message);

    let a = attachment_named(&gw, "report.pdf").await;
    assert_eq!(a.format, "pdf");
    assert_eq!(
        a.origin,
        Some(Origin {
            channel: "telegram".into(),
            bot: Some("mainbot".into()),
            chat_id: Some(chat),
            message_id: Some(message),
        })
    );
    assert_eq!(
        ingest(&gw).content(a.id).await.unwrap().to_vec(),
        pdf(&pages),
        "the bytes arrived whole"
    );

    parse_as_the_parser(&gw, &a, &pages).await;
    // `attachment.indexed` as memory publishes it, twice (a redelivery, a second relay): one
    // reply. Memory's own, once its indexer is done, is the same outcome and is not told again.
    let bus = daarion_bus::Bus::connect(&gw.config.bus, "test")
        .await
        .unwrap();
    let indexed = AttachmentIndexed {
        attachment_id: a.id,
        user_id: a.user_id,
        document_id: Uuid::now_v7(),
        chunks: 3,
        name: a.name.clone(),
        format: a.format.clone(),
        attempt: 1,
        origin: Some(AttachmentOrigin {
            channel: "telegram".into(),
            bot: Some("mainbot".into()),
            chat_id: Some(chat),
            message_id: Some(message),
        }),
    };
    for _ in 0..2 {
        bus.publish(&Envelope::event("memory", indexed.clone()))
            .await
            .unwrap();
    }
    let told = "report.pdf: 3 pages read — ask me about it";
    gw.until_shown_containing(chat, told).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let replies = sent_containing(&gw, chat, told);
    assert_eq!(replies.len(), 1, "told once: {replies:?}");
    assert_eq!(replies[0]["reply_parameters"]["message_id"], message);

    // A question: the passage goes to the model with its source, and the model is asked to
    // name it.
    gw.message(chat, "revenue grew in the northern region?")
        .await;
    gw.until_shown_containing(chat, "It grew 12%").await;
    let prompt = fake.bodies().last().unwrap()["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        prompt.contains("[report.pdf, p. 3] Revenue grew by twelve percent"),
        "{prompt}"
    );
    assert!(prompt.contains("name the document"), "{prompt}");

    // The same file again: one attachment, and the user is told so.
    send_document(&gw, chat, "report.pdf", pdf(&pages)).await;
    gw.until_shown_containing(chat, "I already have report.pdf")
        .await;
    let user = a.user_id;
    let all = ingest(&gw)
        .attachments(&AttachmentsQuery {
            user_id: Some(user),
            ..AttachmentsQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    gw.stop().await;
}

#[tokio::test]
async fn too_large_files_are_refused_in_words_before_any_download() {
    let gw = Gateway::start_ingest(Some("a")).await;
    let chat = 602;
    let file_id = gw.telegram.add_file(b"small really".to_vec());
    let (update, _) = document_update(
        chat,
        json!({"file_id": file_id, "file_unique_id": "u", "file_name": "big.pdf", "file_size": 34 * 1024 * 1024}),
    );
    gw.post(&update).await;
    gw.until_shown_containing(
        chat,
        "This file is 34 MB; Telegram lets bots download at most 20 MB. Send a link or a smaller file.",
    )
    .await;
    assert!(gw.telegram.calls("getFile").is_empty(), "nothing fetched");
    assert!(sent_containing(&gw, chat, "Received").is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn files_that_cannot_be_read_are_told_why() {
    let gw = Gateway::start_ingest(Some("a")).await;
    let chat = 603;
    // Refused by ingest: its words reach the user.
    send_document(
        &gw,
        chat,
        "fake.pdf",
        b"just some words, no PDF at all".to_vec(),
    )
    .await;
    gw.until_shown_containing(chat, "I cannot take fake.pdf: ")
        .await;

    // Taken, then the parser gives up: memory's `attachment.failed` is told as a reply.
    let message = send_document(&gw, chat, "secret.pdf", pdf(&["locked away"])).await;
    let a = attachment_named(&gw, "secret.pdf").await;
    memory(&gw)
        .attachment_failed(
            a.id,
            &ParseFailed {
                attempt: a.attempt,
                reason: "encrypted PDF".into(),
                permanent: true,
            },
        )
        .await
        .unwrap();
    let told = "I could not read secret.pdf: encrypted PDF";
    gw.until_shown_containing(chat, told).await;
    assert_eq!(
        sent_containing(&gw, chat, told)[0]["reply_parameters"]["message_id"],
        message
    );
    gw.stop().await;
}

#[tokio::test]
async fn without_ingest_documents_are_declined_as_before() {
    let gw = Gateway::start(false, Some("a")).await;
    let chat = 604;
    send_document(&gw, chat, "report.pdf", pdf(&["x"])).await;
    gw.until_shown_containing(chat, "cannot take documents yet")
        .await;
    assert!(gw.telegram.calls("getFile").is_empty());
    gw.stop().await;
}

/// The real parser in-process on the gateway's configuration (the same blob store as ingest).
async fn start_parser(gw: &Gateway) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = gw.config.clone();
    config.parser.enabled = true;
    config.parser.listen = listener.local_addr().unwrap();
    let url = format!("http://{}", config.parser.listen);
    let task = tokio::spawn(daarion_parser::run(config, listener, gw.shutdown.clone()));
    for _ in 0..400 {
        if let Ok(r) = gw.stack.http.get(format!("{url}/health")).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            !task.is_finished(),
            "the parser did not start: {:?}",
            task.await
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the parser did not start");
}

#[tokio::test]
async fn end_to_end_a_pdf_is_read_by_the_parser_and_answers_cite_its_page() {
    let gw = Gateway::start_ingest(Some("a")).await;
    start_parser(&gw).await;
    let fake = gw.stack.fake().await;
    fake.always(openai_answer("Twelve percent (budget.pdf, p. 2)."));
    let chat = 605;
    let message = send_document(
        &gw,
        chat,
        "budget.pdf",
        pdf(&[
            "Contents and foreword",
            "Spending on schools rose by twelve percent",
        ]),
    )
    .await;
    gw.until_shown_containing(chat, "Received, reading budget.pdf…")
        .await;
    let a = attachment_named(&gw, "budget.pdf").await;
    // Read by the parser: page by page, with the page on every chunk.
    let mut read = a.clone();
    for _ in 0..600 {
        read = ingest(&gw).attachment(a.id).await.unwrap();
        if matches!(
            read.state,
            AttachmentState::Parsed | AttachmentState::Indexed | AttachmentState::Failed
        ) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        matches!(
            read.state,
            AttachmentState::Parsed | AttachmentState::Indexed
        ),
        "{read:?}"
    );
    assert_eq!(read.pages, Some(2));
    // Told once memory's indexer has made every chunk searchable by meaning; where this stack
    // has no embedder the attachment stays `parsed` (searchable by words) and nothing is told.
    if read.state == AttachmentState::Indexed
        || tokio::time::timeout(Duration::from_secs(20), async {
            while ingest(&gw).attachment(a.id).await.unwrap().state != AttachmentState::Indexed {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await
        .is_ok()
    {
        let told = "budget.pdf: 2 pages read — ask me about it";
        gw.until_shown_containing(chat, told).await;
        assert_eq!(
            sent_containing(&gw, chat, told)[0]["reply_parameters"]["message_id"],
            message
        );
    }

    gw.message(chat, "spending on schools rose").await;
    gw.until_shown_containing(chat, "Twelve percent").await;
    let prompt = fake.bodies().last().unwrap()["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        prompt.contains("[budget.pdf, p. 2] Spending on schools rose by twelve percent"),
        "{prompt}"
    );
    gw.stop().await;
}
