//! `/quotas`: limits per user and per role, and their atomic enforcement in Redis.
//!
//! A check-and-consume is one Lua script over the four counters (requests this minute, tokens
//! today, GPU-seconds today, cost this month): it refuses if any would pass its limit and
//! otherwise adds to all of them, so N concurrent requests can never overspend. The data plane
//! reserves an estimate before an LLM call and settles the actual figures after it.

use std::sync::LazyLock;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::auth::{Principal, Scope};
use crate::changes::Change;
#[allow(unused_imports)]
use crate::openapi::ErrorEnvelope;
use crate::policy::roles_of;
use crate::{App, ControlError};

/// Limits as stored and sent; `None` is unlimited.
#[derive(
    Debug, Clone, Default, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub requests_per_minute: Option<i64>,
    pub tokens_per_day: Option<i64>,
    pub gpu_seconds_per_day: Option<f64>,
    pub cost_per_month: Option<f64>,
    #[serde(default = "usd")]
    pub currency: String,
}

fn usd() -> String {
    "USD".into()
}

/// One request's use of the four budgets.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    #[serde(default)]
    pub requests: u32,
    #[serde(default)]
    pub tokens: u64,
    #[serde(default)]
    pub gpu_seconds: f64,
    #[serde(default)]
    pub cost: f64,
}

const COUNTERS: [&str; 4] = [
    "requests_per_minute",
    "tokens_per_day",
    "gpu_seconds_per_day",
    "cost_per_month",
];

impl Usage {
    fn validate(&self) -> Result<(), ControlError> {
        if !(self.gpu_seconds.is_finite() && self.gpu_seconds >= 0.0) {
            return Err(ControlError::invalid(
                "gpu_seconds",
                "must be a non-negative number",
            ));
        }
        if !(self.cost.is_finite() && self.cost >= 0.0) {
            return Err(ControlError::invalid(
                "cost",
                "must be a non-negative number",
            ));
        }
        Ok(())
    }

    /// Integer units for Redis: requests, tokens, GPU milliseconds, cost in millionths.
    fn units(&self) -> [i64; 4] {
        [
            i64::from(self.requests),
            i64::try_from(self.tokens).unwrap_or(i64::MAX),
            (self.gpu_seconds * 1000.0).round() as i64,
            (self.cost * 1_000_000.0).round() as i64,
        ]
    }
}

impl Limits {
    fn validate(&self) -> Result<(), ControlError> {
        let non_negative = |v: Option<f64>| v.is_none_or(|v| v.is_finite() && v >= 0.0);
        if self.requests_per_minute.is_some_and(|v| v < 0)
            || self.tokens_per_day.is_some_and(|v| v < 0)
            || !non_negative(self.gpu_seconds_per_day)
            || !non_negative(self.cost_per_month)
        {
            return Err(ControlError::invalid(
                "limits",
                "limits must be non-negative",
            ));
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ControlError::invalid(
                "currency",
                "a three-letter ISO 4217 code such as USD",
            ));
        }
        Ok(())
    }

    /// The limits in Redis units, -1 for unlimited.
    fn units(&self) -> [i64; 4] {
        [
            self.requests_per_minute.unwrap_or(-1),
            self.tokens_per_day.unwrap_or(-1),
            self.gpu_seconds_per_day
                .map_or(-1, |v| (v * 1000.0).round() as i64),
            self.cost_per_month
                .map_or(-1, |v| (v * 1_000_000.0).round() as i64),
        ]
    }
}

#[derive(sqlx::FromRow)]
struct ScopedLimits {
    scope: String,
    #[sqlx(flatten)]
    limits: Limits,
}

async fn limits_rows(
    pool: &daarion_db::PgPool,
    scopes: &[String],
) -> Result<Vec<(String, Limits)>, sqlx::Error> {
    let rows: Vec<ScopedLimits> = sqlx::query_as(
        "SELECT scope, requests_per_minute, tokens_per_day, gpu_seconds_per_day, \
           cost_per_month::float8 AS cost_per_month, currency \
         FROM quota_limits WHERE scope = ANY($1)",
    )
    .bind(scopes)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.scope, r.limits)).collect())
}

async fn limits_row(pool: &daarion_db::PgPool, scope: &str) -> Result<Option<Limits>, sqlx::Error> {
    Ok(limits_rows(pool, &[scope.to_owned()])
        .await?
        .into_iter()
        .next()
        .map(|(_, limits)| limits))
}

