//! The swapper's error answers, in OpenAI's format so that OpenAI clients show them as they
//! would the real API's. `code` and `message` are where every DAARION service has them, so
//! `daarion_client` reads them into its `ClientError` like any other service's.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: ApiErrorBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub message: String,
    /// OpenAI's class: `invalid_request_error`, `server_error`, `rate_limit_error`…
    #[serde(rename = "type")]
    pub kind: String,
    /// Stable, for programs: `model_not_found`, `wrong_model_kind`, `invalid_request`…
    pub code: String,
    /// OpenAI's; always `null` here.
    pub param: Option<String>,
    pub trace_id: Option<String>,
}
