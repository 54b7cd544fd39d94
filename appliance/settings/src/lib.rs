//! The typed configuration documents the control plane stores under `routing.*`, `providers.*`,
//! `agents.*` and `telegram.*`. The control plane checks a value against its type before storing
//! it, and the services read it back as the same type through the control client
//! (`control.config::<Routing>()`), so the key and the shape are written down once, here.

mod agent;
mod provider;
mod routing;
mod telegram;

pub use agent::{AgentSettings, GroupMode, LOCAL_PROVIDER, split_model};
pub use provider::{ModelPrice, ProviderSettings};
pub use routing::{RouteKey, Routing, RoutingRule};
pub use telegram::{TelegramBot, TelegramMode};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A document type kept under the config keys `<PREFIX>.<name>`: one per agent, provider or bot.
pub trait Setting: Serialize + DeserializeOwned {
    /// The first part of every key holding one (`providers` for `providers.openrouter`).
    const PREFIX: &'static str;

    /// The key of the document called `name`.
    fn key(name: &str) -> String {
        format!("{}.{name}", Self::PREFIX)
    }

    /// The name `key` gives its document, when `key` holds this type.
    fn name_in(key: &str) -> Option<&str> {
        key.strip_prefix(Self::PREFIX)?.strip_prefix('.')
    }
}

/// A setting the appliance reads at one fixed key (the routing table is `routing.main`).
pub trait SingleSetting: Setting {
    const KEY: &'static str;
}

impl Setting for Routing {
    const PREFIX: &'static str = "routing";
}

impl SingleSetting for Routing {
    const KEY: &'static str = "routing.main";
}

impl Setting for ProviderSettings {
    const PREFIX: &'static str = "providers";
}

impl Setting for AgentSettings {
    const PREFIX: &'static str = "agents";
}

impl Setting for TelegramBot {
    const PREFIX: &'static str = "telegram";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_names() {
        assert_eq!(AgentSettings::key("helper"), "agents.helper");
        assert_eq!(
            ProviderSettings::name_in("providers.deepseek"),
            Some("deepseek")
        );
        assert_eq!(ProviderSettings::name_in("providersx.deepseek"), None);
        assert_eq!(TelegramBot::name_in("agents.helper"), None);
        // A single setting's key is one of its own family's.
        assert_eq!(Routing::name_in(Routing::KEY), Some("main"));
    }
}
