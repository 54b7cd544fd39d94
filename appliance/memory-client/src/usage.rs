//! What answered turns used, in time buckets (`/v1/usage`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// `GET /v1/usage`: for one user, one agent, or everyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// RFC 3339; default: 30 days before `to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// RFC 3339; default: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `hour`, `day` (default) or `month`.
    #[serde(default = "day")]
    pub bucket: String,
}

fn day() -> String {
    "day".into()
}

impl Default for UsageQuery {
    fn default() -> Self {
        UsageQuery {
            user_id: None,
            agent_id: None,
            from: None,
            to: None,
            bucket: day(),
        }
    }
}

/// The answer to [`UsageQuery`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    /// The period asked for (RFC 3339), defaults filled in.
    pub from: String,
    pub to: String,
    pub bucket: String,
    /// Buckets with any use, oldest first.
    pub buckets: Vec<Bucket>,
    pub total: UsageTotals,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Bucket {
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: f64,
    pub gpu_seconds: f64,
}

/// The buckets summed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageTotals {
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: f64,
    pub gpu_seconds: f64,
}

impl UsageTotals {
    pub fn of(buckets: &[Bucket]) -> UsageTotals {
        UsageTotals {
            requests: buckets.iter().map(|b| b.requests).sum(),
            prompt_tokens: buckets.iter().map(|b| b.prompt_tokens).sum(),
            completion_tokens: buckets.iter().map(|b| b.completion_tokens).sum(),
            cost: buckets.iter().map(|b| b.cost).sum(),
            gpu_seconds: buckets.iter().map(|b| b.gpu_seconds).sum(),
        }
    }
}
