//! What made it into the vector index (`/v1/index/status`, `/v1/index/retry`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// `GET /v1/index/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IndexStatus {
    /// The embedding model; `None` when the service has no embeddings.
    pub model: Option<String>,
    /// Items per kind and state.
    pub states: Vec<StateCount>,
    /// The latest failures, newest first (at most 50).
    pub failed: Vec<Failed>,
    pub vectors: VectorCounts,
}

impl IndexStatus {
    /// How many items of `kind` are in `state`.
    pub fn count(&self, kind: &str, state: &str) -> i64 {
        self.states
            .iter()
            .find(|s| s.kind == kind && s.state == state)
            .map_or(0, |s| s.count)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StateCount {
    /// `message`, `fact` or `chunk`.
    pub kind: String,
    /// `pending`, `indexed` or `failed`.
    pub state: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Failed {
    pub kind: String,
    pub item_id: Uuid,
    pub user_id: Uuid,
    pub attempts: i32,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Vectors held, per collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VectorCounts {
    /// Messages and facts.
    pub messages: u64,
}

/// `POST /v1/index/retry`: how many failed items went back to pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Requeued {
    pub requeued: u64,
}
