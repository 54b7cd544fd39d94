//! Indexing over the bus: messages, facts and document chunks into the vector store.
//!
//! `index_state` rows are written by trigger in the same transaction as the message or fact (an
//! outbox), so nothing stored is ever left out of the index for good. Two loops run here:
//!
//! - the relay takes pending rows that are due (`FOR UPDATE SKIP LOCKED`, woken by the trigger's
//!   `NOTIFY`, polling every few seconds), publishes `memory.store.<kind>` with an id derived from
//!   the item and its attempt (a relay that crashes after publishing and publishes again is
//!   deduplicated by JetStream), and sets the row to be published again later should the event
//!   go missing;
//! - the `memory-indexer` consumer embeds the item's text through the swapper, writes the vector
//!   (durable when the call returns), marks the row `indexed` with the model, announces
//!   `memory.indexed`, and only then acks. An item already indexed with the model is acked
//!   untouched, so a redelivered event indexes once. A failure is recorded on the row (attempts,
//!   error, a due time 2 s · 2ⁿ later, at most 5 minutes) and the event acked: the relay
//!   publishes it again when due; after `MAX_ATTEMPTS` the row is `failed`, visible in
//!   `GET /v1/index/status` and requeued by `POST /v1/index/retry`.

use std::time::Duration;

use daarion_bus::events::{MemoryIndexed, MemoryStore};
use daarion_bus::topology::MEMORY_INDEXER;
use daarion_bus::{Envelope, HandlerError, consume};
use daarion_vectors::{Collection, Point, Scope};
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::embed::Embedder;
use crate::{App, ServiceError};

pub const MAX_ATTEMPTS: i32 = 8;
const RELAY_BATCH: i64 = 100;
const POLL: Duration = Duration::from_secs(5);
/// After a publish, the row is due again this much later unless the indexer settled it.
const REPUBLISH_AFTER: Duration = Duration::from_secs(120);

/// Where an item's vector lives: document chunks apart from the conversation.
pub fn collection_of(kind: &str) -> Collection {
    match kind {
        "chunk" => Collection::Chunks,
        _ => Collection::Messages,
    }
}

/// The delay before attempt `n + 1`: 2 s, 4 s, ... capped at 5 minutes.
pub fn backoff(attempts: i32) -> Duration {
    Duration::from_secs((2u64 << attempts.clamp(0, 16) as u32).min(300))
}

/// The event id for one publication of an item: the same for a repeated publish of the same
/// attempt (deduplicated by JetStream), new for the next attempt.
pub fn event_id(kind: &str, id: Uuid, attempts: i32) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("memory.store:{kind}:{id}:{attempts}").as_bytes(),
    )
}

pub(crate) async fn run(app: App, shutdown: CancellationToken) -> Result<(), ServiceError> {
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
    tracing::info!(model = %embedder.model, "indexer running");
    let (relayed, consumed) = tokio::join!(
        relay(&app, shutdown.clone()),
        consume(
            &app.bus,
            MEMORY_INDEXER,
            shutdown,
            |event: Envelope<MemoryStore>| {
                let (app, embedder) = (app.clone(), embedder.clone());
                async move { index(&app, &embedder, &event.payload).await }
            }
        )
    );
    relayed?;
    consumed?;
    Ok(())
}

