//! Hybrid search over a user's messages, facts, document chunks and graph (`/v1/search`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `GET /v1/search?user_id=&q=&limit=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct SearchQuery {
    pub user_id: Uuid,
    /// 1 to 1000 characters once trimmed.
    pub q: String,
    /// Clamped to 1–100.
    #[serde(default = "ten")]
    pub limit: i64,
}

fn ten() -> i64 {
    10
}

/// One hit, best first in the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hit {
    /// `fact`, `message`, `chunk` or `relation`.
    pub kind: String,
    pub id: Uuid,
    pub content: String,
    /// The fused rank score (higher is better); comparable within one answer only.
    pub score: f32,
    /// The matched words marked `<b>…</b>`, or the start of the text for a hit by meaning.
    pub why: String,
    /// `words` (full-text), `meaning` (vectors), `graph` (a relation of an entity the query
    /// names), or more than one.
    pub matched_by: Vec<String>,
    /// Cosine similarity to the query, for hits by meaning.
    pub similarity: Option<f32>,
    /// Where a chunk hit comes from, so an answer can name it ("report.pdf, p. 3"); absent
    /// for other kinds (and from services that predate it).
    #[serde(default)]
    pub citation: Option<Citation>,
}

/// The document (and, for a file a user sent, the attachment and the place in it) a chunk
/// belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Citation {
    pub document_id: Uuid,
    /// The document's title: for an attachment, the file's name.
    pub title: String,
    #[serde(default)]
    pub attachment_id: Option<Uuid>,
    #[serde(default)]
    pub locator: Option<crate::attachments::Locator>,
    /// The heading path above the chunk, outermost first.
    #[serde(default)]
    pub headings: Vec<String>,
}

impl Citation {
    /// `report.pdf, p. 3` (or just the title where there is no place to name).
    pub fn cite(&self) -> String {
        match self.locator.as_ref().map(|l| l.cite()) {
            Some(place) if !place.is_empty() => format!("{}, {place}", self.title),
            _ => self.title.clone(),
        }
    }
}
