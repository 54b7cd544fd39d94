//! The admin browser session as it travels: the cookie that names it and the header that
//! echoes its CSRF token. Shared by the login that sets them, the authentication that reads
//! them and the OpenAPI document that describes them.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::app::App;

pub const SESSION_COOKIE: &str = "daarion_session";

/// A session unused this long ends. Its `expires_at` is the sliding deadline: each use moves
/// it to `now + IDLE`, never past `created_at + ABSOLUTE`, so the one check authentication
/// already makes (`expires_at > now()`) enforces both limits.
pub const IDLE: Duration = Duration::from_secs(12 * 3600);
/// No session outlives this, however busy.
pub const ABSOLUTE: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often expired sessions are deleted and expired API tokens marked revoked.
const SWEEP_EVERY: Duration = Duration::from_secs(10 * 60);
/// A deadline is only rewritten when it would move by more than this: one write a minute per
/// session, not one per request.
const TOUCH_SLACK_S: i64 = 60;

/// The same header the services that forward a session send ([`daarion_control_client`]).
pub const CSRF_HEADER: &str = daarion_control_client::CSRF_HEADER;

/// Only this hash of a session id is stored: a leaked table opens no session.
pub fn session_hash(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

/// The session id from the `Cookie` header, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

/// Moves an authenticated session's idle deadline forward. Runs inside authentication, so
/// only for a session it accepted; a bearer request carries no session to move.
pub async fn touch(State(app): State<App>, request: Request, next: Next) -> Response {
    if daarion_http::bearer(request.headers()).is_none()
        && let Some(session) = session_cookie(request.headers())
    {
        let moved = sqlx::query(
            "UPDATE admin_sessions SET expires_at = LEAST(created_at + $2, now() + $3) \
             WHERE id_hash = $1 AND expires_at > now() \
               AND expires_at < LEAST(created_at + $2, now() + $3) - make_interval(secs => $4)",
        )
        .bind(session_hash(&session))
        .bind(ABSOLUTE)
        .bind(IDLE)
        .bind(TOUCH_SLACK_S as f64)
        .execute(&app.pool)
        .await;
        if let Err(e) = moved {
            // The request goes on: the session stays valid until its current deadline.
            tracing::warn!(error = %e, "cannot extend the session");
        }
    }
    next.run(request).await
}

/// The deadline a new session starts with.
pub fn first_deadline(now: time::OffsetDateTime) -> time::OffsetDateTime {
    now + IDLE.min(ABSOLUTE)
}

/// Runs outside authentication: an API token past its `expires_at` is marked revoked on its
/// first use after that, so authentication (which refuses revoked tokens) answers 401 and
/// introspection, the token list and the audit trail all see it as ended.
pub async fn expire_token(State(app): State<App>, request: Request, next: Next) -> Response {
    if let Some(token) = daarion_http::bearer(request.headers())
        && let Err(e) = sqlx::query(
            "UPDATE api_tokens SET revoked_at = expires_at \
             WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at <= now()",
        )
        .bind(session_hash(token))
        .execute(&app.pool)
        .await
    {
        tracing::warn!(error = %e, "cannot check the token's expiry");
    }
    next.run(request).await
}

/// The longest an API token may be minted for, when it is given an expiry at all.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(5 * 365 * 24 * 3600);

/// A token's `expires_at` from what its mint asked: `expires_in` seconds or an `expires_at`
/// instant (not both), in the future and within [`MAX_TOKEN_LIFETIME`]; `None`: it never
/// expires. For `POST /auth/tokens` (its body's two optional fields).
pub fn token_expiry(
    expires_in: Option<u64>,
    expires_at: Option<time::OffsetDateTime>,
    now: time::OffsetDateTime,
) -> Result<Option<time::OffsetDateTime>, crate::ControlError> {
    let max = now + MAX_TOKEN_LIFETIME;
    let at = match (expires_in, expires_at) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(crate::ControlError::invalid(
                "expires_in",
                "give expires_in or expires_at, not both",
            ));
        }
        (Some(0), None) => {
            return Err(crate::ControlError::invalid(
                "expires_in",
                "at least 1 second",
            ));
        }
        (Some(secs), None) => now + Duration::from_secs(secs.min(MAX_TOKEN_LIFETIME.as_secs())),
        (None, Some(at)) => at,
    };
    if at <= now || at > max {
        return Err(crate::ControlError::invalid(
            "expires_at",
            "must be in the future and at most 5 years away",
        ));
    }
    Ok(Some(at))
}

/// Deletes ended sessions and revokes expired tokens; returns how many of each.
pub async fn sweep(pool: &daarion_db::PgPool) -> Result<(u64, u64), sqlx::Error> {
    let sessions = sqlx::query("DELETE FROM admin_sessions WHERE expires_at <= now()")
        .execute(pool)
        .await?
        .rows_affected();
    let tokens = sqlx::query(
        "UPDATE api_tokens SET revoked_at = expires_at WHERE revoked_at IS NULL AND expires_at <= now()",
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok((sessions, tokens))
}

/// [`sweep`] every few minutes until `shutdown`.
pub async fn sweeper(pool: daarion_db::PgPool, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        match sweep(&pool).await {
            Ok((0, 0)) => {}
            Ok((sessions, tokens)) => {
                tracing::info!(sessions, tokens, "removed expired sessions and tokens");
            }
            Err(e) => tracing::warn!(error = %e, "cannot remove expired sessions"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_parsing() {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            "theme=dark; daarion_session=abc123; other=1"
                .parse()
                .unwrap(),
        );
        assert_eq!(session_cookie(&headers).as_deref(), Some("abc123"));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn token_expiries() {
        let now = time::OffsetDateTime::now_utc();
        let hour = time::Duration::hours(1);
        assert_eq!(token_expiry(None, None, now).unwrap(), None);
        assert_eq!(
            token_expiry(Some(3600), None, now).unwrap(),
            Some(now + hour)
        );
        assert_eq!(
            token_expiry(None, Some(now + hour), now).unwrap(),
            Some(now + hour)
        );
        for (secs, at) in [
            (Some(0), None),
            (Some(1), Some(now + hour)),
            (None, Some(now - hour)),
            (None, Some(now + time::Duration::days(6 * 365))),
        ] {
            assert!(token_expiry(secs, at, now).is_err(), "{secs:?} {at:?}");
        }
    }
}
