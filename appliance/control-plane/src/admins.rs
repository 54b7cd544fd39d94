//! Admin accounts for the browser: argon2id password hashes, sessions in an HttpOnly,
//! SameSite=Strict cookie, and a CSRF token that every state-changing call made with the
//! cookie must echo in `X-CSRF-Token`.

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use axum::Json;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use daarion_http::ErrorEnvelope;

use crate::app::App;
use crate::changes::Change;
use crate::error::ControlError;
use crate::principal::{Principal, Scope};
use crate::session::{SESSION_COOKIE, session_cookie, session_hash};

const SESSION_HOURS: i64 = 12;
const MIN_PASSWORD: usize = 12;

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_password(password: &str) -> Result<String, ControlError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| ControlError::invalid("password", e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ControlError::invalid("password", e.to_string()))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A real argon2id hash of a random password, verified for unknown users so they cost the same
/// time as known ones.
static DECOY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password(&random_hex(16)).unwrap_or_default());

fn valid_username(name: &str) -> bool {
    let mut chars = name.chars();
    (2..=64).contains(&name.len())
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
}

/// A random 24-character password for `daarion admin create` without `--password-stdin`.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Creates an admin account; used by `POST /auth/admins` and `daarion admin create`.
pub async fn create_admin(
    pool: &daarion_db::PgPool,
    username: &str,
    password: &str,
) -> Result<Uuid, ControlError> {
    if !valid_username(username) {
        return Err(ControlError::invalid(
            "username",
            "2 to 64 characters: lowercase letters, digits, '.', '_' and '-', starting with a letter",
        ));
    }
    if password.chars().count() < MIN_PASSWORD {
        return Err(ControlError::invalid(
            "password",
            format!("at least {MIN_PASSWORD} characters"),
        ));
    }
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ControlError::invalid("password", e.to_string()))??;
    let id = Uuid::now_v7();
    let inserted = sqlx::query(
        "INSERT INTO admin_accounts (id, username, password_hash) VALUES ($1, $2, $3) ON CONFLICT (username) DO NOTHING",
    )
    .bind(id)
    .bind(username)
    .bind(hash)
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(ControlError::Conflict(format!(
            "admin `{username}` already exists"
        )));
    }
    Ok(id)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdmin {
    username: String,
    password: String,
}

/// Never printed: the password stays out of logs and debug output.
impl std::fmt::Debug for NewAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAdmin")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AdminInfo {
    id: Uuid,
    username: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    disabled_at: Option<OffsetDateTime>,
}

#[utoipa::path(post, path = "/auth/admins", tag = "auth", request_body = NewAdmin, responses((status = 201, description = "created"), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn add(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Json(new): Json<NewAdmin>,
) -> Result<impl IntoResponse, ControlError> {
    principal.require(Scope::Admin)?;
    let id = create_admin(&app.pool, &new.username, &new.password).await?;
    let mut tx = app.pool.begin().await?;
    Change::new(
        &principal,
        "admin.create",
        format!("admin:{}", new.username),
    )
    .after(json!({"id": id, "username": new.username}))
    .record(&mut tx)
    .await?;
    tx.commit().await?;
    app.changes.wake();
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "username": new.username})),
    ))
}

#[utoipa::path(get, path = "/auth/admins", tag = "auth", responses((status = 200, body = [AdminInfo]), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn list(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Result<Json<Vec<AdminInfo>>, ControlError> {
    principal.require(Scope::Admin)?;
    Ok(Json(
        sqlx::query_as(
            "SELECT id, username, created_at, disabled_at FROM admin_accounts ORDER BY username",
        )
        .fetch_all(&app.pool)
        .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
}

/// `POST /auth/login`: the same answer for an unknown user and a wrong password, and the same
/// work (a hash verification) for both, so neither is revealed.
#[utoipa::path(post, path = "/auth/login", tag = "auth", security(()), request_body = Login, responses((status = 200, description = "session cookie set; body has the CSRF token"), (status = 401, body = ErrorEnvelope)))]
pub async fn login(
    State(app): State<App>,
    Json(login): Json<Login>,
) -> Result<impl IntoResponse, ControlError> {
    let account: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT id, password_hash FROM admin_accounts WHERE username = $1 AND disabled_at IS NULL",
    )
    .bind(&login.username)
    .fetch_optional(&app.pool)
    .await?;
    let hash = account
        .as_ref()
        .map(|(_, h)| h.clone())
        .unwrap_or_else(|| DECOY.clone());
    let password = login.password;
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let account_id = match (ok, account) {
        (true, Some((id, _))) => id,
        _ => {
            tracing::warn!(username = %login.username, "failed admin login");
            crate::metrics::AUTH_FAILURES
                .with_label_values(&["login"])
                .inc();
            return Err(ControlError::Unauthenticated);
        }
    };
    let session = random_hex(32);
    let csrf = random_hex(16);
    let expires_at = OffsetDateTime::now_utc() + time::Duration::hours(SESSION_HOURS);
    sqlx::query(
        "INSERT INTO admin_sessions (id_hash, account_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(session_hash(&session))
    .bind(account_id)
    .bind(&csrf)
    .bind(expires_at)
    .execute(&app.pool)
    .await?;
    let cookie = format!(
        "{SESSION_COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_HOURS * 3600
    );
    Ok((
        [(SET_COOKIE, cookie)],
        Json(json!({
            "username": login.username,
            "csrf_token": csrf,
            "expires_at": expires_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        })),
    ))
}

/// `POST /auth/logout`: ends the session the cookie names.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(()), responses((status = 204, description = "session ended")))]
pub async fn logout(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ControlError> {
    if let Some(session) = session_cookie(&headers) {
        sqlx::query("DELETE FROM admin_sessions WHERE id_hash = $1")
            .bind(session_hash(&session))
            .execute(&app.pool)
            .await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(
            SET_COOKIE,
            format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
        )],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_per_salt() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("wrong horse battery", &a));
    }

    #[test]
    fn usernames() {
        assert!(valid_username("admin"));
        assert!(!valid_username("a"));
        assert!(!valid_username("Admin"));
        assert!(!valid_username("1admin"));
    }
}
