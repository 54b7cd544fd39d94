//! What happens to one Telegram update taken off the queue: commands answered here, messages
//! sent to the router, the answer streamed into the chat by editing one message at a bounded
//! rate and split past Telegram's length limit, and `message.sent` announced.

use std::time::{Duration, Instant};

use daarion_bus::{Envelope, HandlerError};
use daarion_control_client::ClientError;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use teloxide_core::requests::{Request, Requester};
use teloxide_core::types::{ChatAction, ChatId, MessageId};

use crate::bots::BotHandle;
use crate::metrics::{FIRST_REPLY, HANDLED};
use crate::split;
use crate::telegram::Outgoing;
use crate::update::{Chat, Incoming, Sender, normalise};
use crate::{App, GatewayError};

/// The payload of `message.received.telegram`: the update as Telegram sent it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceivedUpdate {
    pub bot: String,
    pub update: Value,
}

/// A message from a user, as the router gets it.
struct Said<'a> {
    chat: Chat,
    from: &'a Sender,
    text: String,
    /// In a group: the bot was mentioned, replied to or given a command.
    addressed: bool,
    /// The text is a voice message's transcript.
    voice: bool,
    /// A photo that came with it (JPEG, base64), for the agent's `describe_image` tool.
    photo: Option<String>,
}

const SORRY: &str = "Sorry, something went wrong on my side. Please try again in a moment.";

/// The consumer's handler. Failures that another delivery could fix (the control plane or the
/// Bot API down before anything was said) are transient; once the router has the message, the
/// turn is never repeated, so later failures are logged and the update acked.
pub async fn handle(app: App, event: Envelope<ReceivedUpdate>) -> Result<(), HandlerError> {
    let ReceivedUpdate { bot, update } = event.payload;
    let handle = match app.bots.get(&app.control, &bot).await {
        Ok(h) => h,
        Err(GatewayError::UnknownBot(name)) => {
            return Err(HandlerError::Permanent(format!(
                "bot `{name}` is no longer configured"
            )));
        }
        Err(e) => return Err(HandlerError::Transient(e.to_string())),
    };
    let username = handle
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
        | Incoming::Photo { chat, from, .. } => Some((*chat, from.clone())),
    };
    if let Some((chat, from)) = asker {
        match crate::pairing::gate(&app, &handle, chat, &from).await {
            Ok(None) => {}
            Ok(Some(reply)) => {
                HANDLED.with_label_values(&["pairing"]).inc();
                say(&app, &handle, chat, &reply).await;
                return Ok(());
            }
            Err(e) => return Err(HandlerError::Transient(e.to_string())),
        }
    }
    match incoming {
        Incoming::Ignore(reason) => {
            HANDLED.with_label_values(&["ignored"]).inc();
            tracing::info!(%reason, update_id = %update["update_id"], "update ignored");
        }
        Incoming::Unsupported { chat, what, .. } => {
            HANDLED.with_label_values(&["unsupported"]).inc();
            let text =
                format!("Sorry, I cannot take {what} yet. Please write your message as text.");
            say(&app, &handle, chat, &text).await;
        }
        Incoming::Command {
            chat,
            from,
            name,
            args,
        } => {
            HANDLED.with_label_values(&["command"]).inc();
            let text = command(&app, &handle, chat, &from, &name, &args).await;
            say(&app, &handle, chat, &text).await;
        }
        Incoming::Text {
            chat,
            from,
            text,
            addressed,
            ..
        } => {
            let outcome = converse(
                &app,
                &handle,
                Said {
                    chat,
                    from: &from,
                    text,
                    addressed,
                    voice: false,
                    photo: None,
                },
                started,
            )
            .await;
            HANDLED.with_label_values(&[outcome]).inc();
        }
        Incoming::Photo {
            chat,
            from,
            file_id,
            caption,
        } => {
            let outcome = photo(&app, &handle, chat, &from, &file_id, caption, started).await;
            HANDLED.with_label_values(&[outcome]).inc();
        }
        Incoming::Voice {
            chat,
            from,
            file_id,
        } => {
            let typing = handle
                .bot
                .send_chat_action(ChatId(chat.id), ChatAction::Typing);
            let _ = typing.send().await;
            let outcome = match crate::voice::transcribe(&app, &handle, &file_id).await {
                Ok(text) if text.is_empty() => {
                    say(
                        &app,
                        &handle,
                        chat,
                        "I could not hear any words in that voice message.",
                    )
                    .await;
                    "unsupported"
                }
                Ok(text) => {
                    converse(
                        &app,
                        &handle,
                        Said {
                            chat,
                            from: &from,
                            text,
                            addressed: true,
                            voice: true,
                            photo: None,
                        },
                        started,
                    )
                    .await
                }
                Err(crate::voice::VoiceError::NotAudio(why)) => {
                    tracing::warn!(%why, "a voice message that is not readable audio");
                    let sorry =
                        "I could not make out that voice message. Could you type it instead?";
                    say(&app, &handle, chat, sorry).await;
                    "unsupported"
                }
                Err(crate::voice::VoiceError::TooLarge) => {
                    say(
                        &app,
                        &handle,
                        chat,
                        "That recording is too large for me (20 MB at most).",
                    )
                    .await;
                    "unsupported"
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot transcribe a voice message");
                    say(&app, &handle, chat, SORRY).await;
                    "failed"
                }
            };
            HANDLED.with_label_values(&[outcome]).inc();
        }
    }
    Ok(())
}

