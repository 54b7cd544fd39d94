//! The conversation: a user's message sent to the router, and the answer streamed into the chat
//! by editing one message at a bounded rate, split past Telegram's length limit, followed by
//! any voice or picture the agent made, and announced as `message.sent`.

use std::time::{Duration, Instant};

use daarion_bus::Envelope;
use daarion_bus::events::MessageSent;
use daarion_router_client::{ChatKind, Event, Inbound, Picture, UserRef};
use futures::StreamExt;
use teloxide_core::requests::{Request, Requester};
use teloxide_core::types::{ChatAction, ChatId, MessageId};

use crate::App;
use crate::bots::ConfiguredBot;
use crate::chat_settings;
use crate::metrics::FIRST_REPLY;
use crate::split;
use crate::telegram::{Outgoing, say};
use crate::update::{Chat, Sender};

/// What the user hears when the gateway itself cannot answer.
pub const SORRY: &str = "Sorry, something went wrong on my side. Please try again in a moment.";

/// A message from a user, on its way to the router.
pub struct Said<'a> {
    pub chat: Chat,
    pub from: &'a Sender,
    pub text: String,
    /// In a group: the bot was mentioned, replied to or given a command.
    pub addressed: bool,
    /// The text is a voice message's transcript.
    pub voice: bool,
    /// A photo that came with it (JPEG, base64), for the agent's `describe_image` tool.
    pub photo: Option<String>,
}