async fn relay(app: &App, shutdown: CancellationToken) -> Result<(), ServiceError> {
    let mut listener = PgListener::connect_with(&app.pool).await?;
    listener.listen("daarion_index").await?;
    loop {
        match relay_due(app).await {
            Ok(n) if n as i64 == RELAY_BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "index relay: batch failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = listener.recv() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Publishes the pending rows that are due; returns how many it took.
pub async fn relay_due(app: &App) -> Result<usize, String> {
    let mut tx = app.pool.begin().await.map_err(|e| e.to_string())?;
    let due: Vec<(String, Uuid, i32)> = sqlx::query_as(
        "SELECT kind, item_id, attempts FROM index_state \
         WHERE state = 'pending' AND next_attempt_at <= clock_timestamp() \
         ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(RELAY_BATCH)
    .fetch_all(&mut *tx)
    .await
    .map_err(|e| e.to_string())?;
    for (kind, id, attempts) in &due {
        let mut event = Envelope::event_as(
            kind,
            "memory",
            MemoryStore {
                kind: kind.clone(),
                id: *id,
            },
        );
        event.id = event_id(kind, *id, *attempts);
        // A publish that fails leaves the row due: the next round tries again.
        app.bus.publish(&event).await.map_err(|e| e.to_string())?;
        sqlx::query(
            "UPDATE index_state SET published_at = clock_timestamp(), \
                    next_attempt_at = clock_timestamp() + make_interval(secs => $3) \
             WHERE kind = $1 AND item_id = $2",
        )
        .bind(kind)
        .bind(id)
        .bind(REPUBLISH_AFTER.as_secs_f64())
        .execute(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(due.len())
}

#[derive(Debug, sqlx::FromRow)]
struct Item {
    state: String,
    model: Option<String>,
    attempts: i32,
    user_id: Uuid,
    content: Option<String>,
    agent_id: Option<String>,
}

/// The memory-indexer's handler for one `memory.store.<kind>` event.
pub async fn index(
    app: &App,
    embedder: &Embedder,
    store: &MemoryStore,
) -> Result<(), HandlerError> {
    let db = |e: sqlx::Error| HandlerError::Transient(format!("database: {e}"));
    let item: Option<Item> = sqlx::query_as(
        "SELECT s.state, s.model, s.attempts, s.user_id, \
                coalesce(m.content, f.content, c.content) AS content, \
                coalesce(m.agent_id, f.agent_id, d.agent_id) AS agent_id \
         FROM index_state s \
         LEFT JOIN messages m ON s.kind = 'message' AND m.id = s.item_id \
         LEFT JOIN facts f ON s.kind = 'fact' AND f.id = s.item_id \
         LEFT JOIN chunks c ON s.kind = 'chunk' AND c.id = s.item_id \
         LEFT JOIN documents d ON d.id = c.document_id \
         WHERE s.kind = $1 AND s.item_id = $2",
    )
    .bind(&store.kind)
    .bind(store.id)
    .fetch_optional(&app.pool)
    .await
    .map_err(db)?;
    let Some(item) = item else {
        return Err(HandlerError::Permanent(format!(
            "no {} {} to index",
            store.kind, store.id
        )));
    };
    if item.state == "indexed" && item.model.as_deref() == Some(embedder.model.as_str()) {
        return Ok(());
    }
    let Some(text) = item.content.filter(|t| !t.is_empty()) else {
        return Err(HandlerError::Permanent(format!(
            "{} {} has no text",
            store.kind, store.id
        )));
    };
    let outcome = match embedder.embed(&[text]).await {
        Ok(mut vectors) => app
            .vectors
            .upsert(
                collection_of(&store.kind),
                vec![Point {
                    id: store.id,
                    kind: store.kind.clone(),
                    scope: Scope {
                        user_id: item.user_id,
                        agent_id: item.agent_id,
                        chat_id: None,
                    },
                    vector: vectors.remove(0),
                }],
            )
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => {
            let mut tx = app.pool.begin().await.map_err(db)?;
            // A chunk of an attachment: its attachment is locked before the row changes, as
            // the parser's `parsed` locks it, so whichever comes last sees every chunk indexed.
            let attachment: Option<Uuid> = if store.kind == "chunk" {
                sqlx::query_scalar(
                    "SELECT a.id FROM chunks c JOIN documents d ON d.id = c.document_id \
                     JOIN attachments a ON a.id = d.attachment_id WHERE c.id = $1 FOR UPDATE OF a",
                )
                .bind(store.id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?
            } else {
                None
            };
            sqlx::query(
                "UPDATE index_state SET state = 'indexed', model = $3, error = NULL, updated_at = clock_timestamp() \
                 WHERE kind = $1 AND item_id = $2",
            )
            .bind(&store.kind)
            .bind(store.id)
            .bind(&embedder.model)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            if let Some(attachment) = attachment {
                crate::api::attachments::settle_indexed(&mut tx, attachment)
                    .await
                    .map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
            let event = Envelope::event(
                "memory",
                MemoryIndexed {
                    kind: store.kind.clone(),
                    id: store.id,
                    collection: collection_of(&store.kind).name().to_owned(),
                    model: embedder.model.clone(),
                },
            );
            if let Err(e) = app.bus.publish(&event).await {
                tracing::debug!(error = %e, "memory.indexed not announced");
            }
            Ok(())
        }
        Err(error) => {
            let attempts = item.attempts + 1;
            let state = if attempts >= MAX_ATTEMPTS {
                "failed"
            } else {
                "pending"
            };
            tracing::warn!(%error, kind = %store.kind, id = %store.id, attempts, state, "not indexed this time");
            sqlx::query(
                "UPDATE index_state SET attempts = $3, error = $4, state = $5, updated_at = clock_timestamp(), \
                        next_attempt_at = clock_timestamp() + make_interval(secs => $6) \
                 WHERE kind = $1 AND item_id = $2 AND state <> 'indexed'",
            )
            .bind(&store.kind)
            .bind(store.id)
            .bind(attempts)
            .bind(&error)
            .bind(state)
            .bind(backoff(item.attempts).as_secs_f64())
            .execute(&app.pool)
            .await
            .map_err(db)?;
            // Recorded (unless another delivery indexed it meanwhile: indexed stays indexed);
            // the relay publishes the item again when it is due.
            Ok(())
        }
    }
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

    #[test]
    fn event_ids_repeat_per_attempt_only() {
        let id = Uuid::from_u128(7);
        assert_eq!(event_id("fact", id, 0), event_id("fact", id, 0));
        assert_ne!(event_id("fact", id, 0), event_id("fact", id, 1));
        assert_ne!(event_id("fact", id, 0), event_id("message", id, 0));
    }
}