/// The limits that apply to a user, field by field: the user's own where set, otherwise the
/// most generous of their roles (a role without a limit for a field makes it unlimited).
pub async fn effective_limits(
    pool: &daarion_db::PgPool,
    user_id: &str,
    roles: &[String],
) -> Result<(Limits, [String; 4]), sqlx::Error> {
    // One query for the user's row and all their roles' rows.
    let user_scope = format!("user:{user_id}");
    let scopes: Vec<String> = std::iter::once(user_scope.clone())
        .chain(roles.iter().map(|r| format!("role:{r}")))
        .collect();
    let mut own = None;
    let mut role_rows = Vec::new();
    for (scope, limits) in limits_rows(pool, &scopes).await? {
        match scope.strip_prefix("role:") {
            Some(role) if scope != user_scope => role_rows.push((role.to_owned(), limits)),
            _ => own = Some(limits),
        }
    }
    let mut sources: [String; 4] = Default::default();
    let mut pick =
        |i: usize, from_user: Option<f64>, from_role: &dyn Fn(&Limits) -> Option<f64>| {
            if let Some(v) = from_user {
                sources[i] = format!("user:{user_id}");
                return Some(v);
            }
            if role_rows.is_empty() || role_rows.iter().any(|(_, l)| from_role(l).is_none()) {
                sources[i] = "unlimited".into();
                return None;
            }
            let (role, best) = role_rows
                .iter()
                .map(|(r, l)| (r, from_role(l).unwrap_or(f64::INFINITY)))
                .fold((None, f64::NEG_INFINITY), |acc, (r, v)| {
                    if v > acc.1 { (Some(r), v) } else { acc }
                });
            sources[i] = format!("role:{}", role.map(String::as_str).unwrap_or("?"));
            Some(best)
        };
    let own_ref = own.as_ref();
    let rpm = pick(
        0,
        own_ref.and_then(|l| l.requests_per_minute.map(|v| v as f64)),
        &|l| l.requests_per_minute.map(|v| v as f64),
    );
    let tpd = pick(
        1,
        own_ref.and_then(|l| l.tokens_per_day.map(|v| v as f64)),
        &|l| l.tokens_per_day.map(|v| v as f64),
    );
    let gpu = pick(2, own_ref.and_then(|l| l.gpu_seconds_per_day), &|l| {
        l.gpu_seconds_per_day
    });
    let cost = pick(3, own_ref.and_then(|l| l.cost_per_month), &|l| {
        l.cost_per_month
    });
    let currency = own
        .as_ref()
        .map(|l| l.currency.clone())
        .or_else(|| role_rows.first().map(|(_, l)| l.currency.clone()))
        .unwrap_or_else(usd);
    Ok((
        Limits {
            requests_per_minute: rpm.map(|v| v as i64),
            tokens_per_day: tpd.map(|v| v as i64),
            gpu_seconds_per_day: gpu,
            cost_per_month: cost,
            currency,
        },
        sources,
    ))
}

/// The four counter keys of a user for the current minute, day and month, with their TTLs.
fn counter_keys(prefix: &str, user_id: &str, now: OffsetDateTime) -> ([String; 4], [i64; 4]) {
    let minute = now.unix_timestamp() / 60;
    let day = format!("{}{:02}{:02}", now.year(), u8::from(now.month()), now.day());
    let month = format!("{}{:02}", now.year(), u8::from(now.month()));
    let base = format!("{prefix}quota:{user_id}");
    (
        [
            format!("{base}:rpm:{minute}"),
            format!("{base}:tok:{day}"),
            format!("{base}:gpu:{day}"),
            format!("{base}:cost:{month}"),
        ],
        [120, 2 * 86_400, 2 * 86_400, 40 * 86_400],
    )
}

static CONSUME: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        for i = 1, 4 do
            local amount = tonumber(ARGV[i])
            local limit = tonumber(ARGV[4 + i])
            if limit >= 0 and amount > 0 then
                local used = tonumber(redis.call('GET', KEYS[i]) or '0')
                if used + amount > limit then
                    return {0, i, used}
                end
            end
        end
        for i = 1, 4 do
            local amount = tonumber(ARGV[i])
            if amount > 0 then
                redis.call('INCRBY', KEYS[i], amount)
                redis.call('EXPIRE', KEYS[i], tonumber(ARGV[8 + i]))
            end
        end
        return {1, 0, 0}
        ",
    )
});

