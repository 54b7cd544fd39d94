//! Idempotency of steps: each answer is kept in Redis for a day under its key, and a step runs
//! under a lock so that two calls with one key never both run it.
//!
//! A call first looks for a kept answer (a replay calls nothing). Otherwise it takes the key's
//! lock (`SET NX` with a short expiry, renewed while the step runs, so a router that died
//! mid-step frees the key within [`LOCK_TTL`]). A second call that finds the lock taken waits up
//! to [`WAIT`] for the first one's answer and is then refused with 409 `step_in_progress`: its
//! caller retries later and gets the kept answer. A step that fails keeps nothing and frees the
//! lock, so a retry runs it again.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::RouterError;

/// How long an answer is kept.
pub const KEEP: Duration = Duration::from_secs(24 * 3600);
/// How long a lock outlives its last renewal.
pub const LOCK_TTL: Duration = Duration::from_secs(60);
const RENEW_EVERY: Duration = Duration::from_secs(20);
/// How long a second call waits for the first one's answer before it is refused.
pub const WAIT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(50);

/// Deletes or extends a lock only while it is still ours.
const RELEASE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
const RENEW: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";

#[derive(Clone)]
pub struct Journal {
    redis: ConnectionManager,
    prefix: String,
}

/// What a call with a key may do.
pub enum Begin<T> {
    /// The kept answer to an earlier call.
    Replay(T),
    /// Run the step, then [`Journal::keep`] its answer or [`Journal::abandon`] it.
    Run(Lock),
}

/// The lock of a running step; it is renewed until it is given back.
pub struct Lock {
    answer: String,
    key: String,
    token: String,
    renewer: tokio::task::JoinHandle<()>,
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

fn unavailable(e: redis::RedisError) -> RouterError {
    tracing::error!(error = %e, "step journal unavailable");
    RouterError::Journal
}

impl Journal {
    pub fn new(redis: ConnectionManager, prefix: &str) -> Journal {
        Journal {
            redis,
            prefix: prefix.to_owned(),
        }
    }

    pub fn redis(&self) -> ConnectionManager {
        self.redis.clone()
    }

    /// The answer's key; keys are per user, so one caller's key never answers for another user.
    fn answer_key(&self, kind: &str, user: Uuid, key: &str) -> String {
        format!("{}router:step:{kind}:{user}:{key}", self.prefix)
    }

    async fn kept<T: DeserializeOwned>(&self, answer: &str) -> Result<Option<T>, RouterError> {
        let mut redis = self.redis.clone();
        let text: Option<String> = redis.get(answer).await.map_err(unavailable)?;
        match text {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                tracing::error!(error = %e, "a kept step answer does not parse");
                RouterError::Journal
            }),
        }
    }

    /// The kept answer, or the lock to run the step under, or 409 once [`WAIT`] has passed.
    pub async fn begin<T: DeserializeOwned>(
        &self,
        kind: &str,
        user: Uuid,
        key: &str,
    ) -> Result<Begin<T>, RouterError> {
        let answer = self.answer_key(kind, user, key);
        let lock = format!("{answer}:lock");
        let token = Uuid::new_v4().to_string();
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut redis = self.redis.clone();
        loop {
            if let Some(kept) = self.kept(&answer).await? {
                return Ok(Begin::Replay(kept));
            }
            let taken: Option<String> = redis::cmd("SET")
                .arg(&lock)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(LOCK_TTL.as_millis() as u64)
                .query_async(&mut redis)
                .await
                .map_err(unavailable)?;
            if taken.is_some() {
                let held = Lock {
                    answer: answer.clone(),
                    key: lock.clone(),
                    token: token.clone(),
                    renewer: tokio::spawn(renew(redis.clone(), lock.clone(), token.clone())),
                };
                // The first call may have kept its answer and let go between our two looks.
                if let Some(kept) = self.kept(&answer).await? {
                    self.abandon(held).await;
                    return Ok(Begin::Replay(kept));
                }
                return Ok(Begin::Run(held));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RouterError::StepInProgress);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Keeps the answer for [`KEEP`], then lets go of the lock.
    pub async fn keep<T: Serialize>(&self, lock: Lock, answer: &T) -> Result<(), RouterError> {
        let text = serde_json::to_string(answer).map_err(|e| {
            tracing::error!(error = %e, "cannot serialise a step answer");
            RouterError::Journal
        })?;
        let mut redis = self.redis.clone();
        let kept: Result<(), _> = redis.set_ex(&lock.answer, text, KEEP.as_secs()).await;
        self.abandon(lock).await;
        kept.map_err(unavailable)
    }

    /// Lets go of the lock without an answer: a retry runs the step again.
    pub async fn abandon(&self, lock: Lock) {
        lock.renewer.abort();
        let mut redis = self.redis.clone();
        let released: Result<i64, _> = redis::Script::new(RELEASE)
            .key(&lock.key)
            .arg(&lock.token)
            .invoke_async(&mut redis)
            .await;
        if let Err(e) = released {
            // It expires by itself within LOCK_TTL.
            tracing::warn!(error = %e, "cannot release a step lock");
        }
    }
}

async fn renew(mut redis: ConnectionManager, key: String, token: String) {
    let script = redis::Script::new(RENEW);
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let renewed: Result<i64, _> = script
            .key(&key)
            .arg(&token)
            .arg(LOCK_TTL.as_millis() as u64)
            .invoke_async(&mut redis)
            .await;
        if let Err(e) = renewed {
            tracing::warn!(error = %e, "cannot renew a step lock");
        }
    }
}
