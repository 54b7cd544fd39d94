//! `agents.<id>`: how the router runs one agent.

use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;

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
