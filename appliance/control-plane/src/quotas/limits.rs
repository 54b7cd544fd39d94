//! Stored limits per user and per role, and the limits that apply to a user.

use daarion_control_client::{LimitSources, Limits, usd};

use crate::error::ControlError;

/// Refuses negative limits and a currency that is not an ISO 4217 code.
pub(super) fn validate(limits: &Limits) -> Result<(), ControlError> {
    let non_negative = |v: Option<f64>| v.is_none_or(|v| v.is_finite() && v >= 0.0);
    if limits.requests_per_minute.is_some_and(|v| v < 0)
        || limits.tokens_per_day.is_some_and(|v| v < 0)
        || !non_negative(limits.gpu_seconds_per_day)
        || !non_negative(limits.cost_per_month)
    {
        return Err(ControlError::invalid(
            "limits",
            "limits must be non-negative",
        ));
    }
    if limits.currency.len() != 3 || !limits.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ControlError::invalid(
            "currency",
            "a three-letter ISO 4217 code such as USD",
        ));
    }
    Ok(())
}

/// A stored row; [`Limits`] is the wire type, which knows nothing of the database.
#[derive(sqlx::FromRow)]
struct ScopedLimits {
    scope: String,
    requests_per_minute: Option<i64>,
    tokens_per_day: Option<i64>,
    gpu_seconds_per_day: Option<f64>,
    cost_per_month: Option<f64>,
    currency: String,
}

impl ScopedLimits {
    fn split(self) -> (String, Limits) {
        let limits = Limits {
            requests_per_minute: self.requests_per_minute,
            tokens_per_day: self.tokens_per_day,
            gpu_seconds_per_day: self.gpu_seconds_per_day,
            cost_per_month: self.cost_per_month,
            currency: self.currency,
        };
        (self.scope, limits)
    }
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
    Ok(rows.into_iter().map(ScopedLimits::split).collect())
}

pub(super) async fn limits_row(
    pool: &daarion_db::PgPool,
    scope: &str,
) -> Result<Option<Limits>, sqlx::Error> {
    Ok(limits_rows(pool, &[scope.to_owned()])
        .await?
        .into_iter()
        .next()
        .map(|(_, limits)| limits))
}

/// The limits that apply to a user, field by field: the user's own where set, otherwise the
/// most generous of their roles (a role without a limit for a field makes it unlimited).
pub(super) async fn effective_limits(
    pool: &daarion_db::PgPool,
    user_id: &str,
    roles: &[String],
) -> Result<(Limits, LimitSources), sqlx::Error> {
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
    let [
        requests_per_minute,
        tokens_per_day,
        gpu_seconds_per_day,
        cost_per_month,
    ] = sources;
    Ok((
        Limits {
            requests_per_minute: rpm.map(|v| v as i64),
            tokens_per_day: tpd.map(|v| v as i64),
            gpu_seconds_per_day: gpu,
            cost_per_month: cost,
            currency,
        },
        LimitSources {
            requests_per_minute,
            tokens_per_day,
            gpu_seconds_per_day,
            cost_per_month,
        },
    ))
}
