//! Everything a turn can fail with, and its one HTTP mapping (the appliance's JSON error body on
//! `/v1/route`, OpenAI's on `/v1/chat/completions`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use daarion_control_client::ClientError;
use daarion_http::ErrorResponse;
use daarion_memory_client::MemoryError;
use daarion_router_client::InboundError;
use serde_json::json;

/// Why a request was refused, in words for the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `policy` or `quota`.
    pub code: &'static str,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("missing or invalid credential")]
    Unauthenticated,
    #[error("this credential lacks the `{0}` scope")]
    Forbidden(&'static str),
    #[error("cannot check the credential right now")]
    AuthUnavailable,
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("the message is {size} bytes; the limit is {limit} (send long texts as a document)")]
    TooLarge { size: usize, limit: usize },
    #[error("{what} is {size}; the limit is {limit}")]
    StepTooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("a step with this idempotency key is still running; retry later for its answer")]
    StepInProgress,
    #[error("the step journal (Redis) is unavailable")]
    Journal,
    #[error("unknown agent `{0}`")]
    UnknownAgent(String),
    #[error("unknown user {0}")]
    UnknownUser(String),
    #[error("no routing rule matches this message and routing.main has no default_agent")]
    NoRoute,
    #[error("{}", .0.reason)]
    Refused(Refusal),
    #[error("agent `{0}` has no model: set its default_model or agents.{0}.models")]
    NoModel(String),
    #[error("provider `{name}`: {message}")]
    Provider { name: String, message: String },
    #[error(transparent)]
    Control(ClientError),
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error("{0}")]
    Llm(String),
}

impl From<InboundError> for RouterError {
    fn from(e: InboundError) -> Self {
        match e {
            InboundError::Invalid { field, message } => RouterError::Invalid { field, message },
            InboundError::TooLarge { size, limit } => RouterError::TooLarge { size, limit },
        }
    }
}

impl From<ClientError> for RouterError {
    /// A stored config document that does not parse is the operator's to fix (503
    /// `misconfigured` naming the key), not the control plane being down.
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Invalid { key, message } => RouterError::Provider { name: key, message },
            other => RouterError::Control(other),
        }
    }
}

impl RouterError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> RouterError {
        RouterError::Invalid {
            field,
            message: message.into(),
        }
    }

    /// The status and the stable code clients match on.
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            RouterError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthorized"),
            RouterError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            RouterError::AuthUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "auth_unavailable"),
            // The one rule of every DAARION API (`daarion_http::ErrorResponse::invalid`).
            RouterError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            RouterError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            RouterError::StepTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            RouterError::StepInProgress => (StatusCode::CONFLICT, "step_in_progress"),
            RouterError::Journal => (StatusCode::SERVICE_UNAVAILABLE, "step_journal"),
            RouterError::UnknownAgent(_) => (StatusCode::NOT_FOUND, "unknown_agent"),
            RouterError::UnknownUser(_) => (StatusCode::NOT_FOUND, "unknown_user"),
            RouterError::NoRoute => (StatusCode::UNPROCESSABLE_ENTITY, "no_route"),
            RouterError::Refused(r) if r.code == "quota" => {
                (StatusCode::TOO_MANY_REQUESTS, "quota_exceeded")
            }
            RouterError::Refused(_) => (StatusCode::FORBIDDEN, "refused"),
            RouterError::NoModel(_) | RouterError::Provider { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "misconfigured")
            }
            RouterError::Control(ClientError::NotFound(_)) => (StatusCode::NOT_FOUND, "not_found"),
            RouterError::Control(_) => (StatusCode::SERVICE_UNAVAILABLE, "control_plane"),
            RouterError::Memory(_) => (StatusCode::SERVICE_UNAVAILABLE, "memory"),
            RouterError::Llm(_) => (StatusCode::BAD_GATEWAY, "llm_failed"),
        }
    }

    /// The message a client sees: ours are safe to show; a dependency's details stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            RouterError::Control(ClientError::NotFound(what)) => format!("not found: {what}"),
            RouterError::Control(_) => "the control plane is unavailable".into(),
            RouterError::Memory(_) => "the memory service is unavailable".into(),
            RouterError::Provider { name, .. } => {
                format!("provider `{name}` is misconfigured; see the router log")
            }
            other => other.to_string(),
        }
    }

    fn log(&self) {
        let (status, _) = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
    }
}

impl IntoResponse for RouterError {
    fn into_response(self) -> Response {
        self.log();
        let (status, code) = self.status_code();
        ErrorResponse::new(status, code, self.public_message()).into_response()
    }
}

/// The same errors in OpenAI's shape, for `/v1/chat/completions`.
pub struct OpenAiError(pub RouterError);

impl From<RouterError> for OpenAiError {
    fn from(e: RouterError) -> Self {
        OpenAiError(e)
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        self.0.log();
        let (status, code) = self.0.status_code();
        // OpenAI answers every request it cannot take as it stands with a 400.
        let status = match status {
            StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
            other => other,
        };
        let kind = match status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            s if s.is_client_error() => "invalid_request_error",
            _ => "server_error",
        };
        let body = json!({"error": {"message": self.0.public_message(), "type": kind, "code": code, "param": null}});
        (status, Json(body)).into_response()
    }
}
