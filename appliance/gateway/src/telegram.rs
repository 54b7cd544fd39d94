//! Outgoing Bot API calls for one chat: every call waits for its slot in the [`Limiter`], a
//! `429 retry_after` is honoured (edits included) and network failures are retried briefly.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use teloxide_core::payloads::{EditMessageTextSetters, SendMessageSetters};
use teloxide_core::requests::{Request, Requester};
use teloxide_core::types::{ChatId, InputFile, MessageId, ParseMode, ReplyParameters};
use teloxide_core::{ApiError, RequestError};

use crate::App;
use crate::bots::ConfiguredBot;
use crate::limiter::Limiter;
use crate::metrics::TELEGRAM_CALLS;
use crate::split;
use crate::update::Chat;

const ATTEMPTS: u32 = 4;

pub struct Outgoing<'a> {
    pub bot: &'a ConfiguredBot,
    pub limiter: &'a Limiter,
    pub chat: Chat,
    /// Set once Telegram refused this answer's markup: its later sends and edits carry the
    /// same markup, so they go as plain text at once.
    plain: AtomicBool,
    /// Messages sent are replies to this one (the user's message they answer).
    reply_to: Option<MessageId>,
}

impl<'a> Outgoing<'a> {
    pub fn new(bot: &'a ConfiguredBot, limiter: &'a Limiter, chat: Chat) -> Outgoing<'a> {
        Outgoing {
            bot,
            limiter,
            chat,
            plain: AtomicBool::new(false),
            reply_to: None,
        }
    }

    /// Text as written, no Markdown: status lines naming files (`my_report_v2.pdf` is not
    /// emphasis), sent as replies to `reply_to` when given (and sent anyway should that message
    /// be gone).
    pub fn plain(
        bot: &'a ConfiguredBot,
        limiter: &'a Limiter,
        chat: Chat,
        reply_to: Option<MessageId>,
    ) -> Outgoing<'a> {
        Outgoing {
            plain: AtomicBool::new(true),
            reply_to,
            ..Outgoing::new(bot, limiter, chat)
        }
    }

    fn reply_parameters(&self) -> Option<ReplyParameters> {
        self.reply_to
            .map(|id| ReplyParameters::new(id).allow_sending_without_reply())
    }
}

/// One message in reply, split past Telegram's length limit; failures are logged (the user
/// cannot be told either).
pub async fn say(app: &App, bot: &ConfiguredBot, chat: Chat, text: &str) {
    let out = Outgoing::new(bot, &app.limiter, chat);
    for piece in split::for_telegram(text) {
        if let Err(e) = out.send(&piece).await {
            tracing::error!(error = %e, chat = chat.id, "cannot send a reply");
            return;
        }
    }
}

impl Outgoing<'_> {
    async fn call<T, F, Fut>(&self, method: &'static str, f: F) -> Result<T, RequestError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, RequestError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.limiter.wait(self.chat.id, self.chat.group).await;
            match f().await {
                Ok(v) => {
                    TELEGRAM_CALLS.with_label_values(&[method, "ok"]).inc();
                    return Ok(v);
                }
                Err(RequestError::RetryAfter(wait)) if attempt < ATTEMPTS => {
                    TELEGRAM_CALLS
                        .with_label_values(&[method, "retry_after"])
                        .inc();
                    tracing::warn!(
                        method,
                        chat = self.chat.id,
                        seconds = wait.seconds(),
                        "Telegram flood control; waiting"
                    );
                    self.limiter.back_off(self.chat.id, wait.duration());
                }
                Err(RequestError::Network(e)) if attempt < ATTEMPTS => {
                    tracing::warn!(method, error = %e, "Bot API unreachable; retrying");
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                }
                Err(e) => {
                    TELEGRAM_CALLS.with_label_values(&[method, "failed"]).inc();
                    return Err(e);
                }
            }
        }
    }

    /// The model's Markdown as Telegram HTML; should Telegram refuse to parse it after all, the
    /// same text again without formatting, so an answer is never lost to its markup.
    pub async fn send(&self, text: &str) -> Result<MessageId, RequestError> {
        let bot = &self.bot.api;
        let plain = || async {
            self.call("sendMessage", || async {
                let mut request = bot.send_message(ChatId(self.chat.id), text);
                if let Some(reply) = self.reply_parameters() {
                    request = request.reply_parameters(reply);
                }
                request.send().await.map(|m| m.id)
            })
            .await
        };
        if self.plain.load(Ordering::Relaxed) {
            return plain().await;
        }
        let html = crate::markdown::to_html(text);
        let formatted = self
            .call("sendMessage", || async {
                let mut request = bot
                    .send_message(ChatId(self.chat.id), &html)
                    .parse_mode(ParseMode::Html);
                if let Some(reply) = self.reply_parameters() {
                    request = request.reply_parameters(reply);
                }
                request.send().await.map(|m| m.id)
            })
            .await;
        match formatted {
            Err(RequestError::Api(ApiError::CantParseEntities(why))) => {
                tracing::warn!(%why, "Telegram refused the formatting; sending plain text");
                self.plain.store(true, Ordering::Relaxed);
                plain().await
            }
            other => other,
        }
    }

    /// An OGG/Opus file as a voice message.
    pub async fn voice(&self, ogg: &[u8]) -> Result<MessageId, RequestError> {
        let bot = &self.bot.api;
        self.call("sendVoice", || async {
            let file = InputFile::memory(ogg.to_vec()).file_name("answer.ogg");
            bot.send_voice(ChatId(self.chat.id), file)
                .send()
                .await
                .map(|m| m.id)
        })
        .await
    }

    /// A picture (PNG, JPEG or WebP) as a photo.
    pub async fn photo(&self, picture: &[u8], mime: &str) -> Result<MessageId, RequestError> {
        let bot = &self.bot.api;
        let name = match mime {
            "image/jpeg" => "picture.jpg",
            "image/webp" => "picture.webp",
            _ => "picture.png",
        };
        self.call("sendPhoto", || async {
            let file = InputFile::memory(picture.to_vec()).file_name(name);
            bot.send_photo(ChatId(self.chat.id), file)
                .send()
                .await
                .map(|m| m.id)
        })
        .await
    }

    pub async fn edit(&self, id: MessageId, text: &str) -> Result<(), RequestError> {
        let bot = &self.bot.api;
        let plain = || async {
            self.call("editMessageText", || async {
                bot.edit_message_text(ChatId(self.chat.id), id, text)
                    .send()
                    .await
                    .map(|_| ())
            })
            .await
        };
        let mut result = if self.plain.load(Ordering::Relaxed) {
            plain().await
        } else {
            let html = crate::markdown::to_html(text);
            self.call("editMessageText", || async {
                bot.edit_message_text(ChatId(self.chat.id), id, &html)
                    .parse_mode(ParseMode::Html)
                    .send()
                    .await
                    .map(|_| ())
            })
            .await
        };
        if let Err(RequestError::Api(ApiError::CantParseEntities(why))) = &result {
            tracing::warn!(%why, "Telegram refused the formatting; editing as plain text");
            self.plain.store(true, Ordering::Relaxed);
            result = plain().await;
        }
        match result {
            Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(()),
            other => other,
        }
    }
}
