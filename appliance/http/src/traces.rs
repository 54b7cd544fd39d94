//! `GET /internal/traces/{trace_id}`: this process's spans and log lines of one trace, for the
//! supervisor's trace view. Only the appliance root token opens it: spans carry routes, models
//! and log lines that only an operator may see.

use std::path::PathBuf;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use daarion_telemetry::{Recorder, parse_trace_id};

use crate::error::ErrorResponse;
use crate::{bearer, secret_eq};

pub const TRACE_ROUTE: &str = "/internal/traces/{trace_id}";

static TOKEN_FILE: OnceLock<PathBuf> = OnceLock::new();
static TOKEN: OnceLock<String> = OnceLock::new();

/// Names the root token file (`supervisor.admin_token_file`) the trace route checks callers
/// against. Set once per process, before serving; until it is set the route refuses everyone.
/// The file is read on first use: the supervisor may create it after this call.
pub fn set_root_token_file(path: impl Into<PathBuf>) {
    let _ = TOKEN_FILE.set(path.into());
}

fn root_token() -> Option<&'static str> {
    if let Some(token) = TOKEN.get() {
        return Some(token);
    }
    let text = std::fs::read_to_string(TOKEN_FILE.get()?).ok()?;
    let token = text.trim();
    if token.is_empty() {
        return None;
    }
    Some(TOKEN.get_or_init(|| token.to_owned()))
}

pub(crate) fn routes() -> Router {
    Router::new().route(TRACE_ROUTE, get(show))
}

async fn show(headers: HeaderMap, Path(trace_id): Path<String>) -> Response {
    let allowed = match (root_token(), bearer(&headers)) {
        (Some(expected), Some(given)) => secret_eq(expected.as_bytes(), given.as_bytes()),
        _ => false,
    };
    if !allowed {
        return ErrorResponse::unauthorized("the appliance root token is required").into_response();
    }
    let Some(id) = parse_trace_id(&trace_id) else {
        return ErrorResponse::invalid("a trace id is 32 lowercase hex digits, not all zero")
            .into_response();
    };
    Json(Recorder::global().trace(&id)).into_response()
}
