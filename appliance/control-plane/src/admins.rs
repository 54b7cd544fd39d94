//! Admin accounts for the browser: argon2id password hashes, sessions in an HttpOnly,
//! SameSite=Strict cookie, and a CSRF token that every state-changing call made with the
//! cookie must echo in `X-CSRF-Token`.

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use axum::Json;
use axum::extract::{Request, State};
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use daarion_http::{ErrorEnvelope, ErrorResponse};

use crate::app::App;
use crate::changes::Change;
use crate::error::ControlError;
use crate::login_guard::{Refusal, client_source, log_field};
use crate::principal::{Principal, Scope};
use crate::session::{CSRF_HEADER, SESSION_COOKIE, session_cookie, session_hash};

pub(crate) const MIN_PASSWORD: usize = 12;

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn hash_password(password: &str) -> Result<String, ControlError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| ControlError::invalid("password", e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ControlError::invalid("password", e.to_string()))
}

pub(crate) fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A real argon2id hash of a random password, verified for unknown users so they cost the same
/// time as known ones.
pub(crate) static DECOY: std::sync::LazyLock<String> =
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

/// Never printed: the password stays out of logs and debug output.
impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &log_field(&self.username))
            .finish_non_exhaustive()
    }
}

/// The most a login (or logout) body may be: a username and a password fit many times over.
pub const LOGIN_BODY_LIMIT: usize = 4096;

/// Reads at most [`LOGIN_BODY_LIMIT`] bytes of the body before anything else does: a bigger one
/// is a 413 without being buffered.
pub async fn limit_login_body(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, LOGIN_BODY_LIMIT).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Err(_) => ErrorResponse::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("a login body is at most {LOGIN_BODY_LIMIT} bytes"),
        )
        .into_response(),
    }
}

/// The answer to a login that is not tried: 429 with `Retry-After` while a backoff runs, 503
/// with a short one when every hashing slot stayed busy.
pub(crate) fn refused(refusal: Refusal) -> Response {
    let (status, code, message, after) = match refusal {
        Refusal::Backoff(wait) => (
            StatusCode::TOO_MANY_REQUESTS,
            "login_throttled",
            "too many failed logins; try again later",
            // Rounded up: a client that waits exactly this long is let in.
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        ),
        Refusal::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "login_busy",
            "too many logins at once; try again shortly",
            1,
        ),
    };
    let mut response = ErrorResponse::new(status, code, message).into_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(after.max(1)));
    response
}

/// `POST /auth/login`: the same answer for an unknown user and a wrong password, and the same
/// work (a hash verification) for both, so neither is revealed. Failures are counted per
/// account and per client address; past a few, each attempt must wait longer (429 with
/// `Retry-After`), the right password included, so guessing is slow whoever guesses.
#[utoipa::path(post, path = "/auth/login", tag = "auth", security(()), request_body = Login, responses((status = 200, description = "session cookie set; body has the CSRF token"), (status = 401, body = ErrorEnvelope), (status = 413, description = "body over 4 KiB", body = ErrorEnvelope), (status = 429, description = "too many failures: see Retry-After", body = ErrorEnvelope), (status = 503, description = "too many logins at once: see Retry-After", body = ErrorEnvelope)))]
pub async fn login(
    State(app): State<App>,
    headers: HeaderMap,
    Json(login): Json<Login>,
) -> Result<Response, ControlError> {
    let source = client_source(&headers);
    // Counted under the name as given, bounded, so a long name cannot make the key big.
    let account_key: String = login.username.chars().take(64).collect();
    if let Err(refusal) = app.login.check(&account_key, &source) {
        crate::metrics::LOGIN_REFUSALS
            .with_label_values(&["backoff"])
            .inc();
        return Ok(refused(refusal));
    }
    let slot = match app.login.hashing_slot().await {
        Ok(slot) => slot,
        Err(refusal) => {
            crate::metrics::LOGIN_REFUSALS
                .with_label_values(&["busy"])
                .inc();
            return Ok(refused(refusal));
        }
    };
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
    drop(slot);
    let account_id = match (ok, account) {
        (true, Some((id, _))) => id,
        _ => {
            app.login.failed(&account_key, &source);
            tracing::warn!(username = %log_field(&login.username), source = %source, "failed admin login");
            crate::metrics::AUTH_FAILURES
                .with_label_values(&["login"])
                .inc();
            return Err(ControlError::Unauthenticated);
        }
    };
    app.login.succeeded(&account_key);
    // Ended sessions go now as well as on the periodic sweep: a login is when they pile up.
    if let Err(e) = crate::session::sweep(&app.pool).await {
        tracing::warn!(error = %e, "cannot remove expired sessions");
    }
    let session = random_hex(32);
    let csrf = random_hex(16);
    let expires_at = crate::session::first_deadline(OffsetDateTime::now_utc());
    sqlx::query(
        "INSERT INTO admin_sessions (id_hash, account_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(session_hash(&session))
    .bind(account_id)
    .bind(&csrf)
    .bind(expires_at)
    .execute(&app.pool)
    .await?;
    // The cookie may live as long as the absolute limit; the idle limit is the server's.
    let cookie = format!(
        "{SESSION_COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        crate::session::ABSOLUTE.as_secs()
    );
    Ok((
        [(SET_COOKIE, cookie)],
        Json(json!({
            "username": login.username,
            "csrf_token": csrf,
            "expires_at": expires_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        })),
    )
        .into_response())
}

/// A `Set-Cookie` that makes the browser forget the session.
pub(crate) fn clear_cookie() -> (axum::http::HeaderName, String) {
    (
        SET_COOKIE,
        format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    )
}

/// `POST /auth/logout`: ends the session the cookie names. A live session must show its CSRF
/// token, so a cross-site page cannot sign the admin out; a cookie naming no live session is
/// only cleared.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(()), responses((status = 204, description = "session ended"), (status = 403, description = "a live session without its CSRF token", body = ErrorEnvelope)))]
pub async fn logout(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ControlError> {
    if let Some(session) = session_cookie(&headers) {
        let csrf: Option<String> = sqlx::query_scalar(
            "SELECT csrf_token FROM admin_sessions WHERE id_hash = $1 AND expires_at > now()",
        )
        .bind(session_hash(&session))
        .fetch_optional(&app.pool)
        .await?;
        if let Some(csrf) = csrf {
            let given = headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !daarion_http::secret_eq(given.as_bytes(), csrf.as_bytes()) {
                crate::metrics::AUTH_FAILURES
                    .with_label_values(&["csrf"])
                    .inc();
                return Err(ControlError::Csrf);
            }
        }
        sqlx::query("DELETE FROM admin_sessions WHERE id_hash = $1")
            .bind(session_hash(&session))
            .execute(&app.pool)
            .await?;
    }
    Ok((StatusCode::NO_CONTENT, [clear_cookie()]))
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
