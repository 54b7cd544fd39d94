//! Sessions and their messages.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use daarion_memory_client::limits::{
    MAX_AGENT_ID_BYTES, MAX_JSON_FIELD_BYTES, MAX_MODEL_BYTES, MAX_TRACE_ID_BYTES,
};
use daarion_memory_client::sessions::{
    MessagesQuery, NewMessage, NewSession, ROLES, Session, StoredMessage,
};
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

pub use daarion_memory_client::sessions::MAX_MESSAGE_BYTES;

const SESSION_COLUMNS: &str = "id, user_id, agent_id, chat, started_at, ended_at";
const MESSAGE_COLUMNS: &str = "id, session_id, role, content, agent_id, model, prompt_tokens, completion_tokens, trace_id, versions, tool_calls, tool_call_id, created_at";

#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = NewSession, responses((status = 201, body = Session), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn create(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Json(body): Json<NewSession>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    caller.write(body.user_id)?;
    check_new(&body)?;
    users::load(&app.pool, body.user_id).await?;
    let session = sqlx::query_as::<_, Row<Session>>(&format!(
        "INSERT INTO sessions (id, user_id, agent_id, chat) VALUES ($1, $2, $3, $4) RETURNING {SESSION_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(body.user_id)
    .bind(&body.agent_id)
    .bind(&body.chat)
    .fetch_one(&app.pool)
    .await?
    .into_inner();
    Ok((StatusCode::CREATED, Json(session)))
}

/// `POST /v1/sessions/open`: the open session of this user with this agent in this chat, or a
/// new one. Two racing first messages of one chat get the same session.
#[utoipa::path(post, path = "/v1/sessions/open", tag = "sessions", request_body = NewSession, responses((status = 200, description = "the open session of this user, agent and chat, or a new one", body = Session), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn open(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Json(body): Json<NewSession>,
) -> Result<Json<Session>, ApiError> {
    caller.write(body.user_id)?;
    check_new(&body)?;
    // Every turn opens its session: the open one is answered from the cache until it ends.
    let key = keys::open_session(&app, body.user_id, &body.agent_id, &body.chat);
    if let Some(session) = app.cache.get::<Session>(&key).await {
        return Ok(Json(session));
    }
    users::load(&app.pool, body.user_id).await?;
    let mut tx = app.pool.begin().await?;
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtext('session:' || $1 || ':' || $2 || ':' || $3))",
    )
    .bind(body.user_id.to_string())
    .bind(&body.agent_id)
    .bind(&body.chat)
    .execute(&mut *tx)
    .await?;
    let existing = sqlx::query_as::<_, Row<Session>>(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND agent_id = $2 AND chat = $3 \
         AND ended_at IS NULL ORDER BY started_at DESC LIMIT 1"
    ))
    .bind(body.user_id)
    .bind(&body.agent_id)
    .bind(&body.chat)
    .fetch_optional(&mut *tx)
    .await?;
    let session = match existing {
        Some(Row(session)) => session,
        None => sqlx::query_as::<_, Row<Session>>(&format!(
            "INSERT INTO sessions (id, user_id, agent_id, chat) VALUES ($1, $2, $3, $4) RETURNING {SESSION_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(body.user_id)
        .bind(&body.agent_id)
        .bind(&body.chat)
        .fetch_one(&mut *tx)
        .await?
        .into_inner(),
    };
    tx.commit().await?;
    app.cache.put(&key, &session).await;
    Ok(Json(session))
}

/// Drops what is cached of a session that ended.
async fn forget_session(app: &App, session: &Session) {
    app.cache
        .forget(&keys::open_session(
            app,
            session.user_id,
            &session.agent_id,
            &session.chat,
        ))
        .await;
    app.cache.forget(&keys::state(app, session.id)).await;
}

fn check_new(body: &NewSession) -> Result<(), ApiError> {
    if body.agent_id.is_empty() || body.agent_id.len() > 64 {
        return Err(ApiError::invalid("agent_id", "1 to 64 characters"));
    }
    if body.chat.len() > 128 {
        return Err(ApiError::invalid("chat", "at most 128 characters"));
    }
    Ok(())
}

/// Every field but `content` (bounded above, with 413) is metadata, bounded so a message cannot
/// smuggle megabytes into each later prompt and cached history page.
fn check_metadata(body: &NewMessage) -> Result<(), ApiError> {
    text::bounded("agent_id", body.agent_id.as_deref(), MAX_AGENT_ID_BYTES)?;
    text::bounded("model", body.model.as_deref(), MAX_MODEL_BYTES)?;
    text::bounded("trace_id", body.trace_id.as_deref(), MAX_TRACE_ID_BYTES)?;
    text::bounded_json("versions", Some(&body.versions), MAX_JSON_FIELD_BYTES)?;
    text::bounded_json("tool_calls", body.tool_calls.as_ref(), MAX_JSON_FIELD_BYTES)
}

pub(crate) async fn load(pool: &daarion_db::PgPool, id: Uuid) -> Result<Session, ApiError> {
    sqlx::query_as::<_, Row<Session>>(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .map(Row::into_inner)
    .ok_or_else(|| ApiError::NotFound(format!("session {id}")))
}

#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "sessions", params(("id" = Uuid, Path)), responses((status = 200, body = Session), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn get(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<Uuid>,
) -> Result<Json<Session>, ApiError> {
    let session = load(&app.pool, id).await?;
    caller.read(session.user_id)?;
    Ok(Json(session))
}

/// `POST /v1/sessions/{id}/end`: `/new` and `/reset` in a chat end the current session.
#[utoipa::path(post, path = "/v1/sessions/{id}/end", tag = "sessions", params(("id" = Uuid, Path)), responses((status = 200, body = Session), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn end(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<Uuid>,
) -> Result<Json<Session>, ApiError> {
    let session = load(&app.pool, id).await?;
    caller.write(session.user_id)?;
    let ended = sqlx::query_as::<_, Row<Session>>(&format!(
        "UPDATE sessions SET ended_at = coalesce(ended_at, now()) WHERE id = $1 RETURNING {SESSION_COLUMNS}"
    ))
    .bind(id)
    .fetch_one(&app.pool)
    .await?
    .into_inner();
    // What the session kept between turns ends with it.
    sqlx::query("DELETE FROM session_state WHERE session_id = $1")
        .bind(id)
        .execute(&app.pool)
        .await?;
    forget_session(&app, &ended).await;
    Ok(Json(ended))
}

