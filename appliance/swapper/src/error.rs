//! Errors in OpenAI's format, `{"error": {"message", "type", "code", "param"}}`, so OpenAI
//! clients show them as they would the real API's.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use daarion_swapper_client::{ApiError, ApiErrorBody};

use crate::scheduler::ScheduleError;

#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error("missing or invalid API key")]
    Unauthenticated,
    #[error("this key lacks the `{0}` scope")]
    Forbidden(&'static str),
    #[error("cannot check the key right now")]
    AuthUnavailable,
    #[error("{0}")]
    BadRequest(String),
    #[error("`{model}` is a {kind} model; use {endpoint}")]
    WrongKind {
        model: String,
        kind: &'static str,
        endpoint: &'static str,
    },
    #[error("{0}")]
    ContextLength(String),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("{0}")]
    WorkerFailed(String),
}

impl IntoResponse for SwapError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let (status, kind, code) = match &self {
            SwapError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "invalid_api_key",
            ),
            SwapError::Forbidden(_) => (
                StatusCode::FORBIDDEN,
                "permission_error",
                "insufficient_scope",
            ),
            SwapError::AuthUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "auth_unavailable",
            ),
            SwapError::BadRequest(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_request",
            ),
            SwapError::WrongKind { .. } => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "wrong_model_kind",
            ),
            SwapError::ContextLength(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "context_length_exceeded",
            ),
            SwapError::Schedule(ScheduleError::UnknownModel(_)) => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "model_not_found",
            ),
            SwapError::Schedule(ScheduleError::QueueFull { .. }) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "queue_full",
            ),
            SwapError::Schedule(ScheduleError::TooLarge { .. }) => (
                StatusCode::INSUFFICIENT_STORAGE,
                "server_error",
                "model_too_large",
            ),
            SwapError::Schedule(ScheduleError::LoadFailed { .. }) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "model_load_failed",
            ),
            SwapError::Schedule(ScheduleError::Busy(_)) => {
                (StatusCode::CONFLICT, "invalid_request_error", "model_busy")
            }
            SwapError::WorkerFailed(_) => {
                (StatusCode::BAD_GATEWAY, "server_error", "worker_failed")
            }
        };
        let trace_id = daarion_telemetry::TraceContext::current().map(|c| c.trace_id());
        let body = ApiError {
            error: ApiErrorBody {
                message,
                kind: kind.into(),
                code: code.into(),
                param: None,
                trace_id,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        response
    }
}
