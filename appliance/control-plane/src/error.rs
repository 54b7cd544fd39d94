//! Every way a control-plane request can fail, each mapped to one status and stable code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use daarion_http::ErrorResponse;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("missing or invalid API token")]
    Unauthenticated,
    #[error("this token lacks the `{0}` scope")]
    Forbidden(&'static str),
    #[error("missing or wrong X-CSRF-Token for this session")]
    Csrf,
    #[error("no agent `{0}`")]
    UnknownAgent(String),
    #[error("agent `{agent}` has no prompt version {version}")]
    UnknownVersion { agent: String, version: i32 },
    #[error("agent `{0}` has no active prompt yet")]
    NoActivePrompt(String),
    #[error("no API token {0}")]
    UnknownToken(uuid::Uuid),
    #[error("no config key `{0}`")]
    UnknownConfig(String),
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    #[error("quota store unavailable: {0}")]
    QuotaStore(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("prompt is {size} bytes; the limit is {limit}")]
    PromptTooLarge { size: usize, limit: usize },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl ControlError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ControlError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            ControlError::Unauthenticated => ErrorResponse::unauthorized(message),
            ControlError::Forbidden(_) => ErrorResponse::forbidden(message),
            ControlError::Csrf => ErrorResponse::new(StatusCode::FORBIDDEN, "csrf", message),
            ControlError::UnknownAgent(_)
            | ControlError::UnknownVersion { .. }
            | ControlError::NoActivePrompt(_)
            | ControlError::UnknownToken(_)
            | ControlError::UnknownConfig(_) => ErrorResponse::not_found(message),
            ControlError::QuotaExceeded(_) => {
                ErrorResponse::new(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", message)
            }
            ControlError::QuotaStore(e) => {
                tracing::error!(error = %e, "quota store error");
                ErrorResponse::unavailable("quota store unavailable; try again")
            }
            ControlError::Conflict(_) => ErrorResponse::conflict(message),
            ControlError::Invalid { .. } => ErrorResponse::invalid(message),
            ControlError::PromptTooLarge { .. } => {
                ErrorResponse::new(StatusCode::PAYLOAD_TOO_LARGE, "prompt_too_large", message)
            }
            ControlError::Database(e) => {
                tracing::error!(error = %e, "database error");
                ErrorResponse::internal()
            }
        }
        .into_response()
    }
}
