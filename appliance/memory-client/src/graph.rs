//! The knowledge graph: relations between the people, topics and things in a user's memory
//! (`/v1/graph/…`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// An entity: a person, place, topic…, of one user's graph or (no `user_id`) the shared one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Node {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub kind: String,
    pub name: String,
}

/// A relation `from_node —relation→ to_node`; an ended one is kept with when it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Edge {
    pub id: Uuid,
    pub from_node: Uuid,
    pub to_node: Uuid,
    pub relation: String,
    pub source_message_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
}

/// One end of a relation, named as people say it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NodeRef {
    /// Lowercase letters, digits and `_` (person, topic, place…).
    pub kind: String,
    /// 1 to 200 characters; matched trimmed and lower-cased.
    pub name: String,
}

impl NodeRef {
    pub fn new(kind: impl Into<String>, name: impl Into<String>) -> NodeRef {
        NodeRef {
            kind: kind.into(),
            name: name.into(),
        }
    }
}

/// `POST /v1/graph/relations` (idempotent: an open relation already known is answered 200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewRelation {
    /// Whose memory; `None` for the shared graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    pub from: NodeRef,
    /// Lowercase letters, digits and `_` (knows, lives_in…).
    pub relation: String,
    pub to: NodeRef,
    /// A message of the same user the relation was learnt from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_message_id: Option<Uuid>,
}

/// The answer to [`NewRelation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Related {
    pub from: Node,
    pub edge: Edge,
    pub to: Node,
    /// `false` when the same open relation already existed.
    pub created: bool,
}

/// `GET /v1/graph/nodes/{id}/neighbourhood`: everything within some relations of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Subgraph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

impl Subgraph {
    /// The name of one of its nodes.
    pub fn name_of(&self, id: Uuid) -> Option<&str> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.name.as_str())
    }
}

/// `GET /v1/graph/path`: a shortest chain, its nodes in order and the edges between them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Path {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

/// `GET /v1/graph/nodes?user_id=&q=&limit=`: nodes whose name starts with `q`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct FindQuery {
    /// Whose graph (and the shared one); `None` for the shared graph alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    /// At most 200 characters.
    #[serde(default)]
    pub q: String,
    /// 1 to 200.
    #[serde(default = "twenty")]
    pub limit: u32,
}

fn twenty() -> u32 {
    20
}

/// `GET /v1/graph/nodes/{id}/neighbourhood?depth=&limit=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct AroundQuery {
    /// 1 to 4.
    #[serde(default = "two")]
    pub depth: u32,
    /// 1 to 500.
    #[serde(default = "hundred")]
    pub limit: u32,
}

fn two() -> u32 {
    2
}

fn hundred() -> u32 {
    100
}

impl Default for AroundQuery {
    fn default() -> Self {
        AroundQuery {
            depth: two(),
            limit: hundred(),
        }
    }
}

/// `GET /v1/graph/path?from=&to=&max_depth=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct PathQuery {
    pub from: Uuid,
    pub to: Uuid,
    /// 1 to 6.
    #[serde(default = "four")]
    pub max_depth: u32,
}

fn four() -> u32 {
    4
}

/// `POST /v1/graph/relations/{id}/end`: the relation no longer holds, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct End {
    /// Not blank, at most 500 characters.
    pub reason: String,
}