/// A photo: described by the bot's vision model, then answered like the user's words about it.
async fn photo(
    app: &App,
    handle: &BotHandle,
    chat: Chat,
    from: &Sender,
    file_id: &str,
    caption: Option<String>,
    started: Instant,
) -> &'static str {
    let Some(model) = handle.settings.vision_model.clone() else {
        let text = "Sorry, I cannot look at photos here. Please describe it in words.";
        say(app, handle, chat, text).await;
        return "unsupported";
    };
    let typing = handle
        .bot
        .send_chat_action(ChatId(chat.id), ChatAction::Typing);
    let _ = typing.send().await;
    match crate::vision::describe(app, handle, file_id, &model).await {
        Ok(described) if described.description.is_empty() => {
            say(
                app,
                handle,
                chat,
                "I could not make anything out in that picture.",
            )
            .await;
            "unsupported"
        }
        Ok(described) => {
            let text = crate::vision::as_text(&described.description, caption.as_deref());
            converse(
                app,
                handle,
                Said {
                    chat,
                    from,
                    text,
                    addressed: true,
                    voice: false,
                    photo: Some(described.jpeg_base64),
                },
                started,
            )
            .await
        }
        Err(crate::vision::VisionError::NotImage(why)) => {
            tracing::warn!(%why, "a photo the vision model cannot read");
            let sorry = "I could not make out that picture. Could you describe it in words?";
            say(app, handle, chat, sorry).await;
            "unsupported"
        }
        Err(crate::vision::VisionError::TooLarge) => {
            say(
                app,
                handle,
                chat,
                "That picture is too large for me (20 MB at most).",
            )
            .await;
            "unsupported"
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot describe a photo");
            say(app, handle, chat, SORRY).await;
            "failed"
        }
    }
}

/// One message in reply; failures are logged (the user cannot be told either).
pub(crate) async fn say(app: &App, handle: &BotHandle, chat: Chat, text: &str) {
    let out = Outgoing::new(handle, &app.limiter, chat);
    for piece in split::for_telegram(text) {
        if let Err(e) = out.send(&piece).await {
            tracing::error!(error = %e, chat = chat.id, "cannot send a reply");
            return;
        }
    }
}

fn voice_key(app: &App, bot: &str, chat: Chat) -> String {
    format!(
        "{}gateway:voice:{bot}:{}",
        app.config.redis.key_prefix, chat.id
    )
}

/// Whether this chat asked for spoken answers (`/voice on`).
async fn voice_replies(app: &App, handle: &BotHandle, chat: Chat) -> bool {
    let mut redis = app.redis.clone();
    redis::cmd("EXISTS")
        .arg(voice_key(app, &handle.name, chat))
        .query_async::<bool>(&mut redis)
        .await
        .unwrap_or(false)
}

