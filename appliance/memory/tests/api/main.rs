//! The memory REST API, in-process with a real control plane for token checks, on the real
//! PostgreSQL, Redis and NATS (and, where a test needs embeddings, a real swapper with MiniLM).
//! One file per concern; each test reads as what the API promises.

#[path = "../helpers/mod.rs"]
mod helpers;

mod access;
mod attachments;
mod cache;
mod client;
mod documents;
mod facts;
mod graph;
mod index;
mod search;
mod sessions;
mod state;
mod usage_and_audit;
mod users;
