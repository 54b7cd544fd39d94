//! Bearer-token authentication and scope checks.
//!
//! Two kinds of token: the appliance's root token (the supervisor's 0600 admin token file,
//! created at install) with every scope, and API tokens minted here with chosen scopes; only
//! their SHA-256 is stored. Every route except the observability ones goes through
//! [`authenticate`].

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use daarion_control_client::{Identity, TokenQuery, TokenStatus};
use daarion_http::ErrorEnvelope;

use crate::app::App;
use crate::changes::Change;
use crate::error::ControlError;
use crate::principal::{ALL_SCOPES, Principal, Scope};
use crate::session::{CSRF_HEADER, session_cookie, session_hash};

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The user an API token was minted for (`memory:user` tokens), beside the [`Principal`] in a
/// request's extensions; absent for the root token and sessions.
#[derive(Debug, Clone, Copy)]
pub struct TokenUser(pub Uuid);

/// Resolves the bearer token into a [`Principal`] in the request's extensions, or answers 401.
pub async fn authenticate(
    State(app): State<App>,
    mut request: Request,
    next: Next,
) -> Result<Response, ControlError> {
    let bearer: Option<String> = daarion_http::bearer(request.headers()).map(str::to_owned);
    let bearer_given = bearer.is_some();
    let principal = match bearer {
        Some(token) => token_principal(&app, &token).await,
        None => {
            let headers = request.headers().clone();
            session_principal(&app, &headers, request.method().clone())
                .await
                .map(|p| (p, None))
        }
    }
    .inspect_err(|e| {
        let kind = match e {
            ControlError::Csrf => "csrf",
            _ if bearer_given => "token",
            _ => "session",
        };
        crate::metrics::AUTH_FAILURES
            .with_label_values(&[kind])
            .inc();
    })?;
    let (principal, user) = principal;
    request.extensions_mut().insert(principal);
    if let Some(user) = user {
        request.extensions_mut().insert(TokenUser(user));
    }
    Ok(next.run(request).await)
}

async fn token_principal(
    app: &App,
    token: &str,
) -> Result<(Principal, Option<Uuid>), ControlError> {
    if app
        .root_token
        .as_deref()
        .is_some_and(|root| daarion_http::secret_eq(root.as_bytes(), token.as_bytes()))
    {
        return Ok((
            Principal {
                name: "root".into(),
                scopes: vec![Scope::Admin],
            },
            None,
        ));
    }
    let (name, scopes, user) = live_token(app, token)
        .await?
        .ok_or(ControlError::Unauthenticated)?;
    let principal = Principal {
        name: format!("token:{name}"),
        scopes: scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
    };
    Ok((principal, user))
}

/// An unrevoked API token's name, scopes and user.
async fn live_token(
    app: &App,
    token: &str,
) -> Result<Option<(String, Vec<String>, Option<Uuid>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT name, scopes, user_id FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(hash(token))
    .fetch_optional(&app.pool)
    .await
}

