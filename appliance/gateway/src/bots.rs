//! The bots in `telegram.<name>`, with their secrets resolved and a Bot API client each, rebuilt
//! when the settings' version changes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use daarion_control_client::{ClientError, ControlClient, resolve_secret_in};
use daarion_settings::TelegramBot;
use teloxide_core::Bot;
use teloxide_core::requests::{Request, Requester};
use tokio::sync::OnceCell;

use crate::GatewayError;

/// One configured bot: its settings, its Bot API client and its webhook secret.
pub struct ConfiguredBot {
    pub name: String,
    pub settings: TelegramBot,
    /// The Bot API client, holding the bot's token.
    pub api: Bot,
    pub secret: String,
    version: i64,
    username: OnceCell<String>,
}

impl ConfiguredBot {
    /// The bot's @username, asked of Telegram once (mentions and `/cmd@bot` need it).
    pub async fn username(&self) -> Result<&str, GatewayError> {
        self.username
            .get_or_try_init(|| async {
                let me = self
                    .api
                    .get_me()
                    .send()
                    .await
                    .map_err(|e| GatewayError::unavailable("the Telegram Bot API", e))?;
                Ok(me.user.username.clone().unwrap_or_default())
            })
            .await
            .map(String::as_str)
    }
}

/// A bot name as it may appear in a URL and a config key.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

pub struct Bots {
    built: Mutex<HashMap<String, Arc<ConfiguredBot>>>,
    /// Where `file:` secret references resolve (`general.secrets_dir`).
    secrets_dir: PathBuf,
}

impl Bots {
    pub fn new(secrets_dir: PathBuf) -> Bots {
        Bots {
            built: Mutex::default(),
            secrets_dir,
        }
    }

    pub async fn get(
        &self,
        control: &ControlClient,
        name: &str,
    ) -> Result<Arc<ConfiguredBot>, GatewayError> {
        if !valid_name(name) {
            return Err(GatewayError::UnknownBot(name.to_owned()));
        }
        let misconfigured = |message: String| GatewayError::Misconfigured {
            bot: name.to_owned(),
            message,
        };
        let fetched = match control.config_for::<TelegramBot>(name).await {
            Ok(v) => v,
            Err(ClientError::NotFound(_)) => return Err(GatewayError::UnknownBot(name.to_owned())),
            Err(ClientError::Invalid { message, .. }) => return Err(misconfigured(message)),
            Err(e) => return Err(GatewayError::unavailable("the control plane", e)),
        };
        if let Some(bot) = self
            .built
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .filter(|b| b.version == fetched.version)
        {
            return Ok(bot.clone());
        }
        let settings = fetched.value;
        let token = resolve_secret_in(&settings.token_ref, &self.secrets_dir)
            .map_err(|e| misconfigured(e.to_string()))?;
        let secret = resolve_secret_in(&settings.webhook_secret_ref, &self.secrets_dir)
            .map_err(|e| misconfigured(e.to_string()))?;
        let api_url =
            reqwest::Url::parse(&settings.api_url).map_err(|e| misconfigured(e.to_string()))?;
        let bot = Arc::new(ConfiguredBot {
            name: name.to_owned(),
            api: Bot::new(token).set_api_url(api_url),
            secret,
            settings,
            version: fetched.version,
            username: OnceCell::new(),
        });
        self.built
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), bot.clone());
        Ok(bot)
    }
}
