//! The audit-logger: `audit.>` events into the append-only `audit_log` table; and beside it the
//! ops-logger: the supervisor's unit changes (`ops.health`) and the alerts that fired and
//! resolved (`ops.alert`) into the same table, so the operator reads one history.

use daarion_bus::events::{AuditRecord, Event, OpsAlert, OpsHealth};
use daarion_bus::topology::{AUDIT_LOGGER, OPS_LOGGER};
use daarion_bus::{Envelope, HandlerError, consume};
use daarion_db::PgPool;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{App, ServiceError};

/// Both loggers, until `shutdown`.
pub(crate) async fn run_logger(app: App, shutdown: CancellationToken) -> Result<(), ServiceError> {
    let audit = consume(&app.bus, AUDIT_LOGGER, shutdown.clone(), |event| {
        let pool = app.pool.clone();
        async move { store_audit(&pool, &event).await }
    });
    // Two event families on one consumer: read as JSON and told apart by type in `store_ops`.
    let ops = consume(&app.bus, OPS_LOGGER, shutdown, |event: Envelope<Value>| {
        let pool = app.pool.clone();
        async move { store_ops(&pool, &event).await }
    });
    let (audit, ops) = tokio::join!(audit, ops);
    audit?;
    ops?;
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

/// Inserts one ops event: actor is the service that saw it, action its type, target the unit or
/// the alert, detail the whole payload. Idempotent on the event id, like [`store_audit`].
pub(crate) async fn store_ops(pool: &PgPool, event: &Envelope<Value>) -> Result<(), HandlerError> {
    let target = match event.event_type.as_str() {
        OpsHealth::TYPE => payload::<OpsHealth>(event)?.unit,
        OpsAlert::TYPE => payload::<OpsAlert>(event)?.alertname,
        other => {
            return Err(HandlerError::Permanent(format!(
                "`{other}` is not an ops event the ops-logger stores"
            )));
        }
    };
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, target, source, trace_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(event.id)
    .bind(event.time)
    .bind(&event.source)
    .bind(&event.event_type)
    .bind(&target)
    .bind(&event.source)
    .bind(&event.trace_id)
    .bind(&event.payload)
    .execute(pool)
    .await
    .map_err(classify)?;
    Ok(())
}

/// The payload as `E`, held to the schema versions this build reads (the consumer reads every
/// ops event as JSON, so it cannot refuse newer ones itself).
fn payload<E: Event>(event: &Envelope<Value>) -> Result<E, HandlerError> {
    if !(1..=E::SCHEMA_VERSION).contains(&event.schema_version) {
        return Err(HandlerError::Permanent(format!(
            "`{}` schema version {} is not supported",
            event.event_type, event.schema_version
        )));
    }
    serde_json::from_value(event.payload.clone()).map_err(|e| {
        HandlerError::Permanent(format!(
            "`{}` payload does not match its schema: {e}",
            event.event_type
        ))
    })
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
