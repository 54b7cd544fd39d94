//! Attachments: files users send, as the memory API keeps their record (`/v1/attachments…`).
//!
//! The memory API owns the record and every change of state, and publishes the bus events
//! (`attachment.created`, `.parsed`, `.indexed`, `.failed`) from its outbox in the same
//! transaction as the change, so a crash between "stored" and "announced" loses nothing.
//! The ingest service creates records (after the bytes are in the blob store), the parser moves
//! them through parsing, and memory's indexer marks them indexed.
//!
//! States: `received` → `parsing` (page k of n) → `parsed` → `indexed`, or `failed` with a
//! reason a person can act on. A failed (or any finished) attachment can be retried: it goes
//! back to `received` with `attempt + 1`, and its earlier text is dropped.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The longest file name kept (longer ones are cut, keeping the extension).
pub const MAX_NAME_CHARS: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AttachmentState {
    Received,
    Parsing,
    Parsed,
    Indexed,
    Failed,
}

impl AttachmentState {
    pub const ALL: [AttachmentState; 5] = [
        AttachmentState::Received,
        AttachmentState::Parsing,
        AttachmentState::Parsed,
        AttachmentState::Indexed,
        AttachmentState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentState::Received => "received",
            AttachmentState::Parsing => "parsing",
            AttachmentState::Parsed => "parsed",
            AttachmentState::Indexed => "indexed",
            AttachmentState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<AttachmentState> {
        AttachmentState::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Where a file came from, so the one who sent it can be told how it went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// `telegram`, `admin` (the admin UI) or `api`.
    pub channel: String,
    /// The configured bot that received it (Telegram).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<i64>,
    /// The user's message that carried the file (replies quote it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<i64>,
}

/// How to read it; the defaults suit most files. Re-parsing with other options is a retry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ParseOptions {
    /// Tesseract languages, e.g. `["ukr", "rus", "eng"]`; none → the parser's configured ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ocr_languages: Vec<String>,
    /// OCR every page even where a text layer exists (a text layer that is garbage).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_ocr: bool,
}

/// `POST /v1/attachments`: the record of a file already in the blob store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewAttachment {
    pub user_id: Uuid,
    /// As the sender named it; 1 to [`MAX_NAME_CHARS`] characters.
    pub name: String,
    /// `daarion_formats::Format` as text (`pdf`, `docx`…), detected from the bytes.
    pub format: String,
    pub mime: String,
    pub bytes: u64,
    /// Hex SHA-256 of the content: its key in the blob store. The same content from the same
    /// user is the same attachment.
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    #[serde(default)]
    pub options: ParseOptions,
}

/// Progress while parsing: `done` of `total` units (pages, sheets, minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Progress {
    pub done: u32,
    pub total: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attachment {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub format: String,
    pub mime: String,
    pub bytes: i64,
    pub sha256: String,
    pub origin: Option<Origin>,
    pub options: ParseOptions,
    pub state: AttachmentState,
    /// Starts at 1; a retry adds one. Bus events carry it, so a late event of an earlier
    /// attempt is recognised and ignored.
    pub attempt: i32,
    pub progress: Option<Progress>,
    /// Pages (or sheets, slides, minutes) read, once parsed.
    pub pages: Option<i32>,
    /// The memory document holding the text, once parsed.
    pub document_id: Option<Uuid>,
    /// Chunks in all and how many are searchable by meaning.
    pub chunks: i64,
    pub indexed: i64,
    /// Why it failed, for a person.
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub parsed_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub indexed_at: Option<OffsetDateTime>,
}

/// `POST /v1/attachments`'s answer: 201 with `created: true`, or 200 with the attachment the
/// same user already had for the same content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Created {
    pub created: bool,
    pub attachment: Attachment,
}

/// `GET /v1/attachments?user_id=&state=&limit=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct AttachmentsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<AttachmentState>,
    /// 1 to 500, default 100; newest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// `POST /v1/attachments/{id}/retry`: parse again, with other options if given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Retry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<ParseOptions>,
}

/// `DELETE /v1/attachments/{id}`'s answer. The record, its document, chunks and vectors are
/// gone; `blob_unreferenced` says no attachment of anyone still has this content, so the blob
/// store may drop it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deleted {
    pub id: Uuid,
    pub sha256: String,
    pub blob_unreferenced: bool,
}

