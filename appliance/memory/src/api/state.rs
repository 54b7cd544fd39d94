//! Session state: short-lived values a conversation keeps between turns, each with a TTL.
//!
//! PostgreSQL holds them (`session_state`), so a Redis outage loses nothing; Redis holds each
//! session's entries for the hot read of every turn, dropped on every write. Expiry is exact
//! either way: a read filters on `expires_at`, cached or not, and [`sweep`] deletes what
//! expired. Ending the session deletes its state.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use daarion_memory_client::state::{Entry, PutEntry};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use super::keys;
#[allow(unused_imports)]
use super::openapi::ErrorEnvelope;
use super::sessions::load;
use crate::App;
use crate::rows::Row;

pub use daarion_memory_client::state::{MAX_ENTRIES, MAX_VALUE_BYTES};

const SWEEP_EVERY: Duration = Duration::from_secs(60);

fn check_key(key: &str) -> Result<(), ApiError> {
    let mut chars = key.chars();
    let ok = key.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | ':' | '-')
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "key",
            "1 to 64 of a-z, 0-9, '_', '.', ':', '-', starting with a letter or digit",
        ))
    }
}

/// The session's entries that have not expired, through the cache.
async fn entries(app: &App, session: Uuid) -> Result<Vec<Entry>, ApiError> {
    let key = keys::state(app, session);
    let all = match app.cache.get::<Vec<Entry>>(&key).await {
        Some(cached) => cached,
        None => {
            let stored = Row::all(
                sqlx::query_as::<_, Row<Entry>>(
                    "SELECT key, value, updated_at, expires_at FROM session_state \
                     WHERE session_id = $1 AND expires_at > clock_timestamp() ORDER BY key",
                )
                .bind(session)
                .fetch_all(&app.pool)
                .await?,
            );
            app.cache.put(&key, &stored).await;
            stored
        }
    };
    let now = OffsetDateTime::now_utc();
    Ok(all.into_iter().filter(|e| e.expires_at > now).collect())
}

/// `GET /v1/sessions/{id}/state`: every entry that has not expired.
#[utoipa::path(get, path = "/v1/sessions/{id}/state", tag = "sessions", params(("id" = Uuid, Path)), responses((status = 200, body = [Entry]), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn list(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<Uuid>,
) -> Result<Json<Vec<Entry>>, ApiError> {
    let session = load(&app.pool, id).await?;
    caller.read(session.user_id)?;
    Ok(Json(entries(&app, id).await?))
}

/// `GET /v1/sessions/{id}/state/{key}`: one entry, 404 once it expired.
#[utoipa::path(get, path = "/v1/sessions/{id}/state/{key}", tag = "sessions", params(("id" = Uuid, Path), ("key" = String, Path)), responses((status = 200, body = Entry), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn get(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((id, key)): Path<(Uuid, String)>,
) -> Result<Json<Entry>, ApiError> {
    check_key(&key)?;
    let session = load(&app.pool, id).await?;
    caller.read(session.user_id)?;
    entries(&app, id)
        .await?
        .into_iter()
        .find(|e| e.key == key)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("state `{key}` in session {id}")))
}

/// `PUT /v1/sessions/{id}/state/{key}`: sets an entry (replacing it) with its TTL.
#[utoipa::path(put, path = "/v1/sessions/{id}/state/{key}", tag = "sessions", params(("id" = Uuid, Path), ("key" = String, Path)), request_body = PutEntry, responses((status = 200, body = Entry), (status = 404, body = ErrorEnvelope), (status = 409, description = "the session has ended, or holds too many entries", body = ErrorEnvelope), (status = 413, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn put(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((id, key)): Path<(Uuid, String)>,
    Json(body): Json<PutEntry>,
) -> Result<Json<Entry>, ApiError> {
    check_key(&key)?;
    let limits = &app.config.memory;
    let ttl = body
        .ttl_secs
        .unwrap_or(limits.session_state_default_ttl_secs);
    if ttl == 0 || ttl > limits.session_state_max_ttl_secs {
        return Err(ApiError::invalid(
            "ttl_secs",
            format!("1 to {} seconds", limits.session_state_max_ttl_secs),
        ));
    }
    let size = body.value.to_string().len();
    if size > MAX_VALUE_BYTES {
        return Err(ApiError::TooLarge {
            what: "a state value",
            size,
            limit: MAX_VALUE_BYTES,
        });
    }
    let session = load(&app.pool, id).await?;
    caller.write(session.user_id)?;
    let mut tx = app.pool.begin().await?;
    // One writer per session at a time, so the entry limit holds under concurrent writes; and
    // whether it has ended is read under the same lock, so an end racing this write either
    // comes first (409) or waits and then deletes what was written.
    let ended: bool =
        sqlx::query_scalar("SELECT ended_at IS NOT NULL FROM sessions WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    if ended {
        return Err(ApiError::Conflict(format!("session {id} has ended")));
    }
    let others: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM session_state WHERE session_id = $1 AND key <> $2 \
         AND expires_at > clock_timestamp()",
    )
    .bind(id)
    .bind(&key)
    .fetch_one(&mut *tx)
    .await?;
    if others >= MAX_ENTRIES {
        return Err(ApiError::Conflict(format!(
            "session {id} already keeps {MAX_ENTRIES} state entries; delete some first"
        )));
    }
    let entry = sqlx::query_as::<_, Row<Entry>>(
        "INSERT INTO session_state (session_id, key, value, expires_at) \
         VALUES ($1, $2, $3, clock_timestamp() + make_interval(secs => $4)) \
         ON CONFLICT (session_id, key) DO UPDATE SET value = EXCLUDED.value, \
           updated_at = clock_timestamp(), expires_at = EXCLUDED.expires_at \
         RETURNING key, value, updated_at, expires_at",
    )
    .bind(id)
    .bind(&key)
    .bind(&body.value)
    .bind(ttl as f64)
    .fetch_one(&mut *tx)
    .await?
    .into_inner();
    tx.commit().await?;
    app.cache.forget(&keys::state(&app, id)).await;
    Ok(Json(entry))
}

/// `DELETE /v1/sessions/{id}/state/{key}`: 204 whether or not it was there.
#[utoipa::path(delete, path = "/v1/sessions/{id}/state/{key}", tag = "sessions", params(("id" = Uuid, Path), ("key" = String, Path)), responses((status = 204, description = "gone"), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn delete(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((id, key)): Path<(Uuid, String)>,
) -> Result<StatusCode, ApiError> {
    check_key(&key)?;
    let session = load(&app.pool, id).await?;
    caller.write(session.user_id)?;
    sqlx::query("DELETE FROM session_state WHERE session_id = $1 AND key = $2")
        .bind(id)
        .bind(&key)
        .execute(&app.pool)
        .await?;
    app.cache.forget(&keys::state(&app, id)).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes the entries that expired; returns how many.
pub async fn sweep_expired(pool: &daarion_db::PgPool) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM session_state WHERE expires_at <= clock_timestamp()")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

/// Deletes expired entries every minute until `shutdown`. Reads never depend on it: it only
/// keeps the table small.
pub(crate) async fn sweep(app: App, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(SWEEP_EVERY) => {}
        }
        match sweep_expired(&app.pool).await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "expired session state swept"),
            Err(e) => tracing::warn!(error = %e, "session state sweep failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_key;

    #[test]
    fn keys_are_short_plain_words() {
        for good in ["pending", "tool:search.page-2", "0", &"k".repeat(64)] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in ["", "Pending", "_x", "a b", "ключ", &"k".repeat(65), "a/b"] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }
}
