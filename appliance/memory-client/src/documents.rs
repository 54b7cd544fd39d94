//! Documents and their chunks (`/v1/users/{id}/documents`, `/v1/documents/{id}`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The largest document text accepted (2 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 2 * 1024 * 1024;

/// `POST /v1/users/{id}/documents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewDocument {
    /// 1 to 300 characters.
    pub title: String,
    /// The text (documents in other formats are parsed to text before they come here).
    pub content: String,
    #[serde(default = "plain")]
    pub mime: String,
    /// Where it came from (`upload`, a URL…).
    #[serde(default = "upload")]
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

fn plain() -> String {
    "text/plain".into()
}

fn upload() -> String {
    "upload".into()
}

impl NewDocument {
    /// A plain-text upload.
    pub fn new(title: impl Into<String>, content: impl Into<String>) -> NewDocument {
        NewDocument {
            title: title.into(),
            content: content.into(),
            mime: plain(),
            source: upload(),
            agent_id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Document {
    pub id: Uuid,
    pub user_id: Uuid,
    pub agent_id: Option<String>,
    pub title: String,
    pub mime: String,
    pub source: String,
    pub bytes: i32,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Chunks in all, and how many are indexed, waiting, failed.
    pub chunks: i64,
    pub indexed: i64,
    pub pending: i64,
    pub failed: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Chunk {
    pub id: Uuid,
    pub ordinal: i32,
    pub content: String,
    /// `pending`, `indexed` or `failed`.
    pub state: String,
    pub error: Option<String>,
    /// Where in its file the text came from (a parsed attachment's chunks; none for a
    /// document given as text).
    #[serde(default)]
    pub locator: Option<crate::attachments::Locator>,
    /// The headings above it, outermost first.
    #[serde(default)]
    pub headings: Vec<String>,
}

/// `GET /v1/documents/{id}`: the document and its chunks, each with its index state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentWithChunks {
    pub document: Document,
    pub chunks: Vec<Chunk>,
}
