//! `/prompts/{agent_id}`: an agent's system prompt as an append-only version history with one
//! active version; activating an older one is the rollback.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use daarion_http::ErrorEnvelope;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::agents;
use crate::app::App;
use crate::changes::Change;
use crate::error::ControlError;
use crate::principal::{Principal, Scope};

/// A system prompt larger than this is a mistake (a pasted document), not a prompt.
pub const MAX_PROMPT_BYTES: usize = 32 * 1024;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PromptVersion {
    pub agent_id: String,
    pub version: i32,
    pub content: String,
    pub variables: Vec<String>,
    pub comment: String,
    pub author: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

const COLUMNS: &str = "agent_id, version, content, variables, comment, author, created_at";

/// The `{{name}}` placeholders of a template, in order of first use.
pub fn placeholders(content: &str) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    let mut rest = content;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "a `{{` is never closed with `}}`".to_owned())?;
        let name = after[..end].trim();
        if !valid_variable(name) {
            return Err(format!(
                "`{{{{{name}}}}}` is not a variable name (letters, digits, '_')"
            ));
        }
        if !found.iter().any(|f| f == name) {
            found.push(name.to_owned());
        }
        rest = &after[end + 2..];
    }
    Ok(found)
}

fn valid_variable(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

async fn load_version(
    executor: impl sqlx::PgExecutor<'_>,
    agent: &str,
    version: i32,
) -> Result<PromptVersion, ControlError> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM prompt_versions WHERE agent_id = $1 AND version = $2"
    ))
    .bind(agent)
    .bind(version)
    .fetch_optional(executor)
    .await?
    .ok_or_else(|| ControlError::UnknownVersion {
        agent: agent.to_owned(),
        version,
    })
}

#[utoipa::path(get, path = "/prompts/{agent_id}", tag = "prompts", params(("agent_id" = String, Path)), responses((status = 200, description = "every version and the active one"), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn list(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(agent_id): Path<String>,
) -> Result<impl IntoResponse, ControlError> {
    principal.require(Scope::Read)?;
    let agent = agents::load(&app.pool, &agent_id, false).await?;
    let versions: Vec<PromptVersion> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM prompt_versions WHERE agent_id = $1 ORDER BY version"
    ))
    .bind(&agent_id)
    .fetch_all(&app.pool)
    .await?;
    Ok(Json(json!({
        "agent_id": agent.id,
        "active": agent.active_prompt,
        "versions": versions,
    })))
}

#[utoipa::path(get, path = "/prompts/{agent_id}/{version}", tag = "prompts", params(("agent_id" = String, Path), ("version" = i32, Path)), responses((status = 200, body = PromptVersion), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn get(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((agent_id, version)): Path<(String, i32)>,
) -> Result<Json<PromptVersion>, ControlError> {
    principal.require(Scope::Read)?;
    agents::load(&app.pool, &agent_id, false).await?;
    Ok(Json(load_version(&app.pool, &agent_id, version).await?))
}

