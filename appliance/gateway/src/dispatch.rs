//! The `telegram-updates` consumer: one update taken off the queue, read into what it asks
//! for, checked against pairing, and passed on to a command, the conversation, or the reading of
//! a voice message or photo.

use std::time::Instant;

use daarion_bus::events::MessageReceivedTelegram;
use daarion_bus::{Envelope, HandlerError};

use crate::metrics::HANDLED;
use crate::telegram::say;
use crate::update::{FileKind, Incoming, normalise};
use crate::{App, GatewayError, attachments, commands, conversation, media, pairing, runs};

/// Failures that another delivery could fix (the control plane or the Bot API down before
/// anything was said) are transient; once the router has the message, the turn is never
/// repeated, so later failures are logged and the update acked.
pub async fn on_update(
    app: App,
    event: Envelope<MessageReceivedTelegram>,
) -> Result<(), HandlerError> {
    let MessageReceivedTelegram {
        bot: bot_name,
        update,
    } = event.payload;
    let bot = match app.bots.get(&app.control, &bot_name).await {
        Ok(b) => b,
        Err(GatewayError::UnknownBot(name)) => {
            return Err(HandlerError::Permanent(format!(
                "bot `{name}` is no longer configured"
            )));
        }
        Err(e) => return Err(HandlerError::Transient(e.to_string())),
    };
    let username = bot
        .username()
        .await
        .map_err(|e| HandlerError::Transient(e.to_string()))?
        .to_owned();
    let started = Instant::now();
    let incoming = normalise(&update, &username);
    // On a bot that needs pairing, someone not yet approved gets their code and nothing else
    // (except /help); unaddressed group chatter is not answered either way.
    let asker = match &incoming {
        Incoming::Ignore(_) => None,
        Incoming::Command { name, .. } if name == "help" => None,
        Incoming::Text {
            chat, addressed, ..
        } if chat.group && !addressed => None,
        Incoming::Unsupported { chat, from, .. }
        | Incoming::Command { chat, from, .. }
        | Incoming::Text { chat, from, .. }
        | Incoming::Voice { chat, from, .. }
        | Incoming::Photo { chat, from, .. }
        | Incoming::File { chat, from, .. } => Some((*chat, from.clone())),
    };
    if let Some((chat, from)) = asker {
        match pairing::gate(&app, &bot, chat, &from).await {
            Ok(None) => {}
            Ok(Some(reply)) => {
                HANDLED.with_label_values(&["pairing"]).inc();
                say(&app, &bot, chat, &reply).await;
                return Ok(());
            }
            Err(e) => return Err(HandlerError::Transient(e.to_string())),
        }
    }
    let outcome = match incoming {
        Incoming::Ignore(reason) => {
            tracing::info!(%reason, update_id = %update["update_id"], "update ignored");
            "ignored"
        }
        Incoming::Unsupported { chat, what, .. } => {
            let text =
                format!("Sorry, I cannot take {what} yet. Please write your message as text.");
            say(&app, &bot, chat, &text).await;
            "unsupported"
        }
        Incoming::Command {
            chat,
            from,
            name,
            args,
        } => {
            let text = commands::answer(&app, &bot, chat, &from, &name, &args).await;
            say(&app, &bot, chat, &text).await;
            "command"
        }
        Incoming::Text {
            chat,
            from,
            text,
            addressed,
            ..
        } => {
            // A run's question waits for this user's answer in this chat.
            if let Some(outcome) = runs::answer_waiting(&app, &bot, chat, &from, &text).await {
                HANDLED.with_label_values(&[outcome]).inc();
                return Ok(());
            }
            let said = conversation::Said {
                addressed,
                ..conversation::Said::typed(chat, &from, text)
            };
            conversation::converse(&app, &bot, said, started).await
        }
        Incoming::Photo {
            chat,
            from,
            file_id,
            caption,
        } => media::seen(&app, &bot, chat, &from, &file_id, caption, started).await,
        Incoming::Voice {
            chat,
            from,
            file_id,
        } => media::heard(&app, &bot, chat, &from, &file_id, started).await,
        Incoming::File {
            chat,
            from,
            file_id,
            name,
            size,
            caption,
            message_id,
            ..
        } if app.ingest.is_some() => {
            if let Some(caption) = &caption {
                // The file is what is kept; its caption is not a question to answer.
                tracing::debug!(%caption, "a file's caption");
            }
            let file = attachments::SentFile {
                file_id,
                name,
                size,
                message_id,
            };
            attachments::keep(&app, &bot, chat, &from, file).await
        }
        // Without ingest, what can be read at once still is (a recording transcribed, a photo
        // looked at); the rest is declined.
        Incoming::File {
            chat,
            from,
            file_id,
            kind: FileKind::Audio,
            ..
        } => media::heard(&app, &bot, chat, &from, &file_id, started).await,
        Incoming::File {
            chat,
            from,
            file_id,
            kind: FileKind::Photo,
            caption,
            ..
        } => media::seen(&app, &bot, chat, &from, &file_id, caption, started).await,
        Incoming::File { chat, kind, .. } => {
            let text = format!(
                "Sorry, I cannot take {} yet. Please write your message as text.",
                kind.plural()
            );
            say(&app, &bot, chat, &text).await;
            "unsupported"
        }
    };
    HANDLED.with_label_values(&[outcome]).inc();
    Ok(())
}
