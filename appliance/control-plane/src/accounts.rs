//! What an admin account can have done to it after it exists: a new password (which signs out
//! its other sessions), disabled and enabled again (a disabled account's sessions end at
//! once), and every session ended ("sign out everywhere"). The functions take a pool and the
//! actor, so `daarion admin …` (root, on the box) makes the same change with the same audit
//! row as the API.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use daarion_db::PgPool;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use daarion_http::ErrorEnvelope;

use crate::admins::{MIN_PASSWORD, clear_cookie, hash_password, refused, verify_password};
use crate::app::App;
use crate::changes::Change;
use crate::error::ControlError;
use crate::principal::{Principal, Scope};
use crate::session::{session_cookie, session_hash};

async fn account_id(pool: &PgPool, username: &str) -> Result<Uuid, ControlError> {
    sqlx::query_scalar("SELECT id FROM admin_accounts WHERE username = $1")
        .bind(username)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| ControlError::invalid("username", format!("no admin `{username}`")))
}

/// Sets `username`'s password and ends its sessions, all but `keep` (the session that asked).
pub async fn set_password(
    pool: &PgPool,
    actor: &Principal,
    username: &str,
    password: &str,
    keep: Option<Vec<u8>>,
) -> Result<u64, ControlError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(ControlError::invalid(
            "new_password",
            format!("at least {MIN_PASSWORD} characters"),
        ));
    }
    let id = account_id(pool, username).await?;
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ControlError::invalid("new_password", e.to_string()))??;
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE admin_accounts SET password_hash = $2 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    let ended = sqlx::query(
        "DELETE FROM admin_sessions WHERE account_id = $1 AND id_hash IS DISTINCT FROM $2",
    )
    .bind(id)
    .bind(keep)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Change::new(actor, "admin.password", format!("admin:{username}"))
        .after(json!({"sessions_ended": ended}))
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(ended)
}

