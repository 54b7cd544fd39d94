//! Events the memory service owes the bus, as the control plane's `changes.rs` does it: a row
//! written in the same transaction as the change it announces, then relayed. The relay (woken by
//! the table's `NOTIFY`, polling as well) publishes unsent rows in order with the row's id as
//! the event id and marks them sent; a crash between publish and mark publishes again, and
//! JetStream drops the duplicate. So a change is never stored unannounced, nor announced unstored.

use std::time::Duration;

use daarion_bus::Envelope;
use daarion_bus::events::Event;
use serde_json::Value;
use sqlx::postgres::PgListener;
use sqlx::{Postgres, Transaction};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{App, ServiceError};

pub const SOURCE: &str = "memory";
const BATCH: i64 = 100;
const POLL: Duration = Duration::from_secs(2);

/// The event id of one announcement of `what` (e.g. `attachment.created:<id>:<attempt>`): the
/// same however often it is written or relayed, so the bus keeps one.
pub fn event_id(what: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, what.as_bytes())
}

/// Records `event` (typed `E::TYPE`, or `E::TYPE.<qualifier>`) under `id`, inside `tx`. Writing
/// the same id twice keeps the first.
pub async fn record<E: Event>(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    qualifier: Option<&str>,
    payload: E,
) -> Result<(), sqlx::Error> {
    let mut envelope = match qualifier {
        Some(q) => Envelope::event_as(q, SOURCE, payload),
        None => Envelope::event(SOURCE, payload),
    };
    envelope.id = id;
    let envelope = serde_json::to_value(&envelope).map_err(|e| sqlx::Error::Encode(e.into()))?;
    sqlx::query("INSERT INTO outbox (id, envelope) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
        .bind(id)
        .bind(envelope)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(crate) async fn run(app: App, shutdown: CancellationToken) -> Result<(), ServiceError> {
    let mut listener = PgListener::connect_with(&app.pool).await?;
    listener.listen("daarion_outbox").await?;
    loop {
        match relay(&app).await {
            Ok(n) if n as i64 == BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox relay: batch failed; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = listener.recv() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Publishes unsent rows in order, stopping at the first that fails (order is kept); returns
/// how many it took.
pub async fn relay(app: &App) -> Result<usize, String> {
    let mut tx = app.pool.begin().await.map_err(|e| e.to_string())?;
    let rows: Vec<(i64, Value)> = sqlx::query_as(
        "SELECT seq, envelope FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT $1 \
         FOR UPDATE SKIP LOCKED",
    )
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await
    .map_err(|e| e.to_string())?;
    let mut sent = Vec::new();
    let mut failure = None;
    for (seq, envelope) in &rows {
        let envelope: Envelope<Value> = match serde_json::from_value(envelope.clone()) {
            Ok(e) => e,
            Err(e) => {
                // Written by this service from a typed event: cannot happen short of a hand edit.
                tracing::error!(error = %e, seq, "outbox row is not an envelope; skipped");
                sent.push(*seq);
                continue;
            }
        };
        if let Err(e) = app.bus.publish(&envelope).await {
            failure = Some(e.to_string());
            break;
        }
        sent.push(*seq);
    }
    sqlx::query("UPDATE outbox SET sent_at = clock_timestamp() WHERE seq = ANY($1)")
        .bind(&sent)
        .execute(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    match failure {
        Some(e) => Err(e),
        None => Ok(rows.len()),
    }
}
