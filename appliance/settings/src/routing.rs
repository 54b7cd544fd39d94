//! `routing.main`: which agent a message goes to.

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
}