fn agent_key(app: &App, bot: &str, chat: Chat) -> String {
    format!(
        "{}gateway:agent:{bot}:{}",
        app.config.redis.key_prefix, chat.id
    )
}

/// The agent chosen in this chat with `/agent`, else the bot's own.
async fn chosen_agent(app: &App, handle: &BotHandle, chat: Chat) -> Option<String> {
    let mut redis = app.redis.clone();
    let chosen: Option<String> = redis::cmd("GET")
        .arg(agent_key(app, &handle.name, chat))
        .query_async(&mut redis)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the chat's agent; using the bot's");
            None
        });
    chosen.or_else(|| handle.settings.agent.clone())
}

fn routed(handle: &BotHandle, said: &Said<'_>, agent: Option<String>) -> Value {
    json!({
        "channel": "telegram",
        "bot": handle.name,
        "chat_id": said.chat.id.to_string(),
        "chat_kind": if said.chat.group { "group" } else { "private" },
        "user": {"external_id": said.from.id.to_string(), "display_name": said.from.name},
        "text": said.text,
        "addressed": said.addressed,
        "agent": agent,
        "voice": said.voice,
        "images": said.photo.iter().map(|jpeg| json!({"mime": "image/jpeg", "data": jpeg})).collect::<Vec<_>>(),
    })
}

async fn command(
    app: &App,
    handle: &BotHandle,
    chat: Chat,
    from: &Sender,
    name: &str,
    args: &str,
) -> String {
    match name {
        "start" | "help" => format!(
            "Hi {}! Just write to me and I will answer.\n\n/new — start a new conversation\n/agent NAME — talk to another agent\n/voice on|off — spoken answers as voice messages\n/status — your usage and limits\n/help — this message",
            from.name
        ),
        "new" | "reset" => {
            let agent = chosen_agent(app, handle, chat).await;
            let said = Said {
                chat,
                from,
                text: format!("/{name}"),
                addressed: true,
                voice: false,
                photo: None,
            };
            let message = routed(handle, &said, agent);
            match app.router.reset(&message).await {
                Ok(done) => format!(
                    "Started a new conversation with {}.",
                    done["agent_name"].as_str().unwrap_or("the agent")
                ),
                Err(GatewayError::BadRequest(why)) => format!("I could not start afresh: {why}"),
                Err(e) => {
                    tracing::error!(error = %e, "reset failed");
                    SORRY.into()
                }
            }
        }
        "agent" if args.is_empty() => match chosen_agent(app, handle, chat).await {
            Some(agent) => format!("You are talking to `{agent}`. Switch with /agent NAME."),
            None => "You are talking to the default agent. Switch with /agent NAME.".into(),
        },
        "agent" => {
            let wanted = args
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_lowercase();
            match app.control.agent(&wanted).await {
                Ok(agent) => {
                    let mut redis = app.redis.clone();
                    let stored: Result<(), _> = redis::cmd("SET")
                        .arg(agent_key(app, &handle.name, chat))
                        .arg(&agent.value.id)
                        .query_async(&mut redis)
                        .await;
                    match stored {
                        Ok(()) => format!("You are now talking to {}.", agent.value.name),
                        Err(e) => {
                            tracing::error!(error = %e, "cannot store the chat's agent");
                            SORRY.into()
                        }
                    }
                }
                Err(ClientError::NotFound(_)) => format!("There is no agent called `{wanted}`."),
                Err(e) => {
                    tracing::error!(error = %e, "cannot look the agent up");
                    SORRY.into()
                }
            }
        }
        "voice" => {
            let key = voice_key(app, &handle.name, chat);
            let mut redis = app.redis.clone();
            let (command, reply) = match args.to_lowercase().as_str() {
                "on" => (
                    "SET",
                    "Voice replies are on: answers come as text and as a voice message.",
                ),
                "off" => ("DEL", "Voice replies are off."),
                _ => return "Use /voice on or /voice off.".into(),
            };
            let mut cmd = redis::cmd(command);
            cmd.arg(&key);
            if command == "SET" {
                cmd.arg(1);
            }
            match cmd.query_async::<()>(&mut redis).await {
                Ok(()) => reply.into(),
                Err(e) => {
                    tracing::error!(error = %e, "cannot store the voice setting");
                    SORRY.into()
                }
            }
        }
        "status" => match status(app, from).await {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the quota");
                SORRY.into()
            }
        },
        _ => SORRY.into(),
    }
}

