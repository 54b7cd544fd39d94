//! The bots in `telegram.<name>`, with their secrets resolved and a Bot API client each, rebuilt
//! when the settings' version changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use daarion_control_client::{ClientError, ControlClient, resolve_secret};
use daarion_policy::TelegramBot;
use teloxide_core::Bot;
use teloxide_core::requests::{Request, Requester};
use tokio::sync::OnceCell;

use crate::GatewayError;

pub struct BotHandle {
    pub name: String,
    pub settings: TelegramBot,
    pub bot: Bot,
    pub secret: String,
    version: i64,
    username: OnceCell<String>,
}

impl BotHandle {
    /// The bot's @username, asked of Telegram once (mentions and `/cmd@bot` need it).
    pub async fn username(&self) -> Result<&str, GatewayError> {
        self.username
            .get_or_try_init(|| async {
                let me = self
                    .bot
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

#[derive(Default)]
pub struct Bots {
    built: Mutex<HashMap<String, Arc<BotHandle>>>,
}

impl Bots {
    pub async fn get(
        &self,
        control: &ControlClient,
        name: &str,
    ) -> Result<Arc<BotHandle>, GatewayError> {
        if !valid_name(name) {
            return Err(GatewayError::UnknownBot(name.to_owned()));
        }
        let fetched = match control.config(&format!("telegram.{name}")).await {
            Ok(v) => v,
            Err(ClientError::NotFound(_)) => return Err(GatewayError::UnknownBot(name.to_owned())),
            Err(e) => return Err(GatewayError::unavailable("the control plane", e)),
        };
        if let Some(handle) = self
            .built
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .filter(|h| h.version == fetched.version)
        {
            return Ok(handle.clone());
        }
        let misconfigured = |message: String| GatewayError::Misconfigured {
            bot: name.to_owned(),
            message,
        };
        let settings: TelegramBot =
            serde_json::from_value(fetched.value).map_err(|e| misconfigured(e.to_string()))?;
        let token =
            resolve_secret(&settings.token_ref).map_err(|e| misconfigured(e.to_string()))?;
        let secret = resolve_secret(&settings.webhook_secret_ref)
            .map_err(|e| misconfigured(e.to_string()))?;
        let api_url =
            reqwest::Url::parse(&settings.api_url).map_err(|e| misconfigured(e.to_string()))?;
        let handle = Arc::new(BotHandle {
            name: name.to_owned(),
            bot: Bot::new(token).set_api_url(api_url),
            secret,
            settings,
            version: fetched.version,
            username: OnceCell::new(),
        });
        self.built
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), handle.clone());
        Ok(handle)
    }
}
