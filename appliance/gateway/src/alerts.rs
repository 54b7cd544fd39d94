//! `POST /v1/alerts`: Alertmanager's webhook. Each call is one group of alerts: every alert goes
//! on the bus as `ops.alert` (once per occurrence, however often Alertmanager repeats it), for
//! memory's audit log, and the group goes to the operator chats in Telegram as one message. The
//! `heartbeat` receiver (the always-firing Watchdog) is only recorded, in
//! `daarion_gateway_alert_heartbeat_timestamp_seconds`, so its silence can be noticed.
//!
//! Alertmanager retries a call answered 5xx, so a message Telegram did not take is answered
//! 502; the bus is not a reason to retry (the operator would get the message again), so an event
//! that could not be published is logged and left to the next repeat.

mod message;
mod payload;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use daarion_bus::Envelope;
use daarion_http::ErrorResponse;
use daarion_settings::TelegramBot;
use serde_json::{Value, json};

use crate::bots::ConfiguredBot;
use crate::metrics::{ALERT_HEARTBEAT, ALERT_NOTIFICATIONS};
use crate::telegram::Outgoing;
use crate::update::Chat;
use crate::{App, GatewayError, split};
use payload::{Alert, Webhook};

/// Alertmanager sends at most `max_alerts` (50) per call; a few kilobytes each at most.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The bearer token's file in `general.secrets_dir` (Alertmanager's `credentials_file`).
pub const TOKEN_FILE: &str = "alertmanager-webhook";
/// The receiver of the Watchdog alert.
pub const HEARTBEAT_RECEIVER: &str = "heartbeat";
/// How long an occurrence is remembered as published. A firing alert repeats every few hours
/// with the same start; past this it is published again, and kept once by its event id.
const SEEN_FOR_SECS: u64 = 7 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("alerts are not configured: the webhook token is not in the secrets directory")]
    NotConfigured,
    #[error("missing or wrong bearer token")]
    Unauthenticated,
    #[error("{0}")]
    BadRequest(String),
    #[error("no bot to send alerts with: {0}")]
    NoBot(String),
    #[error("{failed} of {chats} operator chats did not get the alert message")]
    NotSent { failed: usize, chats: usize },
    #[error(transparent)]
    Gateway(#[from] GatewayError),
}

impl IntoResponse for AlertsError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            AlertsError::NotConfigured => {
                ErrorResponse::new(StatusCode::SERVICE_UNAVAILABLE, "not_configured", message)
                    .into_response()
            }
            AlertsError::Unauthenticated => ErrorResponse::unauthorized(message).into_response(),
            AlertsError::BadRequest(_) => ErrorResponse::bad_request(message).into_response(),
            AlertsError::NoBot(_) => {
                tracing::error!(error = %message, "alerts cannot be sent");
                ErrorResponse::new(StatusCode::SERVICE_UNAVAILABLE, "misconfigured", message)
                    .into_response()
            }
            AlertsError::NotSent { .. } => {
                ErrorResponse::new(StatusCode::BAD_GATEWAY, "telegram_failed", message)
                    .into_response()
            }
            AlertsError::Gateway(e) => e.into_response(),
        }
    }
}

