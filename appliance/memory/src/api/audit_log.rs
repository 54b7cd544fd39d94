//! `GET /v1/audit`: the append-only audit log, newest first, filtered by actor, action, target
//! and time, paged with `before` and `before_id` (the last row seen). Administrators only.

use axum::Json;
use axum::extract::{Query, State};
use daarion_memory_client::audit::{AuditQuery, AuditRow};

use super::auth::Caller;
use super::error::ApiError;
#[allow(unused_imports)]
use super::openapi::ErrorEnvelope;
use super::usage::instant;
use crate::App;
use crate::rows::Row;

#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = [AuditRow]), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn audit(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<AuditRow>>, ApiError> {
    caller.admin()?;
    if !(1..=500).contains(&query.limit) {
        return Err(ApiError::invalid("limit", "1 to 500"));
    }
    let from = instant("from", query.from.as_deref())?;
    let before = instant("before", query.before.as_deref())?;
    let rows = sqlx::query_as::<_, Row<AuditRow>>(
        "SELECT id, at, actor, action, target, outcome, source, trace_id, before, after, detail \
         FROM audit_log \
         WHERE ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR action = $2) \
           AND ($3::text IS NULL OR target = $3) AND ($4::timestamptz IS NULL OR at >= $4) \
           AND ($5::timestamptz IS NULL OR ($7::uuid IS NULL AND at < $5) OR (at, id) < ($5, $7)) \
         ORDER BY at DESC, id DESC LIMIT $6",
    )
    .bind(&query.actor)
    .bind(&query.action)
    .bind(&query.target)
    .bind(from)
    .bind(before)
    .bind(query.limit)
    .bind(query.before_id)
    .fetch_all(&app.pool)
    .await?;
    Ok(Json(Row::all(rows)))
}
