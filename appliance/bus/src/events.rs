//! Payloads shared between producers and consumers, one type per event family. A change that
//! is not backwards compatible bumps the envelope's `schema_version`.

use serde::{Deserialize, Serialize};

/// `audit.action` / `audit.error`: who did what to which thing, and the state around it.
/// Stored by the audit-logger in the append-only `audit_log` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// A user id, `admin`, or a service name for automatic actions.
    pub actor: String,
    /// Dotted verb, e.g. `prompt.activate`, `service.restart`.
    pub action: String,
    #[serde(default)]
    pub target: Option<String>,
    /// `ok`, `denied` or `failed`.
    #[serde(default = "ok")]
    pub outcome: String,
    #[serde(default)]
    pub before: Option<serde_json::Value>,
    #[serde(default)]
    pub after: Option<serde_json::Value>,
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
}

fn ok() -> String {
    "ok".into()
}
