//! Files users send to keep: a document, a recording, a video, a photo "to remember". The file
//! goes from Telegram to the ingest service as it downloads (never held whole), with where it
//! came from, so that when the parser and memory are done (`attachment.indexed` /
//! `attachment.failed`, [`on_indexed`] / [`on_failed`]) the user is told in a reply to the
//! message that carried it.
//!
//! Telling is once per outcome: a claim `SET NX` in Redis per (attachment, attempt, outcome),
//! kept 30 days, is taken before the reply and given back if the reply could not be sent (so a
//! redelivery tries again). Redis rather than memory's session state: the claim is the
//! gateway's own bookkeeping about Telegram messages, needs an atomic "first one wins", and
//! expires by itself.

use std::time::Duration;

use daarion_bus::events::{AttachmentFailed, AttachmentIndexed, AttachmentOrigin};
use daarion_bus::{Envelope, HandlerError};
use daarion_ingest_client::{Attachment, AttachmentState, Created, Origin};
use daarion_memory_client::MemoryError;
use teloxide_core::types::MessageId;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::bots::ConfiguredBot;
use crate::conversation::SORRY;
use crate::files::{self, FileError, MAX_FILE_BYTES};
use crate::telegram::Outgoing;
use crate::update::{Chat, Sender};
use crate::{App, GatewayError};

/// How long a claim to have told an outcome is kept: far beyond any redelivery.
const TOLD_TTL_SECS: u64 = 30 * 24 * 3600;
/// Outcomes older than this are not told: a reply a day late confuses more than it helps (the
/// gateway was off, or ingest was enabled on it only later).
const TOO_LATE: Duration = Duration::from_secs(24 * 3600);

/// A file from a Telegram message, as [`crate::update::Incoming::File`] carries it.
pub struct SentFile {
    pub file_id: String,
    pub name: String,
    pub size: Option<u64>,
    pub message_id: i64,
}

/// Sizes as people say them: `34 MB`, `900 KB`.
fn megabytes(bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if bytes >= MB {
        format!("{} MB", bytes.div_ceil(MB))
    } else {
        format!("{} KB", bytes.div_ceil(1024).max(1))
    }
}

pub fn too_large(bytes: u64) -> String {
    format!(
        "This file is {}; Telegram lets bots download at most {}. Send a link or a smaller file.",
        megabytes(bytes),
        megabytes(MAX_FILE_BYTES)
    )
}

pub fn reading(name: &str) -> String {
    format!("Received, reading {name}…")
}

