//! The gateway's errors and their one HTTP mapping.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use daarion_http::ErrorResponse;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("unknown bot `{0}`")]
    UnknownBot(String),
    #[error("wrong or missing secret token")]
    BadSecret,
    #[error("missing or invalid credential")]
    Unauthenticated,
    #[error("this credential lacks the `agents:use` scope")]
    Forbidden,
    #[error("{0}")]
    BadRequest(String),
    #[error("no {0}")]
    NotFound(String),
    #[error("bot `{bot}` is misconfigured: {message}")]
    Misconfigured { bot: String, message: String },
    #[error("{what} is unavailable: {message}")]
    Unavailable { what: &'static str, message: String },
}

impl GatewayError {
    pub fn unavailable(what: &'static str, e: impl std::fmt::Display) -> GatewayError {
        GatewayError::Unavailable {
            what,
            message: e.to_string(),
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let response = match &self {
            GatewayError::UnknownBot(_) => ErrorResponse::not_found(message),
            GatewayError::BadSecret | GatewayError::Unauthenticated => {
                ErrorResponse::unauthorized(message)
            }
            GatewayError::Forbidden => ErrorResponse::forbidden(message),
            GatewayError::BadRequest(_) => ErrorResponse::bad_request(message),
            GatewayError::NotFound(_) => ErrorResponse::not_found(message),
            GatewayError::Misconfigured { bot, .. } => {
                tracing::error!(error = %self, "bot misconfigured");
                ErrorResponse::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "misconfigured",
                    format!("bot `{bot}` is misconfigured; see the gateway log"),
                )
            }
            GatewayError::Unavailable { what, .. } => {
                tracing::error!(error = %self, "dependency unavailable");
                ErrorResponse::unavailable(format!("{what} is unavailable"))
            }
        };
        response.into_response()
    }
}
