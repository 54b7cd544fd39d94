//! Full-text search over a user's messages and current facts, each hit saying why it matched.
//! (Vector and graph retrieval join this as the memory issue progresses.)

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
#[allow(unused_imports)]
use super::openapi::ErrorEnvelope;
use crate::App;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    user_id: Uuid,
    q: String,
    #[serde(default = "ten")]
    limit: i64,
}

fn ten() -> i64 {
    10
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Hit {
    pub kind: String,
    pub id: Uuid,
    pub content: String,
    pub score: f32,
    /// The query terms found in this hit.
    pub why: String,
}

#[utoipa::path(get, path = "/v1/search", tag = "search", params(SearchQuery), responses((status = 200, body = [Hit]), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn search(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Query(query): Query<SearchQuery>,
) -> Result<Json<Vec<Hit>>, ApiError> {
    caller.read(query.user_id)?;
    let q = query.q.trim();
    if q.is_empty() || q.len() > 1000 {
        return Err(ApiError::invalid("q", "1 to 1000 characters"));
    }
    let hits: Vec<Hit> = sqlx::query_as(
        "WITH query AS (SELECT websearch_to_tsquery('simple', $2) AS tsq) \
         SELECT kind, id, content, score, why FROM ( \
           SELECT 'fact' AS kind, f.id, f.content, (ts_rank(f.search, query.tsq) * 2)::float4 AS score, \
                  ts_headline('simple', f.content, query.tsq, 'MaxFragments=1,MaxWords=12,MinWords=3') AS why \
           FROM facts f, query WHERE f.user_id = $1 AND f.valid_to IS NULL AND f.search @@ query.tsq \
           UNION ALL \
           SELECT 'message', m.id, m.content, ts_rank(m.search, query.tsq)::float4, \
                  ts_headline('simple', m.content, query.tsq, 'MaxFragments=1,MaxWords=12,MinWords=3') \
           FROM messages m, query WHERE m.user_id = $1 AND m.search @@ query.tsq \
         ) hits ORDER BY score DESC LIMIT $3",
    )
    .bind(query.user_id)
    .bind(q)
    .bind(query.limit.clamp(1, 100))
    .fetch_all(&app.pool)
    .await?;
    Ok(Json(hits))
}
