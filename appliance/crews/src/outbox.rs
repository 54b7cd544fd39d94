//! Events the crews service owes the bus, as memory's outbox does it: a row written in the
//! transaction of the change it announces, then relayed. The relay (woken by the table's
//! `NOTIFY`, polling as well) publishes unsent rows in order with the row's id as the event id
//! and marks them sent; a crash between publish and mark publishes again, and JetStream drops
//! the duplicate. A run's events carry the run's `trace_id`, so the bus's `traceparent` header
//! continues the trace of the turn that started it.

use std::time::Duration;

use daarion_bus::events::{AuditRecord, Event};
use daarion_bus::{Bus, Envelope};
use serde_json::Value;
use sqlx::postgres::PgListener;
use sqlx::{PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const SOURCE: &str = "crews";
const BATCH: i64 = 100;
const POLL: Duration = Duration::from_secs(2);

/// Records `payload` inside `tx`, in the trace `trace_id` (the current one when `None`).
pub async fn record<E: Event>(
    tx: &mut Transaction<'_, Postgres>,
    trace_id: Option<&str>,
    payload: E,
) -> Result<(), sqlx::Error> {
    let mut envelope = Envelope::event(SOURCE, payload);
    if let Some(trace) =
        trace_id.filter(|t| daarion_telemetry::TraceContext::from_trace_id(t).is_some())
    {
        envelope.trace_id = trace.to_owned();
    }
    insert(tx, envelope.id, &envelope).await
}

/// `audit.action`: who changed which crew, with the state before and after.
pub async fn audit(
    tx: &mut Transaction<'_, Postgres>,
    actor: String,
    action: &str,
    target: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> Result<(), sqlx::Error> {
    let envelope = Envelope::new(
        "audit.action",
        SOURCE,
        AuditRecord {
            actor,
            action: action.to_owned(),
            target: Some(target.to_owned()),
            outcome: "ok".into(),
            before,
            after,
            detail: None,
        },
    );
    insert(tx, envelope.id, &envelope).await
}

async fn insert<T: serde::Serialize>(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    envelope: &Envelope<T>,
) -> Result<(), sqlx::Error> {
    let envelope = serde_json::to_value(envelope).map_err(|e| sqlx::Error::Encode(e.into()))?;
    sqlx::query(
        "INSERT INTO crews_outbox (id, envelope) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(envelope)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn run(pool: PgPool, bus: Bus, shutdown: CancellationToken) {
    // Without a listener it still relays, on the poll.
    let mut listener = match PgListener::connect_with(&pool).await {
        Ok(mut l) => match l.listen("daarion_crews_outbox").await {
            Ok(()) => Some(l),
            Err(e) => {
                tracing::warn!(error = %e, "outbox relay: cannot listen; polling");
                None
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "outbox relay: cannot listen; polling");
            None
        }
    };
    loop {
        match relay(&pool, &bus).await {
            Ok(n) if n as i64 == BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox relay: batch failed; retrying"),
        }
        let woken = async {
            match listener.as_mut() {
                Some(l) => {
                    let _ = l.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = woken => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Publishes unsent rows in order, stopping at the first that fails (order is kept); returns
/// how many it took.
pub async fn relay(pool: &PgPool, bus: &Bus) -> Result<usize, String> {
    let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
    let rows: Vec<(i64, Value)> = sqlx::query_as(
        "SELECT seq, envelope FROM crews_outbox WHERE sent_at IS NULL ORDER BY seq LIMIT $1 \
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
        if let Err(e) = bus.publish(&envelope).await {
            failure = Some(e.to_string());
            break;
        }
        sent.push(*seq);
    }
    sqlx::query("UPDATE crews_outbox SET sent_at = clock_timestamp() WHERE seq = ANY($1)")
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
