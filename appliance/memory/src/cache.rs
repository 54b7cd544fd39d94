//! A Redis read-through cache for the hot reads of every turn (a session's recent messages, a
//! user's current facts), dropped on every write that changes them. Redis is an accelerator
//! here, never a source of truth: any failure (down at start, gone later, slow) is a miss, and
//! the answer comes from PostgreSQL.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{IntCounterVec, register_int_counter_vec};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Cached entries expire by themselves too, in case an invalidation was lost with Redis.
const TTL_SECS: u64 = 600;
/// A slower Redis than this is no cache.
const OP_TIMEOUT: Duration = Duration::from_millis(250);

static LOOKUPS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_memory_cache_total",
        "Cache lookups by result: hit, miss, error",
        &["result"]
    )
    .expect("metric registered once")
});

#[derive(Clone)]
pub struct Cache {
    redis: Option<redis::aio::ConnectionManager>,
    prefix: String,
}

impl Cache {
    /// Connects if it can; without Redis the cache is off and every read goes to PostgreSQL.
    pub async fn connect(url: &str, prefix: &str) -> Cache {
        let connected = async {
            let client = redis::Client::open(url).map_err(|e| e.to_string())?;
            tokio::time::timeout(Duration::from_secs(2), client.get_connection_manager())
                .await
                .map_err(|_| "timed out".to_owned())?
                .map_err(|e| e.to_string())
        }
        .await;
        let redis = match connected {
            Ok(manager) => Some(manager),
            Err(e) => {
                tracing::warn!(url = %daarion_config::redact_url(url), error = %e, "Redis unavailable: reading without a cache");
                None
            }
        };
        Cache {
            redis,
            prefix: format!("{prefix}memory:"),
        }
    }

    pub fn key(&self, parts: &str) -> String {
        format!("{}{parts}", self.prefix)
    }

    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let mut redis = self.redis.clone()?;
        let read = tokio::time::timeout(
            OP_TIMEOUT,
            redis::cmd("GET")
                .arg(key)
                .query_async::<Option<String>>(&mut redis),
        )
        .await;
        match read {
            Ok(Ok(Some(raw))) => match serde_json::from_str(&raw) {
                Ok(value) => {
                    LOOKUPS.with_label_values(&["hit"]).inc();
                    Some(value)
                }
                Err(_) => {
                    LOOKUPS.with_label_values(&["miss"]).inc();
                    None
                }
            },
            Ok(Ok(None)) => {
                LOOKUPS.with_label_values(&["miss"]).inc();
                None
            }
            _ => {
                LOOKUPS.with_label_values(&["error"]).inc();
                None
            }
        }
    }

    pub async fn put<T: Serialize>(&self, key: &str, value: &T) {
        let Some(mut redis) = self.redis.clone() else {
            return;
        };
        let Ok(raw) = serde_json::to_string(value) else {
            return;
        };
        let _ = tokio::time::timeout(
            OP_TIMEOUT,
            redis::cmd("SET")
                .arg(key)
                .arg(raw)
                .arg("EX")
                .arg(TTL_SECS)
                .query_async::<()>(&mut redis),
        )
        .await;
    }

    /// Drops entries after a write. Called after the write committed, so a reader in between
    /// at worst fills the cache with the old value for one more read: the delete follows.
    pub async fn forget(&self, key: &str) {
        let Some(mut redis) = self.redis.clone() else {
            return;
        };
        let deleted = tokio::time::timeout(
            OP_TIMEOUT,
            redis::cmd("DEL").arg(key).query_async::<i64>(&mut redis),
        )
        .await;
        if !matches!(deleted, Ok(Ok(_))) {
            tracing::warn!(
                key,
                "cannot drop a cache entry; it expires within {TTL_SECS} s"
            );
        }
    }
}
