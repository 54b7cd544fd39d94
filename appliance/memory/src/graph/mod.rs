//! The knowledge graph behind one small trait: users' people, topics, places and other entities
//! and the relations between them, each relation with the message it came from. The embedded
//! default keeps it in PostgreSQL ([`postgres::PgGraph`]: node and edge tables, neighbourhoods and
//! shortest paths with recursive CTEs); with `memory.graph.url` set it lives on a Bolt server
//! ([`bolt::BoltGraph`]: Neo4j 5, FalkorDB).

pub mod bolt;
pub mod postgres;

use futures::future::BoxFuture;
use uuid::Uuid;

/// The graph's nodes, relations and answers are the memory API's own bodies.
pub use daarion_memory_client::graph::{Edge, NewRelation, Node, NodeRef, Path, Related, Subgraph};

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("{0}")]
    Invalid(String),
    #[error("no {0}")]
    NotFound(String),
    #[error("graph store: {0}")]
    Store(String),
}

/// What a graph backend offers. Every read follows open relations only, within one user's graph
/// and the shared one.
pub trait GraphStore: Send + Sync {
    /// Creates the nodes if needed and the relation unless it is already there (idempotent).
    fn relate<'a>(
        &'a self,
        relation: &'a NewRelation,
        by: &'a str,
    ) -> BoxFuture<'a, Result<Related, GraphError>>;
    fn node(&self, id: Uuid) -> BoxFuture<'_, Result<Node, GraphError>>;
    /// Nodes of `user` (and shared ones) whose name starts with `prefix`.
    fn find<'a>(
        &'a self,
        user: Option<Uuid>,
        prefix: &'a str,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<Node>, GraphError>>;
    /// Everything within `depth` relations of `node`.
    fn neighbourhood(
        &self,
        node: Uuid,
        depth: u32,
        limit: u32,
    ) -> BoxFuture<'_, Result<Subgraph, GraphError>>;
    /// A shortest chain of relations between two nodes, if one is at most `max_depth` long.
    fn path(
        &self,
        from: Uuid,
        to: Uuid,
        max_depth: u32,
    ) -> BoxFuture<'_, Result<Option<Path>, GraphError>>;
    /// Ends a relation (it stays, with when and why).
    fn end<'a>(&'a self, edge: Uuid, reason: &'a str) -> BoxFuture<'a, Result<Edge, GraphError>>;
    /// The user a relation belongs to (for access checks).
    fn edge_owner(&self, edge: Uuid) -> BoxFuture<'_, Result<Option<Uuid>, GraphError>>;
}

/// Names are matched trimmed and lower-cased.
pub fn key_of(name: &str) -> String {
    name.trim().to_lowercase()
}

pub fn check(relation: &NewRelation) -> Result<(), GraphError> {
    let word = |s: &str, max: usize| {
        let mut chars = s.chars();
        s.len() <= max
            && chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    for end in [&relation.from, &relation.to] {
        if !word(&end.kind, 32) {
            return Err(GraphError::Invalid(format!(
                "kind `{}`: lowercase letters, digits and '_' (person, topic, place…)",
                end.kind
            )));
        }
        let name = end.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(GraphError::Invalid("names are 1 to 200 characters".into()));
        }
    }
    if !word(&relation.relation, 64) {
        return Err(GraphError::Invalid(format!(
            "relation `{}`: lowercase letters, digits and '_' (knows, lives_in…)",
            relation.relation
        )));
    }
    if relation.from.kind == relation.to.kind
        && key_of(&relation.from.name) == key_of(&relation.to.name)
    {
        return Err(GraphError::Invalid(
            "a relation joins two different things".into(),
        ));
    }
    Ok(())
}
