use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use daarion_http::ErrorResponse;

/// Every way a memory API request can fail, each with one status and code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid token")]
    Unauthenticated,
    #[error("this token lacks the `{0}` scope")]
    Forbidden(&'static str),
    #[error("the caller acts for another user")]
    OtherUser,
    #[error("cannot check the token right now: {0}")]
    AuthUnavailable(String),
    #[error("no {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{what} is {size} bytes; the limit is {limit}")]
    TooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The vector store could not answer; the detail goes to the log.
    #[error("the vector index is not available")]
    Unavailable(String),
    /// The graph store could not answer; the detail goes to the log.
    #[error("the knowledge graph is not available")]
    GraphUnavailable(String),
}

impl ApiError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            ApiError::Unauthenticated => ErrorResponse::unauthorized(message),
            ApiError::Forbidden(_) => ErrorResponse::forbidden(message),
            ApiError::OtherUser => ErrorResponse::new(StatusCode::FORBIDDEN, "other_user", message),
            ApiError::AuthUnavailable(e) => {
                tracing::warn!(error = %e, "token introspection failed");
                ErrorResponse::unavailable("cannot check the token right now")
            }
            ApiError::NotFound(_) => ErrorResponse::not_found(message),
            ApiError::Conflict(_) => ErrorResponse::conflict(message),
            ApiError::Invalid { .. } => ErrorResponse::invalid(message),
            ApiError::TooLarge { .. } => {
                ErrorResponse::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
            }
            ApiError::Database(e) => {
                tracing::error!(error = %e, "database error");
                ErrorResponse::internal()
            }
            ApiError::Unavailable(e) => {
                tracing::warn!(error = %e, "vector store");
                ErrorResponse::unavailable(message)
            }
            ApiError::GraphUnavailable(e) => {
                tracing::warn!(error = %e, "graph store");
                ErrorResponse::unavailable(message)
            }
        }
        .into_response()
    }
}