/// How long ago, in words: `just now`, `2 min ago`, `3 h ago`, `4 days ago`.
pub fn ago(then: OffsetDateTime, now: OffsetDateTime) -> String {
    let secs = (now - then).whole_seconds().max(0);
    match secs {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..172_800 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// What the user is told when they send a file they sent before.
pub fn already_have(a: &Attachment, now: OffsetDateTime) -> String {
    let name = &a.name;
    match a.state {
        AttachmentState::Indexed => {
            let when = ago(a.indexed_at.unwrap_or(a.updated_at), now);
            format!("I already have {name} (indexed {when}) — ask me about it.")
        }
        AttachmentState::Parsed => {
            let when = ago(a.parsed_at.unwrap_or(a.updated_at), now);
            format!("I already have {name} (read {when}; still making it searchable).")
        }
        AttachmentState::Received | AttachmentState::Parsing => {
            let progress = match a.progress {
                Some(p) => match p.total {
                    Some(total) => format!(", {} of {total} done", p.done),
                    None => format!(", {} done", p.done),
                },
                None => String::new(),
            };
            format!("I already have {name} and I am still reading it{progress}.")
        }
        AttachmentState::Failed => {
            let why = a.error.as_deref().unwrap_or("no reason given");
            format!("I already have {name}, but I could not read it: {why}")
        }
    }
}

/// What a file's `pages` count, by its format (`daarion_formats::Format` names).
fn units(format: &str, n: i64) -> Option<String> {
    let word = match format {
        "xlsx" | "ods" | "csv" => "sheet",
        "pptx" | "odp" => "slide",
        "wav" | "ogg" | "mp3" | "flac" | "m4a" | "mp4" | "webm" | "mkv" | "mov" => "minute",
        "png" | "jpeg" | "webp" | "gif" | "tiff" | "bmp" => return None,
        _ => "page",
    };
    Some(if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    })
}

/// `report.pdf: 12 pages read — ask me about it`.
pub fn indexed(name: &str, format: &str, pages: Option<i64>) -> String {
    match pages.filter(|n| *n > 0).and_then(|n| units(format, n)) {
        Some(read) => format!("{name}: {read} read — ask me about it"),
        None => format!("{name}: read — ask me about it"),
    }
}

/// `I could not read report.pdf: encrypted PDF`.
pub fn failed(name: &str, reason: &str) -> String {
    format!("I could not read {name}: {reason}")
}

/// A file from a Telegram user, handed to ingest. Returns the outcome label.
pub async fn keep(
    app: &App,
    bot: &ConfiguredBot,
    chat: Chat,
    from: &Sender,
    file: SentFile,
) -> &'static str {
    let Some(ingest) = &app.ingest else {
        return "unsupported";
    };
    let out = Outgoing::plain(
        bot,
        &app.limiter,
        chat,
        Some(MessageId(file.message_id as i32)),
    );
    // Telegram's own limit, from the update: nothing is downloaded that would be refused.
    if let Some(size) = file.size.filter(|s| *s > MAX_FILE_BYTES) {
        send(&out, &too_large(size)).await;
        return "too_large";
    }
    let status = match out.send(&reading(&file.name)).await {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::warn!(error = %e, "cannot say a file was received");
            None
        }
    };
    // The status line becomes the answer where there is one to give now.
    let tell = |text: String| {
        let out = &out;
        async move {
            let shown = match status {
                Some(id) => out.edit(id, &text).await.map(|_| ()),
                None => out.send(&text).await.map(|_| ()),
            };
            if let Err(e) = shown {
                tracing::error!(error = %e, "cannot tell the user about their file");
            }
        }
    };
    let located = match files::locate(bot, &file.file_id).await {
        Ok(l) => l,
        Err(FileError::TooLarge) => {
            // The update did not say the size; getFile did.
            tell(too_large(MAX_FILE_BYTES + 1)).await;
            return "too_large";
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot fetch a file from Telegram");
            tell(format!(
                "I could not fetch {} from Telegram. Please send it again.",
                file.name
            ))
            .await;
            return "failed";
        }
    };
    let user = match app
        .memory
        .resolve("telegram", &from.id.to_string(), &from.name)
        .await
    {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "cannot resolve the sender of a file");
            tell(SORRY.into()).await;
            return "failed";
        }
    };
    let origin = Origin {
        channel: "telegram".into(),
        bot: Some(bot.name.clone()),
        chat_id: Some(chat.id),
        message_id: Some(file.message_id),
    };
    let body = reqwest::Body::wrap_stream(files::stream(bot, &located));
    match ingest.upload(user, &file.name, body, Some(&origin)).await {
        Ok(Created { created: true, .. }) => "received",
        Ok(Created {
            created: false,
            attachment,
        }) => {
            tell(already_have(&attachment, OffsetDateTime::now_utc())).await;
            "duplicate"
        }
        Err(daarion_client::ClientError::Refused { status, body, .. }) if status < 500 => {
            // Too large, a type no parser reads, a mislabelled file: ingest's words say which.
            tell(format!("I cannot take {}: {}", file.name, body.message)).await;
            "refused"
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot hand a file to ingest");
            tell(SORRY.into()).await;
            "failed"
        }
    }
}

