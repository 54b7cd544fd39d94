//! `/agents`: the agents the appliance runs, and their Telegram bot binding.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use daarion_http::ErrorEnvelope;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::app::App;
use crate::changes::Change;
use crate::error::ControlError;
use crate::principal::{Principal, Scope};

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub description: String,
    pub default_model: Option<String>,
    pub telegram_bot: Option<String>,
    pub enabled: bool,
    pub active_prompt: Option<i32>,
    pub revision: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, name, description, default_model, telegram_bot, enabled, active_prompt, revision, created_at, updated_at";

pub fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    id.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn check_name(name: &str) -> Result<(), ControlError> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(ControlError::invalid("name", "must be 1 to 200 characters"));
    }
    Ok(())
}

/// Empty strings clear an optional field.
fn optional(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

pub(crate) async fn load(
    executor: impl sqlx::PgExecutor<'_>,
    id: &str,
    lock: bool,
) -> Result<Agent, ControlError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM agents WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(executor)
        .await?
        .ok_or_else(|| ControlError::UnknownAgent(id.to_owned()))
}

fn unique_violation(e: sqlx::Error, agent: &str, bot: Option<&str>) -> ControlError {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            if db.constraint() == Some("agents_telegram_bot_key") {
                ControlError::Conflict(format!(
                    "telegram bot `{}` is already bound to another agent",
                    bot.unwrap_or_default()
                ))
            } else {
                ControlError::Conflict(format!("agent `{agent}` already exists"))
            }
        }
        _ => ControlError::Database(e),
    }
}

#[utoipa::path(get, path = "/agents", tag = "agents", responses((status = 200, body = [Agent]), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn list(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Result<Json<Vec<Agent>>, ControlError> {
    principal.require(Scope::Read)?;
    let agents = sqlx::query_as(&format!("SELECT {COLUMNS} FROM agents ORDER BY id"))
        .fetch_all(&app.pool)
        .await?;
    Ok(Json(agents))
}

#[utoipa::path(get, path = "/agents/{id}", tag = "agents", params(("id" = String, Path)), responses((status = 200, body = Agent), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn get(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Agent>, ControlError> {
    principal.require(Scope::Read)?;
    Ok(Json(load(&app.pool, &id, false).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    id: String,
    name: String,
    #[serde(default)]
    description: String,
    default_model: Option<String>,
    telegram_bot: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

#[utoipa::path(post, path = "/agents", tag = "agents", request_body = NewAgent, responses((status = 201, body = Agent), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn create(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Json(new): Json<NewAgent>,
) -> Result<impl IntoResponse, ControlError> {
    principal.require(Scope::AgentsWrite)?;
    if !valid_id(&new.id) {
        return Err(ControlError::invalid(
            "id",
            "1 to 64 characters: lowercase letters, digits, '_' and '-', starting with a letter or digit",
        ));
    }
    check_name(&new.name)?;
    let bot = optional(new.telegram_bot);
    let mut tx = app.pool.begin().await?;
    let agent: Agent = sqlx::query_as(&format!(
        "INSERT INTO agents (id, name, description, default_model, telegram_bot, enabled) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    ))
    .bind(&new.id)
    .bind(new.name.trim())
    .bind(&new.description)
    .bind(optional(new.default_model))
    .bind(&bot)
    .bind(new.enabled)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| unique_violation(e, &new.id, bot.as_deref()))?;
    Change::new(&principal, "agent.create", format!("agent:{}", agent.id))
        .after(serde_json::to_value(&agent).unwrap_or_default())
        .announce("agent", &agent.id, i64::from(agent.revision))
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    app.changes.wake();
    Ok((StatusCode::CREATED, Json(agent)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPatch {
    name: Option<String>,
    description: Option<String>,
    default_model: Option<String>,
    telegram_bot: Option<String>,
    enabled: Option<bool>,
}

#[utoipa::path(patch, path = "/agents/{id}", tag = "agents", params(("id" = String, Path)), request_body = AgentPatch, responses((status = 200, body = Agent), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn update(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    Json(patch): Json<AgentPatch>,
) -> Result<Json<Agent>, ControlError> {
    principal.require(Scope::AgentsWrite)?;
    if let Some(name) = &patch.name {
        check_name(name)?;
    }
    let mut tx = app.pool.begin().await?;
    let before = load(&mut *tx, &id, true).await?;
    let bot = match patch.telegram_bot {
        Some(b) => optional(Some(b)),
        None => before.telegram_bot.clone(),
    };
    let after: Agent = sqlx::query_as(&format!(
        "UPDATE agents SET name = $2, description = $3, default_model = $4, telegram_bot = $5, \
         enabled = $6, revision = revision + 1, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(&id)
    .bind(patch.name.as_deref().map(str::trim).unwrap_or(&before.name))
    .bind(patch.description.as_deref().unwrap_or(&before.description))
    .bind(match patch.default_model {
        Some(m) => optional(Some(m)),
        None => before.default_model.clone(),
    })
    .bind(&bot)
    .bind(patch.enabled.unwrap_or(before.enabled))
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| unique_violation(e, &id, bot.as_deref()))?;
    Change::new(&principal, "agent.update", format!("agent:{id}"))
        .before(serde_json::to_value(&before).unwrap_or_default())
        .after(serde_json::to_value(&after).unwrap_or_default())
        .announce("agent", &id, i64::from(after.revision))
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    app.changes.wake();
    Ok(Json(after))
}

#[cfg(test)]
mod tests {
    use super::valid_id;

    #[test]
    fn agent_ids() {
        for ok in ["helper", "a", "x-1_2", "0day"] {
            assert!(valid_id(ok), "{ok}");
        }
        for bad in ["", "Helper", "-x", "has space", "ü", &"a".repeat(65)] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
