//! `/v1/graph`: relations between the people, topics and things in a user's memory.

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use daarion_memory_client::graph::{AroundQuery, End, FindQuery, PathQuery};
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
#[allow(unused_imports)]
use super::openapi::ErrorEnvelope;
use crate::App;
use crate::graph::{Edge, GraphError, NewRelation, Node, Path, Related, Subgraph};

impl From<GraphError> for ApiError {
    fn from(e: GraphError) -> Self {
        match e {
            GraphError::Invalid(message) => ApiError::Invalid {
                field: "relation",
                message,
            },
            GraphError::NotFound(what) => ApiError::NotFound(what),
            GraphError::Store(message) => ApiError::GraphUnavailable(message),
        }
    }
}

fn may_read(caller: &Caller, owner: Option<Uuid>) -> Result<(), ApiError> {
    match owner {
        Some(user) => caller.read(user),
        None => caller.read_all(),
    }
}

fn may_write(caller: &Caller, owner: Option<Uuid>) -> Result<(), ApiError> {
    match owner {
        Some(user) => caller.write(user),
        None => caller.service_write(),
    }
}

/// `POST /v1/graph/relations`: 201 when new, 200 when it was already known.
#[utoipa::path(post, path = "/v1/graph/relations", tag = "graph", request_body = NewRelation, responses((status = 201, description = "stored", body = Related), (status = 200, description = "already known", body = Related), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn relate(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Json(body): Json<NewRelation>,
) -> Result<(StatusCode, Json<Related>), ApiError> {
    may_write(&caller, body.user_id)?;
    check_references(&app, &body).await?;
    let related = app.graph.relate(&body, &caller.name).await?;
    let status = if related.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(related)))
}

/// The owner and the source message live in PostgreSQL whichever store holds the graph: checked
/// here so that both backends refuse the same relations. A source message must be the owner's.
async fn check_references(app: &App, body: &NewRelation) -> Result<(), ApiError> {
    if body.user_id.is_none() && body.source_message_id.is_none() {
        return Ok(());
    }
    let known: bool = sqlx::query_scalar(
        "SELECT ($1::uuid IS NULL OR EXISTS (SELECT 1 FROM users WHERE id = $1)) \
           AND ($2::uuid IS NULL OR EXISTS (SELECT 1 FROM messages m JOIN sessions s ON s.id = m.session_id \
                WHERE m.id = $2 AND s.user_id IS NOT DISTINCT FROM coalesce($1, s.user_id)))",
    )
    .bind(body.user_id)
    .bind(body.source_message_id)
    .fetch_one(&app.pool)
    .await?;
    if known {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "relation",
            "the user or source message does not exist",
        ))
    }
}

#[utoipa::path(get, path = "/v1/graph/nodes", tag = "graph", params(FindQuery), responses((status = 200, body = [Node]), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn find(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Query(query): Query<FindQuery>,
) -> Result<Json<Vec<Node>>, ApiError> {
    may_read(&caller, query.user_id)?;
    if query.q.len() > 200 || !(1..=200).contains(&query.limit) {
        return Err(ApiError::invalid(
            "q",
            "at most 200 characters, limit 1 to 200",
        ));
    }
    Ok(Json(
        app.graph.find(query.user_id, &query.q, query.limit).await?,
    ))
}

/// `GET /v1/graph/nodes/{id}/neighbourhood?depth=&limit=`.
#[utoipa::path(get, path = "/v1/graph/nodes/{id}/neighbourhood", tag = "graph", params(("id" = Uuid, Path), AroundQuery), responses((status = 200, body = Subgraph), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn neighbourhood(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    UrlPath(id): UrlPath<Uuid>,
    Query(query): Query<AroundQuery>,
) -> Result<Json<Subgraph>, ApiError> {
    if !(1..=4).contains(&query.depth) || !(1..=500).contains(&query.limit) {
        return Err(ApiError::invalid("depth", "depth 1 to 4, limit 1 to 500"));
    }
    let node = app.graph.node(id).await?;
    may_read(&caller, node.user_id)?;
    Ok(Json(
        app.graph
            .neighbourhood(id, query.depth, query.limit)
            .await?,
    ))
}

/// `GET /v1/graph/path?from=&to=&max_depth=`: a shortest chain, or `null`.
#[utoipa::path(get, path = "/v1/graph/path", tag = "graph", params(PathQuery), responses((status = 200, description = "a shortest chain, or null", body = Option<Path>), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn path(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Query(query): Query<PathQuery>,
) -> Result<Json<Option<Path>>, ApiError> {
    if !(1..=6).contains(&query.max_depth) {
        return Err(ApiError::invalid("max_depth", "1 to 6"));
    }
    let start = app.graph.node(query.from).await?;
    may_read(&caller, start.user_id)?;
    Ok(Json(
        app.graph
            .path(query.from, query.to, query.max_depth)
            .await?,
    ))
}

/// `POST /v1/graph/relations/{id}/end`: the relation no longer holds (it is kept, ended).
#[utoipa::path(post, path = "/v1/graph/relations/{id}/end", tag = "graph", params(("id" = Uuid, Path)), request_body = End, responses((status = 200, body = Edge), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn end(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    UrlPath(id): UrlPath<Uuid>,
    Json(body): Json<End>,
) -> Result<Json<Edge>, ApiError> {
    if body.reason.trim().is_empty() || body.reason.len() > 500 {
        return Err(ApiError::invalid(
            "reason",
            "say why, in at most 500 characters",
        ));
    }
    let owner = app.graph.edge_owner(id).await?;
    may_write(&caller, owner)?;
    Ok(Json(app.graph.end(id, body.reason.trim()).await?))
}