#[utoipa::path(post, path = "/v1/sessions/{id}/messages", tag = "sessions", params(("id" = Uuid, Path)), request_body = NewMessage, responses((status = 201, body = StoredMessage), (status = 409, description = "the session has ended", body = ErrorEnvelope), (status = 413, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn add_message(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<Uuid>,
    Json(body): Json<NewMessage>,
) -> Result<(StatusCode, Json<StoredMessage>), ApiError> {
    if body.content.len() > MAX_MESSAGE_BYTES {
        return Err(ApiError::TooLarge {
            what: "message",
            size: body.content.len(),
            limit: MAX_MESSAGE_BYTES,
        });
    }
    if !ROLES.contains(&body.role.as_str()) {
        return Err(ApiError::invalid(
            "role",
            "one of system, user, assistant, tool",
        ));
    }
    if body.tool_calls.as_ref().is_some_and(|c| !c.is_array()) {
        return Err(ApiError::invalid("tool_calls", "an array of tool calls"));
    }
    if body.tool_calls.is_some() && body.role != "assistant" {
        return Err(ApiError::invalid(
            "tool_calls",
            "only on assistant messages",
        ));
    }
    match (&body.tool_call_id, body.role.as_str()) {
        (Some(id), "tool") if !id.is_empty() && id.len() <= 128 => {}
        (None, role) if role != "tool" => {}
        _ => {
            return Err(ApiError::invalid(
                "tool_call_id",
                "1 to 128 characters, on tool messages only (and required there)",
            ));
        }
    }
    if !(body.versions.is_object() || body.versions.is_null()) {
        return Err(ApiError::invalid(
            "versions",
            "an object of names to versions",
        ));
    }
    check_metadata(&body)?;
    let session = load(&app.pool, id).await?;
    caller.write(session.user_id)?;
    if session.ended_at.is_some() {
        // A cached open session may have been this one: the next open finds the new one.
        forget_session(&app, &session).await;
        return Err(ApiError::Conflict(format!("session {id} has ended")));
    }
    let stored = sqlx::query_as::<_, Row<StoredMessage>>(&format!(
        "INSERT INTO messages (id, session_id, user_id, role, content, agent_id, model, prompt_tokens, completion_tokens, trace_id, versions, tool_calls, tool_call_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {MESSAGE_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(id)
    .bind(session.user_id)
    .bind(&body.role)
    .bind(&body.content)
    .bind(&body.agent_id)
    .bind(&body.model)
    .bind(body.prompt_tokens.map(|t| t as i32))
    .bind(body.completion_tokens.map(|t| t as i32))
    .bind(&body.trace_id)
    .bind(if body.versions.is_null() { serde_json::json!({}) } else { body.versions })
    .bind(&body.tool_calls)
    .bind(&body.tool_call_id)
    .fetch_one(&app.pool)
    .await?
    .into_inner();
    app.cache.forget(&keys::history(&app, id)).await;
    Ok((StatusCode::CREATED, Json(stored)))
}

/// `GET /v1/sessions/{id}/messages?limit=`: the last messages, oldest first.
#[utoipa::path(get, path = "/v1/sessions/{id}/messages", tag = "sessions", params(("id" = Uuid, Path), MessagesQuery), responses((status = 200, body = [StoredMessage]), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn messages(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<Uuid>,
    Query(page): Query<MessagesQuery>,
) -> Result<Json<Vec<StoredMessage>>, ApiError> {
    let session = load(&app.pool, id).await?;
    caller.read(session.user_id)?;
    let limit = page.limit.clamp(1, 500);
    let key = keys::history(&app, id);
    // The last CACHED messages serve every page that small (the router asks for 100 a turn).
    if limit <= CACHED
        && let Some(cached) = app.cache.get::<Vec<StoredMessage>>(&key).await
    {
        let skip = cached.len().saturating_sub(limit as usize);
        return Ok(Json(cached[skip..].to_vec()));
    }
    let fetch = limit.max(CACHED);
    let mut messages = Row::all(
        sqlx::query_as::<_, Row<StoredMessage>>(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = $1 ORDER BY created_at DESC LIMIT $2"
        ))
        .bind(id)
        .bind(fetch)
        .fetch_all(&app.pool)
        .await?,
    );
    messages.reverse();
    if fetch == CACHED {
        app.cache.put(&key, &messages).await;
    }
    let skip = messages.len().saturating_sub(limit as usize);
    Ok(Json(messages.split_off(skip)))
}

/// Messages kept in the cache per session.
const CACHED: i64 = 100;
