//! What made it into the vector index, and a way to retry what failed.

use axum::Json;
use axum::extract::State;
use daarion_memory_client::index::{Failed, IndexStatus, Requeued, StateCount, VectorCounts};

use super::auth::Caller;
use super::error::ApiError;
#[allow(unused_imports)]
use super::openapi::ErrorEnvelope;
use crate::App;
use crate::rows::Row;

/// `GET /v1/index/status`: items per kind and state, the last failures, and the vectors held.
#[utoipa::path(get, path = "/v1/index/status", tag = "index", responses((status = 200, description = "model, counts per kind and state, recent failures, vectors held", body = IndexStatus), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn status(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Result<Json<IndexStatus>, ApiError> {
    caller.read_all()?;
    let states = sqlx::query_as::<_, Row<StateCount>>(
        "SELECT kind, state, count(*) AS count FROM index_state GROUP BY kind, state ORDER BY kind, state",
    )
    .fetch_all(&app.pool)
    .await?;
    let failed = sqlx::query_as::<_, Row<Failed>>(
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
    Ok(Json(IndexStatus {
        model: app.embedder.as_ref().map(|e| e.model.clone()),
        states: Row::all(states),
        failed: Row::all(failed),
        vectors: VectorCounts { messages: vectors },
    }))
}

/// `POST /v1/index/retry`: failed items back to pending, now (administrators).
#[utoipa::path(post, path = "/v1/index/retry", tag = "index", responses((status = 200, description = "how many were requeued", body = Requeued), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn retry(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Result<Json<Requeued>, ApiError> {
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
    Ok(Json(Requeued { requeued }))
}