/// A browser session: the cookie authenticates, and a state-changing request must also carry
/// the session's CSRF token (a cross-site page can make the browser send the cookie, never
/// read the token).
async fn session_principal(
    app: &App,
    headers: &axum::http::HeaderMap,
    method: axum::http::Method,
) -> Result<Principal, ControlError> {
    let session = session_cookie(headers).ok_or(ControlError::Unauthenticated)?;
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT a.username, s.csrf_token FROM admin_sessions s JOIN admin_accounts a ON a.id = s.account_id \
         WHERE s.id_hash = $1 AND s.expires_at > now() AND a.disabled_at IS NULL",
    )
    .bind(session_hash(&session))
    .fetch_optional(&app.pool)
    .await?;
    let (username, csrf) = row.ok_or(ControlError::Unauthenticated)?;
    let safe = matches!(
        method,
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if !safe {
        let given = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !daarion_http::secret_eq(given.as_bytes(), csrf.as_bytes()) {
            return Err(ControlError::Csrf);
        }
    }
    Ok(Principal {
        name: format!("admin:{username}"),
        scopes: vec![Scope::Admin],
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    name: String,
    scopes: Vec<String>,
    /// The memory service's user a `memory:user` token acts for (required with that scope, and
    /// only with it): the token reaches that user's data and no one else's.
    #[serde(default)]
    user_id: Option<Uuid>,
    /// Seconds from now until the token stops working (at most five years).
    #[serde(default)]
    expires_in: Option<u64>,
    /// Or the moment it stops working.
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
}

/// The partial unique index on live token names (migration 0012).
const UNIQUE_LIVE_NAME: &str = "api_tokens_live_name";

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TokenInfo {
    id: Uuid,
    name: String,
    scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<Uuid>,
    created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    revoked_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
}

/// `POST /auth/tokens`: mints a token; the plaintext is in this answer only.
#[utoipa::path(post, path = "/auth/tokens", tag = "auth", request_body = NewToken, responses((status = 201, description = "the token, shown once, and its record"), (status = 409, description = "a live token has this name", body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn create_token(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Json(new): Json<NewToken>,
) -> Result<impl IntoResponse, ControlError> {
    principal.require(Scope::Admin)?;
    let name = new.name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(ControlError::invalid("name", "must be 1 to 100 characters"));
    }
    if new.scopes.is_empty() {
        return Err(ControlError::invalid("scopes", "at least one scope"));
    }
    for scope in &new.scopes {
        if Scope::parse(scope).is_none() {
            return Err(ControlError::invalid(
                "scopes",
                format!(
                    "unknown scope `{scope}` (known: {})",
                    ALL_SCOPES.map(Scope::as_str).join(", ")
                ),
            ));
        }
    }
    // `memory:user` must be bound to a user; `crews:run` may be (it then starts, sees and
    // cancels only that user's runs); nothing else acts for one user.
    let has = |scope: Scope| new.scopes.iter().any(|s| s == scope.as_str());
    match (has(Scope::MemoryUser), has(Scope::CrewsRun), new.user_id) {
        (true, _, None) => {
            return Err(ControlError::invalid(
                "user_id",
                "a memory:user token must name the user it acts for",
            ));
        }
        (false, false, Some(_)) => {
            return Err(ControlError::invalid(
                "user_id",
                "only a memory:user or crews:run token is minted for a user",
            ));
        }
        _ => {}
    }
    let expires_at =
        crate::session::token_expiry(new.expires_in, new.expires_at, OffsetDateTime::now_utc())?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!(
        "dcp_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let id = Uuid::now_v7();
    let mut tx = app.pool.begin().await?;
    let info: TokenInfo = sqlx::query_as(
        "INSERT INTO api_tokens (id, name, token_hash, scopes, user_id, created_by, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         RETURNING id, name, scopes, user_id, created_by, created_at, revoked_at, expires_at",
    )
    .bind(id)
    .bind(name)
    .bind(hash(&token))
    .bind(&new.scopes)
    .bind(new.user_id)
    .bind(&principal.name)
    .bind(expires_at)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        // Names tell tokens apart in audit and usage records: two live tokens never share one.
        if e.as_database_error().and_then(|d| d.constraint()) == Some(UNIQUE_LIVE_NAME) {
            ControlError::Conflict(format!("a live token is already named `{name}`"))
        } else {
            e.into()
        }
    })?;
    Change::new(&principal, "token.create", format!("token:{id}"))
        .after(serde_json::to_value(&info).unwrap_or_default())
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    app.changes.wake();
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "token": token, "info": info })),
    ))
}

/// `GET /auth/tokens`: every token without its secret.
#[utoipa::path(get, path = "/auth/tokens", tag = "auth", responses((status = 200, body = [TokenInfo]), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn list_tokens(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Result<Json<Vec<TokenInfo>>, ControlError> {
    principal.require(Scope::Admin)?;
    let tokens = sqlx::query_as(
        "SELECT id, name, scopes, user_id, created_by, created_at, revoked_at, expires_at \
         FROM api_tokens ORDER BY created_at",
    )
    .fetch_all(&app.pool)
    .await?;
    Ok(Json(tokens))
}

/// `DELETE /auth/tokens/{id}`: revokes at once (the row stays for the audit trail).
#[utoipa::path(delete, path = "/auth/tokens/{id}", tag = "auth", params(("id" = uuid::Uuid, Path)), responses((status = 204, description = "revoked"), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn revoke_token(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ControlError> {
    principal.require(Scope::Admin)?;
    let mut tx = app.pool.begin().await?;
    let revoked = sqlx::query(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if revoked.rows_affected() == 0 {
        return Err(ControlError::UnknownToken(id));
    }
    Change::new(&principal, "token.revoke", format!("token:{id}"))
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    app.changes.wake();
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /auth/whoami`: who the credential is. A POST, so a browser session must show its CSRF
/// token too: a service that a browser reaches with the session cookie (the gateway's web chat)
/// forwards the cookie and the token here to learn who it is talking to.
#[utoipa::path(post, path = "/auth/whoami", tag = "auth", responses((status = 200, body = Identity), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "a session without its CSRF token", body = ErrorEnvelope)))]
pub async fn whoami(
    axum::Extension(principal): axum::Extension<Principal>,
    user: Option<axum::Extension<TokenUser>>,
) -> Json<Identity> {
    let scopes = principal
        .scopes
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    Json(Identity {
        name: principal.name,
        scopes,
        user_id: user.map(|axum::Extension(TokenUser(u))| u.to_string()),
    })
}

/// `POST /auth/introspect`: what an API token may do, for the other services that accept the
/// tokens minted here (the memory API). Needs the `admin` scope: only the appliance's own
/// services hold it.
#[utoipa::path(post, path = "/auth/introspect", tag = "auth", request_body = TokenQuery, responses((status = 200, body = TokenStatus), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn introspect(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Json(body): Json<TokenQuery>,
) -> Result<Json<TokenStatus>, ControlError> {
    principal.require(Scope::Admin)?;
    Ok(Json(match live_token(&app, &body.token).await? {
        Some((name, scopes, user)) => {
            TokenStatus::known(name, scopes).for_user(user.map(|u| u.to_string()))
        }
        None => TokenStatus::unknown(),
    }))
}