/// Where in the file a piece of text was found, kept on every chunk made from it so an answer
/// can say "report.pdf, p. 3". Mirrors the parser's own (`daarion_formats`), which this
/// contract crate does not link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Locator {
    /// 1-based page of a paged document (PDF, scanned image).
    Page { page: u32 },
    /// A spreadsheet's sheet, by name and 1-based position.
    Sheet { name: String, index: u32 },
    /// 1-based slide of a presentation.
    Slide { slide: u32 },
    /// A stretch of a recording, in milliseconds from its start.
    Time { start_ms: u64, end_ms: u64 },
    /// The file as a whole (plain text, a web page).
    Whole,
}

impl Locator {
    /// How a person cites it: `p. 3`, `sheet "Budget"`, `slide 4`, `12:05–13:40`; empty for
    /// the whole file.
    pub fn cite(&self) -> String {
        let clock = |ms: u64| {
            let s = ms / 1000;
            match s / 3600 {
                0 => format!("{}:{:02}", s / 60, s % 60),
                h => format!("{h}:{:02}:{:02}", s / 60 % 60, s % 60),
            }
        };
        match self {
            Locator::Page { page } => format!("p. {page}"),
            Locator::Sheet { name, .. } => format!("sheet \"{name}\""),
            Locator::Slide { slide } => format!("slide {slide}"),
            Locator::Time { start_ms, end_ms } => {
                format!("{}–{}", clock(*start_ms), clock(*end_ms))
            }
            Locator::Whole => String::new(),
        }
    }
}

/// The most chunks one section may make (`crate::chunk`-sized, about 1000 characters each):
/// a chunk's ordinal is `section × MAX_CHUNKS_PER_SECTION + k`, which keeps redelivered batches
/// idempotent and the document in reading order. A parser splits larger sections.
pub const MAX_CHUNKS_PER_SECTION: u32 = 1000;
/// The most sections one call may carry.
pub const MAX_SECTIONS_PER_CALL: usize = 200;

/// `POST /v1/attachments/{id}/progress` (parser): `done` of `total` units read; the state
/// becomes `parsing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReportProgress {
    /// The attempt the parser works on; another one is answered 409 (ack and drop it).
    pub attempt: i32,
    pub done: u32,
    #[serde(default)]
    pub total: Option<u32>,
}

/// A unit of extracted text (a page, a sheet, a slide, a stretch of a recording).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub locator: Locator,
    /// The heading path above the text, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headings: Vec<String>,
    pub text: String,
    /// Read by OCR (or speech-to-text) rather than from a text layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ocr: bool,
}

/// `POST /v1/attachments/{id}/sections` (parser): sections `first_ordinal`, `first_ordinal + 1`…
/// appended to the attachment's document (not searchable until parsed). A batch sent twice
/// adds nothing the second time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewSections {
    pub attempt: i32,
    pub first_ordinal: u32,
    pub sections: Vec<Section>,
}

/// `POST /v1/attachments/{id}/parsed` (parser): every section is in; the text becomes
/// searchable and `attachment.parsed` goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ParseDone {
    pub attempt: i32,
    /// Pages (sheets, slides, minutes) read.
    pub pages: u32,
}

/// `POST /v1/attachments/{id}/failed` (parser): why it could not be read; its text is dropped
/// and `attachment.failed` goes out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ParseFailed {
    pub attempt: i32,
    /// For a person: "encrypted PDF", "too many pages: 2400 > 500".
    pub reason: String,
    /// Retrying without a change (to the file, the options or the appliance) will not help.
    #[serde(default)]
    pub permanent: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locators_read_as_tagged_objects_and_cite_like_a_person() {
        for (json, cite) in [
            (r#"{"kind":"page","page":3}"#, "p. 3"),
            (
                r#"{"kind":"sheet","name":"Budget","index":2}"#,
                "sheet \"Budget\"",
            ),
            (r#"{"kind":"slide","slide":4}"#, "slide 4"),
            (
                r#"{"kind":"time","start_ms":725000,"end_ms":3820000}"#,
                "12:05–1:03:40",
            ),
            (r#"{"kind":"whole"}"#, ""),
        ] {
            let locator: Locator = serde_json::from_str(json).unwrap();
            assert_eq!(locator.cite(), cite);
            assert_eq!(serde_json::to_string(&locator).unwrap(), json);
        }
        assert!(serde_json::from_str::<Locator>(r#"{"kind":"page"}"#).is_err());
        assert!(serde_json::from_str::<Locator>(r#"{"kind":"chapter","n":1}"#).is_err());
    }
}
