//! `/quotas`: limits per user and per role, and their atomic enforcement in Redis.
//!
//! A check-and-consume is one Lua script over the four counters (requests this minute, tokens
//! today, GPU-seconds today, cost this month): it refuses if any would pass its limit and
//! otherwise adds to all of them, so N concurrent requests can never overspend. The data plane
//! reserves an estimate before an LLM call and settles the actual figures after it.

mod counters;
mod limits;

use axum::Json;
use axum::extract::{Path, State};
use daarion_control_client::{
    Consumed, Limits, LimitsStored, QuotaStatus, Settled, Settlement, Usage,
};
use daarion_http::ErrorEnvelope;

use crate::app::App;
use crate::changes::Change;
use crate::error::ControlError;
use crate::policy::roles_of;
use crate::principal::{Principal, Scope};
use limits::effective_limits;

/// A usage a caller sends: GPU time and cost must be non-negative numbers.
fn validate_usage(usage: &Usage) -> Result<(), ControlError> {
    if !(usage.gpu_seconds.is_finite() && usage.gpu_seconds >= 0.0) {
        return Err(ControlError::invalid(
            "gpu_seconds",
            "must be a non-negative number",
        ));
    }
    if !(usage.cost.is_finite() && usage.cost >= 0.0) {
        return Err(ControlError::invalid(
            "cost",
            "must be a non-negative number",
        ));
    }
    Ok(())
}

/// `GET /quotas/{user_id}`: effective limits, where each comes from, and current usage.
#[utoipa::path(get, path = "/quotas/{user_id}", tag = "quotas", params(("user_id" = String, Path)), responses((status = 200, description = "effective limits, their sources, current usage", body = QuotaStatus), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn status(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(user_id): Path<String>,
) -> Result<Json<QuotaStatus>, ControlError> {
    principal.require(Scope::Read)?;
    let roles = roles_of(&app.pool, &user_id).await?;
    let (limits, sources) = effective_limits(&app.pool, &user_id, &roles).await?;
    let usage = counters::usage_now(&app, &user_id).await?;
    Ok(Json(QuotaStatus {
        user_id,
        roles,
        limits,
        sources,
        usage,
    }))
}

/// `PUT /quotas/limits/{kind}/{name}` with kind `user` or `role`.
#[utoipa::path(put, path = "/quotas/limits/{kind}/{name}", tag = "quotas", params(("kind" = String, Path, description = "user or role"), ("name" = String, Path)), request_body = Limits, responses((status = 200, description = "stored", body = LimitsStored), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn set_limits(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((kind, name)): Path<(String, String)>,
    Json(limits): Json<Limits>,
) -> Result<Json<LimitsStored>, ControlError> {
    principal.require(Scope::QuotasWrite)?;
    if kind != "user" && kind != "role" {
        return Err(ControlError::invalid("kind", "`user` or `role`"));
    }
    if name.is_empty() || name.len() > 128 {
        return Err(ControlError::invalid("name", "1 to 128 characters"));
    }
    limits::validate(&limits)?;
    let scope = format!("{kind}:{name}");
    let mut tx = app.pool.begin().await?;
    if kind == "role" {
        let exists: Option<String> = sqlx::query_scalar("SELECT name FROM roles WHERE name = $1")
            .bind(&name)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(ControlError::invalid("name", format!("no role `{name}`")));
        }
    }
    let before = limits::limits_row(&app.pool, &scope).await?;
    let revision: i32 = sqlx::query_scalar(
        "INSERT INTO quota_limits (scope, requests_per_minute, tokens_per_day, gpu_seconds_per_day, cost_per_month, currency, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (scope) DO UPDATE SET requests_per_minute = EXCLUDED.requests_per_minute, \
           tokens_per_day = EXCLUDED.tokens_per_day, gpu_seconds_per_day = EXCLUDED.gpu_seconds_per_day, \
           cost_per_month = EXCLUDED.cost_per_month, currency = EXCLUDED.currency, \
           updated_by = EXCLUDED.updated_by, updated_at = now(), revision = quota_limits.revision + 1 \
         RETURNING revision",
    )
    .bind(&scope)
    .bind(limits.requests_per_minute)
    .bind(limits.tokens_per_day)
    .bind(limits.gpu_seconds_per_day)
    .bind(limits.cost_per_month)
    .bind(&limits.currency)
    .bind(&principal.name)
    .fetch_one(&mut *tx)
    .await?;
    Change::new(&principal, "quota.set", format!("quota:{scope}"))
        .before(serde_json::to_value(&before).unwrap_or_default())
        .after(serde_json::to_value(&limits).unwrap_or_default())
        .announce("quota", &scope, i64::from(revision))
        .record(&mut tx)
        .await?;
    tx.commit().await?;
    app.changes.wake();
    Ok(Json(LimitsStored {
        scope,
        revision,
        limits,
    }))
}

/// `POST /quotas/{user_id}/consume`: 200 when every budget had room (and now holds `usage`),
/// 429 naming the budget that did not.
#[utoipa::path(post, path = "/quotas/{user_id}/consume", tag = "quotas", params(("user_id" = String, Path)), request_body = Usage, responses((status = 200, description = "every budget had room; consumed", body = Consumed), (status = 429, description = "a budget is exhausted", body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn consume(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(user_id): Path<String>,
    Json(usage): Json<Usage>,
) -> Result<Json<Consumed>, ControlError> {
    principal.require(Scope::QuotaConsume)?;
    validate_usage(&usage)?;
    let roles = roles_of(&app.pool, &user_id).await?;
    let (limits, _) = effective_limits(&app.pool, &user_id, &roles).await?;
    counters::check_and_consume(&app, &user_id, &limits, &usage).await?;
    Ok(Json(Consumed {
        allowed: true,
        consumed: usage,
    }))
}

/// `POST /quotas/{user_id}/settle`: replaces a reservation by what was really used.
#[utoipa::path(post, path = "/quotas/{user_id}/settle", tag = "quotas", params(("user_id" = String, Path)), request_body = Settlement, responses((status = 200, description = "settled", body = Settled), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn settle(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(user_id): Path<String>,
    Json(settlement): Json<Settlement>,
) -> Result<Json<Settled>, ControlError> {
    principal.require(Scope::QuotaConsume)?;
    validate_usage(&settlement.reserved)?;
    validate_usage(&settlement.actual)?;
    counters::settle(&app, &user_id, &settlement).await?;
    Ok(Json(Settled {
        settled: true,
        actual: settlement.actual,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_validation() {
        let usage = Usage {
            requests: 1,
            tokens: 500,
            gpu_seconds: 1.5,
            cost: 0.002,
        };
        assert_eq!(counters::usage_units(&usage), [1, 500, 1500, 2000]);
        assert!(
            validate_usage(&Usage {
                cost: -1.0,
                ..usage
            })
            .is_err()
        );
        assert!(
            validate_usage(&Usage {
                gpu_seconds: f64::NAN,
                ..usage
            })
            .is_err()
        );
        let limits = Limits {
            tokens_per_day: Some(10),
            currency: "USD".into(),
            ..Default::default()
        };
        assert_eq!(counters::limit_units(&limits), [-1, 10, -1, -1]);
        assert!(
            limits::validate(&Limits {
                currency: "usd".into(),
                ..limits.clone()
            })
            .is_err()
        );
        assert!(
            limits::validate(&Limits {
                requests_per_minute: Some(-1),
                ..limits
            })
            .is_err()
        );
    }
}