/// `/status`: what the user used and may still use.
async fn status(app: &App, from: &Sender) -> Result<String, GatewayError> {
    let user = crate::pairing::resolve_user(app, from).await?;
    let quota = app
        .control
        .quota_status(&user)
        .await
        .map_err(|e| GatewayError::unavailable("the control plane", e))?;
    let line = |label: &str, used: &Value, limit: &Value| match limit.as_f64() {
        Some(limit) => format!("{label}: {} of {limit}", used),
        None => format!("{label}: {} (no limit)", used),
    };
    let (u, l) = (&quota["usage"], &quota["limits"]);
    Ok([
        "Your usage:".to_owned(),
        line(
            "requests this minute",
            &u["requests_this_minute"],
            &l["requests_per_minute"],
        ),
        line("tokens today", &u["tokens_today"], &l["tokens_per_day"]),
        line(
            "GPU-seconds today",
            &u["gpu_seconds_today"],
            &l["gpu_seconds_per_day"],
        ),
        line(
            &format!(
                "cost this month ({})",
                l["currency"].as_str().unwrap_or("USD")
            ),
            &u["cost_this_month"],
            &l["cost_per_month"],
        ),
    ]
    .join("\n"))
}

/// The messages showing one answer, edited as it grows.
struct Shown<'a> {
    out: Outgoing<'a>,
    sent: Vec<(MessageId, String)>,
}

impl Shown<'_> {
    async fn show(&mut self, text: &str) -> Result<(), teloxide_core::RequestError> {
        for (i, piece) in split::for_telegram(text).into_iter().enumerate() {
            if piece.trim().is_empty() {
                continue;
            }
            match self.sent.get(i) {
                Some((_, shown)) if *shown == piece => {}
                Some((id, _)) => {
                    self.out.edit(*id, &piece).await?;
                    self.sent[i].1 = piece;
                }
                None => {
                    let id = self.out.send(&piece).await?;
                    self.sent.push((id, piece));
                }
            }
        }
        Ok(())
    }
}

