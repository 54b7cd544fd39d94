//! The four Redis counters per user (requests this minute, tokens today, GPU-seconds today,
//! cost this month), changed only by two Lua scripts so N concurrent callers never overspend.

use std::sync::LazyLock;

use daarion_control_client::{Limits, Settlement, Usage, UsageNow};
use time::OffsetDateTime;

use crate::app::App;
use crate::error::ControlError;

/// The counters' names, as limits and refusals call them.
const COUNTERS: [&str; 4] = [
    "requests_per_minute",
    "tokens_per_day",
    "gpu_seconds_per_day",
    "cost_per_month",
];

/// Integer units for Redis: requests, tokens, GPU milliseconds, cost in millionths.
pub(super) fn usage_units(usage: &Usage) -> [i64; 4] {
    [
        i64::from(usage.requests),
        i64::try_from(usage.tokens).unwrap_or(i64::MAX),
        (usage.gpu_seconds * 1000.0).round() as i64,
        (usage.cost * 1_000_000.0).round() as i64,
    ]
}

/// The limits in Redis units, -1 for unlimited.
pub(super) fn limit_units(limits: &Limits) -> [i64; 4] {
    [
        limits.requests_per_minute.unwrap_or(-1),
        limits.tokens_per_day.unwrap_or(-1),
        limits
            .gpu_seconds_per_day
            .map_or(-1, |v| (v * 1000.0).round() as i64),
        limits
            .cost_per_month
            .map_or(-1, |v| (v * 1_000_000.0).round() as i64),
    ]
}

/// The four counter keys of a user for the current minute, day and month, with their TTLs.
pub(super) fn counter_keys(
    prefix: &str,
    user_id: &str,
    now: OffsetDateTime,
) -> ([String; 4], [i64; 4]) {
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
pub(super) async fn check_and_consume(
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
    for value in usage_units(usage)
        .iter()
        .chain(&limit_units(limits))
        .chain(&ttls)
    {
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
        limit_units(limits)[i] as f64 / scale
    )))
}

/// What the user used in the current windows.
pub(super) async fn usage_now(app: &App, user_id: &str) -> Result<UsageNow, ControlError> {
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
    let mut used = [0i64; 4];
    for (slot, value) in used.iter_mut().zip(values) {
        *slot = value.unwrap_or(0);
    }
    Ok(UsageNow {
        requests_this_minute: used[0],
        tokens_today: used[1],
        gpu_seconds_today: used[2] as f64 / 1000.0,
        cost_this_month: used[3] as f64 / 1_000_000.0,
    })
}

/// Replaces a reservation by what was really used: adds the difference, never going below 0.
pub(super) async fn settle(
    app: &App,
    user_id: &str,
    settlement: &Settlement,
) -> Result<(), ControlError> {
    let (keys, ttls) = counter_keys(
        &app.config.redis.key_prefix,
        user_id,
        OffsetDateTime::now_utc(),
    );
    let (reserved, actual) = (
        usage_units(&settlement.reserved),
        usage_units(&settlement.actual),
    );
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
    Ok(())
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
}
