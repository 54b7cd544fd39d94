//! The usage-recorder: the router's `message.processed` events into `usage_records`, once per
//! event id, acked only after the row is committed.

use daarion_bus::events::MessageProcessed;
use daarion_bus::topology::USAGE_RECORDER;
use daarion_bus::{Envelope, HandlerError, consume};
use daarion_db::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{App, ServiceError};

pub(crate) async fn run_recorder(
    app: App,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    consume(&app.bus, USAGE_RECORDER, shutdown, |event| {
        let pool = app.pool.clone();
        async move { store_usage(&pool, &event).await }
    })
    .await?;
    Ok(())
}

/// Records one `message.processed` event; a payload that is not one never gets here (the
/// consumer dead-letters it).
pub async fn store_usage(
    pool: &PgPool,
    event: &Envelope<MessageProcessed>,
) -> Result<(), HandlerError> {
    let usage = &event.payload;
    if !(usage.cost.is_finite()
        && usage.cost >= 0.0
        && usage.gpu_seconds.is_finite()
        && usage.gpu_seconds >= 0.0)
    {
        return Err(HandlerError::Permanent(
            "cost and gpu_seconds must be non-negative".into(),
        ));
    }
    sqlx::query(
        "INSERT INTO usage_records (id, at, user_id, agent_id, session_id, message_id, provider, model, \
           prompt_tokens, completion_tokens, cost, currency, gpu_seconds, tool_steps, trace_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(event.id)
    .bind(event.time)
    .bind(usage.user_id)
    .bind(&usage.agent_id)
    .bind(usage.session_id)
    .bind(usage.message_id)
    .bind(&usage.provider)
    .bind(&usage.model)
    .bind(i32::try_from(usage.prompt_tokens).unwrap_or(i32::MAX))
    .bind(i32::try_from(usage.completion_tokens).unwrap_or(i32::MAX))
    .bind(usage.cost)
    .bind(&usage.currency)
    .bind(usage.gpu_seconds)
    .bind(i32::try_from(usage.tool_steps).unwrap_or(i32::MAX))
    .bind(&event.trace_id)
    .execute(pool)
    .await
    .map_err(crate::audit::classify)?;
    Ok(())
}