/// Disables (`true`) or enables an account. Disabling ends every session in the same
/// transaction, so no request is served on one afterwards.
pub async fn set_disabled(
    pool: &PgPool,
    actor: &Principal,
    username: &str,
    disabled: bool,
) -> Result<(), ControlError> {
    let id = account_id(pool, username).await?;
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE admin_accounts SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END WHERE id = $1",
    )
    .bind(id)
    .bind(disabled)
    .execute(&mut *tx)
    .await?;
    let ended = if disabled {
        sqlx::query("DELETE FROM admin_sessions WHERE account_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
    } else {
        0
    };
    let action = if disabled {
        "admin.disable"
    } else {
        "admin.enable"
    };
    Change::new(actor, action, format!("admin:{username}"))
        .after(json!({"disabled": disabled, "sessions_ended": ended}))
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Ends every session of `username`; returns how many there were.
pub async fn end_all_sessions(
    pool: &PgPool,
    actor: &Principal,
    username: &str,
) -> Result<u64, ControlError> {
    let id = account_id(pool, username).await?;
    let mut tx = pool.begin().await?;
    let ended = sqlx::query("DELETE FROM admin_sessions WHERE account_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    Change::new(actor, "admin.sign_out", format!("admin:{username}"))
        .after(json!({"sessions_ended": ended}))
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(ended)
}

/// The account behind the request's own session: these operations are about "me", which a
/// bearer token does not have.
fn own_username(principal: &Principal) -> Result<&str, ControlError> {
    principal.name.strip_prefix("admin:").ok_or_else(|| {
        ControlError::invalid(
            "session",
            "only an admin session (not a token) has an account of its own",
        )
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Never printed: the passwords stay out of logs and debug output.
impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordChange").finish_non_exhaustive()
    }
}

/// `POST /auth/password`: the session's own password, given the current one. Every other
/// session of the account ends; this one stays.
#[utoipa::path(post, path = "/auth/password", tag = "auth", request_body = PasswordChange, responses((status = 200, description = "changed; other sessions ended"), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "a session without its CSRF token", body = ErrorEnvelope), (status = 422, description = "wrong current password, too short a new one, or not an admin session", body = ErrorEnvelope), (status = 429, description = "too many wrong current passwords: see Retry-After", body = ErrorEnvelope), (status = 503, description = "too many password checks at once", body = ErrorEnvelope)))]
pub async fn change_password(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    headers: HeaderMap,
    Json(change): Json<PasswordChange>,
) -> Result<Response, ControlError> {
    let username = own_username(&principal)?.to_owned();
    // A stolen session must not guess the current password faster than a login could.
    let source = crate::login_guard::client_source(&headers);
    if let Err(refusal) = app.login.check(&username, &source) {
        return Ok(refused(refusal));
    }
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM admin_accounts WHERE username = $1")
            .bind(&username)
            .fetch_one(&app.pool)
            .await?;
    let slot = match app.login.hashing_slot().await {
        Ok(slot) => slot,
        Err(refusal) => return Ok(refused(refusal)),
    };
    let current = change.current_password;
    let ok = tokio::task::spawn_blocking(move || verify_password(&current, &hash))
        .await
        .unwrap_or(false);
    drop(slot);
    if !ok {
        app.login.failed(&username, &source);
        // Not 401: the session itself is fine, and the UI signs out on a 401.
        return Err(ControlError::invalid("current_password", "is not right"));
    }
    let keep = session_cookie(&headers).map(|s| session_hash(&s));
    let ended = set_password(&app.pool, &principal, &username, &change.new_password, keep).await?;
    app.changes.wake();
    Ok(Json(json!({"sessions_ended": ended})).into_response())
}

/// `POST /auth/signout-everywhere`: ends every session of the caller's account, this one too.
#[utoipa::path(post, path = "/auth/signout-everywhere", tag = "auth", responses((status = 204, description = "every session ended"), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "a session without its CSRF token", body = ErrorEnvelope), (status = 422, description = "not an admin session", body = ErrorEnvelope)))]
pub async fn sign_out_everywhere(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Result<impl IntoResponse, ControlError> {
    let username = own_username(&principal)?.to_owned();
    end_all_sessions(&app.pool, &principal, &username).await?;
    app.changes.wake();
    Ok((StatusCode::NO_CONTENT, [clear_cookie()]))
}

/// `POST /auth/admins/{username}/disable`: the account cannot log in, and its sessions end now.
/// An admin session cannot disable its own account (that would lock it out mid-request).
#[utoipa::path(post, path = "/auth/admins/{username}/disable", tag = "auth", params(("username" = String, Path)), responses((status = 204, description = "disabled; sessions ended"), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope), (status = 409, description = "an admin's own account", body = ErrorEnvelope), (status = 422, description = "no such admin", body = ErrorEnvelope)))]
pub async fn disable(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(username): Path<String>,
) -> Result<StatusCode, ControlError> {
    principal.require(Scope::Admin)?;
    if own_username(&principal).is_ok_and(|own| own == username) {
        return Err(ControlError::Conflict(
            "an admin cannot disable their own account".into(),
        ));
    }
    set_disabled(&app.pool, &principal, &username, true).await?;
    app.changes.wake();
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /auth/admins/{username}/enable`: the account may log in again.
#[utoipa::path(post, path = "/auth/admins/{username}/enable", tag = "auth", params(("username" = String, Path)), responses((status = 204, description = "enabled"), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope), (status = 422, description = "no such admin", body = ErrorEnvelope)))]
pub async fn enable(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(username): Path<String>,
) -> Result<StatusCode, ControlError> {
    principal.require(Scope::Admin)?;
    set_disabled(&app.pool, &principal, &username, false).await?;
    app.changes.wake();
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /auth/admins/{username}/sessions`: signs an account out everywhere.
#[utoipa::path(delete, path = "/auth/admins/{username}/sessions", tag = "auth", params(("username" = String, Path)), responses((status = 200, description = "how many sessions ended"), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope), (status = 422, description = "no such admin", body = ErrorEnvelope)))]
pub async fn end_sessions(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(username): Path<String>,
) -> Result<Json<serde_json::Value>, ControlError> {
    principal.require(Scope::Admin)?;
    let ended = end_all_sessions(&app.pool, &principal, &username).await?;
    app.changes.wake();
    Ok(Json(json!({"sessions_ended": ended})))
}
