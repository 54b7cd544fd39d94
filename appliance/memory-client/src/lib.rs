//! The memory service's contract: the bodies of its HTTP API, which the service's handlers
//! deserialize and serialize and every caller builds and reads, and [`MemoryClient`] to call it.
//!
//! One type per body, shared by both ends, so a field renamed on one side fails to compile on
//! the other instead of vanishing at run time. The JSON shapes are the API's (see the service's
//! `/openapi.json`; with the `openapi` feature the types derive its schemas).
//!
//! Request bodies leave out what the caller did not set (`None` fields are not sent); response
//! bodies carry every field, `null` included, as the service has always answered them.

pub mod attachments;
pub mod audit;
mod client;
pub mod documents;
mod error;
pub mod facts;
pub mod graph;
pub mod index;
pub mod limits;
pub mod search;
pub mod sessions;
pub mod state;
pub mod usage;
pub mod users;

pub use client::MemoryClient;
pub use error::MemoryError;

pub use attachments::{
    Attachment, AttachmentState, AttachmentsQuery, Created, Deleted, Locator, NewAttachment,
    NewSections, Origin, ParseDone, ParseFailed, ParseOptions, Progress, ReportProgress, Retry,
    Section,
};
pub use audit::{AuditQuery, AuditRow};
pub use documents::{Chunk, Document, DocumentWithChunks, NewDocument};
pub use facts::{Fact, FactsQuery, Forget, NewFact, Supersede};
pub use graph::{
    AroundQuery, Edge, End, FindQuery, NewRelation, Node, NodeRef, Path, PathQuery, Related,
    Subgraph,
};
pub use index::{IndexStatus, Requeued};
pub use search::{Citation, Hit, SearchQuery};
pub use sessions::{MessagesQuery, NewMessage, NewSession, Session, StoredMessage};
pub use state::{Entry, PutEntry};
pub use usage::{Bucket, Usage, UsageQuery, UsageTotals};
pub use users::{Identity, Profile, Resolve, Resolved, User, UsersQuery};

/// The header that confines a request to one user's data: a `memory:user` token must send it,
/// and any caller who does is held to that user.
pub const ACTING_FOR: &str = "x-daarion-acting-for";

#[cfg(test)]
mod tests;