async fn send(out: &Outgoing<'_>, text: &str) {
    if let Err(e) = out.send(text).await {
        tracing::error!(error = %e, "cannot send a reply");
    }
}

/// Where in Telegram an outcome is to be told: the bot, the chat and the user's message.
fn telegram_target(origin: Option<&AttachmentOrigin>) -> Option<(&str, i64, Option<i64>)> {
    let origin = origin.filter(|o| o.channel == "telegram")?;
    Some((origin.bot.as_deref()?, origin.chat_id?, origin.message_id))
}

/// One outcome to tell, from either event.
struct Outcome<'a> {
    kind: &'static str,
    attachment: Uuid,
    attempt: u32,
    origin: Option<&'a AttachmentOrigin>,
    at: OffsetDateTime,
}

/// `attachment.indexed`: "report.pdf: 12 pages read — ask me about it".
pub async fn on_indexed(app: App, event: Envelope<AttachmentIndexed>) -> Result<(), HandlerError> {
    let e = &event.payload;
    let outcome = Outcome {
        kind: "indexed",
        attachment: e.attachment_id,
        attempt: e.attempt,
        origin: e.origin.as_ref(),
        at: event.time,
    };
    tell_outcome(&app, outcome, |a| {
        indexed(&a.name, &a.format, a.pages.map(i64::from))
    })
    .await
}

/// `attachment.failed`: "I could not read report.pdf: encrypted PDF".
pub async fn on_failed(app: App, event: Envelope<AttachmentFailed>) -> Result<(), HandlerError> {
    let e = &event.payload;
    let outcome = Outcome {
        kind: "failed",
        attachment: e.attachment_id,
        attempt: e.attempt,
        origin: e.origin.as_ref(),
        at: event.time,
    };
    let text = failed(&e.name, &e.reason);
    tell_outcome(&app, outcome, |_| text.clone()).await
}

