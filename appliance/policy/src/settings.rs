//! The typed configuration documents the control plane stores under `routing.*`, `providers.*`
//! and `agents.*`, shared here so the control plane validates exactly what the router reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One routing rule: the first rule whose given fields all match picks the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingRule {
    pub bot: Option<String>,
    pub chat: Option<String>,
    /// A `/command`, with or without the slash.
    pub command: Option<String>,
    pub agent: String,
}

/// `routing.main`: rules by bot, chat and command, then a default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    #[serde(default)]
    pub rules: Vec<RoutingRule>,
    pub default_agent: Option<String>,
}

/// What a message offers the routing table.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteKey<'a> {
    pub bot: Option<&'a str>,
    pub chat: Option<&'a str>,
    /// Without the slash and without a `@bot` suffix.
    pub command: Option<&'a str>,
}

impl Routing {
    /// The agent for a message: the first matching rule, else the default.
    pub fn pick(&self, key: &RouteKey<'_>) -> Option<&str> {
        let same = |want: &Option<String>, have: Option<&str>, strip: bool| match want {
            None => true,
            Some(w) => {
                let w = if strip { w.trim_start_matches('/') } else { w };
                have == Some(w)
            }
        };
        self.rules
            .iter()
            .find(|r| {
                same(&r.bot, key.bot, false)
                    && same(&r.chat, key.chat, false)
                    && same(&r.command, key.command, true)
            })
            .map(|r| r.agent.as_str())
            .or(self.default_agent.as_deref())
    }

    /// Every agent the table names, for validation against the known agents.
    pub fn agents(&self) -> impl Iterator<Item = &String> {
        self.rules
            .iter()
            .map(|r| &r.agent)
            .chain(self.default_agent.as_ref())
    }

    /// The index of a rule without any condition (it would shadow everything after it).
    pub fn catch_all(&self) -> Option<usize> {
        self.rules
            .iter()
            .position(|r| r.bot.is_none() && r.chat.is_none() && r.command.is_none())
    }
}

/// Price of one model, per million tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    pub input_per_million: f64,
    pub output_per_million: f64,
    #[serde(default = "usd")]
    pub currency: String,
}

fn usd() -> String {
    "USD".into()
}

/// `providers.<name>`: an LLM API. Secrets only by reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// `openai` (any OpenAI-compatible API) or `ollama`.
    pub kind: String,
    pub base_url: String,
    #[serde(default)]
    pub models: Vec<String>,
    /// `env:NAME` or `file:/path/0600-file`: the secret itself never enters the control plane.
    pub api_key_ref: Option<String>,
    /// How long to wait for the answer to start, and at most between two of its chunks.
    pub timeout_secs: Option<u64>,
    /// Per model; a model without a price costs nothing (but still counts its tokens).
    #[serde(default)]
    pub prices: BTreeMap<String, ModelPrice>,
}

impl ProviderSettings {
    pub fn validate(&self) -> Result<(), String> {
        if !["openai", "ollama"].contains(&self.kind.as_str()) {
            return Err(format!("kind `{}` is not openai or ollama", self.kind));
        }
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return Err("base_url must be an http(s) URL".into());
        }
        if let Some(r) = &self.api_key_ref
            && !(r.starts_with("env:") || r.starts_with("file:/"))
        {
            return Err("api_key_ref must be env:NAME or file:/absolute/path".into());
        }
        for (model, price) in &self.prices {
            let ok = |v: f64| v.is_finite() && v >= 0.0;
            if !ok(price.input_per_million) || !ok(price.output_per_million) {
                return Err(format!("prices.{model}: prices must be non-negative"));
            }
        }
        Ok(())
    }
}

/// When an agent answers in a group chat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupMode {
    /// Only when addressed: a mention, a reply to the bot, or a command.
    #[default]
    Addressed,
    /// Every message.
    Always,
}

/// The name of the built-in provider that is the appliance's own swapper.
pub const LOCAL_PROVIDER: &str = "local";

/// `agents.<id>`: how the router runs one agent. Every field has a default, so an agent
/// without this document runs on its `default_model` with all built-in tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// The fallback chain, tried in order, as `provider/model`; `local/<id>` is the swapper.
    /// Empty: the agent's `default_model`.
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub group_mode: GroupMode,
    /// The built-in tools offered to the model (each still gated by policy); `None`: all.
    pub tools: Option<Vec<String>>,
    /// Model calls per turn that may end in tool calls; the next one must answer.
    #[serde(default = "default_steps")]
    pub max_tool_steps: u32,
    #[serde(default = "default_tool_timeout")]
    pub tool_timeout_secs: u64,
    /// The model's context in tokens: history past it is summarised.
    #[serde(default = "default_context")]
    pub context_tokens: u32,
    /// The longest answer per model call.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    pub temperature: Option<f32>,
    /// Facts and search hits put in the context.
    #[serde(default = "default_memory_hits")]
    pub memory_hits: u32,
    /// The swapper's text-to-speech model for the `speak` tool.
    #[serde(default = "default_tts_model")]
    pub tts_model: String,
    /// The swapper's vision model the `describe_image` tool asks about the turn's pictures;
    /// `None`: the tool says there is none.
    #[serde(default)]
    pub vision_model: Option<String>,
    /// `provider/model` for the `generate_image` tool: `local/<id>` is an image model in the
    /// swapper, any other provider's OpenAI images API works too; `None`: the tool says there
    /// is none.
    #[serde(default)]
    pub image_model: Option<String>,
}

