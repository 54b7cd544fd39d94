//! The gateway's Redis bookkeeping about runs: which Telegram message shows a run's progress,
//! which outcomes were told (a claim `SET NX`, given back when telling failed, as for
//! attachment outcomes), and which run a chat's next message answers. All keys expire by
//! themselves: a run that is never heard of again leaves nothing behind.

use daarion_bus::HandlerError;
use uuid::Uuid;

use crate::App;

/// A run's progress message and its outcome claims: far beyond any redelivery or run.
const RUN_TTL_SECS: u64 = 30 * 24 * 3600;
/// A question waits this long for its answer in the chat (the run itself waits longer; the
/// user can still answer from the admin UI).
pub const WAITING_TTL_SECS: u64 = 7 * 24 * 3600;

fn key(app: &App, rest: &str) -> String {
    format!("{}gateway:run:{rest}", app.config.redis.key_prefix)
}

fn transient(e: redis::RedisError) -> HandlerError {
    HandlerError::Transient(format!("Redis: {e}"))
}

/// The message showing `run`'s progress, if one was sent.
pub async fn progress_message(app: &App, run: Uuid) -> Result<Option<i32>, HandlerError> {
    let mut redis = app.redis.clone();
    redis::cmd("GET")
        .arg(key(app, &format!("{run}:message")))
        .query_async(&mut redis)
        .await
        .map_err(transient)
}

pub async fn set_progress_message(app: &App, run: Uuid, id: i32) -> Result<(), HandlerError> {
    let mut redis = app.redis.clone();
    redis::cmd("SET")
        .arg(key(app, &format!("{run}:message")))
        .arg(id)
        .arg("EX")
        .arg(RUN_TTL_SECS)
        .query_async(&mut redis)
        .await
        .map_err(transient)
}

/// A claim to tell `what` (an outcome of `run`, or one event); `None` when it was told already.
pub struct Claim {
    key: String,
}

pub async fn claim(app: &App, run: Uuid, what: &str) -> Result<Option<Claim>, HandlerError> {
    let key = key(app, &format!("{run}:told:{what}"));
    let mut redis = app.redis.clone();
    let claimed: Option<String> = redis::cmd("SET")
        .arg(&key)
        .arg(1)
        .arg("NX")
        .arg("EX")
        .arg(RUN_TTL_SECS)
        .query_async(&mut redis)
        .await
        .map_err(transient)?;
    Ok(claimed.map(|_| Claim { key }))
}

/// Whether the run's end (either one) was told: later progress is stale.
pub async fn finished(app: &App, run: Uuid) -> Result<bool, HandlerError> {
    let mut redis = app.redis.clone();
    let n: u32 = redis::cmd("EXISTS")
        .arg(key(app, &format!("{run}:told:completed")))
        .arg(key(app, &format!("{run}:told:failed")))
        .query_async(&mut redis)
        .await
        .map_err(transient)?;
    Ok(n > 0)
}

impl Claim {
    /// Telling failed: the redelivery tries again.
    pub async fn give_back(self, app: &App) {
        let mut redis = app.redis.clone();
        let _: Result<(), _> = redis::cmd("DEL")
            .arg(&self.key)
            .query_async(&mut redis)
            .await;
    }
}

fn waiting_key(app: &App, bot: &str, chat: i64) -> String {
    key(app, &format!("waiting:{bot}:{chat}"))
}

/// The run a chat's next message answers, and whose run it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    pub run: Uuid,
    pub user: Uuid,
}

pub async fn set_waiting(
    app: &App,
    bot: &str,
    chat: i64,
    waiting: Waiting,
) -> Result<(), HandlerError> {
    let mut redis = app.redis.clone();
    redis::cmd("SET")
        .arg(waiting_key(app, bot, chat))
        .arg(format!("{}:{}", waiting.run, waiting.user))
        .arg("EX")
        .arg(WAITING_TTL_SECS)
        .query_async(&mut redis)
        .await
        .map_err(transient)
}

pub async fn waiting(
    app: &App,
    bot: &str,
    chat: i64,
) -> Result<Option<Waiting>, redis::RedisError> {
    let mut redis = app.redis.clone();
    let value: Option<String> = redis::cmd("GET")
        .arg(waiting_key(app, bot, chat))
        .query_async(&mut redis)
        .await?;
    Ok(value.and_then(|v| {
        let (run, user) = v.split_once(':')?;
        Some(Waiting {
            run: run.parse().ok()?,
            user: user.parse().ok()?,
        })
    }))
}

/// Forgets that the chat waits, if it still waits for `run` (a newer question stays).
pub async fn clear_waiting(app: &App, bot: &str, chat: i64, run: Uuid) {
    const IF_RUN: &str = "local v = redis.call('GET', KEYS[1]) \
        if v and string.sub(v, 1, string.len(ARGV[1])) == ARGV[1] then \
        return redis.call('DEL', KEYS[1]) end return 0";
    let mut redis = app.redis.clone();
    let cleared: Result<i64, _> = redis::cmd("EVAL")
        .arg(IF_RUN)
        .arg(1)
        .arg(waiting_key(app, bot, chat))
        .arg(run.to_string())
        .query_async(&mut redis)
        .await;
    if let Err(e) = cleared {
        tracing::warn!(error = %e, %run, "cannot forget a chat's waiting run");
    }
}
