//! The audit-logger: `audit.>` events into the append-only `audit_log` table.

use daarion_bus::events::{AuditRecord, Event};
use daarion_bus::topology::AUDIT_LOGGER;
use daarion_bus::{Envelope, HandlerError, consume};
use daarion_db::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{App, ServiceError};

pub(crate) async fn run_logger(app: App, shutdown: CancellationToken) -> Result<(), ServiceError> {
    consume(&app.bus, AUDIT_LOGGER, shutdown, |event| {
        let pool = app.pool.clone();
        async move { store_audit(&pool, &event).await }
    })
    .await?;
    Ok(())
}

/// Inserts one audit event; a second delivery of the same event id changes nothing. A lost
/// database is transient (retried, then dead-lettered); a schema this build does not know is
/// permanent.
pub async fn store_audit(pool: &PgPool, event: &Envelope<AuditRecord>) -> Result<(), HandlerError> {
    // The consumer refuses newer schemas before this; a direct caller is held to the same.
    if !(1..=AuditRecord::SCHEMA_VERSION).contains(&event.schema_version) {
        return Err(HandlerError::Permanent(format!(
            "audit schema version {} is not supported",
            event.schema_version
        )));
    }
    let record = &event.payload;
    sqlx::query(
        "INSERT INTO audit_log \
           (id, at, actor, action, target, outcome, source, trace_id, before, after, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(event.id)
    .bind(event.time)
    .bind(&record.actor)
    .bind(&record.action)
    .bind(&record.target)
    .bind(&record.outcome)
    .bind(&event.source)
    .bind(&event.trace_id)
    .bind(&record.before)
    .bind(&record.after)
    .bind(&record.detail)
    .execute(pool)
    .await
    .map_err(classify)?;
    Ok(())
}

/// Data and schema errors (SQLSTATE classes 22, 23, 42) will fail the same way every time;
/// anything else (connection loss, shutdown, deadlock, resource limits) may pass on retry.
pub(crate) fn classify(error: sqlx::Error) -> HandlerError {
    match &error {
        sqlx::Error::Database(db)
            if db.code().is_some_and(|c| {
                c.starts_with("22") || c.starts_with("23") || c.starts_with("42")
            }) =>
        {
            HandlerError::Permanent(format!("rejected by the database: {}", db.message()))
        }
        _ => HandlerError::Transient(error.to_string()),
    }
}
