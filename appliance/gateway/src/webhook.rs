//! `POST /telegram/{bot}/webhook`: checks Telegram's secret token, stores the update on the bus
//! (`message.received.telegram`, its event id derived from the update id, so a retried delivery
//! is stored once) and answers 200 at once; the update is handled from the queue.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use daarion_bus::Envelope;
use daarion_bus::events::MessageReceivedTelegram;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::metrics::UPDATES;
use crate::{App, GatewayError};

pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";
/// Marks of seen update ids are kept this long; Telegram gives up on an update within a day.
const SEEN_FOR_SECS: u64 = 48 * 3600;

/// The event id of an update: the same for every delivery of it.
pub fn event_id(bot: &str, update_id: i64) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("telegram:{bot}:{update_id}").as_bytes(),
    )
}

pub async fn receive(
    State(app): State<App>,
    Path(bot): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, GatewayError> {
    let bot = app.bots.get(&app.control, &bot).await?;
    let given = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !daarion_http::secret_eq(bot.secret.as_bytes(), given) {
        UPDATES.with_label_values(&[&bot.name, "bad_secret"]).inc();
        tracing::warn!(bot = %bot.name, "webhook call with a wrong secret token");
        return Err(GatewayError::BadSecret);
    }
    let update: Value = serde_json::from_slice(&body).map_err(|e| {
        UPDATES.with_label_values(&[&bot.name, "malformed"]).inc();
        tracing::warn!(bot = %bot.name, error = %e, "malformed update");
        GatewayError::BadRequest(format!("not a JSON update: {e}"))
    })?;
    let Some(update_id) = update["update_id"].as_i64() else {
        UPDATES.with_label_values(&[&bot.name, "malformed"]).inc();
        return Err(GatewayError::BadRequest(
            "the update has no update_id".into(),
        ));
    };
    let duplicate = enqueue(&app, &bot.name, update_id, update).await?;
    let outcome = if duplicate { "duplicate" } else { "accepted" };
    UPDATES.with_label_values(&[&bot.name, outcome]).inc();
    Ok(Json(json!({"ok": true, "duplicate": duplicate})))
}

/// Stores one update on the queue (unless it was seen before); `true` for a repeat. Shared by
/// the webhook and long polling, so both deliver exactly alike.
pub async fn enqueue(
    app: &App,
    bot: &str,
    update_id: i64,
    update: Value,
) -> Result<bool, GatewayError> {
    let seen_key = format!(
        "{}gateway:update:{bot}:{update_id}",
        app.config.redis.key_prefix
    );
    let mut redis = app.redis.clone();
    let seen: bool = redis::cmd("EXISTS")
        .arg(&seen_key)
        .query_async(&mut redis)
        .await
        .map_err(|e| GatewayError::unavailable("Redis", e))?;
    if seen {
        return Ok(true);
    }
    let mut event = Envelope::event(
        "gateway",
        MessageReceivedTelegram {
            bot: bot.to_owned(),
            update,
        },
    );
    event.id = event_id(bot, update_id);
    let stored = app
        .bus
        .publish(&event)
        .await
        .map_err(|e| GatewayError::unavailable("the event bus", e))?;
    // Only after the update is safely queued; were this lost, the bus's own dedup still holds.
    let _: Result<(), _> = redis::cmd("SET")
        .arg(&seen_key)
        .arg(1)
        .arg("EX")
        .arg(SEEN_FOR_SECS)
        .query_async(&mut redis)
        .await;
    Ok(stored.duplicate)
}
