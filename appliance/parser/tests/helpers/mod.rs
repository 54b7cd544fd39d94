//! The real stack in-process for the parser's tests: a control plane (tokens, and the test's
//! own schema, key prefix and subject prefix), the memory service, the blob store both ingest
//! and the parser open from the same configuration, and parsers that can be started and
//! stopped mid-document.

#![allow(dead_code)]

pub mod media;
pub mod pdf;
pub mod swapper;

use std::time::Duration;

use daarion_blobs::BlobStore;
use daarion_control_plane::testing::Plane;
use daarion_memory_client::{Attachment, AttachmentState, MemoryClient, NewAttachment};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct Stack {
    pub plane: Plane,
    pub config: daarion_config::Config,
    pub memory: MemoryClient,
    memory_stop: CancellationToken,
    memory_task: tokio::task::JoinHandle<Result<(), daarion_memory::ServiceError>>,
    pub blobs: BlobStore,
    pub user: Uuid,
}

/// A running parser; [`Parser::stop`] is a shutdown in the middle of whatever it reads.
pub struct Parser {
    pub url: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), daarion_parser::StartError>>,
}

impl Parser {
    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the parser stops promptly")
            .unwrap()
            .unwrap();
    }
}

impl Stack {
    pub async fn start() -> Stack {
        let plane = Plane::start().await;
        let mut config = plane.config.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        config.memory.listen = listener.local_addr().unwrap();
        // Nothing listens here: these tests read no image and no recording.
        config.swapper.listen = "127.0.0.1:9".parse().unwrap();
        let memory_stop = CancellationToken::new();
        let memory_task = tokio::spawn(daarion_memory::run(
            config.clone(),
            listener,
            memory_stop.clone(),
        ));
        let memory = MemoryClient::new(format!("http://{}", config.memory.listen), &plane.root);
        for _ in 0..400 {
            if memory.ping().await.is_ok() {
                break;
            }
            assert!(!memory_task.is_finished(), "memory did not start");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let blobs = BlobStore::from_config(&config.ingest.blobs, &config.general.data_dir).unwrap();
        let user = memory
            .resolve("telegram", "parser-test", "Parser Test")
            .await
            .unwrap();
        Stack {
            plane,
            config,
            memory,
            memory_stop,
            memory_task,
            blobs,
            user,
        }
    }

    pub async fn parser(&self) -> Parser {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let task = tokio::spawn(daarion_parser::run(
            self.config.clone(),
            listener,
            stop.clone(),
        ));
        let http = reqwest::Client::new();
        for _ in 0..400 {
            if let Ok(r) = http.get(format!("{url}/health")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                !task.is_finished(),
                "the parser did not start: {:?}",
                task.await
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Parser { url, stop, task }
    }

    /// The file put in the blob store and recorded in memory, which announces it.
    pub async fn upload(&self, name: &str, format: &str, content: Vec<u8>) -> Attachment {
        self.upload_with(name, format, content, Default::default())
            .await
    }

    /// [`Stack::upload`] with parse options.
    pub async fn upload_with(
        &self,
        name: &str,
        format: &str,
        content: Vec<u8>,
        options: daarion_memory_client::ParseOptions,
    ) -> Attachment {
        let size = content.len() as u64;
        let body =
            futures::stream::once(
                async move { Ok::<_, std::io::Error>(bytes::Bytes::from(content)) },
            );
        let stored = self.blobs.put_stream(body, 1 << 30).await.unwrap();
        let created = self
            .memory
            .create_attachment(&NewAttachment {
                user_id: self.user,
                name: name.into(),
                format: format.into(),
                mime: "application/octet-stream".into(),
                bytes: size,
                sha256: stored.sha256.to_string(),
                origin: None,
                options,
            })
            .await
            .unwrap();
        assert!(created.created);
        created.attachment
    }

    /// Polls the attachment until `done` holds for it (at most `secs`).
    pub async fn until(
        &self,
        id: Uuid,
        secs: u64,
        done: impl Fn(&Attachment) -> bool,
    ) -> Attachment {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let a = self.memory.attachment(id).await.unwrap();
            if done(&a) {
                return a;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "attachment never got there; last: {a:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Until parsed (or indexed, where the stack embeds) or failed.
    pub async fn finished(&self, id: Uuid, secs: u64) -> Attachment {
        self.until(id, secs, |a| {
            matches!(
                a.state,
                AttachmentState::Parsed | AttachmentState::Indexed | AttachmentState::Failed
            )
        })
        .await
    }

    /// `SELECT count(*) FROM chunks WHERE document_id = … AND <filter>`.
    pub async fn chunks(&self, attachment: &Attachment, filter: &str) -> i64 {
        let Some(document) = attachment.document_id else {
            return 0;
        };
        self.plane
            .count(&format!(
                "SELECT count(*) FROM chunks WHERE document_id = '{document}' AND ({filter})"
            ))
            .await
    }

    pub async fn stop(self) {
        self.memory_stop.cancel();
        self.memory_task.await.unwrap().unwrap();
        self.plane.stop().await;
    }
}
