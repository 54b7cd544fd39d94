//! `/roles`, `/users/{id}/roles` and `/policy/{agent_id}`: who may use which agent, tool, model
//! and mode. Evaluation is `daarion_policy::decide`, the same function the data plane runs.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use daarion_http::ErrorEnvelope;
use daarion_policy::{Action, PolicyDoc, Subject, decide};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::agents;
use crate::app::App;
use crate::changes::Change;
use crate::error::ControlError;
use crate::principal::{Principal, Scope};

/// The role of a user nobody assigned one to.
pub const DEFAULT_ROLE: &str = "guest";

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Role {
    name: String,
    description: String,
    builtin: bool,
}

#[utoipa::path(get, path = "/roles", tag = "policy", responses((status = 200, body = [Role]), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn list_roles(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Result<Json<Vec<Role>>, ControlError> {
    principal.require(Scope::Read)?;
    Ok(Json(
        sqlx::query_as("SELECT name, description, builtin FROM roles ORDER BY name")
            .fetch_all(&app.pool)
            .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    name: String,
    #[serde(default)]
    description: String,
}

fn valid_role(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 32
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

#[utoipa::path(post, path = "/roles", tag = "policy", request_body = NewRole, responses((status = 201, description = "created"), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn create_role(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Json(new): Json<NewRole>,
) -> Result<impl IntoResponse, ControlError> {
    principal.require(Scope::PolicyWrite)?;
    if !valid_role(&new.name) {
        return Err(ControlError::invalid(
            "name",
            "1 to 32 characters: lowercase letters, digits, '_' and '-', starting with a letter",
        ));
    }
    let mut tx = app.pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO roles (name, description) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&new.name)
    .bind(&new.description)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(ControlError::Conflict(format!(
            "role `{}` already exists",
            new.name
        )));
    }
    Change::new(&principal, "role.create", format!("role:{}", new.name))
        .after(json!({"name": new.name, "description": new.description}))
        .announce("role", &new.name, 1)
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    app.changes.wake();
    Ok((StatusCode::CREATED, Json(json!({"name": new.name}))))
}

/// A user's roles; `guest` when none were assigned.
pub async fn roles_of(
    executor: impl sqlx::PgExecutor<'_>,
    user_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let roles: Vec<String> =
        sqlx::query_scalar("SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role")
            .bind(user_id)
            .fetch_all(executor)
            .await?;
    Ok(if roles.is_empty() {
        vec![DEFAULT_ROLE.to_owned()]
    } else {
        roles
    })
}

