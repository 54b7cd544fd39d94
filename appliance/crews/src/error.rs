//! Everything the crews service can refuse or fail with, and its one HTTP mapping.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use daarion_crews_client::worker::{LEASE_LOST, RUN_FINAL, RUN_LEASED, WAITING_INPUT};
use daarion_http::ErrorResponse;

#[derive(Debug, thiserror::Error)]
pub enum CrewsError {
    #[error("missing or invalid credential")]
    Unauthenticated,
    #[error("this credential lacks the `{0}` scope")]
    Forbidden(&'static str),
    #[error("this credential may only reach its own user's runs")]
    OtherUser,
    #[error("cannot check the credential right now")]
    AuthUnavailable,
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0} not found")]
    NotFound(String),
    /// A state change the run's state does not allow (`code` tells the worker what to do).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

impl CrewsError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> CrewsError {
        CrewsError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn run_final(state: &str) -> CrewsError {
        CrewsError::Conflict {
            code: RUN_FINAL,
            message: format!("the run is {state}: nothing more happens to it"),
        }
    }

    pub fn run_leased(holder: &str) -> CrewsError {
        CrewsError::Conflict {
            code: RUN_LEASED,
            message: format!("another worker ({holder}) holds the run's lease"),
        }
    }

    pub fn waiting_input() -> CrewsError {
        CrewsError::Conflict {
            code: WAITING_INPUT,
            message: "the run waits for its user's answer".into(),
        }
    }

    pub fn lease_lost() -> CrewsError {
        CrewsError::Conflict {
            code: LEASE_LOST,
            message: "this worker no longer holds the run's lease".into(),
        }
    }

    pub fn conflict(message: impl Into<String>) -> CrewsError {
        CrewsError::Conflict {
            code: "conflict",
            message: message.into(),
        }
    }

    pub fn status_code(&self) -> (StatusCode, &str) {
        match self {
            CrewsError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthorized"),
            CrewsError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            CrewsError::OtherUser => (StatusCode::FORBIDDEN, "other_user"),
            CrewsError::AuthUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "auth_unavailable"),
            CrewsError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            CrewsError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            CrewsError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            CrewsError::Db(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// What the client sees: ours in full; the database's details stay in the log.
    fn public_message(&self) -> String {
        match self {
            CrewsError::Db(_) => "the crews service failed; see its log".into(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for CrewsError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        ErrorResponse::new(status, code.to_owned(), self.public_message()).into_response()
    }
}
