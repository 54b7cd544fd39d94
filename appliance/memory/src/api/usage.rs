//! `GET /v1/usage`: what answered turns used, in time buckets, for one user, one agent or all.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
#[allow(unused_imports)]
use super::openapi::ErrorEnvelope;
use crate::App;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    user_id: Option<Uuid>,
    agent_id: Option<String>,
    /// RFC 3339; default: 30 days before `to`.
    from: Option<String>,
    /// RFC 3339; default: now.
    to: Option<String>,
    /// `hour`, `day` (default) or `month`.
    #[serde(default = "day")]
    bucket: String,
}

fn day() -> String {
    "day".into()
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Bucket {
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: f64,
    pub gpu_seconds: f64,
}

pub(crate) fn instant(
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<OffsetDateTime>, ApiError> {
    value
        .map(|v| {
            OffsetDateTime::parse(v, &Rfc3339).map_err(|_| {
                ApiError::invalid(field, "an RFC 3339 time such as 2026-11-27T00:00:00Z")
            })
        })
        .transpose()
}

#[utoipa::path(get, path = "/v1/usage", tag = "usage", params(UsageQuery), responses((status = 200, description = "buckets and totals"), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn usage(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Query(query): Query<UsageQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    match query.user_id {
        Some(user) => caller.read(user)?,
        None => caller.read_all()?,
    }
    if !["hour", "day", "month"].contains(&query.bucket.as_str()) {
        return Err(ApiError::invalid("bucket", "hour, day or month"));
    }
    let to = instant("to", query.to.as_deref())?.unwrap_or_else(OffsetDateTime::now_utc);
    let from = instant("from", query.from.as_deref())?.unwrap_or(to - time::Duration::days(30));
    if from >= to {
        return Err(ApiError::invalid("from", "must be before `to`"));
    }
    let buckets: Vec<Bucket> = sqlx::query_as(
        "SELECT date_trunc($1, at) AS start, count(*) AS requests, \
                coalesce(sum(prompt_tokens), 0)::int8 AS prompt_tokens, \
                coalesce(sum(completion_tokens), 0)::int8 AS completion_tokens, \
                coalesce(sum(cost), 0)::float8 AS cost, coalesce(sum(gpu_seconds), 0)::float8 AS gpu_seconds \
         FROM usage_records \
         WHERE ($2::uuid IS NULL OR user_id = $2) AND ($3::text IS NULL OR agent_id = $3) \
           AND at >= $4 AND at < $5 \
         GROUP BY 1 ORDER BY 1",
    )
    .bind(&query.bucket)
    .bind(query.user_id)
    .bind(&query.agent_id)
    .bind(from)
    .bind(to)
    .fetch_all(&app.pool)
    .await?;
    let total = |f: fn(&Bucket) -> f64| buckets.iter().map(f).sum::<f64>();
    Ok(Json(serde_json::json!({
        "from": from.format(&Rfc3339).unwrap_or_default(),
        "to": to.format(&Rfc3339).unwrap_or_default(),
        "bucket": query.bucket,
        "buckets": buckets,
        "total": {
            "requests": buckets.iter().map(|b| b.requests).sum::<i64>(),
            "prompt_tokens": buckets.iter().map(|b| b.prompt_tokens).sum::<i64>(),
            "completion_tokens": buckets.iter().map(|b| b.completion_tokens).sum::<i64>(),
            "cost": total(|b| b.cost),
            "gpu_seconds": total(|b| b.gpu_seconds),
        },
    })))
}
