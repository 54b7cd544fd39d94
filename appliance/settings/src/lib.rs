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

/// What a secret reference must look like, for messages.
pub const SECRET_REFERENCE: &str =
    "must be env:NAME or file:NAME (a 0600 file in the secrets directory, general.secrets_dir)";

/// A reference the services can resolve: `env:NAME`, or `file:` and a path without `..`
/// (relative to the secrets directory, or absolute inside it: where it really leads is checked
/// where it is read, `daarion_control_client::resolve_secret_in`).
pub fn secret_reference(r: &str) -> bool {
    if let Some(name) = r.strip_prefix("env:") {
        return !name.is_empty();
    }
    r.strip_prefix("file:")
        .is_some_and(|path| !path.is_empty() && !path.split('/').any(|part| part == ".."))
}

#[cfg(test)]
mod reference_tests {
    #[test]
    fn secret_references() {
        for (r, ok) in [
            ("env:DEEPSEEK_KEY", true),
            ("file:deepseek", true),
            ("file:/etc/daarion/secrets/deepseek", true),
            ("env:", false),
            ("file:", false),
            ("file:../admin.token", false),
            ("file:/etc/daarion/secrets/../admin.token", false),
            ("sk-live-123", false),
        ] {
            assert_eq!(super::secret_reference(r), ok, "{r}");
        }
    }
}
