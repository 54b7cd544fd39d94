//! Crew runs as a Telegram user sees them. The `gateway-agent-runs` consumer reads
//! `agent.run.>` ([`on_event`]) and, for runs that a Telegram chat started (the event's
//! `origin`), keeps one progress message per run up to date by editing it, asks the run's
//! `human_input` questions in the chat, and sends the result like any answer (or the reason it
//! stopped). A question is answered by the user's next message in that chat
//! ([`answer_waiting`]), which resumes the run instead of going to the router; `/runs` and
//! `/cancel` are in [`commands`].
//!
//! Each outcome is told once (a claim in Redis, [`state`]) and the event is acked only once
//! Telegram took the message: an unreachable Bot API is a transient failure, retried.

pub mod commands;
mod state;
pub mod text;

use std::time::Duration;

use daarion_bus::events::{
    AgentRunCompleted, AgentRunFailed, AgentRunProgress, AgentRunRequested, AttachmentOrigin, Event,
};
use daarion_bus::{Envelope, HandlerError};
use serde::de::DeserializeOwned;
use serde_json::Value;
use teloxide_core::types::MessageId;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::bots::ConfiguredBot;
use crate::metrics::RUN_EVENTS;
use crate::telegram::Outgoing;
use crate::update::Chat;
use crate::{App, GatewayError, split};

pub use commands::answer_waiting;

/// Runs told at once (each run's events one at a time, in order).
pub const IN_FLIGHT: usize = 32;
/// Progress this old is not shown: after an outage the user wants the result, not a replay.
const STALE_PROGRESS: Duration = Duration::from_secs(3600);

/// The key that keeps one run's events in order: its id.
pub fn run_key(event: &Value) -> String {
    event["run_id"].as_str().unwrap_or_default().to_owned()
}

/// One event off `agent.run.>`.
pub async fn on_event(app: App, event: Envelope<Value>) -> Result<(), HandlerError> {
    let kind = event.event_type.clone();
    let outcome = match kind.as_str() {
        // The worker's; nothing to tell yet.
        AgentRunRequested::TYPE => return Ok(()),
        AgentRunProgress::TYPE => on_progress(&app, &event, payload(&event)?).await?,
        AgentRunCompleted::TYPE => on_completed(&app, payload(&event)?).await?,
        AgentRunFailed::TYPE => on_failed(&app, payload(&event)?).await?,
        other => {
            tracing::debug!(
                event_type = other,
                "an agent.run event the gateway does not tell"
            );
            return Ok(());
        }
    };
    let kind = kind.trim_start_matches("agent.run.");
    RUN_EVENTS.with_label_values(&[kind, outcome]).inc();
    Ok(())
}

/// The payload as `E`, refused (dead-lettered) if it is of a newer schema or does not fit.
fn payload<E: Event + DeserializeOwned>(event: &Envelope<Value>) -> Result<E, HandlerError> {
    if event.schema_version > E::SCHEMA_VERSION {
        return Err(HandlerError::Permanent(format!(
            "`{}` has schema version {}; this build reads up to {}",
            event.event_type,
            event.schema_version,
            E::SCHEMA_VERSION
        )));
    }
    serde_json::from_value(event.payload.clone())
        .map_err(|e| HandlerError::Permanent(format!("`{}` does not fit: {e}", event.event_type)))
}

/// The chat a run reports to: its bot and chat, when a Telegram chat started it.
struct Target {
    bot: std::sync::Arc<ConfiguredBot>,
    chat: Chat,
    /// The user's message that started the run.
    message_id: Option<i64>,
}

async fn target(
    app: &App,
    origin: Option<&AttachmentOrigin>,
) -> Result<Option<Target>, HandlerError> {
    let Some(origin) = origin.filter(|o| o.channel == "telegram") else {
        return Ok(None);
    };
    let (Some(bot_name), Some(chat_id)) = (origin.bot.as_deref(), origin.chat_id) else {
        return Ok(None);
    };
    let bot = match app.bots.get(&app.control, bot_name).await {
        Ok(b) => b,
        Err(GatewayError::UnknownBot(_)) => {
            tracing::info!(bot = bot_name, "a run's bot is no longer configured");
            return Ok(None);
        }
        Err(e) => return Err(HandlerError::Transient(e.to_string())),
    };
    Ok(Some(Target {
        bot,
        // Telegram's group and channel ids are negative; only the rate limit depends on it.
        chat: Chat {
            id: chat_id,
            group: chat_id < 0,
        },
        message_id: origin.message_id,
    }))
}

