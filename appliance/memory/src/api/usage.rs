//! `GET /v1/usage`: what answered turns used, in time buckets, for one user, one agent or all.

use axum::Json;
use axum::extract::{Query, State};
use daarion_memory_client::usage::{Bucket, Usage, UsageQuery, UsageTotals};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::auth::Caller;
use super::error::ApiError;
#[allow(unused_imports)]
use super::openapi::ErrorEnvelope;
use crate::App;
use crate::rows::Row;

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

#[utoipa::path(get, path = "/v1/usage", tag = "usage", params(UsageQuery), responses((status = 200, description = "buckets and totals", body = Usage), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn usage(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Query(query): Query<UsageQuery>,
) -> Result<Json<Usage>, ApiError> {
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
    let buckets = sqlx::query_as::<_, Row<Bucket>>(
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
    let buckets = Row::all(buckets);
    Ok(Json(Usage {
        from: from.format(&Rfc3339).unwrap_or_default(),
        to: to.format(&Rfc3339).unwrap_or_default(),
        total: UsageTotals::of(&buckets),
        bucket: query.bucket,
        buckets,
    }))
}
