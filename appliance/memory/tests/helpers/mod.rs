//! What the memory API tests share: the service in-process (`memory`), where its vectors are
//! (`vectors`: the embedded engine here; `tests/qdrant_server.rs` swaps in a Qdrant server) and,
//! for the Bolt graph backend, a FalkorDB server of a test's own (`falkor`, shared with the graph
//! benchmark).

// Each test binary uses a different part of this.
#![allow(dead_code)]

pub mod falkor;
pub mod memory;
#[path = "embedded.rs"]
pub mod vectors;
