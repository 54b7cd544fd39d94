//! The Redis connection every service opens the same way, and its `/ready` probe.

use redis::aio::ConnectionManager;

/// Why Redis could not be reached; the URL is redacted (it may carry a password).
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to Redis at {url}: {message}")]
pub struct RedisError {
    pub url: String,
    pub message: String,
}

/// A reconnecting connection to `redis.url`; cheap to clone.
pub async fn connect(url: &str) -> Result<ConnectionManager, RedisError> {
    let failed = |e: redis::RedisError| RedisError {
        url: daarion_config::redact_url(url),
        message: e.to_string(),
    };
    redis::Client::open(url)
        .map_err(failed)?
        .get_connection_manager()
        .await
        .map_err(failed)
}

/// The `/ready` probe of a service that uses Redis: it answers `PING`.
pub struct RedisCheck(pub ConnectionManager);

impl daarion_telemetry::Check for RedisCheck {
    fn name(&self) -> &str {
        "redis"
    }
    fn check(&self) -> futures::future::BoxFuture<'_, daarion_telemetry::CheckResult> {
        let mut redis = self.0.clone();
        Box::pin(async move {
            redis::cmd("PING")
                .query_async::<String>(&mut redis)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
