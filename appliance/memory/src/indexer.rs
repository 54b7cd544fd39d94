//! The memory indexer: messages and facts into the vector store.
//!
//! `index_state` rows are written by trigger in the same transaction as the message or fact,
//! so nothing stored is ever left out of the index for good. This loop takes pending rows
//! (`FOR UPDATE SKIP LOCKED`, so two indexers never take the same row), embeds their text
//! through the swapper, writes the vectors (durable when the call returns), and only then marks
//! the rows `indexed` with the model that made them. A failure leaves the rows pending with a
//! growing delay and the error; after `MAX_ATTEMPTS` they are `failed`, visible in
//! `GET /v1/index/status` and retried by `POST /v1/index/retry`. It wakes on the trigger's
//! `NOTIFY` and polls every few seconds in case a notification was missed. Each batch indexed
//! is announced as `memory.indexed` on the bus.

use std::time::Duration;

use daarion_bus::Envelope;
use daarion_vectors::{Collection, Point, Scope};
use serde_json::json;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{App, MemoryError};

const BATCH: i64 = 32;
pub const MAX_ATTEMPTS: i32 = 8;
const POLL: Duration = Duration::from_secs(5);

#[derive(Debug, sqlx::FromRow)]
struct Pending {
    kind: String,
    item_id: Uuid,
    user_id: Uuid,
    attempts: i32,
    content: Option<String>,
    agent_id: Option<String>,
}

/// The delay before attempt `n + 1`: 2 s, 4 s, ... capped at 5 minutes.
pub fn backoff(attempts: i32) -> Duration {
    Duration::from_secs((2u64 << attempts.clamp(0, 16) as u32).min(300))
}

pub(crate) async fn run(app: App, shutdown: CancellationToken) -> Result<(), MemoryError> {
    let Some(embedder) = app.embedder.clone() else {
        tracing::warn!("no root token to call the swapper with: the vector index is not kept");
        return Ok(());
    };
    let stale: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM index_state WHERE state = 'indexed' AND model IS DISTINCT FROM $1",
    )
    .bind(&embedder.model)
    .fetch_one(&app.pool)
    .await?;
    if stale > 0 {
        // Vectors of two models are not comparable, and their dimensions may differ.
        tracing::warn!(stale, model = %embedder.model, "items were indexed with another embedding model: move the vectors directory (data_dir/vectors) aside and run `UPDATE index_state SET state = 'pending', attempts = 0` to re-index");
    }
    let mut listener = PgListener::connect_with(&app.pool).await?;
    listener.listen("daarion_index").await?;
    tracing::info!(model = %embedder.model, "indexer running");
    loop {
        match index_batch(&app, &embedder).await {
            // A full batch: there may be more waiting.
            Ok(n) if n as i64 == BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "indexer: batch failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = listener.recv() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Indexes one batch of pending rows; returns how many rows it took.
pub async fn index_batch(
    app: &App,
    embedder: &crate::embed::Embedder,
) -> Result<usize, sqlx::Error> {
    let mut tx = app.pool.begin().await?;
    let rows: Vec<Pending> = sqlx::query_as(
        "SELECT s.kind, s.item_id, s.user_id, s.attempts, \
                coalesce(m.content, f.content) AS content, coalesce(m.agent_id, f.agent_id) AS agent_id \
         FROM index_state s \
         LEFT JOIN messages m ON s.kind = 'message' AND m.id = s.item_id \
         LEFT JOIN facts f ON s.kind = 'fact' AND f.id = s.item_id \
         WHERE s.state = 'pending' AND s.next_attempt_at <= clock_timestamp() AND s.kind IN ('message', 'fact') \
         ORDER BY s.next_attempt_at LIMIT $1 FOR UPDATE OF s SKIP LOCKED",
    )
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let texts: Vec<String> = rows
        .iter()
        .map(|r| r.content.clone().unwrap_or_default())
        .collect();
    let outcome = match embedder.embed(&texts).await {
        Ok(vectors) => {
            let points = rows
                .iter()
                .zip(vectors)
                .map(|(row, vector)| Point {
                    id: row.item_id,
                    kind: row.kind.clone(),
                    scope: Scope {
                        user_id: row.user_id,
                        agent_id: row.agent_id.clone(),
                        chat_id: None,
                    },
                    vector,
                })
                .collect();
            app.vectors
                .upsert(Collection::Messages, points)
                .await
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e),
    };
    let ids: Vec<Uuid> = rows.iter().map(|r| r.item_id).collect();
    let kinds: Vec<String> = rows.iter().map(|r| r.kind.clone()).collect();
    match &outcome {
        Ok(()) => {
            sqlx::query(
                "UPDATE index_state s SET state = 'indexed', model = $3, error = NULL, updated_at = clock_timestamp() \
                 FROM unnest($1::uuid[], $2::text[]) AS t(id, kind) WHERE s.item_id = t.id AND s.kind = t.kind",
            )
            .bind(&ids)
            .bind(&kinds)
            .bind(&embedder.model)
            .execute(&mut *tx)
            .await?;
        }
        Err(error) => {
            tracing::warn!(%error, rows = rows.len(), "indexer: not indexed this time");
            let delays: Vec<f64> = rows
                .iter()
                .map(|r| backoff(r.attempts).as_secs_f64())
                .collect();
            sqlx::query(
                "UPDATE index_state s SET attempts = s.attempts + 1, error = $3, updated_at = clock_timestamp(), \
                        next_attempt_at = clock_timestamp() + make_interval(secs => t.delay), \
                        state = CASE WHEN s.attempts + 1 >= $4 THEN 'failed' ELSE 'pending' END \
                 FROM unnest($1::uuid[], $2::text[], $5::float8[]) AS t(id, kind, delay) \
                 WHERE s.item_id = t.id AND s.kind = t.kind",
            )
            .bind(&ids)
            .bind(&kinds)
            .bind(error)
            .bind(MAX_ATTEMPTS)
            .bind(&delays)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    if outcome.is_ok() {
        let event = Envelope::new(
            "memory.indexed",
            "memory",
            json!({"collection": "messages", "count": rows.len(), "model": embedder.model}),
        );
        if let Err(e) = app.bus.publish(&event).await {
            tracing::debug!(error = %e, "memory.indexed not announced");
        }
    }
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0), Duration::from_secs(2));
        assert_eq!(backoff(1), Duration::from_secs(4));
        assert_eq!(backoff(3), Duration::from_secs(16));
        assert_eq!(backoff(20), Duration::from_secs(300));
    }
}