/// The route, with its metrics at zero from the start (a rate of failures exists before the
/// first alert, and an alert on it can fire).
pub fn route() -> MethodRouter<App> {
    for outcome in ["sent", "failed"] {
        ALERT_NOTIFICATIONS.with_label_values(&[outcome]);
    }
    std::sync::LazyLock::force(&ALERT_HEARTBEAT);
    post(receive).layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

async fn receive(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AlertsError> {
    authorise(&app, &headers).await?;
    let webhook = Webhook::parse(&body).map_err(AlertsError::BadRequest)?;
    if webhook.version != "4" {
        tracing::warn!(version = %webhook.version, "Alertmanager webhook of another version");
    }
    if webhook.receiver == HEARTBEAT_RECEIVER {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        ALERT_HEARTBEAT.set(now);
        return Ok(Json(json!({"ok": true, "heartbeat": true})));
    }
    let published = publish(&app, &webhook.alerts).await;
    let sent = match message::compose(&webhook) {
        Some(text) => notify(&app, &text).await?,
        None => 0,
    };
    Ok(Json(
        json!({"ok": true, "published": published, "sent": sent}),
    ))
}

/// The bearer token must equal the file's content, read on every call so a new token needs no
/// restart; without the file the route is off.
async fn authorise(app: &App, headers: &HeaderMap) -> Result<(), AlertsError> {
    let path = app.config.general.secrets_dir.join(TOKEN_FILE);
    let expected = match tokio::fs::read_to_string(&path).await {
        Ok(token) => token.trim().to_owned(),
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::error!(path = %path.display(), error = %e, "cannot read the alert webhook token");
            }
            return Err(AlertsError::NotConfigured);
        }
    };
    if expected.is_empty() {
        return Err(AlertsError::NotConfigured);
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .unwrap_or_default();
    if !daarion_http::secret_eq(expected.as_bytes(), given.as_bytes()) {
        tracing::warn!("alert webhook call with a wrong or missing token");
        return Err(AlertsError::Unauthenticated);
    }
    Ok(())
}

/// Publishes the occurrences not published before; how many were.
async fn publish(app: &App, alerts: &[Alert]) -> usize {
    let mut redis = app.redis.clone();
    let mut published = 0;
    for alert in alerts {
        let seen_key = format!(
            "{}gateway:alert:{}",
            app.config.redis.key_prefix,
            alert.occurrence()
        );
        // Without Redis, publish anyway: the event id keeps it once on the bus and in the log.
        let seen: bool = redis::cmd("EXISTS")
            .arg(&seen_key)
            .query_async(&mut redis)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot check whether an alert was published");
                false
            });
        if seen {
            continue;
        }
        let mut event = Envelope::event("gateway", alert.to_event());
        event.id = alert.event_id();
        match app.bus.publish(&event).await {
            Ok(outcome) => {
                if !outcome.duplicate {
                    published += 1;
                }
                let _: Result<(), _> = redis::cmd("SET")
                    .arg(&seen_key)
                    .arg(1)
                    .arg("EX")
                    .arg(SEEN_FOR_SECS)
                    .query_async(&mut redis)
                    .await;
            }
            Err(e) => tracing::error!(
                error = %e,
                alertname = alert.label("alertname"),
                "cannot publish ops.alert; it is published when Alertmanager repeats it"
            ),
        }
    }
    published
}

/// Sends `text` to every operator chat; how many got it. Any chat that did not is an error, so
/// Alertmanager tries again.
async fn notify(app: &App, text: &str) -> Result<usize, AlertsError> {
    let chats = &app.config.monitoring.operator_chats;
    if chats.is_empty() {
        tracing::warn!("an alert arrived and monitoring.operator_chats is empty: nobody is told");
        return Ok(0);
    }
    let bot = operator_bot(app).await?;
    let pieces = split::for_telegram(text);
    let mut failed = 0;
    for &id in chats {
        let out = Outgoing::new(&bot, &app.limiter, Chat { id, group: id < 0 });
        let mut outcome = "sent";
        for piece in &pieces {
            if let Err(e) = out.send(piece).await {
                tracing::error!(chat = id, bot = %bot.name, error = %e, "cannot send an alert");
                outcome = "failed";
                failed += 1;
                break;
            }
        }
        ALERT_NOTIFICATIONS.with_label_values(&[outcome]).inc();
    }
    if failed > 0 {
        return Err(AlertsError::NotSent {
            failed,
            chats: chats.len(),
        });
    }
    Ok(chats.len())
}

/// `monitoring.operator_bot`, or the only bot configured.
async fn operator_bot(app: &App) -> Result<std::sync::Arc<ConfiguredBot>, AlertsError> {
    let mut name = app.config.monitoring.operator_bot.clone();
    if name.is_empty() {
        let bots = app
            .control
            .configs::<TelegramBot>()
            .await
            .map_err(|e| GatewayError::unavailable("the control plane", e))?;
        name = match bots.as_slice() {
            [(only, _)] => only.clone(),
            [] => return Err(AlertsError::NoBot("no Telegram bot is configured".into())),
            _ => {
                return Err(AlertsError::NoBot(
                    "several Telegram bots are configured; set monitoring.operator_bot".into(),
                ));
            }
        };
    }
    app.bots
        .get(&app.control, &name)
        .await
        .map_err(|e| match e {
            GatewayError::UnknownBot(name) => AlertsError::NoBot(format!(
                "monitoring.operator_bot `{name}` is not a configured bot"
            )),
            e => e.into(),
        })
}
