//! Roles, per-user entitlements and their precedence.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Roles every appliance has; operators may add their own.
pub const BUILTIN_ROLES: [&str; 4] = ["admin", "operator", "user", "guest"];

/// Chat modes an agent can be used in.
pub const MODES: [&str; 3] = ["private", "group", "public"];

/// Patterns: an exact name, `*` for everything, or a prefix ending in `*` (`local-*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

/// What a role, or one user, may do through an agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// May talk to the agent at all: `Some(true)` grants, `Some(false)` refuses, `None` says
    /// nothing (the next rule decides).
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_agent: Option<bool>,
    #[serde(default)]
    pub tools: Rule,
    #[serde(default)]
    pub models: Rule,
    #[serde(default)]
    pub modes: Rule,
}

/// One agent's policy: grants per role, and per-user entitlements that override them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    #[serde(default)]
    pub roles: BTreeMap<String, Grant>,
    #[serde(default)]
    pub users: BTreeMap<String, Grant>,
}

/// Who asks: a DAARION user id and the roles assigned to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub user_id: String,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<'a> {
    /// Talk to the agent.
    Use,
    Tool(&'a str),
    Model(&'a str),
    /// `private`, `group` or `public`.
    Mode(&'a str),
}

/// The outcome and the rule that produced it, for logs, traces and user-facing reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allow: bool,
    pub rule: String,
}

impl Decision {
    fn allow(rule: String) -> Decision {
        Decision { allow: true, rule }
    }
    fn deny(rule: String) -> Decision {
        Decision { allow: false, rule }
    }
}

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

impl Rule {
    fn denies(&self, name: &str) -> Option<&str> {
        self.deny
            .iter()
            .find(|p| matches(p, name))
            .map(String::as_str)
    }
    fn allows(&self, name: &str) -> Option<&str> {
        self.allow
            .iter()
            .find(|p| matches(p, name))
            .map(String::as_str)
    }
}

/// The verdict of one grant on one action: `Some(false)` deny, `Some(true)` allow, `None` silent.
fn grant_says(grant: &Grant, action: &Action<'_>) -> Option<(bool, String)> {
    let (rule, field, name) = match action {
        Action::Use => {
            return grant
                .use_agent
                .map(|allowed| (allowed, format!("use={allowed}")));
        }
        Action::Tool(n) => (&grant.tools, "tools", *n),
        Action::Model(n) => (&grant.models, "models", *n),
        Action::Mode(n) => (&grant.modes, "modes", *n),
    };
    if let Some(p) = rule.denies(name) {
        return Some((false, format!("{field}.deny {p}")));
    }
    rule.allows(name)
        .map(|p| (true, format!("{field}.allow {p}")))
}

/// Decides one action. Precedence, first match wins:
/// 1. the agent is disabled → deny;
/// 2. the user's own entitlement (deny before allow) → its verdict;
/// 3. the `admin` role → allow;
/// 4. any of the subject's roles denying → deny (a deny in one role beats an allow in another);
/// 5. any of the subject's roles allowing → allow;
/// 6. otherwise → deny.
pub fn decide(
    subject: &Subject,
    agent_enabled: bool,
    policy: &PolicyDoc,
    action: &Action<'_>,
) -> Decision {
    if !agent_enabled {
        return Decision::deny("agent disabled".into());
    }
    if let Some(grant) = policy.users.get(&subject.user_id)
        && let Some((allowed, why)) = grant_says(grant, action)
    {
        let rule = format!("user:{} {why}", subject.user_id);
        return if allowed {
            Decision::allow(rule)
        } else {
            Decision::deny(rule)
        };
    }
    if subject.roles.iter().any(|r| r == "admin") {
        return Decision::allow("role:admin".into());
    }
    let verdicts: Vec<(bool, String)> = subject
        .roles
        .iter()
        .filter_map(|role| {
            let grant = policy.roles.get(role)?;
            grant_says(grant, action).map(|(a, why)| (a, format!("role:{role} {why}")))
        })
        .collect();
    if let Some((_, rule)) = verdicts.iter().find(|(allowed, _)| !allowed) {
        return Decision::deny(rule.clone());
    }
    if let Some((_, rule)) = verdicts.into_iter().next() {
        return Decision::allow(rule);
    }
    Decision::deny("no rule allows it".into())
}

impl PolicyDoc {
    /// Checks that the document only names known roles and modes and has no empty patterns.
    pub fn validate(&self, known_roles: &[String]) -> Result<(), String> {
        for role in self.roles.keys() {
            if !known_roles.iter().any(|r| r == role) {
                return Err(format!("roles.{role}: no such role"));
            }
        }
        let grants = self
            .roles
            .iter()
            .map(|(k, g)| (format!("roles.{k}"), g))
            .chain(self.users.iter().map(|(k, g)| (format!("users.{k}"), g)));
        for (path, grant) in grants {
            for (field, rule) in [
                ("tools", &grant.tools),
                ("models", &grant.models),
                ("modes", &grant.modes),
            ] {
                for pattern in rule.allow.iter().chain(&rule.deny) {
                    if pattern.trim().is_empty() {
                        return Err(format!("{path}.{field}: empty pattern"));
                    }
                    if field == "modes" && pattern != "*" && !MODES.contains(&pattern.as_str()) {
                        return Err(format!(
                            "{path}.modes: `{pattern}` is not one of private, group, public"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(user: &str, roles: &[&str]) -> Subject {
        Subject {
            user_id: user.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn doc() -> PolicyDoc {
        serde_json::from_value(serde_json::json!({
            "roles": {
                "user": {"use": true, "tools": {"allow": ["search_memory", "web_*"]}, "models": {"allow": ["local-*"]}, "modes": {"allow": ["private"]}},
                "guest": {"use": false},
                "operator": {"use": true, "tools": {"allow": ["*"], "deny": ["generate_image"]}, "models": {"allow": ["*"]}},
                "beta": {"tools": {"allow": ["generate_image"]}}
            },
            "users": {
                "u-banned": {"use": false},
                "u-vip": {"tools": {"allow": ["generate_image"]}, "models": {"deny": ["local-big"]}},
                "u-guest-ok": {"use": true}
            }
        }))
        .unwrap()
    }

    /// The precedence table: (subject, action, expected allow, expected rule).
    #[test]
    fn precedence_table() {
        let d = doc();
        let cases: Vec<(Subject, Action, bool, &str)> = vec![
            (
                subject("u1", &["user"]),
                Action::Use,
                true,
                "role:user use=true",
            ),
            (
                subject("u1", &["guest"]),
                Action::Use,
                false,
                "role:guest use=false",
            ),
            (subject("u1", &[]), Action::Use, false, "no rule allows it"),
            (
                subject("u-banned", &["admin"]),
                Action::Use,
                false,
                "user:u-banned use=false",
            ),
            (
                subject("u-guest-ok", &["guest"]),
                Action::Use,
                true,
                "user:u-guest-ok use=true",
            ),
            (
                subject("u1", &["admin"]),
                Action::Tool("anything"),
                true,
                "role:admin",
            ),
            (
                subject("u1", &["user"]),
                Action::Tool("web_search"),
                true,
                "role:user tools.allow web_*",
            ),
            (
                subject("u1", &["user"]),
                Action::Tool("generate_image"),
                false,
                "no rule allows it",
            ),
            (
                subject("u1", &["operator"]),
                Action::Tool("generate_image"),
                false,
                "role:operator tools.deny generate_image",
            ),
            (
                subject("u1", &["beta", "operator"]),
                Action::Tool("generate_image"),
                false,
                "role:operator tools.deny generate_image",
            ),
            (
                subject("u1", &["beta", "user"]),
                Action::Tool("generate_image"),
                true,
                "role:beta tools.allow generate_image",
            ),
            (
                subject("u-vip", &["operator"]),
                Action::Tool("generate_image"),
                true,
                "user:u-vip tools.allow generate_image",
            ),
            (
                subject("u-vip", &["operator"]),
                Action::Model("local-big"),
                false,
                "user:u-vip models.deny local-big",
            ),
            (
                subject("u-vip", &["user"]),
                Action::Model("local-small"),
                true,
                "role:user models.allow local-*",
            ),
            (
                subject("u1", &["user"]),
                Action::Model("cloud-x"),
                false,
                "no rule allows it",
            ),
            (
                subject("u1", &["user"]),
                Action::Mode("private"),
                true,
                "role:user modes.allow private",
            ),
            (
                subject("u1", &["user"]),
                Action::Mode("group"),
                false,
                "no rule allows it",
            ),
        ];
        for (who, action, allow, rule) in cases {
            let got = decide(&who, true, &d, &action);
            assert_eq!(
                (got.allow, got.rule.as_str()),
                (allow, rule),
                "{who:?} {action:?}"
            );
        }
    }

    #[test]
    fn disabled_agent_denies_everyone() {
        let got = decide(&subject("u1", &["admin"]), false, &doc(), &Action::Use);
        assert_eq!(got, Decision::deny("agent disabled".into()));
    }

    #[test]
    fn validation_names_the_problem() {
        let known: Vec<String> = ["admin", "user", "guest", "operator", "beta"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(doc().validate(&known).is_ok());
        let mut bad = doc();
        bad.roles.insert("ghost".into(), Grant::default());
        assert_eq!(
            bad.validate(&known).unwrap_err(),
            "roles.ghost: no such role"
        );
        let mut bad = doc();
        bad.users.get_mut("u-vip").unwrap().modes.allow = vec!["secret".into()];
        assert!(
            bad.validate(&known)
                .unwrap_err()
                .contains("users.u-vip.modes")
        );
        let unknown_field: Result<PolicyDoc, _> =
            serde_json::from_value(serde_json::json!({"roles": {"user": {"usage": true}}}));
        assert!(unknown_field.is_err());
    }
}
