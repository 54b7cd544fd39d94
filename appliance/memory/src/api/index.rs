//! What made it into the vector index, and a way to retry what failed.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
#[allow(unused_imports)]
use super::openapi::ErrorEnvelope;
use crate::App;

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StateCount {
    pub kind: String,
    pub state: String,
    pub count: i64,
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Failed {
    pub kind: String,
    pub item_id: Uuid,
    pub user_id: Uuid,
    pub attempts: i32,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// `GET /v1/index/status`: items per kind and state, the last failures, and the vectors held.
#[utoipa::path(get, path = "/v1/index/status", tag = "index", responses((status = 200, description = "model, counts per kind and state, recent failures, vectors held"), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn status(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.read_all()?;
    let states: Vec<StateCount> = sqlx::query_as(
        "SELECT kind, state, count(*) AS count FROM index_state GROUP BY kind, state ORDER BY kind, state",
    )
    .fetch_all(&app.pool)
    .await?;
    let failed: Vec<Failed> = sqlx::query_as(
        "SELECT kind, item_id, user_id, attempts, error, updated_at FROM index_state \
         WHERE state = 'failed' ORDER BY updated_at DESC LIMIT 50",
    )
    .fetch_all(&app.pool)
    .await?;
    let vectors = app
        .vectors
        .count(daarion_vectors::Collection::Messages, None)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(serde_json::json!({
        "model": app.embedder.as_ref().map(|e| e.model.clone()),
        "states": states,
        "failed": failed,
        "vectors": {"messages": vectors},
    })))
}

/// `POST /v1/index/retry`: failed items back to pending, now (administrators).
#[utoipa::path(post, path = "/v1/index/retry", tag = "index", responses((status = 200, description = "how many were requeued"), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn retry(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.admin()?;
    let requeued = sqlx::query(
        "UPDATE index_state SET state = 'pending', attempts = 0, next_attempt_at = clock_timestamp(), \
                updated_at = clock_timestamp() WHERE state = 'failed'",
    )
    .execute(&app.pool)
    .await?
    .rows_affected();
    sqlx::query("SELECT pg_notify('daarion_index', 'retry')")
        .execute(&app.pool)
        .await?;
    Ok(Json(serde_json::json!({"requeued": requeued})))
}
