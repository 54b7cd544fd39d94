//! Voice messages and photos turned into words for the conversation: a voice message by its
//! transcript, a photo by the vision model's description before its caption. What cannot be
//! read gets a friendly reply instead, and nothing is asked of the agent.

use std::time::Instant;

use teloxide_core::requests::{Request, Requester};
use teloxide_core::types::{ChatAction, ChatId};

use crate::App;
use crate::bots::ConfiguredBot;
use crate::conversation::{SORRY, Said, converse};
use crate::telegram::say;
use crate::update::{Chat, Sender};
use crate::vision::{self, VisionError};
use crate::voice::{self, VoiceError};

/// Fetching and reading a file takes a while: the user sees the bot typing meanwhile.
async fn show_typing(bot: &ConfiguredBot, chat: Chat) {
    let _ = bot
        .api
        .send_chat_action(ChatId(chat.id), ChatAction::Typing)
        .send()
        .await;
}

/// A voice message: transcribed by the swapper, then answered like the user's typed words.
/// Returns the outcome label.
pub async fn heard(
    app: &App,
    bot: &ConfiguredBot,
    chat: Chat,
    from: &Sender,
    file_id: &str,
    started: Instant,
) -> &'static str {
    show_typing(bot, chat).await;
    match voice::transcribe(app, bot, file_id).await {
        Ok(text) if text.is_empty() => {
            let sorry = "I could not hear any words in that voice message.";
            say(app, bot, chat, sorry).await;
            "unsupported"
        }
        Ok(text) => {
            let said = Said {
                voice: true,
                ..Said::typed(chat, from, text)
            };
            converse(app, bot, said, started).await
        }
        Err(VoiceError::NotAudio(why)) => {
            tracing::warn!(%why, "a voice message that is not readable audio");
            let sorry = "I could not make out that voice message. Could you type it instead?";
            say(app, bot, chat, sorry).await;
            "unsupported"
        }
        Err(VoiceError::TooLarge) => {
            let sorry = "That recording is too large for me (20 MB at most).";
            say(app, bot, chat, sorry).await;
            "unsupported"
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot transcribe a voice message");
            say(app, bot, chat, SORRY).await;
            "failed"
        }
    }
}

/// A photo: described by the bot's vision model, then answered like the user's words about it.
/// Returns the outcome label.
pub async fn seen(
    app: &App,
    bot: &ConfiguredBot,
    chat: Chat,
    from: &Sender,
    file_id: &str,
    caption: Option<String>,
    started: Instant,
) -> &'static str {
    let Some(model) = bot.settings.vision_model.clone() else {
        let text = "Sorry, I cannot look at photos here. Please describe it in words.";
        say(app, bot, chat, text).await;
        return "unsupported";
    };
    show_typing(bot, chat).await;
    match vision::describe(app, bot, file_id, &model).await {
        Ok(described) if described.description.is_empty() => {
            let sorry = "I could not make anything out in that picture.";
            say(app, bot, chat, sorry).await;
            "unsupported"
        }
        Ok(described) => {
            let text = vision::as_text(&described.description, caption.as_deref());
            let said = Said {
                photo: Some(described.jpeg_base64),
                ..Said::typed(chat, from, text)
            };
            converse(app, bot, said, started).await
        }
        Err(VisionError::NotImage(why)) => {
            tracing::warn!(%why, "a photo the vision model cannot read");
            let sorry = "I could not make out that picture. Could you describe it in words?";
            say(app, bot, chat, sorry).await;
            "unsupported"
        }
        Err(VisionError::TooLarge) => {
            let sorry = "That picture is too large for me (20 MB at most).";
            say(app, bot, chat, sorry).await;
            "unsupported"
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot describe a photo");
            say(app, bot, chat, SORRY).await;
            "failed"
        }
    }
}
