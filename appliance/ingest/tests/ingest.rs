//! Ingest on the real stack: the control plane and the memory service in-process on the real
//! PostgreSQL, Redis and NATS (each test its own schema and prefixes), ingest in front of them
//! with its blob store in the test's own directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use daarion_control_plane::testing::Plane;
use daarion_ingest_client::IngestClient;
use daarion_memory_client::MemoryClient;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The limit the tests run with: small, so that "over the limit" is cheap to send.
const MAX: u64 = 64 * 1024;

struct Stack {
    plane: Plane,
    url: String,
    blobs: PathBuf,
    memory: MemoryClient,
    http: reqwest::Client,
    shutdown: CancellationToken,
}

async fn wait_ready(http: &reqwest::Client, url: &str) {
    for _ in 0..400 {
        if let Ok(r) = http.get(format!("{url}/ready")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{url} did not become ready");
}

impl Stack {
    async fn start() -> Stack {
        let plane = Plane::start().await;
        let http = reqwest::Client::new();
        let shutdown = CancellationToken::new();
        let mut config = plane.config.clone();

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        config.memory.listen = listener.local_addr().unwrap();
        let memory_url = format!("http://{}", config.memory.listen);
        tokio::spawn(daarion_memory::run(
            config.clone(),
            listener,
            shutdown.clone(),
        ));
        wait_ready(&http, &memory_url).await;

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        config.ingest.enabled = true;
        config.ingest.listen = listener.local_addr().unwrap();
        config.ingest.max_bytes = MAX;
        let blobs = config.general.data_dir.join("blobs");
        let url = format!("http://{}", config.ingest.listen);
        tokio::spawn(daarion_ingest::run(config, listener, shutdown.clone()));
        wait_ready(&http, &url).await;
        Stack {
            memory: MemoryClient::new(memory_url, plane.root.clone()),
            plane,
            url,
            blobs,
            http,
            shutdown,
        }
    }

    async fn user(&self, name: &str) -> Uuid {
        let external = format!("{name}-{}", Uuid::new_v4().simple());
        self.memory.resolve("test", &external, name).await.unwrap()
    }

    fn client(&self, token: &str) -> IngestClient {
        IngestClient::new(self.url.clone(), Some(token.to_owned()))
    }

    /// A multipart upload as a browser sends it.
    async fn multipart(&self, token: &str, user: Uuid, name: &str, bytes: Vec<u8>) -> (u16, Value) {
        let form = Form::new()
            .text("user_id", user.to_string())
            .part("file", Part::bytes(bytes).file_name(name.to_owned()));
        let response = self
            .http
            .post(format!("{}/v1/attachments", self.url))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The blobs on disk.
    fn blob_count(&self) -> usize {
        fn walk(dir: &Path) -> usize {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return 0;
            };
            entries
                .flatten()
                .map(|e| {
                    if e.file_type().unwrap().is_dir() {
                        walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        }
        walk(&self.blobs.join("sha256"))
    }

    fn temporaries(&self) -> usize {
        std::fs::read_dir(self.blobs.join("tmp")).map_or(0, |d| d.count())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn text(n: usize) -> Vec<u8> {
    format!("Notes {}\n", Uuid::new_v4()).repeat(n).into_bytes()
}

#[tokio::test]
async fn uploads_are_recorded_once_per_user_and_stored_once() {
    let s = Stack::start().await;
    let root = s.plane.root.clone();
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let body = text(20);

    let (status, first) = s.multipart(&root, ann, "notes.txt", body.clone()).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["state"], "received");
    assert_eq!(first["format"], "text", "{first}");
    assert_eq!(first["name"], "notes.txt");
    assert_eq!(first["bytes"], body.len());

    // The same content raw, by the client the gateway uses: the same attachment.
    let again = s
        .client(&root)
        .upload(ann, "notes.txt", body.clone(), None)
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(
        again.attachment.id.to_string(),
        first["id"].as_str().unwrap()
    );

    // Another user: a record of their own, the bytes kept once.
    let bobs = s
        .client(&root)
        .upload(bob, "мої нотатки.txt", body.clone(), None)
        .await
        .unwrap();
    assert!(bobs.created);
    assert_eq!(bobs.attachment.name, "мої нотатки.txt");
    assert_ne!(bobs.attachment.id, again.attachment.id);
    assert_eq!(s.blob_count(), 1);
    assert_eq!(s.temporaries(), 0);

    // Read back as stored.
    let content = s.client(&root).content(bobs.attachment.id).await.unwrap();
    assert_eq!(content.as_ref(), body.as_slice());
    let listed = s
        .client(&root)
        .attachments(&daarion_ingest_client::AttachmentsQuery {
            user_id: Some(ann),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);

    // Deleting one reference keeps the blob; deleting the last removes it.
    let deleted = s.client(&root).delete(again.attachment.id).await.unwrap();
    assert!(!deleted.blob_unreferenced);
    assert_eq!(s.blob_count(), 1);
    let deleted = s.client(&root).delete(bobs.attachment.id).await.unwrap();
    assert!(deleted.blob_unreferenced);
    assert_eq!(s.blob_count(), 0);
}

#[tokio::test]
async fn refused_files_leave_nothing_behind() {
    let s = Stack::start().await;
    let root = s.plane.root.clone();
    let ann = s.user("ann").await;
    let elf = [b"\x7fELF\x02\x01\x01\x00".as_slice(), &[0u8; 512]].concat();
    for (name, bytes, status, says) in [
        (
            "big.txt",
            vec![b'a'; MAX as usize + 1],
            413,
            "limit of 65536 bytes",
        ),
        ("report.pdf", text(5), 415, "not a"),
        ("tool", elf, 415, "accepted"),
    ] {
        let (got, body) = s.multipart(&root, ann, name, bytes.clone()).await;
        assert_eq!(got, status, "{name} multipart: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{name}: {message}");

        let raw = s
            .client(&root)
            .upload(ann, name, bytes, None)
            .await
            .unwrap_err();
        assert_eq!(raw.status(), Some(status), "{name} raw: {raw}");
        assert_eq!(s.blob_count(), 0, "{name} left a blob");
        assert_eq!(s.temporaries(), 0, "{name} left a temporary file");
    }
}

#[tokio::test]
async fn a_token_confined_to_one_user_adds_only_for_that_user() {
    let s = Stack::start().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let anns = s.plane.user_token(&ann.to_string(), &[]).await;

    let (status, body) = s.multipart(&anns, bob, "x.txt", text(3)).await;
    assert_eq!(status, 403, "{body}");
    let err = s
        .client(&anns)
        .upload(bob, "x.txt", text(3), None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    assert_eq!(s.blob_count(), 0);

    let mine = s
        .client(&anns)
        .upload(ann, "x.txt", text(3), None)
        .await
        .unwrap();
    assert!(mine.created);
    // Bob's records stay out of reach; no credential at all gets nothing.
    let err = s
        .client(&anns)
        .attachments(&daarion_ingest_client::AttachmentsQuery {
            user_id: Some(bob),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    let nobody = IngestClient::new(s.url.clone(), None);
    let err = nobody
        .upload(ann, "x.txt", text(3), None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
}

#[tokio::test]
async fn the_openapi_document_lists_the_routes() {
    let s = Stack::start().await;
    let doc: Value = s
        .http
        .get(format!("{}/openapi.json", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/v1/attachments",
        "/v1/attachments/{id}",
        "/v1/attachments/{id}/retry",
        "/v1/attachments/{id}/content",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
}