#[utoipa::path(get, path = "/prompts/{agent_id}/active", tag = "prompts", params(("agent_id" = String, Path)), responses((status = 200, body = PromptVersion), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn active(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(agent_id): Path<String>,
) -> Result<Json<PromptVersion>, ControlError> {
    principal.require(Scope::Read)?;
    let agent = agents::load(&app.pool, &agent_id, false).await?;
    let version = agent
        .active_prompt
        .ok_or_else(|| ControlError::NoActivePrompt(agent_id.clone()))?;
    Ok(Json(load_version(&app.pool, &agent_id, version).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPrompt {
    content: String,
    #[serde(default)]
    comment: String,
    /// Declared variables; when absent they are taken from the `{{name}}` placeholders.
    variables: Option<Vec<String>>,
    /// Make the new version the active one (the default).
    #[serde(default = "yes")]
    activate: bool,
}

fn yes() -> bool {
    true
}

#[utoipa::path(post, path = "/prompts/{agent_id}", tag = "prompts", params(("agent_id" = String, Path)), request_body = NewPrompt, responses((status = 201, body = PromptVersion), (status = 404, body = ErrorEnvelope), (status = 413, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn create(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(agent_id): Path<String>,
    Json(new): Json<NewPrompt>,
) -> Result<impl IntoResponse, ControlError> {
    principal.require(Scope::PromptsWrite)?;
    if new.content.len() > MAX_PROMPT_BYTES {
        return Err(ControlError::PromptTooLarge {
            size: new.content.len(),
            limit: MAX_PROMPT_BYTES,
        });
    }
    if new.content.trim().is_empty() {
        return Err(ControlError::invalid("content", "must not be empty"));
    }
    if new.comment.len() > 1000 {
        return Err(ControlError::invalid("comment", "at most 1000 characters"));
    }
    let used = placeholders(&new.content).map_err(|m| ControlError::invalid("content", m))?;
    let variables = match new.variables {
        None => used,
        Some(declared) => {
            if let Some(bad) = declared.iter().find(|v| !valid_variable(v)) {
                return Err(ControlError::invalid(
                    "variables",
                    format!("`{bad}` is not a variable name"),
                ));
            }
            let declared_set: BTreeSet<&String> = declared.iter().collect();
            let undeclared: Vec<&String> =
                used.iter().filter(|u| !declared_set.contains(u)).collect();
            if !undeclared.is_empty() {
                return Err(ControlError::invalid(
                    "variables",
                    format!("used in content but not declared: {undeclared:?}"),
                ));
            }
            declared
        }
    };

    let mut tx = app.pool.begin().await?;
    // The agent row lock serialises version numbering per agent.
    let before = agents::load(&mut *tx, &agent_id, true).await?;
    let created: PromptVersion = sqlx::query_as(&format!(
        "INSERT INTO prompt_versions (agent_id, version, content, variables, comment, author) \
         SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5 FROM prompt_versions WHERE agent_id = $1 \
         RETURNING {COLUMNS}"
    ))
    .bind(&agent_id)
    .bind(&new.content)
    .bind(&variables)
    .bind(&new.comment)
    .bind(&principal.name)
    .fetch_one(&mut *tx)
    .await?;
    let mut change = Change::new(
        &principal,
        "prompt.create",
        format!("agent:{agent_id}/prompt:{}", created.version),
    )
    .after(json!({
        "version": created.version,
        "variables": created.variables,
        "comment": created.comment,
        "activated": new.activate,
    }));
    if new.activate {
        set_active(&mut tx, &agent_id, created.version).await?;
        change = change
            .before(json!({ "active": before.active_prompt }))
            .announce("prompt", &agent_id, i64::from(created.version));
    }
    change.record(&mut tx).await?;
    tx.commit().await?;
    app.changes.wake();
    Ok((StatusCode::CREATED, Json(created)))
}

async fn set_active(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    agent_id: &str,
    version: i32,
) -> Result<(), ControlError> {
    sqlx::query(
        "UPDATE agents SET active_prompt = $2, revision = revision + 1, updated_at = now() WHERE id = $1",
    )
    .bind(agent_id)
    .bind(version)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// `POST /prompts/{agent_id}/{version}/activate`: any version, older ones included (rollback).
#[utoipa::path(post, path = "/prompts/{agent_id}/{version}/activate", tag = "prompts", params(("agent_id" = String, Path), ("version" = i32, Path)), responses((status = 200, body = PromptVersion), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn activate(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((agent_id, version)): Path<(String, i32)>,
) -> Result<Json<PromptVersion>, ControlError> {
    principal.require(Scope::PromptsWrite)?;
    let mut tx = app.pool.begin().await?;
    let before = agents::load(&mut *tx, &agent_id, true).await?;
    let target = load_version(&mut *tx, &agent_id, version).await?;
    if before.active_prompt != Some(version) {
        set_active(&mut tx, &agent_id, version).await?;
        Change::new(
            &principal,
            "prompt.activate",
            format!("agent:{agent_id}/prompt:{version}"),
        )
        .before(json!({ "active": before.active_prompt }))
        .after(json!({ "active": version }))
        .announce("prompt", &agent_id, i64::from(version))
        .record(&mut tx)
        .await?;
    }
    tx.commit().await?;
    app.changes.wake();
    Ok(Json(target))
}

#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    from: i32,
    to: i32,
}

/// `GET /prompts/{agent_id}/diff?from=A&to=B`: a unified line diff and its counts.
#[utoipa::path(get, path = "/prompts/{agent_id}/diff", tag = "prompts", params(("agent_id" = String, Path), ("from" = i32, Query), ("to" = i32, Query)), responses((status = 200, description = "unified diff and line counts"), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn diff(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(agent_id): Path<String>,
    Query(query): Query<DiffQuery>,
) -> Result<impl IntoResponse, ControlError> {
    principal.require(Scope::Read)?;
    agents::load(&app.pool, &agent_id, false).await?;
    let from = load_version(&app.pool, &agent_id, query.from).await?;
    let to = load_version(&app.pool, &agent_id, query.to).await?;
    let diff = similar::TextDiff::from_lines(&from.content, &to.content);
    let (mut added, mut removed) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    let unified = diff
        .unified_diff()
        .context_radius(3)
        .header(&format!("v{}", from.version), &format!("v{}", to.version))
        .to_string();
    Ok(Json(json!({
        "agent_id": agent_id,
        "from": from.version,
        "to": to.version,
        "added_lines": added,
        "removed_lines": removed,
        "unified": unified,
    })))
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_are_found_once_in_order() {
        assert_eq!(
            placeholders("Hi {{user}}, I am {{ agent }}. Bye {{user}}.").unwrap(),
            vec!["user", "agent"]
        );
        assert!(placeholders("no variables").unwrap().is_empty());
    }

    #[test]
    fn malformed_placeholders_are_errors() {
        assert!(placeholders("open {{user").is_err());
        assert!(placeholders("{{two words}}").is_err());
        assert!(placeholders("{{}}").is_err());
    }
}