static SETTLE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        for i = 1, 4 do
            local delta = tonumber(ARGV[i])
            if delta ~= 0 then
                local now = redis.call('INCRBY', KEYS[i], delta)
                if now < 0 then redis.call('SET', KEYS[i], 0) end
                redis.call('EXPIRE', KEYS[i], tonumber(ARGV[4 + i]))
            end
        end
        return 1
        ",
    )
});

fn store_err(e: redis::RedisError) -> ControlError {
    ControlError::QuotaStore(e.to_string())
}

/// Atomically checks every budget and consumes `usage` if all of them have room.
pub async fn check_and_consume(
    app: &App,
    user_id: &str,
    limits: &Limits,
    usage: &Usage,
) -> Result<(), ControlError> {
    let (keys, ttls) = counter_keys(
        &app.config.redis.key_prefix,
        user_id,
        OffsetDateTime::now_utc(),
    );
    let mut invocation = CONSUME.prepare_invoke();
    for key in &keys {
        invocation.key(key);
    }
    for value in usage.units().iter().chain(&limits.units()).chain(&ttls) {
        invocation.arg(*value);
    }
    let mut conn = app.redis.clone();
    let (allowed, which, used): (i64, i64, i64) = invocation
        .invoke_async(&mut conn)
        .await
        .map_err(store_err)?;
    if allowed == 1 {
        crate::metrics::QUOTA_CHECKS
            .with_label_values(&["allowed"])
            .inc();
        return Ok(());
    }
    crate::metrics::QUOTA_CHECKS
        .with_label_values(&["refused"])
        .inc();
    let i = (which - 1).clamp(0, 3) as usize;
    let scale = [1.0, 1.0, 1000.0, 1_000_000.0][i];
    Err(ControlError::QuotaExceeded(format!(
        "{} reached: {} used of {}",
        COUNTERS[i],
        used as f64 / scale,
        limits.units()[i] as f64 / scale
    )))
}

async fn usage_now(app: &App, user_id: &str) -> Result<[i64; 4], ControlError> {
    let (keys, _) = counter_keys(
        &app.config.redis.key_prefix,
        user_id,
        OffsetDateTime::now_utc(),
    );
    let mut conn = app.redis.clone();
    let values: Vec<Option<i64>> = redis::cmd("MGET")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .map_err(store_err)?;
    let mut out = [0i64; 4];
    for (slot, value) in out.iter_mut().zip(values) {
        *slot = value.unwrap_or(0);
    }
    Ok(out)
}

/// `GET /quotas/{user_id}`: effective limits, where each comes from, and current usage.
#[utoipa::path(get, path = "/quotas/{user_id}", tag = "quotas", params(("user_id" = String, Path)), responses((status = 200, description = "effective limits, their sources, current usage"), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn status(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(user_id): Path<String>,
) -> Result<impl IntoResponse, ControlError> {
    principal.require(Scope::Read)?;
    let roles = roles_of(&app.pool, &user_id).await?;
    let (limits, sources) = effective_limits(&app.pool, &user_id, &roles).await?;
    let used = usage_now(&app, &user_id).await?;
    Ok(Json(json!({
        "user_id": user_id,
        "roles": roles,
        "limits": limits,
        "sources": {
            "requests_per_minute": sources[0],
            "tokens_per_day": sources[1],
            "gpu_seconds_per_day": sources[2],
            "cost_per_month": sources[3],
        },
        "usage": {
            "requests_this_minute": used[0],
            "tokens_today": used[1],
            "gpu_seconds_today": used[2] as f64 / 1000.0,
            "cost_this_month": used[3] as f64 / 1_000_000.0,
        },
    })))
}

/// `PUT /quotas/limits/{kind}/{name}` with kind `user` or `role`.
#[utoipa::path(put, path = "/quotas/limits/{kind}/{name}", tag = "quotas", params(("kind" = String, Path, description = "user or role"), ("name" = String, Path)), request_body = Limits, responses((status = 200, description = "stored"), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn set_limits(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((kind, name)): Path<(String, String)>,
    Json(limits): Json<Limits>,
) -> Result<impl IntoResponse, ControlError> {
    principal.require(Scope::QuotasWrite)?;
    if kind != "user" && kind != "role" {
        return Err(ControlError::invalid("kind", "`user` or `role`"));
    }
    if name.is_empty() || name.len() > 128 {
        return Err(ControlError::invalid("name", "1 to 128 characters"));
    }
    limits.validate()?;
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
    let before = limits_row(&app.pool, &scope).await?;
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
    Ok(Json(
        json!({"scope": scope, "revision": revision, "limits": limits}),
    ))
}

