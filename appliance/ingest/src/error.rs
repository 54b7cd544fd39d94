//! Everything ingest can refuse or fail with, and its one HTTP mapping.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use daarion_blobs::BlobError;
use daarion_formats::DetectError;
use daarion_http::ErrorResponse;
use daarion_memory_client::MemoryError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("missing or invalid credential")]
    Unauthenticated,
    #[error("this credential lacks the `{0}` scope")]
    Forbidden(&'static str),
    #[error("this credential may only add files for its own user")]
    OtherUser,
    #[error("cannot check the credential right now")]
    AuthUnavailable,
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("the file is larger than the limit of {limit} bytes ({mib} MiB)", mib = limit / (1024 * 1024))]
    TooLarge { limit: u64 },
    /// A type no parser reads, or a name that claims another type than the bytes are.
    #[error("{0}")]
    Unsupported(String),
    /// The memory API's own answer to the caller (its status, code and words).
    #[error("{message}")]
    Memory {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the memory service is unavailable: {0}")]
    MemoryUnavailable(String),
    #[error("blob store: {0}")]
    Blobs(String),
}

impl IngestError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> IngestError {
        IngestError::Invalid {
            field,
            message: message.into(),
        }
    }

    pub fn status_code(&self) -> (StatusCode, &str) {
        match self {
            IngestError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthorized"),
            IngestError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            IngestError::OtherUser => (StatusCode::FORBIDDEN, "other_user"),
            IngestError::AuthUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "auth_unavailable"),
            IngestError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            IngestError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            IngestError::Unsupported(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            IngestError::Memory { status, code, .. } => (
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY),
                code.as_str(),
            ),
            IngestError::MemoryUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "memory"),
            IngestError::Blobs(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// What the client sees: ours in full; a dependency's details stay in the log.
    fn public_message(&self) -> String {
        match self {
            IngestError::MemoryUnavailable(_) => "the memory service is unavailable".into(),
            IngestError::Blobs(_) => "the file could not be stored; see the ingest log".into(),
            other => other.to_string(),
        }
    }
}

impl From<MemoryError> for IngestError {
    fn from(e: MemoryError) -> Self {
        match e {
            MemoryError::Refused {
                status,
                code,
                message,
            } => IngestError::Memory {
                status,
                code,
                message,
            },
            other => IngestError::MemoryUnavailable(other.to_string()),
        }
    }
}

impl From<BlobError> for IngestError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::TooLarge { limit } => IngestError::TooLarge { limit },
            BlobError::Body(message) => IngestError::invalid("body", message),
            BlobError::BadKey(_) | BlobError::NotFound(_) | BlobError::Store(_) => {
                IngestError::Blobs(e.to_string())
            }
        }
    }
}

impl From<DetectError> for IngestError {
    fn from(e: DetectError) -> Self {
        match e {
            DetectError::Empty => IngestError::invalid("file", e.to_string()),
            DetectError::Io(_) => IngestError::Blobs(e.to_string()),
            DetectError::Mislabelled { .. } | DetectError::Unsupported(_) => {
                IngestError::Unsupported(e.to_string())
            }
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        ErrorResponse::new(status, code.to_owned(), self.public_message()).into_response()
    }
}
