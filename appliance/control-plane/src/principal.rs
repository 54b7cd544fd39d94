//! Who is calling and what they may do: the scopes a credential carries and the check every
//! handler makes. Kept apart from how a credential is read (the `auth` module) so that
//! handlers and the change log depend on this alone.

use serde::{Deserialize, Serialize};

use crate::error::ControlError;

/// What a token may do. `admin` implies every other scope and nothing else implies anything:
/// reading the control plane (prompts, policies with user ids, config, quotas) needs `read`
/// itself, so a data-plane token (`agents:use`, `memory:*`, …) reads nothing here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "admin")]
    Admin,
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "agents:write")]
    AgentsWrite,
    #[serde(rename = "prompts:write")]
    PromptsWrite,
    /// Roles, user role assignments and agent policies.
    #[serde(rename = "policy:write")]
    PolicyWrite,
    #[serde(rename = "config:write")]
    ConfigWrite,
    /// Quota limits.
    #[serde(rename = "quotas:write")]
    QuotasWrite,
    /// What the data plane needs: check-and-consume and settle usage.
    #[serde(rename = "quota:consume")]
    QuotaConsume,
    /// Memory API: read any user's data.
    #[serde(rename = "memory:read")]
    MemoryRead,
    /// Memory API: write any user's data.
    #[serde(rename = "memory:write")]
    MemoryWrite,
    /// Memory API, acting for one user at a time (named per request): only that user's data.
    #[serde(rename = "memory:user")]
    MemoryUser,
    /// Swapper: the OpenAI-compatible model API.
    #[serde(rename = "models:use")]
    ModelsUse,
    /// Router: talk to agents (`/v1/route`, `/v1/chat/completions` with an agent as the model).
    #[serde(rename = "agents:use")]
    AgentsUse,
    /// Crews service: crew definitions (save, import, roll back, delete).
    #[serde(rename = "crews:write")]
    CrewsWrite,
    /// Crews service: start crew runs, and see, cancel and resume only the runs of the user the
    /// token is bound to (or, unbound, the runs it started).
    #[serde(rename = "crews:run")]
    CrewsRun,
}

pub(crate) const ALL_SCOPES: [Scope; 15] = [
    Scope::Admin,
    Scope::Read,
    Scope::AgentsWrite,
    Scope::PromptsWrite,
    Scope::PolicyWrite,
    Scope::ConfigWrite,
    Scope::QuotasWrite,
    Scope::QuotaConsume,
    Scope::MemoryRead,
    Scope::MemoryWrite,
    Scope::MemoryUser,
    Scope::ModelsUse,
    Scope::AgentsUse,
    Scope::CrewsWrite,
    Scope::CrewsRun,
];

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Read => "read",
            Scope::AgentsWrite => "agents:write",
            Scope::PromptsWrite => "prompts:write",
            Scope::PolicyWrite => "policy:write",
            Scope::ConfigWrite => "config:write",
            Scope::QuotasWrite => "quotas:write",
            Scope::QuotaConsume => "quota:consume",
            Scope::MemoryRead => "memory:read",
            Scope::MemoryWrite => "memory:write",
            Scope::MemoryUser => "memory:user",
            Scope::ModelsUse => "models:use",
            Scope::AgentsUse => "agents:use",
            Scope::CrewsWrite => "crews:write",
            Scope::CrewsRun => "crews:run",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Scope> {
        ALL_SCOPES.into_iter().find(|scope| scope.as_str() == s)
    }
}

/// Who is calling: recorded as the author and audit actor of every change.
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
    pub scopes: Vec<Scope>,
}

impl Principal {
    pub fn require(&self, scope: Scope) -> Result<(), ControlError> {
        if self.scopes.contains(&Scope::Admin) || self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ControlError::Forbidden(scope.as_str()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_implications() {
        let reader = Principal {
            name: "r".into(),
            scopes: vec![Scope::Read],
        };
        assert!(reader.require(Scope::Read).is_ok());
        assert!(reader.require(Scope::PromptsWrite).is_err());
        let writer = Principal {
            name: "w".into(),
            scopes: vec![Scope::PromptsWrite],
        };
        assert!(
            writer.require(Scope::Read).is_err(),
            "read is its own scope"
        );
        assert!(writer.require(Scope::AgentsWrite).is_err());
        assert!(writer.require(Scope::Admin).is_err());
        // Data-plane scopes imply nothing in the control plane.
        for scope in [
            Scope::AgentsUse,
            Scope::MemoryRead,
            Scope::MemoryWrite,
            Scope::MemoryUser,
            Scope::ModelsUse,
            Scope::QuotaConsume,
            Scope::CrewsWrite,
            Scope::CrewsRun,
        ] {
            let narrow = Principal {
                name: "n".into(),
                scopes: vec![scope],
            };
            assert!(narrow.require(Scope::Read).is_err(), "{scope:?}");
        }
        let admin = Principal {
            name: "a".into(),
            scopes: vec![Scope::Admin],
        };
        assert!(admin.require(Scope::AgentsWrite).is_ok());
    }

    #[test]
    fn scopes_round_trip() {
        for s in ALL_SCOPES {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
        assert_eq!(Scope::parse("root"), None);
        assert_eq!(Scope::parse("crews:write"), Some(Scope::CrewsWrite));
        assert_eq!(Scope::parse("crews:run"), Some(Scope::CrewsRun));
    }
}
