//! Facts: never overwritten. A new fact supersedes an old one (the old one's validity ends, a
//! link records why); forgetting ends validity and is audited; history stays queryable.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use daarion_memory_client::facts::{Fact, FactsQuery, Forget, MAX_FACT_BYTES, NewFact, Supersede};
use daarion_memory_client::limits::{MAX_AGENT_ID_BYTES, MAX_REASON_BYTES};
use time::OffsetDateTime;
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use super::keys;
#[allow(unused_imports)]
use super::openapi::ErrorEnvelope;
use super::text;
use super::users;
use crate::App;
use crate::rows::Row;

const COLUMNS: &str = "id, user_id, agent_id, content, valid_from, valid_to, supersedes, reason, source_message_id, forgotten, created_by";

fn check_content(content: &str) -> Result<(), ApiError> {
    if content.trim().is_empty() {
        return Err(ApiError::invalid("content", "must not be empty"));
    }
    if content.len() > MAX_FACT_BYTES {
        return Err(ApiError::TooLarge {
            what: "fact",
            size: content.len(),
            limit: MAX_FACT_BYTES,
        });
    }
    Ok(())
}

async fn load(executor: impl sqlx::PgExecutor<'_>, id: Uuid, lock: bool) -> Result<Fact, ApiError> {
    sqlx::query_as::<_, Row<Fact>>(&format!(
        "SELECT {COLUMNS} FROM facts WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind(id)
    .fetch_optional(executor)
    .await?
    .map(Row::into_inner)
    .ok_or_else(|| ApiError::NotFound(format!("fact {id}")))
}

#[utoipa::path(post, path = "/v1/users/{id}/facts", tag = "facts", params(("id" = Uuid, Path)), request_body = NewFact, responses((status = 201, body = Fact), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn add(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(user_id): Path<Uuid>,
    Json(body): Json<NewFact>,
) -> Result<(StatusCode, Json<Fact>), ApiError> {
    caller.write(user_id)?;
    check_content(&body.content)?;
    text::bounded("agent_id", body.agent_id.as_deref(), MAX_AGENT_ID_BYTES)?;
    users::load(&app.pool, user_id).await?;
    if let Some(message) = body.source_message_id {
        let owner: Option<Uuid> = sqlx::query_scalar("SELECT user_id FROM messages WHERE id = $1")
            .bind(message)
            .fetch_optional(&app.pool)
            .await?;
        if owner != Some(user_id) {
            return Err(ApiError::invalid(
                "source_message_id",
                "no such message of this user",
            ));
        }
    }
    let fact = sqlx::query_as::<_, Row<Fact>>(&format!(
        "INSERT INTO facts (id, user_id, agent_id, content, source_message_id, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(user_id)
    .bind(&body.agent_id)
    .bind(&body.content)
    .bind(body.source_message_id)
    .bind(&caller.name)
    .fetch_one(&app.pool)
    .await?
    .into_inner();
    app.cache.forget(&keys::facts(&app, user_id)).await;
    Ok((StatusCode::CREATED, Json(fact)))
}

#[utoipa::path(get, path = "/v1/users/{id}/facts", tag = "facts", params(("id" = Uuid, Path), FactsQuery), responses((status = 200, body = [Fact]), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn list(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(user_id): Path<Uuid>,
    Query(query): Query<FactsQuery>,
) -> Result<Json<Vec<Fact>>, ApiError> {
    caller.read(user_id)?;
    let key = keys::facts(&app, user_id);
    if !query.history
        && let Some(cached) = app.cache.get::<Vec<Fact>>(&key).await
    {
        return Ok(Json(cached));
    }
    users::load(&app.pool, user_id).await?;
    let filter = if query.history {
        ""
    } else {
        " AND valid_to IS NULL"
    };
    let facts = Row::all(
        sqlx::query_as::<_, Row<Fact>>(&format!(
            "SELECT {COLUMNS} FROM facts WHERE user_id = $1{filter} ORDER BY valid_from"
        ))
        .bind(user_id)
        .fetch_all(&app.pool)
        .await?,
    );
    if !query.history {
        app.cache.put(&key, &facts).await;
    }
    Ok(Json(facts))
}

/// `POST /v1/facts/{id}/supersede`: the new fact and the end of the old one, in one transaction.
#[utoipa::path(post, path = "/v1/facts/{id}/supersede", tag = "facts", params(("id" = Uuid, Path)), request_body = Supersede, responses((status = 201, body = Fact), (status = 409, description = "already superseded or forgotten", body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn supersede(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<Uuid>,
    Json(body): Json<Supersede>,
) -> Result<(StatusCode, Json<Fact>), ApiError> {
    check_content(&body.content)?;
    if body.reason.trim().is_empty() {
        return Err(ApiError::invalid("reason", "say why the fact changed"));
    }
    text::bounded("reason", Some(&body.reason), MAX_REASON_BYTES)?;
    let mut tx = app.pool.begin().await?;
    let old = load(&mut *tx, id, true).await?;
    caller.write(old.user_id)?;
    if old.valid_to.is_some() {
        return Err(ApiError::Conflict(format!(
            "fact {id} is no longer current; supersede the current one"
        )));
    }
    let now = OffsetDateTime::now_utc();
    sqlx::query("UPDATE facts SET valid_to = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let new = sqlx::query_as::<_, Row<Fact>>(&format!(
        "INSERT INTO facts (id, user_id, agent_id, content, valid_from, supersedes, reason, source_message_id, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(old.user_id)
    .bind(&old.agent_id)
    .bind(&body.content)
    .bind(now)
    .bind(id)
    .bind(&body.reason)
    .bind(body.source_message_id)
    .bind(&caller.name)
    .fetch_one(&mut *tx)
    .await?
    .into_inner();
    tx.commit().await?;
    app.cache.forget(&keys::facts(&app, new.user_id)).await;
    Ok((StatusCode::CREATED, Json(new)))
}

/// `POST /v1/facts/{id}/forget`: ends the fact's validity and records who asked and why in the
/// audit log (same transaction). The row stays, marked forgotten.
#[utoipa::path(post, path = "/v1/facts/{id}/forget", tag = "facts", params(("id" = Uuid, Path)), request_body = Forget, responses((status = 200, body = Fact), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn forget(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<Uuid>,
    Json(body): Json<Forget>,
) -> Result<Json<Fact>, ApiError> {
    if body.reason.trim().is_empty() {
        return Err(ApiError::invalid("reason", "say why the fact is forgotten"));
    }
    text::bounded("reason", Some(&body.reason), MAX_REASON_BYTES)?;
    let mut tx = app.pool.begin().await?;
    let old = load(&mut *tx, id, true).await?;
    caller.write(old.user_id)?;
    if old.forgotten {
        return Err(ApiError::Conflict(format!(
            "fact {id} is already forgotten"
        )));
    }
    let fact = sqlx::query_as::<_, Row<Fact>>(&format!(
        "UPDATE facts SET valid_to = coalesce(valid_to, now()), forgotten = true WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .fetch_one(&mut *tx)
    .await?
    .into_inner();
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, target, source, trace_id, before, detail) \
         VALUES ($1, now(), $2, 'fact.forget', $3, 'memory', $4, $5, $6)",
    )
    .bind(Uuid::now_v7())
    .bind(&caller.name)
    .bind(format!("user:{}/fact:{id}", old.user_id))
    .bind(daarion_telemetry::TraceContext::current_or_new().trace_id())
    .bind(serde_json::to_value(&old).unwrap_or_default())
    .bind(serde_json::json!({"reason": body.reason}))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    app.cache.forget(&keys::facts(&app, fact.user_id)).await;
    Ok(Json(fact))
}

/// `GET /v1/facts/{id}/history`: the chain this fact belongs to, oldest first.
#[utoipa::path(get, path = "/v1/facts/{id}/history", tag = "facts", params(("id" = Uuid, Path)), responses((status = 200, body = [Fact]), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn history(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<Uuid>,
) -> Result<Json<Vec<Fact>>, ApiError> {
    let fact = load(&app.pool, id, false).await?;
    caller.read(fact.user_id)?;
    let chain = sqlx::query_as::<_, Row<Fact>>(&format!(
        "WITH RECURSIVE back AS ( \
             SELECT {COLUMNS}, 0 AS depth FROM facts WHERE id = $1 \
             UNION ALL SELECT f.id, f.user_id, f.agent_id, f.content, f.valid_from, f.valid_to, f.supersedes, f.reason, f.source_message_id, f.forgotten, f.created_by, b.depth - 1 \
             FROM facts f JOIN back b ON f.id = b.supersedes), \
         fwd AS ( \
             SELECT {COLUMNS}, 0 AS depth FROM facts WHERE id = $1 \
             UNION ALL SELECT f.id, f.user_id, f.agent_id, f.content, f.valid_from, f.valid_to, f.supersedes, f.reason, f.source_message_id, f.forgotten, f.created_by, w.depth + 1 \
             FROM facts f JOIN fwd w ON f.supersedes = w.id) \
         SELECT {COLUMNS} FROM (SELECT * FROM back UNION SELECT * FROM fwd) chain ORDER BY depth"
    ))
    .bind(id)
    .fetch_all(&app.pool)
    .await?;
    Ok(Json(Row::all(chain)))
}