/// `POST /quotas/{user_id}/consume`: 200 when every budget had room (and now holds `usage`),
/// 429 naming the budget that did not.
#[utoipa::path(post, path = "/quotas/{user_id}/consume", tag = "quotas", params(("user_id" = String, Path)), request_body = Usage, responses((status = 200, description = "every budget had room; consumed"), (status = 429, description = "a budget is exhausted", body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn consume(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(user_id): Path<String>,
    Json(usage): Json<Usage>,
) -> Result<impl IntoResponse, ControlError> {
    principal.require(Scope::QuotaConsume)?;
    usage.validate()?;
    let roles = roles_of(&app.pool, &user_id).await?;
    let (limits, _) = effective_limits(&app.pool, &user_id, &roles).await?;
    check_and_consume(&app, &user_id, &limits, &usage).await?;
    Ok(Json(json!({"allowed": true, "consumed": usage})))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Settlement {
    reserved: Usage,
    actual: Usage,
}

/// `POST /quotas/{user_id}/settle`: replaces a reservation by what was really used.
#[utoipa::path(post, path = "/quotas/{user_id}/settle", tag = "quotas", params(("user_id" = String, Path)), request_body = Settlement, responses((status = 200, description = "settled"), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope", body = ErrorEnvelope)))]
pub async fn settle(
    State(app): State<App>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(user_id): Path<String>,
    Json(settlement): Json<Settlement>,
) -> Result<impl IntoResponse, ControlError> {
    principal.require(Scope::QuotaConsume)?;
    settlement.reserved.validate()?;
    settlement.actual.validate()?;
    let (keys, ttls) = counter_keys(
        &app.config.redis.key_prefix,
        &user_id,
        OffsetDateTime::now_utc(),
    );
    let (reserved, actual) = (settlement.reserved.units(), settlement.actual.units());
    let mut invocation = SETTLE.prepare_invoke();
    for key in &keys {
        invocation.key(key);
    }
    for i in 0..4 {
        invocation.arg(actual[i] - reserved[i]);
    }
    for ttl in ttls {
        invocation.arg(ttl);
    }
    let mut conn = app.redis.clone();
    let _: i64 = invocation
        .invoke_async(&mut conn)
        .await
        .map_err(store_err)?;
    Ok(Json(json!({"settled": true, "actual": settlement.actual})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_roll_over_by_window() {
        let t = time::macros::datetime!(2026-11-27 23:59:30 UTC);
        let (keys, ttls) = counter_keys("p:", "u1", t);
        assert_eq!(keys[1], "p:quota:u1:tok:20261127");
        assert_eq!(keys[3], "p:quota:u1:cost:202611");
        let (next, _) = counter_keys("p:", "u1", t + time::Duration::seconds(60));
        assert_eq!(next[1], "p:quota:u1:tok:20261128");
        assert_ne!(keys[0], next[0]);
        assert!(ttls.iter().all(|t| *t > 60));
    }

    #[test]
    fn units_and_validation() {
        let usage = Usage {
            requests: 1,
            tokens: 500,
            gpu_seconds: 1.5,
            cost: 0.002,
        };
        assert_eq!(usage.units(), [1, 500, 1500, 2000]);
        assert!(
            Usage {
                cost: -1.0,
                ..usage
            }
            .validate()
            .is_err()
        );
        assert!(
            Usage {
                gpu_seconds: f64::NAN,
                ..usage
            }
            .validate()
            .is_err()
        );
        let limits = Limits {
            tokens_per_day: Some(10),
            currency: "USD".into(),
            ..Default::default()
        };
        assert_eq!(limits.units(), [-1, 10, -1, -1]);
        assert!(
            Limits {
                currency: "usd".into(),
                ..limits.clone()
            }
            .validate()
            .is_err()
        );
        assert!(
            Limits {
                requests_per_minute: Some(-1),
                ..limits
            }
            .validate()
            .is_err()
        );
    }
}