async fn tell_outcome(
    app: &App,
    outcome: Outcome<'_>,
    text: impl Fn(&Attachment) -> String,
) -> Result<(), HandlerError> {
    let Some((bot_name, chat_id, message_id)) = telegram_target(outcome.origin) else {
        return Ok(());
    };
    if OffsetDateTime::now_utc() - outcome.at > TOO_LATE {
        tracing::info!(attachment = %outcome.attachment, "outcome too old to tell; skipped");
        return Ok(());
    }
    let bot = match app.bots.get(&app.control, bot_name).await {
        Ok(b) => b,
        Err(GatewayError::UnknownBot(_)) => {
            tracing::info!(
                bot = bot_name,
                "an attachment's bot is no longer configured"
            );
            return Ok(());
        }
        Err(e) => return Err(HandlerError::Transient(e.to_string())),
    };
    // The record as it is now: its page count, and whether a retry made this event stale.
    let attachment = match app.memory.attachment(outcome.attachment).await {
        Ok(a) => a,
        Err(MemoryError::Refused { status: 404, .. }) => {
            tracing::info!(attachment = %outcome.attachment, "attachment deleted; not told");
            return Ok(());
        }
        Err(e) => return Err(HandlerError::Transient(e.to_string())),
    };
    if i64::from(attachment.attempt) > i64::from(outcome.attempt) {
        tracing::info!(attachment = %attachment.id, "outcome of an earlier attempt; not told");
        return Ok(());
    }
    let key = format!(
        "{}gateway:attachment:told:{}:{}:{}",
        app.config.redis.key_prefix, outcome.attachment, outcome.attempt, outcome.kind
    );
    let mut redis = app.redis.clone();
    let claimed: Option<String> = redis::cmd("SET")
        .arg(&key)
        .arg(1)
        .arg("NX")
        .arg("EX")
        .arg(TOLD_TTL_SECS)
        .query_async(&mut redis)
        .await
        .map_err(|e| HandlerError::Transient(format!("Redis: {e}")))?;
    if claimed.is_none() {
        tracing::debug!(%key, "outcome told already");
        return Ok(());
    }
    let chat = Chat {
        id: chat_id,
        // Telegram's group and channel ids are negative; only the rate limit depends on it.
        group: chat_id < 0,
    };
    let reply_to = message_id
        .and_then(|id| i32::try_from(id).ok())
        .map(MessageId);
    let out = Outgoing::plain(&bot, &app.limiter, chat, reply_to);
    if let Err(e) = out.send(&text(&attachment)).await {
        // Given back, so the redelivery tries again.
        let _: Result<(), _> = redis::cmd("DEL").arg(&key).query_async(&mut redis).await;
        return Err(HandlerError::Transient(format!(
            "cannot tell the user: {e}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn outcomes_count_in_the_units_of_the_format() {
        for (name, format, pages, said) in [
            (
                "report.pdf",
                "pdf",
                Some(12),
                "report.pdf: 12 pages read — ask me about it",
            ),
            (
                "memo.docx",
                "docx",
                Some(1),
                "memo.docx: 1 page read — ask me about it",
            ),
            (
                "budget.xlsx",
                "xlsx",
                Some(3),
                "budget.xlsx: 3 sheets read — ask me about it",
            ),
            (
                "deck.pptx",
                "pptx",
                Some(9),
                "deck.pptx: 9 slides read — ask me about it",
            ),
            (
                "call.ogg",
                "ogg",
                Some(4),
                "call.ogg: 4 minutes read — ask me about it",
            ),
            (
                "clip.mp4",
                "mp4",
                Some(1),
                "clip.mp4: 1 minute read — ask me about it",
            ),
            (
                "photo-3.jpg",
                "jpeg",
                Some(1),
                "photo-3.jpg: read — ask me about it",
            ),
            (
                "notes.txt",
                "text",
                None,
                "notes.txt: read — ask me about it",
            ),
            (
                "empty.pdf",
                "pdf",
                Some(0),
                "empty.pdf: read — ask me about it",
            ),
        ] {
            assert_eq!(indexed(name, format, pages), said);
        }
        assert_eq!(
            failed("report.pdf", "encrypted PDF"),
            "I could not read report.pdf: encrypted PDF"
        );
    }

    #[test]
    fn sizes_and_times_read_like_a_person_says_them() {
        assert_eq!(
            too_large(34 * 1024 * 1024),
            "This file is 34 MB; Telegram lets bots download at most 20 MB. Send a link or a smaller file."
        );
        assert_eq!(megabytes(900 * 1024), "900 KB");
        assert_eq!(megabytes(1), "1 KB");
        let now = datetime!(2026-12-03 12:00 UTC);
        for (then, said) in [
            (datetime!(2026-12-03 11:59:30 UTC), "just now"),
            (datetime!(2026-12-03 11:58 UTC), "2 min ago"),
            (datetime!(2026-12-03 09:00 UTC), "3 h ago"),
            (datetime!(2026-11-29 12:00 UTC), "4 days ago"),
            (datetime!(2026-12-03 12:01 UTC), "just now"),
        ] {
            assert_eq!(ago(then, now), said);
        }
    }

    #[test]
    fn only_telegram_origins_with_a_bot_and_chat_are_told() {
        let origin = |channel: &str, bot: Option<&str>, chat: Option<i64>| AttachmentOrigin {
            channel: channel.into(),
            bot: bot.map(str::to_owned),
            chat_id: chat,
            message_id: Some(5),
        };
        assert_eq!(
            telegram_target(Some(&origin("telegram", Some("main"), Some(10)))),
            Some(("main", 10, Some(5)))
        );
        for o in [
            origin("admin", Some("main"), Some(10)),
            origin("telegram", None, Some(10)),
            origin("telegram", Some("main"), None),
        ] {
            assert_eq!(telegram_target(Some(&o)), None, "{o:?}");
        }
        assert_eq!(telegram_target(None), None);
    }
}