/// Sends a message to the router and streams the answer into the chat. Returns the outcome label.
async fn converse(app: &App, handle: &BotHandle, said: Said<'_>, started: Instant) -> &'static str {
    let chat = said.chat;
    let agent = chosen_agent(app, handle, chat).await;
    let message = routed(handle, &said, agent);
    let mut events = match app.router.route(&message).await {
        Ok(events) => events,
        Err(e) => {
            tracing::error!(error = %e, "router unreachable");
            say(app, handle, chat, SORRY).await;
            return "failed";
        }
    };
    let typing = {
        let bot = handle.bot.clone();
        tokio::spawn(async move {
            loop {
                let _ = bot
                    .send_chat_action(ChatId(chat.id), ChatAction::Typing)
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(4500)).await;
            }
        })
    };
    let mut shown = Shown {
        out: Outgoing::new(handle, &app.limiter, chat),
        sent: Vec::new(),
    };
    let interval = app.edit_interval(chat);
    // The first text appears one interval in (typing shows meanwhile), so a short answer costs
    // one message, not a message and an edit, against the chat's rate limit.
    let mut shown_at = Instant::now();
    let mut showing = false;
    let mut answer = String::new();
    let mut outcome = "answered";
    let mut trace_id = Value::Null;
    let mut agent_id = Value::Null;
    let mut stored_id = Value::Null;
    // Voice messages and pictures a tool made (the agent chose to speak or draw), sent after
    // the text.
    let mut voices: Vec<Vec<u8>> = Vec::new();
    let mut pictures: Vec<(String, Vec<u8>)> = Vec::new();
    while let Some(event) = events.next().await {
        match event["type"].as_str().unwrap_or_default() {
            "start" => {
                trace_id = event["trace_id"].clone();
                agent_id = event["agent"].clone();
            }
            "token" => {
                answer.push_str(event["text"].as_str().unwrap_or_default());
                if shown_at.elapsed() >= interval && !answer.trim().is_empty() {
                    typing.abort();
                    if !showing {
                        FIRST_REPLY.observe(started.elapsed().as_secs_f64());
                        showing = true;
                    }
                    if let Err(e) = shown.show(&format!("{answer} …")).await {
                        tracing::warn!(error = %e, "cannot show the answer so far");
                    }
                    shown_at = Instant::now();
                }
            }
            "message" => {
                answer = event["content"].as_str().unwrap_or_default().to_owned();
                stored_id = event["id"].clone();
            }
            "media" => {
                use base64::Engine;
                let mime = event["mime"].as_str().unwrap_or_default();
                match base64::engine::general_purpose::STANDARD
                    .decode(event["data"].as_str().unwrap_or_default())
                {
                    Ok(ogg) if mime == "audio/ogg" => voices.push(ogg),
                    Ok(picture) if mime.starts_with("image/") => {
                        pictures.push((mime.to_owned(), picture))
                    }
                    Ok(_) => tracing::warn!(mime, "media of a kind Telegram is not sent"),
                    Err(e) => tracing::warn!(error = %e, "unreadable media from the router"),
                }
            }
            "refused" => {
                answer = event["reason"].as_str().unwrap_or(SORRY).to_owned();
                outcome = "refused";
            }
            "ignored" => {
                typing.abort();
                return "ignored";
            }
            "error" => {
                tracing::error!(code = %event["code"], message = %event["message"], "the router could not answer");
                outcome = "failed";
                answer = if event["status"].as_u64() == Some(413) {
                    "That message is too long for me. Please send long texts as a document.".into()
                } else if answer.trim().is_empty() {
                    SORRY.into()
                } else {
                    format!("{answer}\n\n(The answer was cut short.)")
                };
            }
            _ => {}
        }
    }
    typing.abort();
    if answer.trim().is_empty() {
        answer = SORRY.into();
        outcome = "failed";
    }
    if !showing {
        FIRST_REPLY.observe(started.elapsed().as_secs_f64());
    }
    if let Err(e) = shown.show(&answer).await {
        tracing::error!(error = %e, chat = chat.id, "cannot deliver the answer");
        return "failed";
    }
    for ogg in &voices {
        if let Err(e) = shown.out.voice(ogg).await {
            tracing::warn!(error = %e, "cannot send the agent's voice message");
        }
    }
    for (mime, picture) in &pictures {
        if let Err(e) = shown.out.photo(picture, mime).await {
            tracing::warn!(error = %e, "cannot send the agent's picture");
        }
    }
    if outcome == "answered"
        && voices.is_empty()
        && answer.chars().count() <= crate::voice::MAX_SPOKEN_CHARS
        && voice_replies(app, handle, chat).await
    {
        // The text is already there; a voice that cannot be made is logged, not apologised for.
        match crate::voice::speak(app, handle, &answer).await {
            Ok(ogg) => {
                if let Err(e) = shown.out.voice(&ogg).await {
                    tracing::warn!(error = %e, "cannot send the voice reply");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot speak the answer"),
        }
    }
    let sent = Envelope::new(
        "message.sent.telegram",
        "gateway",
        json!({
            "bot": handle.name,
            "chat_id": chat.id,
            "telegram_message_ids": shown.sent.iter().map(|(id, _)| id.0).collect::<Vec<_>>(),
            "agent": agent_id,
            "message_id": stored_id,
            "router_trace_id": trace_id,
        }),
    );
    if let Err(e) = app.bus.publish(&sent).await {
        tracing::error!(error = %e, "cannot publish message.sent");
    }
    outcome
}
