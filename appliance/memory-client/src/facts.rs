//! Facts: never overwritten, superseded (`/v1/users/{id}/facts`, `/v1/facts/{id}/…`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The longest fact accepted, in bytes.
pub const MAX_FACT_BYTES: usize = 4000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Fact {
    pub id: Uuid,
    pub user_id: Uuid,
    pub agent_id: Option<String>,
    pub content: String,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    /// Set once the fact was superseded or forgotten.
    #[serde(with = "time::serde::rfc3339::option")]
    pub valid_to: Option<OffsetDateTime>,
    /// The fact this one replaced.
    pub supersedes: Option<Uuid>,
    /// Why it replaced it (empty for a first fact).
    pub reason: String,
    pub source_message_id: Option<Uuid>,
    pub forgotten: bool,
    /// The caller that stored it.
    pub created_by: String,
}

/// `POST /v1/users/{id}/facts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewFact {
    /// Not blank, at most [`MAX_FACT_BYTES`].
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// A message of the same user the fact was learnt from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_message_id: Option<Uuid>,
}

/// `GET /v1/users/{id}/facts?history=`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct FactsQuery {
    /// Include superseded and forgotten facts.
    #[serde(default)]
    pub history: bool,
}

/// `POST /v1/facts/{id}/supersede`: the new content and why it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Supersede {
    pub content: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_message_id: Option<Uuid>,
}

/// `POST /v1/facts/{id}/forget`: why (it goes to the audit log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Forget {
    pub reason: String,
}
