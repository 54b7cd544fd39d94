//! The ingest service's client (:8100): what the gateway uses to hand over a Telegram document,
//! and what tests and scripts use to upload. The attachment types are the memory API's (it
//! keeps the records); they are re-exported here so callers need one crate.

use std::time::Duration;

use daarion_client::{ClientError, Service, Timeouts, http_client};
use reqwest::Method;
use uuid::Uuid;

pub use daarion_memory_client::{
    Attachment, AttachmentState, AttachmentsQuery, Created, Deleted, Origin, ParseOptions, Retry,
};

/// The header carrying a raw upload's file name, percent-encoded (names are any Unicode).
pub const FILE_NAME_HEADER: &str = "x-daarion-file-name";
/// The header carrying a raw upload's origin as JSON.
pub const ORIGIN_HEADER: &str = "x-daarion-origin";

/// How long one call may take: an upload of 50 MiB on the box takes seconds; the limit is for
/// a peer that stalls.
const TIMEOUT: Duration = Duration::from_secs(300);

/// The ingest service as one caller sees it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct IngestClient {
    service: Service,
}

/// Percent-encodes a file name for [`FILE_NAME_HEADER`].
pub fn encode_name(name: &str) -> String {
    daarion_client::segment(name)
}

impl IngestClient {
    pub const NAME: &'static str = "the ingest service";

    /// `base` like `http://127.0.0.1:8100`; `token` the credential every call shows.
    pub fn new(base: impl Into<String>, token: Option<String>) -> IngestClient {
        IngestClient {
            service: Service::new(
                Self::NAME,
                base,
                token,
                http_client(Timeouts::total(TIMEOUT)),
            ),
        }
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Uploads `body` (bytes or a stream) as `name` for `user`: 201 `created`, or 200 with the
    /// attachment the user already had for the same content.
    pub async fn upload(
        &self,
        user: Uuid,
        name: &str,
        body: impl Into<reqwest::Body>,
        origin: Option<&Origin>,
    ) -> Result<Created, ClientError> {
        let mut request = self
            .service
            .request(Method::POST, "/v1/attachments")
            .query(&[("user_id", user.to_string())])
            .header(FILE_NAME_HEADER, encode_name(name))
            .header("content-type", "application/octet-stream")
            .body(body);
        if let Some(origin) = origin {
            let json = serde_json::to_string(origin).map_err(|e| self.service.protocol(e))?;
            request = request.header(ORIGIN_HEADER, daarion_client::segment(&json));
        }
        let response = self.service.send(request).await?;
        let created = response.status() == reqwest::StatusCode::CREATED;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.service.unavailable(None, e))?;
        let attachment = serde_json::from_slice(&bytes).map_err(|e| self.service.protocol(e))?;
        Ok(Created {
            created,
            attachment,
        })
    }

    pub async fn attachment(&self, id: Uuid) -> Result<Attachment, ClientError> {
        self.service
            .json(
                self.service
                    .request(Method::GET, &format!("/v1/attachments/{id}")),
            )
            .await
    }

    /// Newest first.
    pub async fn attachments(
        &self,
        query: &AttachmentsQuery,
    ) -> Result<Vec<Attachment>, ClientError> {
        self.service
            .json(
                self.service
                    .request(Method::GET, "/v1/attachments")
                    .query(query),
            )
            .await
    }

    pub async fn retry(&self, id: Uuid, retry: &Retry) -> Result<Attachment, ClientError> {
        self.service
            .json(
                self.service
                    .request(Method::POST, &format!("/v1/attachments/{id}/retry"))
                    .json(retry),
            )
            .await
    }

    pub async fn delete(&self, id: Uuid) -> Result<Deleted, ClientError> {
        self.service
            .json(
                self.service
                    .request(Method::DELETE, &format!("/v1/attachments/{id}")),
            )
            .await
    }

    /// The file's bytes as stored.
    pub async fn content(&self, id: Uuid) -> Result<bytes::Bytes, ClientError> {
        let response = self
            .service
            .send(
                self.service
                    .request(Method::GET, &format!("/v1/attachments/{id}/content")),
            )
            .await?;
        response
            .bytes()
            .await
            .map_err(|e| self.service.unavailable(None, e))
    }
}
