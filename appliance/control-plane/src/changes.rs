//! Every change is recorded in the same transaction as the data it changes (the outbox), then
//! relayed: the audit event to JetStream (`audit.action`, durable, deduplicated by event id) and
//! an announcement on core NATS (`control.changed.<kind>`) so data-plane caches drop the entry.
//! A crash between commit and relay loses nothing: the relay picks the rows up at next start.

use std::sync::Arc;
use std::time::Duration;

use daarion_bus::events::AuditRecord;
use daarion_bus::{Bus, Envelope};
use daarion_control_client::Announcement;
use daarion_db::PgPool;
use serde_json::Value;
use sqlx::{Postgres, Transaction};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::principal::Principal;

pub const SOURCE: &str = "control-plane";

/// One change, built by a handler and recorded inside its transaction.
pub struct Change {
    actor: String,
    action: &'static str,
    target: String,
    before: Option<Value>,
    after: Option<Value>,
    announce: Option<Announcement>,
}

impl Change {
    pub fn new(principal: &Principal, action: &'static str, target: String) -> Change {
        Change {
            actor: principal.name.clone(),
            action,
            target,
            before: None,
            after: None,
            announce: None,
        }
    }

    pub fn before(mut self, value: Value) -> Change {
        self.before = Some(value);
        self
    }

    pub fn after(mut self, value: Value) -> Change {
        self.after = Some(value);
        self
    }

    pub fn announce(mut self, kind: &str, id: &str, version: i64) -> Change {
        self.announce = Some(Announcement {
            kind: kind.to_owned(),
            id: id.to_owned(),
            version,
        });
        self
    }

    pub async fn record(self, tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
        let audit = Envelope::new(
            "audit.action",
            SOURCE,
            AuditRecord {
                actor: self.actor,
                action: self.action.to_owned(),
                target: Some(self.target),
                outcome: "ok".into(),
                before: self.before,
                after: self.after,
                detail: None,
            },
        );
        insert(
            tx,
            audit.id,
            serde_json::to_value(&audit).unwrap_or_default(),
        )
        .await?;
        if let Some(announcement) = self.announce {
            let event = Envelope::new(
                format!("control.changed.{}", announcement.kind),
                SOURCE,
                announcement,
            );
            insert(
                tx,
                event.id,
                serde_json::to_value(&event).unwrap_or_default(),
            )
            .await?;
        }
        Ok(())
    }
}

async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    id: uuid::Uuid,
    event: Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO control_outbox (id, event) VALUES ($1, $2)")
        .bind(id)
        .bind(event)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Wakes the relay right after a commit, so announcements go out in milliseconds.
#[derive(Clone, Default)]
pub struct Changes {
    notify: Arc<Notify>,
}

impl Changes {
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Publishes outbox rows in commit order until `shutdown`, then once more.
    pub async fn relay(self, pool: PgPool, bus: Bus, shutdown: CancellationToken) {
        loop {
            if let Err(e) = flush(&pool, &bus).await {
                tracing::warn!(error = %e, "outbox relay failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.notify.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
        if let Err(e) = flush(&pool, &bus).await {
            tracing::warn!(error = %e, "outbox left for the next start");
        }
    }
}

async fn flush(pool: &PgPool, bus: &Bus) -> Result<usize, String> {
    let rows: Vec<(uuid::Uuid, Value)> =
        sqlx::query_as("SELECT id, event FROM control_outbox ORDER BY created_at LIMIT 200")
            .fetch_all(pool)
            .await
            .map_err(|e| e.to_string())?;
    let mut announced = false;
    for (id, event) in &rows {
        let envelope: Envelope<Value> =
            serde_json::from_value(event.clone()).map_err(|e| e.to_string())?;
        if envelope.event_type.starts_with("control.changed.") {
            let subject = bus.naming().subject(&envelope.event_type);
            let body = serde_json::to_vec(&envelope).map_err(|e| e.to_string())?;
            bus.client()
                .publish(subject, body.into())
                .await
                .map_err(|e| e.to_string())?;
            announced = true;
        } else {
            bus.publish(&envelope).await.map_err(|e| e.to_string())?;
        }
        sqlx::query("DELETE FROM control_outbox WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map_err(|e| e.to_string())?;
    }
    if announced {
        bus.client().flush().await.map_err(|e| e.to_string())?;
    }
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM control_outbox")
        .fetch_one(pool)
        .await
        .map_err(|e| e.to_string())?;
    crate::metrics::OUTBOX_PENDING.set(pending);
    Ok(rows.len())
}
