//! `telegram.<bot>`: the Telegram bots the gateway serves.

use serde::{Deserialize, Serialize};

/// `telegram.<bot>`: one Telegram bot the gateway serves. Secrets only by reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramBot {
    /// The Bot API token from @BotFather: `env:NAME` or `file:NAME` (0600, in the secrets
    /// directory).
    pub token_ref: String,
    /// The secret Telegram sends back in `X-Telegram-Bot-Api-Secret-Token`.
    pub webhook_secret_ref: String,
    /// The agent this bot talks to; without one, `routing.main` decides per message.
    pub agent: Option<String>,
    /// The Bot API server (a local `telegram-bot-api` server, or a test double).
    #[serde(default = "telegram_api")]
    pub api_url: String,
    /// Where Telegram reaches this appliance (`https://host`), for `daarion telegram set-webhook`.
    pub public_url: Option<String>,
    /// The swapper's speech-to-text model for voice messages.
    #[serde(default = "stt_model")]
    pub stt_model: String,
    /// The swapper's text-to-speech model for voice replies (`/voice on` in a chat).
    #[serde(default = "tts_model")]
    pub tts_model: String,
    /// The swapper's vision model that describes photos for the agent; without one, photos get
    /// a polite "not yet" and reach no agent.
    #[serde(default)]
    pub vision_model: Option<String>,
    /// `webhook` (Telegram calls the appliance) or `polling` (the appliance asks Telegram, for
    /// boxes without a public HTTPS address).
    #[serde(default)]
    pub mode: TelegramMode,
    /// New users get a pairing code and wait until an administrator approves it (which gives
    /// them `pairing_role`); until then nothing they send reaches an agent.
    #[serde(default)]
    pub pairing: bool,
    #[serde(default = "pairing_role")]
    pub pairing_role: String,
}

fn pairing_role() -> String {
    "user".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TelegramMode {
    #[default]
    Webhook,
    Polling,
}

fn stt_model() -> String {
    "whisper-tiny-en".into()
}

fn tts_model() -> String {
    "espeak-en".into()
}

fn telegram_api() -> String {
    "https://api.telegram.org".into()
}

impl TelegramBot {
    pub fn validate(&self) -> Result<(), String> {
        if !crate::secret_reference(&self.token_ref)
            || !crate::secret_reference(&self.webhook_secret_ref)
        {
            return Err(format!(
                "token_ref and webhook_secret_ref {}",
                crate::SECRET_REFERENCE
            ));
        }
        let url = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        if !url(&self.api_url) {
            return Err("api_url must be an http(s) URL".into());
        }
        if let Some(public) = &self.public_url
            && !public.starts_with("https://")
        {
            return Err("public_url must be an https URL (Telegram requires it)".into());
        }
        Ok(())
    }
}