impl<'a> Said<'a> {
    /// Typed words, addressed to the bot.
    pub fn typed(chat: Chat, from: &'a Sender, text: String) -> Said<'a> {
        Said {
            chat,
            from,
            text,
            addressed: true,
            voice: false,
            photo: None,
        }
    }

    /// The router's view of it, as received by the bot called `bot`, to `agent` if the chat
    /// chose one.
    pub fn into_inbound(self, bot: &str, agent: Option<String>) -> Inbound {
        Inbound {
            channel: "telegram".into(),
            bot: Some(bot.to_owned()),
            chat_id: self.chat.id.to_string(),
            chat_kind: if self.chat.group {
                ChatKind::Group
            } else {
                ChatKind::Private
            },
            user: UserRef::Identity {
                external_id: self.from.id.to_string(),
                display_name: self.from.name.clone(),
            },
            text: self.text,
            agent,
            addressed: self.addressed,
            voice: self.voice,
            images: self
                .photo
                .into_iter()
                .map(|jpeg| Picture {
                    mime: "image/jpeg".into(),
                    data: jpeg,
                })
                .collect(),
            operator: false,
        }
    }
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
pub async fn converse(
    app: &App,
    bot: &ConfiguredBot,
    said: Said<'_>,
    started: Instant,
) -> &'static str {
    let chat = said.chat;
    let agent = chat_settings::chosen_agent(app, bot, chat).await;
    let message = said.into_inbound(&bot.name, agent);
    let mut events = match app.router.route(&message).await {
        Ok(events) => events,
        Err(e) => {
            tracing::error!(error = %e, "router unreachable");
            say(app, bot, chat, SORRY).await;
            return "failed";
        }
    };
    let typing = {
        let api = bot.api.clone();
        tokio::spawn(async move {
            loop {
                let _ = api
                    .send_chat_action(ChatId(chat.id), ChatAction::Typing)
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(4500)).await;
            }
        })
    };
    let mut shown = Shown {
        out: Outgoing::new(bot, &app.limiter, chat),
        sent: Vec::new(),
    };
    let interval = app.edit_interval(chat);
    // The first text appears one interval in (typing shows meanwhile), so a short answer costs
    // one message, not a message and an edit, against the chat's rate limit.
    let mut shown_at = Instant::now();
    let mut showing = false;
    let mut answer = String::new();
    let mut outcome = "answered";
    let mut trace_id: Option<String> = None;
    let mut agent_id: Option<String> = None;
    let mut stored_id: Option<uuid::Uuid> = None;
    // Voice messages and pictures a tool made (the agent chose to speak or draw), sent after
    // the text.
    let mut voices: Vec<Vec<u8>> = Vec::new();
    let mut pictures: Vec<(String, Vec<u8>)> = Vec::new();
    while let Some(event) = events.next().await {
        match event {
            Event::Start {
                trace_id: trace,
                agent,
                ..
            } => {
                trace_id = Some(trace);
                agent_id = Some(agent);
            }
            Event::Token { text } => {
                answer.push_str(&text);
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
            Event::Message { id, content, .. } => {
                answer = content;
                stored_id = Some(id);
            }
            Event::Media { mime, data } => {
                use base64::Engine;
                match base64::engine::general_purpose::STANDARD.decode(&data) {
                    Ok(ogg) if mime == "audio/ogg" => voices.push(ogg),
                    Ok(picture) if mime.starts_with("image/") => pictures.push((mime, picture)),
                    Ok(_) => tracing::warn!(%mime, "media of a kind Telegram is not sent"),
                    Err(e) => tracing::warn!(error = %e, "unreadable media from the router"),
                }
            }
            Event::Refused { reason, .. } => {
                answer = reason;
                outcome = "refused";
            }
            Event::Ignored { .. } => {
                typing.abort();
                return "ignored";
            }
            Event::Error {
                code,
                message,
                status,
            } => {
                tracing::error!(%code, %message, "the router could not answer");
                outcome = "failed";
                answer = if status == Some(413) {
                    "That message is too long for me. Please send long texts as a document.".into()
                } else if answer.trim().is_empty() {
                    SORRY.into()
                } else {
                    format!("{answer}\n\n(The answer was cut short.)")
                };
            }
            Event::ToolCall { .. } | Event::ToolResult { .. } | Event::Usage { .. } => {}
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
        && chat_settings::voice_replies(app, bot, chat).await
    {
        // The text is already there; a voice that cannot be made is logged, not apologised for.
        match crate::voice::speak(app, bot, &answer).await {
            Ok(ogg) => {
                if let Err(e) = shown.out.voice(&ogg).await {
                    tracing::warn!(error = %e, "cannot send the voice reply");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot speak the answer"),
        }
    }
    let sent = Envelope::event_as(
        "telegram",
        "gateway",
        MessageSent {
            bot: bot.name.clone(),
            chat_id: chat.id,
            telegram_message_ids: shown.sent.iter().map(|(id, _)| id.0).collect(),
            agent: agent_id,
            message_id: stored_id,
            router_trace_id: trace_id,
        },
    );
    if let Err(e) = app.bus.publish(&sent).await {
        tracing::error!(error = %e, "cannot publish message.sent");
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_router_gets_the_telegram_identity_chat_and_photo() {
        let from = Sender {
            id: 7,
            name: "Ann".into(),
        };
        let group = Chat {
            id: -40,
            group: true,
        };
        let said = Said {
            addressed: false,
            photo: Some("/9j/".into()),
            ..Said::typed(group, &from, "look".into())
        };
        assert_eq!(
            said.into_inbound("mainbot", Some("coder".into())),
            Inbound {
                channel: "telegram".into(),
                bot: Some("mainbot".into()),
                chat_id: "-40".into(),
                chat_kind: ChatKind::Group,
                user: UserRef::Identity {
                    external_id: "7".into(),
                    display_name: "Ann".into(),
                },
                text: "look".into(),
                agent: Some("coder".into()),
                addressed: false,
                voice: false,
                images: vec![Picture {
                    mime: "image/jpeg".into(),
                    data: "/9j/".into(),
                }],
                operator: false,
            }
        );
        let private = Chat {
            id: 10,
            group: false,
        };
        let spoken = Said {
            voice: true,
            ..Said::typed(private, &from, "hi".into())
        }
        .into_inbound("mainbot", None);
        assert_eq!(spoken.chat_kind, ChatKind::Private);
        assert!(spoken.voice && spoken.addressed && spoken.images.is_empty());
    }
}
