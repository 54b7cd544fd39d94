//! Session state: short-lived values a conversation keeps between turns, each with a TTL
//! (`/v1/sessions/{id}/state…`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// A value bigger than this (as JSON text) is not state; it belongs in a message or a document.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;
/// Entries per session: state is a handful of values, not a store.
pub const MAX_ENTRIES: i64 = 100;

/// One entry. Keys are 1 to 64 of `a-z`, `0-9`, `_`, `.`, `:`, `-`, starting with a letter or
/// digit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entry {
    pub key: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub value: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `PUT /v1/sessions/{id}/state/{key}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutEntry {
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub value: Value,
    /// Seconds until it expires; `memory.session_state_default_ttl_secs` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
}
