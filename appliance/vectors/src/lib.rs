//! Vectors for the memory service, behind one small trait ([`VectorStore`]).
//!
//! The default backend is Qdrant's embedded engine ([`EdgeStore`], the `qdrant-edge` crate): one
//! shard per collection under the data directory, no server to run. With `memory.qdrant.url`
//! set, a Qdrant server holds them instead ([`ServerStore`], gRPC). Every point carries its
//! scope (user, agent, chat) and its kind in the payload, with keyword indexes on them, so a
//! search never crosses users. PostgreSQL stays the source of truth: points hold ids, not text,
//! and a lost vector store is rebuilt by re-indexing.

mod edge;
mod error;
mod server;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use edge::EdgeStore;
pub use error::VectorError;
pub use server::ServerStore;

/// Payload fields searches filter on, indexed as keywords in every backend.
pub(crate) const INDEXED: [&str; 3] = ["user_id", "agent_id", "kind"];

/// The payload every point carries, whichever backend holds it: ids and scope, never text.
pub(crate) fn payload(point: &Point) -> serde_json::Map<String, serde_json::Value> {
    let mut map = serde_json::Map::new();
    map.insert("user_id".into(), point.scope.user_id.to_string().into());
    map.insert("agent_id".into(), point.scope.agent_id.clone().into());
    map.insert("chat_id".into(), point.scope.chat_id.clone().into());
    map.insert("kind".into(), point.kind.clone().into());
    map
}

/// What a collection holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collection {
    /// Conversation messages and remembered facts.
    Messages,
    /// Chunks of documents and attachments.
    Chunks,
    /// Things agents produced (images, transcripts, tool results).
    Artifacts,
}

impl Collection {
    pub const ALL: [Collection; 3] = [
        Collection::Messages,
        Collection::Chunks,
        Collection::Artifacts,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Collection::Messages => "messages",
            Collection::Chunks => "chunks",
            Collection::Artifacts => "artifacts",
        }
    }
}

/// Whose a point is: searches filter on these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub user_id: Uuid,
    pub agent_id: Option<String>,
    pub chat_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The id of the row it stands for (a message, fact or chunk).
    pub id: Uuid,
    /// `message`, `fact`, `chunk`, ...
    pub kind: String,
    pub scope: Scope,
    pub vector: Vec<f32>,
}

/// A nearest-neighbour search inside one user's points.
#[derive(Debug, Clone)]
pub struct Query {
    pub vector: Vec<f32>,
    pub user_id: Uuid,
    /// Only points of this agent (and those of no agent).
    pub agent_id: Option<String>,
    /// Only these kinds; all when empty.
    pub kinds: Vec<String>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: Uuid,
    pub kind: String,
    /// Cosine similarity, -1 to 1.
    pub score: f32,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A vector backend. Writes are durable when the future resolves.
pub trait VectorStore: Send + Sync {
    /// Inserts or replaces points (by id). All vectors of a collection have one dimension.
    fn upsert(
        &self,
        collection: Collection,
        points: Vec<Point>,
    ) -> BoxFuture<'_, Result<(), VectorError>>;
    fn delete(
        &self,
        collection: Collection,
        ids: Vec<Uuid>,
    ) -> BoxFuture<'_, Result<(), VectorError>>;
    fn search(
        &self,
        collection: Collection,
        query: Query,
    ) -> BoxFuture<'_, Result<Vec<Hit>, VectorError>>;
    /// Points of a collection, of one user or of all.
    fn count(
        &self,
        collection: Collection,
        user_id: Option<Uuid>,
    ) -> BoxFuture<'_, Result<u64, VectorError>>;
}
