//! Users and their channel identities.

use axum::Json;
use axum::extract::{Path, State};
use daarion_memory_client::users::{
    Identity, Listed, Profile, Resolve, Resolved, User, UsersQuery,
};
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use super::keys;
#[allow(unused_imports)]
use super::openapi::ErrorEnvelope;
use crate::App;
use crate::rows::Row;

fn valid_channel(c: &str) -> bool {
    let mut chars = c.chars();
    c.len() <= 32
        && chars.next().is_some_and(|x| x.is_ascii_lowercase())
        && chars.all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || x == '_' || x == '-')
}

/// `POST /v1/identities/resolve`: the user behind a channel identity, created on first contact.
#[utoipa::path(post, path = "/v1/identities/resolve", tag = "users", request_body = Resolve, responses((status = 200, description = "the user (created on first contact)", body = Resolved), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn resolve(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Json(body): Json<Resolve>,
) -> Result<Json<Resolved>, ApiError> {
    caller.service_write()?;
    if !valid_channel(&body.channel) {
        return Err(ApiError::invalid(
            "channel",
            "lowercase letters, digits, '_' and '-'",
        ));
    }
    if body.external_id.is_empty() || body.external_id.len() > 128 {
        return Err(ApiError::invalid("external_id", "1 to 128 characters"));
    }
    if body.display_name.len() > 200 {
        return Err(ApiError::invalid("display_name", "at most 200 characters"));
    }
    // An identity never moves to another user: once known, it is answered from the cache.
    let identity_key = keys::identity(&app, &body.channel, &body.external_id);
    if let Some(user_id) = app.cache.get::<Uuid>(&identity_key).await {
        return Ok(Json(Resolved {
            user_id,
            created: false,
        }));
    }
    let mut tx = app.pool.begin().await?;
    // Serialise first contact of one identity so two racing messages create one user.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1 || ':' || $2))")
        .bind(&body.channel)
        .bind(&body.external_id)
        .execute(&mut *tx)
        .await?;
    let existing: Option<Uuid> = sqlx::query_scalar(
        "SELECT user_id FROM identities WHERE channel = $1 AND external_id = $2",
    )
    .bind(&body.channel)
    .bind(&body.external_id)
    .fetch_optional(&mut *tx)
    .await?;
    let (user_id, created) = match existing {
        Some(id) => (id, false),
        None => {
            let id = Uuid::now_v7();
            sqlx::query("INSERT INTO users (id, display_name) VALUES ($1, $2)")
                .bind(id)
                .bind(&body.display_name)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO identities (channel, external_id, user_id) VALUES ($1, $2, $3)",
            )
            .bind(&body.channel)
            .bind(&body.external_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            (id, true)
        }
    };
    tx.commit().await?;
    app.cache.put(&identity_key, &user_id).await;
    Ok(Json(Resolved { user_id, created }))
}

pub(crate) async fn load(pool: &daarion_db::PgPool, id: Uuid) -> Result<User, ApiError> {
    sqlx::query_as::<_, Row<User>>("SELECT id, display_name, created_at FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(Row::into_inner)
        .ok_or_else(|| ApiError::NotFound(format!("user {id}")))
}

/// `GET /v1/users/{id}`: the user and their identities.
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)), responses((status = 200, description = "the user and their identities", body = Profile), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn get(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<Uuid>,
) -> Result<Json<Profile>, ApiError> {
    caller.read(id)?;
    // A profile is written once, at first contact: read through the cache every turn after.
    let key = keys::profile(&app, id);
    if let Some(profile) = app.cache.get::<Profile>(&key).await {
        return Ok(Json(profile));
    }
    let user = load(&app.pool, id).await?;
    let identities: Vec<(String, String)> = sqlx::query_as(
        "SELECT channel, external_id FROM identities WHERE user_id = $1 ORDER BY channel",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await?;
    let profile = Profile {
        user,
        identities: identities
            .into_iter()
            .map(|(channel, external_id)| Identity {
                channel,
                external_id,
            })
            .collect(),
    };
    app.cache.put(&key, &profile).await;
    Ok(Json(profile))
}

/// `GET /v1/users`: users, newest first, for the operator (needs `memory:read` across users).
#[utoipa::path(get, path = "/v1/users", tag = "users", params(UsersQuery), responses((status = 200, body = [Listed]), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn list(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    axum::extract::Query(query): axum::extract::Query<UsersQuery>,
) -> Result<Json<Vec<Listed>>, ApiError> {
    caller.read_all()?;
    if !(1..=500).contains(&query.limit) {
        return Err(ApiError::invalid("limit", "1 to 500"));
    }
    let pattern = format!(
        "%{}%",
        query
            .q
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    Ok(Json(Row::all(
        sqlx::query_as::<_, Row<Listed>>(
            "SELECT u.id, u.display_name, u.created_at, \
                    coalesce(array_agg(i.channel || ':' || i.external_id ORDER BY i.channel) \
                             FILTER (WHERE i.channel IS NOT NULL), '{}') AS identities \
             FROM users u LEFT JOIN identities i ON i.user_id = u.id \
             GROUP BY u.id \
             HAVING $1 = '%%' OR u.display_name ILIKE $1 OR u.id::text ILIKE $1 \
                 OR bool_or(i.external_id ILIKE $1) \
             ORDER BY u.created_at DESC LIMIT $2",
        )
        .bind(pattern)
        .bind(query.limit)
        .fetch_all(&app.pool)
        .await?,
    )))
}