fn default_steps() -> u32 {
    4
}
fn default_tool_timeout() -> u64 {
    20
}
fn default_context() -> u32 {
    2048
}
fn default_max_tokens() -> u32 {
    512
}
fn default_memory_hits() -> u32 {
    5
}
fn default_tts_model() -> String {
    "espeak-en".into()
}

impl Default for AgentSettings {
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({})).expect("every field has a default")
    }
}

/// `provider/model`, split at the first slash (model ids may hold more slashes).
pub fn split_model(link: &str) -> Option<(&str, &str)> {
    link.split_once('/')
        .filter(|(p, m)| !p.is_empty() && !m.is_empty())
}

impl AgentSettings {
    pub fn validate(&self) -> Result<(), String> {
        for link in &self.models {
            if split_model(link).is_none() {
                return Err(format!("models: `{link}` is not provider/model"));
            }
        }
        if !(1..=32).contains(&self.max_tool_steps) {
            return Err("max_tool_steps must be 1 to 32".into());
        }
        if !(1..=600).contains(&self.tool_timeout_secs) {
            return Err("tool_timeout_secs must be 1 to 600".into());
        }
        if self.context_tokens < 256 {
            return Err("context_tokens must be at least 256".into());
        }
        if self.max_tokens == 0 || self.max_tokens >= self.context_tokens {
            return Err("max_tokens must be positive and below context_tokens".into());
        }
        if self
            .temperature
            .is_some_and(|t| !(t.is_finite() && (0.0..=2.0).contains(&t)))
        {
            return Err("temperature must be 0 to 2".into());
        }
        if self.memory_hits > 50 {
            return Err("memory_hits must be at most 50".into());
        }
        if let Some(link) = &self.image_model
            && split_model(link).is_none()
        {
            return Err(format!("image_model: `{link}` is not provider/model"));
        }
        if self
            .vision_model
            .as_deref()
            .is_some_and(|m| m.trim().is_empty())
        {
            return Err("vision_model must name a swapper model".into());
        }
        Ok(())
    }
}

/// `telegram.<bot>`: one Telegram bot the gateway serves. Secrets only by reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramBot {
    /// The Bot API token from @BotFather: `env:NAME` or `file:/path` (0600).
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
        let reference = |r: &str| r.starts_with("env:") || r.starts_with("file:/");
        if !reference(&self.token_ref) || !reference(&self.webhook_secret_ref) {
            return Err(
                "token_ref and webhook_secret_ref must be env:NAME or file:/absolute/path".into(),
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_rule_then_default() {
        let routing: Routing = serde_json::from_value(serde_json::json!({
            "rules": [
                {"command": "/weather", "agent": "weather"},
                {"bot": "helpbot", "agent": "help"},
                {"bot": "helpbot", "chat": "42", "agent": "never"},
            ],
            "default_agent": "main"
        }))
        .unwrap();
        let key = |bot, chat, command| RouteKey { bot, chat, command };
        assert_eq!(
            routing.pick(&key(Some("helpbot"), None, Some("weather"))),
            Some("weather")
        );
        assert_eq!(
            routing.pick(&key(Some("helpbot"), Some("42"), None)),
            Some("help")
        );
        assert_eq!(routing.pick(&key(Some("other"), None, None)), Some("main"));
        assert_eq!(Routing::default().pick(&key(None, None, None)), None);
    }

    #[test]
    fn agent_settings_default_and_validation() {
        let s = AgentSettings::default();
        assert_eq!(s.max_tool_steps, 4);
        assert_eq!(s.group_mode, GroupMode::Addressed);
        s.validate().unwrap();
        let bad = AgentSettings {
            models: vec!["no-slash".into()],
            ..AgentSettings::default()
        };
        assert!(bad.validate().unwrap_err().contains("provider/model"));
        let bad = AgentSettings {
            max_tokens: 5000,
            ..AgentSettings::default()
        };
        assert!(bad.validate().is_err());
        let bad = AgentSettings {
            image_model: Some("flux".into()),
            ..AgentSettings::default()
        };
        assert!(bad.validate().unwrap_err().contains("image_model"));
        let good = AgentSettings {
            image_model: Some("local/flux".into()),
            vision_model: Some("qwen3-vl".into()),
            ..AgentSettings::default()
        };
        good.validate().unwrap();
        assert_eq!(split_model("local/smollm2"), Some(("local", "smollm2")));
        assert_eq!(split_model("or/meta/llama"), Some(("or", "meta/llama")));
    }
}
