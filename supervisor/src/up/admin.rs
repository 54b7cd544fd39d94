//! The supervisor's admin API on 127.0.0.1:9000. Every `/api` call needs the admin token as
//! `Authorization: Bearer <token>`, or an admin's browser session (the web UI: the session
//! cookie and its `X-CSRF-Token`, checked by the control plane).

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use daarion_gpu::Gpus;
use daarion_http::ErrorResponse;
use serde::Deserialize;
use serde_json::json;

use super::plan::UnitName;
use super::token;
use super::unit::{self, UnitCommand, UnitHandle, UnitStatus};

/// Shared by every admin handler.
#[derive(Clone)]
pub struct AdminState {
    pub units: Arc<Vec<UnitHandle>>,
    pub token: Arc<String>,
    pub gpus: Arc<Gpus>,
    /// Checks browser sessions with the control plane.
    pub sessions: daarion_control_client::Introspector,
    pub bus_config: daarion_config::BusConfig,
    /// Connected on first use: the bundled NATS starts after the admin API.
    pub bus: Arc<tokio::sync::Mutex<Option<daarion_bus::Bus>>>,
    /// Prometheus and Alertmanager, for the Metrics and Alerts pages.
    pub monitoring: super::monitoring_api::MonitoringApi,
    /// Every unit's recorded spans, for the trace view.
    pub traces: super::traces::TraceSources,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("missing or wrong admin token")]
    Unauthorized,
    #[error("no unit named `{0}`")]
    UnknownUnit(String),
    #[error("unknown action `{0}`: use start, stop or restart")]
    UnknownAction(String),
    #[error("the supervisor is shutting down")]
    ShuttingDown,
    #[error("{0} is not reachable")]
    Unavailable(&'static str),
    #[error("`{unit}` is off on this box: {reason}")]
    Off { unit: String, reason: String },
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            AdminError::Unauthorized => ErrorResponse::unauthorized(message),
            AdminError::UnknownUnit(_) => ErrorResponse::not_found(message),
            AdminError::UnknownAction(_) => ErrorResponse::bad_request(message),
            AdminError::Off { .. } => ErrorResponse::conflict(message),
            AdminError::ShuttingDown | AdminError::Unavailable(_) => {
                ErrorResponse::unavailable(message)
            }
        }
        .into_response()
    }
}

pub fn routes(state: AdminState) -> Router {
    Router::new()
        .route("/api/services", get(list))
        .route("/api/services/{name}", get(show))
        .route("/api/services/{name}/logs", get(logs))
        .route("/api/services/{name}/{action}", post(act))
        .route("/api/gpu", get(gpu))
        .route("/api/bus", get(bus))
        .route("/api/traces/{trace_id}", get(super::traces::show))
        .merge(super::monitoring_api::routes(state.monitoring.clone()))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .with_state(state)
}

async fn require_token(
    State(state): State<AdminState>,
    request: Request,
    next: Next,
) -> Result<Response, AdminError> {
    let allowed = match daarion_http::bearer(request.headers()) {
        Some(given) => token::matches(&state.token, given),
        None => state
            .sessions
            .session(request.headers())
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "admin session check");
                AdminError::Unavailable("the control plane (to check the session)")
            })?
            .is_some_and(|(_, scopes)| scopes.iter().any(|s| s == "admin")),
    };
    if allowed {
        Ok(next.run(request).await)
    } else {
        Err(AdminError::Unauthorized)
    }
}

fn find(state: &AdminState, name: &str) -> Result<UnitHandle, AdminError> {
    UnitName::parse(name)
        .and_then(|n| state.units.iter().find(|u| u.name == n).cloned())
        .ok_or_else(|| AdminError::UnknownUnit(name.to_owned()))
}

async fn list(State(state): State<AdminState>) -> Json<Vec<UnitStatus>> {
    Json(state.units.iter().map(UnitHandle::snapshot).collect())
}

async fn show(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<UnitStatus>, AdminError> {
    Ok(Json(find(&state, &name)?.snapshot()))
}

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default = "default_lines")]
    lines: usize,
    #[serde(default)]
    filter: String,
}

fn default_lines() -> usize {
    200
}

async fn logs(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<impl IntoResponse, AdminError> {
    let unit = find(&state, &name)?;
    Ok(Json(json!({
        "unit": unit.name.as_str(),
        "lines": unit.ring.tail(query.lines.min(10_000), &query.filter),
    })))
}

async fn act(
    State(state): State<AdminState>,
    Path((name, action)): Path<(String, String)>,
) -> Result<impl IntoResponse, AdminError> {
    let unit = find(&state, &name)?;
    let command = match action.as_str() {
        "start" => UnitCommand::Start,
        "stop" => UnitCommand::Stop,
        "restart" => UnitCommand::Restart,
        other => return Err(AdminError::UnknownAction(other.to_owned())),
    };
    let status = unit.snapshot();
    if status.state == unit::State::Off {
        return Err(AdminError::Off {
            unit: status.name,
            reason: status.detail.unwrap_or_default(),
        });
    }
    unit.commands
        .send(command)
        .await
        .map_err(|_| AdminError::ShuttingDown)?;
    tracing::info!(unit = %unit.name, ?command, "operator command");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"unit": unit.name.as_str(), "accepted": action})),
    ))
}

async fn gpu(State(state): State<AdminState>) -> impl IntoResponse {
    let gpus = state.gpus.clone();
    // NVML calls block; keep them off the async workers.
    match tokio::task::spawn_blocking(move || gpus.snapshot()).await {
        Ok(report) => Json(report).into_response(),
        Err(_) => ErrorResponse::internal().into_response(),
    }
}

/// Each stream's size and each durable consumer's lag.
async fn bus(State(state): State<AdminState>) -> Result<impl IntoResponse, AdminError> {
    let mut held = state.bus.lock().await;
    if held.is_none() {
        let connected = daarion_bus::Bus::connect(&state.bus_config, "supervisor-admin")
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "admin: bus");
                AdminError::Unavailable("the event bus")
            })?;
        *held = Some(connected);
    }
    let bus = held
        .clone()
        .ok_or(AdminError::Unavailable("the event bus"))?;
    drop(held);
    match bus.report().await {
        Ok(streams) => Ok(Json(json!({"streams": streams}))),
        Err(e) => {
            tracing::warn!(error = %e, "admin: bus report");
            Err(AdminError::Unavailable("the event bus"))
        }
    }
}
