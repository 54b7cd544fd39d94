//! Vectors for the memory service, behind one small trait ([`VectorStore`]).
//!
//! The default backend is Qdrant's embedded engine ([`EdgeStore`], the `qdrant-edge` crate): one
//! shard per collection under the data directory, no server to run. Every point carries its
//! scope (user, agent, chat) and its kind in the payload, with keyword indexes on them, so a
//! search never crosses users. PostgreSQL stays the source of truth: points hold ids, not text,
//! and a lost vector store is rebuilt by re-indexing.

mod edge;
mod error;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use edge::EdgeStore;
pub use error::VectorError;

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