#[utoipa::path(get, path = "/users/{user_id}/roles", tag = "policy", params(("user_id" = String, Path)), responses((status = 200, description = "the user's roles (guest when none)"), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn get_user_roles(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(user_id): Path<String>,
) -> Result<impl IntoResponse, ControlError> {
    principal.require(Scope::Read)?;
    let roles = roles_of(&app.pool, &user_id).await?;
    Ok(Json(json!({"user_id": user_id, "roles": roles})))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRoles {
    roles: Vec<String>,
}

#[utoipa::path(put, path = "/users/{user_id}/roles", tag = "policy", params(("user_id" = String, Path)), request_body = UserRoles, responses((status = 200, description = "the roles now"), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn set_user_roles(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(user_id): Path<String>,
    Json(body): Json<UserRoles>,
) -> Result<impl IntoResponse, ControlError> {
    principal.require(Scope::PolicyWrite)?;
    if user_id.is_empty() || user_id.len() > 128 {
        return Err(ControlError::invalid("user_id", "1 to 128 characters"));
    }
    let mut tx = app.pool.begin().await?;
    let known: Vec<String> = sqlx::query_scalar("SELECT name FROM roles")
        .fetch_all(&mut *tx)
        .await?;
    if let Some(unknown) = body.roles.iter().find(|r| !known.contains(r)) {
        return Err(ControlError::invalid(
            "roles",
            format!("no role `{unknown}`"),
        ));
    }
    let before = roles_of(&mut *tx, &user_id).await?;
    sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
    for role in &body.roles {
        sqlx::query(
            "INSERT INTO user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(&user_id)
        .bind(role)
        .execute(&mut *tx)
        .await?;
    }
    let after = roles_of(&mut *tx, &user_id).await?;
    Change::new(&principal, "user.roles", format!("user:{user_id}"))
        .before(json!({"roles": before}))
        .after(json!({"roles": after}))
        .announce("user_roles", &user_id, 0)
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    app.changes.wake();
    Ok(Json(json!({"user_id": user_id, "roles": after})))
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PolicyVersion {
    pub agent_id: String,
    pub version: i32,
    #[schema(value_type = Object)]
    pub document: sqlx::types::Json<PolicyDoc>,
    pub comment: String,
    pub author: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The agent's current policy and its version (0 and an empty document before the first one).
pub async fn current_policy(
    executor: impl sqlx::PgExecutor<'_>,
    agent_id: &str,
) -> Result<(i32, PolicyDoc), sqlx::Error> {
    let row: Option<(i32, sqlx::types::Json<PolicyDoc>)> = sqlx::query_as(
        "SELECT version, document FROM policy_versions WHERE agent_id = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(agent_id)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(|(v, d)| (v, d.0)).unwrap_or_default())
}

#[utoipa::path(get, path = "/policy/{agent_id}", tag = "policy", params(("agent_id" = String, Path)), responses((status = 200, description = "current version and document"), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn get_policy(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(agent_id): Path<String>,
) -> Result<impl IntoResponse, ControlError> {
    principal.require(Scope::Read)?;
    let agent = agents::load(&app.pool, &agent_id, false).await?;
    let (version, document) = current_policy(&app.pool, &agent_id).await?;
    Ok(Json(json!({
        "agent_id": agent_id,
        "version": version,
        "agent_enabled": agent.enabled,
        "document": document,
    })))
}

#[utoipa::path(get, path = "/policy/{agent_id}/versions", tag = "policy", params(("agent_id" = String, Path)), responses((status = 200, body = [PolicyVersion]), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn policy_versions(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(agent_id): Path<String>,
) -> Result<Json<Vec<PolicyVersion>>, ControlError> {
    principal.require(Scope::Read)?;
    agents::load(&app.pool, &agent_id, false).await?;
    Ok(Json(
        sqlx::query_as(
            "SELECT agent_id, version, document, comment, author, created_at FROM policy_versions \
             WHERE agent_id = $1 ORDER BY version",
        )
        .bind(&agent_id)
        .fetch_all(&app.pool)
        .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPolicy {
    #[schema(value_type = Object)]
    document: PolicyDoc,
    #[serde(default)]
    comment: String,
}

#[utoipa::path(put, path = "/policy/{agent_id}", tag = "policy", params(("agent_id" = String, Path)), request_body = NewPolicy, responses((status = 201, description = "the new version"), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn put_policy(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(agent_id): Path<String>,
    Json(new): Json<NewPolicy>,
) -> Result<impl IntoResponse, ControlError> {
    principal.require(Scope::PolicyWrite)?;
    let mut tx = app.pool.begin().await?;
    agents::load(&mut *tx, &agent_id, true).await?;
    let known: Vec<String> = sqlx::query_scalar("SELECT name FROM roles")
        .fetch_all(&mut *tx)
        .await?;
    new.document
        .validate(&known)
        .map_err(|m| ControlError::invalid("document", m))?;
    let (before_version, before) = current_policy(&mut *tx, &agent_id).await?;
    let version = before_version + 1;
    sqlx::query(
        "INSERT INTO policy_versions (agent_id, version, document, comment, author) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&agent_id)
    .bind(version)
    .bind(sqlx::types::Json(&new.document))
    .bind(&new.comment)
    .bind(&principal.name)
    .execute(&mut *tx)
    .await?;
    Change::new(
        &principal,
        "policy.update",
        format!("agent:{agent_id}/policy:{version}"),
    )
    .before(json!({"version": before_version, "document": before}))
    .after(json!({"version": version, "document": new.document}))
    .announce("policy", &agent_id, i64::from(version))
    .record(&mut tx)
    .await?;
    tx.commit().await?;
    app.changes.wake();
    Ok((
        StatusCode::CREATED,
        Json(json!({"agent_id": agent_id, "version": version})),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    user_id: String,
    /// `use`, `tool`, `model` or `mode`.
    action: String,
    #[serde(default)]
    resource: String,
}

/// Parses the wire form of an action; `resource` names the tool, model or mode.
pub fn parse_action<'a>(action: &str, resource: &'a str) -> Result<Action<'a>, ControlError> {
    let needs_resource = |a: Action<'a>| {
        if resource.is_empty() {
            Err(ControlError::invalid(
                "resource",
                format!("`{action}` needs a resource"),
            ))
        } else {
            Ok(a)
        }
    };
    match action {
        "use" => Ok(Action::Use),
        "tool" => needs_resource(Action::Tool(resource)),
        "model" => needs_resource(Action::Model(resource)),
        "mode" => needs_resource(Action::Mode(resource)),
        other => Err(ControlError::invalid(
            "action",
            format!("`{other}` is not one of use, tool, model, mode"),
        )),
    }
}

/// `POST /policy/{agent_id}/decide`: the decision, the rule behind it and the versions used.
#[utoipa::path(post, path = "/policy/{agent_id}/decide", tag = "policy", params(("agent_id" = String, Path)), request_body = DecideRequest, responses((status = 200, description = "allow, the rule that decided, roles and versions"), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn decide_endpoint(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(agent_id): Path<String>,
    Json(request): Json<DecideRequest>,
) -> Result<impl IntoResponse, ControlError> {
    principal.require(Scope::Read)?;
    let action = parse_action(&request.action, &request.resource)?;
    let agent = agents::load(&app.pool, &agent_id, false).await?;
    let (version, document) = current_policy(&app.pool, &agent_id).await?;
    let roles = roles_of(&app.pool, &request.user_id).await?;
    let subject = Subject {
        user_id: request.user_id.clone(),
        roles: roles.clone(),
    };
    let decision = decide(&subject, agent.enabled, &document, &action);
    Ok(Json(json!({
        "allow": decision.allow,
        "rule": decision.rule,
        "roles": roles,
        "policy_version": version,
        "agent_revision": agent.revision,
    })))
}