fn telegram_failed(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Transient(format!("cannot tell the user: {e}"))
}

async fn on_progress(
    app: &App,
    event: &Envelope<Value>,
    p: AgentRunProgress,
) -> Result<&'static str, HandlerError> {
    let Some(t) = target(app, p.origin.as_ref()).await? else {
        return Ok("not_telegram");
    };
    if let Some(question) = p.question.as_deref() {
        return ask(app, &t, event.id, &p, question).await;
    }
    if OffsetDateTime::now_utc() - event.time > STALE_PROGRESS
        || state::finished(app, p.run_id).await?
    {
        return Ok("stale");
    }
    let out = Outgoing::plain(&t.bot, &app.limiter, t.chat, None);
    let line = text::progress(&p.crew, &p.line);
    match state::progress_message(app, p.run_id).await? {
        Some(id) => {
            out.edit(MessageId(id), &line)
                .await
                .map_err(telegram_failed)?;
            Ok("edited")
        }
        None => {
            let id = out.send(&line).await.map_err(telegram_failed)?;
            state::set_progress_message(app, p.run_id, id.0).await?;
            Ok("sent")
        }
    }
}

/// A `human_input` question: asked in the chat, and the chat's next message answers it.
async fn ask(
    app: &App,
    t: &Target,
    event_id: Uuid,
    p: &AgentRunProgress,
    question: &str,
) -> Result<&'static str, HandlerError> {
    let Some(claim) = state::claim(app, p.run_id, &format!("question:{event_id}")).await? else {
        return Ok("duplicate");
    };
    let waiting = state::Waiting {
        run: p.run_id,
        user: p.user_id,
    };
    // Waiting is recorded first: an answer typed the moment the question appears must find it.
    if let Err(e) = state::set_waiting(app, &t.bot.name, t.chat.id, waiting).await {
        claim.give_back(app).await;
        return Err(e);
    }
    let out = Outgoing::plain(&t.bot, &app.limiter, t.chat, None);
    if let Err(e) = out.send(&text::question(&p.crew, question)).await {
        claim.give_back(app).await;
        return Err(telegram_failed(e));
    }
    Ok("asked")
}

async fn on_completed(app: &App, c: AgentRunCompleted) -> Result<&'static str, HandlerError> {
    let Some(t) = target(app, c.origin.as_ref()).await? else {
        return Ok("not_telegram");
    };
    let Some(claim) = state::claim(app, c.run_id, "completed").await? else {
        return Ok("duplicate");
    };
    // Like any answer: Markdown, split past Telegram's limit.
    let out = Outgoing::new(&t.bot, &app.limiter, t.chat);
    let result = if c.result.trim().is_empty() {
        format!("The {} run finished without a result.", c.crew)
    } else {
        c.result.clone()
    };
    for piece in split::for_telegram(&result) {
        if piece.trim().is_empty() {
            continue;
        }
        if let Err(e) = out.send(&piece).await {
            claim.give_back(app).await;
            return Err(telegram_failed(e));
        }
    }
    finish(app, &t, c.run_id, &text::progress_done(&c.crew)).await;
    Ok("sent")
}

async fn on_failed(app: &App, f: AgentRunFailed) -> Result<&'static str, HandlerError> {
    let Some(t) = target(app, f.origin.as_ref()).await? else {
        return Ok("not_telegram");
    };
    let Some(claim) = state::claim(app, f.run_id, "failed").await? else {
        return Ok("duplicate");
    };
    let reply_to = t
        .message_id
        .and_then(|id| i32::try_from(id).ok())
        .map(MessageId);
    let out = Outgoing::plain(&t.bot, &app.limiter, t.chat, reply_to);
    if let Err(e) = out.send(&text::failed(&f.crew, &f.stop, &f.reason)).await {
        claim.give_back(app).await;
        return Err(telegram_failed(e));
    }
    finish(app, &t, f.run_id, &text::progress_stopped(&f.crew)).await;
    Ok("sent")
}

/// The run's end is told: its progress message says so, and its question no longer waits. The
/// user has the outcome already, so neither failing is worth a redelivery.
async fn finish(app: &App, t: &Target, run: Uuid, line: &str) {
    state::clear_waiting(app, &t.bot.name, t.chat.id, run).await;
    match state::progress_message(app, run).await {
        Ok(Some(id)) => {
            let out = Outgoing::plain(&t.bot, &app.limiter, t.chat, None);
            if let Err(e) = out.edit(MessageId(id), line).await {
                tracing::warn!(error = %e, %run, "cannot mark a run's progress message");
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, %run, "cannot find a run's progress message"),
    }
}
